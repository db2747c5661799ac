//! Suite 6, inter-canister round trip: one ingress update to canister A that calls `echo` on
//! canister B and answers from its reply callback — three messages (the ingress request, A's
//! request to B, A's reply callback), each its own transaction with commit, dirty-page tracking
//! and state-hash update — on a subnet of two relay canisters (`tests/support/relay.wat`), on
//! every engine of the build. Ids: `subnet/round_trip/<engine>`; messages per second = 3 /
//! median.

use candid::Principal;
use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::runtime::CanisterConfig;
use canister_vm::runtime::subnet::Subnet;

mod common;
use common::Length;

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("subnet");
    common::configure(&mut group, Length::Short);
    let wasm = wat::parse_str(include_str!("../tests/support/relay.wat")).unwrap();
    let anon = Principal::anonymous();
    for engine in common::engines() {
        let mut subnet = Subnet::new(common::on(engine, CanisterConfig::default()));
        let a = subnet.install_raw(wasm.clone(), b"", anon).unwrap();
        let b = subnet.install_raw(wasm.clone(), b"", anon).unwrap();
        // The relay's `call` argument: callee, method, mode 0, no cycles, payload.
        let mut arg = vec![b.as_slice().len() as u8];
        arg.extend_from_slice(b.as_slice());
        arg.push(4);
        arg.extend_from_slice(b"echo");
        arg.push(0);
        arg.extend_from_slice(&0u64.to_le_bytes());
        arg.extend_from_slice(b"ping");
        group.bench_function(format!("round_trip/{}", engine.name()), |bench| {
            bench.iter(|| {
                let reply = subnet.update_call_raw(a, "call", &arg, anon).unwrap();
                assert_eq!(reply.as_deref(), Ok(&b"ok:ping"[..]));
                reply
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
