//! Tests of the canister rules: one per rule, through [`instrument`] where validation allows.

use wasm_encoder::{
    CodeSection, ConstExpr, ExportKind, ExportSection, Function, FunctionSection, GlobalSection,
    GlobalType, Instruction, Module, TypeSection, ValType,
};

use super::super::{Config, InstrumentError, StableMode, instrument};
use super::{MAX_FUNCTIONS, MAX_GLOBALS, MAX_METHODS, RuleError, check};

/// The rule `wat` breaks, through the whole pipeline.
fn rule(wat: &str) -> (RuleError, String) {
    let wasm = wat::parse_str(wat).unwrap();
    rule_of(&wasm)
}

fn rule_of(wasm: &[u8]) -> (RuleError, String) {
    let config = Config::default().stable(StableMode::Syscall);
    match instrument(wasm, &config) {
        Err(InstrumentError::Rule(e)) => {
            let message = InstrumentError::Rule(e.clone()).to_string();
            assert!(
                message.starts_with("invalid canister module: "),
                "{message}"
            );
            assert_eq!(message.lines().count(), 1, "{message}");
            (*e, message)
        }
        Err(other) => panic!("expected a canister rule, got {other}"),
        Ok(_) => panic!("expected a canister rule, the module was accepted"),
    }
}

/// The rule `wat` breaks, checked without Wasm validation (for features validation rejects).
fn rule_unvalidated(wat: &str) -> RuleError {
    let wasm = wat::parse_str(wat).unwrap();
    match check(&wasm) {
        Err(InstrumentError::Rule(e)) => *e,
        other => panic!("expected a canister rule, got {other:?}"),
    }
}

#[test]
fn a_complete_canister_is_accepted() {
    for (memory, i) in [("(memory 1)", "i32"), ("(memory i64 1)", "i64")] {
        let wat = format!(
            r#"(module
                (import "ic0" "msg_reply" (func))
                (import "ic0" "msg_arg_data_copy" (func (param {i} {i} {i})))
                (import "ic0" "msg_arg_data_size" (func (result {i})))
                (import "ic0" "stable64_read" (func (param i64 i64 i64)))
                (import "ic0" "stable_grow" (func (param i32) (result i32)))
                (import "ic0" "msg_cycles_accept128" (func (param i64 i64 {i})))
                {memory}
                (table 1 funcref)
                (global (mut i32) (i32.const 0))
                (func $m)
                (export "canister_update inc" (func $m))
                (export "canister_query get" (func $m))
                (export "canister_composite_query cq" (func $m))
                (export "canister_update " (func $m))
                (export "canister_init" (func $m))
                (export "canister_pre_upgrade" (func $m))
                (export "canister_post_upgrade" (func $m))
                (export "canister_inspect_message" (func $m))
                (export "canister_heartbeat" (func $m))
                (export "canister_global_timer" (func $m))
                (export "memory" (memory 0))
                (export "helper" (func $m))
                (export "table" (table 0)))"#
        );
        let wasm = wat::parse_str(&wat).unwrap();
        check(&wasm).unwrap();
        instrument(&wasm, &Config::default().stable(StableMode::Syscall)).unwrap();
    }
    // No memory: a wasm32 heap is assumed.
    check(
        &wat::parse_str(r#"(module (import "ic0" "msg_arg_data_size" (func (result i32))))"#)
            .unwrap(),
    )
    .unwrap();
}

