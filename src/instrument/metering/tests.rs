//! Tests of the metering pass: instrumented WAT runs on wasmi with a host `canister_vm.trap` that
//! exits with the trap code.

use wasmi::{Linker, Module, Store, Val};

use super::super::{Config, InjectedTrap, InstrumentError, Summary, instrument, names, validate};
use super::{MeteringError, START_BUDGET, rewrite};

/// Instruments `wat` with the metering pass only; the output must validate.
fn meter(wat: &str) -> Vec<u8> {
    let wasm = wat::parse_str(wat).unwrap();
    validate(&wasm).expect("test input validates");
    let out = rewrite(&wasm, &mut Summary::default()).unwrap();
    validate(&out).expect("metered output validates");
    out
}

/// The outcome of calling an export with a budget.
#[derive(Debug)]
struct Run {
    results: Result<Vec<Val>, wasmi::Error>,
    /// The counter after the call.
    counter: i64,
    /// Instructions used: budget - counter.
    used: i64,
}

impl Run {
    fn trap_code(&self) -> Option<i32> {
        self.results
            .as_ref()
            .err()
            .and_then(|e| e.i32_exit_status())
    }
    fn hit_limit(&self) -> bool {
        self.trap_code() == Some(InjectedTrap::InstructionLimit.code())
    }
    fn i32(&self) -> i32 {
        match self.results.as_ref().unwrap()[..] {
            [Val::I32(v)] => v,
            ref other => panic!("expected one i32, got {other:?}"),
        }
    }
}

/// A linker with `canister_vm.trap` (exits with the code) and `env.double` (for import tests).
fn linker(engine: &wasmi::Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(
            names::HOST_MODULE,
            "trap",
            |code: i32| -> Result<(), wasmi::Error> { Err(wasmi::Error::i32_exit(code)) },
        )
        .unwrap();
    linker
        .func_wrap("env", "double", |x: i32| -> i32 { 2 * x })
        .unwrap();
    linker
}

/// Instantiates `wasm`, sets the counter to `budget` and calls `export` with `args`.
fn run(wasm: &[u8], budget: i64, export: &str, args: &[Val]) -> Run {
    let engine = crate::runtime::engine::new_engine();
    let module = Module::new(&engine, wasm).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    // Unmetered modules (timing baselines) have no counter.
    let counter = instance.get_global(&store, names::COUNTER);
    if let Some(counter) = counter {
        counter.set(&mut store, Val::I64(budget)).unwrap();
    }
    let func = instance.get_func(&store, export).unwrap();
    let mut results: Vec<Val> = func
        .ty(&store)
        .results()
        .iter()
        .map(|t| Val::default_for_ty(*t))
        .collect();
    let results = func.call(&mut store, args, &mut results).map(|()| results);
    let counter = match counter.map(|c| c.get(&store)) {
        Some(Val::I64(v)) => v,
        None => budget,
        other => panic!("counter is {other:?}"),
    };
    Run {
        results,
        counter,
        used: budget - counter,
    }
}

const BIG: i64 = 1_000_000_000;

/// The instructions `export(args)` uses with a large budget.
fn cost(wasm: &[u8], export: &str, args: &[Val]) -> i64 {
    let r = run(wasm, BIG, export, args);
    assert!(r.results.is_ok(), "{export}{args:?}: {:?}", r.results);
    r.used
}

