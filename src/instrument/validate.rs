//! Validation: the module must be valid Wasm for the feature set canister-vm's engine enables.

use wasmparser::{Parser, Payload, TypeRef, Validator, WasmFeatures};

use super::InstrumentError;

/// The Wasm features canister-vm accepts (those of `runtime::engine::engine_config`): Wasm 2.0,
/// multi-memory, memory64, SIMD, tail calls, extended constant expressions. No threads, no
/// relaxed SIMD, no GC or exceptions.
pub fn features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::MEMORY64
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXTENDED_CONST
}

/// A memory as the module declares (or imports) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryDecl {
    /// Whether it is a memory64.
    pub memory64: bool,
    /// Initial size in 64 KiB pages.
    pub minimum: u64,
    /// Maximum size in 64 KiB pages, if declared.
    pub maximum: Option<u64>,
}

impl From<wasmparser::MemoryType> for MemoryDecl {
    fn from(m: wasmparser::MemoryType) -> Self {
        MemoryDecl {
            memory64: m.memory64,
            minimum: m.initial,
            maximum: m.maximum,
        }
    }
}

/// What the passes need to know about a module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Number of memories, imported ones included.
    pub memories: u32,
    /// Whether memory 0 is a memory64.
    pub heap64: bool,
    /// Every memory in index order (imported ones first).
    pub memory_decls: Vec<MemoryDecl>,
    /// Indices of mutable globals (imported and defined).
    pub mutable_globals: Vec<u32>,
    /// Number of imported functions.
    pub imported_functions: u32,
    /// Number of tables, imported ones included.
    pub tables: u32,
    /// Export names.
    pub exports: Vec<String>,
}

/// Validates `wasm` and reads the facts the passes need.
pub fn validate(wasm: &[u8]) -> Result<ModuleInfo, InstrumentError> {
    Validator::new_with_features(features()).validate_all(wasm)?;
    let mut info = ModuleInfo::default();
    let mut globals = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader {
                    match import?.ty {
                        TypeRef::Func(_) => info.imported_functions += 1,
                        TypeRef::Memory(m) => {
                            if info.memories == 0 {
                                info.heap64 = m.memory64;
                            }
                            info.memories += 1;
                            info.memory_decls.push(MemoryDecl::from(m));
                        }
                        TypeRef::Global(g) => {
                            if g.mutable {
                                info.mutable_globals.push(globals);
                            }
                            globals += 1;
                        }
                        TypeRef::Table(_) => info.tables += 1,
                        TypeRef::Tag(_) => {}
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let m = memory?;
                    if info.memories == 0 {
                        info.heap64 = m.memory64;
                    }
                    info.memories += 1;
                    info.memory_decls.push(MemoryDecl::from(m));
                }
            }
            Payload::TableSection(reader) => info.tables += reader.count(),
            Payload::GlobalSection(reader) => {
                for global in reader {
                    if global?.ty.mutable {
                        info.mutable_globals.push(globals);
                    }
                    globals += 1;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    info.exports.push(export?.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(info)
}
