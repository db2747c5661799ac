//! The canister validation rules (DESIGN.md §8): what a valid Wasm module must also satisfy to be
//! installed as a canister. [`check`] runs after Wasm validation and reports the first rule the
//! module breaks, in module order (imports, memories, counts, exports).
//!
//! | rule | decision |
//! |---|---|
//! | function imports | only from `ic0`, only the functions of [`ic0::NAMES`], with exactly the signature [`ic0::signature`] gives for the heap's index type (memory 0; wasm32 if there is none) |
//! | global imports | rejected (as on the *IC*) |
//! | memory imports | rejected: the heap is declared by the module, and the host creates and persists it |
//! | table imports | rejected: nothing could provide one (the *IC* does not either) |
//! | methods | `canister_update <n>`, `canister_query <n>`, `canister_composite_query <n>` export functions of type `() -> ()`; a name `<n>` appears once across the three kinds |
//! | system entry points | `canister_init`, `canister_pre_upgrade`, `canister_post_upgrade`, `canister_inspect_message`, `canister_heartbeat`, `canister_global_timer`: functions of type `() -> ()` |
//! | other `canister_*` exports | rejected |
//! | reserved names | `canister counter_instructions`, `stable_memory` and every `canister_vm:*` name may not be exported |
//! | limits | at most [`MAX_FUNCTIONS`] defined functions, [`MAX_GLOBALS`] globals, [`MAX_METHODS`] method exports |
//! | tables | at most [`MAX_TABLES`] table, of at most [`MAX_TABLE_ELEMENTS`] initial elements (the replica's store limits; it fails such a module at instantiation); `table.grow` beyond [`MAX_TABLE_ELEMENTS`] returns -1 at run time (both engines' resource limiters) |
//! | threads | no shared memory (validation already rejects them, as it rejects relaxed SIMD) |

use std::collections::HashMap;
use std::fmt;

use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef};

use super::{InstrumentError, names};
use crate::abi::{self as ic0, HeapType};

/// The most functions a canister module may define.
pub const MAX_FUNCTIONS: u64 = 50_000;
/// The most globals a canister module may have.
pub const MAX_GLOBALS: u64 = 1000;
/// The most methods (`canister_update`, `canister_query`, `canister_composite_query` exports) a
/// canister module may export.
pub const MAX_METHODS: u64 = 1000;

/// The most tables a canister module may have (the replica's `MAX_STORE_TABLES`,
/// `rs/embedders/src/wasmtime_embedder.rs`, applied through wasmtime's store limits).
pub const MAX_TABLES: u64 = 1;
/// The most elements a table may have, initially or after `table.grow` (the replica's
/// `MAX_STORE_TABLE_ELEMENTS`, `rs/embedders/src/wasmtime_embedder.rs`).
pub const MAX_TABLE_ELEMENTS: u64 = 1_000_000;

/// The module that canister imports come from.
const IC0: &str = "ic0";

/// The exports of method kinds, with their prefixes.
const METHOD_KINDS: [&str; 3] = [
    "canister_update",
    "canister_query",
    "canister_composite_query",
];

/// The system entry points a canister may export.
const SYSTEM_EXPORTS: [&str; 6] = [
    "canister_init",
    "canister_pre_upgrade",
    "canister_post_upgrade",
    "canister_inspect_message",
    "canister_heartbeat",
    "canister_global_timer",
];