#[test]
fn output_validates_for_assorted_modules() {
    for wat in [
        "(module)",
        "(module (memory 1))",
        "(module (func))",
        r#"(module (import "env" "f" (func)) (func (call 0)) (export "f" (func 1)))"#,
        r#"(module (global (export "g") i32 (i32.const 1)) (func (result i32) (global.get 0)))"#,
        "(module (memory i64 1) (func (memory.fill (i64.const 0) (i32.const 0) (i64.const 8))))",
        "(module (memory 1) (memory i64 1)
           (func (memory.copy 0 1 (i32.const 0) (i64.const 0) (i32.const 8))
                 (memory.copy 1 1 (i64.const 0) (i64.const 0) (i64.const 8))))",
        "(module (table 1 funcref) (table i64 2 funcref)
           (func (table.fill 1 (i64.const 0) (ref.null func) (i64.const 1))
                 (table.copy 0 1 (i32.const 0) (i64.const 0) (i32.const 1))))",
        "(module (func (result i32) (unreachable) (memory.size) (memory.fill)) (memory 1))",
        "(module (func (block (br 0) (i32.const 1) (drop)) (loop (br 0)) (unreachable)))",
        "(module (func $f (return_call $f)) (func $g (param i32) (return_call_indirect (param i32) (local.get 0) (i32.const 0))) (table 1 funcref))",
        "(module (func (param v128) (result v128) (f32x4.div (local.get 0) (local.get 0))))",
    ] {
        meter(wat);
    }
}

#[test]
fn the_pass_is_deterministic() {
    let wat = "(module (memory 1) (func (export \"f\") (param i32) (result i32)
        (loop (br_if 0 (local.get 0))) (memory.fill (i32.const 0) (i32.const 0) (local.get 0))
        (i32.div_u (local.get 0) (i32.const 3))))";
    assert_eq!(meter(wat), meter(wat));
}

#[test]
fn straight_line_cost_is_the_sum_of_the_table() {
    let wasm = meter(
        r#"(module
            (global $g (mut i32) (i32.const 40))
            (func $seven (result i32) (i32.const 7))                   ;; entry 1 + 1
            (func (export "f") (result i32)                            ;; entry 1
              (i32.add (global.get $g) (i32.const 2))                  ;; 2 + 1 + 1
              (i32.div_u (call $seven) (i32.const 1))                  ;; 5 + 1 + 10
              (i32.add))                                               ;; 1
            (func (export "empty")))"#,
    );
    let r = run(&wasm, 1000, "f", &[]);
    assert_eq!(r.i32(), 49);
    assert_eq!(r.used, 1 + (2 + 1 + 1) + (5 + 1 + 10) + 1 + (1 + 1));
    // Even an empty function costs its entry.
    assert_eq!(cost(&wasm, "empty", &[]), 1);
}

#[test]
fn branches_charge_only_the_arm_taken_and_skip_dead_code() {
    let wasm = meter(
        r#"(module
            (func (export "f") (param i32) (result i32)
              (if (result i32) (local.get 0)                 ;; entry 1 + 1 + 2
                (then (i32.add (i32.const 1) (i32.const 2))) ;; 3
                (else (i32.const 9)))                        ;; 1
              (block
                (br 0)                                       ;; 2
                (drop (i32.const 5)) (drop (i32.const 6)))   ;; dead
              ))"#,
    );
    assert_eq!(cost(&wasm, "f", &[Val::I32(1)]), 4 + 3 + 2);
    assert_eq!(cost(&wasm, "f", &[Val::I32(0)]), 4 + 1 + 2);
}

#[test]
fn a_loop_costs_a_linear_function_of_its_iterations() {
    let wasm = meter(
        r#"(module
            (func (export "count") (param $n i32) (result i32)
              (local $acc i32)
              (loop $l
                (local.set $acc (i32.add (local.get $acc) (i32.const 3)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br_if $l (local.get $n)))
              (local.get $acc)))"#,
    );
    // Entry: 1; loop body: 4 + 4 + (1 + 2) = 11 per iteration; after the loop: local.get = 1.
    for n in [1, 2, 3, 10, 1000, 100_000] {
        let r = run(&wasm, BIG, "count", &[Val::I32(n)]);
        assert_eq!(r.i32(), 3 * n);
        assert_eq!(r.used, 1 + 11 * i64::from(n) + 1, "n = {n}");
    }
}

