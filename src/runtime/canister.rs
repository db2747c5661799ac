//! The canister lifecycle: install, update, query, upgrade, with transactional messages.
//!
//! A [`Canister`] owns an instance of its instrumented module on the configured [`Engine`]
//! (wasmi, or wasmtime with the `wasmtime` feature). Every message runs against a snapshot:
//! success commits, a trap (or a reject, or an update without reply) restores heap, stable
//! memory, globals and system state exactly. Queries always roll back.
//!
//! This file is written once for every engine: it sees the instance only through
//! `engine::Instance` (memories, globals, calls), so transactions, rollback and
//! the state hash cannot differ between engines.

use super::engine::{self, Engine, Instance, Mem, Trap};
use super::ic0::HeapType;
use super::ic0::api::{
    Callback, EntryPoint, HostTrap, Ic0, MessageContext, OutgoingCall, Response, WASM_PAGE_SIZE,
};
use crate::error::{Error, StateError};
use crate::instrument::{self, InjectedTrap};
use crate::state::{
    ANONYMOUS, CanisterState, Clock, GlobalValue, NonZeroPages, StableMode, SystemState,
};
use std::collections::BTreeMap;

/// IC reject codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum RejectCode {
    /// Fatal system error.
    SysFatal = 1,
    /// Transient system error.
    SysTransient = 2,
    /// The destination is invalid.
    DestinationInvalid = 3,
    /// The canister called `ic0.msg_reject`.
    CanisterReject = 4,
    /// The canister trapped or did not reply.
    CanisterError = 5,
    /// Unknown.
    SysUnknown = 6,
}

/// A rejected message: code and message, as a caller on the IC would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The IC reject code.
    pub code: RejectCode,
    /// The reject message (names the trap reason for a trap).
    pub message: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reject code {} ({:?}): {}",
            self.code as u8, self.code, self.message
        )
    }
}

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Reply bytes, or the reject.
    pub result: Result<Vec<u8>, Reject>,
    /// Instructions the message executed (0 when the module is not metered).
    pub instructions: u64,
    /// Lines the canister printed with `ic0.debug_print`.
    pub debug_log: Vec<String>,
    /// The 4 KiB pages the message wrote (by the write barrier; empty for a message that did
    /// not commit, whose pages were restored).
    pub dirty: DirtyPages,
}

/// 4 KiB pages written by a message, sorted, as reported by the write barrier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtyPages {
    /// Heap pages.
    pub heap: Vec<u64>,
    /// Stable memory pages.
    pub stable: Vec<u64>,
}

/// Caller and time of a message; `None` picks the deterministic default (the anonymous
/// principal; the previous message's time plus one second).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageInput {
    /// Caller principal bytes.
    pub caller: Option<Vec<u8>>,
    /// `ic0.time` in nanoseconds.
    pub time: Option<u64>,
}

/// Instruction limits per message kind (IC defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionLimits {
    /// Per update (and replicated query).
    pub update: u64,
    /// Per query.
    pub query: u64,
    /// Per install or upgrade (pre_upgrade, start and post_upgrade together count separately).
    pub install: u64,
}

impl Default for InstructionLimits {
    fn default() -> Self {
        InstructionLimits {
            update: 40_000_000_000,
            query: 5_000_000_000,
            install: 300_000_000_000,
        }
    }
}

/// How a canister is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanisterConfig {
    stable_mode: StableMode,
    stable_limit_pages: u64,
    limits: InstructionLimits,
    metering: bool,
    engine: Engine,
    /// Set when the canister runs on a [`Subnet`](super::subnet::Subnet): it may then make
    /// inter-canister calls, and sees the subnet's id and root key.
    subnet: Option<SubnetInfo>,
}

/// What a canister on a subnet knows about the subnet.
#[derive(Debug, Clone)]
pub(crate) struct SubnetInfo {
    /// The subnet's principal (`ic0.subnet_self_*`).
    pub subnet_id: Vec<u8>,
    /// The root key that signs certificates (`ic0.root_key_*`, `ic0.data_certificate_*`).
    pub root_key: std::sync::Arc<crate::certification::RootKey>,
}

impl PartialEq for SubnetInfo {
    fn eq(&self, other: &Self) -> bool {
        self.subnet_id == other.subnet_id
            && self.root_key.public_key() == other.root_key.public_key()
    }
}
impl Eq for SubnetInfo {}

impl SubnetInfo {
    /// The subnet of a root key: its id is the self-authenticating principal of the key's DER
    /// encoding, as for the IC's subnets.
    pub fn of_key(root_key: std::sync::Arc<crate::certification::RootKey>) -> Self {
        let subnet_id = candid::Principal::self_authenticating(root_key.public_key_der())
            .as_slice()
            .to_vec();
        SubnetInfo {
            subnet_id,
            root_key,
        }
    }

