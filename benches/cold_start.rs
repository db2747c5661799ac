//! Suite 5, cold start: validate + instrument + instantiate (wasmi: eager translation; wasmtime:
//! an uncached Cranelift compilation) + `canister_init` + the first reply (the query `len`), for
//! the largest test canister, `kv` (~540 KB: ic-cdk 0.20, candid, ic-stable-structures'
//! `StableBTreeMap`), on every engine of the build. `instrument` is the validate + instrument
//! step alone, for the breakdown. Ids: `cold_start/kv/<engine>`, `cold_start/kv/instrument`.

use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::instrument::{Config, instrument};
use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};

#[path = "../tests/support/canisters.rs"]
mod canisters;
mod common;
use common::Length;

/// Candid for an empty argument list.
const NO_ARGS: &[u8] = b"DIDL\x00\x00";

fn cold_start(c: &mut Criterion) {
    let mut group = c.benchmark_group("cold_start");
    common::configure(&mut group, Length::Long);
    let wasm = canisters::test_canister_bytes("kv");
    group.bench_function("kv/instrument", |b| {
        b.iter(|| instrument(&wasm, &Config::default()).unwrap())
    });
    for engine in common::engines() {
        group.bench_function(format!("kv/{}", engine.name()), |b| {
            b.iter(|| {
                let config = common::on(engine, CanisterConfig::default());
                let mut can =
                    Canister::create(wasm.clone(), config, candid::Principal::from_slice(&[4]))
                        .unwrap();
                let init = can.init(NO_ARGS, &MessageInput::default()).unwrap();
                assert!(init.result.is_ok(), "{:?}", init.result);
                let out = can.query("len", NO_ARGS, &MessageInput::default()).unwrap();
                assert!(out.result.is_ok(), "{:?}", out.result);
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cold_start);
criterion_main!(benches);
