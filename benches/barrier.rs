//! Suite 2, write-barrier cost: the same workloads with the barrier off, with a mark after every
//! store (no elision) and as the runtime instruments it (elision on), metering on, on a bare
//! host (`common/raw.rs`: Wasm execution plus reading and clearing the byte maps after each
//! message; no snapshot, commit or state hash, which do not depend on the barrier):
//!
//! - `kv_insert/<mode>/<barrier>`: the kv test canister's `fill(100)`, 100 `StableBTreeMap`
//!   inserts of 32-byte values per message (the map keeps growing), in system-API (`syscall`) and
//!   `native` stable mode;
//! - `stores/<barrier>`: 100 000 groups of 8 consecutive `i64.store`s from one base
//!   (`benches/wat/barrier_kernels.wat`), the barrier's worst case;
//! - `sort/<barrier>`: a bubble sort of 1000 i32.
//!
//! Ids: `barrier/<workload>/<engine>/...`. Before measuring, the kv workload is run once in
//! system-API mode with counting host functions, and once in native mode on a counting build,
//! to report the share of stable read/write calls that took the inline fast path; the counts are
//! written to `<criterion dir>/barrier/kv_stable_calls.json` for `cargo xtask bench`.

use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::instrument::{Config, StableMode};

#[path = "../tests/support/canisters.rs"]
mod canisters;
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::Length;
use raw::{Barrier, WasmiCanister};

const KERNELS: &str = include_str!("wat/barrier_kernels.wat");
const BARRIERS: [Barrier; 3] = [Barrier::Off, Barrier::EveryStore, Barrier::Elided];

/// Candid for `(n : nat64)`.
fn nat64_arg(n: u64) -> Vec<u8> {
    let mut arg = b"DIDL\x00\x01\x78".to_vec();
    arg.extend_from_slice(&n.to_le_bytes());
    arg
}

/// Candid for an empty argument list.
const NO_ARGS: &[u8] = b"DIDL\x00\x00";

/// Inserts per kv message.
const INSERTS: u64 = 100;

fn barrier(c: &mut Criterion) {
    let kv = canisters::test_canister_bytes("kv");
    let kernels = wat::parse_str(KERNELS).unwrap();
    let fill = nat64_arg(INSERTS);
    kv_stable_calls(&kv, &fill);

    let mut group = c.benchmark_group("barrier");
    common::configure(&mut group, Length::Short);
    for engine in common::engines() {
        for (mode_name, mode) in [
            ("syscall", StableMode::Syscall),
            ("native", StableMode::Native),
        ] {
            for b in BARRIERS {
                let module = raw::instrument(&kv, &Config::default().stable(mode), b);
                let mut can = raw::driver(engine, &module, NO_ARGS);
                group.bench_function(
                    format!("kv_insert/{engine}/{mode_name}/{}", b.name()),
                    |bench| bench.iter(|| can.update("fill", &fill)),
                );
            }
        }
        for kernel in ["stores", "sort"] {
            for b in BARRIERS {
                let module = raw::instrument(&kernels, &Config::default(), b);
                let mut can = raw::driver(engine, &module, &[]);
                group.bench_function(format!("{kernel}/{engine}/{}", b.name()), |bench| {
                    bench.iter(|| can.update(kernel, &[]))
                });
            }
        }
    }
    group.finish();
}

/// Counts the stable read/write calls of 20 kv `fill` messages, and how many took the general
/// (called) path in native mode, and writes them for `cargo xtask bench`.
fn kv_stable_calls(kv: &[u8], fill: &[u8]) {
    const MESSAGES: usize = 20;
    // System-API mode: every call reaches the host, with its length.
    let module = raw::instrument(
        kv,
        &Config::default().stable(StableMode::Syscall),
        Barrier::Elided,
    );
    let mut can = WasmiCanister::with_counting(&module, NO_ARGS, true);
    let before = raw::STABLE_CALLS.snapshot();
    for _ in 0..MESSAGES {
        can.update("fill", fill);
    }
    let after = raw::STABLE_CALLS.snapshot();
    let [total, len8, len124] = [0, 1, 2].map(|i| after[i] - before[i]);
    // Native mode, counting build: the injected general functions count their calls.
    let module = raw::instrument(kv, &Config::default(), Barrier::Elided);
    let counted = raw::count_general_calls(&module);
    let mut can = WasmiCanister::new(&counted, NO_ARGS);
    let general_before = can.general_calls();
    for _ in 0..MESSAGES {
        can.update("fill", fill);
    }
    let general = can.general_calls() - general_before;
    let json = format!(
        "{{\"messages\": {MESSAGES}, \"inserts_per_message\": {INSERTS}, \"calls\": {total}, \
         \"len8\": {len8}, \"len124\": {len124}, \"general\": {general}, \
         \"static_const_sites\": {}, \"static_dynamic_sites\": {}}}\n",
        module.summary.stable_fast_paths, module.summary.stable_dynamic_fast_paths
    );
    let dir = common::criterion_dir().join("barrier");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kv_stable_calls.json"), &json).unwrap();
    eprintln!("kv stable calls: {json}");
}

criterion_group!(benches, barrier);
criterion_main!(benches);
