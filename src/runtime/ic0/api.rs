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

/// What the replica charges for the `ic0` functions that move bytes between the heap and the
/// host: a fixed overhead plus a charge per byte, in instructions, taken from the instruction
/// counter before the function runs (`charge_for_cpu_and_mem` in
/// `rs/embedders/src/wasmtime_embedder/linker.rs`; overheads from `overhead::*` in
/// `rs/embedders/src/wasmtime_embedder/system_api_complexity.rs`; one instruction per byte on an
/// application subnet, `get_num_instructions_from_bytes` in `rs/system_api`). Stable memory
/// reads and writes are charged by instrumentation (`20 + len`, `instrument::stable`), and the
/// other `ic0` functions cost only their `call` instruction.
pub mod charge {
    /// Overhead of `msg_reply_data_append`, `msg_reject` and every `*_copy` function
    /// (`overhead::MSG_REPLY_DATA_APPEND`, `MSG_REJECT`, `MSG_ARG_DATA_COPY`, `MSG_CALLER_COPY`,
    /// `CANISTER_SELF_COPY`, `MSG_METHOD_NAME_COPY`, `MSG_REJECT_MSG_COPY`,
    /// `DATA_CERTIFICATE_COPY`: all 500).
    pub const OVERHEAD: u64 = 500;
    /// Instructions per byte of a reply or reject payload (`BYTE_TRANSMISSION_COST_FACTOR`): the
    /// payload is also transmitted out of the sandbox.
    pub const PER_PAYLOAD_BYTE: u64 = 50;
    /// Instructions per byte copied into the heap by a `*_copy` function.
    pub const PER_COPIED_BYTE: u64 = 1;

    /// Whether the `ic0` function `name` charges (engine glue hands it the counter only then).
    #[inline]
    pub fn charges(name: &str) -> bool {
        matches!(
            name,
            "msg_reply_data_append"
                | "msg_reject"
                | "msg_arg_data_copy"
                | "msg_caller_copy"
                | "msg_reject_msg_copy"
                | "msg_method_name_copy"
                | "canister_self_copy"
                | "data_certificate_copy"
        )
    }
}