/// A canister rule the module breaks; every message names the rule and the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A function import from a module other than `ic0`.
    #[error(
        "import {module}.{name} is not from module ic0 (canister modules import functions only \
         from ic0) (at byte offset {offset:#x})"
    )]
    ImportNotFromIc0 {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Byte offset of the import.
        offset: usize,
    },
    /// An `ic0` function canister-vm does not provide.
    #[error(
        "import ic0.{name} is not an ic0 function canister-vm provides (at byte offset {offset:#x})"
    )]
    UnknownIc0Function {
        /// Import name.
        name: String,
        /// Byte offset of the import.
        offset: usize,
    },
    /// An `ic0` import with the wrong signature.
    #[error(
        "import ic0.{name} has type {found} but ic0.{name} is {expected} for a {heap} heap \
         (at byte offset {offset:#x})"
    )]
    Ic0Signature {
        /// Import name.
        name: String,
        /// The signature canister-vm provides.
        expected: String,
        /// The import's type.
        found: String,
        /// `wasm32` or `wasm64`.
        heap: &'static str,
        /// Byte offset of the import.
        offset: usize,
    },
    /// A global import.
    #[error(
        "imports global {module}.{name} (canister modules may not import globals) \
         (at byte offset {offset:#x})"
    )]
    GlobalImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Byte offset of the import.
        offset: usize,
    },
    /// A memory import.
    #[error(
        "imports memory {module}.{name} (canister modules may not import memories; declare the \
         heap in the module) (at byte offset {offset:#x})"
    )]
    MemoryImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Byte offset of the import.
        offset: usize,
    },
    /// A table import.
    #[error(
        "imports table {module}.{name} (canister modules may not import tables; declare the \
         table in the module) (at byte offset {offset:#x})"
    )]
    TableImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Byte offset of the import.
        offset: usize,
    },
    /// A tag import (exception handling, which validation rejects already).
    #[error(
        "imports tag {module}.{name} (canister modules may not use exceptions) \
         (at byte offset {offset:#x})"
    )]
    TagImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Byte offset of the import.
        offset: usize,
    },
    /// A shared memory (threads).
    #[error(
        "memory {index} is shared (canister modules may not use threads) (at byte offset {offset:#x})"
    )]
    SharedMemory {
        /// Memory index.
        index: u32,
        /// Byte offset of the memory type.
        offset: usize,
    },
    /// More than [`MAX_TABLES`] tables.
    #[error("defines {count} tables (at most {MAX_TABLES} allowed) (at byte offset {offset:#x})")]
    TooManyTables {
        /// Number of tables.
        count: u64,
        /// Byte offset of the first table beyond the limit.
        offset: usize,
    },
    /// A table whose initial size exceeds [`MAX_TABLE_ELEMENTS`].
    #[error(
        "table {index} has {initial} initial elements (at most {MAX_TABLE_ELEMENTS} allowed) \
         (at byte offset {offset:#x})"
    )]
    TableTooLarge {
        /// Table index.
        index: u64,
        /// Its initial size.
        initial: u64,
        /// Byte offset of the table type.
        offset: usize,
    },
    /// Too many defined functions.
    #[error("defines {count} functions (at most {MAX_FUNCTIONS} allowed)")]
    TooManyFunctions {
        /// Number of defined functions.
        count: u64,
    },
    /// Too many globals.
    #[error("has {count} globals (at most {MAX_GLOBALS} allowed)")]
    TooManyGlobals {
        /// Number of globals.
        count: u64,
    },
    /// Too many method exports.
    #[error("exports {count} methods (at most {MAX_METHODS} allowed)")]
    TooManyMethods {
        /// Number of method exports.
        count: u64,
    },
    /// An entry point export that is not a function.
    #[error("export {export} is not a function (at byte offset {offset:#x})")]
    EntryPointNotFunction {
        /// Export name.
        export: String,
        /// Byte offset of the export.
        offset: usize,
    },
    /// An entry point whose function type is not `() -> ()`.
    #[error(
        "export {export} is function {function} of type {found}; entry points must be () -> () \
         (at byte offset {offset:#x})"
    )]
    EntryPointType {
        /// Export name.
        export: String,
        /// Function index.
        function: u32,
        /// The function's type.
        found: String,
        /// Byte offset of the export.
        offset: usize,
    },
    /// A method name exported twice.
    #[error("method {method} is exported twice: as {first} and as {export}")]
    DuplicateMethod {
        /// The second export's name.
        export: String,
        /// The method name.
        method: String,
        /// The first export's name.
        first: String,
    },
    /// A `canister_`-prefixed export that is not an entry point.
    #[error(
        "export {export} is not a canister entry point (canister_update <name>, canister_query \
         <name>, canister_composite_query <name>, {}) (at byte offset {offset:#x})",
        SYSTEM_EXPORTS.join(", ")
    )]
    UnknownEntryPoint {
        /// Export name.
        export: String,
        /// Byte offset of the export.
        offset: usize,
    },
    /// An export under a name reserved for injected items.
    #[error(
        "export {export} uses a name canister-vm reserves for instrumentation (at byte offset \
         {offset:#x})"
    )]
    ReservedExport {
        /// Export name.
        export: String,
        /// Byte offset of the export.
        offset: usize,
    },
}

