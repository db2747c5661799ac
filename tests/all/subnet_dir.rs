//! Subnet state directories through the CLI: many canisters in one directory, named and
//! addressed by principal, inter-canister calls, the management canister, `tick`, `info`, and
//! `replay` of the whole history (a tampered callback record is reported at its record); and
//! single-canister directories written before subnets, which open, take new messages and
//! replay.

use std::fs;
use std::path::Path;

use canister_vm::runtime::persistent::PersistentCanister;
use canister_vm::runtime::{CanisterConfig, MessageInput};

use crate::canisters::test_canister;
use crate::support::{Run, cli, repo};

fn on(sub: &str, dir: &Path, rest: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec![sub.into(), dir.into()];
    args.extend(rest.iter().map(Into::into));
    cli(&args)
}

/// Installs `wasm` into `dir` (named `name`) and returns the principal (the last line).
fn install(dir: &Path, wasm: &Path, name: Option<&str>) -> String {
    let mut args: Vec<std::ffi::OsString> =
        vec!["install".into(), wasm.into(), "--state".into(), dir.into()];
    if let Some(name) = name {
        args.extend(["--name".into(), name.into()]);
    }
    let out = cli(&args).ok();
    out.lines().last().unwrap().to_string()
}

fn info_field(info: &str, field: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .collect()
}

