//! Instrumentation: parse → rewrite → encode.
//!
//! [`instrument`] takes a canister module and returns a module that the runtime can drive on any
//! engine with multi-memory and memory64. The passes, in order:
//!
//! 1. **validate** ([`validate`]): the module is valid Wasm for the engine's feature set, and
//!    (except with [`Config::generic`]) a valid canister ([`rules`], DESIGN.md §8).
//! 2. **exports** (`exports`): the host needs to read and restore the heap and every mutable
//!    global, so they are exported under reserved names:
//!
//!    ```wat
//!    (export "canister_vm:heap" (memory 0))
//!    (export "canister_vm:global:<i>" (global <i>))   ;; for every mutable global i
//!    ```
//!    Then **metering** ([`metering`], costs in [`cost`]) counts instructions in an exported
//!    i64 global, before the stable-memory pass so that its injected code is not metered.
//!    Then **NaN canonicalization** ([`nan`]), also after metering so that its injected code is
//!    not counted: float results that may be NaNs get the canonical NaN (DESIGN.md §5).
//!    Then the **stable** pass (`stable`), and last the **write barrier** ([`barrier`]): every
//!    store, `memory.fill/copy/init` and `memory.grow` on any memory (stable memory included)
//!    also marks the 4 KiB pages it writes in a byte map per memory,
//!    `canister_vm:dirty:<memory index>`.
//! 3. **encode**: every section the passes do not touch is copied unchanged (custom sections such
//!    as `icp:public candid:service` and the name section included), through
//!    [`wasm_encoder::reencode::Reencode`].

pub mod barrier;
pub mod cost;
mod error;
mod exports;
pub mod metering;
pub mod nan;
pub mod rules;
mod sections;
mod stable;
pub use stable::{STABLE_CALL_BASE_COST, STABLE_GROW_COST, fast_limit};
mod summary;
mod validate;

pub use error::{InjectedTrap, InstrumentError};
pub use summary::Summary;
pub use validate::validate;

/// Names reserved for items that instrumentation injects; input modules may not export them.
pub mod names {
    /// Export of memory 0 (the heap).
    pub const HEAP: &str = "canister_vm:heap";
    /// Export of table 0, where the host finds inter-canister call callbacks.
    pub const TABLE: &str = "canister_vm:table";
    /// Prefix of the exports of mutable globals: `canister_vm:global:<index>`.
    pub const GLOBAL_PREFIX: &str = "canister_vm:global:";
    /// Prefix of every name canister-vm reserves.
    pub const RESERVED_PREFIX: &str = "canister_vm:";
    /// Export of the injected stable memory.
    pub const STABLE_MEMORY: &str = "stable_memory";
    /// Export of the injected global holding the stable memory size in bytes.
    pub const STABLE_BYTES: &str = "canister_vm:stable_bytes";
    /// Exported mutable i64 global (native mode): the fast path's bound, `stable_bytes - 7`, or
    /// 0 while stable memory is empty; an 8-byte access at `off` is in bounds iff `off < it`.
    /// Kept equal to `fast_limit(stable_bytes)` by the injected grow and by the host.
    pub const STABLE_FAST_LIMIT: &str = "canister_vm:stable_fast_limit";
    /// Export of the instruction counter.
    pub const COUNTER: &str = "canister counter_instructions";
    /// Import module of the functions the host provides to injected code.
    pub const HOST_MODULE: &str = "canister_vm";
    /// Prefix of the exports of the write barrier's byte maps: `canister_vm:dirty:<memory>`.
    pub const DIRTY_PREFIX: &str = "canister_vm:dirty:";
}

/// How the instrumented canister reaches stable memory (recorded in state directories and
/// message logs as `"native"` / `"syscall"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StableMode {
    /// Stable memory is an injected memory64 memory; the `ic0.stable*` imports are replaced by
    /// injected functions that reach it with plain Wasm (the default).
    #[default]
    Native,
    /// The `ic0.stable*` imports stay host calls to a host buffer (the system-API baseline).
    Syscall,
}

/// Instrumentation settings (builder style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    stable: StableMode,
    metering: bool,
    barrier: bool,
    nan: bool,
    stable_limit_pages: u64,
    /// Whether the canister rules (DESIGN.md §8) apply; off for [`Config::generic`].
    canister_rules: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stable: StableMode::Native,
            metering: true,
            barrier: true,
            nan: true,
            stable_limit_pages: 400 * 1024 * 1024 * 1024 / 65536,
            canister_rules: true,
        }
    }
}

impl Config {
    /// Settings for any valid module, not only canisters (the spec-test runner): metering on, no
    /// canister rules (the module may import anything from anywhere and have no memory), stable
    /// memory left alone.
    pub fn generic() -> Self {
        Config {
            stable: StableMode::Syscall,
            canister_rules: false,
            ..Config::default()
        }
    }
    /// How stable memory is reached (default: native).
    pub fn stable(mut self, mode: StableMode) -> Self {
        self.stable = mode;
        self
    }
    /// Whether to instrument instruction counting (default: on).
    pub fn metering(mut self, on: bool) -> Self {
        self.metering = on;
        self
    }
    /// Whether to instrument the write barrier, dirty-page tracking (default: on).
    pub fn barrier(mut self, on: bool) -> Self {
        self.barrier = on;
        self
    }
    /// Whether float results that may be NaNs are canonicalized ([`nan`]; default: on).
    pub fn nan_canonicalization(mut self, on: bool) -> Self {
        self.nan = on;
        self
    }
    /// The largest stable memory, in 64 KiB pages (default: 400 GiB).
    pub fn stable_limit_pages(mut self, pages: u64) -> Self {
        self.stable_limit_pages = pages;
        self
    }
}

/// An instrumented module.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The instrumented module's bytes.
    pub wasm: Vec<u8>,
    /// What instrumentation did.
    pub summary: Summary,
}

/// Validates and instruments `wasm` (see the module docs for the passes).
pub fn instrument(wasm: &[u8], config: &Config) -> Result<Instrumented, InstrumentError> {
    let info = validate(wasm)?;
    if config.canister_rules {
        rules::check(wasm)?;
    }
    let mut summary = Summary::new(&info, config);
    let wasm = exports::add_host_exports(wasm, &info, &mut summary)?;
    let wasm = match config.metering {
        true => metering::rewrite(&wasm, &mut summary)?,
        false => wasm,
    };
    let wasm = match config.nan {
        true => nan::rewrite(&wasm, &mut summary)?,
        false => wasm,
    };
    let wasm = stable::rewrite(
        &wasm,
        config.stable,
        config.stable_limit_pages,
        &mut summary,
    )?;
    let wasm = match config.barrier {
        true => barrier::rewrite(&wasm, &mut summary)?,
        false => wasm,
    };
    Ok(Instrumented { wasm, summary })
}

#[cfg(test)]
mod tests;
