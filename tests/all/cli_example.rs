//! The shipped example canister, end to end through the CLI.

use crate::support::{cli, memories, repo, write_file};

#[test]
fn example_counter_lifecycle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("counter");
    let wat = repo().join("examples/counter.wat");
    let out = cli(&[
        "install".as_ref(),
        wat.as_os_str(),
        "--state".as_ref(),
        dir.as_os_str(),
    ]);
    assert!(out.stderr.contains("counter initialised"), "{out:?}");
    out.ok();
    let d = dir.to_str().unwrap();
    assert_eq!(cli(&["call", d, "inc"]).ok(), "(1 : nat64)");
    assert_eq!(cli(&["call", d, "inc"]).ok(), "(2 : nat64)");
    assert_eq!(cli(&["call", d, "read", "--query"]).ok(), "(2 : nat64)");
    // Candid bytes: DIDL, no types, one nat64 (0x78), value 2.
    assert_eq!(
        cli(&["call", d, "read", "--query", "--output", "hex"]).ok(),
        "4449444c0001780200000000000000"
    );
    // A query method called as an update runs replicated and its changes are discarded.
    assert_eq!(cli(&["call", d, "read"]).ok(), "(2 : nat64)");
    // Upgrade keeps the counter through stable memory.
    cli(&["upgrade".as_ref(), dir.as_os_str(), wat.as_os_str()]).ok();
    assert_eq!(cli(&["call", d, "inc"]).ok(), "(3 : nat64)");
    let info = cli(&["info", d]).ok();
    assert!(info.contains("stable memory: 1 pages"), "{info}");
    assert!(info.contains("updates:       inc"), "{info}");
    assert!(info.contains("queries:       read"), "{info}");
}

/// A canister that writes heap, stable memory and a global, then traps, rejects or does not
/// reply on request.
const TRAPPER: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (global $g (mut i64) (i64.const 0))
  (data (i32.const 100) "boom")
  (func $mutate
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (i64.store (i32.const 0) (global.get $g))
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 70000) (i32.const 7))
    (drop (call $grow (i64.const 1)))
    (call $swrite (global.get $g) (i64.const 0) (i64.const 8)))
  (func (export "canister_update ok") (call $mutate) (call $reply))
  (func (export "canister_update trap") (call $mutate) (call $trap (i32.const 100) (i32.const 4)))
  (func (export "canister_update unreachable") (call $mutate) unreachable)
  (func (export "canister_update reject") (call $mutate) (call $reject (i32.const 100) (i32.const 4)))
  (func (export "canister_update noreply") (call $mutate))
  (func (export "canister_query q") (call $mutate) (call $reply))
)
"#;

#[test]
fn failed_updates_and_queries_leave_state_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let wat = write_file(tmp.path(), "trapper.wat", TRAPPER);
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    cli(&["install", wat.to_str().unwrap(), "--state", d]).ok();
    cli(&["call", d, "ok"]).ok();
    let before = memories(&dir);
    let err = cli(&["call", d, "trap"]).fails(1);
    assert!(err.contains("reject code 5"), "{err}");
    assert!(err.contains("trapped explicitly: boom"), "{err}");
    let err = cli(&["call", d, "unreachable"]).fails(1);
    assert!(
        err.contains("reject code 5") && err.contains("unreachable"),
        "{err}"
    );
    cli(&["call", d, "q", "--query"]).ok();
    assert_eq!(
        memories(&dir),
        before,
        "a trapping message or a query changed memory"
    );
    // The global was rolled back too: the next successful update sees 1 and writes 2.
    cli(&["call", d, "ok"]).ok();
    let (heap, stable) = memories(&dir);
    assert_eq!(heap[0], 2);
    assert_eq!(
        heap.len(),
        3 * 65536,
        "two successful updates grew the heap twice"
    );
    assert_eq!(stable.len(), 2 * 65536);
    // As on the IC, an explicit reject and a missing reply keep the message's changes: each
    // increments the global and grows both memories again.
    let err = cli(&["call", d, "reject"]).fails(1);
    assert!(
        err.contains("reject code 4") && err.contains("boom"),
        "{err}"
    );
    let err = cli(&["call", d, "noreply"]).fails(1);
    assert!(err.contains("did not reply"), "{err}");
    let (heap, stable) = memories(&dir);
    assert_eq!(heap[0], 4);
    assert_eq!((heap.len(), stable.len()), (5 * 65536, 4 * 65536));
}
