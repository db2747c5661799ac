//! The local subnet: inter-canister calls with the IC's semantics (call contexts, callbacks as
//! their own transactions, cleanup, reject codes, cycles, self-calls), in one deterministic
//! order. The canister is one WAT module that relays calls as its argument tells it.

use candid::Principal;
use canister_vm::runtime::subnet::{MessageKind, Subnet, canister_id};
use canister_vm::runtime::{Canister, CanisterConfig, MessageInput, RejectCode};

/// A relay canister.
///
/// `call` takes `[n][callee: n bytes][m][method: m bytes][mode][cycles: 8 bytes LE][payload]`
/// and calls `method` on `callee` with `payload`, attaching `cycles`, with a cleanup callback.
/// Before calling it adds 1 to `$before` (committed with the message). Its callbacks:
/// - reply: adds 10 to `$seen`, then replies `"ok:" ++ reply` — or, in mode 1, traps after
///   adding; in mode 2 makes a second call (to `echo` on itself) and answers from that one's
///   reply callback.
/// - reject: replies `"rejected:" ++ [code] ++ message`.
/// - cleanup: adds 1 to `$cleanups` (committed: cleanup is its own transaction).
///
/// `echo` replies its argument, `reject` rejects with it, `trap` traps with it, `silent` returns
/// without answering, `accept` accepts half the cycles available and replies the amount (16
/// bytes LE); `stats` (query) replies `$before`, `$seen`, `$cleanups`, the refund the last
/// callback saw (8 bytes LE each) and the cycle balance (16 bytes LE).
pub(crate) const RELAY: &str = include_str!("../support/relay.wat");

const ANON: Principal = Principal::anonymous();

pub(crate) fn relay() -> Vec<u8> {
    wat::parse_str(RELAY).unwrap()
}

fn subnet_with(n: usize) -> (Subnet, Vec<Principal>) {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let ids = (0..n)
        .map(|_| subnet.install_raw(relay(), b"", ANON).unwrap())
        .collect();
    (subnet, ids)
}

/// The argument of `call`.
pub(crate) fn call_arg(
    callee: Principal,
    method: &str,
    mode: u8,
    cycles: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut arg = vec![callee.as_slice().len() as u8];
    arg.extend_from_slice(callee.as_slice());
    arg.push(method.len() as u8);
    arg.extend_from_slice(method.as_bytes());
    arg.push(mode);
    arg.extend_from_slice(&cycles.to_le_bytes());
    arg.extend_from_slice(payload);
    arg
}

struct Stats {
    before: u64,
    seen: u64,
    cleanups: u64,
    refund: u64,
    balance: u128,
}

fn stats(subnet: &mut Subnet, id: Principal) -> Stats {
    let bytes = subnet
        .query_call_raw(id, "stats", b"", ANON)
        .unwrap()
        .unwrap();
    let u = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    Stats {
        before: u(0),
        seen: u(8),
        cleanups: u(16),
        refund: u(24),
        balance: u128::from_le_bytes(bytes[32..48].try_into().unwrap()),
    }
}

#[test]
fn canister_ids_follow_the_local_replica_ranges() {
    let (subnet, ids) = subnet_with(3);
    let text: Vec<String> = ids.iter().map(|p| p.to_text()).collect();
    assert_eq!(
        text,
        [
            "rwlgt-iiaaa-aaaaa-aaaaa-cai",
            "rrkah-fqaaa-aaaaa-aaaaq-cai",
            "ryjl3-tyaaa-aaaaa-aaaba-cai"
        ]
    );
    assert_eq!(subnet.canister_ids(), ids);
    assert_eq!(canister_id(2), ids[2]);
}