/// A function type, printed like an ic0 [`Signature`](ic0::Signature): `(i32, i64) -> ()`.
struct ShowType<'a>(&'a FuncType);

impl fmt::Display for ShowType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[wasmparser::ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "({}) -> ({})",
            list(self.0.params()),
            list(self.0.results())
        )
    }
}

fn ic0_valtype(t: ic0::ValType) -> wasmparser::ValType {
    match t {
        ic0::ValType::I32 => wasmparser::ValType::I32,
        ic0::ValType::I64 => wasmparser::ValType::I64,
    }
}

/// Checks that the function type `found` of the import of `ic0.<name>` (at byte `offset`) is the
/// ic0 function's signature for `heap`. `name` must be an ic0 function.
pub(crate) fn check_ic0_type(
    name: &str,
    found: Option<&FuncType>,
    heap: HeapType,
    offset: usize,
) -> Result<(), InstrumentError> {
    let sig = ic0::signature(name, heap).expect("an ic0 function");
    check_signature(name, &sig, found, heap, offset)
}

fn check_signature(
    name: &str,
    sig: &ic0::Signature,
    found: Option<&FuncType>,
    heap: HeapType,
    offset: usize,
) -> Result<(), InstrumentError> {
    if found.is_some_and(|ty| matches_signature(ty, sig)) {
        return Ok(());
    }
    Err(RuleError::Ic0Signature {
        name: name.to_string(),
        expected: sig.to_string(),
        found: found.map_or_else(|| "?".into(), |ty| ShowType(ty).to_string()),
        heap: match heap {
            HeapType::Wasm32 => "wasm32",
            HeapType::Wasm64 => "wasm64",
        },
        offset,
    }
    .into())
}

fn matches_signature(ty: &FuncType, sig: &ic0::Signature) -> bool {
    ty.params()
        .iter()
        .copied()
        .eq(sig.params.iter().map(|&t| ic0_valtype(t)))
        && ty
            .results()
            .iter()
            .copied()
            .eq(sig.results.iter().map(|&t| ic0_valtype(t)))
}

/// The method name of a method export (`canister_query <name>`), if it is one.
fn method_of(export: &str) -> Option<&str> {
    METHOD_KINDS.iter().find_map(|k| {
        export
            .strip_prefix(k)
            .and_then(|rest| rest.strip_prefix(' '))
    })
}

/// Whether `name` may not be exported by an input module.
fn is_reserved(name: &str) -> bool {
    name == names::COUNTER
        || name == names::STABLE_MEMORY
        || name.starts_with(names::RESERVED_PREFIX)
}

/// A function import, checked once the heap type is known (the memory section comes after the
/// import section).
struct FuncImport {
    module: String,
    name: String,
    ty: u32,
    offset: usize,
}

