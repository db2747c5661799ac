//! Bad input: exit status 2 and one clear line on stderr, never a panic.

use crate::support::{cli, repo, write_file};

#[track_caller]
fn one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "`{needle}` not in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn garbage_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = write_file(
        tmp.path(),
        "junk.wasm",
        [0xde, 0xad, 0xbe, 0xef, 0x00, 0xff],
    );
    let dir = tmp.path().join("c");
    let err = cli(&[
        "install",
        junk.to_str().unwrap(),
        "--state",
        dir.to_str().unwrap(),
    ])
    .fails(2);
    one_line_error(&err, "not a Wasm module");
    assert!(!dir.exists(), "nothing is written for a bad module");
}

#[test]
fn truncated_binary_module() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write_file(tmp.path(), "bad.wasm", b"\0asm\x01\0\0\0\x01\x05");
    let dir = tmp.path().join("c");
    let err = cli(&[
        "install",
        bad.to_str().unwrap(),
        "--state",
        dir.to_str().unwrap(),
    ])
    .fails(2);
    one_line_error(&err, "bad.wasm");
}

#[test]
fn unknown_import() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = write_file(
        tmp.path(),
        "imp.wat",
        r#"(module (import "ic0" "no_such_function" (func)) (memory 1))"#,
    );
    let dir = tmp.path().join("c");
    let err = cli(&[
        "install",
        wat.to_str().unwrap(),
        "--state",
        dir.to_str().unwrap(),
    ])
    .fails(2);
    one_line_error(&err, "no_such_function");
}

#[test]
fn missing_method_and_malformed_candid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    let wat = repo().join("examples/counter.wat");
    cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
    one_line_error(
        &cli(&["call", d, "nope"]).fails(2),
        "no update method `nope`",
    );
    one_line_error(
        &cli(&["call", d, "nope", "--query"]).fails(2),
        "no query method `nope`",
    );
    one_line_error(
        &cli(&["call", d, "inc", "--query"]).fails(2),
        "is an update method",
    );
    one_line_error(
        &cli(&["call", d, "inc", "(1 : nat64"]).fails(2),
        "invalid Candid",
    );
    // None of that changed the canister.
    assert_eq!(cli(&["call", d, "read", "--query"]).ok(), "(0 : nat64)");
}

#[test]
fn missing_files_and_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("none");
    one_line_error(
        &cli(&["call", d.to_str().unwrap(), "inc"]).fails(2),
        "no canister installed",
    );
    one_line_error(
        &cli(&["info", d.to_str().unwrap()]).fails(2),
        "no canister installed",
    );
    let missing = tmp.path().join("missing.wasm");
    one_line_error(
        &cli(&[
            "install",
            missing.to_str().unwrap(),
            "--state",
            d.to_str().unwrap(),
        ])
        .fails(2),
        "missing.wasm",
    );
    // Installing twice into one directory adds a second canister; a name is given once.
    let wat = repo().join("examples/counter.wat");
    let install = |name: &str| {
        cli(&[
            "install",
            wat.to_str().unwrap(),
            "--state",
            d.to_str().unwrap(),
            "--name",
            name,
        ])
    };
    assert!(install("one").ok().ends_with("rwlgt-iiaaa-aaaaa-aaaaa-cai"));
    assert!(install("two").ok().ends_with("rrkah-fqaaa-aaaaa-aaaaq-cai"));
    one_line_error(
        &install("one").fails(2),
        "a canister named `one` exists already",
    );
    // Usage errors are exit 2 as well (clap).
    assert_eq!(cli(&["call"]).code, 2);
}

#[test]
fn canister_rules_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, wat, needle) in [
        (
            "global_import",
            r#"(module (import "env" "g" (global i32)) (memory 1))"#,
            "env.g",
        ),
        (
            "reserved",
            r#"(module (memory 1) (global (export "canister counter_instructions") (mut i64) (i64.const 0)))"#,
            "canister counter_instructions",
        ),
        (
            "twice",
            r#"(module (memory 1)
                 (func (export "canister_update m"))
                 (func (export "canister_query m")))"#,
            "exported twice",
        ),
    ] {
        let path = write_file(tmp.path(), &format!("{name}.wat"), wat);
        let dir = tmp.path().join(name);
        let err = cli(&[
            "install",
            path.to_str().unwrap(),
            "--state",
            dir.to_str().unwrap(),
        ])
        .fails(2);
        one_line_error(&err, needle);
        assert!(!dir.exists());
    }
}

#[test]
fn a_damaged_state_directory_is_reported_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    let wat = repo().join("examples/counter.wat");
    cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
    cli(&["call", d, "inc"]).ok();
    // The heap's page file no longer matches the state hash its checkpoint recorded.
    let heap = dir.join("heap.pages");
    let mut bytes = std::fs::read(&heap).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&heap, &bytes).unwrap();
    one_line_error(&cli(&["call", d, "inc"]).fails(2), "corrupt canister state");
    one_line_error(&cli(&["info", d]).fails(2), "hashes to");
    // Nothing was written over the damaged state.
    assert_eq!(std::fs::read(&heap).unwrap(), bytes);
}

/// A temporary directory with the example counter installed in its `c`.
fn installed_counter() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let example = repo().join("examples/counter.wat");
    cli(&[
        "install",
        example.to_str().unwrap(),
        "--state",
        dir.to_str().unwrap(),
    ])
    .ok();
    (tmp, dir)
}

#[test]
fn usage_errors_are_one_line() {
    let (_tmp, dir) = installed_counter();
    let d = dir.to_str().unwrap();
    // A missing argument, an unknown flag, an unknown subcommand, a bad flag value.
    let err = cli(&["call"]).fails(2);
    one_line_error(&err, "<DIR>");
    assert!(err.contains("see `canister-vm call --help`"), "{err}");
    let err = cli(&["call", d, "inc", "--bogus"]).fails(2);
    one_line_error(&err, "unexpected argument '--bogus'");
    let err = cli(&["frobnicate"]).fails(2);
    one_line_error(&err, "unrecognized subcommand 'frobnicate'");
    let err = cli(&["call", d, "inc", "--output", "xml"]).fails(2);
    one_line_error(&err, "invalid value 'xml'");
    // `--help` still prints the full help, successfully.
    let help = cli(&["call", "--help"]).ok();
    assert!(help.contains("Usage: canister-vm call"), "{help}");
}

#[test]
fn echoed_input_is_truncated() {
    let (tmp, dir) = installed_counter();
    // A 120 KB garbage text "module": the parser's error quotes its first line.
    let garbage = write_file(tmp.path(), "garbage.wat", "x".repeat(120_000));
    let err = cli(&["upgrade", dir.to_str().unwrap(), garbage.to_str().unwrap()]).fails(2);
    one_line_error(&err, "invalid WAT");
    assert!(err.len() < 2_000, "{} bytes: {}", err.len(), &err[..300]);
    assert!(err.contains("more bytes)"), "{err}");
    // A 30 000-deep Candid argument is refused quickly, and its echo is cut too.
    let deep = format!("({}1)", "opt ".repeat(30_000));
    let err = cli(&["call", dir.to_str().unwrap(), "inc", &deep]).fails(2);
    one_line_error(&err, "at most 256 are accepted");
    assert!(err.len() < 2_000, "{} bytes", err.len());
    // Nothing reached the canister: the counter is still 0.
    let out = cli(&["call", dir.to_str().unwrap(), "read", "--query"]).ok();
    assert!(out.contains("(0 : nat64)"), "{out}");
}
