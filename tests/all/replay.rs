//! Record and replay (issue 5): sessions recorded through the library's persistent canister are
//! replayed by the CLI in a fresh process; tampering, checkpoints, `--record` and float
//! determinism.

use std::fs;
use std::path::{Path, PathBuf};

use canister_vm::candid_text::encode_args;
use canister_vm::replay::{self, FILE_NAME, Kind, Log, Modules, Options, Recorder, ReplayError};
use canister_vm::runtime::persistent::{PersistentCanister, PersistentSubnet};
use canister_vm::runtime::{CanisterConfig, InstructionLimits, MessageInput, Outcome};

use crate::canisters::test_canister_bytes;
use crate::support::{cli, write_file};

fn arg(candid: &str) -> Vec<u8> {
    encode_args(candid).unwrap()
}

fn at(time: Option<u64>, caller: Option<&str>) -> MessageInput {
    MessageInput {
        caller: caller.map(|c| candid::Principal::from_text(c).unwrap()),
        time,
    }
}

/// Copies directory `from` to `to`, recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
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

/// Installs kv into `dir` through the library (so its log is written as the CLI would).
fn install_kv(dir: &Path) -> PersistentCanister {
    let (canister, outcome) = PersistentCanister::install(
        dir,
        test_canister_bytes("kv"),
        &arg("()"),
        CanisterConfig::default(),
        &MessageInput::default(),
    )
    .unwrap();
    assert!(outcome.result.is_ok(), "{outcome:?}");
    canister.unwrap()
}

/// Runs messages `range` of a deterministic mixed kv session: puts, gets, fills, len queries,
/// replicated queries, traps (a malformed argument; an instruction limit), other callers and
/// explicit times, and an upgrade at message 150. Returns the outcomes.
fn kv_session(dir: &Path, range: std::ops::Range<u64>) -> Vec<Outcome> {
    let mut kv = PersistentCanister::open(dir, CanisterConfig::default()).unwrap();
    let none = MessageInput::default();
    let mut outcomes = Vec::new();
    for i in range {
        let outcome = match i % 10 {
            0 if i == 150 => kv
                .upgrade(test_canister_bytes("kv"), &arg("()"), &none)
                .unwrap(),
            0 | 5 => kv
                .update(
                    "put",
                    &arg(&format!("({i} : nat64, blob \"value {i}\")")),
                    &none,
                )
                .unwrap(),
            1 | 6 => kv
                .query("get", &arg(&format!("({} : nat64)", i - 1)), &none)
                .unwrap(),
            2 => kv.update("fill", &arg("(3 : nat64)"), &none).unwrap(),
            3 => kv.query("len", &arg("()"), &none).unwrap(),
            // A query method called as an update runs as a replicated query.
            4 => kv.update("len", &arg("()"), &none).unwrap(),
            // A malformed argument traps in the canister's decoder.
            7 => kv.update("put", b"DIDL garbage", &none).unwrap(),
            8 => kv
                .update(
                    "put",
                    &arg(&format!("({i} : nat64, blob \"\\00\\ff\")")),
                    &at(Some(1_800_000_000_000_000_000 + i), Some("aaaaa-aa")),
                )
                .unwrap(),
            _ if i % 30 == 9 => {
                // A message over a small instruction limit traps and rolls back.
                let limits = InstructionLimits {
                    update: 20_000,
                    ..InstructionLimits::default()
                };
                let config = CanisterConfig::default().instruction_limits(limits);
                // One handle at a time: a directory is locked while open.
                drop(kv);
                let mut small = PersistentCanister::open(dir, config).unwrap();
                let outcome = small.update("fill", &arg("(500 : nat64)"), &none).unwrap();
                drop(small);
                kv = PersistentCanister::open(dir, CanisterConfig::default()).unwrap();
                outcome
            }
            _ => kv
                .query(
                    "get",
                    &arg(&format!("({i} : nat64)")),
                    &at(None, Some("aaaaa-aa")),
                )
                .unwrap(),
        };
        outcomes.push(outcome);
    }
    outcomes
}

fn state_hash_of(dir: &Path) -> String {
    let s = PersistentSubnet::open(dir, CanisterConfig::default()).unwrap();
    let first = canister_vm::runtime::subnet::canister_id(0);
    hex::encode(s.subnet().canister(first).unwrap().state_hash())
}

/// The `state hash: <hex>` line of `replay`'s output.
fn replayed_hash(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("state hash: "))
        .unwrap_or_else(|| panic!("no state hash in {stdout}"))
        .to_string()
}

