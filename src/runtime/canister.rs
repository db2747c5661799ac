//! The canister lifecycle: install, update, query, upgrade, with transactional messages.
//!
//! A [`Canister`] owns an instance of its instrumented module on the configured [`Engine`]
//! (wasmi, or wasmtime with the `wasmtime` feature). Every message runs against a snapshot:
//! success commits, a trap (or a reject, or an update without reply) restores heap, stable
//! memory, globals and system state exactly. Queries always roll back.
//!
//! This code is written once for every engine: it sees the instance only through
//! `engine::Instance` (memories, globals, calls), so transactions, rollback and
//! the state hash cannot differ between engines.
//!
//! One room per concern: `canister/message.rs` (what a message is given and gives back),
//! `canister/config.rs` (how a canister runs, what its module exports),
//! `canister/transaction.rs` (the committed memories, commit and rollback in O(dirty pages),
//! snapshots, composite-query sessions), `canister/delivery.rs` (the messages a subnet delivers:
//! requests, callbacks, cleanup, system tasks, ingress inspection); this file creates and
//! restores canisters and runs the standalone install, update, query and upgrade.

use super::engine::{self, Engine, Instance, Mem, Trap};
use super::ic0::HeapType;
use super::ic0::api::{
    Callback, EntryPoint, HostTrap, Ic0, MessageContext, OutgoingCall, Response, WASM_PAGE_SIZE,
    covered,
};
use crate::error::{Error, StateError};
use crate::instrument::{self, InjectedTrap};
use crate::state::{
    ANONYMOUS, CanisterState, Clock, GlobalValue, NonZeroPages, StableMode, SystemState,
};
use std::collections::BTreeMap;

mod config;
mod delivery;
mod message;
mod transaction;

pub(crate) use config::SubnetInfo;
pub use config::{CanisterConfig, Methods};
pub(crate) use delivery::{
    Callbacks, Delivery, DeliveryKind, Executed, Run, Target, did_not_reply,
};
pub use message::{DirtyPages, InstructionLimits, MessageInput, Outcome, Reject, RejectCode};
pub(crate) use transaction::Session;
use transaction::{Committed, Snapshot};

/// The replica's instruction limit for `canister_inspect_message` (200 M).
const INSPECT_MESSAGE_LIMIT: u64 = 200_000_000;

/// A canister running on an [`Engine`].
pub struct Canister {
    config: CanisterConfig,
    wasm: Vec<u8>,
    heap_type: HeapType,
    exports: Vec<String>,
    methods: Methods,
    instance: Box<dyn Instance>,
    clock: Clock,
    committed: Committed,
    /// SHA-256 of `wasm` (part of the state hash).
    module_sha256: crate::state::hash::Hash,
    /// The engine panicked during the current message: the instance may be inconsistent, so the
    /// rollback rebuilds it from the committed state.
    engine_failed: bool,
}

impl std::fmt::Debug for Canister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canister")
            .field("config", &self.config)
            .field("heap_type", &self.heap_type)
            .field("methods", &self.methods)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The heap bytes of an instance (empty without a heap).
fn heap_of(instance: &dyn Instance) -> &[u8] {
    instance.memory(Mem::Heap).unwrap_or(&[])
}

/// The stable memory bytes of an instance: the injected memory (native mode) or the host
/// buffer (system-API mode).
fn stable_of(instance: &dyn Instance) -> &[u8] {
    match instance.memory(Mem::Stable) {
        Some(m) => m,
        None => &instance.ic0().stable,
    }
}

/// The reject for a trap, naming the trap reason as the IC does; the same text on every engine.
/// The instruction limit of the start function, which runs at instantiation (the counter's
/// initial value).
const START_LIMIT: u64 = instrument::metering::START_BUDGET as u64;

