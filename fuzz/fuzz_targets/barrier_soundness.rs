//! cargo-fuzz target `barrier_soundness` (see `canister_vm_fuzz::checks::Target::BarrierSoundness`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    canister_vm_fuzz::fuzz_one(canister_vm_fuzz::Target::BarrierSoundness, data);
});
