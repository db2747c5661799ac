//! `calls`: inter-canister calls, the management canister, timers and a heartbeat, written with
//! ic-cdk 0.20 and ic-cdk-timers 1 as canister developers write them (async calls through
//! ic-cdk's executor, bounded-wait calls, `raw_rand`, one-shot and interval timers).
//!
//! Interface:
//! - `update echo(text) -> (text)`; `update boom() -> ()` traps with "boom"
//! - `update call_echo(callee: principal, text) -> (text)`: a bounded-wait call of `echo`
//! - `update call_boom(callee: principal) -> (text)`: the reject of calling `boom`, as
//!   "code <n>: <message>"
//! - `update random() -> (blob)`: `raw_rand` of the management canister
//! - `update start_timers(once_after_secs: nat64, every_secs: nat64) -> ()`: a one-shot timer that
//!   adds 100 to `fired`, and an interval timer that adds 1
//! - `query counters() -> (nat64, nat64)`: `fired`, heartbeats
//! - `query echo_query(text) -> (text)`
//! - `composite_query composite_echo(callee: principal, text) -> (text, nat64, nat64)`: calls
//!   `echo_query` of `callee`, then `composite_depth` of `callee` (a composite query that calls
//!   `echo_query` of itself); adds 1 to `scratch` before and after each call and returns the
//!   replies joined, and `scratch` after the calls (its changes last for the evaluation only)
//! - `composite_query composite_update(callee: principal) -> (text)`: calls the update `echo`,
//!   which a composite query may not: the reject as "code <n>: <message>"
//! - `query scratch() -> (nat64)`
//! - `update factory(wasm: blob) -> (principal, opt blob, text)`: creates a canister through the
//!   management canister (attaching `cost_create_canister`), installs `wasm` in it and returns
//!   its id, the module hash and the status `canister_status` reports
//! - `update call_then_trap(callee: principal) -> ()`: adds 1 to `before`, awaits `echo` of
//!   `callee`, adds 1 to `after` and traps: the callback is rolled back (and ic-cdk's cleanup
//!   runs), the first message's change stays
//! - `query trap_counters() -> (nat64, nat64)`: `before`, `after`

use std::cell::Cell;
use std::time::Duration;

use candid::Principal;
use ic_cdk::call::Call;

thread_local! {
    static FIRED: Cell<u64> = const { Cell::new(0) };
    static BEATS: Cell<u64> = const { Cell::new(0) };
    static SCRATCH: Cell<u64> = const { Cell::new(0) };
    static BEFORE: Cell<u64> = const { Cell::new(0) };
    static AFTER: Cell<u64> = const { Cell::new(0) };
}

#[derive(candid::CandidType, serde::Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[derive(candid::CandidType)]
struct CreateCanisterArgs {
    settings: Option<CanisterSettings>,
}

#[derive(candid::CandidType)]
struct CanisterSettings {
    controllers: Option<Vec<Principal>>,
}

#[derive(candid::CandidType, serde::Deserialize)]
enum InstallMode {
    #[serde(rename = "install")]
    Install,
}

#[derive(candid::CandidType)]
struct InstallCodeArgs {
    mode: InstallMode,
    canister_id: Principal,
    wasm_module: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
}

#[derive(candid::CandidType, serde::Deserialize, Debug)]
enum Status {
    #[serde(rename = "running")]
    Running,
    #[serde(rename = "stopping")]
    Stopping,
    #[serde(rename = "stopped")]
    Stopped,
}

/// The fields of `canister_status`'s reply this canister reads (Candid ignores the others).
#[derive(candid::CandidType, serde::Deserialize)]
struct StatusReply {
    status: Status,
    module_hash: Option<serde_bytes::ByteBuf>,
}

#[ic_cdk::update]
async fn factory(wasm: serde_bytes::ByteBuf) -> (Principal, Option<serde_bytes::ByteBuf>, String) {
    let me = ic_cdk::api::canister_self();
    let created: CanisterIdRecord = Call::unbounded_wait(Principal::management_canister(), "create_canister")
        .with_arg(CreateCanisterArgs {
            settings: Some(CanisterSettings {
                controllers: Some(vec![me]),
            }),
        })
        .with_cycles(ic_cdk::api::cost_create_canister())
        .await
        .expect("create_canister failed")
        .candid()
        .expect("create_canister reply decodes");
    let id = created.canister_id;
    Call::unbounded_wait(Principal::management_canister(), "install_code")
        .with_arg(InstallCodeArgs {
            mode: InstallMode::Install,
            canister_id: id,
            wasm_module: wasm,
            arg: serde_bytes::ByteBuf::from(candid::encode_args(()).unwrap()),
        })
        .await
        .expect("install_code failed");
    let status: StatusReply = Call::unbounded_wait(Principal::management_canister(), "canister_status")
        .with_arg(CanisterIdRecord { canister_id: id })
        .await
        .expect("canister_status failed")
        .candid()
        .expect("canister_status reply decodes");
    (id, status.module_hash, format!("{:?}", status.status))
}

