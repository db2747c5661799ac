//! Engine setup and the engine abstraction the lifecycle is written against.
//!
//! The runtime, the spec-test runner and the benchmarks all build their wasmi engine from
//! [`engine_config`], so a module that passes the spec suite here behaves the same inside a
//! canister. A canister runs on the [`Engine`] its configuration names: wasmi always, wasmtime
//! in builds with the `wasmtime` cargo feature. The lifecycle (`canister.rs`) sees a running
//! instance only through `Instance` (crate-internal), which each backend implements, so transactions, rollback
//! and the state hash are written once for every engine.

use wasmi::{CompilationMode, Config};

use super::ic0::HeapType;
use super::ic0::api::{HostTrap, Ic0};
use crate::error::Error;
use crate::state::GlobalValue;

/// The engine a canister runs on.
///
/// Both engines run the same instrumented module with the same `ic0` implementation, so they
/// give the same replies, instruction counts, dirty pages and state hashes. Only [`Engine::Wasmi`]
/// is in every build; [`Engine::Wasmtime`] needs the `wasmtime` cargo feature
/// ([`Engine::is_available`]), and asking a build without it for wasmtime is an
/// [`Error::EngineUnavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Engine {
    /// The wasmi interpreter (the default).
    #[default]
    Wasmi,
    /// The wasmtime JIT (Cranelift); only in builds with the `wasmtime` feature.
    Wasmtime,
}

impl Engine {
    /// Every engine, available in this build or not.
    pub const ALL: [Engine; 2] = [Engine::Wasmi, Engine::Wasmtime];

    /// Whether this build can run canisters on this engine.
    pub fn is_available(self) -> bool {
        match self {
            Engine::Wasmi => true,
            Engine::Wasmtime => cfg!(feature = "wasmtime"),
        }
    }

    /// The engines this build can run.
    pub fn available() -> Vec<Engine> {
        Engine::ALL
            .into_iter()
            .filter(|e| e.is_available())
            .collect()
    }

    /// The engine's name as the CLI spells it: `wasmi` or `wasmtime`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Wasmi => "wasmi",
            Engine::Wasmtime => "wasmtime",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasmi" => Ok(Engine::Wasmi),
            "wasmtime" => Ok(Engine::Wasmtime),
            other => Err(format!(
                "unknown engine `{other}` (expected `wasmi` or `wasmtime`)"
            )),
        }
    }
}

/// The wasmi configuration used for canisters and spec tests.
///
/// * multi-memory and memory64 on (stable memory is an injected memory64 memory at the end of the
///   memory index space, DESIGN.md §2);
/// * SIMD on, relaxed SIMD and threads off (the IC forbids them, DESIGN.md §8);
/// * eager compilation, so a module is fully validated and translated before it runs and results
///   never depend on which functions happened to be called (DESIGN.md §10).
pub fn engine_config() -> Config {
    warn_if_unoptimised();
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

/// Whether this build of canister-vm is unoptimised (opt-level 0): the sign that the project that
/// depends on it lacks the profile lines of "Using canister-vm as a dependency" (crate docs), so
/// wasmi is most likely unoptimised too, and canisters run many times slower than they should.
pub const UNOPTIMISED_BUILD: bool = cfg!(canister_vm_unoptimised);

/// The environment variable that silences the warning an unoptimised build prints.
pub const QUIET_PROFILE_VAR: &str = "CANISTER_VM_QUIET_PROFILE";

/// The warning an unoptimised build prints on stderr once, when its first engine is configured.
pub fn unoptimised_warning() -> String {
    format!(
        "canister-vm: warning: canister-vm is built unoptimised (opt-level 0), so wasmi most \
         likely is too: canisters run ~70x slower (an update of the kv test canister: 17 ms \
         instead of 0.3 ms). Cargo applies profiles from the root workspace only: add these \
         lines to your workspace's root Cargo.toml:\n{DEPENDENT_PROFILE}\
         and, so that wasmi has canister-vm's fixes, its patches: `[patch.crates-io]` `wasmi` and \
         `wasmi_core` from canister-vm's `vendor/` directory. See \"Using canister-vm as a \
         dependency\" (crate docs, README). Set {QUIET_PROFILE_VAR}=1 to silence this warning."
    )
}

/// The profile lines a project that depends on canister-vm adds to its root `Cargo.toml` (the
/// crate docs, "Using canister-vm as a dependency", explain them): the interpreter and the crates
/// every message goes through optimised, as canister-vm's own workspace builds them.
pub const DEPENDENT_PROFILE: &str = "\
[profile.dev.package.wasmi]
opt-level = 3
debug-assertions = false
overflow-checks = false
[profile.dev.package.wasmi_core]
opt-level = 3
debug-assertions = false
overflow-checks = false
[profile.dev.package.wasmi_ir]
opt-level = 3
debug-assertions = false
overflow-checks = false
[profile.dev.package.wasmparser]
opt-level = 3
[profile.dev.package.wasm-encoder]
opt-level = 3
[profile.dev.package.candid]
opt-level = 2
[profile.dev.package.sha2]
opt-level = 3
[profile.dev.package.ic_bls12_381]
opt-level = 3
[profile.dev.package.canister-vm]
opt-level = 1
";

/// Prints [`unoptimised_warning`] on stderr, once per process, in an [`UNOPTIMISED_BUILD`] unless
/// [`QUIET_PROFILE_VAR`] is set.
fn warn_if_unoptimised() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if UNOPTIMISED_BUILD {
        WARNED.call_once(|| {
            if std::env::var_os(QUIET_PROFILE_VAR).is_none() {
                eprintln!("{}", unoptimised_warning());
            }
        });
    }
}

