//! The semantics of each `ic0` function, written once and independent of the engine.
//!
//! Every function takes the canister's heap as a byte slice plus its Wasm arguments (heap
//! addresses and sizes widened to `u64`) and returns its result or a [`HostTrap`]. An engine
//! backend only converts arguments and hands over the heap (see `runtime::wasmi_backend`), so a
//! second engine reuses this file unchanged.

use super::HeapType;
use crate::state::SystemState;

/// Size of a stable-memory (and Wasm) page: 64 KiB.
pub const WASM_PAGE_SIZE: u64 = 64 * 1024;
/// Largest stable memory the 32-bit stable API can address: 65 536 pages (4 GiB).
pub const MAX_32_BIT_STABLE_PAGES: u64 = 65_536;
/// Largest certified data blob (bytes).
pub const CERTIFIED_DATA_MAX: usize = 32;
/// Longest principal (bytes).
pub const PRINCIPAL_MAX: usize = 29;
/// Largest reply or reject payload of a replicated message (update, replicated query): 2 MiB
/// (the replica's `MAX_INTER_CANISTER_PAYLOAD_IN_BYTES`, `ApiType::max_reply_size` in
/// `rs/system_api`).
pub const MAX_REPLY_SIZE: u64 = 2 * 1024 * 1024;
/// Largest reply or reject payload of a non-replicated query: 3 MiB (the replica's
/// `MAX_NON_REPLICATED_QUERY_REPLY_SIZE`, `rs/system_api/src/lib.rs`).
pub const MAX_QUERY_REPLY_SIZE: u64 = 3 * 1024 * 1024;

/// The part of a dirty byte map `map` (one byte per 4 KiB page) that covers a memory of
/// `memory_len` bytes: the map may be longer than its memory.
pub fn covered(memory_len: usize, map: &[u8]) -> &[u8] {
    &map[..memory_len.div_ceil(4096).min(map.len())]
}

/// What the replica charges for each `ic0` function, in instructions, taken from the instruction
/// counter before the function runs: a fixed overhead ([`charge::fixed`], charged by the engine
/// glue for every function) plus a charge per byte for the functions that move bytes (charged by
/// the function, [`Ic0`]'s `charge_bytes`). From the replica's `linker.rs`
/// (`charge_for_cpu`/`charge_for_cpu_and_mem`) and `system_api_complexity.rs` (`overhead::*`);
/// one instruction per byte (`get_num_instructions_from_bytes`), 50 per byte of a payload that
/// leaves the canister (`BYTE_TRANSMISSION_COST_FACTOR`). DESIGN.md §5 has the table. Stable
/// memory reads and writes are charged by instrumentation (`20 + len`, `instrument::stable`), in
/// both stable modes, so both modes count the same.
pub mod charge {
    /// The overhead of most functions (`overhead::*` of the replica: 500).
    pub const OVERHEAD: u64 = 500;
    /// Instructions per byte of a reply, reject or call payload (`BYTE_TRANSMISSION_COST_FACTOR`):
    /// the payload is also transmitted out of the sandbox.
    pub const PER_PAYLOAD_BYTE: u64 = 50;
    /// Instructions per byte copied between the heap and the host.
    pub const PER_COPIED_BYTE: u64 = 1;
    /// Instructions per byte a log record allocates (twice: the record added and the oldest one
    /// evicted, the replica's `logging_charge_bytes`).
    pub const PER_LOG_ALLOCATED_BYTE: u64 = 2;
    /// The canister log's capacity in bytes, which bounds the per-byte logging charge (the
    /// replica's default log size).
    pub const LOG_CAPACITY: u64 = 4096;
    /// Instructions per newly dirtied 4 KiB page of stable memory in a message (the replica's
    /// `DEFAULT_DIRTY_PAGE_OVERHEAD`, on application subnets).
    pub const PER_DIRTY_STABLE_PAGE: u64 = 1000;
    /// Instructions per dirty 4 KiB heap page of a message, charged after it ran (the same
    /// `dirty_page_overhead`, subtracted by the replica's `WasmtimeInstance::run`).
    pub const PER_DIRTY_HEAP_PAGE: u64 = 1000;

    /// The fixed overhead of `ic0.<name>`, charged before it runs.
    pub fn fixed(name: &str) -> u64 {
        match name {
            "performance_counter" => 200,
            "debug_print" => 100,
            "call_new" => 1_500,
            "call_perform" => 5_000,
            "is_controller" => 1_000,
            "cost_http_request_v2" => 10_000,
            // Wasm-native stable memory: the size is read from the memory and the other
            // functions are charged by instrumentation (grow's 100 too); in system-API mode the
            // host functions count the same.
            "stable_size" | "stable64_size" | "stable_read" | "stable_write" | "stable64_read"
            | "stable64_write" | "stable_grow" | "stable64_grow" => 0,
            _ => OVERHEAD,
        }
    }

    /// What `ic0.debug_print` and `ic0.trap` of `len` bytes cost on top of their overhead: the
    /// bytes themselves (debug printing is on, as on PocketIC) and the replica's logging charge,
    /// `2 * allocated + 50 * transmitted` bytes of the canister log, each at most the log's
    /// capacity. canister-vm keeps no canister log, so it charges as if the log had room (the
    /// replica charges less once the log is full).
    pub fn log_bytes(len: u64) -> u64 {
        let logged = len.min(LOG_CAPACITY);
        len.saturating_add(PER_LOG_ALLOCATED_BYTE * logged)
            .saturating_add(PER_PAYLOAD_BYTE * logged)
    }

    /// What `ic0.stable_grow` and `ic0.stable64_grow` cost (the replica's
    /// `overhead_native::STABLE_GROW`, charged by its `try_grow_stable_memory`).
    pub const STABLE_GROW: u64 = crate::instrument::STABLE_GROW_COST as u64;
}

/// The entry point a message runs in; decides which `ic0` functions are available (the letters
/// of the interface specification's import table are given for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryPoint {
    /// `canister_init` (`I`).
    Init,
    /// `canister_update <name>` (`U`).
    Update,
    /// `canister_query <name>` called as a query (`NRQ`: non-replicated, always rolled back).
    Query,
    /// `canister_query <name>` called as an update (`RQ`: replicated, rolled back).
    ReplicatedQuery,
    /// `canister_pre_upgrade` (`G`, on the old module).
    PreUpgrade,
    /// `canister_post_upgrade` (`I`, on the new module).
    PostUpgrade,
    /// The module's start function, run at instantiation (`s`).
    Start,
    /// A reply callback of an inter-canister call (`Ry`).
    ReplyCallback,
    /// A reject callback of an inter-canister call (`Rt`).
    RejectCallback,
    /// A cleanup callback, after a reply or reject callback trapped (`C`).
    Cleanup,
    /// `canister_heartbeat` (`T`).
    Heartbeat,
    /// `canister_global_timer` (`T`).
    GlobalTimer,
    /// `canister_inspect_message` (`F`): an ingress update before it is accepted.
    InspectMessage,
    /// `canister_composite_query <name>` (`CQ`), called by a user or by another composite query.
    CompositeQuery,
}