#[test]
fn a_call_and_its_reply_callback() {
    let (mut subnet, ids) = subnet_with(2);
    let (a, b) = (ids[0], ids[1]);
    let reply = subnet
        .update_call_raw(a, "call", &call_arg(b, "echo", 0, 0, b"hello"), ANON)
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"ok:hello");
    let s = stats(&mut subnet, a);
    assert_eq!((s.before, s.seen, s.cleanups), (1, 10, 0));
    // Three messages, in order: the ingress request to a, a's request to b, a's reply callback.
    let h = subnet.history();
    assert_eq!(h.len(), 3);
    assert_eq!((h[0].canister, h[0].kind), (a, MessageKind::Request));
    assert_eq!(
        (h[1].canister, h[1].kind, h[1].caller),
        (b, MessageKind::Request, a)
    );
    assert_eq!(h[1].response, Some(Ok(b"hello".to_vec())));
    assert_eq!((h[2].canister, h[2].kind), (a, MessageKind::ReplyCallback));
    assert_eq!(h[2].method, "echo");
    // The first message made a call and did not answer; the callback answered.
    assert_eq!(h[0].response, None);
    assert_eq!(h[2].response, Some(Ok(b"ok:hello".to_vec())));
    assert!(h.iter().all(|m| m.instructions > 0 && !m.trapped));
}

#[test]
fn a_reject_reaches_the_reject_callback_with_code_and_message() {
    let (mut subnet, ids) = subnet_with(2);
    let reply = subnet
        .update_call_raw(
            ids[0],
            "call",
            &call_arg(ids[1], "reject", 0, 0, b"no way"),
            ANON,
        )
        .unwrap()
        .unwrap();
    assert_eq!(reply, [b"rejected:".as_slice(), &[4], b"no way"].concat());
}

#[test]
fn a_callee_trap_is_a_canister_error_and_rolls_back_the_callee_only() {
    let (mut subnet, ids) = subnet_with(2);
    let reply = subnet
        .update_call_raw(
            ids[0],
            "call",
            &call_arg(ids[1], "trap", 0, 0, b"boom"),
            ANON,
        )
        .unwrap()
        .unwrap();
    let (code, message) = (reply[9], String::from_utf8_lossy(&reply[10..]).into_owned());
    assert_eq!(code, RejectCode::CanisterError as u8);
    assert_eq!(
        message,
        format!("Canister {} trapped explicitly: boom", ids[1])
    );
    // The caller's first message committed.
    assert_eq!(stats(&mut subnet, ids[0]).before, 1);
}

#[test]
fn a_missing_callee_or_method_is_rejected_with_the_ic_codes() {
    let (mut subnet, ids) = subnet_with(1);
    let ghost = canister_id(7);
    let reply = subnet
        .update_call_raw(ids[0], "call", &call_arg(ghost, "echo", 0, 0, b""), ANON)
        .unwrap()
        .unwrap();
    assert_eq!(reply[9], RejectCode::DestinationInvalid as u8);
    assert_eq!(
        &reply[10..],
        format!("Canister {ghost} not found").as_bytes()
    );

    let reply = subnet
        .update_call_raw(ids[0], "call", &call_arg(ids[0], "nope", 0, 0, b""), ANON)
        .unwrap()
        .unwrap();
    assert_eq!(reply[9], RejectCode::CanisterError as u8);
    assert_eq!(
        &reply[10..],
        format!("Canister {} has no update method 'nope'", ids[0]).as_bytes()
    );

    // Ingress to a missing canister.
    let reject = subnet
        .update_call_raw(ghost, "echo", b"", ANON)
        .unwrap()
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::DestinationInvalid);
}

#[test]
fn a_trap_in_the_reply_callback_rolls_back_the_callback_only_and_runs_cleanup() {
    let (mut subnet, ids) = subnet_with(2);
    let reject = subnet
        .update_call_raw(ids[0], "call", &call_arg(ids[1], "echo", 1, 0, b"x"), ANON)
        .unwrap()
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert_eq!(
        reject.message,
        format!("Canister {} trapped explicitly: ok:", ids[0])
    );
    let s = stats(&mut subnet, ids[0]);
    // The request's change committed; the callback's `seen += 10` was undone; the cleanup's
    // change committed.
    assert_eq!((s.before, s.seen, s.cleanups), (1, 0, 1));
    let last = subnet.history().last().unwrap();
    assert!(last.trapped && last.cleanup);
    assert_eq!(last.kind, MessageKind::ReplyCallback);
}

