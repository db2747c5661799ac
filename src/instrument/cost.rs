//! The instruction cost table of deterministic metering: the replica's (DESIGN.md,
//! "Instruction counts").
//!
//! Every Wasm operator has a static cost, charged when the basic block containing it starts;
//! bulk memory and table operators also charge their length when they execute (see
//! [`PER_BULK_UNIT`] and `metering.rs`). The prices are the replica's `instruction_to_cost`
//! (`rs/embedders/src/wasm_utils/instrumentation.rs` of dfinity/ic, the version DESIGN.md
//! "Instruction counts" pins), so canister-vm counts what the IC counts for the same module.
//!
//! Unsupported proposals are caught at compile time: [`static_cost`] first asks
//! `proposal_default`, generated from wasmparser's
//! [`for_each_operator!`](wasmparser::for_each_operator) with one arm per proposal and none for
//! an unknown one, so an operator of a proposal added to wasmparser fails to compile here instead
//! of silently costing 1. The operators that cost something other than their proposal's default
//! are then listed by name.
//!
//! | group | operators | cost |
//! |---|---|---|
//! | structure markers | `block`, `loop`, `else`, `end` | 0 |
//! | branches | `if`, `br`, `br_if`, `br_table` | 2 |
//! | default | constants, locals, integer arithmetic and comparisons, `select`, `drop`, `nop`, `return`, `unreachable`, wrap/extend/reinterpret, promote/demote, float `abs`/`neg`, `ref.null`, `typed select`, most SIMD | 1 |
//! | memory access | every load and store (scalar and SIMD) | 1, or 2 when memory 0 is a memory64 |
//! | globals | `global.get`, `global.set` | 2 |
//! | integer division | `i32/i64.div_*`, `rem_*` | 10 |
//! | float arithmetic | `f32/f64.add/sub/mul/ceil/floor/trunc/nearest`, `f32.copysign` | 2 |
//! | | `f32.div` 3, `f64.div` 5, `f64.copysign` 3, `f32.sqrt` 5, `f64.sqrt` 8, `min`/`max` 18 | |
//! | float comparisons | `f32/f64.eq/ne/lt/gt/le/ge` | 3 |
//! | conversions | `convert_*_s` 3, `convert_*_u` 16, `trunc_*` 20, `trunc_sat_*` 20 | |
//! | calls | `call` 5, `call_indirect` 10, `return_call` 3, `return_call_indirect` 60 | |
//! | memory | `memory.size` 20, `memory.grow` 300 | |
//! | tables | `table.get`/`table.set` 5, `table.size` 100, `table.grow` 300 | |
//! | references | `ref.is_null` 5, `ref.func` 130 | |
//! | bulk | `memory.copy/fill/init`, `table.copy/fill/init` | 100 + length |
//! | drops | `data.drop`, `elem.drop` | 300 |
//! | SIMD | as the replica's table (`simd_cost`): shifts 2–3, `i8x16.shuffle` 3, unsigned `lt`/`gt` 2, float lanes 2, `sqrt`/`div` 5–14, ... | |
//! | unsupported | threads, relaxed SIMD, GC, exceptions, ... | — |
//!
//! Calls of the `ic0` stable read/write functions cost a `call` (5) here; the functions' own
//! charge (`20 + len`) is made by the stable-memory pass.

use wasmparser::Operator;