#[test]
fn a_recorded_session_replays_identically_in_a_fresh_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    drop(install_kv(&dir));
    let outcomes = kv_session(&dir, 1..300);

    let log = Log::read(&dir.join(FILE_NAME)).unwrap();
    assert_eq!(log.entries.len(), 300);
    let kinds = |k: Kind| log.records().filter(|r| r.kind == k).count();
    assert_eq!(kinds(Kind::Install), 1);
    assert_eq!(kinds(Kind::Upgrade), 1);
    assert!(kinds(Kind::Query) > 50, "{}", kinds(Kind::Query));
    let rejects = outcomes.iter().filter(|o| o.result.is_err()).count();
    assert!(rejects >= 30, "{rejects} rejects");
    // Every record carries the effective inputs and the outcome as returned.
    for (entry, outcome) in log.entries[1..].iter().zip(&outcomes) {
        let r = &entry.record;
        assert!(
            r.caller.is_some() && r.time.is_some(),
            "line {}",
            entry.line
        );
        let recorded = r.outcome.as_ref().unwrap();
        assert_eq!(recorded.reply.as_ref(), outcome.result.as_ref().ok());
        assert_eq!(recorded.instructions, outcome.instructions);
    }
    let limited = log
        .records()
        .filter(|r| r.instruction_limit == Some(20_000));
    assert_eq!(limited.count(), 10);

    let run = cli(&["replay", dir.to_str().unwrap(), "--stats"]);
    let stderr = run.stderr.clone();
    let stdout = run.ok();
    assert!(
        stdout.contains("replayed 300 messages on wasmi"),
        "{stdout}"
    );
    assert!(stdout.contains("every outcome identical"), "{stdout}");
    assert!(stderr.contains("dirty stable pages: "), "{stderr}");
    assert_eq!(replayed_hash(&stdout), state_hash_of(&dir));

    // The same log in process, through the library.
    let summary = replay::replay_dir(&dir, Options::default(), |_, _| {}).unwrap();
    assert_eq!(summary.messages, 300);
    assert_eq!(summary.rejects as usize, rejects);
}

#[test]
fn counter_traps_rejects_and_missing_replies_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("counter");
    let none = MessageInput::default();
    let (c, _) = PersistentCanister::install(
        &dir,
        test_canister_bytes("counter"),
        &arg("(opt (5 : nat64))"),
        CanisterConfig::default(),
        &none,
    )
    .unwrap();
    let mut c = c.unwrap();
    for i in 0..40u64 {
        let (method, a) = match i % 6 {
            0 => ("inc", "()"),
            1 => ("write_and_trap", "(3 : nat64)"),
            2 => ("reject_me", "()"),
            3 => ("no_reply", "()"),
            4 => ("query_mutate", "()"),
            _ => ("read", "()"),
        };
        if i % 6 == 4 {
            c.query(method, &arg(a), &none).unwrap();
        } else {
            c.update(method, &arg(a), &none).unwrap();
        }
    }
    drop(c);
    let stdout = cli(&["replay", dir.to_str().unwrap()]).ok();
    assert!(stdout.contains("replayed 41 messages"), "{stdout}");
    assert_eq!(replayed_hash(&stdout), state_hash_of(&dir));
}

#[test]
fn a_tampered_argument_is_reported_at_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    drop(install_kv(&dir));
    kv_session(&dir, 1..60);
    let path = dir.join(FILE_NAME);
    let text = fs::read_to_string(&path).unwrap();
    // The 36th record is `put(35, "value 35")`: change the last byte of its value.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut record: replay::Record = serde_json::from_str(&lines[35]).unwrap();
    assert_eq!(record.method.as_deref(), Some("put"));
    *record.arg.last_mut().unwrap() ^= 0x01;
    lines[35] = serde_json::to_string(&record).unwrap();
    fs::write(&path, lines.join("\n") + "\n").unwrap();

    // The directory's checkpoint sees that its log was edited (state format 3)...
    let stderr = cli(&["replay", dir.to_str().unwrap()]).fails(2);
    assert!(stderr.contains("the log was edited"), "{stderr}");
    // ...and replaying the log file itself shows where the edit makes a difference.
    let stderr = cli(&["replay", path.to_str().unwrap()]).fails(1);
    assert!(
        stderr.contains("record 36 (line 36, update `put`) diverged in `state_hash`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected: ") && stderr.contains("got: "),
        "{stderr}"
    );

    // The library reports the same record and field.
    let log = Log::read(&path).unwrap();
    let err = replay::replay(log, Modules::dir(dir.join("modules")), Options::default());
    match err {
        Err(ReplayError::Diverged(d)) => {
            assert_eq!((d.record, d.line, d.field()), (36, 36, "state_hash"));
        }
        other => panic!("expected a divergence, got {other:?}"),
    }

    // A tampered query argument shows in the reply.
    let mut record: replay::Record = serde_json::from_str(&lines[35]).unwrap();
    *record.arg.last_mut().unwrap() ^= 0x01;
    lines[35] = serde_json::to_string(&record).unwrap();
    let mut query: replay::Record = serde_json::from_str(&lines[36]).unwrap();
    assert_eq!(query.kind, Kind::Query);
    query.arg = arg("(9 : nat64)");
    lines[36] = serde_json::to_string(&query).unwrap();
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let stderr = cli(&["replay", path.to_str().unwrap()]).fails(1);
    assert!(
        stderr.contains("record 37 (line 37, query `get`) diverged in `reply`"),
        "{stderr}"
    );
}