#[ic_cdk::update]
async fn call_then_trap(callee: Principal) {
    BEFORE.with(|b| b.set(b.get() + 1));
    let _: Result<_, _> = Call::unbounded_wait(callee, "echo").with_arg("x").await;
    AFTER.with(|a| a.set(a.get() + 1));
    ic_cdk::trap("trapped after the call");
}

#[ic_cdk::query]
fn trap_counters() -> (u64, u64) {
    (BEFORE.with(Cell::get), AFTER.with(Cell::get))
}

fn bump_scratch() -> u64 {
    SCRATCH.with(|s| {
        s.set(s.get() + 1);
        s.get()
    })
}

#[ic_cdk::query]
fn echo_query(text: String) -> String {
    text
}

#[ic_cdk::query]
fn scratch() -> u64 {
    SCRATCH.with(Cell::get)
}

#[ic_cdk::query(composite = true)]
async fn composite_echo(callee: Principal, text: String) -> (String, u64, u64) {
    let before = bump_scratch();
    let first: String = Call::unbounded_wait(callee, "echo_query")
        .with_arg(&text)
        .await
        .expect("echo_query call failed")
        .candid()
        .expect("echo_query reply decodes");
    bump_scratch();
    let second: String = Call::unbounded_wait(callee, "composite_depth")
        .with_arg(&text)
        .await
        .expect("composite_depth call failed")
        .candid()
        .expect("composite_depth reply decodes");
    let after = bump_scratch();
    (format!("{first}/{second}"), before, after)
}

#[ic_cdk::query(composite = true)]
async fn composite_depth(text: String) -> String {
    let me = ic_cdk::api::canister_self();
    let inner: String = Call::unbounded_wait(me, "echo_query")
        .with_arg(format!("{text}!"))
        .await
        .expect("echo_query call failed")
        .candid()
        .expect("echo_query reply decodes");
    format!("depth:{inner}")
}

#[ic_cdk::query(composite = true)]
async fn composite_update(callee: Principal) -> String {
    match Call::unbounded_wait(callee, "echo").with_arg("x").await {
        Ok(_) => "no reject".to_string(),
        Err(ic_cdk::call::CallFailed::CallRejected(r)) => {
            format!("code {}: {}", r.raw_reject_code(), r.reject_message())
        }
        Err(other) => format!("failed: {other}"),
    }
}

#[ic_cdk::update]
fn echo(text: String) -> String {
    text
}

#[ic_cdk::update]
fn boom() {
    ic_cdk::trap("boom");
}

#[ic_cdk::update]
async fn call_echo(callee: Principal, text: String) -> String {
    let reply: String = Call::bounded_wait(callee, "echo")
        .with_arg(&text)
        .await
        .expect("echo call failed")
        .candid()
        .expect("echo reply decodes");
    format!("callee said: {reply}")
}

#[ic_cdk::update]
async fn call_boom(callee: Principal) -> String {
    match Call::unbounded_wait(callee, "boom").await {
        Ok(_) => "no reject".to_string(),
        Err(ic_cdk::call::CallFailed::CallRejected(r)) => {
            format!("code {}: {}", r.raw_reject_code(), r.reject_message())
        }
        Err(other) => format!("failed: {other}"),
    }
}

#[ic_cdk::update]
async fn random() -> serde_bytes::ByteBuf {
    let bytes: serde_bytes::ByteBuf = Call::unbounded_wait(Principal::management_canister(), "raw_rand")
        .await
        .expect("raw_rand failed")
        .candid()
        .expect("raw_rand reply decodes");
    bytes
}

#[ic_cdk::update]
fn start_timers(once_after_secs: u64, every_secs: u64) {
    ic_cdk_timers::set_timer(Duration::from_secs(once_after_secs), async {
        FIRED.with(|f| f.set(f.get() + 100));
    });
    ic_cdk_timers::set_timer_interval(Duration::from_secs(every_secs), || async {
        FIRED.with(|f| f.set(f.get() + 1));
    });
}

#[ic_cdk::heartbeat]
fn heartbeat() {
    BEATS.with(|b| b.set(b.get() + 1));
}

#[ic_cdk::query]
fn counters() -> (u64, u64) {
    (FIRED.with(Cell::get), BEATS.with(Cell::get))
}