/// A new wasmi [`Engine`](wasmi::Engine) with [`engine_config`].
pub fn new_engine() -> wasmi::Engine {
    wasmi::Engine::new(&engine_config())
}

/// A memory of an instrumented instance that the lifecycle reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mem {
    /// The heap (memory 0, exported as `canister_vm:heap`).
    Heap,
    /// The injected stable memory (native mode only).
    Stable,
    /// The write barrier's byte map of the heap.
    HeapMap,
    /// The write barrier's byte map of (native) stable memory.
    StableMap,
}

/// Why a call into the canister (or its start function) did not return normally. Each backend
/// maps its own error to this, so every engine gives the same reject message for the same trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trap {
    /// A host function or injected code trapped (`ic0.trap`, a bounds check, `canister_vm.trap`).
    Host(HostTrap),
    /// The Wasm code trapped; named by wasmi's trap code (wasmtime's codes map onto it), whose
    /// text the reject message uses.
    Wasm(wasmi::TrapCode),
    /// Any other failure of the call, as text (an engine-specific trap without a counterpart).
    Other(String),
    /// The engine itself failed (panicked) running the call: a bug in the engine, not in the
    /// canister. The instance may be inconsistent afterwards, so the lifecycle rebuilds it
    /// from the committed state instead of rolling it back in place.
    Engine(EnginePanic),
}

/// A panic caught at the engine seam: the engine failed compiling, instantiating or running a
/// module (a bug in the engine, which must not take the process down).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {engine} engine failed while {during}: {message}")]
pub struct EnginePanic {
    /// The engine that panicked.
    pub engine: Engine,
    /// What it was doing: "compiling and instantiating the module", "running `<export>`", ...
    pub during: String,
    /// The panic message.
    pub message: String,
}

/// Runs `f`, engine work that must not unwind into the lifecycle: a panic inside it becomes an
/// [`EnginePanic`] naming `engine` and `during`. The one place where engine panics are caught.
///
/// This needs the unwinding panic strategy (the default; canister-vm never sets
/// `panic = "abort"`). The default panic hook still prints the panic to stderr, which is kept
/// on purpose: it locates the engine bug.
pub(crate) fn catch_engine_panic<T>(
    engine: Engine,
    during: impl FnOnce() -> String,
    f: impl FnOnce() -> T,
) -> Result<T, EnginePanic> {
    // `AssertUnwindSafe`: after a panic the caller discards (compiling, instantiating) or
    // rebuilds (running, see `Trap::Engine`) everything `f` touched.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = match payload.downcast::<String>() {
            Ok(text) => *text,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(text) => (*text).to_string(),
                Err(_) => "(a panic without a message)".to_string(),
            },
        };
        EnginePanic {
            engine,
            during: during(),
            message,
        }
    })
}