/// Cost of structure markers (`block`, `loop`, `else`, `end`).
pub const MARKER: u32 = 0;
/// Cost of an ordinary operator.
pub const BASIC: u32 = 1;
/// Cost of a branch (`if`, `br`, `br_if`, `br_table`).
pub const BRANCH: u32 = 2;
/// Cost of `global.get` and `global.set`.
pub const GLOBAL: u32 = 2;
/// Cost of integer division and remainder.
pub const DIV_REM: u32 = 10;
/// Cost of `call`.
pub const CALL: u32 = 5;
/// Cost of `call_indirect`.
pub const CALL_INDIRECT: u32 = 10;
/// Cost of `return_call`.
pub const RETURN_CALL: u32 = 3;
/// Cost of `return_call_indirect`.
pub const RETURN_CALL_INDIRECT: u32 = 60;
/// Cost of `memory.size`.
pub const MEMORY_SIZE: u32 = 20;
/// Cost of `memory.grow` and `table.grow`.
pub const GROW: u32 = 300;
/// Static cost of a bulk memory or table operator (`memory.copy/fill/init`,
/// `table.copy/fill/init`); its length is charged on top when it executes.
pub const BULK: u32 = 100;
/// Cost of `data.drop` and `elem.drop`.
pub const DROP_SEGMENT: u32 = 300;
/// Cost of the saturating float-to-int conversions (and of the trapping ones).
pub const TRUNC: u32 = 20;
/// Cost added at the entry of every function: even an empty function costs something (the
/// replica starts each function's first block at 1).
pub const FUNCTION_ENTRY: u32 = 1;
/// Dynamic cost per byte (memory) or element (table) of a bulk operator, charged on top of its
/// static [`BULK`] cost.
pub const PER_BULK_UNIT: u64 = 1;

/// The address type of memory 0, which prices every load and store (the replica prices them by
/// its main memory, whatever memory an access names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapWidth {
    /// A 32-bit memory (or none): loads and stores cost 1.
    Wasm32,
    /// A memory64: loads and stores cost 2.
    Wasm64,
}

impl HeapWidth {
    /// The cost of one load or store.
    pub fn access_cost(self) -> u32 {
        match self {
            HeapWidth::Wasm32 => 1,
            HeapWidth::Wasm64 => 2,
        }
    }
}

/// The default price of an operator of `proposal`; `None` for proposals canister-vm does not
/// enable.
macro_rules! proposal_default {
    (mvp) => {
        Some(BASIC)
    };
    (sign_extension) => {
        Some(BASIC)
    };
    (saturating_float_to_int) => {
        Some(TRUNC)
    };
    (bulk_memory) => {
        Some(BASIC)
    };
    (reference_types) => {
        Some(BASIC)
    };
    (tail_call) => {
        Some(BASIC)
    };
    (simd) => {
        Some(BASIC)
    };
    // Proposals canister-vm does not enable (`validate::features`): validation rejects them.
    (relaxed_simd) => {
        None
    };
    (threads) => {
        None
    };
    (gc) => {
        None
    };
    (exceptions) => {
        None
    };
    (legacy_exceptions) => {
        None
    };
    (shared_everything_threads) => {
        None
    };
    (function_references) => {
        None
    };
    (stack_switching) => {
        None
    };
    (wide_arithmetic) => {
        None
    };
    (memory_control) => {
        None
    };
}

macro_rules! define_proposal_default {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// The default price of `op`'s proposal, or `None` for a proposal canister-vm does not
        /// enable (such modules fail validation before metering).
        fn proposal_default(op: &Operator<'_>) -> Option<u32> {
            match op {
                $( Operator::$op { .. } => proposal_default!($proposal), )*
                // `Operator` is `#[non_exhaustive]`; every operator wasmparser knows has an arm.
                _ => None,
            }
        }
    };
}

wasmparser::for_each_operator!(define_proposal_default);