/// The entry point a message runs in; decides which `ic0` functions are available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryPoint {
    /// `canister_init`.
    Init,
    /// `canister_update <name>`.
    Update,
    /// `canister_query <name>` called as a query (non-replicated, always rolled back).
    Query,
    /// `canister_query <name>` called as an update (replicated, rolled back).
    ReplicatedQuery,
    /// `canister_pre_upgrade` (on the old module).
    PreUpgrade,
    /// `canister_post_upgrade` (on the new module).
    PostUpgrade,
    /// The module's start function, run at instantiation.
    Start,
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
        }
    }
    fn expects_reply(self) -> bool {
        matches!(
            self,
            EntryPoint::Update | EntryPoint::Query | EntryPoint::ReplicatedQuery
        )
    }
    fn has_arg(self) -> bool {
        matches!(
            self,
            EntryPoint::Init
                | EntryPoint::Update
                | EntryPoint::Query
                | EntryPoint::ReplicatedQuery
                | EntryPoint::PostUpgrade
        )
    }
    fn may_modify_system_state(self) -> bool {
        matches!(
            self,
            EntryPoint::Init
                | EntryPoint::Update
                | EntryPoint::PreUpgrade
                | EntryPoint::PostUpgrade
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
    /// Argument bytes (Candid).
    pub arg: Vec<u8>,
    /// Caller principal bytes.
    pub caller: Vec<u8>,
    /// `ic0.time` for this message, in nanoseconds since the epoch.
    pub time: u64,
}

impl MessageContext {
    /// The context of instantiation (start function): no argument, anonymous caller.
    pub fn start(time: u64) -> Self {
        MessageContext {
            entry: EntryPoint::Start,
            method: String::new(),
            arg: Vec::new(),
            caller: vec![4],
            time,
        }
    }
}

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
    /// Instructions executed so far in this message (kept current by the engine backend before
    /// `performance_counter` runs).
    pub instructions: u64,
    /// The instruction counter (instructions left, `canister counter_instructions`) while a
    /// function that [`charge::charges`] runs in a metered module: the engine backend loads it
    /// before the call and stores it back after, so the function can charge what the replica
    /// charges and trap when the limit is exceeded. `None` otherwise (nothing is charged).
    pub counter: Option<i64>,
    /// Lines printed with `ic0.debug_print`.
    pub debug_log: Vec<String>,
    /// 4 KiB stable pages written through `stable*_write` (system-API mode), unsorted; the
    /// runtime drains it after each message.
    pub stable_dirty: Vec<u64>,
    /// 4 KiB heap pages written by host functions (`*_copy`, `stable_read`, cycles), which the
    /// instrumented write barrier cannot see; drained by the runtime after each message.
    pub heap_dirty: Vec<u64>,
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
        if self.response.is_some() {
            return Err(HostTrap::AlreadyResponded { function });
        }
        Ok(())
    }

    /// Takes `overhead + bytes * per_byte` instructions from [`Ic0::counter`]; traps with the
    /// instruction limit if that leaves it negative (then nothing else of the call happens).
    fn charge(&mut self, overhead: u64, bytes: u64, per_byte: u64) -> R<()> {
        let Some(left) = self.counter.as_mut() else {
            return Ok(());
        };
        let fee = bytes.saturating_mul(per_byte).saturating_add(overhead);
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
        match self.ctx.entry {
            EntryPoint::Query => MAX_QUERY_REPLY_SIZE,
            _ => MAX_REPLY_SIZE,
        }
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
        self.charge(charge::OVERHEAD, size, charge::PER_COPIED_BYTE)?;
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
        self.charge(charge::OVERHEAD, size, charge::PER_COPIED_BYTE)?;
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
    /// `ic0.msg_reject_code`: only in reject callbacks, which canister-vm does not run.
    pub fn msg_reject_code(&mut self, _heap: &mut [u8]) -> R<i32> {
        self.require("msg_reject_code", false).map(|_| 0)
    }
    /// `ic0.msg_reject_msg_size`: only in reject callbacks.
    pub fn msg_reject_msg_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require("msg_reject_msg_size", false).map(|_| 0)
    }
    /// `ic0.msg_reject_msg_copy`: only in reject callbacks.
    pub fn msg_reject_msg_copy(&mut self, _heap: &mut [u8], _d: u64, _o: u64, size: u64) -> R<()> {
        self.charge(charge::OVERHEAD, size, charge::PER_COPIED_BYTE)?;
        self.require("msg_reject_msg_copy", false)
    }
    /// `ic0.msg_method_name_size`: only in `canister_inspect_message`.
    pub fn msg_method_name_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        self.require("msg_method_name_size", false).map(|_| 0)
    }
    /// `ic0.msg_method_name_copy`: only in `canister_inspect_message`.
    pub fn msg_method_name_copy(&mut self, _heap: &mut [u8], _d: u64, _o: u64, size: u64) -> R<()> {
        self.charge(charge::OVERHEAD, size, charge::PER_COPIED_BYTE)?;
        self.require("msg_method_name_copy", false)
    }
    /// `ic0.msg_reply_data_append`: charged `500 + 50·size`; the whole reply may have at most
    /// [`MAX_REPLY_SIZE`] bytes ([`MAX_QUERY_REPLY_SIZE`] in a non-replicated query).
    pub fn msg_reply_data_append(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        let f = "msg_reply_data_append";
        self.charge(charge::OVERHEAD, size, charge::PER_PAYLOAD_BYTE)?;
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
        self.charge(charge::OVERHEAD, size, charge::PER_PAYLOAD_BYTE)?;
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

    // ----- cycles (ingress messages carry none) -----

    /// `ic0.msg_cycles_available128`: ingress messages carry no cycles.
    pub fn msg_cycles_available128(&mut self, heap: &mut [u8], dst: u64) -> R<()> {
        let f = "msg_cycles_available128";
        self.require(f, self.ctx.entry.expects_reply())?;
        write_u128(heap, &mut self.heap_dirty, f, dst, 0)
    }
    /// `ic0.msg_cycles_refunded128`: only in callbacks.
    pub fn msg_cycles_refunded128(&mut self, _heap: &mut [u8], _dst: u64) -> R<()> {
        self.require("msg_cycles_refunded128", false)
    }
    /// `ic0.msg_cycles_accept128`: accepts nothing (no cycles are available).
    pub fn msg_cycles_accept128(
        &mut self,
        heap: &mut [u8],
        _high: i64,
        _low: i64,
        dst: u64,
    ) -> R<()> {
        let f = "msg_cycles_accept128";
        self.require(f, self.ctx.entry == EntryPoint::Update)?;
        write_u128(heap, &mut self.heap_dirty, f, dst, 0)
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
        self.charge(charge::OVERHEAD, size, charge::PER_COPIED_BYTE)?;
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
    /// `ic0.accept_message`: only in `canister_inspect_message`.
    pub fn accept_message(&mut self, _heap: &mut [u8]) -> R<()> {
        self.require("accept_message", false)
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
        let f = "certified_data_set";
        self.require(f, self.ctx.entry.may_modify_system_state())?;
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
    /// `ic0.data_certificate_present`: canister-vm provides no certificates.
    pub fn data_certificate_present(&mut self, _heap: &mut [u8]) -> R<i32> {
        Ok(0)
    }
    /// `ic0.data_certificate_size`: traps, there is no certificate.
    pub fn data_certificate_size(&mut self, _heap: &mut [u8]) -> R<u64> {
        Err(HostTrap::Unsupported {
            function: "data_certificate_size",
            why: "no data certificate is present",
        })
    }
    /// `ic0.data_certificate_copy`: traps, there is no certificate.
    pub fn data_certificate_copy(
        &mut self,
        _heap: &mut [u8],
        _d: u64,
        _o: u64,
        size: u64,
    ) -> R<()> {
        self.charge(charge::OVERHEAD, size, charge::PER_COPIED_BYTE)?;
        Err(HostTrap::Unsupported {
            function: "data_certificate_copy",
            why: "no data certificate is present",
        })
    }

    // ----- time, timers, counters -----

    /// `ic0.time`: fixed for the message, from its record.
    pub fn time(&mut self, _heap: &mut [u8]) -> R<i64> {
        Ok(self.ctx.time as i64)
    }
    /// `ic0.global_timer_set`: returns the previous deadline.
    pub fn global_timer_set(&mut self, _heap: &mut [u8], timestamp: i64) -> R<i64> {
        let f = "global_timer_set";
        self.require(f, self.ctx.entry.may_modify_system_state())?;
        Ok(std::mem::replace(&mut self.system.global_timer, timestamp as u64) as i64)
    }
    /// `ic0.performance_counter`: 0 = instructions of this message, 1 = of this call context.
    pub fn performance_counter(&mut self, _heap: &mut [u8], counter_type: i32) -> R<i64> {
        match counter_type {
            0 | 1 => Ok(self.instructions as i64),
            other => Err(HostTrap::InvalidArgument {
                function: "performance_counter",
                why: format!("unknown counter type {other}"),
            }),
        }
    }
    /// `ic0.is_controller`.
    pub fn is_controller(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<i32> {
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
        Ok((self.ctx.entry != EntryPoint::Query) as i32)
    }

    // ----- debugging -----

    /// `ic0.debug_print`: recorded for the caller (the CLI prints it on stderr).
    pub fn debug_print(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        let bytes = heap_range(heap, "debug_print", src, size)?;
        self.debug_log
            .push(String::from_utf8_lossy(bytes).into_owned());
        Ok(())
    }
    /// `ic0.trap`.
    pub fn trap(&mut self, heap: &mut [u8], src: u64, size: u64) -> R<()> {
        let bytes = heap_range(heap, "trap", src, size)?;
        Err(HostTrap::Explicit(
            String::from_utf8_lossy(bytes).into_owned(),
        ))
    }

    // ----- inter-canister calls: not supported -----

    fn no_calls(function: &'static str) -> HostTrap {
        HostTrap::Unsupported {
            function,
            why: "canister-vm runs a single canister; inter-canister calls are not implemented",
        }
    }
    /// `ic0.call_new`: not supported.
    #[allow(clippy::too_many_arguments)]
    pub fn call_new(
        &mut self,
        _heap: &mut [u8],
        _a: u64,
        _b: u64,
        _c: u64,
        _d: u64,
        _e: u64,
        _f: u64,
        _g: u64,
        _h: u64,
    ) -> R<()> {
        Err(Self::no_calls("call_new"))
    }
    /// `ic0.call_data_append`: not supported.
    pub fn call_data_append(&mut self, _heap: &mut [u8], _src: u64, _size: u64) -> R<()> {
        Err(Self::no_calls("call_data_append"))
    }
    /// `ic0.call_cycles_add128`: not supported.
    pub fn call_cycles_add128(&mut self, _heap: &mut [u8], _high: i64, _low: i64) -> R<()> {
        Err(Self::no_calls("call_cycles_add128"))
    }
    /// `ic0.call_on_cleanup`: not supported.
    pub fn call_on_cleanup(&mut self, _heap: &mut [u8], _fun: u64, _env: u64) -> R<()> {
        Err(Self::no_calls("call_on_cleanup"))
    }
    /// `ic0.call_perform`: not supported.
    pub fn call_perform(&mut self, _heap: &mut [u8]) -> R<i32> {
        Err(Self::no_calls("call_perform"))
    }
}

#[cfg(test)]
mod tests;