/// The reject of a message that trapped with `trap`, in the replica's words; `limit` is the
/// message's instruction limit (named when it was exceeded).
fn trap_reject(canister_id: &[u8], trap: &Trap, limit: u64) -> Reject {
    let id = candid::Principal::from_slice(canister_id).to_text();
    let message = match trap {
        Trap::Host(HostTrap::Injected(InjectedTrap::InstructionLimit)) => format!(
            "Canister {id} exceeded the limit of {limit} instructions for single message \
             execution."
        ),
        Trap::Host(HostTrap::Explicit(msg)) => format!("Canister {id} trapped explicitly: {msg}"),
        Trap::Host(HostTrap::ContractViolation(msg)) => {
            format!("Canister {id} violated contract: {msg}")
        }
        Trap::Host(trap) => format!("Canister {id} trapped: {trap}"),
        // As on the IC, a Wasm memory access out of bounds is a heap out of bounds (accesses
        // to stable memory are checked explicitly and trap with their own reason).
        Trap::Wasm(wasmi::TrapCode::MemoryOutOfBounds) => {
            format!("Canister {id} trapped: heap out of bounds")
        }
        Trap::Wasm(code) => format!("Canister {id} trapped: {code}"),
        Trap::Other(text) => format!("Canister {id} trapped: {text}"),
        Trap::Engine(panic) => format!(
            "Canister {id} could not run: {panic} (a bug in the engine, not in the canister; \
             the message's changes were undone)"
        ),
    };
    Reject {
        code: RejectCode::CanisterError,
        message,
    }
}

impl Canister {
    /// Validates and instruments `wasm` and instantiates it as a new, empty canister (data
    /// segments applied, start function run, `canister_init` not yet called).
    ///
    /// A trap of the start function is [`Error::StartTrapped`] (with the reject naming the
    /// trap).
    pub fn create(
        wasm: Vec<u8>,
        config: CanisterConfig,
        controller: candid::Principal,
    ) -> Result<Canister, Error> {
        let system = SystemState::new(controller.as_slice().to_vec());
        Self::instantiate(wasm, config, system, Vec::new(), None, Clock::default())?
            .map_err(Error::StartTrapped)
    }

    /// [`create`](Self::create) with a given system state (a subnet's canister: its own id).
    pub(crate) fn create_with(
        wasm: Vec<u8>,
        config: CanisterConfig,
        system: SystemState,
    ) -> Result<Result<Canister, Reject>, Error> {
        Self::instantiate(wasm, config, system, Vec::new(), None, Clock::default())
    }

    /// Instantiates a fresh instance of `wasm` with the given system state, stable memory and
    /// clock (heap and globals as the module initialises them). `stable_nonzero`, if known,
    /// lists the only non-zero pages of `stable`, so that putting it in costs O(those pages).
    fn instantiate(
        wasm: Vec<u8>,
        config: CanisterConfig,
        system: SystemState,
        stable: Vec<u8>,
        stable_nonzero: Option<&[u64]>,
        clock: Clock,
    ) -> Result<Result<Canister, Reject>, Error> {
        if !config.engine.is_available() {
            return Err(Error::EngineUnavailable {
                engine: config.engine,
            });
        }
        let instrumented = instrument::instrument(&wasm, &config.instrument_config())?;
        let heap_type = instrumented.summary.heap_type;
        let canister_id = system.canister_id.clone();
        let ic0 = Self::start_ic0(&config, system, heap_type, &clock);
        let instance = match engine::instantiate(
            config.engine,
            &instrumented.wasm,
            heap_type,
            instrumented.summary.stable_memory_index,
            ic0,
        )? {
            Ok(instance) => instance,
            Err(trap) => {
                return Ok(Err(trap_reject(&canister_id, &trap, START_LIMIT)));
            }
        };
        Self::assemble(
            wasm,
            config,
            heap_type,
            instance,
            stable,
            stable_nonzero,
            clock,
        )
        .map(Ok)
    }

    /// The `ic0` host state for instantiating (running the start function).
    fn start_ic0(
        config: &CanisterConfig,
        system: SystemState,
        heap_type: HeapType,
        clock: &Clock,
    ) -> Ic0 {
        let mut ic0 = Ic0::new(system, Vec::new(), config.stable_limit_pages, heap_type);
        ic0.calls_enabled = config.subnet.is_some();
        let subnet = config.subnet.clone().unwrap_or_else(SubnetInfo::standalone);
        ic0.subnet_id = subnet.subnet_id;
        ic0.root_key = Some(subnet.root_key);
        ic0.begin(MessageContext::start(clock.next_time(None)));
        ic0
    }

