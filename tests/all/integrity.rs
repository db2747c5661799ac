//! State directory integrity (issue 14, faults 3 and 5): one process at a time per directory,
//! the message log commits with the state (a kill at any point leaves a directory that
//! `replay` accepts), a damaged log or an edited checkpoint is an error naming the file, and
//! directories written before state format 3 still open and replay.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use canister_vm::runtime::CanisterConfig;
use canister_vm::runtime::persistent::PersistentSubnet;

use crate::support::{cli, repo};

fn counter() -> PathBuf {
    repo().join("examples/counter.wat")
}

/// Installs the counter into `<tmp>/c` and runs `inc` `n` times through the CLI.
fn counter_dir(tmp: &Path, n: usize) -> PathBuf {
    let dir = tmp.join("c");
    cli(&[
        "install".as_ref(),
        counter().as_os_str(),
        "--state".as_ref(),
        dir.as_os_str(),
    ])
    .ok();
    for _ in 0..n {
        on("call", &dir, &["inc"]).ok();
    }
    dir
}

/// `canister-vm <sub> <dir> [rest...]`.
fn on(sub: &str, dir: &Path, rest: &[&str]) -> crate::support::Run {
    let mut args: Vec<std::ffi::OsString> = vec![sub.into(), dir.into()];
    args.extend(rest.iter().map(|a| a.into()));
    cli(&args)
}

/// The counter value a `call` printed (`(7 : nat64)`).
fn counter_value(stdout: &str) -> u64 {
    let digits: String = stdout
        .trim()
        .trim_start_matches('(')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no counter in {stdout:?}"))
}

// ---------------------------------------------------------------------------------------------
// Fault 3: two processes on one directory.

#[test]
fn two_processes_calling_one_directory_count_every_increment_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 0);
    const EACH: usize = 40;
    let replies: Vec<Vec<u64>> = std::thread::scope(|s| {
        let loops: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    (0..EACH)
                        .map(|_| counter_value(&on("call", &dir, &["inc"]).ok()))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        loops.into_iter().map(|l| l.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = replies.concat();
    all.sort_unstable();
    let expected: Vec<u64> = (1..=2 * EACH as u64).collect();
    assert_eq!(
        all, expected,
        "every increment counted once, no reply twice"
    );
    let read = on("call", &dir, &["read", "--query"]).ok();
    assert_eq!(counter_value(&read), 2 * EACH as u64);
    let info = on("info", &dir, &[]).ok();
    assert!(
        info.contains(&format!("messages:      {}", 2 * EACH + 1)),
        "{info}"
    );
    on("replay", &dir, &[]).ok();
}

#[test]
fn a_second_process_waits_for_the_lock_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 1);
    // This process holds the directory open (and locked).
    let held = PersistentSubnet::open(&dir, CanisterConfig::default()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canister-vm"))
        .args(["call".as_ref(), dir.as_os_str(), "inc".as_ref()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the child's message (an event, not a delay), then let it go.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!(
            "waiting for {}: another canister-vm process holds it",
            dir.display()
        )
    );
    // Opening a directory twice in one process is refused rather than deadlocking.
    let err = PersistentSubnet::open(&dir, CanisterConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("already open in this process"),
        "{err}"
    );
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "(2 : nat64)");
    on("replay", &dir, &[]).ok();
}