#[test]
fn a_self_call_and_an_answer_from_a_second_callback() {
    let (mut subnet, ids) = subnet_with(1);
    let a = ids[0];
    // a calls itself (`echo`); the reply callback (mode 2) calls `echo` on itself again and
    // answers from that call's reply callback.
    let reply = subnet
        .update_call_raw(a, "call", &call_arg(a, "echo", 2, 0, b"first"), ANON)
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"ok:ok");
    let kinds: Vec<MessageKind> = subnet.history().iter().map(|m| m.kind).collect();
    use MessageKind::*;
    assert_eq!(
        kinds,
        [Request, Request, ReplyCallback, Request, ReplyCallback]
    );
    assert!(subnet.history().iter().all(|m| m.canister == a));
    assert_eq!(stats(&mut subnet, a).seen, 20);
}

#[test]
fn an_update_that_never_answers_is_rejected_once_its_calls_are_done() {
    let (mut subnet, ids) = subnet_with(2);
    let reply = subnet
        .update_call_raw(ids[0], "call", &call_arg(ids[1], "silent", 0, 0, b""), ANON)
        .unwrap()
        .unwrap();
    assert_eq!(reply[9], RejectCode::CanisterError as u8);
    assert_eq!(
        &reply[10..],
        format!("Canister {} did not reply to the call", ids[1]).as_bytes()
    );
    // Not answering does not undo the callee's changes (only a trap does).
    assert_eq!(stats(&mut subnet, ids[1]).before, 100);
}

#[test]
fn cycles_move_with_the_call_and_the_unaccepted_part_is_refunded() {
    let (mut subnet, ids) = subnet_with(2);
    let (a, b) = (ids[0], ids[1]);
    let start_a = stats(&mut subnet, a).balance;
    let start_b = stats(&mut subnet, b).balance;
    let reply = subnet
        .update_call_raw(a, "call", &call_arg(b, "accept", 0, 1_000, b""), ANON)
        .unwrap()
        .unwrap();
    let accepted = u128::from_le_bytes(reply[3..19].try_into().unwrap());
    assert_eq!(accepted, 500);
    let (sa, sb) = (stats(&mut subnet, a), stats(&mut subnet, b));
    assert_eq!(sa.refund, 500);
    assert_eq!(sa.balance, start_a - 500);
    assert_eq!(sb.balance, start_b + 500);

    // A rejected call refunds everything, and a trapping callee accepts nothing.
    let reply = subnet
        .update_call_raw(a, "call", &call_arg(b, "trap", 0, 1_000, b"t"), ANON)
        .unwrap()
        .unwrap();
    assert_eq!(reply[9], RejectCode::CanisterError as u8);
    let (sa, sb) = (stats(&mut subnet, a), stats(&mut subnet, b));
    assert_eq!(sa.refund, 1_000);
    assert_eq!((sa.balance, sb.balance), (start_a - 500, start_b + 500));
}

#[test]
fn a_query_called_by_a_canister_runs_replicated_and_keeps_no_cycles() {
    let (mut subnet, ids) = subnet_with(2);
    let (a, b) = (ids[0], ids[1]);
    let (start_a, start_b) = (stats(&mut subnet, a).balance, stats(&mut subnet, b).balance);
    let reply = subnet
        .update_call_raw(a, "call", &call_arg(b, "accept_q", 0, 1_000, b""), ANON)
        .unwrap()
        .unwrap();
    // The query accepted 500 while it ran, but its changes are discarded, the balance included:
    // all 1 000 cycles come back.
    assert_eq!(u128::from_le_bytes(reply[3..19].try_into().unwrap()), 500);
    let (sa, sb) = (stats(&mut subnet, a), stats(&mut subnet, b));
    assert_eq!(sa.refund, 1_000);
    assert_eq!((sa.balance, sb.balance), (start_a, start_b));
}

