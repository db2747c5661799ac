//! Deterministic instruction metering seen from the CLI: limits, rollback, reproducibility.

use crate::support::{cli, memories, write_file};

const LOOPER: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  ;; Sums 0..1000 with a stable write per iteration, replies with performance_counter(0).
  (func (export "canister_update work") (local $i i64)
    (drop (call $grow (i64.const 1)))
    (loop $l
      (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (local.get $i)))
      (call $swrite (i64.const 0) (i64.const 0) (i64.const 8))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 1000))))
    (i64.store (i32.const 8) (call $perf (i32.const 0)))
    (call $append (i32.const 8) (i32.const 8))
    (call $reply))
  ;; Writes heap, stable memory and a global, then never ends.
  (func (export "canister_update spin")
    (global.set $g (i32.const 99))
    (i64.store (i32.const 16) (i64.const -1))
    (call $swrite (i64.const 8) (i64.const 16) (i64.const 8))
    (loop $forever (br $forever)))
)
"#;

fn instructions(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("instructions: "))
        .unwrap_or_else(|| panic!("no instruction count in {stderr:?}"))
        .parse()
        .unwrap()
}

#[test]
fn an_endless_update_hits_the_limit_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = write_file(tmp.path(), "looper.wat", LOOPER);
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
    cli(&["call", d, "work", "--output", "hex"]).ok();
    let before = memories(&dir);
    let run = cli(&[
        "call",
        d,
        "spin",
        "--instruction-limit",
        "2000000",
        "--stats",
    ]);
    let err = run.fails(1);
    assert!(err.contains("reject code 5"), "{err}");
    assert!(
        err.contains("instructions for single message execution"),
        "{err}"
    );
    // Metering overruns the limit by at most one basic block; as on the replica, the count
    // reported is at most the limit.
    let used = instructions(&err);
    assert_eq!(used, 2_000_000);
    assert_eq!(memories(&dir), before, "the endless update changed state");
}

#[test]
fn counts_are_identical_across_runs_and_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = write_file(tmp.path(), "looper.wat", LOOPER);
    let mut seen = Vec::new();
    for run in 0..2 {
        let dir = tmp.path().join(format!("c{run}"));
        let d = dir.to_str().unwrap();
        cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
        let mut counts = Vec::new();
        for _ in 0..3 {
            let out = cli(&["call", d, "work", "--output", "hex", "--stats"]);
            counts.push(instructions(&out.stderr));
            // performance_counter(0) inside the message is below the final count.
            let reply = out.ok();
            let bytes = hex::decode(reply).unwrap();
            let inside = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            assert!(inside > 0 && inside <= counts[counts.len() - 1]);
        }
        assert!(
            counts[0] > 1000 * 20,
            "stable writes are charged: {counts:?}"
        );
        seen.push(counts);
    }
    assert_eq!(seen[0], seen[1]);
}

/// Metering checks at function entries and loop headers only, so straight-line code can end a
/// message a little below zero: that message exceeded its limit too.
#[test]
fn a_message_ending_below_zero_exceeded_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = write_file(
        tmp.path(),
        "straight.wat",
        r#"(module (memory 1)
             (func (export "canister_update busy")
               (i64.store (i32.const 0)
                 (i64.mul (i64.add (i64.const 1) (i64.const 2)) (i64.sub (i64.const 7) (i64.const 3))))))"#,
    );
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
    let err = cli(&["call", d, "busy", "--instruction-limit", "3"]).fails(1);
    assert!(
        err.contains("instructions for single message execution"),
        "{err}"
    );
    assert_eq!(memories(&dir).0[..8], [0; 8], "rolled back");
    // With enough instructions the same message runs (and fails only for not replying).
    let err = cli(&["call", d, "busy", "--instruction-limit", "1000"]).fails(1);
    assert!(err.contains("did not reply"), "{err}");
}