#[test]
fn replaying_from_a_checkpoint_gives_the_final_hash_of_a_full_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let checkpoint = tmp.path().join("checkpoint");
    drop(install_kv(&dir));
    kv_session(&dir, 1..140);
    copy_dir(&dir, &checkpoint);
    kv_session(&dir, 140..260);
    let d = dir.to_str().unwrap();

    let full = cli(&["replay", d]).ok();
    let from = cli(&["replay", d, "--from", checkpoint.to_str().unwrap()]).ok();
    // Up to the checkpoint's last state-changing record (queries after it are re-executed).
    let skipped = Log::read(&checkpoint.join(FILE_NAME))
        .unwrap()
        .entries
        .iter()
        .rposition(|e| e.record.kind != Kind::Query)
        .unwrap()
        + 1;
    assert!(
        from.contains(&format!("skipped {skipped} records")),
        "{from}"
    );
    assert_eq!(replayed_hash(&from), replayed_hash(&full));
    assert_eq!(replayed_hash(&full), state_hash_of(&dir));
    assert_ne!(replayed_hash(&full), state_hash_of(&checkpoint));

    // The log as a file (modules next to it) works the same.
    let log_file = dir.join(FILE_NAME);
    let from_file = cli(&[
        "replay",
        log_file.to_str().unwrap(),
        "--from",
        checkpoint.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(replayed_hash(&from_file), replayed_hash(&full));

    // A checkpoint that does not belong to the log is refused.
    let other = tmp.path().join("other");
    let (c, _) = PersistentCanister::install(
        &other,
        test_canister_bytes("kv"),
        &arg("()"),
        CanisterConfig::default(),
        &MessageInput::default(),
    )
    .unwrap();
    let mut c = c.unwrap();
    let none = MessageInput::default();
    c.update("put", &arg("(7 : nat64, blob \"x\")"), &none)
        .unwrap();
    drop(c);
    let stderr = cli(&["replay", d, "--from", other.to_str().unwrap()]).fails(1);
    assert!(stderr.contains("checkpoint"), "{stderr}");
}

/// A canister doing float math on a raw 12-byte argument suffix (an f32 and an f64, bit
/// patterns chosen by the caller): NaN-producing operations, a float-heavy loop, and a SIMD
/// operation; results are stored in the heap and in stable memory and replied as bytes.
const FLOAT_WAT: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "canister_update compute")
    (local $x f32) (local $y f64) (local $i i32) (local $acc f64)
    (call $arg_copy (i32.const 0) (i32.sub (call $arg_size) (i32.const 12)) (i32.const 12))
    (local.set $x (f32.load (i32.const 0)))
    (local.set $y (f64.load (i32.const 4)))
    (f32.store (i32.const 100) (f32.div (local.get $x) (f32.const 1)))
    (f64.store (i32.const 104) (f64.mul (local.get $y) (f64.const 2)))
    (f64.store (i32.const 112) (f64.sqrt (f64.const -1)))
    (f64.store (i32.const 120) (f64.div (f64.convert_i32_s (local.get $i))
                                        (f64.convert_i32_s (local.get $i))))
    (f32.store (i32.const 128) (f32.demote_f64 (local.get $y)))
    (f64.store (i32.const 132) (f64.promote_f32 (local.get $x)))
    (f32.store (i32.const 140) (f32.min (local.get $x) (f32.const 1)))
    (loop $l
      (local.set $acc
        (f64.add (f64.mul (local.get $acc) (f64.const 1.000001))
                 (f64.div (f64.sqrt (f64.convert_i32_u (local.get $i)))
                          (f64.convert_i32_u (i32.add (local.get $i) (i32.const 1))))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (i32.const 20000))))
    (f64.store (i32.const 148) (local.get $acc))
    (v128.store (i32.const 160) (f32x4.add (v128.load (i32.const 0)) (v128.load (i32.const 0))))
    (if (i64.eqz (call $ssize)) (then (drop (call $sgrow (i64.const 1)))))
    (call $swrite (i64.mul (i64.extend_i32_u (global.get $calls)) (i64.const 76))
                  (i64.const 100) (i64.const 76))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $append (i32.const 100) (i32.const 76))
    (call $reply)))"#;