    /// A canister around a new instance: stable memory put in, committed copies taken.
    fn assemble(
        wasm: Vec<u8>,
        config: CanisterConfig,
        heap_type: HeapType,
        instance: Box<dyn Instance>,
        stable: Vec<u8>,
        stable_nonzero: Option<&[u64]>,
        clock: Clock,
    ) -> Result<Canister, Error> {
        let exports = instance.export_names();
        let methods = Methods::of(&exports);
        let module_sha256 = {
            use sha2::Digest;
            sha2::Sha256::digest(&wasm).into()
        };
        let mut canister = Canister {
            module_sha256,
            config,
            wasm,
            heap_type,
            exports,
            methods,
            instance,
            clock,
            committed: Committed::default(),
            engine_failed: false,
        };
        canister.set_stable(&stable, stable_nonzero)?;
        match stable_nonzero {
            // The live stable memory now equals `stable`: it becomes the committed copy.
            Some(nonzero) => canister.reset_committed_with(None, Some((stable, nonzero)))?,
            None => canister.reset_committed()?,
        }
        Ok(canister)
    }

    /// A fresh instance of this canister's module (compiled already) with system state `system`,
    /// an empty stable memory and heap and globals as the module initialises them.
    fn reinstantiate(&self, system: SystemState) -> Result<Canister, Error> {
        let ic0 = Self::start_ic0(&self.config, system, self.heap_type, &self.clock);
        let instance =
            engine::reinstantiate(self.config.engine, &*self.instance, ic0)?.map_err(|trap| {
                let reject = trap_reject(&self.system().canister_id, &trap, START_LIMIT);
                Error::State(StateError::Restore {
                    why: reject.message,
                })
            })?;
        Self::assemble(
            self.wasm.clone(),
            self.config.clone(),
            self.heap_type,
            instance,
            Vec::new(),
            None,
            self.clock.clone(),
        )
    }

    /// Rebuilds a canister from a saved state.
    pub fn from_state(state: CanisterState, config: CanisterConfig) -> Result<Canister, Error> {
        Self::rebuild(state, None, config)
    }

    /// Rebuilds a canister from a saved state whose only non-zero memory pages are `nonzero`
    /// (as [`StateDir::load_checked`](crate::state::StateDir::load_checked) reports them):
    /// restoring and hashing touch only those pages, so opening a large, mostly-zero canister
    /// costs O(pages written) rather than O(memory size).
    pub fn from_sparse_state(
        state: CanisterState,
        nonzero: &NonZeroPages,
        config: CanisterConfig,
    ) -> Result<Canister, Error> {
        Self::rebuild(state, Some(nonzero), config)
    }

    fn rebuild(
        state: CanisterState,
        nonzero: Option<&NonZeroPages>,
        config: CanisterConfig,
    ) -> Result<Canister, Error> {
        let config = config.stable_mode(state.stable_mode);
        let restore_err = |why: String| Error::State(StateError::Restore { why });
        let mut canister = match Self::instantiate(
            state.wasm,
            config,
            state.system,
            Vec::new(),
            None,
            state.clock,
        )? {
            Ok(c) => c,
            Err(reject) => return Err(restore_err(reject.message)),
        };
        if canister.heap_type != state.heap_type {
            return Err(restore_err(
                "the heap type differs from the module's".into(),
            ));
        }
        let snap = Snapshot {
            heap: state.heap,
            stable: state.stable,
            globals: state.globals,
            system: canister.system().clone(),
            nonzero: nonzero.cloned(),
        };
        canister.restore(&snap)?;
        // The live memories now equal the state's: its buffers become the committed copies.
        match nonzero {
            Some(nonzero) => canister.reset_committed_with(
                Some((snap.heap, &nonzero.heap)),
                Some((snap.stable, &nonzero.stable)),
            )?,
            None => canister.reset_committed()?,
        }
        Ok(canister)
    }

    /// The complete state, for persisting.
    pub fn to_state(&self) -> CanisterState {
        let snap = self.snapshot();
        CanisterState {
            wasm: self.wasm.clone(),
            stable_mode: self.config.stable_mode,
            heap_type: self.heap_type,
            heap: snap.heap,
            stable: snap.stable,
            globals: snap.globals,
            system: snap.system,
            clock: self.clock.clone(),
        }
    }

    /// Exported methods and hooks.
    pub fn methods(&self) -> &Methods {
        &self.methods
    }

