//! Stable memory access: system-API mode (host calls) vs native mode (injected memory64 with the
//! inline fast path), on wasmi. Each message runs 100 000 random 8-byte accesses over a 64 KiB
//! (cache-resident) stable memory; the `empty` loop is the floor; `read_dyn` passes the length
//! in a local, so native mode takes the general (called) path instead of the inline fast path. Reported per message;
//! divide by 100 000 for the per-access time.

use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};
use canister_vm::state::StableMode;

const KERNEL: &str = include_str!("wat/stable_read_loop.wat");

fn canister(mode: StableMode) -> Canister {
    let wasm = wat::parse_str(KERNEL).unwrap();
    let config = CanisterConfig::default().stable_mode(mode);
    let mut c = Canister::create(wasm, config, vec![4]).unwrap().unwrap();
    c.init(&[], &MessageInput::default()).unwrap();
    c
}

fn stable_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("stable_access_100k");
    group.sample_size(20);
    for method in ["empty", "read", "read_dyn", "write"] {
        for (label, mode) in [
            ("syscall", StableMode::Syscall),
            ("native", StableMode::Native),
        ] {
            let mut can = canister(mode);
            group.bench_function(format!("{method}/{label}"), |b| {
                b.iter(|| {
                    let out = can.update(method, &[], &MessageInput::default()).unwrap();
                    assert!(out.result.is_ok());
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, stable_access);
criterion_main!(benches);
