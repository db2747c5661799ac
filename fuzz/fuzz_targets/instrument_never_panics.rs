//! cargo-fuzz target `instrument_never_panics` (see `canister_vm_fuzz::checks::Target::InstrumentNeverPanics`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    canister_vm_fuzz::fuzz_one(canister_vm_fuzz::Target::InstrumentNeverPanics, data);
});