#[test]
fn an_infinite_loop_traps_with_the_instruction_limit() {
    let wasm = meter(
        r#"(module
            (func (export "spin") (loop (br 0)))
            (func (export "nested") (loop $a (loop $b) (br $a)))
            (func $rec (export "recurse") (call $rec)))"#,
    );
    for export in ["spin", "nested", "recurse"] {
        let r = run(&wasm, 1000, export, &[]);
        assert!(r.hit_limit(), "{export}: {:?}", r.results);
        assert!(r.counter < 0, "{export}: {}", r.counter);
    }
}

#[test]
fn the_counter_overshoots_by_less_than_one_block() {
    let wasm = meter(
        r#"(module
            (func (export "spin") (param $x i32)
              (loop $l                                      ;; body: 4 + 4 + 2 = 10
                (local.set $x (i32.mul (local.get $x) (i32.const 3)))
                (local.set $x (i32.xor (local.get $x) (i32.const 5)))
                (br $l))))"#,
    );
    for budget in 0..30 {
        let r = run(&wasm, budget, "spin", &[Val::I32(1)]);
        assert!(r.hit_limit(), "budget {budget}: {:?}", r.results);
        assert!(
            (-10..0).contains(&r.counter),
            "budget {budget}: {}",
            r.counter
        );
        // The trap comes at the entry (cost 1) or at the first iteration that drives the
        // counter below zero.
        let expected = if budget == 0 {
            1
        } else {
            1 + ((budget - 1) / 10 + 1) * 10
        };
        assert_eq!(r.used, expected, "budget {budget}");
    }
}

#[test]
fn loop_free_call_free_functions_have_no_entry_check() {
    let wat = r#"(module
        (func $leaf (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))   ;; 1 + 3
        (func (export "spin") (param $x i32)                          ;; entry 1
          (loop $l                                                    ;; 1 + 5 + 1 + 2 = 9
            (local.set $x (call $leaf (local.get $x)))
            (br $l))))"#;
    let mut summary = Summary::default();
    rewrite(&wat::parse_str(wat).unwrap(), &mut summary).unwrap();
    // The leaf's charge; spin's entry charge and check, and its loop header's.
    assert_eq!(summary.metering_points, 5);
    let wasm = meter(wat);
    for budget in 0..40 {
        let r = run(&wasm, budget, "spin", &[Val::I32(1)]);
        assert!(r.hit_limit(), "budget {budget}: {:?}", r.results);
        // The leaf's charge may come after the loop header's check: one iteration at most.
        assert!(
            (-13..0).contains(&r.counter),
            "budget {budget}: {}",
            r.counter
        );
    }
}

/// A module whose function `f` has `locals` i64 locals besides its i32 parameter and runs `body`.
fn many_locals(locals: u32, body: &str) -> String {
    format!(
        r#"(module (memory 1) (func (export "f") (param i32) (local {}) {body}))"#,
        "i64 ".repeat(locals as usize)
    )
}

#[test]
fn functions_at_the_locals_limit() {
    // Bulk operators need a scratch local: no room is an error, not an invalid module.
    let fill = "(memory.fill (i32.const 0) (i32.const 0) (local.get 0))";
    let wasm = wat::parse_str(many_locals(49_999, fill)).unwrap();
    let err = rewrite(&wasm, &mut Summary::default()).unwrap_err();
    assert!(
        matches!(&err, InstrumentError::Metering(e) if matches!(**e, MeteringError::TooManyLocals { .. })),
        "{err}"
    );
    meter(&many_locals(49_998, fill));
    // Checks do without their scratch local (wasmi refuses to run so many locals; the output
    // validates).
    meter(&many_locals(49_999, "(loop (br 0))"));
}

