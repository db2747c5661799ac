//! Canisters written with ic-cdk 0.20 and ic-cdk-timers 1 (`test-canisters/calls`) on a subnet:
//! async inter-canister calls through ic-cdk's executor (bounded and unbounded wait), a reject
//! from a trapping callee, `raw_rand` from the management canister, one-shot and interval
//! timers driven by `tick`, a heartbeat, composite queries, a factory that creates and installs
//! a canister through the management canister, and a trap after an `await` (cleanup).

use candid::{Decode, Encode, Principal};
use canister_vm::runtime::CanisterConfig;
use canister_vm::runtime::subnet::{MessageKind, Subnet};

use crate::canisters::test_canister_bytes;

fn anon() -> Principal {
    Principal::anonymous()
}

fn two() -> (Subnet, Principal, Principal) {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let wasm = test_canister_bytes("calls");
    let a = subnet
        .install_raw(wasm.clone(), &Encode!().unwrap(), anon())
        .unwrap();
    let b = subnet
        .install_raw(wasm, &Encode!().unwrap(), anon())
        .unwrap();
    (subnet, a, b)
}

#[test]
fn ic_cdk_calls_replies_rejects_and_raw_rand() {
    let (mut subnet, a, b) = two();
    let reply = subnet
        .update_call_raw(
            a,
            "call_echo",
            &Encode!(&b, &"hi".to_string()).unwrap(),
            anon(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(Decode!(&reply, String).unwrap(), "callee said: hi");
    let kinds: Vec<MessageKind> = subnet
        .history()
        .iter()
        .rev()
        .take(3)
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            MessageKind::ReplyCallback,
            MessageKind::Request,
            MessageKind::Request
        ]
    );

    let reply = subnet
        .update_call_raw(a, "call_boom", &Encode!(&b).unwrap(), anon())
        .unwrap()
        .unwrap();
    assert_eq!(
        Decode!(&reply, String).unwrap(),
        format!("code 5: Canister {b} trapped explicitly: boom")
    );

    let draw = |subnet: &mut Subnet| {
        let reply = subnet
            .update_call_raw(a, "random", &Encode!().unwrap(), anon())
            .unwrap()
            .unwrap();
        Decode!(&reply, serde_bytes::ByteBuf).unwrap().into_vec()
    };
    let (r1, r2) = (draw(&mut subnet), draw(&mut subnet));
    assert_eq!(r1.len(), 32);
    assert_ne!(r1, r2);
}

#[test]
fn ic_cdk_timers_and_heartbeat_run_on_tick() {
    let (mut subnet, a, _) = two();
    subnet
        .update_call_raw(a, "start_timers", &Encode!(&10u64, &3u64).unwrap(), anon())
        .unwrap()
        .unwrap();
    let counters = |subnet: &mut Subnet| {
        let reply = subnet
            .query_call_raw(a, "counters", &Encode!().unwrap(), anon())
            .unwrap()
            .unwrap();
        Decode!(&reply, u64, u64).unwrap()
    };
    assert_eq!(counters(&mut subnet), (0, 0));
    // 1 s: nothing due, one heartbeat.
    subnet.tick(1).unwrap();
    assert_eq!(counters(&mut subnet), (0, 1));
    // 3 s after start: the interval timer once.
    subnet.tick(2).unwrap();
    assert_eq!(counters(&mut subnet).0, 1);
    // 12 s after start: the one-shot (+100) and the interval at 6, 9, 12 s... ticks only see
    // what is due at their time, so each tick runs what has come due since.
    for _ in 0..3 {
        subnet.tick(3).unwrap();
    }
    let (fired, beats) = counters(&mut subnet);
    assert_eq!(
        fired,
        100 + 4,
        "one-shot once, the interval at 3, 6, 9 and 12 s"
    );
    assert_eq!(beats, 5);
    // The timers ran through ic-cdk-timers' self-call to its executor method.
    assert!(
        subnet
            .history()
            .iter()
            .any(|m| m.kind == MessageKind::GlobalTimer)
    );
    assert!(
        subnet
            .history()
            .iter()
            .any(|m| m.method == "<ic-cdk internal> timer_executor" && m.caller == a)
    );
}

