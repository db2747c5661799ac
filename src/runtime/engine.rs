//! Engine setup: the one wasmi configuration every part of canister-vm uses.
//!
//! The runtime, the spec-test runner and the benchmarks all build their engine from
//! [`engine_config`], so a module that passes the spec suite here behaves the same inside a
//! canister.

use wasmi::{CompilationMode, Config, Engine};

/// The wasmi configuration used for canisters and spec tests.
///
/// * multi-memory and memory64 on (stable memory is an injected memory64 memory at the end of the
///   memory index space, DESIGN.md §2);
/// * SIMD on, relaxed SIMD and threads off (the IC forbids them, DESIGN.md §8);
/// * eager compilation, so a module is fully validated and translated before it runs and results
///   never depend on which functions happened to be called (DESIGN.md §10).
pub fn engine_config() -> Config {
    let mut config = Config::default();
    config
        .wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_bulk_memory(true)
        .wasm_reference_types(true)
        .wasm_multi_value(true)
        .wasm_sign_extension(true)
        .wasm_saturating_float_to_int(true)
        .wasm_mutable_global(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(false)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .compilation_mode(CompilationMode::Eager);
    config
}

/// A new wasmi [`Engine`] with [`engine_config`].
pub fn new_engine() -> Engine {
    Engine::new(&engine_config())
}
