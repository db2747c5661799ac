//! Faults of the wasmi 2.0.0 engine (issue 14, fault 1): each repro of `../shared/repro/` runs
//! on plain wasmi (the `wasmi` crate with canister-vm's engine configuration) and, where it
//! applies, inside a metered canister. `vendor/README.md` lists the fixes.
//!
//! Tests that would abort the process without their fix (a host stack overflow cannot be caught)
//! run their body in a child process: the test re-executes this binary for itself with
//! [`CHILD`] set and checks how the child ended, so a regression fails that one test instead of
//! killing the whole test binary. Engine panics caught at the engine seam are tested next to the
//! seam (`src/runtime/engine.rs`, `src/runtime/canister.rs`).

use std::process::Command;

use canister_vm::runtime::engine::{engine_config, new_engine};
use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};

const EMPTY: &[u8] = b"DIDL\0\0";

/// Set in the environment of a child process that runs one test's body.
const CHILD: &str = "CANISTER_VM_ENGINE_FAULTS_CHILD";

/// The stack of the thread that runs engine work in the host-stack tests: the size of a default
/// test thread, fixed so that the result does not depend on `RUST_MIN_STACK`.
const STACK: usize = 2 << 20;

/// `wasmi-select-miscompile.wat` as the body of `f (param $p i32) (result i32)`: `select 1 x
/// (i32.eqz x)` after two local copies with an i64 computation between them. f(0) must be 1.
const SELECT_MISCOMPILE: &str = r#"
    (local $a i32) (local $x i32) (local $t i64)
    local.get $p
    local.set $a
    local.get $t        ;; any non-constant i64 computation between the two copies
    i64.const 19
    i64.sub
    drop
    local.get $a
    local.set $x
    i32.const 1
    local.get $x
    local.get $x
    i32.eqz
    select"#;

/// `metered-divzero-small.wat` as a body: the shape a metering charge creates (a global i64
/// decrement between the copies). f(0) = 5 / 1; the bug divided by the wrong select, 0.
const METERED_DIVZERO: &str = r#"
    (local i32 i32)
    local.get $p
    local.set 1
    global.get $g
    i64.const 19
    i64.sub
    global.set $g
    local.get 1
    local.set 2
    i32.const 5
    i32.const 1
    local.get 2
    local.get 2
    i32.eqz
    select
    i32.div_u"#;

/// The smallest form of `wasmi-panic-plain-2048495.wasm` as a body: an integer store whose
/// pointer and value are one local held in wasmi's integer register, with an offset too large
/// for the short store forms. wasmi 2.0.0's translator hit `unreachable!()` on it.
const STORE_ONE_REGISTER: &str = r#"
    (local $x i32)
    (local.set $x (i32.add (local.get $p) (i32.const 1)))
    (i32.store offset=70000 (local.get $x) (local.get $x))
    (i32.load offset=70000 (local.get $x))"#;

/// A body with `$p` iterations of dynamic-address stores and a failing `memory.grow`: on
/// wasmi's tail-call dispatch as canister-vm built it, each of these left a host stack frame
/// behind until the call returned.
const STORE_AND_GROW_LOOP: &str = r#"
    (local $addr i32)
    (loop $l
      (i32.store (local.get $addr) (local.get $p))
      (i64.store offset=8 (local.get $addr) (i64.const 7))
      (drop (memory.grow (i32.const 1)))
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (br_if $l (local.get $p)))
    (i32.load (local.get $addr))"#;

/// `wasmi-host-stack-overflow.wat`, verbatim: `f1(8, 1587878272)` aborted the host.
const HOST_STACK_OVERFLOW: &str = include_str!("engine_faults/wasmi-host-stack-overflow.wat");

/// `wasmi-panic-plain-2048495.wasm`, verbatim: wasmi's translator panicked compiling it.
const TRANSLATOR_PANIC: &[u8] = include_bytes!("engine_faults/wasmi-panic-plain-2048495.wasm");

/// A module exporting `f (param $p i32) (result i32)` with `body`, a 2-page memory (maximum 3)
/// and a mutable i64 global `$g`.
fn module(body: &str) -> String {
    format!(
        r#"(module
          (memory 2 3)
          (global $g (mut i64) (i64.const 1000000))
          (func (export "f") (param $p i32) (result i32) {body}))"#
    )
}

/// A canister with `f` as in [`module`], whose update `m` replies with the 4 little-endian
/// bytes of `f(arg)` (stored at heap address 0) and whose query `get` replies with those bytes.
fn canister(body: &str, arg: i32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
          (import "ic0" "msg_reply" (func $reply))
          (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
          (memory 2 3)
          (global $g (mut i64) (i64.const 1000000))
          (func $f (param $p i32) (result i32) {body})
          (func (export "canister_update m")
            (i32.store (i32.const 0) (call $f (i32.const {arg})))
            (call $append (i32.const 0) (i32.const 4))
            (call $reply))
          (func (export "canister_query get")
            (call $append (i32.const 0) (i32.const 4))
            (call $reply)))"#
    ))
    .unwrap()
}

