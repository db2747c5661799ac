//! Soundness mode: after every invoke, every 4 KiB page whose bytes changed must be marked in the
//! dirty byte map (DESIGN.md §4; over-marking is allowed, a missing mark never).
//!
//! wasmi only reaches memories through exports, so before compiling, [`export_all_memories`] adds
//!
//! ```wat
//! (export "spec-tests:memory:<i>" (memory <i>))   ;; for every memory i, imported ones included
//! ```
//!
//! to the instrumented module. Memory `k` is tracked by the byte map the barrier exports as
//! `canister_vm:dirty:<k>`. Before an invoke every byte map is cleared and every tracked memory
//! snapshotted; after it, each changed page must have a non-zero map byte (located by
//! [`DirtyByte`]) in some instance that tracks that memory (a memory shared through imports is
//! marked by whichever module wrote it).

use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmi::{Instance, Memory, Store};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

use crate::mode::DirtyByte;

/// The prefix of the memory exports [`export_all_memories`] adds.
pub const MEMORY_EXPORT_PREFIX: &str = "spec-tests:memory:";

/// The dirty-page granularity.
pub const PAGE: usize = 4096;

/// The memories of one instrumented instance.
struct Tracked {
    /// Every tracked memory, in index order, with its snapshot taken before the invoke and its
    /// byte map.
    memories: Vec<(Memory, Vec<u8>, Memory)>,
}

/// Soundness-mode state for one file.
pub(crate) struct DirtyCheck {
    layout: DirtyByte,
    instances: Vec<Tracked>,
}

impl DirtyCheck {
    pub(crate) fn new(layout: DirtyByte) -> Self {
        DirtyCheck {
            layout,
            instances: Vec::new(),
        }
    }

    /// Returns `wasm` with every memory exported as `spec-tests:memory:<index>`.
    pub(crate) fn prepare(&self, wasm: &[u8]) -> Result<Vec<u8>, String> {
        export_all_memories(wasm).map_err(|e| format!("exporting memories: {e}"))
    }

    /// Starts tracking a new instance's memories.
    pub(crate) fn add_instance(&mut self, store: &Store<()>, instance: Instance) {
        let dirty = canister_vm::instrument::names::DIRTY_PREFIX;
        let memories: Vec<(Memory, Vec<u8>, Memory)> = (0..)
            .map_while(|k| {
                let map = instance.get_memory(store, &format!("{dirty}{k}"))?;
                let memory = instance.get_memory(store, &format!("{MEMORY_EXPORT_PREFIX}{k}"))?;
                Some((memory, Vec::new(), map))
            })
            .collect();
        if !memories.is_empty() {
            self.instances.push(Tracked { memories });
        }
    }

    /// Clears every byte map and snapshots every tracked memory.
    pub(crate) fn before(&mut self, store: &mut Store<()>) {
        for tracked in &mut self.instances {
            for (memory, snapshot, map) in &mut tracked.memories {
                map.data_mut(&mut *store).fill(0);
                snapshot.clear();
                snapshot.extend_from_slice(memory.data(&*store));
            }
        }
    }