    /// The subnet of a canister that runs alone: the default seed's key
    /// ([`DEFAULT_SEED`](crate::certification::DEFAULT_SEED)).
    fn standalone() -> Self {
        static DEFAULT: std::sync::OnceLock<SubnetInfo> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                SubnetInfo::of_key(std::sync::Arc::new(
                    crate::certification::RootKey::from_seed(crate::certification::DEFAULT_SEED),
                ))
            })
            .clone()
    }
}

impl Default for CanisterConfig {
    fn default() -> Self {
        CanisterConfig {
            stable_mode: StableMode::default(),
            stable_limit_pages: 400 * 1024 * 1024 * 1024 / WASM_PAGE_SIZE,
            limits: InstructionLimits::default(),
            metering: true,
            engine: Engine::default(),
            subnet: None,
        }
    }
}

impl CanisterConfig {
    /// How stable memory is reached (default: native).
    pub fn stable_mode(mut self, mode: StableMode) -> Self {
        self.stable_mode = mode;
        self
    }
    /// Largest stable memory in 64 KiB pages (default: 400 GiB).
    pub fn stable_limit_pages(mut self, pages: u64) -> Self {
        self.stable_limit_pages = pages;
        self
    }
    /// Instruction limits per message kind.
    pub fn instruction_limits(mut self, limits: InstructionLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Whether instruction counting is instrumented (default: on).
    pub fn metering(mut self, on: bool) -> Self {
        self.metering = on;
        self
    }
    /// The engine that runs the canister (default: wasmi). Choosing one this build does not
    /// have ([`Engine::is_available`]) makes creating the canister fail with
    /// [`Error::EngineUnavailable`].
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }
    /// The configured stable mode.
    pub fn get_stable_mode(&self) -> StableMode {
        self.stable_mode
    }
    /// The configured engine.
    pub fn get_engine(&self) -> Engine {
        self.engine
    }

    /// The configuration of a canister on a subnet.
    pub(crate) fn on_subnet(mut self, subnet: SubnetInfo) -> Self {
        self.subnet = Some(subnet);
        self
    }

    fn instrument_config(&self) -> instrument::Config {
        instrument::Config::default()
            .stable(self.stable_mode)
            .metering(self.metering)
            .stable_limit_pages(self.stable_limit_pages)
    }
}

/// The remaining settings, as the message log records them.
impl CanisterConfig {
    /// The configured instruction limits.
    pub fn get_instruction_limits(&self) -> InstructionLimits {
        self.limits
    }
    /// The configured stable memory limit in 64 KiB pages.
    pub fn get_stable_limit_pages(&self) -> u64 {
        self.stable_limit_pages
    }
    /// Whether instruction counting is instrumented.
    pub fn get_metering(&self) -> bool {
        self.metering
    }
}

/// What a module exports, as far as the lifecycle cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Methods {
    /// `canister_update <name>` methods.
    pub updates: Vec<String>,
    /// `canister_query <name>` and `canister_composite_query <name>` methods.
    pub queries: Vec<String>,
    /// Lifecycle hooks present (`canister_init`, `canister_pre_upgrade`, ...).
    pub hooks: Vec<String>,
}

impl Methods {
    /// Whether `method` is an update or a query method.
    pub fn has(&self, method: &str) -> bool {
        self.updates
            .iter()
            .chain(&self.queries)
            .any(|m| m == method)
    }

    fn of(exports: &[String]) -> Self {
        let mut m = Methods::default();
        for name in exports {
            let name = name.as_str();
            if let Some(u) = name.strip_prefix("canister_update ") {
                m.updates.push(u.to_string());
            } else if let Some(q) = name
                .strip_prefix("canister_query ")
                .or_else(|| name.strip_prefix("canister_composite_query "))
            {
                m.queries.push(q.to_string());
            } else if matches!(
                name,
                "canister_init"
                    | "canister_pre_upgrade"
                    | "canister_post_upgrade"
                    | "canister_inspect_message"
                    | "canister_heartbeat"
                    | "canister_global_timer"
            ) {
                m.hooks.push(name.to_string());
            }
        }
        m.updates.sort();
        m.queries.sort();
        m
    }

    fn export_of_query(exports: &[String], method: &str) -> String {
        let composite = format!("canister_composite_query {method}");
        if exports.contains(&composite) {
            composite
        } else {
            format!("canister_query {method}")
        }
    }
}

/// What a message rollback needs besides the committed memory copies.
struct Mark {
    globals: Vec<(u32, GlobalValue)>,
    system: SystemState,
    heap_len: usize,
    stable_len: usize,
}

/// The committed memories: copies of heap and stable memory as of the last committed message,
/// kept page-exact so commit and rollback copy only the pages a message dirtied, and the state
/// hash, updated from the same dirty pages.
#[derive(Debug, Default)]
struct Committed {
    heap: Vec<u8>,
    stable: Vec<u8>,
    hash: crate::state::hash::StateHash,
}

const PAGE: usize = crate::state::hash::PAGE_SIZE;