/// f32 NaN with payload 0x200001 and f64 NaN with payload 0x4000000000001, little-endian,
/// as Candid text.
const FLOAT_ARG: &str = r#"(blob "\01\00\a0\7f\01\00\00\00\00\00\f4\7f")"#;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn float_results_are_identical_across_runs_and_nans_are_canonical() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = write_file(tmp.path(), "float.wat", FLOAT_WAT);
    let mut replies = Vec::new();
    let mut hashes = Vec::new();
    for run in ["a", "b"] {
        let dir = tmp.path().join(run);
        let d = dir.to_str().unwrap();
        cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
        for _ in 0..2 {
            replies.push(cli(&["call", d, "compute", FLOAT_ARG, "--output", "hex"]).ok());
        }
        hashes.push(state_hash_of(&dir));
        // The run's own log replays.
        cli(&["replay", d]).ok();
    }
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:?}");
    assert_eq!(hashes[0], hashes[1]);

    // In process, through the library (a subnet, as the CLI runs it): the same bytes and
    // state hash.
    let mut subnet = canister_vm::runtime::subnet::Subnet::new(CanisterConfig::default());
    let wasm = canister_vm::load::read_module(&wat).unwrap();
    let anon = candid::Principal::anonymous();
    let id = subnet.install_raw(wasm, &arg("()"), anon).unwrap();
    let mut reply = Vec::new();
    for _ in 0..2 {
        reply = subnet
            .update_call_raw(id, "compute", &arg(FLOAT_ARG), anon)
            .unwrap()
            .unwrap();
    }
    assert_eq!(hex::encode(&reply), replies[0]);
    let in_process = hex::encode(subnet.canister(id).unwrap().state_hash());
    assert_eq!(in_process, hashes[0]);

    // Every NaN is the canonical one, whatever the inputs' payloads and the host's.
    const F32: u32 = 0x7fc0_0000;
    const F64: u64 = 0x7ff8_0000_0000_0000;
    assert_eq!(u32_at(&reply, 0), F32, "f32.div of a payload NaN");
    assert_eq!(u64_at(&reply, 4), F64, "f64.mul of a payload NaN");
    assert_eq!(u64_at(&reply, 12), F64, "f64.sqrt(-1)");
    assert_eq!(u64_at(&reply, 20), F64, "0.0 / 0.0");
    assert_eq!(u32_at(&reply, 28), F32, "f32.demote_f64 of a payload NaN");
    assert_eq!(u64_at(&reply, 32), F64, "f64.promote_f32 of a payload NaN");
    assert_eq!(u32_at(&reply, 40), F32, "f32.min with a payload NaN");
    let acc = f64::from_bits(u64_at(&reply, 48));
    assert!(acc.is_finite() && acc > 1.0, "{acc}");
    assert_eq!(u32_at(&reply, 60), F32, "f32x4.add lane 0");
    assert_eq!(
        u32_at(&reply, 64),
        2,
        "f32x4.add lane 1: 2 x the smallest subnormal"
    );
    assert_eq!(u32_at(&reply, 68), F32, "f32x4.add lane 2");

    // The library's replay of a run's directory agrees too.
    let summary = replay::replay_dir(&tmp.path().join("a"), Options::default(), |_, _| {}).unwrap();
    assert_eq!(summary.state_hash.as_deref(), Some(in_process.as_str()));
}

