//! What the checks need to know about a module, and the one rewrite they make before running it.
//!
//! [`expose`] exports every memory as `fuzz:memory:<i>` and every global as `fuzz:global:<i>`
//! (indices of the module as written). Instrumentation appends its own memories and globals after
//! the module's and leaves these indices alone, so the same names reach the same items in the
//! plain and in the instrumented module, and the checks compare them one by one.

use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType};

/// Prefix of the memory exports [`expose`] adds.
pub const MEMORY_PREFIX: &str = "fuzz:memory:";
/// Prefix of the global exports [`expose`] adds.
pub const GLOBAL_PREFIX: &str = "fuzz:global:";

/// An exported function the checks can call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncExport {
    /// The export name.
    pub name: String,
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

/// The facts about a module the checks use.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Exported functions, in export order.
    pub funcs: Vec<FuncExport>,
    /// Number of memories (imported ones included).
    pub memories: u32,
    /// Whether memory 0 is a memory64 (the `ic0` heap type).
    pub heap64: bool,
    /// Number of globals (imported ones included).
    pub globals: u32,
    /// Whether the module imports `ic0` stable-memory functions (then stable memory is compared).
    pub imports_stable: bool,
    /// Whether the module has a start function.
    pub has_start: bool,
}

impl Layout {
    /// Reads the layout of a valid module.
    pub fn of(wasm: &[u8]) -> Result<Layout, wasmparser::BinaryReaderError> {
        let mut layout = Layout::default();
        // Function types by type index, and the type index of every function.
        let mut types: Vec<Option<(Vec<ValType>, Vec<ValType>)>> = Vec::new();
        let mut func_types: Vec<u32> = Vec::new();
        let mut exports: Vec<(String, u32)> = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader.into_iter_err_on_gc_types() {
                        let ty = group?;
                        types.push(Some((ty.params().to_vec(), ty.results().to_vec())));
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader {
                        let import = import?;
                        match import.ty {
                            TypeRef::Func(t) => {
                                func_types.push(t);
                                if import.module == "ic0" && import.name.contains("stable") {
                                    layout.imports_stable = true;
                                }
                            }
                            TypeRef::Memory(m) => {
                                if layout.memories == 0 {
                                    layout.heap64 = m.memory64;
                                }
                                layout.memories += 1;
                            }
                            TypeRef::Global(_) => layout.globals += 1,
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for t in reader {
                        func_types.push(t?);
                    }
                }
                Payload::MemorySection(reader) => {
                    for m in reader {
                        let m = m?;
                        if layout.memories == 0 {
                            layout.heap64 = m.memory64;
                        }
                        layout.memories += 1;
                    }
                }
                Payload::GlobalSection(reader) => layout.globals += reader.count(),
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.kind == ExternalKind::Func {
                            exports.push((export.name.to_string(), export.index));
                        }
                    }
                }
                Payload::StartSection { .. } => layout.has_start = true,
                _ => {}
            }
        }
        for (name, index) in exports {
            let ty = func_types
                .get(index as usize)
                .and_then(|t| types.get(*t as usize).cloned().flatten());
            if let Some((params, results)) = ty {
                layout.funcs.push(FuncExport {
                    name,
                    params,
                    results,
                });
            }
        }
        Ok(layout)
    }
}

/// Returns `wasm` with every memory exported as `fuzz:memory:<i>` and every global as
/// `fuzz:global:<i>` (existing exports are kept).
pub fn expose(wasm: &[u8]) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    // Sections that come after the export section.
    const AFTER_EXPORT: [u8; 5] = [8, 9, 10, 11, 12];
    let mut memories = 0u32;
    let mut globals = 0u32;
    let mut sections: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut exports = ExportSection::new();
    let mut has_export_section = false;
    let mut taken = std::collections::HashSet::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone() {
                    match import?.ty {
                        TypeRef::Memory(_) => memories += 1,
                        TypeRef::Global(_) => globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => memories += reader.count(),
            Payload::GlobalSection(reader) => globals += reader.count(),
            Payload::ExportSection(reader) => {
                has_export_section = true;
                for export in reader.clone() {
                    let export = export?;
                    let kind = match export.kind {
                        ExternalKind::Func => ExportKind::Func,
                        ExternalKind::Table => ExportKind::Table,
                        ExternalKind::Memory => ExportKind::Memory,
                        ExternalKind::Global => ExportKind::Global,
                        ExternalKind::Tag => ExportKind::Tag,
                    };
                    exports.export(export.name, kind, export.index);
                    taken.insert((export.name.to_string(), kind, export.index));
                }
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }
    // A module exposed before (a saved failure) keeps its exports.
    let items = (0..memories)
        .map(|i| (format!("{MEMORY_PREFIX}{i}"), ExportKind::Memory, i))
        .chain((0..globals).map(|i| (format!("{GLOBAL_PREFIX}{i}"), ExportKind::Global, i)));
    for item in items {
        if !taken.contains(&item) {
            exports.export(&item.0, item.1, item.2);
        }
    }
    let mut module = wasm_encoder::Module::new();
    let mut written = false;
    for (id, range) in sections {
        let is_export = id == 7;
        if !written && (is_export || (!has_export_section && AFTER_EXPORT.contains(&id))) {
            module.section(&exports);
            written = true;
        }
        if !is_export {
            module.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    if !written {
        module.section(&exports);
    }
    Ok(module.finish())
}

/// Validates `wasm` with canister-vm's feature set (`canister_vm::instrument::validate`).
pub fn validates(wasm: &[u8]) -> Result<(), canister_vm::instrument::InstrumentError> {
    canister_vm::instrument::validate(wasm).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_exports_memories_and_globals_and_keeps_validity() {
        let wasm = wat::parse_str(
            r#"(module (memory 1) (memory i64 0) (global (mut i32) (i32.const 1))
                 (global f64 (f64.const 2)) (func (export "f") (param i32) (result i64) i64.const 0)
                 (data (i32.const 0) "x"))"#,
        )
        .unwrap();
        let out = expose(&wasm).unwrap();
        validates(&out).unwrap();
        let layout = Layout::of(&out).unwrap();
        assert_eq!(
            (layout.memories, layout.globals, layout.heap64),
            (2, 2, false)
        );
        assert_eq!(layout.funcs.len(), 1);
        assert_eq!(layout.funcs[0].params, [ValType::I32]);
        let text = wasmprinter::print_bytes(&out).unwrap();
        for name in ["fuzz:memory:1", "fuzz:global:1"] {
            assert!(text.contains(name), "{text}");
        }
    }
}
