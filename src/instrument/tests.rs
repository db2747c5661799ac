//! Tests of the instrumentation pipeline.

use super::*;
use wasmi::{Linker, Module, Store};

fn instrument_wat(text: &str) -> Instrumented {
    let wasm = wat::parse_str(text).unwrap();
    let config = Config::default()
        .stable(StableMode::Syscall)
        .metering(false)
        .barrier(false);
    let out = instrument(&wasm, &config).unwrap();
    validate(&out.wasm).expect("instrumented output validates");
    out
}

fn export_names(wasm: &[u8]) -> Vec<String> {
    validate::validate(wasm).unwrap().exports
}

#[test]
fn exports_heap_and_mutable_globals_without_an_export_section() {
    let out = instrument_wat(
        r#"(module
            (memory 1)
            (global $a (mut i32) (i32.const 5))
            (global $b i64 (i64.const 6))
            (global $c (mut f64) (f64.const 1.5))
            (func $f)
            (start $f))"#,
    );
    assert_eq!(
        export_names(&out.wasm),
        [
            "canister_vm:heap",
            "canister_vm:global:0",
            "canister_vm:global:2"
        ]
    );
    // The host can read and write the exported global.
    let engine = crate::runtime::engine::new_engine();
    let module = Module::new(&engine, &out.wasm[..]).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let g = instance.get_global(&store, "canister_vm:global:0").unwrap();
    assert_eq!(g.get(&store).i32(), Some(5));
}

#[test]
fn keeps_existing_exports_custom_and_name_sections() {
    let wasm = wat::parse_str(
        r#"(module $m
            (memory (export "memory") 1)
            (global $g (mut i32) (i32.const 0))
            (func $inc (export "canister_update inc")
              (global.set $g (i32.add (global.get $g) (i32.const 1)))))"#,
    )
    .unwrap();
    // Append a custom section like dfx's metadata.
    let mut with_custom = wasm.clone();
    let mut custom = wasm_encoder::Module::new();
    custom.section(&wasm_encoder::CustomSection {
        name: "icp:public candid:service".into(),
        data: b"service : {}".as_slice().into(),
    });
    with_custom.extend_from_slice(&custom.finish()[8..]);
    let out = instrument(
        &with_custom,
        &Config::default().metering(false).barrier(false),
    )
    .unwrap();
    assert_eq!(
        export_names(&out.wasm),
        [
            "memory",
            "canister_update inc",
            "canister_vm:heap",
            "canister_vm:global:0"
        ]
    );
    let customs: Vec<(String, Vec<u8>)> = wasmparser::Parser::new(0)
        .parse_all(&out.wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) => {
                Some((c.name().to_string(), c.data().to_vec()))
            }
            _ => None,
        })
        .collect();
    assert!(
        customs.iter().any(|(n, _)| n == "name"),
        "name section kept"
    );
    assert!(
        customs.contains(&("icp:public candid:service".into(), b"service : {}".to_vec())),
        "{customs:?}"
    );
}

#[test]
fn invalid_modules_name_the_offset() {
    let err = instrument(b"\0asm\x01\0\0\0\x01\x05", &Config::default()).unwrap_err();
    assert!(
        matches!(err, InstrumentError::InvalidWasm { offset, .. } if offset > 0),
        "{err}"
    );
    assert!(err.to_string().contains("at byte offset"), "{err}");
}

#[test]
fn injected_trap_codes_round_trip() {
    for t in [
        InjectedTrap::InstructionLimit,
        InjectedTrap::StableOutOfBounds,
        InjectedTrap::HeapOutOfBounds,
        InjectedTrap::StableTooBigFor32Bit,
    ] {
        assert_eq!(InjectedTrap::from_code(t.code()), Some(t));
    }
    assert_eq!(InjectedTrap::from_code(0), None);
}

/// Without the canister rules (generic settings), a stable import of the wrong type is refused
/// rather than replaced by the IC function's definition, which made the output invalid (fuzz
/// finding: instrument_never_panics seed 900005758, mutant #3).
#[test]
fn generic_settings_refuse_a_stable_import_of_the_wrong_type() {
    let wasm = wat::parse_str(
        r#"(module
            (import "ic0" "stable_write" (func $w (param f64 i32 i32)))
            (memory 1)
            (func (export "f") (call $w (f64.const 1) (i32.const 0) (i32.const 0))))"#,
    )
    .unwrap();
    for mode in [StableMode::Native, StableMode::Syscall] {
        let err = instrument(&wasm, &Config::generic().stable(mode))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("import ic0.stable_write has type (f64, i32, i32) -> ()"),
            "{mode:?}: {err}"
        );
    }
    // The right type is still replaced, and the output validates.
    let wasm = wat::parse_str(
        r#"(module
            (import "ic0" "stable_write" (func $w (param i32 i32 i32)))
            (memory 1)
            (func (export "f") (call $w (i32.const 0) (i32.const 0) (i32.const 0))))"#,
    )
    .unwrap();
    let out = instrument(&wasm, &Config::generic()).unwrap();
    validate(&out.wasm).expect("instrumented output validates");
}
