//! The NaN pass: float results that may be a NaN with a host-dependent payload are replaced by
//! the canonical NaN, so float code gives the same bits on every host (DESIGN.md §5).
//!
//! Wasm lets an arithmetic operation that returns a NaN choose its payload (any *arithmetic* NaN
//! when an input is a non-canonical NaN); hosts differ, e.g. `f32.div` of a NaN with payload
//! `0x7fa00001` by `1.0` keeps the payload on x86-64 and aarch64 but need not elsewhere. After
//! every such operation the pass inserts a select that keeps the result unless it is a NaN:
//!
//! ```wat
//! f32.div                        ;; the operation, unchanged
//! local.tee $t                   ;; $t: a scratch local of the result type, appended per function
//! f32.const nan:0x400000         ;; the canonical NaN, 0x7fc00000 (f64: 0x7ff8000000000000)
//! local.get $t
//! local.get $t
//! f32.eq                         ;; false exactly for a NaN
//! select                         ;; the result, or the canonical NaN
//! ```
//!
//! and for the SIMD forms, lane by lane:
//!
//! ```wat
//! f32x4.div
//! local.tee $v
//! v128.const i32x4 0x7fc00000 0x7fc00000 0x7fc00000 0x7fc00000
//! local.get $v
//! local.get $v
//! f32x4.eq                       ;; all ones in the lanes that are not NaN
//! v128.bitselect                 ;; those lanes from the result, the others canonical
//! ```
//!
//! Canonicalized: `add sub mul div sqrt min max ceil floor trunc nearest` of `f32`, `f64`,
//! `f32x4` and `f64x2`, `f32.demote_f64`, `f64.promote_f32`, `f32x4.demote_f64x2_zero`,
//! `f64x2.promote_low_f32x4`, and the relaxed-SIMD `madd nmadd min max` (which validation
//! rejects today). Bit-exact operations need nothing: `abs neg copysign`, reinterpretations,
//! loads, constants, `pmin/pmax` (they return one of their operands), and integer-to-float
//! conversions (never NaN).
//!
//! The canonical NaN is both a canonical and an arithmetic NaN, so the result stays within what
//! the spec allows (the spec suite passes instrumented). The pass runs after metering: the
//! injected instructions are not counted.
//!
//! **Why inline and not a helper function.** On wasmi's register machine `local.get` and
//! constants mostly become operands rather than instructions, so the inline sequence executes as
//! roughly one copy, one compare and one select; a call to a helper function adds a call frame
//! and a return. Measured on a loop of 10 M `f64.add`s (wasmi 2.0, a 2-core x86-64 VM; the ignored
//! test `nan::tests::measure_inline_vs_call`): 77 ms without canonicalization, 94 ms inline
//! (+1.7 ns per operation), 364 ms with a call to a helper (+29 ns per operation).

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{CodeSection, Function, Instruction as I, Module, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use super::{InstrumentError, Summary};

/// The canonical f32 NaN (quiet bit only).
pub const CANONICAL_F32: u32 = 0x7fc0_0000;
/// The canonical f64 NaN (quiet bit only).
pub const CANONICAL_F64: u64 = 0x7ff8_0000_0000_0000;

/// The validator's limit on locals per function.
const MAX_LOCALS: u64 = 50_000;

/// Why the NaN pass cannot instrument a module.
#[derive(Debug, thiserror::Error)]
pub enum NanError {
    /// The function has no room for the scratch locals the pass needs.
    #[error(
        "NaN canonicalization: function {function} has {locals} locals, no room for {needed} \
         more (limit {MAX_LOCALS})"
    )]
    TooManyLocals {
        /// The function index.
        function: u32,
        /// Its locals, parameters included.
        locals: u64,
        /// Scratch locals needed.
        needed: u64,
    },
}

/// The result shape of a canonicalized operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    F32,
    F64,
    F32x4,
    F64x2,
}

