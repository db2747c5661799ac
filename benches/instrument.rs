//! Instrumentation time (validate + rules + exports + metering + stable + barrier) on the test
//! canisters, which must stay in the tens of milliseconds (cold start matters on an
//! interpreter), and wasmi compilation of the result.

use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::instrument::{Config, instrument};

#[path = "../tests/support/canisters.rs"]
mod canisters;
mod common;

fn instrumentation(c: &mut Criterion) {
    let mut group = c.benchmark_group("instrument");
    common::configure(&mut group, common::Length::Short);
    let wasm = std::fs::read(canisters::test_canister("kv")).unwrap();
    group.bench_function("kv/validate", |b| {
        b.iter(|| canister_vm::instrument::validate(&wasm).unwrap())
    });
    group.bench_function("kv/instrument", |b| {
        b.iter(|| instrument(&wasm, &Config::default()).unwrap())
    });
    let out = instrument(&wasm, &Config::default()).unwrap();
    let engine = canister_vm::runtime::engine::new_engine();
    group.bench_function("kv/compile_wasmi_eager", |b| {
        b.iter(|| wasmi::Module::new(&engine, &out.wasm[..]).unwrap())
    });
    group.finish();
}

criterion_group!(benches, instrumentation);
criterion_main!(benches);
