//! Suite 1, stable memory access: system-API mode (host calls) vs native mode (injected
//! memory64 with the inline fast path), on every engine of the build (wasmi; wasmtime with the
//! `wasmtime` feature). Kernels in `benches/wat/stable_access.wat`, one update message each:
//!
//! | kernel | accesses per message |
//! |---|---|
//! | `empty` (the loop without the access: the floor), `read`, `write`, `read_dyn` | 100 000 × 8 bytes, random, 64 KiB stable (cache resident) |
//! | `read4k`, `write4k` | 4096 × 4 KiB, random 4 KiB-aligned offsets in 1 MiB |
//! | `read1m`, `write1m` | 64 × 1 MiB |
//!
//! `read_dyn` passes the length in a local, so native mode tests `len == 8` at run time before
//! the inline path. Metering and the write barrier are on, as the runtime always runs; the time
//! is per message (commit of the dirtied pages included), `cargo xtask bench` divides by the
//! accesses per message. Ids: `stable_access/<kernel>/<engine>/<syscall|native>`.

use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};
use canister_vm::state::StableMode;

mod common;
use canister_vm::runtime::Engine;
use common::Length;

const KERNEL: &str = include_str!("wat/stable_access.wat");

/// The kernels (update methods of [`KERNEL`]).
const KERNELS: [&str; 8] = [
    "empty", "read", "write", "read_dyn", "read4k", "write4k", "read1m", "write1m",
];

fn canister(engine: Engine, mode: StableMode) -> Canister {
    let wasm = wat::parse_str(KERNEL).unwrap();
    let config = common::on(engine, CanisterConfig::default().stable_mode(mode));
    let mut c = Canister::create(wasm, config, candid::Principal::from_slice(&[4])).unwrap();
    c.init(&[], &MessageInput::default()).unwrap();
    c
}

fn stable_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("stable_access");
    common::configure(&mut group, Length::Short);
    for kernel in KERNELS {
        for engine in common::engines() {
            for (label, mode) in [
                ("syscall", StableMode::Syscall),
                ("native", StableMode::Native),
            ] {
                let mut can = canister(engine, mode);
                // The first message grows stable memory: keep it out of the measurement.
                let first = can.update(kernel, &[], &MessageInput::default()).unwrap();
                assert!(first.result.is_ok(), "{kernel}: {:?}", first.result);
                group.bench_function(format!("{kernel}/{}/{label}", engine.name()), |b| {
                    b.iter(|| {
                        let out = can.update(kernel, &[], &MessageInput::default()).unwrap();
                        assert!(out.result.is_ok());
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, stable_access);
criterion_main!(benches);
