//! The lifecycle through the library API (no CLI): upgrades that fail, persistence of globals,
//! rollback across memory growth.

use canister_vm::runtime::{Canister, CanisterConfig, MessageInput, RejectCode};
use canister_vm::state::{StableMode, StateDir};

const EMPTY: &[u8] = b"DIDL\0\0";

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// v1 keeps a counter in a mutable global and on the heap; its upgrade hooks save/restore the
/// counter through stable memory. `$fail` decides whether post_upgrade traps.
fn module(post_upgrade_traps: bool) -> Vec<u8> {
    let post = if post_upgrade_traps {
        "unreachable"
    } else {
        "(call $sread (i64.const 0) (i64.const 0) (i64.const 8)) (global.set $g (i64.load (i32.const 0)))"
    };
    wat(&format!(
        r#"(module
          (import "ic0" "msg_reply" (func $reply))
          (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
          (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
          (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
          (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
          (memory (export "memory") 1)
          (global $g (mut i64) (i64.const 0))
          (func (export "canister_update inc")
            (global.set $g (i64.add (global.get $g) (i64.const 1)))
            (i64.store (i32.const 0) (global.get $g))
            (call $append (i32.const 0) (i32.const 8))
            (call $reply))
          (func (export "canister_update grow_and_trap")
            (drop (memory.grow (i32.const 3)))
            (global.set $g (i64.const 1000))
            unreachable)
          (func (export "canister_pre_upgrade")
            (drop (call $grow (i64.const 1)))
            (i64.store (i32.const 0) (global.get $g))
            (call $swrite (i64.const 0) (i64.const 0) (i64.const 8)))
          (func (export "canister_post_upgrade") {post}))"#
    ))
}

fn counter(outcome: &canister_vm::runtime::Outcome) -> u64 {
    let bytes = outcome.result.as_ref().expect("a reply");
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

fn new_canister(mode: StableMode) -> Canister {
    let config = CanisterConfig::default().stable_mode(mode);
    let mut c =
        Canister::create(module(false), config, candid::Principal::from_slice(&[4])).unwrap();
    c.init(EMPTY, &MessageInput::default())
        .unwrap()
        .result
        .unwrap();
    c
}

#[test]
fn globals_and_memory_survive_a_round_trip_through_disk() {
    for mode in [StableMode::Native, StableMode::Syscall] {
        let mut c = new_canister(mode);
        let input = MessageInput::default();
        assert_eq!(counter(&c.update("inc", EMPTY, &input).unwrap()), 1);
        assert_eq!(counter(&c.update("inc", EMPTY, &input).unwrap()), 2);
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        dir.save(&c.to_state()).unwrap();
        let mut back =
            Canister::from_state(dir.load().unwrap(), CanisterConfig::default()).unwrap();
        assert_eq!(back.heap(), c.heap());
        assert_eq!(counter(&back.update("inc", EMPTY, &input).unwrap()), 3);
        assert_eq!(
            back.config().get_stable_mode(),
            mode,
            "the mode is recorded"
        );
    }
}

#[test]
fn a_trap_after_memory_growth_rolls_back_size_and_globals() {
    let mut c = new_canister(StableMode::Syscall);
    let input = MessageInput::default();
    c.update("inc", EMPTY, &input).unwrap();
    let heap_before = c.heap().to_vec();
    let out = c.update("grow_and_trap", EMPTY, &input).unwrap();
    assert_eq!(out.result.unwrap_err().code, RejectCode::CanisterError);
    assert_eq!(c.heap(), &heap_before[..], "heap size and bytes restored");
    assert_eq!(
        counter(&c.update("inc", EMPTY, &input).unwrap()),
        2,
        "global restored"
    );
}

#[test]
fn upgrade_keeps_stable_memory_and_resets_heap() {
    let mut c = new_canister(StableMode::Native);
    let input = MessageInput::default();
    for _ in 0..5 {
        c.update("inc", EMPTY, &input).unwrap();
    }
    let version = c.system().canister_version;
    c.upgrade(module(false), EMPTY, &input)
        .unwrap()
        .result
        .unwrap();
    assert_eq!(c.system().canister_version, version + 1);
    assert_eq!(counter(&c.update("inc", EMPTY, &input).unwrap()), 6);
    assert_eq!(c.stable().len(), 65536);
}

#[test]
fn a_failed_upgrade_leaves_the_old_canister_running() {
    let mut c = new_canister(StableMode::Native);
    let input = MessageInput::default();
    for _ in 0..3 {
        c.update("inc", EMPTY, &input).unwrap();
    }
    let (heap, stable, version) = (
        c.heap().to_vec(),
        c.stable().to_vec(),
        c.system().canister_version,
    );
    let out = c.upgrade(module(true), EMPTY, &input).unwrap();
    let reject = out.result.unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(reject.message.contains("unreachable"), "{}", reject.message);
    assert_eq!(c.heap(), &heap[..]);
    assert_eq!(
        c.stable(),
        &stable[..],
        "pre_upgrade's stable write was undone"
    );
    assert_eq!(c.system().canister_version, version);
    assert_eq!(c.wasm(), &module(false)[..]);
    assert_eq!(counter(&c.update("inc", EMPTY, &input).unwrap()), 4);
}

#[test]
fn time_and_caller_are_inputs() {
    let text = r#"(module
      (import "ic0" "time" (func $time (result i64)))
      (import "ic0" "msg_caller_size" (func $csize (result i32)))
      (import "ic0" "msg_caller_copy" (func $ccopy (param i32 i32 i32)))
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (memory (export "memory") 1)
      (func (export "canister_update who")
        (i64.store (i32.const 0) (call $time))
        (call $ccopy (i32.const 8) (i32.const 0) (call $csize))
        (call $append (i32.const 0) (i32.add (i32.const 8) (call $csize)))
        (call $reply)))"#;
    let mut c = Canister::create(
        wat(text),
        CanisterConfig::default(),
        candid::Principal::from_slice(&[4]),
    )
    .unwrap();
    c.init(EMPTY, &MessageInput::default()).unwrap();
    let first = c
        .update("who", EMPTY, &MessageInput::default())
        .unwrap()
        .result
        .unwrap();
    let second = c
        .update("who", EMPTY, &MessageInput::default())
        .unwrap()
        .result
        .unwrap();
    let t = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
    assert_eq!(t(&second) - t(&first), canister_vm::state::TIME_STEP_NS);
    assert_eq!(&first[8..], &[4], "anonymous by default");
    let input = MessageInput {
        caller: Some(candid::Principal::from_slice(&[1, 2, 3])),
        time: Some(77),
    };
    let third = c.update("who", EMPTY, &input).unwrap().result.unwrap();
    assert_eq!(t(&third), 77);
    assert_eq!(&third[8..], &[1, 2, 3]);
}

/// Host functions that write the heap (`msg_arg_data_copy`, `stable_read` in system-API mode)
/// bypass the instrumented barrier: their pages must be dirty too, or a later rollback and the
/// state hash would use stale committed pages.
#[test]
fn heap_pages_written_by_host_functions_are_dirty() {
    let text = r#"(module
      (import "ic0" "msg_arg_data_size" (func $size (result i32)))
      (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
      (import "ic0" "stable_grow" (func $grow (param i32) (result i32)))
      (import "ic0" "stable_write" (func $swrite (param i32 i32 i32)))
      (import "ic0" "stable_read" (func $sread (param i32 i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (memory 2)
      ;; The argument lands on heap page 5 without any Wasm store.
      (func (export "canister_update take") (call $copy (i32.const 20480) (i32.const 0) (call $size)) (call $reply))
      ;; Stable bytes land on heap page 9 (a host write in system-API mode).
      (func (export "canister_update load")
        (drop (call $grow (i32.const 1)))
        (call $swrite (i32.const 0) (i32.const 20480) (i32.const 8))
        (call $sread (i32.const 36864) (i32.const 0) (i32.const 8))
        (call $reply))
      ;; Overwrites pages 5 and 9, then traps: both must come back.
      (func (export "canister_update clobber")
        (i64.store (i32.const 20480) (i64.const -1))
        (i64.store (i32.const 36864) (i64.const -1))
        unreachable))"#;
    for mode in [StableMode::Native, StableMode::Syscall] {
        let config = CanisterConfig::default().stable_mode(mode);
        let mut c =
            Canister::create(wat(text), config, candid::Principal::from_slice(&[4])).unwrap();
        let input = MessageInput::default();
        c.init(EMPTY, &input).unwrap();
        let out = c.update("take", b"abcdefgh", &input).unwrap();
        assert!(out.dirty.heap.contains(&5), "{mode:?}: {:?}", out.dirty);
        let out = c.update("load", &[], &input).unwrap();
        assert!(out.dirty.heap.contains(&9), "{mode:?}: {:?}", out.dirty);
        assert_eq!(c.state_hash(), c.state_hash_from_scratch(), "{mode:?}");
        let heap = c.heap().to_vec();
        assert!(c.update("clobber", &[], &input).unwrap().result.is_err());
        assert_eq!(&c.heap()[20480..20488], b"abcdefgh", "{mode:?}");
        assert_eq!(&c.heap()[36864..36872], b"abcdefgh", "{mode:?}");
        assert!(c.heap() == &heap[..]);
        assert_eq!(c.state_hash(), c.state_hash_from_scratch(), "{mode:?}");
    }
}
