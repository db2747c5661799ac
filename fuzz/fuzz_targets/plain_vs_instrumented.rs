//! cargo-fuzz target `plain_vs_instrumented` (see `canister_vm_fuzz::checks::Target::PlainVsInstrumented`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    canister_vm_fuzz::fuzz_one(canister_vm_fuzz::Target::PlainVsInstrumented, data);
});