/// The static cost of `op` in a module whose memory 0 is `heap`, or `None` for an operator of a
/// proposal canister-vm does not enable (such modules fail validation before metering).
pub fn static_cost(op: &Operator<'_>, heap: HeapWidth) -> Option<u32> {
    use Operator as O;
    let default = proposal_default(op)?;
    let access = heap.access_cost();
    Some(match op {
        O::Block { .. } | O::Loop { .. } | O::Else | O::End => MARKER,
        O::If { .. } | O::Br { .. } | O::BrIf { .. } | O::BrTable { .. } => BRANCH,
        O::I32DivS
        | O::I32DivU
        | O::I32RemS
        | O::I32RemU
        | O::I64DivS
        | O::I64DivU
        | O::I64RemS
        | O::I64RemU => DIV_REM,
        O::F32Add
        | O::F32Sub
        | O::F32Mul
        | O::F32Ceil
        | O::F32Floor
        | O::F32Trunc
        | O::F32Nearest
        | O::F64Add
        | O::F64Sub
        | O::F64Mul
        | O::F64Ceil
        | O::F64Floor
        | O::F64Trunc
        | O::F64Nearest
        | O::F32Copysign => 2,
        O::F32Div => 3,
        O::F64Div => 5,
        O::F64Copysign => 3,
        O::F32Sqrt => 5,
        O::F64Sqrt => 8,
        O::F32Min | O::F32Max | O::F64Min | O::F64Max => 18,
        O::F32Eq
        | O::F32Ne
        | O::F32Lt
        | O::F32Gt
        | O::F32Le
        | O::F32Ge
        | O::F64Eq
        | O::F64Ne
        | O::F64Lt
        | O::F64Gt
        | O::F64Le
        | O::F64Ge => 3,
        O::F32ConvertI32S | O::F32ConvertI64S | O::F64ConvertI32S | O::F64ConvertI64S => 3,
        O::F32ConvertI32U | O::F32ConvertI64U | O::F64ConvertI32U | O::F64ConvertI64U => 16,
        O::I32TruncF32S
        | O::I32TruncF32U
        | O::I32TruncF64S
        | O::I32TruncF64U
        | O::I64TruncF32S
        | O::I64TruncF32U
        | O::I64TruncF64S
        | O::I64TruncF64U => TRUNC,
        O::I32Load { .. }
        | O::I64Load { .. }
        | O::F32Load { .. }
        | O::F64Load { .. }
        | O::I32Load8S { .. }
        | O::I32Load8U { .. }
        | O::I32Load16S { .. }
        | O::I32Load16U { .. }
        | O::I64Load8S { .. }
        | O::I64Load8U { .. }
        | O::I64Load16S { .. }
        | O::I64Load16U { .. }
        | O::I64Load32S { .. }
        | O::I64Load32U { .. }
        | O::I32Store { .. }
        | O::I64Store { .. }
        | O::F32Store { .. }
        | O::F64Store { .. }
        | O::I32Store8 { .. }
        | O::I32Store16 { .. }
        | O::I64Store8 { .. }
        | O::I64Store16 { .. }
        | O::I64Store32 { .. } => access,
        O::GlobalGet { .. } | O::GlobalSet { .. } => GLOBAL,
        O::MemorySize { .. } => MEMORY_SIZE,
        O::MemoryGrow { .. } | O::TableGrow { .. } => GROW,
        O::Call { .. } => CALL,
        O::CallIndirect { .. } => CALL_INDIRECT,
        O::ReturnCall { .. } => RETURN_CALL,
        O::ReturnCallIndirect { .. } => RETURN_CALL_INDIRECT,
        O::MemoryFill { .. }
        | O::MemoryCopy { .. }
        | O::MemoryInit { .. }
        | O::TableFill { .. }
        | O::TableCopy { .. }
        | O::TableInit { .. } => BULK,
        O::DataDrop { .. } | O::ElemDrop { .. } => DROP_SEGMENT,
        O::TableGet { .. } | O::TableSet { .. } => 5,
        O::TableSize { .. } => 100,
        O::RefIsNull => 5,
        O::RefFunc { .. } => 130,
        _ => simd_cost(op, access).unwrap_or(default),
    })
}