/// Instantiates `wasm` on plain wasmi.
fn plain(wasm: &[u8]) -> (wasmi::Store<()>, wasmi::Instance) {
    let engine = new_engine();
    let module = wasmi::Module::new(&engine, wasm).expect("the module compiles");
    let mut store = wasmi::Store::new(&engine, ());
    let instance = wasmi::Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    (store, instance)
}

/// Calls `f(arg)` of [`module`]`(body)` on plain wasmi.
fn plain_call(body: &str, arg: i32) -> Result<i32, wasmi::Error> {
    let (mut store, instance) = plain(&wat::parse_str(module(body)).unwrap());
    let f = instance.get_typed_func::<i32, i32>(&store, "f").unwrap();
    f.call(&mut store, arg)
}

/// Installs `wasm` as a metered canister (the default configuration) and runs its init.
fn install(wasm: Vec<u8>) -> Canister {
    let mut c = Canister::create(
        wasm,
        CanisterConfig::default(),
        candid::Principal::from_slice(&[4]),
    )
    .expect("the module installs");
    c.init(EMPTY, &MessageInput::default())
        .unwrap()
        .result
        .unwrap();
    c
}

/// The reply of update `m` as an i32, or the reject message.
fn call_m(c: &mut Canister) -> Result<i32, String> {
    let outcome = c.update("m", EMPTY, &MessageInput::default()).unwrap();
    outcome
        .result
        .map(|bytes| i32::from_le_bytes(bytes[..4].try_into().unwrap()))
        .map_err(|reject| reject.message)
}

/// The reply of query `get` (the committed heap's first 4 bytes).
fn query_get(c: &mut Canister) -> Vec<u8> {
    c.query("get", EMPTY, &MessageInput::default())
        .unwrap()
        .result
        .unwrap()
}

/// Runs `body` on a thread with a [`STACK`]-byte stack.
fn on_small_stack<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(body)
        .unwrap()
        .join()
        .expect("the engine thread returns")
}

/// Whether this process is a child that runs one test's body (see the module docs).
fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs test `name` (its path in this binary) in a child process and asserts that the child's
/// test passed; a child that died (a host stack overflow aborts with SIGABRT) fails it.
fn run_in_child(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "test {name} in a child process ended with {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn select_after_local_copies_is_right_on_plain_wasmi() {
    assert_eq!(plain_call(SELECT_MISCOMPILE, 0).unwrap(), 1);
    assert_eq!(plain_call(SELECT_MISCOMPILE, 7).unwrap(), 7);
    assert_eq!(plain_call(SELECT_MISCOMPILE, -1).unwrap(), -1);
}

#[test]
fn the_metered_select_shape_does_not_divide_by_zero_on_plain_wasmi() {
    assert_eq!(plain_call(METERED_DIVZERO, 0).unwrap(), 5);
    assert_eq!(plain_call(METERED_DIVZERO, 2).unwrap(), 2);
    assert_eq!(plain_call(METERED_DIVZERO, 6).unwrap(), 0);
}

#[test]
fn a_select_fused_with_a_zero_test_reads_that_test_for_every_value_type() {
    // The integer register holds -19 (an i64 computation) when `select` runs; the zero test's
    // input `$x` is in a slot.
    for ty in ["i32", "i64", "f32", "f64"] {
        let (to, back) = match ty {
            "i32" => ("", ""),
            "i64" => ("i64.extend_i32_s", "i32.wrap_i64"),
            "f32" => ("f32.convert_i32_s", "i32.trunc_f32_s"),
            _ => ("f64.convert_i32_s", "i32.trunc_f64_s"),
        };
        for (test, when_0, when_3) in [("i32.eqz", 100, 3), ("i32.const 0 i32.ne", 0, 100)] {
            let body = format!(
                r#"(local $a i32) (local $x i32) (local $t i64)
                local.get $p
                local.set $a
                local.get $t
                i64.const 19
                i64.sub
                drop
                local.get $a
                local.set $x
                i32.const 100 {to}
                local.get $x {to}
                local.get $x
                {test}
                select
                {back}"#
            );
            assert_eq!(
                plain_call(&body, 0).unwrap(),
                when_0,
                "{ty} select, {test}, x = 0"
            );
            assert_eq!(
                plain_call(&body, 3).unwrap(),
                when_3,
                "{ty} select, {test}, x = 3"
            );
        }
    }
}

