//! `bench`: a canister with canbench-rs benchmarks (`canister-vm bench`, `tests/all/cli_bench.rs`).
//!
//! Every benchmark's heap and stable memory growth follows from its code, so tests can compute
//! what the report must say:
//! - `compute`: arithmetic only; grows nothing.
//! - `scopes`: a `setup` scope once and a `step` scope three times (`calls: 3`).
//! - `heap_grow`: grows the heap by [`HEAP_PAGES`] 64 KiB pages (`memory.grow`) and writes them.
//! - `stable_grow`: grows stable memory by [`STABLE_PAGES`] pages and writes them.
//! - `from_init`: grows stable memory by the init argument's `pages` (default 1) and loops
//!   `pages` × 10 000 times in a `work` scope: its figures show the init argument took effect.
//! - `stable_file`: grows the heap by the value of stable memory's first byte (0 while stable
//!   memory is empty): shows a `stable_memory` file of `canbench.yml` was loaded.
//! - `odd`: an ordinary benchmark, unless the init argument sets `bad_reply`: then it replies
//!   with text instead of a `BenchResult`.
//! - `may_trap`: prints `may_trap ran` (`ic0.debug_print`) and does a little work, unless the
//!   init argument sets `trap`: then it traps.
//!
//! Init argument: `opt record { pages : nat32; trap : bool; bad_reply : bool }` (none: pages 1).

use std::cell::Cell;

/// Heap pages `heap_grow` adds.
pub const HEAP_PAGES: u64 = 4;
/// Stable memory pages `stable_grow` adds.
pub const STABLE_PAGES: u64 = 3;

/// The init argument.
#[derive(candid::CandidType, serde::Deserialize, Clone, Copy)]
pub struct Config {
    /// Stable pages `from_init` grows (and its loop count / 10 000).
    pub pages: u32,
    /// `may_trap` traps.
    pub trap: bool,
    /// `odd` replies with text.
    pub bad_reply: bool,
}

thread_local! {
    static CONFIG: Cell<Config> = const {
        Cell::new(Config { pages: 1, trap: false, bad_reply: false })
    };
}

#[ic_cdk::init]
fn init(config: Option<Config>) {
    if let Some(config) = config {
        CONFIG.with(|c| c.set(config));
    }
}

fn config() -> Config {
    CONFIG.with(|c| c.get())
}

/// A loop the optimiser cannot remove.
fn spin(n: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..std::hint::black_box(n) {
        acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    acc
}

/// Grows the heap by `pages` and writes one byte in each new page.
fn grow_heap(pages: u64) {
    if pages == 0 {
        return;
    }
    let before = core::arch::wasm32::memory_grow(0, pages as usize);
    assert!(before != usize::MAX, "memory.grow failed");
    for p in 0..pages as usize {
        let addr = (before + p) * 65536;
        // SAFETY: the page was just added and nothing else uses it.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
    }
}

/// Grows stable memory by `pages` and writes one byte in each new page.
fn grow_stable(pages: u64) {
    let before = ic_cdk::stable::stable_grow(pages).expect("stable_grow failed");
    for p in 0..pages {
        ic_cdk::stable::stable_write((before + p) * 65536, &[1]);
    }
}

/// A plain query, so the canister has a method that is not a benchmark.
#[ic_cdk::query]
fn pages() -> u32 {
    config().pages
}

#[cfg(feature = "canbench-rs")]
mod benches {
    use super::*;
    use canbench_rs::{bench, bench_scope};

    #[bench]
    fn compute() {
        std::hint::black_box(spin(20_000));
    }

    #[bench]
    fn scopes() {
        {
            let _setup = bench_scope("setup");
            std::hint::black_box(spin(2_000));
        }
        for _ in 0..3 {
            let _step = bench_scope("step");
            std::hint::black_box(spin(1_000));
        }
    }

    #[bench]
    fn heap_grow() {
        grow_heap(HEAP_PAGES);
    }

    #[bench]
    fn stable_grow() {
        grow_stable(STABLE_PAGES);
    }

    #[bench]
    fn from_init() {
        let pages = config().pages as u64;
        grow_stable(pages);
        let _work = bench_scope("work");
        std::hint::black_box(spin(pages * 10_000));
    }

    #[bench]
    fn stable_file() {
        let mut first = [0u8];
        if ic_cdk::stable::stable_size() > 0 {
            ic_cdk::stable::stable_read(0, &mut first);
        }
        grow_heap(first[0] as u64);
    }

    #[bench]
    fn may_trap() {
        if config().trap {
            ic_cdk::trap("may_trap was asked to trap");
        }
        ic_cdk::println!("may_trap ran");
        std::hint::black_box(spin(100));
    }

    /// `odd`: a `BenchResult`, or text if the init argument says so.
    #[ic_cdk::query(name = "__canbench__odd", manual_reply = true)]
    fn odd() {
        if config().bad_reply {
            ic_cdk::api::msg_reply(candid::encode_one("not a BenchResult").unwrap());
        } else {
            let result = canbench_rs::bench_fn(|| std::hint::black_box(spin(10)));
            ic_cdk::api::msg_reply(candid::encode_one(result).unwrap());
        }
    }
}