#[test]
fn a_failed_install_leaves_no_directory_or_lock_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = crate::support::write_file(
        tmp.path(),
        "trap.wat",
        r#"(module (func (export "canister_init") unreachable))"#,
    );
    let dir = tmp.path().join("c");
    let run = cli(&[
        "install".as_ref(),
        wat.as_os_str(),
        "--state".as_ref(),
        dir.as_os_str(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!dir.exists());
}

// ---------------------------------------------------------------------------------------------
// Fault 5 (d): the commit and its log record are one unit.

/// The crash canister of `shared/repro/crash.wat`: `bump` increments a counter kept in 80 heap
/// pages and 2 stable pages; the query `check` replies with it, trapping if any copy differs.
const CRASH_WAT: &str = r#"
;; Crash-safety canister: `bump` increments a counter stored in 80 heap pages (4 KiB apart) and
;; in 2 stable pages; `check` (query) replies the counter, trapping if any copy differs (torn).
(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (memory 6)
  (data (i32.const 16) "DIDL\00\01\78")
  (data (i32.const 48) "torn")
  (func $reply_n (param $n i64)
    (i64.store (i32.const 23) (local.get $n))
    (call $append (i32.const 16) (i32.const 15))
    (call $reply))
  (func (export "canister_update bump")
    (local $i i32) (local $n i64)
    (if (i64.eqz (call $ssize)) (then (drop (call $sgrow (i64.const 1)))))
    (local.set $n (i64.add (i64.load (i32.const 4096)) (i64.const 1)))
    (local.set $i (i32.const 1))
    (loop $l
      (i64.store (i32.mul (local.get $i) (i32.const 4096)) (local.get $n))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.le_u (local.get $i) (i32.const 80))))
    (call $swrite (i64.const 0) (i64.const 4096) (i64.const 8))
    (call $swrite (i64.const 40000) (i64.const 4096) (i64.const 8))
    (call $reply_n (local.get $n)))
  (func (export "canister_query check")
    (local $i i32) (local $n i64)
    (local.set $n (i64.load (i32.const 4096)))
    (local.set $i (i32.const 1))
    (loop $l
      (if (i64.ne (i64.load (i32.mul (local.get $i) (i32.const 4096))) (local.get $n))
        (then (call $trap (i32.const 48) (i32.const 4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.le_u (local.get $i) (i32.const 80))))
    (if (i64.ne (call $ssize) (i64.const 0)) (then
      (call $sread (i64.const 0) (i64.const 0) (i64.const 8))
      (if (i64.ne (i64.load (i32.const 0)) (local.get $n)) (then (call $trap (i32.const 48) (i32.const 4))))
      (call $sread (i64.const 0) (i64.const 40000) (i64.const 8))
      (if (i64.ne (i64.load (i32.const 0)) (local.get $n)) (then (call $trap (i32.const 48) (i32.const 4))))))
    (call $reply_n (local.get $n)))
)
"#;

const KILL_ENV: &str = "CANISTER_VM_KILL_CHILD_DIR";
/// `<step>:<n>`: the child stops at the n-th completion of checkpoint step `<step>`.
const STOP_ENV: &str = "CANISTER_VM_KILL_CHILD_STOP";

/// The checkpoint hook of the child: at the requested step, say so and wait to be killed.
fn stop_at_step(step: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEEN: AtomicU32 = AtomicU32::new(0);
    let Ok(stop) = std::env::var(STOP_ENV) else {
        return;
    };
    let (name, nth) = stop.split_once(':').unwrap();
    if name == step && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == nth.parse::<u32>().unwrap() {
        println!("at {step}");
        // Blocks until the parent kills this process (it never writes to stdin).
        let _ = std::io::stdin().read_line(&mut String::new());
        std::process::abort();
    }
}

/// The child of the kill tests: opens the directory named by the environment and runs `bump`
/// until killed, printing `committed <n>` after every commit (its progress marker) and then
/// waiting for the parent's go-ahead (a line on stdin) before the next message, so that however
/// busy the machine, the parent kills it at most one message past the marker it acted on; with
/// `STOP_ENV` it also stops at that checkpoint step and says so. Does nothing when run as an
/// ordinary test.
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(KILL_ENV) else {
        return;
    };
    canister_vm::state::set_checkpoint_hook(stop_at_step);
    let mut s = PersistentSubnet::open(Path::new(&dir), CanisterConfig::default()).unwrap();
    let id = canister_vm::runtime::subnet::canister_id(0);
    let anonymous = candid::Principal::anonymous();
    let ids = s.subnet().canister_ids();
    // Two canisters (the `calls` test canister): every message changes both, a calling b.
    if let [a, b] = ids[..] {
        let arg = candid::encode_args((b, "x".to_string())).unwrap();
        loop {
            let out = s.update_call_raw(a, "call_echo", &arg, anonymous).unwrap();
            assert!(out.applied.message.result.is_ok());
            let messages = s.subnet().canister(a).unwrap().clock().messages;
            println!("committed {messages}");
            wait_for_go_ahead();
        }
    }
    loop {
        let out = s
            .update_call_raw(id, "bump", b"DIDL\0\0", anonymous)
            .unwrap();
        assert!(out.applied.message.result.is_ok());
        let messages = s.subnet().canister(id).unwrap().clock().messages;
        println!("committed {messages}");
        wait_for_go_ahead();
    }
}

