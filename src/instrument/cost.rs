//! The instruction cost table of deterministic metering (DESIGN.md §5).
//!
//! Every Wasm operator has a static cost charged when the basic block containing it starts; bulk
//! memory and table operators additionally charge their length when they execute (see
//! [`PER_BULK_UNIT`] and `metering.rs`). The table is generated from wasmparser's
//! [`for_each_operator!`](wasmparser::for_each_operator): every operator is priced by the arm of
//! `cost_of!` for its proposal, and there is no arm for an unknown proposal, so an operator from
//! a proposal added to wasmparser fails to compile here instead of silently costing 1. Within a
//! proposal, the operators that cost something other than the proposal's price are listed by name.
//!
//! | group | operators | cost | reason |
//! |---|---|---|---|
//! | structure markers | `block`, `loop`, `else`, `end` | 0 | they delimit blocks; wasmi's translation removes them (an `else` becomes the then arm's jump, priced by the `if`) |
//! | basic | everything else of Wasm 2.0, sign extension, saturating conversions, SIMD, reference types, bulk memory | 1 | one dispatch of the interpreter, as on the *IC* |
//! | globals | `global.get`, `global.set` | 2 | *IC* price: globals live outside the register file |
//! | division | integer `div_*`/`rem_*`, float `div` (scalar and SIMD) | 10 | *IC* price: tens of cycles in hardware |
//! | direct calls | `call`, `return_call` | 5 | *IC* price: a frame push and pop |
//! | indirect calls | `call_indirect`, `return_call_indirect` | 10 | *IC* price: a table lookup and a signature check on top of a call |
//! | size queries | `memory.size` | 20 | *IC* price |
//! | growth | `memory.grow`, `table.grow` | 300 | *IC* price of `memory.grow`: it may allocate and zero host memory; `table.grow` allocates too |
//! | bulk | `memory.copy/fill/init`, `table.copy/fill/init` | 1 + length | the length (bytes or elements) is charged when the operator executes, before it runs |
//! | unsupported | threads, relaxed SIMD, GC, exceptions, ... | — | rejected by validation; [`static_cost`] returns `None` |
//!
//! Calls to the `ic0` stable read/write functions cost a `call` (5) here; their dynamic part is
//! charged by the stable-memory pass.

use wasmparser::Operator;

/// Cost of structure markers (`block`, `loop`, `else`, `end`).
pub const MARKER: u32 = 0;
/// Cost of an ordinary operator.
pub const BASIC: u32 = 1;
/// Cost of `global.get` and `global.set`.
pub const GLOBAL: u32 = 2;
/// Cost of integer division and remainder and of float division.
pub const DIV_REM: u32 = 10;
/// Cost of `call` and `return_call`.
pub const CALL: u32 = 5;
/// Cost of `call_indirect` and `return_call_indirect`.
pub const CALL_INDIRECT: u32 = 10;
/// Cost of `memory.size`.
pub const MEMORY_SIZE: u32 = 20;
/// Cost of `memory.grow` and `table.grow`.
pub const GROW: u32 = 300;
/// Dynamic cost per byte (memory) or element (table) of a bulk operator, charged on top of its
/// static [`BASIC`] cost.
pub const PER_BULK_UNIT: u64 = 1;