#[test]
fn metered_canisters_compute_the_select_right() {
    let mut c = install(canister(SELECT_MISCOMPILE, 0));
    assert_eq!(call_m(&mut c), Ok(1));
    assert_eq!(query_get(&mut c), 1i32.to_le_bytes(), "the committed heap");

    let mut c = install(canister(METERED_DIVZERO, 0));
    assert_eq!(call_m(&mut c), Ok(5), "no spurious division by zero");
    assert_eq!(query_get(&mut c), 5i32.to_le_bytes(), "the committed heap");
}

#[test]
fn the_translator_compiles_a_store_through_one_register() {
    assert_eq!(plain_call(STORE_ONE_REGISTER, 41).unwrap(), 42);
    let mut c = install(canister(STORE_ONE_REGISTER, 41));
    assert_eq!(call_m(&mut c), Ok(42));
}

#[test]
fn the_fuzzed_module_that_panicked_the_translator_compiles_and_runs() {
    let (mut store, instance) = plain(TRANSLATOR_PANIC);
    let funcs: Vec<wasmi::Func> = instance
        .exports(&store)
        .filter_map(|e| e.into_func())
        .collect();
    assert!(!funcs.is_empty());
    for f in funcs {
        let ty = f.ty(&store);
        let params: Vec<wasmi::Val> = ty
            .params()
            .iter()
            .map(|t| wasmi::Val::default_for_ty(*t))
            .collect();
        let mut results: Vec<wasmi::Val> = ty
            .results()
            .iter()
            .map(|t| wasmi::Val::default_for_ty(*t))
            .collect();
        // What it computes (a value or a trap) does not matter: compiling and calling must not
        // panic.
        let _ = f.call(&mut store, &params, &mut results);
    }
}

#[test]
fn the_fuzzed_module_that_overflowed_the_host_stack_runs_out_of_fuel_instead() {
    if !is_child() {
        return run_in_child(
            "engine_faults::the_fuzzed_module_that_overflowed_the_host_stack_runs_out_of_fuel_instead",
        );
    }
    let wasm = wat::parse_str(HOST_STACK_OVERFLOW).unwrap();
    let result = on_small_stack(move || {
        // `f1(8, 1587878272)` never returns: fuel bounds the run.
        let mut config = engine_config();
        config.consume_fuel(true);
        let engine = wasmi::Engine::new(&config);
        let module = wasmi::Module::new(&engine, &wasm[..]).unwrap();
        let mut store = wasmi::Store::new(&engine, ());
        store.set_fuel(10_000_000).unwrap();
        let instance = wasmi::Linker::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        let f1 = instance
            .get_typed_func::<(i32, i32), ()>(&store, "f1")
            .unwrap();
        f1.call(&mut store, (8, 1587878272))
            .map_err(|e| e.as_trap_code())
    });
    assert_eq!(result, Err(Some(wasmi::TrapCode::OutOfFuel)));
}

#[test]
fn a_million_stores_and_grows_keep_the_host_stack_flat_on_plain_wasmi() {
    if !is_child() {
        return run_in_child(
            "engine_faults::a_million_stores_and_grows_keep_the_host_stack_flat_on_plain_wasmi",
        );
    }
    let result =
        on_small_stack(|| plain_call(STORE_AND_GROW_LOOP, 1_000_000).map_err(|e| e.to_string()));
    assert_eq!(result, Ok(1));
}

#[test]
fn a_canister_doing_many_stores_and_grows_replies_and_the_process_lives() {
    if !is_child() {
        return run_in_child(
            "engine_faults::a_canister_doing_many_stores_and_grows_replies_and_the_process_lives",
        );
    }
    let reply = on_small_stack(|| {
        let mut c = install(canister(STORE_AND_GROW_LOOP, 300_000));
        let reply = call_m(&mut c);
        (reply, query_get(&mut c))
    });
    assert_eq!(reply, (Ok(1), 1i32.to_le_bytes().to_vec()));
}

#[test]
fn deep_wasm_recursion_traps_without_growing_the_host_stack() {
    if !is_child() {
        return run_in_child(
            "engine_faults::deep_wasm_recursion_traps_without_growing_the_host_stack",
        );
    }
    let wasm = wat::parse_str(
        r#"(module
          (func $r (export "f") (param i32) (result i32)
            (if (result i32) (local.get 0)
              (then (i32.add (call $r (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))
              (else (i32.const 0)))))"#,
    )
    .unwrap();
    let result = on_small_stack(move || {
        let (mut store, instance) = plain(&wasm);
        let f = instance.get_typed_func::<i32, i32>(&store, "f").unwrap();
        f.call(&mut store, i32::MAX).map_err(|e| e.as_trap_code())
    });
    assert_eq!(result, Err(Some(wasmi::TrapCode::StackOverflow)));
}