/// The kill child, after a marker: blocks until the parent writes a line to its stdin.
fn wait_for_go_ahead() {
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line).unwrap();
    assert!(read > 0, "the parent closed stdin");
}

/// Installs the crash canister into `<tmp>/c`.
fn crash_dir(tmp: &Path) -> PathBuf {
    let wat = crate::support::write_file(tmp, "crash.wat", CRASH_WAT);
    let dir = tmp.join("c");
    cli(&[
        "install".as_ref(),
        wat.as_os_str(),
        "--state".as_ref(),
        dir.as_os_str(),
    ])
    .ok();
    dir
}

/// Starts the kill child on `dir` (stopping at `stop`, if given), reads its stdout until
/// `until` says to stop, SIGKILLs it, and returns the last `committed` marker seen. Every
/// `committed` marker gets its go-ahead, the last one too: the kill then lands before, inside or
/// after the next message, never further.
fn run_and_kill(
    dir: &Path,
    stop: Option<&str>,
    mut until: impl FnMut(&str) -> bool,
) -> Option<u64> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["integrity::kill_child", "--exact", "--nocapture", "-q"])
        .env(KILL_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(stop) = stop {
        command.env(STOP_ENV, stop);
    }
    let mut child = command.spawn().unwrap();
    let mut go_ahead = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut last = None;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended before its marker"
        );
        if let Some(n) = line.trim().strip_prefix("committed ") {
            last = Some(n.parse::<u64>().unwrap());
            go_ahead.write_all(b"go\n").unwrap();
            go_ahead.flush().unwrap();
        }
        if until(line.trim()) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let _ = out.read_to_string(&mut String::new());
    last
}

/// After a kill: `info` opens the directory, the `check` query sees an untorn counter, `replay`
/// passes. Returns the message count.
fn check_after_kill(dir: &Path, what: &str) -> u64 {
    let info = on("info", dir, &[]);
    assert_eq!(info.code, 0, "{what}: {info:#?}");
    let messages: u64 = info
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("messages:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let check = on("call", dir, &["check", "--query"]);
    assert_eq!(check.code, 0, "{what}: {check:#?}");
    assert_eq!(counter_value(&check.stdout), messages - 1, "{what}: untorn");
    let replay = on("replay", dir, &[]);
    assert_eq!(replay.code, 0, "{what}: {replay:#?}");
    messages
}

#[test]
fn a_process_killed_at_every_checkpoint_step_leaves_a_directory_that_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = crash_dir(tmp.path());
    let mut messages = 1;
    // Each step of the k-th checkpoint of a child (k = 1, 2): before the commit point the
    // message is lost, from `current` on it is committed, and its record must be in the log.
    for k in 1..=2 {
        for (step, committed) in [
            ("wal", false),
            ("manifest", false),
            ("subnet-manifest", false),
            ("subnet-current", true),
            ("current", true),
            ("applied", true),
            ("record-half", true),
            ("record", true),
        ] {
            let what = format!("killed at `{step}` of checkpoint {k}");
            let stop = format!("{step}:{k}");
            run_and_kill(&dir, Some(&stop), |line| line == format!("at {step}"));
            let now = check_after_kill(&dir, &what);
            let expected = messages + k - 1 + u64::from(committed);
            assert_eq!(now, expected, "{what}");
            messages = now;
        }
    }
}