/// Calls export `name` of `instance` (see [`Instance::call`]); a panic of the engine is
/// [`Trap::Engine`].
pub(crate) fn call(engine: Engine, instance: &mut dyn Instance, name: &str) -> Result<(), Trap> {
    catch_engine_panic(
        engine,
        || format!("running `{name}`"),
        || instance.call(name),
    )
    .unwrap_or_else(|panic| Err(Trap::Engine(panic)))
}

/// Calls callback `fun(env)` of `instance` (see [`Instance::call_callback`]); a panic of the
/// engine is [`Trap::Engine`].
pub(crate) fn call_callback(
    engine: Engine,
    instance: &mut dyn Instance,
    fun: u64,
    env: u64,
) -> Result<(), Trap> {
    catch_engine_panic(
        engine,
        || format!("running the callback at table index {fun}"),
        || instance.call_callback(fun, env),
    )
    .unwrap_or_else(|panic| Err(Trap::Engine(panic)))
}

/// A fresh instance of `instance`'s module (see [`Instance::reinstantiate`]); a panic of the
/// engine (while running the start function) is an [`Error::Instantiate`].
pub(crate) fn reinstantiate(
    engine: Engine,
    instance: &dyn Instance,
    ic0: Ic0,
) -> Result<Result<Box<dyn Instance>, Trap>, Error> {
    catch_engine_panic(
        engine,
        || "instantiating the module again".to_string(),
        || instance.reinstantiate(ic0),
    )
    .unwrap_or_else(|panic| Err(Error::Instantiate(Box::new(panic))))
}

/// A running instance of an instrumented canister module on some engine, with the `ic0`
/// functions linked to its [`Ic0`] host state.
///
/// The export names the lifecycle looks up (heap, stable memory, byte maps, globals, counter) are
/// resolved once at instantiation; a memory or global the module does not have is `None`.
pub(crate) trait Instance: Send {
    /// The names of the module's exports.
    fn export_names(&self) -> Vec<String>;
    /// The `ic0` host state.
    fn ic0(&self) -> &Ic0;
    /// The `ic0` host state, mutably.
    fn ic0_mut(&mut self) -> &mut Ic0;
    /// The bytes of memory `m`, if the instance has it.
    fn memory(&self, m: Mem) -> Option<&[u8]>;
    /// The bytes of memory `m`, mutably, if the instance has it.
    fn memory_mut(&mut self, m: Mem) -> Option<&mut [u8]>;
    /// Grows memory `m` by `delta` 64 KiB pages.
    fn grow(&mut self, m: Mem, delta: u64) -> Result<(), String>;
    /// The size of memory `m` in 64 KiB pages (0 if the instance has no such memory).
    fn pages(&self, m: Mem) -> u64;
    /// Values of the module's mutable globals (exported as `canister_vm:global:<index>`), sorted
    /// by global index; non-null references read as null.
    fn globals(&self) -> Vec<(u32, GlobalValue)>;
    /// Sets mutable global `index`.
    fn set_global(&mut self, index: u32, value: GlobalValue) -> Result<(), String>;
    /// The instruction counter, if the module is metered.
    fn counter(&mut self) -> Option<i64>;
    /// Starts a message with `budget` instructions: sets the counter (if metered) and tells the
    /// `performance_counter` glue where the message started.
    fn set_budget(&mut self, budget: i64);
    /// Sets the native-mode global that holds the stable memory size in bytes (if present).
    fn set_stable_bytes(&mut self, bytes: i64) -> Result<(), String>;
    /// Calls export `name`, which must be a `() -> ()` function.
    fn call(&mut self, name: &str) -> Result<(), Trap>;
    /// Calls the callback at index `fun` of table 0 (exported as `canister_vm:table`) with
    /// `env`, as the IC runs inter-canister call callbacks: the function must have type
    /// `(I) -> ()`, `I` the heap's address type.
    fn call_callback(&mut self, fun: u64, env: u64) -> Result<(), Trap>;
    /// A fresh instance of the same compiled module with host state `ic0` (start function run),
    /// without compiling again: how a rollback that cannot be done in place starts over.
    fn reinstantiate(&self, ic0: Ic0) -> Result<Result<Box<dyn Instance>, Trap>, Error>;
}