#[test]
fn the_same_history_gives_the_same_messages_and_states() {
    let run = || {
        let (mut subnet, ids) = subnet_with(3);
        for (i, mode) in [0u8, 1, 2, 0].into_iter().enumerate() {
            let callee = ids[(i + 1) % 3];
            let _ = subnet
                .update_call_raw(
                    ids[i % 3],
                    "call",
                    &call_arg(callee, "echo", mode, 7, b"d"),
                    ANON,
                )
                .unwrap();
        }
        let hashes: Vec<_> = ids
            .iter()
            .map(|id| subnet.canister(*id).unwrap().state_hash())
            .collect();
        (subnet.history().to_vec(), hashes)
    };
    let (h1, s1) = run();
    let (h2, s2) = run();
    assert_eq!(h1, h2);
    assert_eq!(s1, s2);
    assert!(h1.len() > 12, "{} messages", h1.len());
}

#[test]
fn a_canister_outside_a_subnet_cannot_call() {
    let mut c = Canister::create(
        relay(),
        CanisterConfig::default(),
        Principal::from_slice(&[4]),
    )
    .unwrap();
    let arg = call_arg(canister_id(1), "echo", 0, 0, b"");
    let reject = c
        .update("call", &arg, &MessageInput::default())
        .unwrap()
        .result
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(
        reject
            .message
            .contains("install it on a canister_vm::Subnet"),
        "{}",
        reject.message
    );
}

/// Counts heartbeats and timer firings; `arm` sets the global timer to `time + arg seconds`;
/// the timer callback also calls `echo` on itself (system tasks may call).
const TASKS: &str = r#"(module
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_caller_size" (func $caller_size (result i32)))
  (import "ic0" "time" (func $time (result i64)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 1)
  (table 1 funcref)
  (elem (i32.const 0) $on_reply)
  (global $beats (mut i64) (i64.const 0))
  (global $fired (mut i64) (i64.const 0))
  (global $echoes (mut i64) (i64.const 0))
  (global $task_caller (mut i32) (i32.const -1))
  (data (i32.const 100) "echo")
  (func $on_reply (param i32))
  (func (export "canister_heartbeat")
    (global.set $task_caller (call $caller_size))
    (global.set $beats (i64.add (global.get $beats) (i64.const 1))))
  (func (export "canister_global_timer")
    (global.set $fired (i64.add (global.get $fired) (i64.const 1)))
    (call $self_copy (i32.const 200) (i32.const 0) (call $self_size))
    (call $call_new (i32.const 200) (call $self_size) (i32.const 100) (i32.const 4)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (drop (call $call_perform)))
  (func (export "canister_update echo")
    (global.set $echoes (i64.add (global.get $echoes) (i64.const 1)))
    (call $reply))
  (func (export "canister_update arm")
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (drop (call $timer_set (i64.add (call $time)
      (i64.mul (i64.load (i32.const 0)) (i64.const 1000000000)))))
    (call $reply))
  (func (export "canister_query stats")
    (i64.store (i32.const 0) (global.get $beats))
    (i64.store (i32.const 8) (global.get $fired))
    (i64.store (i32.const 16) (global.get $echoes))
    (i64.store (i32.const 24) (i64.extend_i32_s (global.get $task_caller)))
    (call $append (i32.const 0) (i32.const 32))
    (call $reply)))"#;

#[test]
fn tick_runs_heartbeats_and_due_global_timers_once() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let tasks = subnet
        .install_raw(wat::parse_str(TASKS).unwrap(), b"", ANON)
        .unwrap();
    let plain = subnet.install_raw(relay(), b"", ANON).unwrap();
    let stats = |subnet: &mut Subnet| {
        let b = subnet
            .query_call_raw(tasks, "stats", b"", ANON)
            .unwrap()
            .unwrap();
        let u = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        (u(0), u(8), u(16), u(24))
    };
    subnet
        .update_call_raw(tasks, "arm", &10u64.to_le_bytes(), ANON)
        .unwrap()
        .unwrap();
    // 5 s later: a heartbeat, the timer is not due. (The relay canister has no tasks.)
    assert_eq!(subnet.tick(5).unwrap(), 1);
    assert_eq!(
        stats(&mut subnet),
        (1, 0, 0, 0),
        "the caller of a task is aaaaa-aa"
    );
    // 6 s more: due; it fires once, calls itself, and is deactivated.
    assert_eq!(subnet.tick(6).unwrap(), 2);
    assert_eq!(stats(&mut subnet), (2, 1, 1, 0));
    assert_eq!(subnet.canister(tasks).unwrap().system().global_timer, 0);
    assert_eq!(subnet.tick(100).unwrap(), 1);
    assert_eq!(stats(&mut subnet).1, 1);
    let kinds: Vec<MessageKind> = subnet
        .history()
        .iter()
        .filter(|m| m.canister == tasks)
        .map(|m| m.kind)
        .collect();
    use MessageKind::*;
    assert_eq!(
        kinds,
        [
            Request,
            Heartbeat,
            Heartbeat,
            GlobalTimer,
            Request,
            ReplyCallback,
            Heartbeat
        ]
    );
    assert!(
        subnet
            .history()
            .iter()
            .all(|m| m.canister != plain || m.kind == Request)
    );
}