#[test]
fn a_process_killed_after_many_commits_leaves_a_directory_that_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = crash_dir(tmp.path());
    let mut counter = 0u64;
    for round in 0..24u64 {
        // Kill after the k-th commit marker (k = 1, 2, 3): the child is then somewhere in the
        // next message.
        let k = 1 + round % 3;
        let mut seen = 0;
        let last = run_and_kill(&dir, None, |line| {
            seen += u64::from(line.starts_with("committed "));
            seen == k
        })
        .unwrap();
        let messages = check_after_kill(&dir, &format!("round {round}"));
        assert!(
            messages == last || messages == last + 1,
            "round {round}: {messages} messages after the marker of {last}"
        );
        assert!(messages > counter, "round {round}: the counter went back");
        counter = messages - 1;
    }
    assert!(counter >= 24, "{counter}");
}

#[test]
fn a_commit_whose_log_record_was_cut_off_is_appended_again_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 3);
    let log = dir.join("messages.jsonl");
    let whole = fs::read(&log).unwrap();
    let last_start = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    // A kill after the commit point and before (or in the middle of) the log append.
    for cut in [last_start, last_start + 17, whole.len() - 1] {
        fs::write(&log, &whole[..cut]).unwrap();
        on("info", &dir, &[]).ok();
        assert_eq!(fs::read(&log).unwrap(), whole, "cut at {cut}: repaired");
        on("replay", &dir, &[]).ok();
    }
    // The same through `replay` directly, and then the next call.
    fs::write(&log, &whole[..last_start]).unwrap();
    on("replay", &dir, &[]).ok();
    assert_eq!(counter_value(&on("call", &dir, &["inc"]).ok()), 4);
    on("replay", &dir, &[]).ok();
}

// ---------------------------------------------------------------------------------------------
// Fault 5 (a): a damaged log is an error, never appended to.

#[test]
fn a_deleted_log_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 2);
    fs::remove_file(dir.join("messages.jsonl")).unwrap();
    for run in [
        on("call", &dir, &["inc"]),
        on("info", &dir, &[]),
        on("replay", &dir, &[]),
    ] {
        let err = run.fails(2);
        assert!(err.contains("messages.jsonl"), "{err}");
        assert!(err.contains("missing"), "{err}");
    }
    assert!(!dir.join("messages.jsonl").exists(), "nothing was appended");
}

#[test]
fn a_truncated_log_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 3);
    let log = dir.join("messages.jsonl");
    let whole = fs::read(&log).unwrap();
    // Cut inside the second record: the live checkpoint's record (the fourth) starts later.
    let second = whole.iter().position(|&b| b == b'\n').unwrap() + 10;
    for cut in [0, second] {
        fs::write(&log, &whole[..cut]).unwrap();
        let err = on("call", &dir, &["inc"]).fails(2);
        assert!(err.contains("messages.jsonl"), "{err}");
        assert!(err.contains("truncated"), "{err}");
        assert_eq!(fs::read(&log).unwrap(), &whole[..cut], "not appended to");
    }
}

