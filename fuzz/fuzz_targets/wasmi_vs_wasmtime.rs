//! cargo-fuzz target `wasmi_vs_wasmtime` (see `canister_vm_fuzz::checks::Target::WasmiVsWasmtime`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    canister_vm_fuzz::fuzz_one(canister_vm_fuzz::Target::WasmiVsWasmtime, data);
});