/// `canister_inspect_message` accepts every method but `deny`, whose argument it reads; `boom`
/// makes it trap. It counts its runs in a global (discarded: it runs like a query), and `bump`
/// counts accepted updates.
const INSPECTED: &str = r#"(module
  (import "ic0" "msg_method_name_size" (func $name_size (result i32)))
  (import "ic0" "msg_method_name_copy" (func $name_copy (param i32 i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "accept_message" (func $accept))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (memory 1)
  (global $inspections (mut i64) (i64.const 0))
  (global $bumps (mut i64) (i64.const 0))
  (data (i32.const 100) "denyboom")
  (func (export "canister_inspect_message")
    (global.set $inspections (i64.add (global.get $inspections) (i64.const 1)))
    (call $name_copy (i32.const 0) (i32.const 0) (call $name_size))
    ;; "deny" with a non-empty argument is refused; "boom" traps.
    (if (i32.and (i32.eq (call $name_size) (i32.const 4))
                 (i32.eq (i32.load (i32.const 0)) (i32.load (i32.const 100))))
      (then (if (i32.gt_u (call $arg_size) (i32.const 0)) (then return))))
    (if (i32.and (i32.eq (call $name_size) (i32.const 4))
                 (i32.eq (i32.load (i32.const 0)) (i32.load (i32.const 104))))
      (then (call $trap (i32.const 104) (i32.const 4))))
    (call $accept))
  (func $answer
    (i64.store (i32.const 200) (global.get $bumps))
    (i64.store (i32.const 208) (global.get $inspections))
    (call $append (i32.const 200) (i32.const 16))
    (call $reply))
  (func (export "canister_update bump")
    (global.set $bumps (i64.add (global.get $bumps) (i64.const 1)))
    (call $answer))
  (func (export "canister_update deny") (call $answer))
  (func (export "canister_update boom") (call $answer))
  (func (export "canister_query read") (call $answer))
)"#;

#[test]
fn inspect_message_decides_which_ingress_updates_are_accepted() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let id = subnet
        .install_raw(wat::parse_str(INSPECTED).unwrap(), b"", ANON)
        .unwrap();
    let counts = |r: Vec<u8>| {
        (
            u64::from_le_bytes(r[..8].try_into().unwrap()),
            u64::from_le_bytes(r[8..16].try_into().unwrap()),
        )
    };
    // Accepted: runs, and sees no inspection in its own state (inspection changes nothing).
    let r = subnet
        .update_call_raw(id, "bump", b"", ANON)
        .unwrap()
        .unwrap();
    assert_eq!(counts(r), (1, 0));
    let (time, hash) = (subnet.time(), subnet.state_hash());
    // Refused by the hook: a canister reject, and nothing changed, not even the clock.
    let refused = subnet
        .update_call_raw(id, "deny", b"x", ANON)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, RejectCode::CanisterReject, "{refused:?}");
    assert!(refused.message.contains("accept_message"), "{refused:?}");
    let trapped = subnet
        .update_call_raw(id, "boom", b"", ANON)
        .unwrap()
        .unwrap_err();
    assert_eq!(trapped.code, RejectCode::CanisterError, "{trapped:?}");
    assert!(trapped.message.contains("boom"), "{trapped:?}");
    assert_eq!((subnet.time(), subnet.state_hash()), (time, hash));
    assert!(subnet.history().iter().all(|e| e.method == "bump"));
    // The same method with an empty argument is accepted; queries are not inspected.
    let r = subnet
        .update_call_raw(id, "deny", b"", ANON)
        .unwrap()
        .unwrap();
    assert_eq!(counts(r), (1, 0));
    let r = subnet
        .query_call_raw(id, "read", b"", ANON)
        .unwrap()
        .unwrap();
    assert_eq!(counts(r), (1, 0));
    // Calls from canisters are not inspected (only ingress messages are): the relay's call
    // to `deny` with an argument reaches the method.
    let relay = subnet.install_raw(relay(), b"", ANON).unwrap();
    let arg = call_arg(id, "deny", 0, 0, b"x");
    let r = subnet
        .update_call_raw(relay, "call", &arg, ANON)
        .unwrap()
        .unwrap();
    assert!(r.starts_with(b"ok:"), "{}", String::from_utf8_lossy(&r));
}

