//! Differential fuzzing of canister-vm (issue 14, "make it stay fixed").
//!
//! Modules come from wasm-smith ([`generate`]), configured for the features canister-vm accepts; each
//! module is [exposed](module::expose) (every memory and global exported) and run by one of four
//! checks ([`checks::Target`]):
//!
//! | target | compares / asserts |
//! |---|---|
//! | `plain_vs_instrumented` | plain wasmi vs instrumented wasmi (native stable memory, and system-API stable memory when the module imports `ic0.stable*`): results, trap kinds, every memory, every global, stable memory after instantiation and after every call; instruction counts of the two stable modes |
//! | `wasmi_vs_wasmtime` | the instrumented module on wasmi vs wasmtime (results, traps, memories, globals, stable memory, instruction counter), then the plain module (NaN payloads may differ) |
//! | `barrier_soundness` | after every call, traps included, every 4 KiB page whose bytes changed is marked in `canister_vm:dirty:<memory>` (or in the host's records for `ic0` writes) |
//! | `instrument_never_panics` | instrumentation of a valid module with five settings never panics, is accepted by the generic settings and validates; garbage and mutated modules give errors, never panics |
//!
//! **Bounds.** wasm-smith's `ensure_termination` puts a fuel check at every function entry and
//! loop header ([`generate::FUEL`], reset before each call); memories are at most 1 MiB, stable memory
//! [`exec::STABLE_LIMIT_PAGES`] pages. The metering counter starts each call at [`exec::BUDGET`].
//!
//! **Documented differences** ([`checks::Documented`]) end a module's run and are counted, not
//! reported as mismatches:
//! * *NaN payloads*: where the plain module produces a non-canonical NaN, the instrumented module
//!   produces the canonical one, which can change any later value (reinterpretations, stores,
//!   branches). A divergence counts as a NaN-payload difference only if it disappears when the
//!   reference side runs with NaN canonicalization alone (`Config::metering(false)
//!   .barrier(false)`). wasm-smith's `canonicalize_nans` is on in 3 of 4 modules, so most
//!   modules are compared with no such allowance. Instrumented modules on wasmi vs wasmtime get
//!   none at all (canonicalization makes floats deterministic).
//! * *Stack depth*: a call that overflows the stack on one side (instrumentation adds locals;
//!   engines size stacks differently) is not compared further.
//!
//! A host abort (a stack overflow of the host thread) cannot be caught in process: the driver
//! (`src/bin/driver.rs`, `cargo xtask fuzz`) runs checks in worker processes and reports a dead
//! worker with the seed it was running.
#![deny(missing_docs)]

pub mod checks;
pub mod driver;
pub mod exec;
pub mod generate;
pub mod module;

pub use checks::{Documented, Finding, Outcome, Target, Verdict, check_data, check_seed};

#[cfg(test)]
mod tests;

/// Runs `target` on a libFuzzer input and panics on a finding (what libFuzzer reports).
pub fn fuzz_one(target: Target, data: &[u8]) {
    let outcome = check_data(target, data);
    if let Some(f) = outcome.finding() {
        panic!("{} [{}]: {}", target.name(), f.class, f.detail);
    }
}
