//! The exports pass: exports memory 0 and every mutable global under reserved names so the host
//! can save and restore them (DESIGN.md §2, "Who owns the bytes").

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{CodeSection, ExportKind, ExportSection, Module, SectionId};

use super::validate::ModuleInfo;
use super::{InstrumentError, Summary, names};

/// A re-encoder that appends exports to the export section (creating it if the module has none)
/// and leaves everything else unchanged.
struct AddExports {
    extra: Vec<(String, ExportKind, u32)>,
    done: bool,
}

impl AddExports {
    fn append(&mut self, exports: &mut ExportSection) {
        for (name, kind, index) in &self.extra {
            exports.export(name, *kind, *index);
        }
        self.done = true;
    }
}

impl Reencode for AddExports {
    type Error = std::convert::Infallible;

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        self.append(exports);
        Ok(())
    }

    /// Function bodies are copied as they are: no index changes, so nothing to re-encode.
    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        code.raw(func.as_bytes());
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        // The module has no export section: emit one where it belongs (before start, element,
        // data count, code and data sections, or at the end).
        let past_exports = matches!(
            before,
            None | Some(
                SectionId::Start
                    | SectionId::Element
                    | SectionId::DataCount
                    | SectionId::Code
                    | SectionId::Data
            )
        );
        if !self.done && past_exports && !self.extra.is_empty() {
            let mut exports = ExportSection::new();
            self.append(&mut exports);
            module.section(&exports);
        }
        Ok(())
    }
}

/// Adds the host exports (`canister_vm:heap`, `canister_vm:table`, `canister_vm:global:<i>`) to
/// `wasm`.
pub fn add_host_exports(
    wasm: &[u8],
    info: &ModuleInfo,
    summary: &mut Summary,
) -> Result<Vec<u8>, InstrumentError> {
    let mut extra = Vec::new();
    if info.memories > 0 {
        extra.push((names::HEAP.to_string(), ExportKind::Memory, 0));
    }
    if info.tables > 0 {
        extra.push((names::TABLE.to_string(), ExportKind::Table, 0));
    }
    for &g in &info.mutable_globals {
        extra.push((
            format!("{}{g}", names::GLOBAL_PREFIX),
            ExportKind::Global,
            g,
        ));
    }
    summary
        .host_exports
        .extend(extra.iter().map(|(name, _, _)| name.clone()));
    let mut reencoder = AddExports { extra, done: false };
    let mut module = Module::new();
    reencoder
        .parse_core_module(&mut module, wasmparser::Parser::new(0), wasm)
        .map_err(|e| InstrumentError::Encode(e.to_string()))?;
    Ok(module.finish())
}