impl EntryPoint {
    fn name(self) -> &'static str {
        match self {
            EntryPoint::Init => "canister_init",
            EntryPoint::Update => "canister_update",
            EntryPoint::Query => "canister_query",
            EntryPoint::ReplicatedQuery => "canister_query (replicated)",
            EntryPoint::PreUpgrade => "canister_pre_upgrade",
            EntryPoint::PostUpgrade => "canister_post_upgrade",
            EntryPoint::Start => "start function",
            EntryPoint::ReplyCallback => "a reply callback",
            EntryPoint::RejectCallback => "a reject callback",
            EntryPoint::Cleanup => "a cleanup callback",
            EntryPoint::Heartbeat => "canister_heartbeat",
            EntryPoint::GlobalTimer => "canister_global_timer",
            EntryPoint::InspectMessage => "canister_inspect_message",
            EntryPoint::CompositeQuery => "canister_composite_query",
        }
    }
    /// Whether the message may respond to its call context (`U RQ NRQ Ry Rt`; in a callback
    /// only while the call context is not answered yet, see [`MessageContext::replied`]).
    fn expects_reply(self) -> bool {
        matches!(
            self,
            EntryPoint::Update
                | EntryPoint::CompositeQuery
                | EntryPoint::Query
                | EntryPoint::ReplicatedQuery
                | EntryPoint::ReplyCallback
                | EntryPoint::RejectCallback
        )
    }
    /// `msg_arg_data_*`: `I U RQ NRQ Ry F`.
    fn has_arg(self) -> bool {
        matches!(
            self,
            EntryPoint::Init
                | EntryPoint::InspectMessage
                | EntryPoint::CompositeQuery
                | EntryPoint::Update
                | EntryPoint::Query
                | EntryPoint::ReplicatedQuery
                | EntryPoint::PostUpgrade
                | EntryPoint::ReplyCallback
        )
    }
    /// `certified_data_set`, `global_timer_set`: `I G U Ry Rt C T`.
    fn may_modify_system_state(self) -> bool {
        matches!(
            self,
            EntryPoint::Init
                | EntryPoint::Update
                | EntryPoint::PreUpgrade
                | EntryPoint::PostUpgrade
                | EntryPoint::ReplyCallback
                | EntryPoint::RejectCallback
                | EntryPoint::Cleanup
                | EntryPoint::Heartbeat
                | EntryPoint::GlobalTimer
        )
    }
    /// `call_*`: `U CQ Ry Rt T` (in a composite query's callbacks too).
    fn may_call(self) -> bool {
        matches!(
            self,
            EntryPoint::Update
                | EntryPoint::CompositeQuery
                | EntryPoint::ReplyCallback
                | EntryPoint::RejectCallback
                | EntryPoint::Heartbeat
                | EntryPoint::GlobalTimer
        )
    }
    /// `msg_cycles_available*`, `msg_cycles_accept*`: `U RQ Ry Rt`.
    fn has_cycles(self) -> bool {
        matches!(
            self,
            EntryPoint::Update
                | EntryPoint::ReplicatedQuery
                | EntryPoint::ReplyCallback
                | EntryPoint::RejectCallback
        )
    }
    /// A callback (`Ry Rt`): `msg_cycles_refunded*`.
    fn is_callback(self) -> bool {
        matches!(self, EntryPoint::ReplyCallback | EntryPoint::RejectCallback)
    }
    /// `msg_caller_info_*`: `U RQ NRQ Ry Rt C`.
    fn has_caller_info(self) -> bool {
        matches!(
            self,
            EntryPoint::Update
                | EntryPoint::CompositeQuery
                | EntryPoint::Query
                | EntryPoint::ReplicatedQuery
                | EntryPoint::ReplyCallback
                | EntryPoint::RejectCallback
                | EntryPoint::Cleanup
        )
    }
    /// `root_key_*`, `cycles_burn128`: `I G U RQ Ry Rt C T`.
    fn replicated_any(self) -> bool {
        !matches!(
            self,
            EntryPoint::Query
                | EntryPoint::CompositeQuery
                | EntryPoint::Start
                | EntryPoint::InspectMessage
        )
    }
}

impl std::fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a canister trapped. Each reason is distinct and reaches the caller in the reject message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostTrap {
    /// `ic0.trap` was called.
    #[error("trapped explicitly: {0}")]
    Explicit(String),
    /// A heap range passed to an `ic0` function is outside the heap.
    #[error(
        "heap out of bounds: {function} accessed {size} bytes at {addr} of a {heap_len}-byte heap"
    )]
    HeapOutOfBounds {
        /// The `ic0` function.
        function: &'static str,
        /// Start address.
        addr: u64,
        /// Length of the access.
        size: u64,
        /// Heap size in bytes.
        heap_len: u64,
    },
    /// A stable memory range is outside stable memory (or `offset + size` overflows).
    #[error(
        "stable memory out of bounds: {function} accessed {size} bytes at offset {offset} of {stable_len} bytes"
    )]
    StableOutOfBounds {
        /// The `ic0` function.
        function: &'static str,
        /// Start offset.
        offset: u64,
        /// Length of the access.
        size: u64,
        /// Stable memory size in bytes.
        stable_len: u64,
    },
    /// A 32-bit stable function was used while stable memory is larger than 4 GiB.
    #[error("{function}: stable memory is larger than 4 GiB; use the 64-bit stable API")]
    StableTooBigFor32Bit {
        /// The `ic0` function.
        function: &'static str,
    },
    /// A range of a system blob (argument, caller, ...) is out of bounds.
    #[error("{function}: range {offset}+{size} exceeds the {len}-byte {what}")]
    BlobOutOfBounds {
        /// The `ic0` function.
        function: &'static str,
        /// What is read.
        what: &'static str,
        /// Requested offset.
        offset: u64,
        /// Requested size.
        size: u64,
        /// Blob length.
        len: u64,
    },
    /// The function may not be called from this entry point.
    #[error("ic0.{function} cannot be called in {entry}")]
    NotAvailable {
        /// The `ic0` function.
        function: &'static str,
        /// Where it was called.
        entry: EntryPoint,
    },
    /// A second reply or reject.
    #[error("ic0.{function}: the message was already replied to or rejected")]
    AlreadyResponded {
        /// The `ic0` function.
        function: &'static str,
    },
    /// A limit of the system API was exceeded, with the replica's message (reject code 5, as the
    /// replica's `CanisterContractViolation`).
    #[error("violated contract: {0}")]
    ContractViolation(String),
    /// The function exists on the IC but canister-vm does not implement it.
    #[error("ic0.{function} is not supported by canister-vm ({why})")]
    Unsupported {
        /// The `ic0` function.
        function: &'static str,
        /// Why.
        why: &'static str,
    },
    /// A bad argument value.
    #[error("ic0.{function}: {why}")]
    InvalidArgument {
        /// The `ic0` function.
        function: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A trap raised by instrumented code (`canister_vm.trap`).
    #[error("{0}")]
    Injected(crate::instrument::InjectedTrap),
    /// `canister_vm.trap` was called with a code that no injected code uses.
    #[error("injected trap with unknown code {0}")]
    UnknownInjected(i32),
}

impl wasmi::errors::HostError for HostTrap {}

/// How a message ended from the canister's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `ic0.msg_reply` with these bytes.
    Reply(Vec<u8>),
    /// `ic0.msg_reject` with this message.
    Reject(String),
}

/// The inputs of one message: what the `ic0` functions report about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContext {
    /// Which entry point runs.
    pub entry: EntryPoint,
    /// Method name (empty for lifecycle hooks).
    pub method: String,
    /// Argument bytes (Candid); in a reply callback, the reply.
    pub arg: Vec<u8>,
    /// Caller principal bytes.
    pub caller: Vec<u8>,
    /// `ic0.time` for this message, in nanoseconds since the epoch.
    pub time: u64,
    /// Cycles still available in the call context (`msg_cycles_available128`).
    pub cycles_available: u128,
    /// Cycles refunded with the response a callback handles (`msg_cycles_refunded128`).
    pub cycles_refunded: u128,
    /// In a reject callback (or a cleanup after one): the reject code and message.
    pub reject: Option<(u32, String)>,
    /// The call context was already answered (a callback may then not reply again).
    pub replied: bool,
    /// `msg_deadline`: 0, or for a bounded-wait call the time its caller stops waiting.
    pub deadline: u64,
    /// A data certificate is present (non-replicated queries): `data_certificate_*` hand the
    /// canister one for its certified data at this message's time, signed by the root key.
    pub certified: bool,
    /// `canister_inspect_message` called `ic0.accept_message`.
    pub accepted: bool,
    /// The message runs in a composite query's evaluation (its root or a callback): nothing it
    /// does is replicated or kept.
    pub composite: bool,
    /// Instructions the call context's earlier messages executed (the request and the
    /// callbacks before this one; 0 outside callbacks): `performance_counter(1)` adds them.
    pub call_context_instructions: u64,
}

impl MessageContext {
    /// A context for `entry` with no argument, the anonymous caller, no cycles and no reject.
    pub fn new(entry: EntryPoint, time: u64) -> Self {
        MessageContext {
            entry,
            method: String::new(),
            arg: Vec::new(),
            caller: vec![4],
            time,
            cycles_available: 0,
            cycles_refunded: 0,
            reject: None,
            replied: false,
            deadline: 0,
            certified: false,
            accepted: false,
            composite: false,
            call_context_instructions: 0,
        }
    }

