//! Module and call generation: wasm-smith configured for the features canister-vm accepts.
//!
//! A *seed* gives a deterministic byte string ([`seed_bytes`], fastrand's wyrand), which becomes
//! an [`Unstructured`]; wasm-smith builds a module from it and the rest of the bytes choose the
//! calls ([`plan`]). libFuzzer targets skip the first step and hand their input to [`Input::new`].

use arbitrary::Unstructured;
use wasm_smith::{Config, Module};

use crate::exec::{Call, Value};
use crate::module::Layout;

/// The fuel wasm-smith's `ensure_termination` gives every call: loop iterations plus function
/// entries. The global holding it is reset before each call, so every call is bounded.
pub const FUEL: u32 = 1_000;

/// `ic0` stable-memory functions a generated module may import (the only imports).
const STABLE_IMPORTS: &str = r#"(module
    (import "ic0" "stable64_size" (func (result i64)))
    (import "ic0" "stable64_grow" (func (param i64) (result i64)))
    (import "ic0" "stable64_read" (func (param i64 i64 i64)))
    (import "ic0" "stable64_write" (func (param i64 i64 i64)))
    (import "ic0" "stable_size" (func (result i32)))
    (import "ic0" "stable_grow" (func (param i32) (result i32)))
    (import "ic0" "stable_read" (func (param i32 i32 i32)))
    (import "ic0" "stable_write" (func (param i32 i32 i32)))
)"#;

/// A generated input: the module (not yet exposed) and the calls to make.
#[derive(Debug, Clone)]
pub struct Input {
    /// The module, as wasm-smith made it.
    pub wasm: Vec<u8>,
    /// The calls, in order.
    pub calls: Vec<Call>,
    /// The index of wasm-smith's fuel global, reset to [`FUEL`] before each call.
    pub fuel_global: Option<u32>,
}

/// The deterministic bytes of `seed` (1 to 16 KiB).
pub fn seed_bytes(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let len = rng.usize(1024..16 * 1024);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    bytes
}

/// wasm-smith's configuration for canister-vm: Wasm 2.0, multi-memory, memory64, SIMD, tail
/// calls, extended-const, bulk memory; no threads, relaxed SIMD, GC, exceptions, custom page
/// sizes or wide arithmetic; at most 3 memories of 1 MiB; every item exported; no start function
/// (the host binds the heap after instantiation); only `ic0` stable imports, in some modules.
/// `canonicalize_nans` is chosen per module (see the crate docs, "NaN payloads").
pub fn smith_config(u: &mut Unstructured<'_>) -> arbitrary::Result<Config> {
    let stable = u.ratio(1, 3)?;
    let canonicalize_nans = u.ratio(3, 4)?;
    Ok(Config {
        available_imports: stable.then(|| wat::parse_str(STABLE_IMPORTS).expect("valid WAT")),
        allow_start_export: false,
        bulk_memory_enabled: true,
        canonicalize_nans,
        exceptions_enabled: false,
        export_everything: true,
        gc_enabled: false,
        custom_page_sizes_enabled: false,
        max_funcs: 12,
        min_funcs: 2,
        min_types: 2,
        max_imports: if stable { 8 } else { 0 },
        max_instructions: 120,
        max_memories: 3,
        max_memory32_bytes: 1 << 20,
        max_memory64_bytes: 1 << 20,
        memory64_enabled: true,
        max_tables: 2,
        max_table_elements: 1_000,
        max_data_segments: 8,
        max_element_segments: 8,
        max_globals: 12,
        multi_value_enabled: true,
        reference_types_enabled: true,
        relaxed_simd_enabled: false,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        shared_everything_threads_enabled: false,
        simd_enabled: true,
        tail_call_enabled: true,
        threads_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: true,
        ..Config::default()
    })
}

impl Input {
    /// Builds a module and its calls from `data` (any bytes).
    pub fn new(data: &[u8]) -> arbitrary::Result<Input> {
        let mut u = Unstructured::new(data);
        let config = smith_config(&mut u)?;
        let mut module = Module::new(config, &mut u)?;
        let fuel_global = module.ensure_termination(FUEL).ok();
        let wasm = module.to_bytes();
        let layout =
            crate::module::Layout::of(&wasm).map_err(|_| arbitrary::Error::IncorrectFormat)?;
        let calls = plan(&layout, &mut u)?;
        Ok(Input {
            wasm,
            calls,
            fuel_global,
        })
    }

    /// Builds the input of `seed`.
    pub fn from_seed(seed: u64) -> arbitrary::Result<Input> {
        Input::new(&seed_bytes(seed))
    }
}

/// An argument: boundary values often, arbitrary bits otherwise.
fn arg(ty: wasmparser::ValType, u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    use wasmparser::ValType as T;
    const I32S: [i32; 8] = [0, 1, -1, 8, 4095, 4096, 65536, i32::MIN];
    const I64S: [i64; 7] = [0, 1, -1, 4096, 65536, 1 << 32, i64::MIN];
    let special = u.ratio(1, 2)?;
    Ok(match ty {
        T::I32 if special => Value::I32(*u.choose(&I32S)?),
        T::I32 => Value::I32(u.arbitrary()?),
        T::I64 if special => Value::I64(*u.choose(&I64S)?),
        T::I64 => Value::I64(u.arbitrary()?),
        T::F32 if special => Value::F32(*u.choose(&[0, 0x3f80_0000, 0x7fc0_0000, 0xffc0_0001])?),
        T::F32 => Value::F32(u.arbitrary()?),
        T::F64 if special => Value::F64(*u.choose(&[0, 0x3ff0_0000_0000_0000, 0x7ff8 << 48])?),
        T::F64 => Value::F64(u.arbitrary()?),
        T::V128 => Value::V128(u.arbitrary()?),
        T::Ref(_) => Value::Ref { null: true },
    })
}

/// Up to 16 calls of the module's exported functions, with generated arguments.
pub fn plan(layout: &Layout, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Call>> {
    let mut calls = Vec::new();
    if layout.funcs.is_empty() {
        return Ok(calls);
    }
    // At least one call of every function (up to 8), then random ones.
    for f in layout.funcs.iter().take(8) {
        let args = f
            .params
            .iter()
            .map(|t| arg(*t, u))
            .collect::<Result<_, _>>()?;
        calls.push(Call {
            export: f.name.clone(),
            args,
        });
    }
    let extra = u.int_in_range(0..=8)?;
    for _ in 0..extra {
        let f = u.choose(&layout.funcs)?;
        let args = f
            .params
            .iter()
            .map(|t| arg(*t, u))
            .collect::<Result<_, _>>()?;
        calls.push(Call {
            export: f.name.clone(),
            args,
        });
    }
    Ok(calls)
}
