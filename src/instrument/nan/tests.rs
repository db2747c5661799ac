//! Tests of the NaN pass: modules that produce NaNs with non-canonical payloads are run on wasmi
//! before and after the pass.

use wasmi::{Engine, Linker, Module, Store, Val};

use super::super::{Config, StableMode, Summary, instrument, validate};
use super::{CANONICAL_F32, CANONICAL_F64, rewrite};

/// A NaN with a payload other than the canonical one (quiet bit set).
const PAYLOAD_F32: u32 = 0x7fa0_0001;
const PAYLOAD_F64: u64 = 0x7ff4_0000_0000_0001;

/// The NaN pass alone; the output must validate.
fn canonicalize(wasm: &[u8]) -> (Vec<u8>, Summary) {
    validate(wasm).expect("test input validates");
    let mut summary = Summary::default();
    let out = rewrite(wasm, &mut summary).unwrap();
    validate(&out).expect("canonicalized output validates");
    (out, summary)
}

/// Calls export `name` of `wasm` with `args`; returns the single result.
fn call(wasm: &[u8], name: &str, args: &[Val]) -> Val {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let func = instance.get_func(&store, name).unwrap();
    let mut out = [Val::I32(0)];
    func.call(&mut store, args, &mut out).unwrap();
    out[0].clone()
}

fn f32_bits(v: &Val) -> u32 {
    match v {
        Val::F32(x) => x.to_bits(),
        other => panic!("expected f32, got {other:?}"),
    }
}

fn f64_bits(v: &Val) -> u64 {
    match v {
        Val::F64(x) => x.to_bits(),
        other => panic!("expected f64, got {other:?}"),
    }
}

fn v128_bits(v: &Val) -> u128 {
    match v {
        Val::V128(x) => x.as_u128(),
        other => panic!("expected v128, got {other:?}"),
    }
}

fn f32v(bits: u32) -> Val {
    Val::F32(wasmi::F32::from_bits(bits))
}

fn f64v(bits: u64) -> Val {
    Val::F64(wasmi::F64::from_bits(bits))
}