/// A canister whose `go` calls its own `pong` and whose reply callback replies with
/// `performance_counter(1)` and `performance_counter(0)` (8 bytes LE each); `both` replies the
/// two counters of an ordinary update.
const CONTEXT_COUNTER: &str = r#"(module
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
  (memory 1)
  (table 1 funcref)
  (elem (i32.const 0) $counters)
  (data (i32.const 100) "pong")
  (func $counters (param $env i32)
    (i64.store (i32.const 0) (call $perf (i32.const 1)))
    (i64.store (i32.const 8) (call $perf (i32.const 0)))
    (call $append (i32.const 0) (i32.const 16))
    (call $reply))
  (func (export "canister_update go")
    (call $self_copy (i32.const 200) (i32.const 0) (call $self_size))
    (call $call_new (i32.const 200) (call $self_size) (i32.const 100) (i32.const 4)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (drop (call $call_perform)))
  (func (export "canister_update pong") (call $reply))
  (func (export "canister_update both") (call $counters (i32.const 0))))"#;

/// `performance_counter(1)` is the replica's call context counter: in a callback, what the
/// context's earlier messages executed plus the callback so far; elsewhere the same as
/// `performance_counter(0)`.
#[test]
fn performance_counter_1_counts_the_whole_call_context() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let a = subnet
        .install_raw(wat::parse_str(CONTEXT_COUNTER).unwrap(), b"", ANON)
        .unwrap();
    let counters = |bytes: Vec<u8>| {
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        (word(0), word(8))
    };
    let (context, message) = counters(
        subnet
            .update_call_raw(a, "both", b"", ANON)
            .unwrap()
            .unwrap(),
    );
    // Both reads are in one basic block, charged when it started: the second read differs by
    // its own overhead (200) only, and outside a callback counter 1 is counter 0.
    assert_eq!(message, context + 200, "{context} {message}");

    let (context, message) = counters(subnet.update_call_raw(a, "go", b"", ANON).unwrap().unwrap());
    // The messages of the call context: `go`, then (after `pong`, which runs in a call context
    // of its own) the reply callback.
    let h = subnet.history();
    let n = h.len();
    assert_eq!(h[n - 1].kind, MessageKind::ReplyCallback);
    assert_eq!(h[n - 2].method, "pong");
    let go = h[n - 3].instructions;
    assert!(go > 5_000, "call_perform alone costs 5 000: {go}");
    // In the callback, counter 1 (read first) is `go`'s count plus the callback so far, which
    // is counter 0 less the second read's overhead.
    assert_eq!(context, go + message - 200);
}