/// Copies the 4 KiB pages `pages` from `from` to `to` (both of the same length).
fn copy_pages(to: &mut [u8], from: &[u8], pages: &[u64]) {
    for &p in pages {
        let start = p as usize * PAGE;
        let end = (start + PAGE).min(from.len());
        if start < end {
            to[start..end].copy_from_slice(&from[start..end]);
        }
    }
}

/// Reads and clears a byte map: the indices of the marked pages below `pages`.
fn drain_map(map: &mut [u8], pages: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let n = (pages + 1).min(map.len()); // marks may land one page past the end
    for (chunk_index, chunk) in map[..n].chunks_mut(64).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        for (i, b) in chunk.iter_mut().enumerate() {
            if *b != 0 {
                *b = 0;
                let page = chunk_index * 64 + i;
                if page < pages {
                    out.push(page as u64);
                }
            }
        }
    }
    out
}

/// Everything a rollback restores.
struct Snapshot {
    heap: Vec<u8>,
    stable: Vec<u8>,
    globals: Vec<(u32, GlobalValue)>,
    system: SystemState,
    /// The only non-zero pages of `heap` and `stable`, when known: restoring then writes only
    /// those past the memories' current sizes.
    nonzero: Option<NonZeroPages>,
}

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
fn trap_reject(canister_id: &[u8], trap: &Trap) -> Reject {
    let id = candid::Principal::from_slice(canister_id).to_text();
    let message = match trap {
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

/// What a message runs: an export, or a callback of table 0.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// An exported function.
    Export(&'a str),
    /// A callback from table 0.
    Callback(Callback),
}

/// The raw result of running a message.
pub(crate) struct Run {
    pub outcome: Outcome,
    pub trapped: bool,
    /// The message replied or rejected (explicitly).
    pub responded: bool,
    pub calls: Vec<OutgoingCall>,
    pub cycles_left: u128,
}

/// A composite query's hold on one canister ([`Canister::begin_session`]): the canister's
/// messages of the evaluation see each other's changes, which all go when it ends. Holds what
/// the committed pages were before the evaluation first changed them (O(pages changed)).
pub(crate) struct Session {
    mark: Mark,
    heap: BTreeMap<u64, Option<Vec<u8>>>,
    stable: BTreeMap<u64, Option<Vec<u8>>>,
}

/// The bytes of 4 KiB page `p` of `memory`, if the memory reaches it.
fn page_copy(memory: &[u8], p: u64) -> Option<Vec<u8>> {
    let start = p as usize * PAGE;
    (start < memory.len()).then(|| memory[start..(start + PAGE).min(memory.len())].to_vec())
}

/// The reject of an update that returned without replying (and, on a subnet, whose call
/// context has no outstanding calls left).
pub(crate) fn did_not_reply(canister_id: &[u8]) -> Reject {
    Reject {
        code: RejectCode::CanisterError,
        message: format!(
            "Canister {} did not reply to the call",
            candid::Principal::from_slice(canister_id).to_text()
        ),
    }
}

/// A message a subnet delivers to a canister.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// Request or response.
    pub kind: DeliveryKind,
    /// `msg_caller`: the caller of the call context the message belongs to.
    pub caller: Vec<u8>,
    /// Cycles still available in that call context.
    pub cycles_available: u128,
    /// `msg_deadline`.
    pub deadline: u64,
    /// The call context was already answered.
    pub replied: bool,
}

/// See [`Delivery`].
#[derive(Debug, Clone)]
pub(crate) enum DeliveryKind {
    /// A call of `method`.
    Request { method: String, arg: Vec<u8> },
    /// The response to one of the canister's calls.
    Response {
        callbacks: Callbacks,
        result: Result<Vec<u8>, Reject>,
        refund: u128,
    },
    /// A system task: `canister_heartbeat` or `canister_global_timer` (the entry point says
    /// which). The global timer is deactivated before the task runs, and stays so even if the
    /// task traps, as on the IC.
    Task(EntryPoint),
}

/// The callbacks of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Callbacks {
    pub reply: Callback,
    pub reject: Callback,
    pub cleanup: Option<Callback>,
}

/// What executing a [`Delivery`] did.
#[derive(Debug, Clone)]
pub(crate) struct Executed {
    /// The message's outcome; `result` is the trap's reject if it trapped.
    pub outcome: Outcome,
    /// The message trapped (its changes were undone).
    pub trapped: bool,
    /// The message answered its call context (with `outcome.result`).
    pub responded: bool,
    /// Calls the message performed (none if it trapped).
    pub calls: Vec<OutgoingCall>,
    /// Cycles of the call context still available after the message.
    pub cycles_left: u128,
    /// The cleanup callback that ran after the callback trapped.
    pub cleanup: Option<Outcome>,
}

impl Executed {
    fn from_run(run: Run, cleanup: Option<Outcome>) -> Self {
        Executed {
            outcome: run.outcome,
            trapped: run.trapped,
            responded: run.responded,
            calls: run.calls,
            cycles_left: run.cycles_left,
            cleanup,
        }
    }