/// Composite queries (ic-cdk `#[query(composite = true)]`): a composite query calls a query of
/// another canister and a composite query that calls its own canister; the caller's state
/// changes last across its awaits and are gone afterwards; calling an update is rejected; a
/// composite query cannot run as an update.
#[test]
fn composite_queries_call_queries_and_change_nothing() {
    let (mut subnet, a, b) = two();
    let hash = subnet.state_hash();
    let reply = subnet
        .query_call_raw(
            a,
            "composite_echo",
            &Encode!(&b, &"hi".to_string()).unwrap(),
            anon(),
        )
        .unwrap()
        .unwrap();
    let (text, before, after) = Decode!(&reply, String, u64, u64).unwrap();
    assert_eq!(text, "hi/depth:hi!");
    // The scratch counter went 1, 2, 3 through the evaluation's three messages ...
    assert_eq!((before, after), (1, 3));
    // ... and is 0 again after it; nothing in the subnet changed.
    let scratch = subnet
        .query_call_raw(a, "scratch", &Encode!().unwrap(), anon())
        .unwrap()
        .unwrap();
    assert_eq!(Decode!(&scratch, u64).unwrap(), 0);
    assert_eq!(subnet.state_hash(), hash);
    // The same again gives the same answer (the state was restored exactly).
    let again = subnet
        .query_call_raw(
            a,
            "composite_echo",
            &Encode!(&b, &"hi".to_string()).unwrap(),
            anon(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(again, reply);

    let reply = subnet
        .query_call_raw(a, "composite_update", &Encode!(&b).unwrap(), anon())
        .unwrap()
        .unwrap();
    let text = Decode!(&reply, String).unwrap();
    assert!(
        text.starts_with("code 5:") && text.contains("no query method 'echo'"),
        "{text}"
    );

    let err = subnet
        .update_call_raw(
            a,
            "composite_echo",
            &Encode!(&b, &"x".to_string()).unwrap(),
            anon(),
        )
        .unwrap()
        .unwrap_err();
    assert!(err.message.contains("replicated mode"), "{err:?}");
}

/// A factory written with ic-cdk: it creates a canister through the management canister (the
/// created canister is controlled by the factory), installs a module in it and reads its status;
/// the new canister then answers calls. Only its controller may ask for its status.
#[test]
fn an_ic_cdk_factory_creates_installs_and_reads_the_status() {
    let (mut subnet, a, _) = two();
    let counter = canister_vm::load::read_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/counter.wat"),
    )
    .unwrap();
    let arg = Encode!(&serde_bytes::ByteBuf::from(counter.clone())).unwrap();
    let reply = subnet
        .update_call_raw(a, "factory", &arg, anon())
        .unwrap()
        .unwrap();
    let (id, hash, status) =
        Decode!(&reply, Principal, Option<serde_bytes::ByteBuf>, String).unwrap();
    use sha2::Digest;
    assert_eq!(
        hash.unwrap().into_vec(),
        sha2::Sha256::digest(&counter).to_vec()
    );
    assert_eq!(status, "Running");
    assert_eq!(
        subnet.system_state(id).unwrap().controllers,
        vec![a.as_slice().to_vec()]
    );
    let inc = subnet
        .update_call_raw(id, "inc", &Encode!().unwrap(), anon())
        .unwrap()
        .unwrap();
    assert_eq!(Decode!(&inc, u64).unwrap(), 1);
    // The anonymous principal is not a controller of the factory's canister.
    let arg = Encode!(&StatusArg { canister_id: id }).unwrap();
    let err = subnet
        .update_call_raw(
            Principal::management_canister(),
            "canister_status",
            &arg,
            anon(),
        )
        .unwrap()
        .unwrap_err();
    assert!(err.message.contains("controller"), "{err:?}");
}

#[derive(candid::CandidType)]
struct StatusArg {
    canister_id: Principal,
}

/// ic-cdk code that traps after an `await`: the reply callback is rolled back alone (the change
/// made before the call stays), ic-cdk's cleanup callback runs, and the ingress call gets the
/// trap's reject.
#[test]
fn a_trap_after_an_await_rolls_back_the_callback_only_and_runs_cleanup() {
    let (mut subnet, a, b) = two();
    subnet.take_history();
    let err = subnet
        .update_call_raw(a, "call_then_trap", &Encode!(&b).unwrap(), anon())
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code as u8, 5, "{err:?}");
    assert!(err.message.contains("trapped after the call"), "{err:?}");
    let callback = subnet
        .history()
        .iter()
        .find(|e| e.kind == MessageKind::ReplyCallback)
        .expect("the reply callback ran");
    assert!(callback.trapped && callback.cleanup, "{callback:?}");
    let counters = subnet
        .query_call_raw(a, "trap_counters", &Encode!().unwrap(), anon())
        .unwrap()
        .unwrap();
    assert_eq!(Decode!(&counters, u64, u64).unwrap(), (1, 0));
}