#[test]
fn record_fills_in_the_outcomes_of_a_hand_written_log() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("kv.wasm"), test_canister_bytes("kv")).unwrap();
    let written = [
        r#"{"kind":"install","module_file":"kv.wasm","candid":"()"}"#,
        r#"{"kind":"update","method":"put","candid":"(1 : nat64, blob \"one\")"}"#,
        r#"{"kind":"query","method":"get","candid":"(1 : nat64)"}"#,
        r#"{"kind":"update","method":"fill","candid":"(5 : nat64)","caller":"aaaaa-aa","time":1800000000000000000}"#,
        r#"{"kind":"update","method":"put","arg":"4449444c"}"#,
        r#"{"kind":"query","method":"len","candid":"()"}"#,
    ];
    let log_path = write_file(tmp.path(), "session.jsonl", written.join("\n"));
    let log = log_path.to_str().unwrap();

    // Without --record there is nothing to compare with.
    let stderr = cli(&["replay", log]).fails(2);
    assert!(
        stderr.contains("record 1 (line 1): no recorded outcome"),
        "{stderr}"
    );

    let out = tmp.path().join("done").join("session.jsonl");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let stdout = cli(&["replay", log, "--record", "--out", out.to_str().unwrap()]).ok();
    assert!(stdout.contains("filled 6 outcomes"), "{stdout}");
    let done = Log::read(&out).unwrap();
    assert_eq!(done.entries.len(), 6);
    for r in done.records() {
        assert!(r.outcome.is_some() && r.caller.is_some() && r.time.is_some());
        assert!(r.candid.is_none() && r.module_file.is_none());
    }
    let install = &done.entries[0].record;
    let sha = install.module.clone().unwrap();
    assert!(
        out.parent()
            .unwrap()
            .join("modules")
            .join(format!("{sha}.wasm"))
            .is_file()
    );
    let get = done.entries[2].record.outcome.as_ref().unwrap();
    assert_eq!(
        canister_vm::candid_text::decode_reply(get.reply.as_ref().unwrap()),
        r#"(opt blob "one")"#
    );
    assert_eq!(done.entries[3].record.time, Some(1_800_000_000_000_000_000));
    assert!(
        done.entries[4]
            .record
            .outcome
            .as_ref()
            .unwrap()
            .reject
            .is_some()
    );

    // The completed log replays, and matches the same messages run through the library.
    let stdout = cli(&["replay", out.to_str().unwrap()]).ok();
    assert!(stdout.contains("replayed 6 messages"), "{stdout}");
    let mut recorder = Recorder::new();
    let none = MessageInput::default();
    recorder
        .install(
            test_canister_bytes("kv"),
            &arg("()"),
            CanisterConfig::default(),
            &none,
        )
        .unwrap();
    recorder
        .update("put", &arg("(1 : nat64, blob \"one\")"), &none)
        .unwrap();
    recorder.query("get", &arg("(1 : nat64)"), &none).unwrap();
    recorder
        .update(
            "fill",
            &arg("(5 : nat64)"),
            &at(Some(1_800_000_000_000_000_000), Some("aaaaa-aa")),
        )
        .unwrap();
    recorder.update("put", b"DIDL", &none).unwrap();
    recorder.query("len", &arg("()"), &none).unwrap();
    let (expected, _) = recorder.into_log();
    assert_eq!(
        done.records().collect::<Vec<_>>(),
        expected.records().collect::<Vec<_>>()
    );

    // In place: the input log is replaced atomically.
    cli(&["replay", log, "--record"]).ok();
    assert_eq!(Log::read(&log_path).unwrap().to_jsonl(), done.to_jsonl());
}

#[test]
fn malformed_logs_are_reported_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_file(
        tmp.path(),
        "bad.jsonl",
        "{\"kind\":\"install\",\"module_file\":\"x.wasm\"}\n{\"kind\":\"update\"}\n",
    );
    let stderr = cli(&["replay", path.to_str().unwrap()]).fails(2);
    assert!(stderr.contains("bad.jsonl:2: "), "{stderr}");
    assert!(stderr.contains("`method`"), "{stderr}");
    let path = write_file(tmp.path(), "worse.jsonl", "{\"kind\":\"install\",}\n{}\n");
    let stderr = cli(&["replay", path.to_str().unwrap()]).fails(2);
    assert!(stderr.contains("worse.jsonl:1: invalid record"), "{stderr}");
    let missing = PathBuf::from(tmp.path()).join("modules-missing.jsonl");
    fs::write(
        &missing,
        format!(
            "{{\"kind\":\"install\",\"module\":\"{}\"}}\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let stderr = cli(&["replay", missing.to_str().unwrap(), "--record"]).fails(2);
    assert!(stderr.contains("record 1 (line 1): module"), "{stderr}");
}