    /// A request rejected before it ran (e.g. no such method).
    fn rejected(reject: Reject, cycles_left: u128) -> Self {
        Executed {
            outcome: Outcome {
                result: Err(reject),
                instructions: 0,
                debug_log: Vec::new(),
                dirty: DirtyPages::default(),
            },
            trapped: false,
            responded: true,
            calls: Vec::new(),
            cycles_left,
            cleanup: None,
        }
    }
}

impl Canister {
    /// Validates and instruments `wasm` and instantiates it as a new, empty canister (data
    /// segments applied, start function run, `canister_init` not yet called).
    ///
    /// Returns `Ok(Err(reject))` if the start function traps.
    pub fn create(
        wasm: Vec<u8>,
        config: CanisterConfig,
        controller: Vec<u8>,
    ) -> Result<Result<Canister, Reject>, Error> {
        let system = SystemState::new(controller);
        Self::instantiate(wasm, config, system, Vec::new(), None, Clock::default())
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
            Err(trap) => return Ok(Err(trap_reject(&canister_id, &trap))),
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
                let reject = trap_reject(&self.system().canister_id, &trap);
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

    /// Takes the committed copies (and the state hash) from the live memories, and clears the
    /// byte maps. O(memory): at instantiation, restore and upgrade only.
    fn reset_committed(&mut self) -> Result<(), Error> {
        self.reset_committed_with(None, None)
    }

    /// [`reset_committed`](Self::reset_committed) where the caller already holds a memory's
    /// bytes: `Some((bytes, nonzero))` (equal to the live memory, non-zero only at the pages
    /// `nonzero` lists) becomes that memory's committed copy and is hashed at those pages only,
    /// so the memory costs O(non-zero pages) instead of O(its size).
    fn reset_committed_with(
        &mut self,
        heap: Option<(Vec<u8>, &[u64])>,
        stable: Option<(Vec<u8>, &[u64])>,
    ) -> Result<(), Error> {
        use crate::state::hash::{MemoryTree, StateHash};
        self.take_dirty();
        let committed = |live: &[u8], known: Option<(Vec<u8>, &[u64])>| match known {
            Some((bytes, nonzero)) if bytes.len() == live.len() => {
                let tree = MemoryTree::from_nonzero(&bytes, nonzero);
                Ok((bytes, tree))
            }
            _ => {
                // A sparse copy: zero pages of the committed copy stay unallocated.
                let bytes = crate::state::sparse_copy(live, None)
                    .map_err(|why| Error::State(StateError::Restore { why }))?;
                let tree = MemoryTree::from_scratch(&bytes);
                Ok::<_, Error>((bytes, tree))
            }
        };
        let (heap, heap_tree) = committed(self.heap(), heap)?;
        let (stable, stable_tree) = committed(self.stable(), stable)?;
        self.committed = Committed {
            heap,
            stable,
            hash: StateHash {
                heap: heap_tree,
                stable: stable_tree,
            },
        };
        Ok(())
    }

    /// Reads and clears the dirty pages of heap and stable memory.
    fn take_dirty(&mut self) -> DirtyPages {
        let mut dirty = DirtyPages::default();
        let heap_pages = self
            .instance
            .memory(Mem::Heap)
            .map(|h| h.len().div_ceil(PAGE));
        if let Some(pages) = heap_pages
            && let Some(map) = self.instance.memory_mut(Mem::HeapMap)
        {
            dirty.heap = drain_map(map, pages);
            // Pages written by host functions, which the barrier does not see.
            let host = std::mem::take(&mut self.instance.ic0_mut().heap_dirty);
            if !host.is_empty() {
                dirty
                    .heap
                    .extend(host.into_iter().filter(|&p| p < pages as u64));
                dirty.heap.sort_unstable();
                dirty.heap.dedup();
            }
        }
        let stable_pages = self
            .instance
            .memory(Mem::Stable)
            .map(|s| s.len().div_ceil(PAGE));
        let native = match stable_pages {
            Some(pages) => match self.instance.memory_mut(Mem::StableMap) {
                Some(map) => {
                    dirty.stable = drain_map(map, pages);
                    true
                }
                None => false,
            },
            None => false,
        };
        if !native {
            // System-API mode: the host functions record the pages they write.
            let ic0 = self.instance.ic0_mut();
            let mut pages = std::mem::take(&mut ic0.stable_dirty);
            pages.sort_unstable();
            pages.dedup();
            let limit = ic0.stable.len().div_ceil(PAGE) as u64;
            pages.retain(|&p| p < limit);
            dirty.stable = pages;
        }
        dirty
    }

    fn mark(&self) -> Mark {
        Mark {
            globals: self.globals(),
            system: self.system().clone(),
            heap_len: self.heap().len(),
            stable_len: self.stable().len(),
        }
    }

    /// Makes the live memories the committed ones: copies the dirty pages (O(dirty)).
    fn commit(&mut self, dirty: &DirtyPages) {
        let heap = heap_of(&*self.instance);
        let stable = stable_of(&*self.instance);
        let c = &mut self.committed;
        // Memories only grow while a message commits; the new pages are zero unless dirty.
        let _ = crate::state::grow_zeroed(&mut c.heap, heap.len());
        let _ = crate::state::grow_zeroed(&mut c.stable, stable.len());
        c.heap.truncate(heap.len());
        c.stable.truncate(stable.len());
        copy_pages(&mut c.heap, heap, &dirty.heap);
        copy_pages(&mut c.stable, stable, &dirty.stable);
        c.hash
            .heap
            .update(heap, dirty.heap.iter().map(|&p| p as usize));
        c.hash
            .stable
            .update(stable, dirty.stable.iter().map(|&p| p as usize));
    }

    /// Puts the committed state back: the dirty pages (O(dirty)) when no memory grew, else a
    /// fresh instance.
    fn rollback(&mut self, mark: Mark, dirty: &DirtyPages) -> Result<(), Error> {
        // An instance whose engine panicked is not trusted: it is replaced by a fresh one.
        let engine_failed = std::mem::take(&mut self.engine_failed);
        let grew = self.heap().len() != mark.heap_len
            || (self.native_stable() && self.stable().len() != mark.stable_len);
        if grew || engine_failed {
            // Sparse copies of the committed memories, at the pages their hash trees know to be
            // non-zero (a dense clone would make all of them resident).
            let mut snap = self.sparse_snapshot()?;
            snap.globals = mark.globals;
            snap.system = mark.system;
            let committed = std::mem::take(&mut self.committed);
            if engine_failed {
                *self = self.reinstantiate(snap.system.clone())?;
            }
            self.restore(&snap)?;
            self.take_dirty();
            self.committed = committed;
            return Ok(());
        }
        if let Some(heap) = self.instance.memory_mut(Mem::Heap) {
            copy_pages(heap, &self.committed.heap, &dirty.heap);
        }
        if self.native_stable() {
            if let Some(stable) = self.instance.memory_mut(Mem::Stable) {
                copy_pages(stable, &self.committed.stable, &dirty.stable);
            }
        } else {
            let stable = &mut self.instance.ic0_mut().stable;
            stable.truncate(mark.stable_len);
            copy_pages(stable, &self.committed.stable, &dirty.stable);
        }
        self.restore_globals(&mark.globals)?;
        self.instance.ic0_mut().system = mark.system;
        Ok(())
    }

    /// Ends a message: commits it or rolls it back, and records its dirty pages.
    fn finish(&mut self, mark: Mark, commit: bool, outcome: &mut Outcome) -> Result<(), Error> {
        let dirty = self.take_dirty();
        if commit {
            self.commit(&dirty);
            outcome.dirty = dirty;
        } else {
            self.rollback(mark, &dirty)?;
        }
        Ok(())
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

    /// Whether stable memory is the injected Wasm memory (native mode) rather than the host
    /// buffer of the system-API mode.
    fn native_stable(&self) -> bool {
        self.instance.memory(Mem::Stable).is_some()
    }

    /// The committed state (equal to the live one between messages), copying only the pages
    /// the state hash's trees know to be non-zero.
    fn sparse_snapshot(&self) -> Result<Snapshot, Error> {
        let nonzero = NonZeroPages {
            heap: self.committed.hash.heap.nonzero_pages(),
            stable: self.committed.hash.stable.nonzero_pages(),
        };
        let copy = |bytes: &[u8], pages: &[u64]| {
            crate::state::sparse_copy(bytes, Some(pages))
                .map_err(|why| Error::State(StateError::Restore { why }))
        };
        Ok(Snapshot {
            heap: copy(&self.committed.heap, &nonzero.heap)?,
            stable: copy(&self.committed.stable, &nonzero.stable)?,
            globals: self.globals(),
            system: self.system().clone(),
            nonzero: Some(nonzero),
        })
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            heap: self.heap().to_vec(),
            stable: self.stable().to_vec(),
            globals: self.globals(),
            system: self.system().clone(),
            nonzero: None,
        }
    }

    /// Grows `memory` to `bytes.len()` bytes (never shrinks) and writes `bytes` at 0; grows the
    /// write barrier's byte map `map` with it. With `nonzero` (the only non-zero pages of
    /// `bytes`), the part the growth added (zero) is written only at those pages.
    fn fill_memory(
        &mut self,
        memory: Mem,
        map: Mem,
        bytes: &[u8],
        nonzero: Option<&[u64]>,
    ) -> Result<(), Error> {
        let restore_err = |why: String| Error::State(StateError::Restore { why });
        let current = self.instance.memory(memory).map_or(0, |m| m.len()) as u64;
        let want = bytes.len() as u64;
        if want < current {
            return Err(restore_err(format!(
                "saved memory has {want} bytes, fewer than the module's initial {current}"
            )));
        }
        if want > current {
            self.instance
                .grow(memory, (want - current) / WASM_PAGE_SIZE)
                .map_err(|e| restore_err(format!("growing memory to {want} bytes: {e}")))?;
            // The barrier's byte map must cover the grown memory: one 64 KiB map page per 4096
            // memory pages, plus one.
            if self.instance.memory(map).is_some() {
                let need = want / WASM_PAGE_SIZE / 4096 + 1;
                let have = self.instance.pages(map);
                if need > have {
                    self.instance
                        .grow(map, need - have)
                        .map_err(|e| restore_err(format!("growing the dirty-page map: {e}")))?;
                }
            }
        }
        if let Some(data) = self.instance.memory_mut(memory) {
            // Page by page, writing only pages that differ: restoring a mostly-zero memory into
            // a fresh (zero) one leaves its zero pages untouched, and not resident.
            let compared = match nonzero {
                Some(_) => current as usize,
                None => bytes.len(),
            };
            for (dst, src) in data[..compared]
                .chunks_mut(PAGE)
                .zip(bytes[..compared].chunks(PAGE))
            {
                if dst != src {
                    dst.copy_from_slice(src);
                }
            }
            if let Some(pages) = nonzero {
                // Memory added by the growth reads zero: only the non-zero pages past the
                // initial size need writing.
                let first = pages.partition_point(|&p| (p as usize) * PAGE < compared);
                crate::state::copy_listed_pages(&mut data[..bytes.len()], bytes, &pages[first..]);
            }
        }
        Ok(())
    }

    fn set_stable(&mut self, stable: &[u8], nonzero: Option<&[u64]>) -> Result<(), Error> {
        if self.native_stable() {
            // Native mode: a Wasm memory cannot shrink; `restore` re-instantiates instead.
            if stable.len() < self.stable().len() {
                return Err(Error::State(StateError::Restore {
                    why: "stable memory cannot shrink in place".into(),
                }));
            }
            self.fill_memory(Mem::Stable, Mem::StableMap, stable, nonzero)?;
            self.instance
                .set_stable_bytes(stable.len() as i64)
                .map_err(|why| Error::State(StateError::Restore { why }))?;
        } else {
            // A sparse copy: a mostly-zero stable memory stays mostly unallocated.
            self.instance.ic0_mut().stable = crate::state::sparse_copy(stable, nonzero)
                .map_err(|why| Error::State(StateError::Restore { why }))?;
        }
        Ok(())
    }

    /// Puts the canister back to `snap`, in place when memory sizes allow, else by
    /// re-instantiating the module.
    fn restore(&mut self, snap: &Snapshot) -> Result<(), Error> {
        let heap_len = self.heap().len();
        let stable_len = self.stable().len();
        let in_place = heap_len <= snap.heap.len()
            && (!self.native_stable() || stable_len <= snap.stable.len());
        if !in_place {
            *self = self.reinstantiate(snap.system.clone())?;
        }
        if self.instance.memory(Mem::Heap).is_some() {
            let nonzero = snap.nonzero.as_ref().map(|n| &n.heap[..]);
            self.fill_memory(Mem::Heap, Mem::HeapMap, &snap.heap, nonzero)?;
        }
        self.set_stable(&snap.stable, snap.nonzero.as_ref().map(|n| &n.stable[..]))?;
        self.restore_globals(&snap.globals)?;
        self.instance.ic0_mut().system = snap.system.clone();
        Ok(())
    }

    fn restore_globals(&mut self, globals: &[(u32, GlobalValue)]) -> Result<(), Error> {
        for (index, value) in globals {
            self.instance
                .set_global(*index, *value)
                .map_err(|why| Error::State(StateError::Restore { why }))?;
        }
        Ok(())
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
            caller: input.caller.clone().unwrap_or_else(|| ANONYMOUS.to_vec()),
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
        let instructions = left.map_or(0, |left| limit.saturating_sub(left).max(0) as u64);
        // Metering checks at function entries and loop headers only, so a message can end with
        // the counter just below zero: it exceeded its limit all the same.
        let call = match (call, left) {
            (Ok(()), Some(left)) if left < 0 => Err(Trap::Host(HostTrap::Injected(
                InjectedTrap::InstructionLimit,
            ))),
            (call, _) => call,
        };
        let canister_id = self.system().canister_id.clone();
        let ic0 = self.instance.ic0_mut();
        let response = ic0.take_response();
        let calls = ic0.take_calls();
        let cycles_left = ic0.ctx.cycles_available;
        let debug_log = std::mem::take(&mut ic0.debug_log);
        let trapped = call.is_err();
        let responded = !trapped && response.is_some();
        let result = match call {
            Err(e) => Err(trap_reject(&canister_id, &e)),
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
            },
            trapped,
            responded,
            calls: if trapped { Vec::new() } else { calls },
            cycles_left,
        }
    }