    /// The configuration the canister runs with.
    pub fn config(&self) -> &CanisterConfig {
        &self.config
    }

    /// Changes the instruction limits of the following messages (replay runs each message with
    /// the limit it was recorded with).
    pub fn set_instruction_limits(&mut self, limits: InstructionLimits) {
        self.config.limits = limits;
    }

    /// The installed (uninstrumented) module.
    pub fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// The heap's address type.
    pub fn heap_type(&self) -> HeapType {
        self.heap_type
    }

    /// System state (certified data, version, ...).
    pub fn system(&self) -> &SystemState {
        &self.instance.ic0().system
    }

    /// The system state, mutably (between messages: a subnet's management changes).
    pub(crate) fn system_mut(&mut self) -> &mut SystemState {
        &mut self.instance.ic0_mut().system
    }

    /// SHA-256 of the installed module.
    pub fn module_hash(&self) -> crate::state::hash::Hash {
        self.module_sha256
    }

    /// Message counter and time.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Heap bytes.
    pub fn heap(&self) -> &[u8] {
        heap_of(&*self.instance)
    }

    /// The state hash (DESIGN.md §6): the memory hash ([`Canister::memory_hash`]) combined
    /// with the module hash, stable mode, heap type, system state and clock
    /// ([`crate::state::hash::state_root`]), kept up to date from each message's dirty pages.
    pub fn state_hash(&self) -> crate::state::hash::Hash {
        crate::state::hash::state_root(&self.memory_hash(), &self.metadata())
    }

    /// The memory hash over heap and stable pages, memory sizes, mutable globals and certified
    /// data (the whole state hash of state format 2, which old directories and logs carry).
    pub fn memory_hash(&self) -> crate::state::hash::Hash {
        self.committed.hash.root(
            self.committed.heap.len(),
            self.committed.stable.len(),
            &self.globals(),
            &self.system().certified_data,
        )
    }