/// Two ic-cdk canisters in one directory: `a` calls `b`, one traps for `a`'s reject
/// callback, timers and the heartbeat run on `tick`; every message is committed and the
/// directory replays on the same hashes.
#[test]
fn two_canisters_call_each_other_tick_and_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let wasm = test_canister("calls");
    let a = install(&dir, &wasm, Some("a"));
    let b = install(&dir, &wasm, Some("b"));
    assert_eq!(a, "rwlgt-iiaaa-aaaaa-aaaaa-cai");
    assert_eq!(b, "rrkah-fqaaa-aaaaa-aaaaq-cai");

    // Without --canister, a directory with two canisters names them.
    let err = on("call", &dir, &["echo", r#"("x")"#]).fails(2);
    assert!(
        err.contains("several canisters") && err.contains("a (rwlgt"),
        "{err}"
    );

    let arg = format!(r#"(principal "{b}", "hi")"#);
    let reply = on(
        "call",
        &dir,
        &["call_echo", &arg, "--canister", "a", "--stats"],
    );
    assert!(reply.stderr.contains("messages caused: 2"), "{reply:#?}");
    assert_eq!(reply.ok(), r#"("callee said: hi")"#);
    // By principal too.
    let reply = on("call", &dir, &["echo", r#"("direct")"#, "--canister", &b]).ok();
    assert_eq!(reply, r#"("direct")"#);
    let boom = on(
        "call",
        &dir,
        &[
            "call_boom",
            &format!(r#"(principal "{b}")"#),
            "--canister",
            "a",
        ],
    )
    .ok();
    assert!(boom.contains("code 5") && boom.contains("boom"), "{boom}");

    // Timers: a one-shot after 5 s and an interval of 2 s, driven by tick.
    on(
        "call",
        &dir,
        &["start_timers", "(5 : nat64, 2 : nat64)", "--canister", "a"],
    )
    .ok();
    for _ in 0..3 {
        let t = on("tick", &dir, &["--seconds", "2"]).ok();
        assert!(t.contains("heartbeat"), "{t}");
    }
    let counters = on("call", &dir, &["counters", "--query", "--canister", "a"]).ok();
    // After 6 s: the interval fired 3 times, the one-shot once (100); 3 heartbeats ran on
    // each canister.
    assert_eq!(counters, "(103 : nat64, 3 : nat64)");

    let info = on("info", &dir, &[]).ok();
    assert_eq!(info_field(&info, "name:"), ["a", "b"]);
    assert_eq!(info_field(&info, "canister id:"), [a.clone(), b.clone()]);
    assert_eq!(info_field(&info, "root key:")[0].len(), 266, "{info}");
    let subnet_hash = info_field(&info, "subnet hash:")[0].clone();

    for engine in engines() {
        let replay = on("replay", &dir, &["--engine", engine]).ok();
        assert!(
            replay.contains("every outcome identical"),
            "{engine}: {replay}"
        );
    }
    // The replayed subnet is the directory's (replay checks it); the directory reopens to it.
    assert_eq!(
        info_field(&on("info", &dir, &[]).ok(), "subnet hash:")[0],
        subnet_hash
    );

    // The management canister by ingress, with Candid arguments as dfx takes them.
    let status = on(
        "call",
        &dir,
        &[
            "canister_status",
            &format!(r#"(record {{ canister_id = principal "{b}" }})"#),
            "--canister",
            "aaaaa-aa",
        ],
    )
    .ok();
    // Without an interface, field names print as hashes: the balance and the controller show.
    assert!(
        status.contains("3_000_000_000_000 : nat") && status.contains(r#"principal "2vxsx-fae""#),
        "{status}"
    );
    // Only a controller may ask: the installer was the anonymous principal.
    let other = "aaaaa-aa";
    let err = on(
        "call",
        &dir,
        &[
            "canister_status",
            &format!(r#"(record {{ canister_id = principal "{b}" }})"#),
            "--canister",
            "aaaaa-aa",
            "--caller",
            "2ibo7-dia",
        ],
    )
    .fails(1);
    assert!(err.contains("controller"), "{other}: {err}");
    on("replay", &dir, &[]).ok();
}

fn engines() -> Vec<&'static str> {
    if cfg!(feature = "wasmtime") {
        vec!["wasmi", "wasmtime"]
    } else {
        vec!["wasmi"]
    }
}

/// A changed field of a callback's record in the log is reported at its record, naming the
/// message of the record that differs.
#[test]
fn a_tampered_callback_record_is_reported_at_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let wasm = test_canister("calls");
    install(&dir, &wasm, Some("a"));
    let b = install(&dir, &wasm, Some("b"));
    let arg = format!(r#"(principal "{b}", "hi")"#);
    on("call", &dir, &["call_echo", &arg, "--canister", "a"]).ok();
    on("call", &dir, &["echo", r#"("later")"#, "--canister", "b"]).ok();
    let log = dir.join("messages.jsonl");
    let text = fs::read_to_string(&log).unwrap();
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Record 3: the call; its executed messages are b's `echo` and a's reply callback.
    let executed = lines[2]["outcome"]["executed"].as_array_mut().unwrap();
    assert_eq!(executed.len(), 2, "{executed:?}");
    assert_eq!(executed[1]["kind"], "reply_callback");
    let n = executed[1]["instructions"].as_u64().unwrap();
    executed[1]["instructions"] = (n + 1).into();
    let edited: String = lines.iter().map(|v| format!("{v}\n")).collect();
    let copy = tmp.path().join("copy");
    fs::create_dir(&copy).unwrap();
    fs::write(copy.join("messages.jsonl"), &edited).unwrap();
    let copy_modules = copy.join("modules");
    fs::create_dir(&copy_modules).unwrap();
    for m in fs::read_dir(dir.join("modules")).unwrap() {
        let m = m.unwrap();
        fs::copy(m.path(), copy_modules.join(m.file_name())).unwrap();
    }
    let err = cli(&["replay".as_ref(), copy.join("messages.jsonl").as_os_str()]);
    assert_eq!(err.code, 1, "{err:#?}");
    let out = format!("{}{}", err.stdout, err.stderr);
    assert!(out.contains("record 3 (line 3"), "{out}");
    assert!(out.contains("`executed`"), "{out}");
    assert!(
        out.contains("message 2 of the record: reply callback `echo`"),
        "{out}"
    );
    // The directory itself refuses the edited log before running anything.
    fs::write(&log, &edited).unwrap();
    let err = on("replay", &dir, &[]).fails(2);
    assert!(err.contains("edited"), "{err}");
}

/// A directory written by the single-canister code (state format 3, as every directory was
/// before subnets) opens, takes new messages — its first commit makes it a subnet directory
/// that continues its log — and replays from its first record.
#[test]
fn a_single_canister_directory_from_before_subnets_opens_and_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    let wasm = canister_vm::load::read_module(&repo().join("examples/counter.wat")).unwrap();
    let none = MessageInput::default();
    {
        let (c, _) =
            PersistentCanister::install(&dir, wasm, b"DIDL\0\0", CanisterConfig::default(), &none)
                .unwrap();
        let mut c = c.unwrap();
        for _ in 0..3 {
            c.update("inc", b"DIDL\0\0", &none).unwrap();
        }
        c.query("read", b"DIDL\0\0", &none).unwrap();
    }
    assert!(!dir.join("SUBNET").exists());
    on("replay", &dir, &[]).ok();
    assert_eq!(on("call", &dir, &["read", "--query"]).ok(), "(3 : nat64)");
    assert_eq!(on("call", &dir, &["inc"]).ok(), "(4 : nat64)");
    assert!(
        dir.join("SUBNET").exists(),
        "the first commit wrote the subnet manifest"
    );
    let replay = on("replay", &dir, &[]).ok();
    assert!(replay.contains("replayed 7 messages"), "{replay}");
    // A second canister joins it.
    let counter = repo().join("examples/counter.wat");
    let second = install(&dir, &counter, Some("second"));
    assert_eq!(second, "rrkah-fqaaa-aaaaa-aaaaq-cai");
    assert_eq!(
        on("call", &dir, &["inc", "--canister", "second"]).ok(),
        "(1 : nat64)"
    );
    assert_eq!(
        on(
            "call",
            &dir,
            &["inc", "--canister", "rwlgt-iiaaa-aaaaa-aaaaa-cai"]
        )
        .ok(),
        "(5 : nat64)"
    );
    on("replay", &dir, &[]).ok();
    // The single-canister library refuses a subnet directory instead of misreading it.
    let err = PersistentCanister::open(&dir, CanisterConfig::default()).unwrap_err();
    assert!(err.to_string().contains("subnet directory"), "{err}");
}

/// A directory written by the canister-vm of before subnets (`tests/fixtures/pre-subnet-counter`,
/// state format 3, written by commit 82c1528): it opens with the state it had, replays, takes new
/// messages (its first commit writes the subnet manifest and continues its log) and replays
/// again from its first record.
#[test]
fn a_directory_written_by_the_previous_release_opens_replays_and_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    copy_dir(&repo().join("tests/fixtures/pre-subnet-counter"), &dir);
    fs::remove_file(dir.join("README.md")).unwrap();
    let info = on("info", &dir, &[]).ok();
    assert_eq!(
        info_field(&info, "state hash:"),
        ["43ff7629a5aaca0cb935c0c06982ec6a07e51c2c13eedbdeff9b7e89fd19b270"],
        "{info}"
    );
    assert!(on("replay", &dir, &[]).ok().contains("replayed 6 messages"));
    assert_eq!(on("call", &dir, &["read", "--query"]).ok(), "(3 : nat64)");
    assert_eq!(on("call", &dir, &["inc"]).ok(), "(4 : nat64)");
    assert!(dir.join("SUBNET").exists());
    let replay = on("replay", &dir, &[]).ok();
    assert!(replay.contains("replayed 8 messages"), "{replay}");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