#[test]
fn f32_div_of_a_payload_nan_gives_the_canonical_nan() {
    let wasm = wat::parse_str(
        r#"(module (func (export "div") (param f32 f32) (result f32)
            (f32.div (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let (out, summary) = canonicalize(&wasm);
    assert_eq!(summary.nan_points, 1);
    let args = [f32v(PAYLOAD_F32), f32v(1.0f32.to_bits())];
    let plain = f32_bits(&call(&wasm, "div", &args));
    assert!(f32::from_bits(plain).is_nan());
    // x86-64 and aarch64 propagate the payload: the test input really is non-canonical here.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    assert_ne!(plain, CANONICAL_F32, "the host canonicalized on its own");
    assert_eq!(f32_bits(&call(&out, "div", &args)), CANONICAL_F32);
    // Non-NaN results are unchanged.
    let args = [f32v(7.5f32.to_bits()), f32v(2.5f32.to_bits())];
    assert_eq!(f32_bits(&call(&out, "div", &args)), 3.0f32.to_bits());
}

/// Every canonicalized scalar operation: a NaN result is canonical, other results are the
/// plain module's bits.
#[test]
fn every_scalar_operation_is_canonicalized() {
    let unary_f32 = ["sqrt", "ceil", "floor", "trunc", "nearest"];
    let binary = ["add", "sub", "mul", "div", "min", "max"];
    let mut funcs = String::new();
    for ty in ["f32", "f64"] {
        for op in binary {
            funcs += &format!(
                "(func (export \"{ty}.{op}\") (param {ty} {ty}) (result {ty}) \
                 ({ty}.{op} (local.get 0) (local.get 1)))\n"
            );
        }
        for op in unary_f32 {
            funcs += &format!(
                "(func (export \"{ty}.{op}\") (param {ty} {ty}) (result {ty}) \
                 ({ty}.{op} (local.get 0)))\n"
            );
        }
    }
    funcs += "(func (export \"f32.demote_f64\") (param f64 f64) (result f32) \
              (f32.demote_f64 (local.get 0)))\n";
    funcs += "(func (export \"f64.promote_f32\") (param f32 f32) (result f64) \
              (f64.promote_f32 (local.get 0)))\n";
    let wasm = wat::parse_str(format!("(module {funcs})")).unwrap();
    let (out, summary) = canonicalize(&wasm);
    assert_eq!(summary.nan_points, 24);

    let f32_inputs = [
        (PAYLOAD_F32, 1.0f32.to_bits()),
        (1.5f32.to_bits(), PAYLOAD_F32 | 0x8000_0000),
        (2.25f32.to_bits(), (-0.75f32).to_bits()),
        ((-3.5f32).to_bits(), 0.0f32.to_bits()),
    ];
    let f64_inputs = [
        (PAYLOAD_F64, 1.0f64.to_bits()),
        (1.5f64.to_bits(), PAYLOAD_F64 | 1 << 63),
        (2.25f64.to_bits(), (-0.75f64).to_bits()),
        ((-3.5f64).to_bits(), 0.0f64.to_bits()),
    ];
    let mut nan_results = 0;
    for name in binary.iter().chain(&unary_f32) {
        for &(a, b) in &f32_inputs {
            let name = format!("f32.{name}");
            let plain = f32_bits(&call(&wasm, &name, &[f32v(a), f32v(b)]));
            let got = f32_bits(&call(&out, &name, &[f32v(a), f32v(b)]));
            if f32::from_bits(plain).is_nan() {
                nan_results += 1;
                assert_eq!(got, CANONICAL_F32, "{name}({a:#x}, {b:#x})");
            } else {
                assert_eq!(got, plain, "{name}({a:#x}, {b:#x})");
            }
        }
        for &(a, b) in &f64_inputs {
            let name = format!("f64.{name}");
            let plain = f64_bits(&call(&wasm, &name, &[f64v(a), f64v(b)]));
            let got = f64_bits(&call(&out, &name, &[f64v(a), f64v(b)]));
            if f64::from_bits(plain).is_nan() {
                nan_results += 1;
                assert_eq!(got, CANONICAL_F64, "{name}({a:#x}, {b:#x})");
            } else {
                assert_eq!(got, plain, "{name}({a:#x}, {b:#x})");
            }
        }
    }
    // Per type: both NaN inputs of each binary operation, the NaN input of each unary one, and
    // sqrt(-3.5).
    assert_eq!(nan_results, 2 * (6 * 2 + 5 + 1));

    let demoted = call(&out, "f32.demote_f64", &[f64v(PAYLOAD_F64), f64v(0)]);
    assert_eq!(f32_bits(&demoted), CANONICAL_F32);
    let demoted = call(&out, "f32.demote_f64", &[f64v(0.5f64.to_bits()), f64v(0)]);
    assert_eq!(f32_bits(&demoted), 0.5f32.to_bits());
    let promoted = call(&out, "f64.promote_f32", &[f32v(PAYLOAD_F32), f32v(0)]);
    assert_eq!(f64_bits(&promoted), CANONICAL_F64);
    let promoted = call(&out, "f64.promote_f32", &[f32v(0.5f32.to_bits()), f32v(0)]);
    assert_eq!(f64_bits(&promoted), 0.5f64.to_bits());
}

#[test]
fn simd_lanes_are_canonicalized_one_by_one() {
    let wasm = wat::parse_str(
        r#"(module
            (func (export "f32x4.mul") (param v128 v128) (result v128)
              (f32x4.mul (local.get 0) (local.get 1)))
            (func (export "f64x2.sqrt") (param v128 v128) (result v128)
              (f64x2.sqrt (local.get 0))))"#,
    )
    .unwrap();
    let (out, summary) = canonicalize(&wasm);
    assert_eq!(summary.nan_points, 2);
    let lanes32 = |l: [u32; 4]| {
        let mut v = 0u128;
        for (i, x) in l.iter().enumerate() {
            v |= u128::from(*x) << (32 * i);
        }
        Val::V128(wasmi::V128::from(v))
    };
    let a = lanes32([PAYLOAD_F32, 2.0f32.to_bits(), 3.0f32.to_bits(), PAYLOAD_F32]);
    let b = lanes32([
        1.0f32.to_bits(),
        4.0f32.to_bits(),
        PAYLOAD_F32,
        5.0f32.to_bits(),
    ]);
    let got = v128_bits(&call(&out, "f32x4.mul", &[a, b]));
    let lane = |i: u32| (got >> (32 * i)) as u32;
    assert_eq!(lane(0), CANONICAL_F32);
    assert_eq!(lane(1), 8.0f32.to_bits());
    assert_eq!(lane(2), CANONICAL_F32);
    assert_eq!(lane(3), CANONICAL_F32);

    let a = Val::V128(wasmi::V128::from(
        u128::from(PAYLOAD_F64) | u128::from(16.0f64.to_bits()) << 64,
    ));
    let got = v128_bits(&call(&out, "f64x2.sqrt", &[a, Val::V128(0u128.into())]));
    assert_eq!(got as u64, CANONICAL_F64);
    assert_eq!((got >> 64) as u64, 4.0f64.to_bits());
}

#[test]
fn bit_exact_operations_are_left_alone() {
    let wasm = wat::parse_str(
        r#"(module (func (export "f") (param f32 f64) (result f32)
            (f32.copysign (f32.neg (f32.abs (local.get 0)))
                          (f32.reinterpret_i32 (i32.const 1)))
            (drop (f64.neg (local.get 1)))))"#,
    )
    .unwrap();
    let (out, summary) = canonicalize(&wasm);
    assert_eq!(summary.nan_points, 0);
    assert_eq!(out.len(), wasm.len(), "an untouched module keeps its size");
    // The payload passes through untouched (sign cleared by copysign with +).
    let got = f32_bits(&call(&out, "f", &[f32v(PAYLOAD_F32), f64v(0)]));
    assert_eq!(got, PAYLOAD_F32);
}