/// Instantiates an instrumented module on `engine` (running its start function with `ic0`,
/// whose message context the caller has set). A trap of the start function is `Ok(Err(trap))`;
/// a panic of the engine (compiling the module or running its start function) is an
/// [`Error::Instantiate`] holding the [`EnginePanic`].
pub(crate) fn instantiate(
    engine: Engine,
    wasm: &[u8],
    heap_type: HeapType,
    stable_index: Option<u32>,
    ic0: Ic0,
) -> Result<Result<Box<dyn Instance>, Trap>, Error> {
    warn_if_unoptimised();
    catch_engine_panic(
        engine,
        || "compiling and instantiating the module".to_string(),
        || instantiate_unguarded(engine, wasm, heap_type, stable_index, ic0),
    )
    .unwrap_or_else(|panic| Err(Error::Instantiate(Box::new(panic))))
}

/// [`instantiate`] without catching engine panics.
fn instantiate_unguarded(
    engine: Engine,
    wasm: &[u8],
    heap_type: HeapType,
    stable_index: Option<u32>,
    ic0: Ic0,
) -> Result<Result<Box<dyn Instance>, Trap>, Error> {
    match engine {
        Engine::Wasmi => Ok(
            super::wasmi_backend::instantiate(wasm, heap_type, stable_index, ic0)?
                .map(|i| Box::new(i) as Box<dyn Instance>),
        ),
        #[cfg(feature = "wasmtime")]
        Engine::Wasmtime => {
            Ok(
                super::wasmtime_backend::instantiate(wasm, heap_type, stable_index, ic0)?
                    .map(|i| Box::new(i) as Box<dyn Instance>),
            )
        }
        #[cfg(not(feature = "wasmtime"))]
        Engine::Wasmtime => Err(Error::EngineUnavailable { engine }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dependent_profile_lines_are_the_root_manifest_s_and_documented() {
        let manifest = include_str!("../../Cargo.toml");
        for section in DEPENDENT_PROFILE.split_inclusive('\n').fold(
            Vec::<String>::new(),
            |mut sections, line| {
                if line.starts_with('[') || sections.is_empty() {
                    sections.push(String::new());
                }
                sections.last_mut().unwrap().push_str(line);
                sections
            },
        ) {
            assert!(
                manifest.contains(&section),
                "the root Cargo.toml lacks, or differs from, the dependent profile's\n{section}"
            );
        }
        assert!(include_str!("../../README.md").contains(DEPENDENT_PROFILE));
        let crate_docs: String = include_str!("../lib.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! ").or(line.strip_prefix("//!")))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(crate_docs.contains(DEPENDENT_PROFILE));
        assert!(unoptimised_warning().contains(DEPENDENT_PROFILE));
        assert!(unoptimised_warning().contains(QUIET_PROFILE_VAR));
    }

    #[test]
    fn a_caught_panic_names_the_engine_the_work_and_the_message() {
        let caught = catch_engine_panic(
            Engine::Wasmi,
            || "running `x`".into(),
            || panic!("entered unreachable code: {}", 1),
        );
        let panic = caught.unwrap_err();
        assert_eq!(
            panic.to_string(),
            "the wasmi engine failed while running `x`: entered unreachable code: 1"
        );
        let caught = catch_engine_panic(
            Engine::Wasmi,
            || "compiling".into(),
            || -> u8 { panic!("a static message") },
        );
        assert_eq!(caught.unwrap_err().message, "a static message");
        let caught = catch_engine_panic(
            Engine::Wasmi,
            || "compiling".into(),
            || -> u8 { std::panic::panic_any(42_u32) },
        );
        assert_eq!(caught.unwrap_err().message, "(a panic without a message)");
        assert_eq!(
            catch_engine_panic(Engine::Wasmi, || unreachable!(), || 7),
            Ok(7),
            "no panic, no cost beyond the call"
        );
    }
}