#[test]
fn function_imports_come_from_ic0() {
    let (e, message) = rule(r#"(module (import "env" "f" (func)))"#);
    assert!(matches!(e, RuleError::ImportNotFromIc0 { .. }), "{e:?}");
    assert!(
        message.contains("import env.f is not from module ic0"),
        "{message}"
    );
    assert!(message.contains("at byte offset"), "{message}");
}

#[test]
fn ic0_imports_are_functions_canister_vm_provides() {
    let (e, message) = rule(r#"(module (import "ic0" "foo" (func)) (memory 1))"#);
    assert!(matches!(e, RuleError::UnknownIc0Function { .. }), "{e:?}");
    assert!(
        message.contains("import ic0.foo is not an ic0 function canister-vm provides"),
        "{message}"
    );
}

#[test]
fn ic0_imports_have_exact_signatures() {
    let (e, message) = rule(r#"(module (import "ic0" "msg_reply" (func (param i32))))"#);
    assert!(matches!(e, RuleError::Ic0Signature { .. }), "{e:?}");
    assert!(
        message.contains("import ic0.msg_reply has type (i32) -> () but ic0.msg_reply is () -> ()"),
        "{message}"
    );
    // The heap's index type decides `I`.
    let (e, message) =
        rule(r#"(module (import "ic0" "msg_arg_data_size" (func (result i32))) (memory i64 1))"#);
    assert!(matches!(e, RuleError::Ic0Signature { .. }), "{e:?}");
    assert!(
        message.contains("() -> (i64) for a wasm64 heap"),
        "{message}"
    );
    // Stable functions keep their types whatever the heap.
    let (e, _) =
        rule(r#"(module (import "ic0" "stable_size" (func (result i64))) (memory i64 1))"#);
    assert!(matches!(e, RuleError::Ic0Signature { .. }), "{e:?}");
}

#[test]
fn globals_are_not_imported() {
    let (e, message) = rule(r#"(module (import "env" "g" (global i32)))"#);
    assert!(matches!(e, RuleError::GlobalImport { .. }), "{e:?}");
    assert!(
        message.contains("imports global env.g (canister modules may not import globals)"),
        "{message}"
    );
}

#[test]
fn memories_are_not_imported() {
    let (e, message) = rule(r#"(module (import "env" "memory" (memory 1)))"#);
    assert!(matches!(e, RuleError::MemoryImport { .. }), "{e:?}");
    assert!(message.contains("imports memory env.memory"), "{message}");
}

#[test]
fn tables_are_not_imported() {
    let (e, message) = rule(r#"(module (import "env" "table" (table 1 funcref)))"#);
    assert!(matches!(e, RuleError::TableImport { .. }), "{e:?}");
    assert!(message.contains("imports table env.table"), "{message}");
}

#[test]
fn at_most_one_table_of_at_most_a_million_elements() {
    let (e, message) = rule("(module (table 1 funcref) (table 1 externref))");
    assert!(
        matches!(e, RuleError::TooManyTables { count: 2, .. }),
        "{e:?}"
    );
    assert!(
        message.contains("defines 2 tables (at most 1 allowed)"),
        "{message}"
    );
    let (e, message) = rule("(module (table 1000001 funcref))");
    assert!(
        matches!(
            e,
            RuleError::TableTooLarge {
                index: 0,
                initial: 1_000_001,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        message.contains("table 0 has 1000001 initial elements (at most 1000000 allowed)"),
        "{message}"
    );
    // At the limit, and without a maximum: accepted (growth is limited at run time).
    let config = Config::default().stable(StableMode::Syscall);
    for wat in [
        "(module (table 1000000 funcref))",
        "(module (table 1 funcref))",
    ] {
        assert!(
            instrument(&wat::parse_str(wat).unwrap(), &config).is_ok(),
            "{wat}"
        );
    }
}

#[test]
fn tags_are_not_imported() {
    let e = rule_unvalidated(r#"(module (import "env" "tag" (tag)))"#);
    assert!(matches!(e, RuleError::TagImport { .. }), "{e:?}");
}

#[test]
fn memories_are_not_shared() {
    // Validation rejects shared memories first (threads are off); the rule backs it up.
    let e = rule_unvalidated("(module (memory 1 1 shared))");
    assert!(
        matches!(e, RuleError::SharedMemory { index: 0, .. }),
        "{e:?}"
    );
    let wasm = wat::parse_str("(module (memory 1 1 shared))").unwrap();
    assert!(matches!(
        instrument(&wasm, &Config::default()),
        Err(InstrumentError::InvalidWasm { .. })
    ));
}

/// A module with `functions` empty functions, `globals` globals and each function exported as
/// `canister_query m<i>` if `export` is set.
fn big_module(functions: u32, globals: u32, export: bool) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut funcs = FunctionSection::new();
    for _ in 0..functions {
        funcs.function(0);
    }
    module.section(&funcs);
    let mut global_section = GlobalSection::new();
    for _ in 0..globals {
        global_section.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: false,
                shared: false,
            },
            &ConstExpr::i32_const(0),
        );
    }
    module.section(&global_section);
    let mut exports = ExportSection::new();
    if export {
        for i in 0..functions {
            exports.export(&format!("canister_query m{i}"), ExportKind::Func, i);
        }
    }
    module.section(&exports);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instruction(&Instruction::End);
    for _ in 0..functions {
        code.function(&body);
    }
    module.section(&code);
    module.finish()
}

#[test]
fn at_most_50_000_functions() {
    check(&big_module(MAX_FUNCTIONS as u32, 0, false)).unwrap();
    let (e, message) = rule_of(&big_module(MAX_FUNCTIONS as u32 + 1, 0, false));
    assert_eq!(e, RuleError::TooManyFunctions { count: 50_001 });
    assert!(
        message.contains("defines 50001 functions (at most 50000 allowed)"),
        "{message}"
    );
}

#[test]
fn at_most_1000_globals() {
    check(&big_module(0, MAX_GLOBALS as u32, false)).unwrap();
    let (e, _) = rule_of(&big_module(0, MAX_GLOBALS as u32 + 1, false));
    assert_eq!(e, RuleError::TooManyGlobals { count: 1001 });
}

#[test]
fn at_most_1000_methods() {
    check(&big_module(MAX_METHODS as u32, 0, true)).unwrap();
    let (e, message) = rule_of(&big_module(MAX_METHODS as u32 + 1, 0, true));
    assert_eq!(e, RuleError::TooManyMethods { count: 1001 });
    assert!(message.contains("exports 1001 methods"), "{message}");
}

#[test]
fn entry_points_are_functions() {
    let (e, message) = rule(r#"(module (global (export "canister_update g") i32 (i32.const 0)))"#);
    assert!(
        matches!(e, RuleError::EntryPointNotFunction { .. }),
        "{e:?}"
    );
    assert!(
        message.contains("export canister_update g is not a function"),
        "{message}"
    );
    let (e, _) = rule(r#"(module (memory (export "canister_init") 1))"#);
    assert!(
        matches!(e, RuleError::EntryPointNotFunction { .. }),
        "{e:?}"
    );
}

#[test]
fn entry_points_take_and_return_nothing() {
    let (e, message) = rule(r#"(module (func (export "canister_query q") (param i32)))"#);
    assert!(matches!(e, RuleError::EntryPointType { .. }), "{e:?}");
    assert!(
        message.contains("export canister_query q is function 0 of type (i32) -> ()"),
        "{message}"
    );
    let (e, _) =
        rule(r#"(module (func (export "canister_heartbeat") (result i32) (i32.const 0)))"#);
    assert!(matches!(e, RuleError::EntryPointType { .. }), "{e:?}");
    // An imported function exported as a method has the import's type.
    let (e, _) = rule(
        r#"(module (import "ic0" "msg_reject_code" (func (result i32)))
            (export "canister_update r" (func 0)))"#,
    );
    assert!(matches!(e, RuleError::EntryPointType { .. }), "{e:?}");
}

#[test]
fn a_method_name_is_exported_once() {
    let (e, message) = rule(
        r#"(module (func $f)
            (export "canister_update inc" (func $f))
            (export "canister_query inc" (func $f)))"#,
    );
    assert!(matches!(e, RuleError::DuplicateMethod { .. }), "{e:?}");
    assert!(
        message.contains(
            "method inc is exported twice: as canister_update inc and as canister_query inc"
        ),
        "{message}"
    );
}

#[test]
fn other_canister_exports_are_rejected() {
    for export in ["canister_foo", "canister_update", "canister_queryx y"] {
        let (e, message) = rule(&format!(r#"(module (func (export "{export}")))"#));
        assert!(
            matches!(e, RuleError::UnknownEntryPoint { .. }),
            "{export}: {e:?}"
        );
        assert!(message.contains(&format!("export {export} is not a canister entry point")));
    }
}

#[test]
fn reserved_names_are_not_exported() {
    for export in [
        "canister counter_instructions",
        "stable_memory",
        "canister_vm:heap",
        "canister_vm:anything",
    ] {
        let (e, message) = rule(&format!(r#"(module (memory (export "{export}") 1))"#));
        assert!(
            matches!(e, RuleError::ReservedExport { .. }),
            "{export}: {e:?}"
        );
        assert!(message.contains(&format!("export {export} uses a name canister-vm reserves")));
    }
}

#[test]
fn the_error_is_boxed_and_small() {
    assert_eq!(
        std::mem::size_of::<InstrumentError>(),
        std::mem::size_of::<(String, usize)>()
    );
}