    fn metadata(&self) -> crate::state::hash::Metadata<'_> {
        crate::state::hash::Metadata {
            module_sha256: &self.module_sha256,
            stable_mode: self.config.stable_mode,
            heap_type: self.heap_type,
            system: self.system(),
            clock: &self.clock,
        }
    }

    /// The state hash computed from scratch (for checking the incremental one).
    pub fn state_hash_from_scratch(&self) -> crate::state::hash::Hash {
        let (heap, stable) = (self.heap(), self.stable());
        let memory = crate::state::hash::StateHash::from_scratch(heap, stable).root(
            heap.len(),
            stable.len(),
            &self.globals(),
            &self.system().certified_data,
        );
        crate::state::hash::state_root(&memory, &self.metadata())
    }

    /// Stable memory bytes.
    pub fn stable(&self) -> &[u8] {
        stable_of(&*self.instance)
    }

    /// Values of the module's mutable globals, by global index.
    pub fn globals(&self) -> Vec<(u32, GlobalValue)> {
        self.instance.globals()
    }

    /// The instruction limit of a message: the IC's per kind (a composite query's callbacks
    /// count as queries).
    fn limit(&self, ctx: &MessageContext) -> u64 {
        let l = &self.config.limits;
        if ctx.composite {
            return l.query;
        }
        match ctx.entry {
            EntryPoint::Query | EntryPoint::CompositeQuery => l.query,
            // The replica's limit for message acceptance (`canister_inspect_message`).
            EntryPoint::InspectMessage => l.query.min(INSPECT_MESSAGE_LIMIT),
            EntryPoint::Update
            | EntryPoint::ReplicatedQuery
            | EntryPoint::ReplyCallback
            | EntryPoint::RejectCallback
            | EntryPoint::Cleanup
            | EntryPoint::Heartbeat
            | EntryPoint::GlobalTimer => l.update,
            EntryPoint::Init
            | EntryPoint::PreUpgrade
            | EntryPoint::PostUpgrade
            | EntryPoint::Start => l.install,
        }
    }

    fn next_context(
        &self,
        entry: EntryPoint,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> MessageContext {
        MessageContext {
            method: method.to_string(),
            arg: arg.to_vec(),
            caller: input
                .caller
                .map_or_else(|| ANONYMOUS.to_vec(), |p| p.as_slice().to_vec()),
            ..MessageContext::new(entry, self.clock.next_time(input.time))
        }
    }

    /// Runs export `export` (which must exist) with `ctx`; returns the raw result without
    /// committing or rolling back.
    fn run(&mut self, export: &str, ctx: MessageContext) -> Outcome {
        self.run_target(Target::Export(export), ctx).outcome
    }

    /// Runs `target` with `ctx`; returns the raw result without committing or rolling back.
    /// A message that neither replies nor rejects gets the "did not reply" reject only in an
    /// update or query entry point (a callback need not answer; the subnet decides when a call
    /// context without an answer is rejected).
    fn run_target(&mut self, target: Target<'_>, ctx: MessageContext) -> Run {
        let limit = self.limit(&ctx).min(i64::MAX as u64) as i64;
        let entry = ctx.entry;
        self.instance.ic0_mut().begin(ctx);
        self.instance.set_budget(limit);
        let call = match target {
            Target::Export(export) => engine::call(self.config.engine, &mut *self.instance, export),
            Target::Callback(cb) => {
                engine::call_callback(self.config.engine, &mut *self.instance, cb.fun, cb.env)
            }
        };
        self.engine_failed = matches!(call, Err(Trap::Engine(_)));
        let left = self.instance.counter();
        // The stable pages the message wrote cost the replica's dirty-page overhead each (the
        // replica's stable write charges them as it runs; canister-vm adds them here and in
        // `performance_counter`).
        let map = |memory, map| {
            let memory = self.instance.memory(memory).map_or(0, <[u8]>::len);
            self.instance.memory(map).map(|m| covered(memory, m))
        };
        let instructions = left.map_or(0, |left| {
            let stable_map = map(Mem::Stable, Mem::StableMap);
            self.instance.ic0().executed(limit, left, stable_map)
        });
        // The replica charges the heap pages the message dirtied after the code returned: the
        // charge never fails the message.
        let heap_charge = left.map_or(0, |_| {
            let heap_map = map(Mem::Heap, Mem::HeapMap);
            self.instance.ic0().dirty_heap_charge(heap_map)
        });
        // Metering checks at function entries and loop headers only, so a message can end with
        // the counter just below zero (or over its limit by the dirty pages' charge): it
        // exceeded its limit all the same.
        let call = match (call, left) {
            (Ok(()), Some(left)) if left < 0 || instructions > limit as u64 => Err(Trap::Host(
                HostTrap::Injected(InjectedTrap::InstructionLimit),
            )),
            (call, _) => call,
        };
        // As the replica reports it: at most the limit.
        let instructions = instructions.saturating_add(heap_charge).min(limit as u64);
        let canister_id = self.system().canister_id.clone();
        let ic0 = self.instance.ic0_mut();
        let response = ic0.take_response();
        let calls = ic0.take_calls();
        let cycles_left = ic0.ctx.cycles_available;
        let debug_log = std::mem::take(&mut ic0.debug_log);
        let trapped = call.is_err();
        let responded = !trapped && response.is_some();
        let result = match call {
            Err(e) => Err(trap_reject(&canister_id, &e, limit as u64)),
            Ok(()) => match response {
                Some(Response::Reply(bytes)) => Ok(bytes),
                Some(Response::Reject(message)) => Err(Reject {
                    code: RejectCode::CanisterReject,
                    message,
                }),
                None if matches!(
                    entry,
                    EntryPoint::Update | EntryPoint::Query | EntryPoint::ReplicatedQuery
                ) =>
                {
                    Err(did_not_reply(&canister_id))
                }
                None => Ok(Vec::new()),
            },
        };
        Run {
            outcome: Outcome {
                result,
                instructions,
                debug_log,
                dirty: DirtyPages::default(),
                written: DirtyPages::default(),
            },
            trapped,
            responded,
            calls: if trapped { Vec::new() } else { calls },
            cycles_left,
        }
    }

    /// Whether the module exports `canister_heartbeat`.
    pub fn has_heartbeat(&self) -> bool {
        self.has_export("canister_heartbeat")
    }

    /// Whether the module exports `canister_global_timer`.
    pub fn has_global_timer(&self) -> bool {
        self.has_export("canister_global_timer")
    }

    fn has_export(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }

    /// Runs `canister_init` with `arg` (if exported). On a trap the canister is left as created.
    pub fn init(&mut self, arg: &[u8], input: &MessageInput) -> Result<Outcome, Error> {
        let time = self.clock.next_time(input.time);
        let outcome = self.lifecycle_message(EntryPoint::Init, "canister_init", arg, input)?;
        self.tick(time);
        Ok(outcome)
    }

    fn lifecycle_message(
        &mut self,
        entry: EntryPoint,
        export: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let ctx = self.next_context(entry, "", arg, input);
        if !self.has_export(export) {
            return Ok(Outcome {
                result: Ok(Vec::new()),
                instructions: 0,
                debug_log: Vec::new(),
                dirty: DirtyPages::default(),
                written: DirtyPages::default(),
            });
        }
        let mark = self.mark();
        let mut outcome = self.run(export, ctx);
        let ok = outcome.result.is_ok();
        self.finish(mark, ok, &mut outcome)?;
        Ok(outcome)
    }

    fn tick(&mut self, time: u64) {
        self.clock.messages += 1;
        self.clock.last_time = time;
    }

    /// Calls update method `method`. Without an update of that name, a query method of that
    /// name runs in replicated mode (its changes are discarded, as on the IC).
    ///
    /// A reply commits the message's changes; a trap, a reject or a missing reply undoes them.
    pub fn update(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let (entry, export) = if self.methods.updates.iter().any(|m| m == method) {
            (EntryPoint::Update, format!("canister_update {method}"))
        } else if self.methods.queries.iter().any(|m| m == method) {
            (
                EntryPoint::ReplicatedQuery,
                Methods::export_of_query(&self.exports, method),
            )
        } else {
            return Err(self.not_found(method, "update"));
        };
        let ctx = self.next_context(entry, method, arg, input);
        let time = ctx.time;
        let mark = self.mark();
        let mut outcome = self.run(&export, ctx);
        let commit = outcome.result.is_ok() && entry == EntryPoint::Update;
        if commit {
            self.instance.ic0_mut().system.canister_version += 1;
        }
        self.finish(mark, commit, &mut outcome)?;
        self.tick(time);
        Ok(outcome)
    }

    /// Calls query method `method`; its changes are always discarded.
    pub fn query(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        // A non-replicated query gets a data certificate, as on the IC.
        self.query_with(method, arg, input, true)
    }

    /// [`query`](Self::query) as a composite query calls it: without a data certificate (the
    /// replica gives one only to a query called by a user).
    pub(crate) fn query_uncertified(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        self.query_with(method, arg, input, false)
    }

    fn query_with(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
        certified: bool,
    ) -> Result<Outcome, Error> {
        self.require_method(method, true)?;
        let export = Methods::export_of_query(&self.exports, method);
        let mut input = input.clone();
        // Queries see the current time; they do not advance the clock.
        input.time = Some(input.time.unwrap_or(self.clock.last_time));
        let mut ctx = self.next_context(EntryPoint::Query, method, arg, &input);
        ctx.certified = certified;
        let mark = self.mark();
        let mut outcome = self.run(&export, ctx);
        self.finish(mark, false, &mut outcome)?;
        Ok(outcome)
    }

    /// Checks that `method` exists as a query method (`query`) or as an update or query method
    /// (replicated): the error names the methods there are.
    pub fn require_method(&self, method: &str, query: bool) -> Result<(), Error> {
        if query {
            if self.methods.queries.iter().any(|m| m == method) {
                return Ok(());
            }
            let hint = if self.methods.updates.iter().any(|m| m == method) {
                format!(" (`{method}` is an update method: call it without --query)")
            } else {
                String::new()
            };
            return Err(Error::MethodNotFound {
                method: method.to_string(),
                kind: "query",
                hint,
            });
        }
        if self.methods.has(method) {
            Ok(())
        } else {
            Err(self.not_found(method, "update"))
        }
    }

    fn not_found(&self, method: &str, kind: &'static str) -> Error {
        let mut known: Vec<&str> = self
            .methods
            .updates
            .iter()
            .chain(&self.methods.queries)
            .map(|s| s.as_str())
            .collect();
        known.sort();
        Error::MethodNotFound {
            method: method.to_string(),
            kind,
            hint: format!(" (methods: {})", known.join(", ")),
        }
    }

    /// Upgrades to `wasm`: `canister_pre_upgrade` on the old module, stable memory kept, heap
    /// and globals reset, `canister_post_upgrade(arg)` on the new one. Any trap undoes all of it
    /// and leaves the old canister running.
    pub fn upgrade(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        self.upgrade_tracked(wasm, arg, input)
            .map(|(outcome, _)| outcome)
    }

    /// [`upgrade`](Self::upgrade), also returning the stable memory pages the upgrade changed
    /// (those its hooks dirtied; none if it failed). Stable memory is carried into the new
    /// instance page by page, only where it is not zero: O(non-zero pages), not O(memory size).
    pub(crate) fn upgrade_tracked(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<(Outcome, Vec<u64>), Error> {
        // Validate and instrument the new module before touching anything.
        instrument::instrument(&wasm, &self.config.instrument_config())?;
        // Both hooks belong to one message with one time.
        let time = self.clock.next_time(input.time);
        let input = MessageInput {
            caller: input.caller,
            time: Some(time),
        };
        let before = self.sparse_snapshot()?;
        let pre =
            self.lifecycle_message(EntryPoint::PreUpgrade, "canister_pre_upgrade", &[], &input)?;
        if pre.result.is_err() {
            self.tick(time);
            return Ok((pre, Vec::new()));
        }
        let mut system = self.system().clone();
        system.canister_version += 1;
        // Between messages the committed copies equal the live memories.
        let stable_nonzero = self.committed.hash.stable.nonzero_pages();
        let instantiated = crate::state::sparse_copy(&self.committed.stable, Some(&stable_nonzero))
            .map_err(|why| Error::State(StateError::Restore { why }))
            .and_then(|stable| {
                Self::instantiate(
                    wasm,
                    self.config.clone(),
                    system,
                    stable,
                    Some(&stable_nonzero),
                    self.clock.clone(),
                )
            });
        let new = match instantiated {
            Ok(Ok(new)) => new,
            // A host error after `canister_pre_upgrade` committed: undo the hook too.
            Err(e) => {
                self.restore(&before)?;
                self.reset_committed()?;
                return Err(e);
            }
            Ok(Err(reject)) => {
                self.restore(&before)?;
                self.reset_committed()?;
                self.tick(time);
                let outcome = Outcome {
                    result: Err(reject),
                    ..pre
                };
                return Ok((outcome, Vec::new()));
            }
        };
        let old = std::mem::replace(self, new);
        let post = match self.lifecycle_message(
            EntryPoint::PostUpgrade,
            "canister_post_upgrade",
            arg,
            &input,
        ) {
            Ok(post) => post,
            Err(e) => {
                *self = old;
                self.restore(&before)?;
                self.reset_committed()?;
                return Err(e);
            }
        };
        let mut changed = Vec::new();
        if post.result.is_err() {
            *self = old;
            self.restore(&before)?;
            self.reset_committed()?;
        } else {
            changed.extend_from_slice(&pre.dirty.stable);
            changed.extend_from_slice(&post.dirty.stable);
            changed.sort_unstable();
            changed.dedup();
        }
        self.tick(time);
        let mut debug_log = pre.debug_log;
        debug_log.extend(post.debug_log);
        let outcome = Outcome {
            result: post.result,
            instructions: pre.instructions + post.instructions,
            debug_log,
            written: post.written,
            dirty: post.dirty,
        };
        Ok((outcome, changed))
    }
}

#[cfg(test)]
mod engine_panic_tests {
    use super::*;

    /// The wrapped instance, except that calling `canister_update boom` runs `inc` and then
    /// panics, as an engine bug would half-way through a message.
    struct PanicsOnBoom(Box<dyn Instance>);

    impl Instance for PanicsOnBoom {
        fn export_names(&self) -> Vec<String> {
            self.0.export_names()
        }
        fn ic0(&self) -> &Ic0 {
            self.0.ic0()
        }
        fn ic0_mut(&mut self) -> &mut Ic0 {
            self.0.ic0_mut()
        }
        fn memory(&self, m: Mem) -> Option<&[u8]> {
            self.0.memory(m)
        }
        fn memory_mut(&mut self, m: Mem) -> Option<&mut [u8]> {
            self.0.memory_mut(m)
        }
        fn grow(&mut self, m: Mem, delta: u64) -> Result<(), String> {
            self.0.grow(m, delta)
        }
        fn pages(&self, m: Mem) -> u64 {
            self.0.pages(m)
        }
        fn globals(&self) -> Vec<(u32, GlobalValue)> {
            self.0.globals()
        }
        fn set_global(&mut self, index: u32, value: GlobalValue) -> Result<(), String> {
            self.0.set_global(index, value)
        }
        fn counter(&mut self) -> Option<i64> {
            self.0.counter()
        }
        fn set_budget(&mut self, budget: i64) {
            self.0.set_budget(budget)
        }
        fn set_stable_bytes(&mut self, bytes: i64) -> Result<(), String> {
            self.0.set_stable_bytes(bytes)
        }
        fn call(&mut self, name: &str) -> Result<(), Trap> {
            if name == "canister_update boom" {
                let _ = self.0.call("canister_update inc");
                panic!("injected engine bug");
            }
            self.0.call(name)
        }
        fn call_callback(&mut self, fun: u64, env: u64) -> Result<(), Trap> {
            self.0.call_callback(fun, env)
        }
        fn reinstantiate(&self, ic0: Ic0) -> Result<Result<Box<dyn Instance>, Trap>, Error> {
            self.0.reinstantiate(ic0)
        }
    }

    const COUNTER: &str = r#"(module
      (import "ic0" "msg_reply" (func $reply))
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (memory 1)
      (global $g (mut i64) (i64.const 0))
      (func (export "canister_update inc")
        (global.set $g (i64.add (global.get $g) (i64.const 1)))
        (i64.store (i32.const 0) (global.get $g))
        (call $append (i32.const 0) (i32.const 8))
        (call $reply))
      (func (export "canister_update boom")
        (i64.store (i32.const 0) (i64.const 99))
        (call $append (i32.const 0) (i32.const 8))
        (call $reply))
      (func (export "canister_query get")
        (call $append (i32.const 0) (i32.const 8))
        (call $reply)))"#;

    fn reply(outcome: Outcome) -> u64 {
        u64::from_le_bytes(outcome.result.unwrap()[..8].try_into().unwrap())
    }

    #[test]
    fn an_engine_panic_rejects_the_message_keeps_committed_state_and_rebuilds_the_instance() {
        let wasm = wat::parse_str(COUNTER).unwrap();
        let c = Canister::create(
            wasm,
            CanisterConfig::default(),
            candid::Principal::from_slice(&[4]),
        )
        .unwrap();
        let Canister {
            config,
            wasm,
            heap_type,
            exports,
            methods,
            instance,
            clock,
            committed,
            module_sha256,
            engine_failed,
        } = c;
        let mut c = Canister {
            config,
            wasm,
            heap_type,
            exports,
            methods,
            instance: Box::new(PanicsOnBoom(instance)),
            clock,
            committed,
            module_sha256,
            engine_failed,
        };
        let input = MessageInput::default();
        assert_eq!(reply(c.update("inc", b"", &input).unwrap()), 1);
        let hash = c.memory_hash();
        let (heap, globals) = (c.heap().to_vec(), c.globals());

        let outcome = c.update("boom", b"", &input).unwrap();
        let reject = outcome.result.unwrap_err();
        assert_eq!(reject.code, RejectCode::CanisterError);
        assert!(
            reject.message.contains(
                "could not run: the wasmi engine failed while running `canister_update boom`: \
                 injected engine bug (a bug in the engine, not in the canister; the message's \
                 changes were undone)"
            ),
            "{}",
            reject.message
        );
        // The reject advanced the clock (part of the state hash); memories and globals are
        // the committed ones.
        assert_eq!(c.memory_hash(), hash, "committed memories untouched");
        assert_eq!(
            c.state_hash_from_scratch(),
            c.state_hash(),
            "live state equals committed state"
        );
        assert_eq!((c.heap().to_vec(), c.globals()), (heap, globals));
        assert_eq!(reply(c.query("get", b"", &input).unwrap()), 1);

        // The instance that panicked was replaced by a fresh one of the same module, with the
        // committed state put back.
        assert_eq!(reply(c.update("inc", b"", &input).unwrap()), 2);
        assert_eq!(reply(c.update("boom", b"", &input).unwrap()), 99);
        assert_eq!(reply(c.query("get", b"", &input).unwrap()), 99);
    }
}