/// The static cost of one operator of `proposal`, by name. Arms for specific operators come
/// first; each supported proposal ends with its default, and unsupported proposals give `None`.
macro_rules! cost_of {
    // Structure markers.
    (mvp Block) => {
        Some(MARKER)
    };
    (mvp Loop) => {
        Some(MARKER)
    };
    (mvp Else) => {
        Some(MARKER)
    };
    (mvp End) => {
        Some(MARKER)
    };
    // Globals.
    (mvp GlobalGet) => {
        Some(GLOBAL)
    };
    (mvp GlobalSet) => {
        Some(GLOBAL)
    };
    // Division.
    (mvp I32DivS) => {
        Some(DIV_REM)
    };
    (mvp I32DivU) => {
        Some(DIV_REM)
    };
    (mvp I32RemS) => {
        Some(DIV_REM)
    };
    (mvp I32RemU) => {
        Some(DIV_REM)
    };
    (mvp I64DivS) => {
        Some(DIV_REM)
    };
    (mvp I64DivU) => {
        Some(DIV_REM)
    };
    (mvp I64RemS) => {
        Some(DIV_REM)
    };
    (mvp I64RemU) => {
        Some(DIV_REM)
    };
    (mvp F32Div) => {
        Some(DIV_REM)
    };
    (mvp F64Div) => {
        Some(DIV_REM)
    };
    // Calls.
    (mvp Call) => {
        Some(CALL)
    };
    (mvp CallIndirect) => {
        Some(CALL_INDIRECT)
    };
    // Memory size and growth.
    (mvp MemorySize) => {
        Some(MEMORY_SIZE)
    };
    (mvp MemoryGrow) => {
        Some(GROW)
    };
    (mvp $op:ident) => {
        Some(BASIC)
    };

    (sign_extension $op:ident) => {
        Some(BASIC)
    };
    (saturating_float_to_int $op:ident) => {
        Some(BASIC)
    };
    // memory.copy/fill/init and table.copy/init also charge their length dynamically.
    (bulk_memory $op:ident) => {
        Some(BASIC)
    };

    (reference_types TableGrow) => {
        Some(GROW)
    };
    // table.fill also charges its length dynamically.
    (reference_types $op:ident) => {
        Some(BASIC)
    };

    (tail_call ReturnCall) => {
        Some(CALL)
    };
    (tail_call ReturnCallIndirect) => {
        Some(CALL_INDIRECT)
    };

    (simd F32x4Div) => {
        Some(DIV_REM)
    };
    (simd F64x2Div) => {
        Some(DIV_REM)
    };
    (simd $op:ident) => {
        Some(BASIC)
    };

    // Proposals canister-vm does not enable (`validate::features`): validation rejects them.
    (relaxed_simd $op:ident) => {
        None
    };
    (threads $op:ident) => {
        None
    };
    (gc $op:ident) => {
        None
    };
    (exceptions $op:ident) => {
        None
    };
    (legacy_exceptions $op:ident) => {
        None
    };
    (shared_everything_threads $op:ident) => {
        None
    };
    (function_references $op:ident) => {
        None
    };
    (stack_switching $op:ident) => {
        None
    };
    (wide_arithmetic $op:ident) => {
        None
    };
    (memory_control $op:ident) => {
        None
    };
}

macro_rules! define_static_cost {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// The static cost of `op`, or `None` for an operator of a proposal canister-vm does not
        /// enable (such modules fail validation before metering).
        pub fn static_cost(op: &Operator<'_>) -> Option<u32> {
            match op {
                $( Operator::$op { .. } => cost_of!($proposal $op), )*
                // `Operator` is `#[non_exhaustive]`; every operator wasmparser knows has an arm.
                _ => None,
            }
        }
    };
}

wasmparser::for_each_operator!(define_static_cost);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::{BlockType, MemArg};

    #[test]
    fn groups() {
        let memarg = MemArg {
            align: 0,
            max_align: 0,
            offset: 0,
            memory: 0,
        };
        let cases: &[(Operator<'_>, u32)] = &[
            (
                Operator::Block {
                    blockty: BlockType::Empty,
                },
                0,
            ),
            (
                Operator::Loop {
                    blockty: BlockType::Empty,
                },
                0,
            ),
            (Operator::Else, 0),
            (Operator::End, 0),
            (
                Operator::If {
                    blockty: BlockType::Empty,
                },
                1,
            ),
            (Operator::Br { relative_depth: 0 }, 1),
            (Operator::Nop, 1),
            (Operator::I32Add, 1),
            (Operator::I64Load { memarg }, 1),
            (Operator::I32Store8 { memarg }, 1),
            (Operator::LocalGet { local_index: 0 }, 1),
            (Operator::GlobalGet { global_index: 0 }, 2),
            (Operator::GlobalSet { global_index: 0 }, 2),
            (Operator::I32DivU, 10),
            (Operator::I64RemS, 10),
            (Operator::F64Div, 10),
            (Operator::F32x4Div, 10),
            (Operator::F32Sqrt, 1),
            (Operator::Call { function_index: 0 }, 5),
            (Operator::ReturnCall { function_index: 0 }, 5),
            (
                Operator::CallIndirect {
                    type_index: 0,
                    table_index: 0,
                },
                10,
            ),
            (
                Operator::ReturnCallIndirect {
                    type_index: 0,
                    table_index: 0,
                },
                10,
            ),
            (Operator::MemorySize { mem: 0 }, 20),
            (Operator::MemoryGrow { mem: 0 }, 300),
            (Operator::TableGrow { table: 0 }, 300),
            (Operator::TableSize { table: 0 }, 1),
            (Operator::MemoryFill { mem: 0 }, 1),
            (
                Operator::MemoryCopy {
                    dst_mem: 0,
                    src_mem: 0,
                },
                1,
            ),
            (Operator::I32Extend8S, 1),
            (Operator::I64TruncSatF64U, 1),
            (Operator::I8x16Swizzle, 1),
        ];
        for (op, cost) in cases {
            assert_eq!(static_cost(op), Some(*cost), "{op:?}");
        }
    }

    #[test]
    fn unsupported_proposals_have_no_cost() {
        assert_eq!(static_cost(&Operator::I8x16RelaxedSwizzle), None);
        assert_eq!(static_cost(&Operator::AtomicFence), None);
        assert_eq!(static_cost(&Operator::RefEq), None);
        assert_eq!(static_cost(&Operator::I64Add128), None);
    }
}
