//! `counter`: a heap counter plus methods that exercise traps, rejects, missing replies and
//! state changes made by queries.
//!
//! Interface:
//! - `init(start: opt nat64)`: the counter starts at `start` (default 0)
//! - `update inc() -> (nat64)`
//! - `query read() -> (nat64)`
//! - `update write_and_trap(n: nat64) -> ()`: bumps the counter by `n`, writes stable memory, traps
//! - `query query_mutate() -> (nat64)`: bumps the counter and writes stable memory (a query's
//!   changes must be discarded)
//! - `update reject_me() -> ()`: rejects with "rejected on purpose"
//! - `update no_reply() -> ()`: bumps the counter and returns without replying

use std::cell::Cell;

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

fn bump(by: u64) -> u64 {
    COUNTER.with(|c| {
        let v = c.get().wrapping_add(by);
        c.set(v);
        v
    })
}

/// Makes sure stable memory has at least one page, then writes a marker and `value` at offset 0.
fn write_stable(value: u64) {
    if ic_cdk::stable::stable_size() == 0 {
        ic_cdk::stable::stable_grow(1).expect("stable_grow failed");
    }
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(b"counter!");
    buf[8..].copy_from_slice(&value.to_le_bytes());
    ic_cdk::stable::stable_write(0, &buf);
}

#[ic_cdk::init]
fn init(start: Option<u64>) {
    COUNTER.with(|c| c.set(start.unwrap_or(0)));
}

#[ic_cdk::update]
fn inc() -> u64 {
    bump(1)
}

#[ic_cdk::query]
fn read() -> u64 {
    COUNTER.with(Cell::get)
}

#[ic_cdk::update]
fn write_and_trap(n: u64) {
    let v = bump(n);
    write_stable(v);
    ic_cdk::trap("write_and_trap: deliberate trap");
}

#[ic_cdk::query]
fn query_mutate() -> u64 {
    let v = bump(1);
    write_stable(v);
    v
}

#[ic_cdk::update(manual_reply = true)]
fn reject_me() {
    ic_cdk::api::msg_reject("rejected on purpose");
}

/// Exported by hand: ic-cdk's macro would reply automatically.
#[unsafe(export_name = "canister_update no_reply")]
extern "C" fn no_reply() {
    bump(1);
}