#[test]
fn bulk_operators_charge_their_length() {
    let wasm = meter(
        r#"(module
            (memory $m 1)
            (memory $w i64 1)
            (table $t 100 funcref)
            (table $u i64 100 funcref)
            (data $d "0123456789abcdef")
            (elem $e func $f $f $f $f $f $f $f $f)
            (func $f)
            (func (export "fill") (param i32)
              (memory.fill $m (i32.const 0) (i32.const 7) (local.get 0)))
            (func (export "copy") (param i32)
              (memory.copy $m $m (i32.const 100) (i32.const 0) (local.get 0)))
            (func (export "init") (param i32)
              (memory.init $m $d (i32.const 0) (i32.const 0) (local.get 0)))
            (func (export "fill64") (param i32)
              (memory.fill $w (i64.const 0) (i32.const 7) (i64.extend_i32_u (local.get 0))))
            (func (export "copy64") (param i32)
              (memory.copy $m $w (i32.const 0) (i64.const 0) (local.get 0)))
            (func (export "table_fill") (param i32)
              (table.fill $u (i64.const 0) (ref.null func) (i64.extend_i32_u (local.get 0))))
            (func (export "table_copy") (param i32)
              (table.copy $t $t (i32.const 10) (i32.const 0) (local.get 0)))
            (func (export "table_init") (param i32)
              (table.init $t $e (i32.const 0) (i32.const 0) (local.get 0))))"#,
    );
    for export in [
        "fill",
        "copy",
        "init",
        "fill64",
        "copy64",
        "table_fill",
        "table_copy",
        "table_init",
    ] {
        let base = cost(&wasm, export, &[Val::I32(0)]);
        for len in [1, 5, 8] {
            assert_eq!(
                cost(&wasm, export, &[Val::I32(len)]),
                base + i64::from(len),
                "{export}({len})"
            );
        }
    }
    // A large fill: charged before it runs, so a small budget traps without filling.
    let r = run(&wasm, 1000, "fill", &[Val::I32(60_000)]);
    assert!(r.hit_limit(), "{:?}", r.results);
    let base = cost(&wasm, "fill", &[Val::I32(0)]);
    assert_eq!(cost(&wasm, "fill", &[Val::I32(60_000)]), base + 60_000);
}

#[test]
fn a_64_bit_length_above_i64_max_traps_as_the_limit() {
    let wasm = meter(
        r#"(module (memory i64 1)
            (func (export "f") (memory.fill (i64.const 0) (i32.const 0) (i64.const -1))))"#,
    );
    let r = run(&wasm, BIG, "f", &[]);
    assert!(r.hit_limit(), "{:?}", r.results);
}

const REMAP: &str = r#"(module
    (import "env" "double" (func $double (param i32) (result i32)))
    (type $t (func (result i32)))
    (table 4 funcref)
    (global $started (mut i32) (i32.const 0))
    (global $fref funcref (ref.func $five))
    (elem (i32.const 0) $five $six)
    (elem declare func $seven)
    (func $five (type $t) (i32.const 5))
    (func $six (type $t) (call $double (i32.const 3)))
    (func $seven (type $t) (i32.const 7))
    (func $start (global.set $started (i32.const 1)))
    (start $start)
    (func (export "started") (result i32) (global.get $started))
    (func (export "indirect") (param i32) (result i32)
      (call_indirect (type $t) (local.get 0)))
    (func (export "via_ref") (result i32)
      (table.set (i32.const 2) (ref.func $seven))
      (call_indirect (type $t) (i32.const 2)))
    (func (export "via_global") (result i32)
      (table.set (i32.const 3) (global.get $fref))
      (call_indirect (type $t) (i32.const 3)))
    (func (export "direct") (result i32) (call $double (call $six)))
    (export "five" (func $five)))"#;