    /// Checks that every page changed since [`DirtyCheck::before`] is marked.
    pub(crate) fn after(&self, store: &Store<()>) -> Result<(), String> {
        for (i, tracked) in self.instances.iter().enumerate() {
            for (index, (memory, snapshot, _)) in tracked.memories.iter().enumerate() {
                for page in changed_pages(snapshot, memory.data(store)) {
                    if !self.marked(store, memory, page) {
                        return Err(format!(
                            "soundness: page {page} (4 KiB) of memory {index} of instance {i} \
                             changed but is not marked in any dirty byte map"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether some instance tracking `memory` marks `page` of it.
    fn marked(&self, store: &Store<()>, memory: &Memory, page: u64) -> bool {
        let same = |m: &Memory| m.data_ptr(store) == memory.data_ptr(store);
        self.instances.iter().any(|tracked| {
            let pages: Vec<u64> = tracked
                .memories
                .iter()
                .map(|(m, _, _)| m.data_size(store).div_ceil(PAGE) as u64)
                .collect();
            tracked
                .memories
                .iter()
                .enumerate()
                .any(|(index, (m, _, map))| {
                    same(m)
                        && (self.layout)(index as u32, page, &pages)
                            .and_then(|byte| usize::try_from(byte).ok())
                            .and_then(|byte| map.data(store).get(byte))
                            .is_some_and(|b| *b != 0)
                })
        })
    }
}

/// The 4 KiB pages whose bytes differ between `before` and `after` (bytes past the old end count
/// as changed if non-zero: growth itself changes nothing).
pub(crate) fn changed_pages<'a>(
    before: &'a [u8],
    after: &'a [u8],
) -> impl Iterator<Item = u64> + 'a {
    after
        .chunks(PAGE)
        .enumerate()
        .filter_map(move |(page, now)| {
            let start = page * PAGE;
            let old = before
                .get(start..before.len().min(start + now.len()))
                .unwrap_or(&[]);
            let changed = now[..old.len()] != *old || now[old.len()..].iter().any(|b| *b != 0);
            changed.then_some(page as u64)
        })
}

/// Adds `(export "spec-tests:memory:<i>" (memory <i>))` for every memory of `wasm`.
pub fn export_all_memories(wasm: &[u8]) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    // Sections that must come after the export section.
    const AFTER_EXPORT: [u8; 5] = [8, 9, 10, 11, 12];
    let mut memories = 0u32;
    let mut sections: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut exports = ExportSection::new();
    let mut has_export_section = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone() {
                    if matches!(import?.ty, TypeRef::Memory(_)) {
                        memories += 1;
                    }
                }
            }
            Payload::MemorySection(reader) => memories += reader.count(),
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
                }
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }
    for index in 0..memories {
        exports.export(
            &format!("{MEMORY_EXPORT_PREFIX}{index}"),
            ExportKind::Memory,
            index,
        );
    }

    let mut module = wasm_encoder::Module::new();
    let mut exports_written = false;
    for (id, range) in sections {
        let is_export = id == 7;
        if !exports_written && (is_export || (!has_export_section && AFTER_EXPORT.contains(&id))) {
            module.section(&exports);
            exports_written = true;
        }
        if !is_export {
            module.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    if !exports_written {
        module.section(&exports);
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_pages_compares_and_treats_growth_as_zero() {
        let before = vec![0u8; 2 * PAGE];
        let mut after = vec![0u8; 4 * PAGE];
        after[PAGE + 7] = 1;
        after[3 * PAGE] = 9;
        assert_eq!(changed_pages(&before, &after).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(changed_pages(&before, &before).count(), 0);
    }

    #[test]
    fn every_memory_is_exported_and_the_module_still_validates() {
        let wat = r#"(module
            (import "spectest" "memory" (memory 1 2))
            (memory 1) (memory i64 0)
            (@custom "note" "keep me")
            (func (export "f"))
            (start 0)
            (data (memory 1) (i32.const 0) "x"))"#;
        let wasm = wat::parse_str(wat).unwrap();
        let out = export_all_memories(&wasm).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&out)
            .unwrap();
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(&out) {
            match payload.unwrap() {
                Payload::ExportSection(r) => names.extend(r.into_iter().map(|e| e.unwrap().name)),
                Payload::CustomSection(c) => assert_eq!(c.name(), "note"),
                _ => {}
            }
        }
        let want = [
            "f",
            "spec-tests:memory:0",
            "spec-tests:memory:1",
            "spec-tests:memory:2",
        ];
        assert_eq!(names, want);

        // No export section yet: one is inserted before the start section.
        let wasm = wat::parse_str("(module (memory 1) (func) (start 0))").unwrap();
        let out = export_all_memories(&wasm).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
    }
}