impl Shape {
    const ALL: [Shape; 4] = [Shape::F32, Shape::F64, Shape::F32x4, Shape::F64x2];

    fn index(self) -> usize {
        self as usize
    }

    /// The scratch local's type (`v128` for both SIMD shapes, which can share one).
    fn local_type(self) -> ValType {
        match self {
            Shape::F32 => ValType::F32,
            Shape::F64 => ValType::F64,
            Shape::F32x4 | Shape::F64x2 => ValType::V128,
        }
    }
}

/// The shape of `op`'s result if it may be a NaN with a host-dependent payload.
fn shape(op: &Operator<'_>) -> Option<Shape> {
    use Operator::*;
    Some(match op {
        F32Add | F32Sub | F32Mul | F32Div | F32Sqrt | F32Min | F32Max | F32Ceil | F32Floor
        | F32Trunc | F32Nearest | F32DemoteF64 => Shape::F32,
        F64Add | F64Sub | F64Mul | F64Div | F64Sqrt | F64Min | F64Max | F64Ceil | F64Floor
        | F64Trunc | F64Nearest | F64PromoteF32 => Shape::F64,
        F32x4Add | F32x4Sub | F32x4Mul | F32x4Div | F32x4Sqrt | F32x4Min | F32x4Max | F32x4Ceil
        | F32x4Floor | F32x4Trunc | F32x4Nearest | F32x4DemoteF64x2Zero | F32x4RelaxedMadd
        | F32x4RelaxedNmadd | F32x4RelaxedMin | F32x4RelaxedMax => Shape::F32x4,
        F64x2Add | F64x2Sub | F64x2Mul | F64x2Div | F64x2Sqrt | F64x2Min | F64x2Max | F64x2Ceil
        | F64x2Floor | F64x2Trunc | F64x2Nearest | F64x2PromoteLowF32x4 | F64x2RelaxedMadd
        | F64x2RelaxedNmadd | F64x2RelaxedMin | F64x2RelaxedMax => Shape::F64x2,
        _ => return None,
    })
}

/// Appends the canonicalization of the value on top of the stack, using scratch local `t`.
fn canonicalize(f: &mut Function, shape: Shape, t: u32) {
    f.instruction(&I::LocalTee(t));
    match shape {
        Shape::F32 => {
            f.instruction(&I::F32Const(f32::from_bits(CANONICAL_F32)));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::F32Eq);
            f.instruction(&I::Select);
        }
        Shape::F64 => {
            f.instruction(&I::F64Const(f64::from_bits(CANONICAL_F64)));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::F64Eq);
            f.instruction(&I::Select);
        }
        Shape::F32x4 => {
            let lanes = u128::from(CANONICAL_F32);
            let c = lanes | lanes << 32 | lanes << 64 | lanes << 96;
            f.instruction(&I::V128Const(c as i128));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::F32x4Eq);
            f.instruction(&I::V128Bitselect);
        }
        Shape::F64x2 => {
            let lanes = u128::from(CANONICAL_F64);
            let c = lanes | lanes << 64;
            f.instruction(&I::V128Const(c as i128));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::LocalGet(t));
            f.instruction(&I::F64x2Eq);
            f.instruction(&I::V128Bitselect);
        }
    }
}

/// What the pass needs to know about the module before rewriting bodies.
#[derive(Debug, Default)]
struct Facts {
    /// Parameter count of each function type (non-function types count 0).
    type_params: Vec<u32>,
    imported_functions: u32,
    /// Type index of each defined function.
    defined_function_types: Vec<u32>,
}