#[test]
fn a_garbled_log_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 3);
    let log = dir.join("messages.jsonl");
    let whole = fs::read(&log).unwrap();
    let text = String::from_utf8(whole.clone()).unwrap();
    // The live checkpoint's record (the last line) edited: opening sees it.
    let last = text.rfind("\"time\":").unwrap();
    let mut edited = whole.clone();
    edited[last + 8] = if edited[last + 8] == b'1' { b'2' } else { b'1' };
    fs::write(&log, &edited).unwrap();
    let err = on("call", &dir, &["inc"]).fails(2);
    assert!(err.contains("messages.jsonl"), "{err}");
    assert!(err.contains("edited"), "{err}");
    assert_eq!(fs::read(&log).unwrap(), edited, "not appended to");
    // An earlier record edited (same length, still valid JSON): replay's full check sees it
    // and says so, instead of reporting a divergence or a crash.
    let first = text.find("\"time\":").unwrap();
    let mut edited = whole.clone();
    edited[first + 8] = if edited[first + 8] == b'1' {
        b'2'
    } else {
        b'1'
    };
    fs::write(&log, &edited).unwrap();
    let err = on("replay", &dir, &[]).fails(2);
    assert!(err.contains("messages.jsonl"), "{err}");
    assert!(err.contains("the log was edited"), "{err}");
    // A record removed from the middle.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    fs::write(&log, [lines[0], lines[2], lines[3]].concat()).unwrap();
    let err = on("replay", &dir, &[]).fails(2);
    assert!(err.contains("messages.jsonl"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Fault 5 (b, c): everything that decides behaviour is hashed; no hash, no state.

/// The live checkpoint's manifest.
fn manifest(dir: &Path) -> PathBuf {
    dir.join(fs::read_to_string(dir.join("CURRENT")).unwrap().trim())
}

/// Edits the live manifest with `edit` and returns what `info` says.
fn info_after_edit(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> crate::support::Run {
    info_after_editing(dir, &manifest(dir), edit)
}

/// The live subnet manifest.
fn subnet_manifest(dir: &Path) -> PathBuf {
    dir.join(fs::read_to_string(dir.join("SUBNET")).unwrap().trim())
}

fn info_after_editing(
    dir: &Path,
    path: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> crate::support::Run {
    let original = fs::read(path).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
    edit(&mut json);
    fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let run = on("info", dir, &[]);
    fs::write(path, original).unwrap();
    run
}

#[test]
fn every_edited_metadata_field_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 2);
    // A second module in `modules/`, so that naming it is not caught by a missing file.
    let other = crate::support::write_file(tmp.path(), "other.wat", "(module (memory 1))");
    let other_dir = tmp.path().join("o");
    cli(&[
        "install".as_ref(),
        other.as_os_str(),
        "--state".as_ref(),
        other_dir.as_os_str(),
    ])
    .ok();
    let other_sha = fs::read_dir(other_dir.join("modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    fs::copy(
        other_dir.join("modules").join(&other_sha),
        dir.join("modules").join(&other_sha),
    )
    .unwrap();
    let other_sha = other_sha
        .to_string_lossy()
        .trim_end_matches(".wasm")
        .to_string();

    on("info", &dir, &[]).ok();
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "canister_version",
            Box::new(|j| j["system"]["canister_version"] = 7.into()),
        ),
        (
            "controllers",
            Box::new(|j| j["system"]["controllers"] = serde_json::json!(["00"])),
        ),
        (
            "canister_id",
            Box::new(|j| j["system"]["canister_id"] = "00000000000000020101".into()),
        ),
        (
            "cycle_balance",
            Box::new(|j| j["system"]["cycle_balance"] = 5.into()),
        ),
        (
            "global_timer",
            Box::new(|j| j["system"]["global_timer"] = 5.into()),
        ),
        (
            "certified_data",
            Box::new(|j| j["system"]["certified_data"] = "01".into()),
        ),
        (
            "clock.messages",
            Box::new(|j| j["clock"]["messages"] = 9.into()),
        ),
        (
            "clock.last_time",
            Box::new(|j| j["clock"]["last_time"] = 5.into()),
        ),
        (
            "stable_mode",
            Box::new(|j| j["stable_mode"] = "syscall".into()),
        ),
        (
            "module_sha256",
            Box::new(move |j| j["module_sha256"] = other_sha.into()),
        ),
    ];
    for (field, edit) in edits {
        let err = info_after_edit(&dir, edit).fails(2);
        assert!(err.contains("checkpoint-"), "{field}: {err}");
        assert!(
            err.contains("hashes to") || err.contains("heap type differs"),
            "{field}: {err}"
        );
    }
    on("info", &dir, &[]).ok();
    on("replay", &dir, &[]).ok();
}

#[test]
fn a_checkpoint_without_its_hash_or_log_position_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = counter_dir(tmp.path(), 1);
    let rename = |from: &'static str, to: &'static str| {
        move |j: &mut serde_json::Value| {
            let map = j.as_object_mut().unwrap();
            let value = map.remove(from).unwrap();
            if !to.is_empty() {
                map.insert(to.into(), value);
            }
        }
    };
    let err = info_after_edit(&dir, rename("state_hash", "state_hash_x")).fails(2);
    assert!(err.contains("state_hash_x"), "{err}");
    let err = info_after_edit(&dir, rename("state_hash", "")).fails(2);
    assert!(err.contains("no `state_hash`"), "{err}");
    let err = info_after_edit(&dir, |j| j["state_hash"] = serde_json::Value::Null).fails(2);
    assert!(err.contains("no `state_hash`"), "{err}");
    // The log position is the subnet manifest's (a canister's own checkpoints have none).
    let err = info_after_editing(&dir, &subnet_manifest(&dir), rename("log", "")).fails(2);
    assert!(err.contains("missing field `log`"), "{err}");
    // Going back to format 2 (whose state hash is the memory hash) does not help either.
    let err = info_after_edit(&dir, |j| {
        j["format"] = 2.into();
        j.as_object_mut().unwrap().remove("log");
    })
    .fails(2);
    assert!(err.contains("hashes to"), "{err}");
    on("info", &dir, &[]).ok();
}