#[test]
fn function_indices_are_remapped_when_the_trap_import_is_added() {
    let plain = wat::parse_str(REMAP).unwrap();
    let metered = meter(REMAP);
    let results = |wasm: &[u8]| -> Vec<i32> {
        let engine = crate::runtime::engine::new_engine();
        let module = Module::new(&engine, wasm).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker(&engine)
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        let mut out = Vec::new();
        for (export, args) in [
            ("started", vec![]),
            ("indirect", vec![Val::I32(0)]),
            ("indirect", vec![Val::I32(1)]),
            ("via_ref", vec![]),
            ("via_global", vec![]),
            ("direct", vec![]),
            ("five", vec![]),
        ] {
            let func = instance.get_func(&store, export).unwrap();
            let mut res = [Val::I32(0)];
            func.call(&mut store, &args, &mut res).unwrap();
            out.push(match res[0] {
                Val::I32(v) => v,
                _ => unreachable!(),
            });
        }
        out
    };
    assert_eq!(results(&plain), [1, 5, 6, 7, 5, 12, 5]);
    assert_eq!(results(&metered), results(&plain));

    // The import is appended after the existing one, and the name section follows the shift.
    let mut imports = Vec::new();
    let mut function_names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&metered) {
        match payload.unwrap() {
            wasmparser::Payload::ImportSection(r) => {
                for i in r {
                    let i = i.unwrap();
                    imports.push(format!("{}.{}", i.module, i.name));
                }
            }
            wasmparser::Payload::CustomSection(c) => {
                if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                    for n in names {
                        if let wasmparser::Name::Function(map) = n.unwrap() {
                            for naming in map {
                                let naming = naming.unwrap();
                                function_names.push((naming.index, naming.name.to_string()));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(imports, ["env.double", "canister_vm.trap"]);
    assert!(function_names.contains(&(0, "double".into())));
    assert!(function_names.contains(&(2, "five".into())));
    assert!(function_names.contains(&(5, "start".into())));
}

#[test]
fn an_existing_trap_import_is_reused() {
    let wasm = meter(
        r#"(module
            (import "canister_vm" "trap" (func $trap (param i32)))
            (func (export "spin") (loop (br 0))))"#,
    );
    let mut imports = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::ImportSection(r) = payload.unwrap() {
            imports += r.count();
        }
    }
    assert_eq!(imports, 1);
    assert!(run(&wasm, 100, "spin", &[]).hit_limit());

    // Found by signature, whichever of two identical types it uses.
    let wasm = meter(
        r#"(module
            (type $a (func (param i32)))
            (type $b (func (param i32)))
            (import "canister_vm" "trap" (func $trap (type $b)))
            (func $f (type $a))
            (func (export "spin") (loop (br 0))))"#,
    );
    let mut imports = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::ImportSection(r) = payload.unwrap() {
            imports += r.count();
        }
    }
    assert_eq!(imports, 1);
    assert!(run(&wasm, 100, "spin", &[]).hit_limit());
}

#[test]
fn the_counter_starts_at_the_start_budget() {
    let wasm = meter(
        r#"(module (global $c (mut i64) (i64.const 0))
            (func $s (global.set $c (i64.const 1))) (start $s) (func (export "f")))"#,
    );
    let engine = crate::runtime::engine::new_engine();
    let module = Module::new(&engine, &wasm[..]).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let counter = instance.get_global(&store, names::COUNTER).unwrap();
    // The start function ran metered: entry + i64.const + global.set.
    assert!(matches!(counter.get(&store), Val::I64(v) if v == START_BUDGET - 4));
}

#[test]
fn a_module_exporting_the_counter_name_is_rejected() {
    let wasm = wat::parse_str(
        r#"(module (global (export "canister counter_instructions") i64 (i64.const 0)))"#,
    )
    .unwrap();
    let err = rewrite(&wasm, &mut Summary::default()).unwrap_err();
    assert!(
        matches!(&err, InstrumentError::Metering(e) if matches!(**e, MeteringError::ReservedExport { .. })),
        "{err}"
    );
}

#[test]
fn metering_points_are_counted() {
    let wasm = wat::parse_str(
        r#"(module (memory 1)
            (func (param i32) (loop (br_if 0 (local.get 0)))
              (memory.fill (i32.const 0) (i32.const 0) (local.get 0))))"#,
    )
    .unwrap();
    let mut summary = Summary::default();
    rewrite(&wasm, &mut summary).unwrap();
    // Entry charge and check; loop header charge and check; the charge of the segment after
    // `br_if`; the fill's dynamic charge.
    assert_eq!(summary.metering_points, 6);
}