fn scan(wasm: &[u8]) -> Result<Facts, InstrumentError> {
    let mut facts = Facts::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        let params = match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => f.params().len() as u32,
                            _ => 0,
                        };
                        facts.type_params.push(params);
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    if matches!(import?.ty, TypeRef::Func(_)) {
                        facts.imported_functions += 1;
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    facts.defined_function_types.push(ty?);
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// The re-encoder: rewrites function bodies that contain a canonicalized operation and copies
/// everything else unchanged.
struct Nan<'f> {
    facts: &'f Facts,
    /// Index of the next defined function body.
    body: usize,
    /// Canonicalizations inserted.
    points: u64,
}

impl Reencode for Nan<'_> {
    type Error = InstrumentError;

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let function = self.facts.imported_functions + self.body as u32;
        let params = self
            .facts
            .defined_function_types
            .get(self.body)
            .and_then(|&t| self.facts.type_params.get(t as usize))
            .copied()
            .unwrap_or(0);
        self.body += 1;

        // Operator boundaries: (end offset, shape) of each canonicalized operator.
        let mut cuts = Vec::new();
        let mut used = [false; 4];
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            if let Some(s) = shape(&op) {
                cuts.push((reader.original_position(), s));
                used[s.index()] = true;
            }
        }
        if cuts.is_empty() {
            // The pass changes no index: a body with nothing to canonicalize is copied as is.
            code.raw(func.as_bytes());
            return Ok(());
        }

        let mut locals = Vec::new();
        let mut count = u64::from(params);
        for pair in func.get_locals_reader()? {
            let (n, ty) = pair?;
            count += u64::from(n);
            locals.push((n, self.val_type(ty)?));
        }
        // One scratch local per result type used (the two SIMD shapes share a v128).
        let mut scratch = [None::<u32>; 4];
        let mut added: Vec<ValType> = Vec::new();
        for s in Shape::ALL {
            if !used[s.index()] {
                continue;
            }
            let ty = s.local_type();
            let index = match added.iter().position(|&t| t == ty) {
                Some(i) => count + i as u64,
                None => {
                    added.push(ty);
                    count + added.len() as u64 - 1
                }
            };
            scratch[s.index()] = Some(index as u32);
        }
        if count + added.len() as u64 > MAX_LOCALS {
            return Err(reencode::Error::UserError(InstrumentError::Nan(Box::new(
                NanError::TooManyLocals {
                    function,
                    locals: count,
                    needed: added.len() as u64,
                },
            ))));
        }
        locals.extend(added.iter().map(|&ty| (1, ty)));

        let mut f = Function::new(locals);
        let bytes = func.as_bytes();
        let base = func.range().start;
        let operators_start = func.get_operators_reader()?.original_position();
        let mut from = operators_start;
        for (end, s) in cuts {
            let raw = bytes.get(from - base..end - base).ok_or_else(|| {
                reencode::Error::UserError(InstrumentError::Encode(format!(
                    "operator bytes {from:#x}..{end:#x} outside function {function}"
                )))
            })?;
            f.raw(raw.iter().copied());
            let t = scratch[s.index()].expect("a scratch local exists for every used shape");
            canonicalize(&mut f, s, t);
            self.points += 1;
            from = end;
        }
        let rest = bytes.get(from - base..).ok_or_else(|| {
            reencode::Error::UserError(InstrumentError::Encode(format!(
                "operator bytes from {from:#x} outside function {function}"
            )))
        })?;
        f.raw(rest.iter().copied());
        code.function(&f);
        Ok(())
    }
}

/// Instruments `wasm` (a valid module) with NaN canonicalization.
pub fn rewrite(wasm: &[u8], summary: &mut Summary) -> Result<Vec<u8>, InstrumentError> {
    let facts = scan(wasm)?;
    let mut nan = Nan {
        facts: &facts,
        body: 0,
        points: 0,
    };
    let mut module = Module::new();
    nan.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            reencode::Error::UserError(e) => e,
            reencode::Error::ParseError(e) => e.into(),
            other => InstrumentError::Encode(other.to_string()),
        })?;
    summary.nan_points += nan.points;
    Ok(module.finish())
}

#[cfg(test)]
mod tests;