    /// The context of instantiation (start function): no argument, anonymous caller.
    pub fn start(time: u64) -> Self {
        Self::new(EntryPoint::Start, time)
    }
}

/// A callback: a function of table 0 and the value it is called with (`ic0.call_new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Callback {
    /// Index into the canister's table 0.
    pub fun: u64,
    /// The argument (`env`).
    pub env: u64,
}

/// An inter-canister call a message assembled with `ic0.call_new` ... `ic0.call_perform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// The callee's principal bytes.
    pub callee: Vec<u8>,
    /// The method.
    pub method: String,
    /// The argument.
    pub arg: Vec<u8>,
    /// Cycles sent with the call (already taken from the balance).
    pub cycles: u128,
    /// The reply callback.
    pub reply: Callback,
    /// The reject callback.
    pub reject: Callback,
    /// The cleanup callback, if any.
    pub cleanup: Option<Callback>,
    /// `call_with_best_effort_response`: the timeout in seconds of a bounded-wait call.
    pub timeout_seconds: Option<u32>,
}

/// The replica's bound on `call_with_best_effort_response` timeouts (`MAX_CALL_TIMEOUT`, 300 s).
pub const MAX_CALL_TIMEOUT_SECONDS: u32 = 300;

/// Largest argument of an inter-canister call (`MAX_INTER_CANISTER_PAYLOAD_IN_BYTES`, 2 MiB).
pub const MAX_CALL_PAYLOAD: u64 = 2 * 1024 * 1024;

/// The host side of the `ic0` API for one canister: message context, response, system state and
/// (in system-API mode) the stable memory buffer.
#[derive(Debug)]
pub struct Ic0 {
    /// The running message.
    pub ctx: MessageContext,
    /// The canister's system state (certified data, timer, version, ...), changed by the message.
    pub system: SystemState,
    /// Stable memory served by host calls (system-API mode). Empty and unused in native mode.
    pub stable: Vec<u8>,
    /// Maximum stable memory size in pages.
    pub stable_limit_pages: u64,
    /// The heap's address type.
    pub heap_type: HeapType,
    /// Instructions executed so far in this message, the host's charges (the function's own
    /// overhead included) and the dirty stable pages' ([`Ic0::dirty_stable_charge`]) with them:
    /// kept current by the engine backend before `performance_counter` runs.
    pub instructions: u64,
    /// The instruction counter (instructions left, `canister counter_instructions`) while an
    /// `ic0` function runs in a metered module: the engine backend loads it before the call
    /// (and charges [`charge::fixed`]) and stores it back after, so the function can charge
    /// what the replica charges and trap when the limit is exceeded. `None` otherwise (nothing
    /// is charged).
    pub counter: Option<i64>,
    /// Lines printed with `ic0.debug_print`.
    pub debug_log: Vec<String>,
    /// 4 KiB stable pages written through `stable*_write` (system-API mode), unsorted; the
    /// runtime drains it after each message.
    pub stable_dirty: Vec<u64>,
    /// 4 KiB heap pages written by host functions (`*_copy`, `stable_read`, cycles), which the
    /// instrumented write barrier cannot see; drained by the runtime after each message.
    pub heap_dirty: Vec<u64>,
    /// Calls performed by the running message (`ic0.call_perform`), in order; the runtime takes
    /// them after the message (and discards them if it traps).
    pub calls: Vec<OutgoingCall>,
    /// Whether the canister runs on a subnet that delivers inter-canister calls; without one,
    /// `ic0.call_new` traps.
    pub calls_enabled: bool,
    /// The subnet's id (`ic0.subnet_self_*`).
    pub subnet_id: Vec<u8>,
    /// The subnet's root key (`ic0.root_key_*`; signs the certificates of `data_certificate_*`).
    pub root_key: Option<std::sync::Arc<crate::certification::RootKey>>,
    /// The data certificate of the running message, made on first use.
    certificate: Option<Vec<u8>>,
    /// The call under construction (between `call_new` and `call_perform`).
    building: Option<OutgoingCall>,
    reply_buf: Vec<u8>,
    response: Option<Response>,
}

type R<T> = Result<T, HostTrap>;

fn heap_range<'a>(heap: &'a [u8], function: &'static str, addr: u64, size: u64) -> R<&'a [u8]> {
    match addr.checked_add(size) {
        Some(end) if end <= heap.len() as u64 => Ok(&heap[addr as usize..end as usize]),
        _ => Err(HostTrap::HeapOutOfBounds {
            function,
            addr,
            size,
            heap_len: heap.len() as u64,
        }),
    }
}

/// The heap range the caller is about to write; its 4 KiB pages are recorded in `dirty` (host
/// writes to the heap bypass the instrumented write barrier).
fn heap_range_mut<'a>(
    heap: &'a mut [u8],
    dirty: &mut Vec<u64>,
    function: &'static str,
    addr: u64,
    size: u64,
) -> R<&'a mut [u8]> {
    let heap_len = heap.len() as u64;
    match addr.checked_add(size) {
        Some(end) if end <= heap_len => {
            if size > 0 {
                dirty.extend(addr / 4096..=(end - 1) / 4096);
            }
            Ok(&mut heap[addr as usize..end as usize])
        }
        _ => Err(HostTrap::HeapOutOfBounds {
            function,
            addr,
            size,
            heap_len,
        }),
    }
}

