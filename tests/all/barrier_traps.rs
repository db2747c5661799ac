//! Write barrier and traps (issue 14, fault 2), on whole canisters: a store whose address wraps
//! around 2^32 followed by a trapping store from the same base must be rolled back
//! (`repro/rollback-leak2.wat`), and a grouped mark must not trap before the code between the
//! stores runs (`repro/trap-order-canister.wat`). Every message is checked against full
//! snapshots of heap and stable memory: a message that does not commit leaves every byte as it
//! was, and one that commits changes only pages in its dirty set; `replay` of the state
//! directory then passes.

use std::path::Path;

use canister_vm::runtime::persistent::PersistentCanister;
use canister_vm::runtime::{CanisterConfig, MessageInput, Outcome};

use crate::support::cli;

/// `repro/rollback-leak2.wat`: `x` writes 1.5f32 at heap 1640 through base -1 (the address
/// wraps), then traps on an out-of-bounds store from the same base; `r` replies the word at 1640.
const ROLLBACK_LEAK: &str = r#"(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 16) "DIDL\00\01\79")
  (func (export "canister_update x")
    (local $b i32)
    (local.set $b (i32.const -1))
    (f32.store offset=5 (i32.add (local.get $b) (i32.const 1636)) (f32.const 1.5))
    (i64.store8 (local.get $b) (i64.const 0x99))
    (call $reply))
  (func (export "canister_query r")
    (i32.store (i32.const 23) (i32.load (i32.const 1640)))
    (call $append (i32.const 16) (i32.const 11))
    (call $reply))
)"#;

/// `repro/trap-order-canister.wat`: `t` stores through a wrapping address, prints "hello",
/// then traps on an out-of-bounds store from the same base local; `u` stores instead of
/// printing; `v` (the control) traps on a constant address.
const TRAP_ORDER: &str = r#"(module
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 100) "hello")
  (func (export "canister_update t")
    (local $b i32)
    (local.set $b (i32.const -2904))
    (i32.store8 (i32.add (local.get $b) (i32.const 3530)) (i32.const 1))
    (call $print (i32.const 100) (i32.const 5))
    (i32.store16 offset=1548 (local.get $b) (i32.const 2))
    (call $reply))
  (func (export "canister_update u")
    (local $b i32)
    (local.set $b (i32.const -2904))
    (i32.store8 (i32.add (local.get $b) (i32.const 3530)) (i32.const 1))
    (i32.store (i32.const 200) (i32.const 7))
    (i32.store16 offset=1548 (local.get $b) (i32.const 2))
    (call $reply))
  (func (export "canister_update v")
    (local $b i32)
    (local.set $b (i32.const -2904))
    (i32.store8 (i32.add (local.get $b) (i32.const 3530)) (i32.const 1))
    (call $print (i32.const 100) (i32.const 5))
    (i32.store16 (i32.const -1356) (i32.const 2))
    (call $reply))
)"#;

/// Candid `(0 : nat32)`.
const ZERO_NAT32: &[u8] = b"DIDL\x00\x01\x79\x00\x00\x00\x00";

fn install(dir: &Path, wat: &str) -> PersistentCanister {
    let (canister, outcome) = PersistentCanister::install(
        dir,
        wat::parse_str(wat).unwrap(),
        b"DIDL\x00\x00",
        CanisterConfig::default(),
        &MessageInput::default(),
    )
    .unwrap();
    assert!(outcome.result.is_ok(), "{outcome:?}");
    canister.unwrap()
}

/// 4 KiB pages whose bytes differ (bytes past the end of `before` count as zero).
fn changed_pages(before: &[u8], after: &[u8]) -> Vec<u64> {
    after
        .chunks(4096)
        .enumerate()
        .filter(|(p, now)| {
            let start = p * 4096;
            now.iter()
                .enumerate()
                .any(|(i, b)| *b != before.get(start + i).copied().unwrap_or(0))
        })
        .map(|(p, _)| p as u64)
        .collect()
}

/// Runs one message (`update` or `query`) and checks it against full snapshots: a message that
/// did not commit (a reject, or any query) leaves heap and stable memory byte for byte as they
/// were; one that committed changed only pages of its dirty set; the incremental state hash is
/// the one computed from scratch.
fn checked(canister: &mut PersistentCanister, query: bool, method: &str, arg: &[u8]) -> Outcome {
    let heap = canister.canister().heap().to_vec();
    let stable = canister.canister().stable().to_vec();
    let none = MessageInput::default();
    let outcome = if query {
        canister.query(method, arg, &none).unwrap()
    } else {
        canister.update(method, arg, &none).unwrap()
    };
    let c = canister.canister();
    if query || outcome.result.is_err() {
        assert!(
            c.heap() == heap,
            "`{method}` did not commit but changed the heap"
        );
        assert!(
            c.stable() == stable,
            "`{method}` did not commit but changed stable memory"
        );
    } else {
        let missing = |before: &[u8], after: &[u8], dirty: &[u64]| -> Vec<u64> {
            let mut m = changed_pages(before, after);
            m.retain(|p| !dirty.contains(p));
            m
        };
        assert_eq!(
            missing(&heap, c.heap(), &outcome.dirty.heap),
            [] as [u64; 0]
        );
        assert_eq!(
            missing(&stable, c.stable(), &outcome.dirty.stable),
            [] as [u64; 0]
        );
    }
    assert_eq!(
        c.state_hash(),
        c.state_hash_from_scratch(),
        "after `{method}`"
    );
    outcome
}

fn trap_message(outcome: &Outcome) -> String {
    match &outcome.result {
        Err(reject) => reject.message.clone(),
        Ok(reply) => panic!("expected a trap, got the reply {reply:?}"),
    }
}

/// `replay` of the state directory passes.
fn replay_passes(dir: &Path) {
    let stdout = cli(&["replay", dir.to_str().unwrap()]).ok();
    assert!(stdout.contains("state hash"), "{stdout}");
}

#[test]
fn wrapped_store_before_a_trap_is_rolled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("leak");
    let mut canister = install(&dir, ROLLBACK_LEAK);
    let before = checked(&mut canister, true, "r", b"DIDL\x00\x00");
    assert_eq!(before.result.as_deref(), Ok(ZERO_NAT32));
    for _ in 0..2 {
        let x = checked(&mut canister, false, "x", b"DIDL\x00\x00");
        assert!(trap_message(&x).contains("heap out of bounds"), "{x:?}");
        // Same process: the write at 1640 must have been undone.
        let r = checked(&mut canister, true, "r", b"DIDL\x00\x00");
        assert_eq!(r.result.as_deref(), Ok(ZERO_NAT32), "{r:?}");
    }
    drop(canister);
    replay_passes(&dir);
}

#[test]
fn debug_print_comes_before_a_later_stores_trap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("order");
    let mut canister = install(&dir, TRAP_ORDER);
    for method in ["t", "v"] {
        let outcome = checked(&mut canister, false, method, b"DIDL\x00\x00");
        // Printed, then trapped at the out-of-bounds store.
        assert_eq!(outcome.debug_log, ["hello"], "`{method}`: {outcome:?}");
        assert!(
            trap_message(&outcome).contains("heap out of bounds"),
            "`{method}`: {outcome:?}"
        );
    }
    let u = checked(&mut canister, false, "u", b"DIDL\x00\x00");
    assert!(trap_message(&u).contains("heap out of bounds"), "{u:?}");
    // Nothing of the trapped messages stayed.
    let heap = canister.canister().heap();
    assert_eq!((heap[626], heap[200]), (0, 0));
    drop(canister);
    replay_passes(&dir);
}