#[test]
fn scratch_locals_follow_parameters_and_declared_locals() {
    // Parameters, declared locals of several types, and float ops in unreachable code.
    let wasm = wat::parse_str(
        r#"(module (func (export "f") (param i32 f32) (result f32) (local i64 f64 v128)
            (local.set 3 (f64.add (f64.const 1) (f64.promote_f32 (local.get 1))))
            (local.set 4 (f32x4.splat (local.get 1)))
            (if (i32.eqz (local.get 0)) (then (return (f32.div (local.get 1) (local.get 1)))))
            (f32.demote_f64 (local.get 3))
            return
            (drop (f64.sqrt (f64.const -1)))))"#,
    )
    .unwrap();
    let (out, summary) = canonicalize(&wasm);
    assert_eq!(summary.nan_points, 5);
    let zero = f32v(0);
    assert_eq!(
        f32_bits(&call(&out, "f", &[Val::I32(0), zero])),
        CANONICAL_F32
    );
    let got = f32_bits(&call(&out, "f", &[Val::I32(1), f32v(2.0f32.to_bits())]));
    assert_eq!(got, 3.0f32.to_bits());
}

#[test]
fn the_pipeline_canonicalizes_by_default_and_can_be_told_not_to() {
    let wasm = wat::parse_str(
        r#"(module (func (export "f") (param f64 f64) (result f64)
            (f64.add (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let config = Config::generic().stable(StableMode::Syscall);
    let on = instrument(&wasm, &config).unwrap();
    let off = instrument(&wasm, &config.clone().nan_canonicalization(false)).unwrap();
    assert_eq!(on.summary.nan_points, 1);
    assert_eq!(off.summary.nan_points, 0);
    // Metering runs first: both count the same instructions. Run each with a budget.
    let run = |wasm: &[u8]| {
        let engine = Engine::default();
        let module = Module::new(&engine, wasm).unwrap();
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::<()>::new(&engine);
        linker
            .func_wrap(
                "canister_vm",
                "trap",
                |_: i32| -> Result<(), wasmi::Error> { Err(wasmi::Error::i32_exit(1)) },
            )
            .unwrap();
        let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
        let counter = instance
            .get_global(&store, super::super::names::COUNTER)
            .unwrap();
        counter.set(&mut store, Val::I64(1_000)).unwrap();
        let func = instance.get_func(&store, "f").unwrap();
        let mut out = [Val::I32(0)];
        func.call(&mut store, &[f64v(PAYLOAD_F64), f64v(0)], &mut out)
            .unwrap();
        (f64_bits(&out[0]), counter.get(&store).i64())
    };
    let (bits_on, left_on) = run(&on.wasm);
    let (_, left_off) = run(&off.wasm);
    assert_eq!(bits_on, CANONICAL_F64);
    assert_eq!(left_on, left_off, "the injected code is not metered");
}

/// Inline sequence vs a call to a helper, on a loop of 10 M `f64.add`s. Run with
/// `cargo test --lib nan::tests::measure -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_inline_vs_call() {
    let body = |canon: &str| {
        format!(
            r#"(module
            (func $canon (param f64) (result f64)
              (select (f64.const nan) (local.get 0)
                      (f64.ne (local.get 0) (local.get 0))))
            (func (export "run") (param i32) (result f64) (local f64 f64)
              (loop $l
                (local.set 1 {canon})
                (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
              (local.get 1)))"#
        )
    };
    let add = "(f64.add (local.get 1) (f64.const 1))";
    let variants = [
        ("none", body(add)),
        (
            "inline",
            body(&format!(
                "(select (local.tee 2 {add}) (f64.const nan) \
                 (f64.eq (local.get 2) (local.get 2)))"
            )),
        ),
        ("call", body(&format!("(call $canon {add})"))),
    ];
    for (name, text) in variants {
        let wasm = wat::parse_str(&text).unwrap();
        let start = std::time::Instant::now();
        call(&wasm, "run", &[Val::I32(10_000_000)]);
        println!("{name}: {:?}", start.elapsed());
    }
}