    /// Executes one message of a subnet (a request, or a response for one of this canister's
    /// calls) as its own transaction: everything but a trap commits, as on the IC (a reject or
    /// a missing reply does not undo the message's changes). After a callback traps and is
    /// rolled back, its cleanup callback (if any) runs as a transaction of its own.
    pub(crate) fn execute(&mut self, delivery: Delivery, time: u64) -> Result<Executed, Error> {
        let Delivery {
            kind,
            caller,
            cycles_available,
            deadline,
            replied,
        } = delivery;
        let base = |entry| MessageContext {
            caller: caller.clone(),
            cycles_available,
            deadline,
            replied,
            ..MessageContext::new(entry, time)
        };
        let executed = match kind {
            DeliveryKind::Request { method, arg } => {
                if self.is_composite(&method) && !self.methods.updates.contains(&method) {
                    let id = candid::Principal::from_slice(&self.system().canister_id).to_text();
                    self.tick(time);
                    return Ok(Executed::rejected(
                        Reject {
                            code: RejectCode::CanisterError,
                            message: format!(
                                "Canister {id}: composite query method '{method}' cannot be \
                                 called in replicated mode"
                            ),
                        },
                        cycles_available,
                    ));
                }
                let (entry, export) = if self.methods.updates.contains(&method) {
                    (EntryPoint::Update, format!("canister_update {method}"))
                } else if self.methods.queries.contains(&method) {
                    (
                        EntryPoint::ReplicatedQuery,
                        Methods::export_of_query(&self.exports, &method),
                    )
                } else {
                    let id = candid::Principal::from_slice(&self.system().canister_id).to_text();
                    self.tick(time);
                    return Ok(Executed::rejected(
                        Reject {
                            code: RejectCode::CanisterError,
                            message: format!("Canister {id} has no update method '{method}'"),
                        },
                        cycles_available,
                    ));
                };
                let ctx = MessageContext {
                    method: method.clone(),
                    arg,
                    ..base(entry)
                };
                let mark = self.mark();
                let mut run = self.run_target(Target::Export(&export), ctx);
                // A replicated query's changes are discarded; it makes no calls.
                let commit = !run.trapped && entry == EntryPoint::Update;
                if commit {
                    self.instance.ic0_mut().system.canister_version += 1;
                }
                if entry == EntryPoint::ReplicatedQuery {
                    run.calls.clear();
                }
                self.finish(mark, commit, &mut run.outcome)?;
                // A message that did not commit (a trap, or any replicated query) accepted
                // nothing: its acceptances were rolled back with the balance.
                if !commit {
                    run.cycles_left = cycles_available;
                }
                Executed::from_run(run, None)
            }
            DeliveryKind::Task(entry) => {
                let export = match entry {
                    EntryPoint::Heartbeat => "canister_heartbeat",
                    _ => "canister_global_timer",
                };
                if entry == EntryPoint::GlobalTimer {
                    self.instance.ic0_mut().system.global_timer = 0;
                }
                if !self.has_export(export) {
                    return Err(Error::Internal(format!(
                        "a system task for `{export}`, which the module does not export"
                    )));
                }
                let mark = self.mark();
                let mut run = self.run_target(Target::Export(export), base(entry));
                let commit = !run.trapped;
                if commit {
                    self.instance.ic0_mut().system.canister_version += 1;
                }
                self.finish(mark, commit, &mut run.outcome)?;
                Executed::from_run(run, None)
            }
            DeliveryKind::Response {
                callbacks,
                result,
                refund,
            } => {
                // Refunded cycles reach the balance whatever the callback does.
                self.instance.ic0_mut().system.cycle_balance =
                    self.system().cycle_balance.saturating_add(refund);
                let (entry, callback, arg, reject) = match result {
                    Ok(reply) => (EntryPoint::ReplyCallback, callbacks.reply, reply, None),
                    Err(r) => (
                        EntryPoint::RejectCallback,
                        callbacks.reject,
                        Vec::new(),
                        Some((r.code as u32, r.message)),
                    ),
                };
                let ctx = MessageContext {
                    arg,
                    cycles_refunded: refund,
                    reject: reject.clone(),
                    ..base(entry)
                };
                let mark = self.mark();
                let mut run = self.run_target(Target::Callback(callback), ctx);
                let commit = !run.trapped;
                if commit {
                    self.instance.ic0_mut().system.canister_version += 1;
                }
                self.finish(mark, commit, &mut run.outcome)?;
                let mut cleanup = None;
                if run.trapped {
                    run.cycles_left = cycles_available;
                    if let Some(cb) = callbacks.cleanup {
                        let ctx = MessageContext {
                            reject,
                            ..base(EntryPoint::Cleanup)
                        };
                        let mark = self.mark();
                        let mut c = self.run_target(Target::Callback(cb), ctx);
                        let commit = !c.trapped;
                        self.finish(mark, commit, &mut c.outcome)?;
                        cleanup = Some(c.outcome);
                    }
                }
                Executed::from_run(run, cleanup)
            }
        };
        self.tick(time);
        Ok(executed)
    }