/// Checks the canister rules on `wasm`, a valid Wasm module.
pub fn check(wasm: &[u8]) -> Result<(), InstrumentError> {
    let mut types: Vec<FuncType> = Vec::new();
    let mut function_types: Vec<u32> = Vec::new();
    let mut func_imports: Vec<FuncImport> = Vec::new();
    let mut heap = None;
    let mut memories = 0u32;
    let mut defined_functions = 0u64;
    let mut globals = 0u64;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    types.push(ty?);
                }
            }
            Payload::ImportSection(reader) => {
                for item in reader.into_iter_with_offsets() {
                    let (offset, import) = item?;
                    let module = import.module.to_string();
                    let name = import.name.to_string();
                    match import.ty {
                        TypeRef::Func(ty) => {
                            function_types.push(ty);
                            func_imports.push(FuncImport {
                                module,
                                name,
                                ty,
                                offset,
                            });
                        }
                        TypeRef::Global(_) => {
                            return Err(RuleError::GlobalImport {
                                module,
                                name,
                                offset,
                            }
                            .into());
                        }
                        TypeRef::Memory(_) => {
                            return Err(RuleError::MemoryImport {
                                module,
                                name,
                                offset,
                            }
                            .into());
                        }
                        TypeRef::Table(_) => {
                            return Err(RuleError::TableImport {
                                module,
                                name,
                                offset,
                            }
                            .into());
                        }
                        TypeRef::Tag(_) => {
                            return Err(RuleError::TagImport {
                                module,
                                name,
                                offset,
                            }
                            .into());
                        }
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    function_types.push(ty?);
                    defined_functions += 1;
                }
            }
            Payload::MemorySection(reader) => {
                for item in reader.into_iter_with_offsets() {
                    let (offset, memory) = item?;
                    if memory.shared {
                        return Err(RuleError::SharedMemory {
                            index: memories,
                            offset,
                        }
                        .into());
                    }
                    if heap.is_none() {
                        heap = Some(if memory.memory64 {
                            HeapType::Wasm64
                        } else {
                            HeapType::Wasm32
                        });
                    }
                    memories += 1;
                }
            }
            Payload::TableSection(reader) => {
                let count = u64::from(reader.count());
                for (index, item) in reader.into_iter_with_offsets().enumerate() {
                    let (offset, table) = item?;
                    if index as u64 >= MAX_TABLES {
                        return Err(RuleError::TooManyTables { count, offset }.into());
                    }
                    if table.ty.initial > MAX_TABLE_ELEMENTS {
                        return Err(RuleError::TableTooLarge {
                            index: index as u64,
                            initial: table.ty.initial,
                            offset,
                        }
                        .into());
                    }
                }
            }
            Payload::GlobalSection(reader) => globals += u64::from(reader.count()),
            Payload::ExportSection(reader) => {
                for item in reader.into_iter_with_offsets() {
                    let (offset, export) = item?;
                    exports.push((export.name.to_string(), export.kind, export.index, offset));
                }
            }
            _ => {}
        }
    }
    let heap = heap.unwrap_or_default();

    for import in &func_imports {
        if import.module != IC0 {
            return Err(RuleError::ImportNotFromIc0 {
                module: import.module.clone(),
                name: import.name.clone(),
                offset: import.offset,
            }
            .into());
        }
        let Some(sig) = ic0::signature(&import.name, heap) else {
            return Err(RuleError::UnknownIc0Function {
                name: import.name.clone(),
                offset: import.offset,
            }
            .into());
        };
        check_signature(
            &import.name,
            &sig,
            types.get(import.ty as usize),
            heap,
            import.offset,
        )?;
    }

    if defined_functions > MAX_FUNCTIONS {
        return Err(RuleError::TooManyFunctions {
            count: defined_functions,
        }
        .into());
    }
    if globals > MAX_GLOBALS {
        return Err(RuleError::TooManyGlobals { count: globals }.into());
    }

    let method_count = exports
        .iter()
        .filter(|(e, ..)| method_of(e).is_some())
        .count() as u64;
    if method_count > MAX_METHODS {
        return Err(RuleError::TooManyMethods {
            count: method_count,
        }
        .into());
    }

    let mut methods: HashMap<&str, &str> = HashMap::new();
    for (export, kind, index, offset) in &exports {
        let (export, offset) = (export.as_str(), *offset);
        if is_reserved(export) {
            return Err(RuleError::ReservedExport {
                export: export.to_string(),
                offset,
            }
            .into());
        }
        let method = method_of(export);
        let is_entry_point = method.is_some() || SYSTEM_EXPORTS.contains(&export);
        if !is_entry_point {
            if export.starts_with("canister_") {
                return Err(RuleError::UnknownEntryPoint {
                    export: export.to_string(),
                    offset,
                }
                .into());
            }
            continue;
        }
        if *kind != ExternalKind::Func {
            return Err(RuleError::EntryPointNotFunction {
                export: export.to_string(),
                offset,
            }
            .into());
        }
        let ty = function_types
            .get(*index as usize)
            .and_then(|&t| types.get(t as usize));
        if !ty.is_some_and(|ty| ty.params().is_empty() && ty.results().is_empty()) {
            return Err(RuleError::EntryPointType {
                export: export.to_string(),
                function: *index,
                found: ty.map_or_else(|| "?".into(), |ty| ShowType(ty).to_string()),
                offset,
            }
            .into());
        }
        if let Some(method) = method
            && let Some(first) = methods.insert(method, export)
        {
            return Err(RuleError::DuplicateMethod {
                export: export.to_string(),
                method: method.to_string(),
                first: first.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