/// Copies `blob[offset..offset + size]` to `heap[dst..]` (the shape of every `*_copy` function).
fn copy_blob(
    heap: &mut [u8],
    dirty: &mut Vec<u64>,
    function: &'static str,
    (what, blob): (&'static str, &[u8]),
    dst: u64,
    offset: u64,
    size: u64,
) -> R<()> {
    let src = match offset.checked_add(size) {
        Some(end) if end <= blob.len() as u64 => &blob[offset as usize..end as usize],
        _ => {
            return Err(HostTrap::BlobOutOfBounds {
                function,
                what,
                offset,
                size,
                len: blob.len() as u64,
            });
        }
    };
    heap_range_mut(heap, dirty, function, dst, size)?.copy_from_slice(src);
    Ok(())
}

fn write_u128(
    heap: &mut [u8],
    dirty: &mut Vec<u64>,
    function: &'static str,
    dst: u64,
    value: u128,
) -> R<()> {
    heap_range_mut(heap, dirty, function, dst, 16)?.copy_from_slice(&value.to_le_bytes());
    Ok(())
}

impl Ic0 {
    /// A new host state for a canister with this system state and (system-API mode) stable memory.
    pub fn new(
        system: SystemState,
        stable: Vec<u8>,
        stable_limit_pages: u64,
        heap_type: HeapType,
    ) -> Self {
        Ic0 {
            ctx: MessageContext::start(0),
            system,
            stable,
            stable_limit_pages,
            heap_type,
            instructions: 0,
            counter: None,
            debug_log: Vec::new(),
            stable_dirty: Vec::new(),
            heap_dirty: Vec::new(),
            calls: Vec::new(),
            calls_enabled: false,
            subnet_id: Vec::new(),
            root_key: None,
            certificate: None,
            building: None,
            reply_buf: Vec::new(),
            response: None,
        }
    }

    /// Starts a new message: sets its context and clears the response and debug log.
    pub fn begin(&mut self, ctx: MessageContext) {
        self.ctx = ctx;
        self.reply_buf.clear();
        self.response = None;
        self.instructions = 0;
        self.debug_log.clear();
        self.calls.clear();
        self.building = None;
        self.certificate = None;
    }

    /// Ends the message's call assembly: a call under construction that was never performed is
    /// discarded and its cycles go back to the balance. Returns the calls the message performed.
    pub fn take_calls(&mut self) -> Vec<OutgoingCall> {
        self.discard_call();
        std::mem::take(&mut self.calls)
    }

    fn discard_call(&mut self) {
        if let Some(call) = self.building.take() {
            self.system.cycle_balance = self.system.cycle_balance.saturating_add(call.cycles);
        }
    }

    /// Takes the response of the message that just ran, if it gave one.
    pub fn take_response(&mut self) -> Option<Response> {
        self.reply_buf.clear();
        self.response.take()
    }

    fn require(&self, function: &'static str, ok: bool) -> R<()> {
        if ok {
            Ok(())
        } else {
            Err(HostTrap::NotAvailable {
                function,
                entry: self.ctx.entry,
            })
        }
    }

    fn require_reply_pending(&self, function: &'static str) -> R<()> {
        self.require(function, self.ctx.entry.expects_reply())?;
        if self.response.is_some() || self.ctx.replied {
            return Err(HostTrap::AlreadyResponded { function });
        }
        Ok(())
    }

    /// Takes `fee` instructions from [`Ic0::counter`] (the fixed overhead of the function about
    /// to run, [`charge::fixed`]); traps with the instruction limit if that leaves it negative
    /// (then nothing of the call happens). The engine glue calls it for every `ic0` function.
    pub(crate) fn charge_fixed(&mut self, fee: u64) -> R<()> {
        self.charge_bytes(fee, 1)
    }

    /// Takes `bytes * per_byte` instructions from [`Ic0::counter`]; traps with the instruction
    /// limit if that leaves it negative (then nothing else of the call happens).
    fn charge_bytes(&mut self, bytes: u64, per_byte: u64) -> R<()> {
        let Some(left) = self.counter.as_mut() else {
            return Ok(());
        };
        let fee = bytes.saturating_mul(per_byte);
        *left = left.saturating_sub(i64::try_from(fee).unwrap_or(i64::MAX));
        if *left < 0 {
            return Err(HostTrap::Injected(
                crate::instrument::InjectedTrap::InstructionLimit,
            ));
        }
        Ok(())
    }

    /// The largest reply or reject payload this message may give.
    fn max_reply_size(&self) -> u64 {
        if self.replicated() {
            MAX_REPLY_SIZE
        } else {
            MAX_QUERY_REPLY_SIZE
        }
    }

    /// Whether the message runs replicated (not a query, a composite query's message or an
    /// inspection).
    fn replicated(&self) -> bool {
        !self.ctx.composite
            && !matches!(
                self.ctx.entry,
                EntryPoint::Query | EntryPoint::CompositeQuery | EntryPoint::InspectMessage
            )
    }

    fn stable_pages(&self) -> u64 {
        self.stable.len() as u64 / WASM_PAGE_SIZE
    }

    // ----- message -----

    /// `ic0.msg_arg_data_size`.
    pub fn msg_arg_data_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require("msg_arg_data_size", self.ctx.entry.has_arg())?;
        Ok(self.ctx.arg.len() as u64)
    }
    /// `ic0.msg_arg_data_copy`.
    pub fn msg_arg_data_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        let f = "msg_arg_data_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.require(f, self.ctx.entry.has_arg())?;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("argument", &self.ctx.arg),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.msg_caller_size`.
    pub fn msg_caller_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        Ok(self.ctx.caller.len() as u64)
    }
    /// `ic0.msg_caller_copy`.
    pub fn msg_caller_copy(&mut self, heap: &mut [u8], dst: u64, offset: u64, size: u64) -> R<()> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            "msg_caller_copy",
            ("caller", &self.ctx.caller),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.msg_caller_info_data_size`: callers here are never authenticated by canister
    /// signatures with caller info, so the data is empty.
    pub fn msg_caller_info_data_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require(
            "msg_caller_info_data_size",
            self.ctx.entry.has_caller_info(),
        )?;
        Ok(0)
    }
    /// `ic0.msg_caller_info_data_copy` (of the empty blob).
    pub fn msg_caller_info_data_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        let f = "msg_caller_info_data_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.require(f, self.ctx.entry.has_caller_info())?;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("caller info data", &[]),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.msg_caller_info_signer_size`: empty (see [`Self::msg_caller_info_data_size`]).
    pub fn msg_caller_info_signer_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require(
            "msg_caller_info_signer_size",
            self.ctx.entry.has_caller_info(),
        )?;
        Ok(0)
    }
    /// `ic0.msg_caller_info_signer_copy` (of the empty blob).
    pub fn msg_caller_info_signer_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        let f = "msg_caller_info_signer_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.require(f, self.ctx.entry.has_caller_info())?;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("caller info signer", &[]),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.msg_reject_code`: in callbacks (and their cleanup), 0 after a reply.
    pub fn msg_reject_code(&mut self, _heap: &mut [u8]) -> R<i32> {
        let e = self.ctx.entry;
        self.require(
            "msg_reject_code",
            e.is_callback() || e == EntryPoint::Cleanup,
        )?;
        Ok(self.ctx.reject.as_ref().map_or(0, |(code, _)| *code as i32))
    }
    fn reject_message(&self, function: &'static str) -> R<&[u8]> {
        self.require(function, self.ctx.entry == EntryPoint::RejectCallback)?;
        match &self.ctx.reject {
            Some((_, message)) => Ok(message.as_bytes()),
            None => Err(HostTrap::NotAvailable {
                function,
                entry: self.ctx.entry,
            }),
        }
    }
    /// `ic0.msg_reject_msg_size`: only in reject callbacks.
    pub fn msg_reject_msg_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        Ok(self.reject_message("msg_reject_msg_size")?.len() as u64)
    }
    /// `ic0.msg_reject_msg_copy`: only in reject callbacks.
    pub fn msg_reject_msg_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        let f = "msg_reject_msg_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        let message = self.reject_message(f)?.to_vec();
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("reject message", &message),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.msg_deadline`: 0 except in a bounded-wait call and its callbacks.
    pub fn msg_deadline(&mut self, _heap: &mut [u8]) -> R<i64> {
        let e = self.ctx.entry;
        self.require(
            "msg_deadline",
            matches!(
                e,
                EntryPoint::Update | EntryPoint::Query | EntryPoint::CompositeQuery
            ) || e.is_callback(),
        )?;
        Ok(self.ctx.deadline as i64)
    }
    /// `ic0.msg_method_name_size`: only in `canister_inspect_message`.
    pub fn msg_method_name_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require(
            "msg_method_name_size",
            self.ctx.entry == EntryPoint::InspectMessage,
        )?;
        Ok(self.ctx.method.len() as u64)
    }
    /// `ic0.msg_method_name_copy`: only in `canister_inspect_message`.
    pub fn msg_method_name_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        let f = "msg_method_name_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.require(f, self.ctx.entry == EntryPoint::InspectMessage)?;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("method name", self.ctx.method.as_bytes()),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.msg_reply_data_append`: charged `500 + 50·size`; the whole reply may have at most
    /// [`MAX_REPLY_SIZE`] bytes ([`MAX_QUERY_REPLY_SIZE`] in a non-replicated query).
    pub fn msg_reply_data_append(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        let f = "msg_reply_data_append";
        self.charge_bytes(size, charge::PER_PAYLOAD_BYTE)?;
        self.require_reply_pending(f)?;
        let total = (self.reply_buf.len() as u64).saturating_add(size);
        let max = self.max_reply_size();
        if total > max {
            return Err(HostTrap::ContractViolation(format!(
                "ic0.{f}: application payload size ({total}) cannot be larger than {max}."
            )));
        }
        let bytes = heap_range(heap, f, src, size)?;
        self.reply_buf.extend_from_slice(bytes);
        Ok(())
    }
    /// `ic0.msg_reply`.
    pub fn msg_reply(&mut self, _heap: &mut [u8]) -> R<()> {
        self.require_reply_pending("msg_reply")?;
        self.response = Some(Response::Reply(std::mem::take(&mut self.reply_buf)));
        Ok(())
    }
    /// `ic0.msg_reject`: charged `500 + 50·size`; the message may have at most
    /// [`MAX_REPLY_SIZE`] bytes ([`MAX_QUERY_REPLY_SIZE`] in a non-replicated query).
    pub fn msg_reject(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        let f = "msg_reject";
        self.charge_bytes(size, charge::PER_PAYLOAD_BYTE)?;
        self.require_reply_pending(f)?;
        let max = self.max_reply_size();
        if size > max {
            return Err(HostTrap::ContractViolation(format!(
                "ic0.{f}: application payload size ({size}) cannot be larger than {max}."
            )));
        }
        let text = String::from_utf8_lossy(heap_range(heap, f, src, size)?).into_owned();
        self.response = Some(Response::Reject(text));
        Ok(())
    }

    // ----- cycles -----

    /// `ic0.msg_cycles_available128`: cycles of the call context not yet accepted.
    pub fn msg_cycles_available128(&mut self, heap: &mut [u8], dst: u64) -> R<()> {
        let f = "msg_cycles_available128";
        self.require(f, self.ctx.entry.has_cycles() && !self.ctx.composite)?;
        write_u128(
            heap,
            &mut self.heap_dirty,
            f,
            dst,
            self.ctx.cycles_available,
        )
    }
    /// `ic0.msg_cycles_refunded128`: only in callbacks.
    pub fn msg_cycles_refunded128(&mut self, heap: &mut [u8], dst: u64) -> R<()> {
        let f = "msg_cycles_refunded128";
        self.require(f, self.ctx.entry.is_callback())?;
        write_u128(heap, &mut self.heap_dirty, f, dst, self.ctx.cycles_refunded)
    }
    fn accept(&mut self, function: &'static str, max: u128) -> R<u128> {
        self.require(function, self.ctx.entry.has_cycles() && !self.ctx.composite)?;
        let amount = max.min(self.ctx.cycles_available);
        self.ctx.cycles_available -= amount;
        self.system.cycle_balance = self.system.cycle_balance.saturating_add(amount);
        Ok(amount)
    }
    /// `ic0.msg_cycles_accept128`: moves up to `max` of the available cycles to the balance.
    pub fn msg_cycles_accept128(
        &mut self,
        heap: &mut [u8],
        high: i64,
        low: i64,
        dst: u64,
    ) -> R<()> {
        let f = "msg_cycles_accept128";
        // The destination is checked before anything moves.
        heap_range(heap, f, dst, 16)?;
        let amount = self.accept(f, u128_of(high, low))?;
        write_u128(heap, &mut self.heap_dirty, f, dst, amount)
    }
    /// `ic0.msg_cycles_available` (64-bit): traps if the amount does not fit.
    pub fn msg_cycles_available(&mut self, _heap: &mut [u8]) -> R<i64> {
        let f = "msg_cycles_available";
        self.require(f, self.ctx.entry.has_cycles() && !self.ctx.composite)?;
        fits_u64(f, self.ctx.cycles_available)
    }
    /// `ic0.msg_cycles_refunded` (64-bit).
    pub fn msg_cycles_refunded(&mut self, _heap: &mut [u8]) -> R<i64> {
        let f = "msg_cycles_refunded";
        self.require(f, self.ctx.entry.is_callback())?;
        fits_u64(f, self.ctx.cycles_refunded)
    }
    /// `ic0.msg_cycles_accept` (64-bit).
    pub fn msg_cycles_accept(&mut self, _heap: &mut [u8], max_amount: i64) -> R<i64> {
        let amount = self.accept("msg_cycles_accept", max_amount as u64 as u128)?;
        Ok(amount as u64 as i64)
    }
    /// `ic0.cycles_burn128`: burns up to `amount` cycles of the balance; writes what it burned.
    pub fn cycles_burn128(&mut self, heap: &mut [u8], high: i64, low: i64, dst: u64) -> R<()> {
        let f = "cycles_burn128";
        self.require(f, self.ctx.entry.replicated_any() && !self.ctx.composite)?;
        heap_range(heap, f, dst, 16)?;
        let burned = u128_of(high, low).min(self.system.cycle_balance);
        self.system.cycle_balance -= burned;
        write_u128(heap, &mut self.heap_dirty, f, dst, burned)
    }
    /// `ic0.canister_cycle_balance128`.
    pub fn canister_cycle_balance128(&mut self, heap: &mut [u8], dst: u64) -> R<()> {
        write_u128(
            heap,
            &mut self.heap_dirty,
            "canister_cycle_balance128",
            dst,
            self.system.cycle_balance,
        )
    }
    /// `ic0.canister_liquid_cycle_balance128`: the whole balance (canister-vm reserves nothing
    /// for execution or freezing, see README "Cycles").
    pub fn canister_liquid_cycle_balance128(&mut self, heap: &mut [u8], dst: u64) -> R<()> {
        write_u128(
            heap,
            &mut self.heap_dirty,
            "canister_liquid_cycle_balance128",
            dst,
            self.system.cycle_balance,
        )
    }
    /// `ic0.canister_cycle_balance` (64-bit): traps if the balance does not fit.
    pub fn canister_cycle_balance(&mut self, _heap: &mut [u8]) -> R<i64> {
        fits_u64("canister_cycle_balance", self.system.cycle_balance)
    }

    // ----- canister -----

    /// `ic0.canister_self_size`.
    pub fn canister_self_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        Ok(self.system.canister_id.len() as u64)
    }
    /// `ic0.canister_self_copy`.
    pub fn canister_self_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        let id = &self.system.canister_id;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            "canister_self_copy",
            ("canister id", id),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.canister_status`: always 1 (running).
    pub fn canister_status(&mut self, _heap: &mut [u8]) -> R<i32> {
        Ok(1)
    }
    /// `ic0.canister_version`.
    pub fn canister_version(&mut self, _heap: &mut [u8]) -> R<i64> {
        Ok(self.system.canister_version as i64)
    }
    /// `ic0.subnet_self_size`.
    pub fn subnet_self_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        Ok(self.subnet_id.len() as u64)
    }
    /// `ic0.subnet_self_copy`.
    pub fn subnet_self_copy(&mut self, heap: &mut [u8], dst: u64, offset: u64, size: u64) -> R<()> {
        let f = "subnet_self_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("subnet id", &self.subnet_id),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.subnet_self_node_count`: a canister-vm subnet is one node.
    pub fn subnet_self_node_count(&mut self, _heap: &mut [u8]) -> R<i32> {
        Ok(1)
    }
    /// `ic0.accept_message`: only in `canister_inspect_message`, at most once.
    pub fn accept_message(&mut self, _heap: &mut [u8]) -> R<()> {
        self.require(
            "accept_message",
            self.ctx.entry == EntryPoint::InspectMessage,
        )?;
        if self.ctx.accepted {
            return Err(HostTrap::ContractViolation(
                "ic0.accept_message called twice".into(),
            ));
        }
        self.ctx.accepted = true;
        Ok(())
    }

    // ----- stable memory (system-API mode) -----

    /// `ic0.stable_size`.
    pub fn stable_size(&mut self, _heap: &mut [u8]) -> R<i32> {
        let pages = self.stable_pages();
        if pages > MAX_32_BIT_STABLE_PAGES {
            return Err(HostTrap::StableTooBigFor32Bit {
                function: "stable_size",
            });
        }
        Ok(pages as i32)
    }
    /// `ic0.stable_grow`.
    pub fn stable_grow(&mut self, _heap: &mut [u8], new_pages: i32) -> R<i32> {
        self.charge_bytes(charge::STABLE_GROW, 1)?;
        let old = self.stable_pages();
        if old > MAX_32_BIT_STABLE_PAGES {
            return Err(HostTrap::StableTooBigFor32Bit {
                function: "stable_grow",
            });
        }
        let limit = self.stable_limit_pages.min(MAX_32_BIT_STABLE_PAGES);
        Ok(self.grow_to(old, new_pages as u32 as u64, limit) as i32)
    }
    /// `ic0.stable64_size`.
    pub fn stable64_size(&mut self, _heap: &mut [u8]) -> R<i64> {
        Ok(self.stable_pages() as i64)
    }
    /// `ic0.stable64_grow`.
    pub fn stable64_grow(&mut self, _heap: &mut [u8], new_pages: i64) -> R<i64> {
        self.charge_bytes(charge::STABLE_GROW, 1)?;
        let old = self.stable_pages();
        Ok(self.grow_to(old, new_pages as u64, self.stable_limit_pages))
    }

    /// Grows by `add` pages if the result stays within `limit`; returns the old size or -1.
    fn grow_to(&mut self, old: u64, add: u64, limit: u64) -> i64 {
        match old.checked_add(add) {
            Some(new) if new <= limit => {
                let Some(bytes) = new
                    .checked_mul(WASM_PAGE_SIZE)
                    .and_then(|b| usize::try_from(b).ok())
                else {
                    return -1;
                };
                if crate::state::grow_zeroed(&mut self.stable, bytes).is_err() {
                    return -1;
                }
                old as i64
            }
            _ => -1,
        }
    }

    fn stable_range(
        &self,
        function: &'static str,
        offset: u64,
        size: u64,
    ) -> R<std::ops::Range<usize>> {
        let len = self.stable.len() as u64;
        match offset.checked_add(size) {
            Some(end) if end <= len => Ok(offset as usize..end as usize),
            _ => Err(HostTrap::StableOutOfBounds {
                function,
                offset,
                size,
                stable_len: len,
            }),
        }
    }

    fn check_32_bit(&self, function: &'static str) -> R<()> {
        if self.stable_pages() > MAX_32_BIT_STABLE_PAGES {
            return Err(HostTrap::StableTooBigFor32Bit { function });
        }
        Ok(())
    }

    /// Stable → heap copy; checks stable bounds, then heap bounds.
    fn stable_to_heap(
        &mut self,
        heap: &mut [u8],
        f: &'static str,
        dst: u64,
        off: u64,
        size: u64,
    ) -> R<()> {
        let range = self.stable_range(f, off, size)?;
        heap_range_mut(heap, &mut self.heap_dirty, f, dst, size)?
            .copy_from_slice(&self.stable[range]);
        Ok(())
    }

    /// Instructions a message that started with `budget` has executed when the counter shows
    /// `left`: the counter's part and the dirty stable pages' charge
    /// ([`Ic0::dirty_stable_charge`]). What `performance_counter` reads and what the message
    /// reports (before the heap pages' charge), for every engine.
    pub fn executed(&self, budget: i64, left: i64, stable_map: Option<&[u8]>) -> u64 {
        let used = budget.saturating_sub(left).max(0) as u64;
        used.saturating_add(self.dirty_stable_charge(stable_map))
    }

    /// What the stable pages written so far in this message cost ([`charge::PER_DIRTY_STABLE_PAGE`]
    /// each): `native_map` is the stable memory's dirty byte map in Wasm-native mode (its first
    /// `pages` bytes, one per 4 KiB page), `None` in system-API mode, where the host records
    /// the pages it writes. Each page is charged once per message, as the replica's stable write
    /// charges the pages it finds clean in its per-message byte map.
    pub fn dirty_stable_charge(&self, native_map: Option<&[u8]>) -> u64 {
        let pages = match native_map {
            Some(map) => map.iter().filter(|&&b| b != 0).count() as u64,
            None => {
                let mut pages = self.stable_dirty.clone();
                pages.sort_unstable();
                pages.dedup();
                pages.len() as u64
            }
        };
        pages.saturating_mul(charge::PER_DIRTY_STABLE_PAGE)
    }

    /// What the heap pages the message wrote cost after it ran: the replica charges
    /// [`charge::PER_DIRTY_HEAP_PAGE`] per dirty 4 KiB heap page once the Wasm code returns, in
    /// messages whose changes it tracks (not in non-replicated queries, composite queries or
    /// `canister_inspect_message`, which it runs without modification tracking). `map` is the
    /// heap's dirty byte map (one byte per 4 KiB page); the pages host functions wrote are
    /// counted too. The charge is not visible to `performance_counter`.
    pub fn dirty_heap_charge(&self, map: Option<&[u8]>) -> u64 {
        if !self.replicated() {
            return 0;
        }
        let Some(map) = map else {
            return 0;
        };
        let marked = map.iter().filter(|&&b| b != 0).count() as u64;
        let mut host: Vec<u64> = self
            .heap_dirty
            .iter()
            .copied()
            .filter(|&p| map.get(p as usize) == Some(&0))
            .collect();
        host.sort_unstable();
        host.dedup();
        (marked + host.len() as u64).saturating_mul(charge::PER_DIRTY_HEAP_PAGE)
    }

    /// Heap → stable copy; checks stable bounds, then heap bounds.
    fn heap_to_stable(
        &mut self,
        heap: &[u8],
        f: &'static str,
        off: u64,
        src: u64,
        size: u64,
    ) -> R<()> {
        let range = self.stable_range(f, off, size)?;
        let bytes = heap_range(heap, f, src, size)?;
        if !range.is_empty() {
            let pages = range.start as u64 / 4096..=(range.end as u64 - 1) / 4096;
            self.stable_dirty.extend(pages);
        }
        self.stable[range].copy_from_slice(bytes);
        Ok(())
    }

    /// `ic0.stable_read`: zero length returns before any bounds check.
    pub fn stable_read(&mut self, heap: &mut [u8], dst: i32, offset: i32, size: i32) -> R<()> {
        let f = "stable_read";
        self.check_32_bit(f)?;
        let (dst, offset, size) = (dst as u32 as u64, offset as u32 as u64, size as u32 as u64);
        if size == 0 {
            return Ok(());
        }
        self.stable_to_heap(heap, f, dst, offset, size)
    }
    /// `ic0.stable_write`: as on the IC, bounds are checked even for zero length.
    pub fn stable_write(&mut self, heap: &mut [u8], offset: i32, src: i32, size: i32) -> R<()> {
        let f = "stable_write";
        self.check_32_bit(f)?;
        let (offset, src, size) = (offset as u32 as u64, src as u32 as u64, size as u32 as u64);
        self.heap_to_stable(heap, f, offset, src, size)
    }
    /// `ic0.stable64_read`: zero length returns before any bounds check.
    pub fn stable64_read(&mut self, heap: &mut [u8], dst: i64, offset: i64, size: i64) -> R<()> {
        if size == 0 {
            return Ok(());
        }
        self.stable_to_heap(
            heap,
            "stable64_read",
            dst as u64,
            offset as u64,
            size as u64,
        )
    }
    /// `ic0.stable64_write`: zero length returns before any bounds check.
    pub fn stable64_write(&mut self, heap: &mut [u8], offset: i64, src: i64, size: i64) -> R<()> {
        if size == 0 {
            return Ok(());
        }
        self.heap_to_stable(
            heap,
            "stable64_write",
            offset as u64,
            src as u64,
            size as u64,
        )
    }

    // ----- certification -----

    /// `ic0.certified_data_set`.
    pub fn certified_data_set(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        let f = "certified_data_set";
        self.require(
            f,
            self.ctx.entry.may_modify_system_state() && !self.ctx.composite,
        )?;
        if size > CERTIFIED_DATA_MAX as u64 {
            return Err(HostTrap::InvalidArgument {
                function: f,
                why: format!(
                    "certified data is {size} bytes; at most {CERTIFIED_DATA_MAX} allowed"
                ),
            });
        }
        self.system.certified_data = heap_range(heap, f, src, size)?.to_vec();
        Ok(())
    }
    fn root_key_der(&self) -> Vec<u8> {
        self.root_key
            .as_ref()
            .map_or_else(Vec::new, |key| key.public_key_der())
    }
    /// `ic0.root_key_size`: the subnet's root public key (DER).
    pub fn root_key_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require(
            "root_key_size",
            self.ctx.entry.replicated_any() && !self.ctx.composite,
        )?;
        Ok(self.root_key_der().len() as u64)
    }
    /// `ic0.root_key_copy`.
    pub fn root_key_copy(&mut self, heap: &mut [u8], dst: u64, offset: u64, size: u64) -> R<()> {
        let f = "root_key_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.require(f, self.ctx.entry.replicated_any() && !self.ctx.composite)?;
        let key = self.root_key_der();
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("root key", &key),
            dst,
            offset,
            size,
        )
    }
    /// `ic0.data_certificate_present`: 1 in a non-replicated query.
    pub fn data_certificate_present(&mut self, _heap: &mut [u8]) -> R<i32> {
        Ok(self.ctx.certified as i32)
    }
    /// The message's data certificate (made on first use: signing costs a hash to G1 and a
    /// scalar multiplication).
    fn certificate(&mut self, function: &'static str) -> R<&[u8]> {
        let unavailable = HostTrap::NotAvailable {
            function,
            entry: self.ctx.entry,
        };
        if !self.ctx.certified {
            return Err(unavailable);
        }
        let Some(key) = self.root_key.clone() else {
            return Err(unavailable);
        };
        if self.certificate.is_none() {
            self.certificate = Some(crate::certification::data_certificate(
                &key,
                self.ctx.time,
                &self.system.canister_id,
                &self.system.certified_data,
            ));
        }
        Ok(self.certificate.as_deref().unwrap_or_default())
    }
    /// `ic0.data_certificate_size`: only where a certificate is present (non-replicated queries).
    pub fn data_certificate_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        Ok(self.certificate("data_certificate_size")?.len() as u64)
    }
    /// `ic0.data_certificate_copy`.
    pub fn data_certificate_copy(
        &mut self,
        heap: &mut [u8],
        dst: u64,
        offset: u64,
        size: u64,
    ) -> R<()> {
        let f = "data_certificate_copy";
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        let certificate = self.certificate(f)?.to_vec();
        copy_blob(
            heap,
            &mut self.heap_dirty,
            f,
            ("data certificate", &certificate),
            dst,
            offset,
            size,
        )
    }

    // ----- time, timers, counters -----

    /// `ic0.time`: fixed for the message, from its record.
    pub fn time(&mut self, _heap: &mut [u8]) -> R<i64> {
        Ok(self.ctx.time as i64)
    }
    /// `ic0.global_timer_set`: returns the previous deadline.
    pub fn global_timer_set(&mut self, _heap: &mut [u8], timestamp: i64) -> R<i64> {
        let f = "global_timer_set";
        self.require(
            f,
            self.ctx.entry.may_modify_system_state() && !self.ctx.composite,
        )?;
        Ok(std::mem::replace(&mut self.system.global_timer, timestamp as u64) as i64)
    }
    /// `ic0.performance_counter`: 0 = instructions of this message, 1 = of this call context.
    pub fn performance_counter(&mut self, _heap: &mut [u8], counter_type: i32) -> R<i64> {
        match counter_type {
            0 => Ok(self.instructions as i64),
            // The replica's call context instruction counter: what the context's earlier
            // messages executed plus this message so far.
            1 => Ok(self
                .ctx
                .call_context_instructions
                .saturating_add(self.instructions) as i64),
            other => Err(HostTrap::InvalidArgument {
                function: "performance_counter",
                why: format!("unknown counter type {other}"),
            }),
        }
    }
    /// `ic0.is_controller`.
    pub fn is_controller(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<i32> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        let f = "is_controller";
        if size > PRINCIPAL_MAX as u64 {
            return Err(HostTrap::InvalidArgument {
                function: f,
                why: format!("a principal has at most {PRINCIPAL_MAX} bytes, got {size}"),
            });
        }
        let id = heap_range(heap, f, src, size)?;
        Ok(self.system.controllers.iter().any(|c| c == id) as i32)
    }
    /// `ic0.in_replicated_execution`.
    pub fn in_replicated_execution(&mut self, _heap: &mut [u8]) -> R<i32> {
        Ok(self.replicated() as i32)
    }

    // ----- costs (the IC's fees on a 13-node application subnet; see `cost`) -----

    /// `ic0.cost_call`.
    pub fn cost_call(
        &mut self,
        heap: &mut [u8],
        method_name_size: i64,
        payload_size: i64,
        dst: u64,
    ) -> R<()> {
        let bytes = (method_name_size as u64 as u128).saturating_add(payload_size as u64 as u128);
        write_u128(
            heap,
            &mut self.heap_dirty,
            "cost_call",
            dst,
            cost::call(bytes),
        )
    }
    /// `ic0.cost_create_canister`.
    pub fn cost_create_canister(&mut self, heap: &mut [u8], dst: u64) -> R<()> {
        write_u128(
            heap,
            &mut self.heap_dirty,
            "cost_create_canister",
            dst,
            cost::CREATE_CANISTER,
        )
    }
    /// `ic0.cost_http_request`.
    pub fn cost_http_request(
        &mut self,
        heap: &mut [u8],
        request_size: i64,
        max_res_bytes: i64,
        dst: u64,
    ) -> R<()> {
        let fee = cost::http_request(request_size as u64 as u128, max_res_bytes as u64 as u128);
        write_u128(heap, &mut self.heap_dirty, "cost_http_request", dst, fee)
    }
    /// `ic0.cost_http_request_v2`: canister-vm makes no HTTP outcalls.
    pub fn cost_http_request_v2(
        &mut self,
        _heap: &mut [u8],
        _src: u64,
        _size: u64,
        _dst: u64,
    ) -> R<()> {
        Err(HostTrap::Unsupported {
            function: "cost_http_request_v2",
            why: "canister-vm makes no HTTP outcalls",
        })
    }
    /// The threshold-key cost functions: canister-vm has no threshold keys, so every key name is
    /// unknown (result 2, as for an unknown key on the IC); the curve or algorithm is checked
    /// first (result 1 if unknown).
    #[allow(clippy::too_many_arguments)]
    fn cost_threshold(
        &mut self,
        heap: &mut [u8],
        f: &'static str,
        src: u64,
        size: u64,
        kind: i32,
        kinds: i32,
        dst: u64,
    ) -> R<i32> {
        heap_range(heap, f, src, size)?;
        heap_range(heap, f, dst, 16)?;
        Ok(if kind < 0 || kind >= kinds { 1 } else { 2 })
    }
    /// `ic0.cost_sign_with_ecdsa` (curves: 0 = secp256k1).
    pub fn cost_sign_with_ecdsa(
        &mut self,
        heap: &mut [u8],
        src: u64,
        size: u64,
        curve: i32,
        dst: u64,
    ) -> R<i32> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.cost_threshold(heap, "cost_sign_with_ecdsa", src, size, curve, 1, dst)
    }
    /// `ic0.cost_sign_with_schnorr` (algorithms: 0 = bip340secp256k1, 1 = ed25519).
    pub fn cost_sign_with_schnorr(
        &mut self,
        heap: &mut [u8],
        src: u64,
        size: u64,
        algorithm: i32,
        dst: u64,
    ) -> R<i32> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.cost_threshold(heap, "cost_sign_with_schnorr", src, size, algorithm, 2, dst)
    }
    /// `ic0.cost_vetkd_derive_key` (curves: 0 = bls12_381_g2).
    pub fn cost_vetkd_derive_key(
        &mut self,
        heap: &mut [u8],
        src: u64,
        size: u64,
        curve: i32,
        dst: u64,
    ) -> R<i32> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        self.cost_threshold(heap, "cost_vetkd_derive_key", src, size, curve, 1, dst)
    }

    // ----- environment variables (a canister-vm canister has none) -----

    /// `ic0.env_var_count`: 0.
    pub fn env_var_count(&mut self, _heap: &mut [u8]) -> R<u64> {
        Ok(0)
    }
    fn no_env_var(function: &'static str, why: String) -> HostTrap {
        HostTrap::InvalidArgument { function, why }
    }
    /// `ic0.env_var_name_size`: traps, there is no variable at any index.
    pub fn env_var_name_size(&mut self, _heap: &mut [u8], index: u64) -> R<u64> {
        Err(Self::no_env_var(
            "env_var_name_size",
            format!("index {index} out of bounds (0 environment variables)"),
        ))
    }
    /// `ic0.env_var_name_copy`: traps, there is no variable at any index.
    pub fn env_var_name_copy(
        &mut self,
        _heap: &mut [u8],
        index: u64,
        _dst: u64,
        _offset: u64,
        size: u64,
    ) -> R<()> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        Err(Self::no_env_var(
            "env_var_name_copy",
            format!("index {index} out of bounds (0 environment variables)"),
        ))
    }
    /// `ic0.env_var_name_exists`: 0.
    pub fn env_var_name_exists(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<i32> {
        heap_range(heap, "env_var_name_exists", src, size)?;
        Ok(0)
    }
    /// `ic0.env_var_value_size`: traps, no variable has that name.
    pub fn env_var_value_size(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<u64> {
        let name = String::from_utf8_lossy(heap_range(heap, "env_var_value_size", src, size)?)
            .into_owned();
        Err(Self::no_env_var(
            "env_var_value_size",
            format!("no environment variable `{name}`"),
        ))
    }
    /// `ic0.env_var_value_copy`: traps, no variable has that name.
    pub fn env_var_value_copy(
        &mut self,
        heap: &mut [u8],
        src: u64,
        size: u64,
        _dst: u64,
        _offset: u64,
        _len: u64,
    ) -> R<()> {
        self.charge_bytes(size, charge::PER_COPIED_BYTE)?;
        let name = String::from_utf8_lossy(heap_range(heap, "env_var_value_copy", src, size)?)
            .into_owned();
        Err(Self::no_env_var(
            "env_var_value_copy",
            format!("no environment variable `{name}`"),
        ))
    }

    // ----- debugging -----

    /// `ic0.debug_print`: recorded for the caller (the CLI prints it on stderr).
    pub fn debug_print(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        self.charge_bytes(charge::log_bytes(size), 1)?;
        let bytes = heap_range(heap, "debug_print", src, size)?;
        self.debug_log
            .push(String::from_utf8_lossy(bytes).into_owned());
        Ok(())
    }
    /// `ic0.trap`.
    pub fn trap(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        self.charge_bytes(charge::log_bytes(size), 1)?;
        let bytes = heap_range(heap, "trap", src, size)?;
        Err(HostTrap::Explicit(
            String::from_utf8_lossy(bytes).into_owned(),
        ))
    }

    // ----- inter-canister calls -----

    fn building(&mut self, function: &'static str) -> R<&mut OutgoingCall> {
        self.require(function, self.ctx.entry.may_call())?;
        self.building.as_mut().ok_or_else(|| {
            HostTrap::ContractViolation(format!(
                "ic0.{function}: there is no call under construction (call ic0.call_new first)"
            ))
        })
    }
    /// `ic0.call_new`: starts assembling a call (discarding one under construction).
    #[allow(clippy::too_many_arguments)]
    pub fn call_new(
        &mut self,
        heap: &mut [u8],
        callee_src: u64,
        callee_size: u64,
        name_src: u64,
        name_size: u64,
        reply_fun: u64,
        reply_env: u64,
        reject_fun: u64,
        reject_env: u64,
    ) -> R<()> {
        self.charge_bytes(
            callee_size.saturating_add(name_size),
            charge::PER_COPIED_BYTE,
        )?;
        let f = "call_new";
        self.require(f, self.ctx.entry.may_call())?;
        if !self.calls_enabled {
            return Err(HostTrap::Unsupported {
                function: f,
                why: "this canister runs alone; install it on a canister_vm::Subnet to make inter-canister calls",
            });
        }
        let callee = heap_range(heap, f, callee_src, callee_size)?.to_vec();
        let name = heap_range(heap, f, name_src, name_size)?;
        let method = String::from_utf8(name.to_vec()).map_err(|_| HostTrap::InvalidArgument {
            function: f,
            why: "the method name is not valid UTF-8".into(),
        })?;
        self.discard_call();
        self.building = Some(OutgoingCall {
            callee,
            method,
            arg: Vec::new(),
            cycles: 0,
            reply: Callback {
                fun: reply_fun,
                env: reply_env,
            },
            reject: Callback {
                fun: reject_fun,
                env: reject_env,
            },
            cleanup: None,
            timeout_seconds: None,
        });
        Ok(())
    }
    /// `ic0.call_on_cleanup`: at most once per call.
    pub fn call_on_cleanup(&mut self, _heap: &mut [u8], fun: u64, env: u64) -> R<()> {
        let f = "call_on_cleanup";
        let call = self.building(f)?;
        if call.cleanup.is_some() {
            return Err(HostTrap::ContractViolation(format!(
                "ic0.{f} can be called at most once per call"
            )));
        }
        call.cleanup = Some(Callback { fun, env });
        Ok(())
    }
    /// `ic0.call_data_append`: the argument may have at most [`MAX_CALL_PAYLOAD`] bytes.
    pub fn call_data_append(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        let f = "call_data_append";
        self.charge_bytes(size, charge::PER_PAYLOAD_BYTE)?;
        let bytes = heap_range(heap, f, src, size)?;
        let call = self.building(f)?;
        let total = call.arg.len() as u64 + size;
        if total > MAX_CALL_PAYLOAD {
            return Err(HostTrap::ContractViolation(format!(
                "ic0.{f}: the call's argument would have {total} bytes; at most {MAX_CALL_PAYLOAD} are allowed"
            )));
        }
        call.arg.extend_from_slice(bytes);
        Ok(())
    }
    /// `ic0.call_with_best_effort_response`: at most once per call; the timeout is bounded by
    /// [`MAX_CALL_TIMEOUT_SECONDS`].
    pub fn call_with_best_effort_response(
        &mut self,
        _heap: &mut [u8],
        timeout_seconds: i32,
    ) -> R<()> {
        let f = "call_with_best_effort_response";
        let call = self.building(f)?;
        if call.timeout_seconds.is_some() {
            return Err(HostTrap::ContractViolation(format!(
                "ic0.{f} can be called at most once per call"
            )));
        }
        call.timeout_seconds = Some((timeout_seconds as u32).min(MAX_CALL_TIMEOUT_SECONDS));
        Ok(())
    }
    fn add_cycles(&mut self, f: &'static str, amount: u128) -> R<()> {
        self.require(f, self.ctx.entry.may_call())?;
        self.building(f)?;
        if amount > self.system.cycle_balance {
            return Err(HostTrap::ContractViolation(format!(
                "ic0.{f}: cannot add {amount} cycles to the call, the canister's liquid balance is {}",
                self.system.cycle_balance
            )));
        }
        self.system.cycle_balance -= amount;
        if let Some(call) = self.building.as_mut() {
            call.cycles = call.cycles.saturating_add(amount);
        }
        Ok(())
    }
    /// `ic0.call_cycles_add128`: moves cycles from the balance onto the call.
    pub fn call_cycles_add128(&mut self, _heap: &mut [u8], high: i64, low: i64) -> R<()> {
        self.add_cycles("call_cycles_add128", u128_of(high, low))
    }
    /// `ic0.call_cycles_add` (64-bit).
    pub fn call_cycles_add(&mut self, _heap: &mut [u8], amount: i64) -> R<()> {
        self.add_cycles("call_cycles_add", amount as u64 as u128)
    }
    /// `ic0.call_perform`: queues the call (sent if the message does not trap); returns 0.
    pub fn call_perform(&mut self, _heap: &mut [u8]) -> R<i32> {
        let f = "call_perform";
        self.building(f)?;
        if let Some(call) = self.building.take() {
            self.calls.push(call);
        }
        Ok(0)
    }
}

/// A 128-bit amount from its halves.
fn u128_of(high: i64, low: i64) -> u128 {
    ((high as u64 as u128) << 64) | low as u64 as u128
}

/// `value` as the i64 a 64-bit cycles function returns; traps if it does not fit in 64 bits.
fn fits_u64(function: &'static str, value: u128) -> R<i64> {
    u64::try_from(value).map(|v| v as i64).map_err(|_| {
        HostTrap::ContractViolation(format!(
            "ic0.{function}: the amount {value} does not fit in 64 bits; use the 128-bit function"
        ))
    })
}

/// The fees the `ic0.cost_*` functions report: the IC's prices on a 13-node application subnet
/// (the interface specification's cycles-cost tables; canister-vm itself charges nothing for
/// execution, see README "Cycles").
pub mod cost {
    /// Nodes of the subnet the fees are scaled for.
    pub const SUBNET_SIZE: u128 = 13;
    /// `cost_create_canister`: 500 billion cycles.
    pub const CREATE_CANISTER: u128 = 500_000_000_000;
    /// Fee of an inter-canister call (`xnet_call_fee`, 260 000 cycles).
    pub const CALL: u128 = 260_000;
    /// Fee per byte of method name and argument (`xnet_byte_transmission_fee`, 1 000 cycles).
    pub const CALL_PER_BYTE: u128 = 1_000;

    /// `cost_call`: the call fee plus the transmission of `bytes` (method name and argument).
    pub fn call(bytes: u128) -> u128 {
        CALL.saturating_add(CALL_PER_BYTE.saturating_mul(bytes))
    }

    /// `cost_http_request`: `(3 000 000 + 60 000·n)·n + 400·n·request + 800·n·response` for a
    /// subnet of `n` nodes.
    pub fn http_request(request_size: u128, max_response_bytes: u128) -> u128 {
        let n = SUBNET_SIZE;
        (3_000_000 + 60_000 * n) * n
            + 400u128.saturating_mul(n).saturating_mul(request_size)
            + 800u128.saturating_mul(n).saturating_mul(max_response_bytes)
    }
}

#[cfg(test)]
mod tests;