    /// Starts a composite query's evaluation on this canister (see [`Session`]).
    pub(crate) fn begin_session(&self) -> Session {
        Session {
            mark: self.mark(),
            heap: BTreeMap::new(),
            stable: BTreeMap::new(),
        }
    }

    /// Runs one message of a composite query's evaluation: a trap undoes the message; otherwise
    /// its changes stay for the evaluation's later messages (until [`end_session`]).
    ///
    /// [`end_session`]: Self::end_session
    pub(crate) fn session_message(
        &mut self,
        session: &mut Session,
        target: Target<'_>,
        ctx: MessageContext,
    ) -> Result<Run, Error> {
        let mark = self.mark();
        let mut run = self.run_target(target, ctx);
        let dirty = self.take_dirty();
        if run.trapped {
            self.rollback(mark, &dirty)?;
        } else {
            for &p in &dirty.heap {
                let old = page_copy(&self.committed.heap, p);
                session.heap.entry(p).or_insert(old);
            }
            for &p in &dirty.stable {
                let old = page_copy(&self.committed.stable, p);
                session.stable.entry(p).or_insert(old);
            }
            self.commit(&dirty);
            run.outcome.dirty = dirty;
        }
        Ok(run)
    }

    /// Ends a composite query's evaluation: everything its messages changed is undone, in
    /// O(pages changed) (O(memory) if a memory grew).
    pub(crate) fn end_session(&mut self, session: Session) -> Result<(), Error> {
        let Session { mark, heap, stable } = session;
        let c = &mut self.committed;
        let grew = c.heap.len() != mark.heap_len || c.stable.len() != mark.stable_len;
        for (memory, pages) in [(&mut c.heap, &heap), (&mut c.stable, &stable)] {
            for (&p, old) in pages {
                if let Some(old) = old {
                    let start = p as usize * PAGE;
                    memory[start..start + old.len()].copy_from_slice(old);
                }
            }
        }
        c.heap.truncate(mark.heap_len);
        c.stable.truncate(mark.stable_len);
        if grew {
            // The instance's memories are larger than before: a fresh instance with the
            // committed bytes (dense copies), then committed copies and hashes from it.
            let snap = Snapshot {
                heap: c.heap.clone(),
                stable: c.stable.clone(),
                globals: mark.globals,
                system: mark.system,
                nonzero: None,
            };
            self.restore(&snap)?;
            self.take_dirty();
            return self.reset_committed();
        }
        let (heap, stable): (Vec<u64>, Vec<u64>) =
            (heap.into_keys().collect(), stable.into_keys().collect());
        c.hash
            .heap
            .update(&c.heap, heap.iter().map(|&p| p as usize));
        c.hash
            .stable
            .update(&c.stable, stable.iter().map(|&p| p as usize));
        self.rollback(mark, &DirtyPages { heap, stable })
    }