// ---------------------------------------------------------------------------------------------
// Directories written before state format 3.

/// A directory written by canister-vm before state format 3 (main at a332078): `install
/// examples/counter.wat`, `call inc` twice, `call read --query`.
fn format_2_fixture(tmp: &Path) -> PathBuf {
    let dir = tmp.join("old");
    crate::replay::copy_dir(&repo().join("tests/fixtures/state-format-2"), &dir);
    dir
}

#[test]
fn a_format_2_directory_opens_replays_and_continues_in_format_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = format_2_fixture(tmp.path());
    assert!(
        fs::read_to_string(manifest(&dir))
            .unwrap()
            .contains("\"format\": 2")
    );
    let info = on("info", &dir, &[]).ok();
    assert!(info.contains("messages:      3"), "{info}");
    on("replay", &dir, &[]).ok();
    assert_eq!(counter_value(&on("call", &dir, &["inc"]).ok()), 3);
    assert!(
        fs::read_to_string(manifest(&dir))
            .unwrap()
            .contains("\"format\": 3")
    );
    // The log now mixes records of both hash formats; both replay.
    on("replay", &dir, &[]).ok();
    on("call", &dir, &["read", "--query"]).ok();
    assert_eq!(counter_value(&on("call", &dir, &["inc"]).ok()), 4);
    on("replay", &dir, &[]).ok();
    // An edited format-2 state is still caught (by its memory hash).
    let tmp = tempfile::tempdir().unwrap();
    let dir = format_2_fixture(tmp.path());
    let mut heap = fs::read(dir.join("heap.pages")).unwrap();
    heap[0] ^= 1;
    fs::write(dir.join("heap.pages"), heap).unwrap();
    let err = on("info", &dir, &[]).fails(2);
    assert!(err.contains("hashes to"), "{err}");
}

/// A message that changes two canisters commits both or neither: a child killed after the
/// subnet's commit point but before (or between) the canisters' own switches leaves a directory
/// whose canisters are brought up to the commit on open, and which replays to the same subnet
/// hash; killed before the commit point, the message is lost whole.
#[test]
fn a_process_killed_inside_a_two_canister_commit_leaves_both_or_neither() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("two");
    let calls = crate::canisters::test_canister("calls");
    for name in ["a", "b"] {
        cli(&[
            "install".as_ref(),
            calls.as_os_str(),
            "--state".as_ref(),
            dir.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
        ])
        .ok();
    }
    let records = |dir: &Path| {
        let out = on("replay", dir, &[]);
        assert_eq!(out.code, 0, "{out:#?}");
        let n: u64 = out
            .stdout
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        n
    };
    let mut logged = records(&dir);
    assert_eq!(logged, 2);
    // The second `current` is the second canister's switch: between the two switches.
    for (stop, committed) in [
        ("manifest:2", false),
        ("subnet-manifest:1", false),
        ("subnet-current:1", true),
        ("current:1", true),
        ("current:2", true),
    ] {
        run_and_kill(&dir, Some(stop), |line| line.starts_with("at "));
        let info = on("info", &dir, &[]);
        assert_eq!(info.code, 0, "killed at {stop}: {info:#?}");
        // Replay checks the directory's subnet hash against the replayed one.
        let now = records(&dir);
        assert_eq!(now, logged + u64::from(committed), "killed at {stop}");
        logged = now;
    }
}
