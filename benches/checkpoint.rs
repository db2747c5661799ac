//! Suite 4, checkpoint cost at a fixed number of dirty pages as the memory grows: a canister
//! whose stable memory holds N bytes (16 MiB … 1 GiB, every page written at install) runs an
//! update that writes 8 bytes into each of 16 stable pages spread over the whole memory, through
//! the public [`PersistentCanister`] API, so the time is the message plus its checkpoint to the
//! state directory (whatever the checkpoint implementation is at the time of the run).
//! Ids: `checkpoint/<MiB>`.
//!
//! Then the cost of opening a state directory as the memory grows: a canister whose stable
//! memory is N bytes but whose pages were written only by 16 `touch` messages (a sparse page
//! file) is opened with [`PersistentCanister::open`] — read the page files, rebuild the
//! canister, check the recorded state hash — in each stable mode.
//! Ids: `checkpoint/open/<native|syscall>/<MiB>`.

use criterion::{Criterion, criterion_group, criterion_main};

use canister_vm::runtime::persistent::PersistentCanister;
use canister_vm::runtime::{CanisterConfig, MessageInput};
use canister_vm::state::StableMode;

mod common;
use common::Length;

/// Stable memory sizes, in MiB.
const SIZES_MIB: [u64; 4] = [16, 64, 256, 1024];

/// Pages the update dirties.
const DIRTY: u64 = 16;

/// A canister whose `canister_init` grows stable memory to `mib` MiB and, if `fill`, writes every
/// byte of it (1 MiB at a time from a heap buffer of 0xA5 bytes), and whose update `touch`
/// writes 8 bytes (a counter) at the start of 16 stable pages spread evenly over it.
fn kernel(mib: u64, fill: bool) -> Vec<u8> {
    let pages = mib * 16; // 64 KiB pages
    let stride = mib * 1024 * 1024 / DIRTY;
    wat::parse_str(format!(
        r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $write (param i64 i64 i64)))
  (memory 17)
  (global $n (mut i64) (i64.const 0))
  (func (export "canister_init") (local $off i64)
    (drop (call $grow (i64.const {pages})))
    (memory.fill (i32.const 65536) (i32.const 0xA5) (i32.const 1048576))
    (if (i32.const {fill}) (then
      (loop $l
        (call $write (local.get $off) (i64.const 65536) (i64.const 1048576))
        (local.set $off (i64.add (local.get $off) (i64.const 1048576)))
        (br_if $l (i64.lt_u (local.get $off) (i64.const {bytes})))))))
  (func (export "canister_update touch") (local $i i64)
    (global.set $n (i64.add (global.get $n) (i64.const 1)))
    (i64.store (i32.const 0) (global.get $n))
    (loop $l
      (call $write (i64.mul (local.get $i) (i64.const {stride})) (i64.const 0) (i64.const 8))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const {DIRTY}))))
    (call $reply)))"#,
        bytes = mib * 1024 * 1024,
        fill = u8::from(fill),
    ))
    .unwrap()
}

fn checkpoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint");
    common::configure(&mut group, Length::Long);
    for mib in SIZES_MIB {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("canister");
        let (can, init) = PersistentCanister::install(
            &dir,
            kernel(mib, true),
            &[],
            CanisterConfig::default(),
            &MessageInput::default(),
        )
        .unwrap();
        assert!(init.result.is_ok(), "{:?}", init.result);
        let mut can = can.unwrap();
        assert_eq!(can.canister().stable().len() as u64, mib << 20);
        let first = can.update("touch", &[], &MessageInput::default()).unwrap();
        assert_eq!(first.dirty.stable.len() as u64, DIRTY);
        group.bench_function(format!("{mib}"), |b| {
            b.iter(|| {
                let out = can.update("touch", &[], &MessageInput::default()).unwrap();
                assert!(out.result.is_ok());
            })
        });
        drop(can);
        drop(tmp);
    }
    group.finish();
}

/// Stable memory sizes for opening, in MiB.
const OPEN_SIZES_MIB: [u64; 2] = [16, 1024];

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint");
    common::configure(&mut group, Length::Long);
    for mode in [StableMode::Native, StableMode::Syscall] {
        for mib in OPEN_SIZES_MIB {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("canister");
            let config = CanisterConfig::default().stable_mode(mode);
            let (can, init) = PersistentCanister::install(
                &dir,
                kernel(mib, false),
                &[],
                config,
                &MessageInput::default(),
            )
            .unwrap();
            assert!(init.result.is_ok(), "{:?}", init.result);
            let mut can = can.unwrap();
            for _ in 0..16 {
                let out = can.update("touch", &[], &MessageInput::default()).unwrap();
                assert!(out.result.is_ok(), "{:?}", out.result);
            }
            let hash = can.canister().state_hash();
            drop(can);
            let name = match mode {
                StableMode::Native => "native",
                StableMode::Syscall => "syscall",
            };
            group.bench_function(format!("open/{name}/{mib}"), |b| {
                b.iter(|| {
                    let can = PersistentCanister::open(&dir, CanisterConfig::default()).unwrap();
                    assert_eq!(can.canister().stable().len() as u64, mib << 20);
                    assert_eq!(can.canister().state_hash(), hash);
                })
            });
            drop(tmp);
        }
    }
    group.finish();
}

criterion_group!(benches, checkpoint, open);
criterion_main!(benches);