/// The SIMD operators whose price differs from 1 (memory accesses at `access`), or `None`.
fn simd_cost(op: &Operator<'_>, access: u32) -> Option<u32> {
    use Operator as O;
    Some(match op {
        O::V128Load { .. }
        | O::V128Load8x8S { .. }
        | O::V128Load8x8U { .. }
        | O::V128Load16x4S { .. }
        | O::V128Load16x4U { .. }
        | O::V128Load32x2S { .. }
        | O::V128Load32x2U { .. }
        | O::V128Load8Splat { .. }
        | O::V128Load16Splat { .. }
        | O::V128Load32Splat { .. }
        | O::V128Load64Splat { .. }
        | O::V128Load32Zero { .. }
        | O::V128Load64Zero { .. }
        | O::V128Store { .. }
        | O::V128Load8Lane { .. }
        | O::V128Load16Lane { .. }
        | O::V128Load32Lane { .. }
        | O::V128Load64Lane { .. }
        | O::V128Store8Lane { .. }
        | O::V128Store16Lane { .. }
        | O::V128Store32Lane { .. }
        | O::V128Store64Lane { .. } => access,
        O::I8x16Shuffle { .. } | O::I8x16Popcnt | O::I8x16Shl | O::I8x16ShrS => 3,
        O::I8x16LtU
        | O::I8x16GtU
        | O::I16x8LtU
        | O::I16x8GtU
        | O::I32x4LtU
        | O::I32x4GtU
        | O::I8x16ShrU
        | O::I16x8ExtAddPairwiseI8x16U
        | O::I16x8Shl
        | O::I16x8ShrS
        | O::I16x8ShrU
        | O::I16x8ExtMulHighI8x16S
        | O::I16x8ExtMulHighI8x16U
        | O::I32x4Shl
        | O::I32x4ShrS
        | O::I32x4ShrU
        | O::I32x4Mul
        | O::I32x4ExtMulLowI16x8S
        | O::I32x4ExtMulHighI16x8S
        | O::I32x4ExtMulLowI16x8U
        | O::I32x4ExtMulHighI16x8U
        | O::I64x2Shl
        | O::I64x2ShrU => 2,
        O::I32x4ExtAddPairwiseI16x8U | O::I64x2ShrS => 3,
        O::I64x2Mul => 4,
        O::F32x4Ceil
        | O::F32x4Floor
        | O::F32x4Trunc
        | O::F32x4Nearest
        | O::F32x4Abs
        | O::F32x4Neg
        | O::F32x4Add
        | O::F32x4Sub
        | O::F32x4Mul
        | O::F64x2Ceil
        | O::F64x2Floor
        | O::F64x2Trunc
        | O::F64x2Nearest
        | O::F64x2Abs
        | O::F64x2Neg
        | O::F64x2Add
        | O::F64x2Sub
        | O::F64x2Mul => 2,
        O::F32x4Sqrt => 5,
        O::F32x4Div => 10,
        O::F32x4Min | O::F32x4Max | O::F64x2Min => 4,
        O::F64x2Max => 5,
        O::F64x2Sqrt => 14,
        O::F64x2Div => 12,
        O::I32x4TruncSatF32x4S | O::I32x4TruncSatF64x2SZero => 2,
        O::I32x4TruncSatF32x4U | O::F32x4ConvertI32x4U => 4,
        O::I32x4TruncSatF64x2UZero => 3,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::{BlockType, MemArg};

    const MEMARG: MemArg = MemArg {
        align: 0,
        max_align: 0,
        offset: 0,
        memory: 0,
    };

    /// The replica's prices (`instruction_to_cost`), one operator of every group.
    #[test]
    fn replica_prices() {
        let empty = BlockType::Empty;
        let cases: &[(Operator<'_>, u32)] = &[
            (Operator::Block { blockty: empty }, 0),
            (Operator::Loop { blockty: empty }, 0),
            (Operator::Else, 0),
            (Operator::End, 0),
            (Operator::If { blockty: empty }, 2),
            (Operator::Br { relative_depth: 0 }, 2),
            (Operator::BrIf { relative_depth: 0 }, 2),
            (Operator::Nop, 1),
            (Operator::Drop, 1),
            (Operator::Return, 1),
            (Operator::Unreachable, 1),
            (Operator::I32Add, 1),
            (Operator::I64Mul, 1),
            (Operator::I32Clz, 1),
            (Operator::I64Eqz, 1),
            (Operator::LocalGet { local_index: 0 }, 1),
            (Operator::GlobalGet { global_index: 0 }, 2),
            (Operator::GlobalSet { global_index: 0 }, 2),
            (Operator::I32DivU, 10),
            (Operator::I64RemS, 10),
            (Operator::F32Add, 2),
            (Operator::F64Nearest, 2),
            (Operator::F32Abs, 1),
            (Operator::F64Neg, 1),
            (Operator::F32Div, 3),
            (Operator::F64Div, 5),
            (Operator::F32Min, 18),
            (Operator::F64Max, 18),
            (Operator::F32Copysign, 2),
            (Operator::F64Copysign, 3),
            (Operator::F32Sqrt, 5),
            (Operator::F64Sqrt, 8),
            (Operator::F64Le, 3),
            (Operator::F32ConvertI64S, 3),
            (Operator::F64ConvertI32U, 16),
            (Operator::I64TruncF64U, 20),
            (Operator::I32TruncSatF32S, 20),
            (Operator::F64PromoteF32, 1),
            (Operator::I64ReinterpretF64, 1),
            (Operator::I32Extend8S, 1),
            (Operator::I64Load { memarg: MEMARG }, 1),
            (Operator::I32Store8 { memarg: MEMARG }, 1),
            (Operator::Call { function_index: 0 }, 5),
            (
                Operator::CallIndirect {
                    type_index: 0,
                    table_index: 0,
                },
                10,
            ),
            (Operator::ReturnCall { function_index: 0 }, 3),
            (
                Operator::ReturnCallIndirect {
                    type_index: 0,
                    table_index: 0,
                },
                60,
            ),
            (Operator::MemorySize { mem: 0 }, 20),
            (Operator::MemoryGrow { mem: 0 }, 300),
            (Operator::MemoryFill { mem: 0 }, 100),
            (
                Operator::MemoryCopy {
                    dst_mem: 0,
                    src_mem: 0,
                },
                100,
            ),
            (
                Operator::MemoryInit {
                    data_index: 0,
                    mem: 0,
                },
                100,
            ),
            (Operator::DataDrop { data_index: 0 }, 300),
            (Operator::ElemDrop { elem_index: 0 }, 300),
            (Operator::TableGrow { table: 0 }, 300),
            (Operator::TableSize { table: 0 }, 100),
            (Operator::TableGet { table: 0 }, 5),
            (Operator::TableSet { table: 0 }, 5),
            (Operator::TableFill { table: 0 }, 100),
            (Operator::RefIsNull, 5),
            (Operator::RefFunc { function_index: 0 }, 130),
            (Operator::V128Load { memarg: MEMARG }, 1),
            (Operator::I8x16Swizzle, 1),
            (Operator::I8x16Shl, 3),
            (Operator::I32x4Mul, 2),
            (Operator::I64x2Mul, 4),
            (Operator::F32x4Div, 10),
            (Operator::F64x2Div, 12),
            (Operator::F64x2Sqrt, 14),
            (Operator::F64x2Max, 5),
            (Operator::I32x4TruncSatF32x4U, 4),
        ];
        for (op, cost) in cases {
            assert_eq!(static_cost(op, HeapWidth::Wasm32), Some(*cost), "{op:?}");
        }
    }

    #[test]
    fn memory64_heaps_pay_double_for_accesses_only() {
        let wide = HeapWidth::Wasm64;
        assert_eq!(
            static_cost(&Operator::I64Load { memarg: MEMARG }, wide),
            Some(2)
        );
        assert_eq!(
            static_cost(&Operator::F32Store { memarg: MEMARG }, wide),
            Some(2)
        );
        assert_eq!(
            static_cost(&Operator::V128Store { memarg: MEMARG }, wide),
            Some(2)
        );
        assert_eq!(static_cost(&Operator::I32Add, wide), Some(1));
        assert_eq!(
            static_cost(&Operator::MemorySize { mem: 0 }, wide),
            Some(20)
        );
    }

    #[test]
    fn unsupported_proposals_have_no_cost() {
        let narrow = HeapWidth::Wasm32;
        assert_eq!(static_cost(&Operator::I8x16RelaxedSwizzle, narrow), None);
        assert_eq!(static_cost(&Operator::AtomicFence, narrow), None);
        assert_eq!(static_cost(&Operator::RefEq, narrow), None);
        assert_eq!(static_cost(&Operator::I64Add128, narrow), None);
    }
}