#[test]
fn generic_config_meters_any_module_and_skips_canister_rules() {
    let wasm = wat::parse_str(
        r#"(module
            (import "spectest" "global_i32" (global i32))
            (import "spectest" "table" (table 10 funcref))
            (import "spectest" "print_i32" (func (param i32)))
            (func (export "canister_bogus") (param i32) (call 0 (local.get 0))))"#,
    )
    .unwrap();
    let out = instrument(&wasm, &Config::generic()).unwrap();
    validate(&out.wasm).unwrap();
    assert!(out.summary.metering_points > 0);
    assert!(
        validate(&out.wasm)
            .unwrap()
            .exports
            .contains(&names::COUNTER.to_string())
    );
    // The same module is not a canister.
    assert!(instrument(&wasm, &Config::default()).is_err());
}

#[test]
fn metering_off_adds_no_counter() {
    let wasm = wat::parse_str(r#"(module (func (export "canister_update f")))"#).unwrap();
    let config = Config::default()
        .metering(false)
        .stable(super::super::StableMode::Syscall);
    let out = instrument(&wasm, &config).unwrap();
    assert!(
        !validate(&out.wasm)
            .unwrap()
            .exports
            .contains(&names::COUNTER.to_string())
    );
    assert_eq!(out.summary.metering_points, 0);
}

#[test]
fn only_branch_targets_start_segments() {
    // Two untargeted blocks and a loop end, with no call before them: the entry segment goes
    // on past the blocks, and the loop body's past the loop's end.
    let wasm = wat::parse_str(
        r#"(module (func (export "f") (result i32)
            (block (nop)) (block (nop)) (loop (nop)) (i32.const 1)))"#,
    )
    .unwrap();
    let mut summary = Summary::default();
    let out = rewrite(&wasm, &mut summary).unwrap();
    // Entry charge + check (1 + 1 + 1); the loop header's charge + check (1 + 1).
    assert_eq!(summary.metering_points, 4);
    assert_eq!(cost(&out, "f", &[]), 5);

    // Targeted blocks, by br_if and by br_table: the code after them is charged separately.
    let wasm = meter(
        r#"(module (func (export "f") (param i32) (result i32)
            (block $a
              (block $b
                (block $c (br_table $a $b $c (local.get 0)))   ;; entry 1 + 1 + 2
                (return (i32.const 30)))                         ;; 2
              (return (i32.const 20)))                           ;; 2
            (br_if 0 (i32.const 10) (i32.const 1))               ;; 4
            (drop) (i32.const 11)))                              ;; 2"#,
    );
    assert_eq!(run(&wasm, BIG, "f", &[Val::I32(2)]).i32(), 30);
    assert_eq!(cost(&wasm, "f", &[Val::I32(2)]), 6);
    assert_eq!(cost(&wasm, "f", &[Val::I32(1)]), 6);
    assert_eq!(run(&wasm, BIG, "f", &[Val::I32(0)]).i32(), 10);
    assert_eq!(cost(&wasm, "f", &[Val::I32(0)]), 8);

    // After a call, an untargeted block's end starts a segment, as the replica's blocks do:
    // `performance_counter`-like observers see only what ran (the callee reads the counter).
    let wasm = wat::parse_str(
        r#"(module (func $g) (func (export "f") (result i32)
            (block (call $g)) (i32.const 1) (drop) (block (nop)) (i32.const 2)))"#,
    )
    .unwrap();
    let mut summary = Summary::default();
    let out = rewrite(&wasm, &mut summary).unwrap();
    // $g: charge (no check: a leaf); f: entry charge + check (1 + 5), the charge after the
    // first block's end (1 + 1 + 1 + 1, the second block merged: nothing observes after it).
    assert_eq!(summary.metering_points, 4);
    assert_eq!(cost(&out, "f", &[]), 1 + 6 + 4);
}