    /// Whether `method` is a composite query method.
    pub(crate) fn is_composite(&self, method: &str) -> bool {
        self.has_export(&format!("canister_composite_query {method}"))
    }

    /// Runs `canister_inspect_message` for an ingress update of `method` with `arg` from
    /// `caller` at `time`, as the IC does before it accepts the message: its changes are
    /// discarded; the message is accepted when the hook calls `ic0.accept_message` (or when the
    /// module does not export the hook), refused with a reject otherwise or if it traps.
    pub(crate) fn inspect(
        &mut self,
        method: &str,
        arg: &[u8],
        caller: &[u8],
        time: u64,
    ) -> Result<Result<(), Reject>, Error> {
        const HOOK: &str = "canister_inspect_message";
        if !self.has_export(HOOK) {
            return Ok(Ok(()));
        }
        let ctx = MessageContext {
            method: method.to_string(),
            arg: arg.to_vec(),
            caller: caller.to_vec(),
            ..MessageContext::new(EntryPoint::InspectMessage, time)
        };
        let mark = self.mark();
        let mut run = self.run_target(Target::Export(HOOK), ctx);
        let accepted = self.instance.ic0_mut().ctx.accepted;
        self.finish(mark, false, &mut run.outcome)?;
        let id = candid::Principal::from_slice(&self.system().canister_id).to_text();
        Ok(match run.outcome.result {
            Err(reject) => Err(reject),
            Ok(_) if accepted => Ok(()),
            Ok(_) => Err(Reject {
                code: RejectCode::CanisterReject,
                message: format!(
                    "Canister {id} rejected the message: its canister_inspect_message did not \
                     call ic0.accept_message (method `{method}`)"
                ),
            }),
        })
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
        if !self.methods.queries.iter().any(|m| m == method) {
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
        let export = Methods::export_of_query(&self.exports, method);
        let mut input = input.clone();
        // Queries see the current time; they do not advance the clock.
        input.time = Some(input.time.unwrap_or(self.clock.last_time));
        let mut ctx = self.next_context(EntryPoint::Query, method, arg, &input);
        // A non-replicated query gets a data certificate, as on the IC.
        ctx.certified = true;
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
            caller: input.caller.clone(),
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
        let c = Canister::create(wasm, CanisterConfig::default(), vec![4])
            .unwrap()
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
