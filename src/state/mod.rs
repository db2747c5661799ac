//! Canister state: the bytes and facts that make up a canister between messages, and their
//! persistence in a state directory.
//!
//! A [`CanisterState`] is a complete, engine-independent picture of a canister: its module, heap
//! and stable memory bytes, mutable globals and [`SystemState`]. [`StateDir`] stores one on disk
//! so a canister survives across processes.

mod dir;
pub mod hash;
pub mod lock;
pub mod log_file;
pub(crate) mod os;
mod page_file;
pub mod subnet_dir;
mod values;

pub use dir::{Changed, Checkpoint, CheckpointStats, FORMAT, FORMAT_2, Loaded, Prepared, StateDir};
pub use lock::DirLock;
pub use log_file::LogPosition;
pub use subnet_dir::{SubnetDir, SubnetFacts};
pub use values::GlobalValue;
pub(crate) use values::hex_option;

pub use crate::instrument::StableMode;

use serde::{Deserialize, Serialize};

use crate::abi::HeapType;

/// The principal of the first canister on a subnet (`rwlgt-iiaaa-aaaaa-aaaaa-cai`), used as the
/// default canister id.
pub const DEFAULT_CANISTER_ID: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
/// The anonymous principal (`2vxsx-fae`), the default caller.
pub const ANONYMOUS: [u8; 1] = [4];
/// `ic0.time` of the first message when no time is given: 2023-11-14T22:13:20Z.
pub const GENESIS_TIME_NS: u64 = 1_700_000_000_000_000_000;
/// How far `ic0.time` advances per message when no time is given: one second.
pub const TIME_STEP_NS: u64 = 1_000_000_000;
/// The cycle balance every canister reports (canister-vm does not charge cycles).
pub const DEFAULT_CYCLE_BALANCE: u128 = 3_000_000_000_000;

/// System-level facts of a canister that messages can read and some can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemState {
    /// The canister's own principal.
    #[serde(with = "hex::serde")]
    pub canister_id: Vec<u8>,
    /// Controller principals.
    #[serde(with = "values::hex_list")]
    pub controllers: Vec<Vec<u8>>,
    /// Data set by `ic0.certified_data_set` (at most 32 bytes).
    #[serde(with = "hex::serde")]
    pub certified_data: Vec<u8>,
    /// Deadline set by `ic0.global_timer_set` (0 = none).
    pub global_timer: u64,
    /// Incremented by every install, upgrade and committed update.
    pub canister_version: u64,
    /// Reported by `ic0.canister_cycle_balance128`.
    pub cycle_balance: u128,
}

impl SystemState {
    /// The system state of a newly created canister controlled by `controller`.
    pub fn new(controller: Vec<u8>) -> Self {
        SystemState {
            canister_id: DEFAULT_CANISTER_ID.to_vec(),
            controllers: vec![controller],
            certified_data: Vec::new(),
            global_timer: 0,
            canister_version: 0,
            cycle_balance: DEFAULT_CYCLE_BALANCE,
        }
    }
}

/// Counters that make message inputs deterministic when the caller gives none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Messages executed so far (install, updates, queries, upgrades).
    pub messages: u64,
    /// `ic0.time` of the last message.
    pub last_time: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            messages: 0,
            last_time: GENESIS_TIME_NS - TIME_STEP_NS,
        }
    }
}

impl Clock {
    /// The time of the next message: `requested`, or the last time plus one step.
    pub fn next_time(&self, requested: Option<u64>) -> u64 {
        requested.unwrap_or(self.last_time.saturating_add(TIME_STEP_NS))
    }
}

/// Everything that makes up a canister between messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanisterState {
    /// The canister's module as installed (not instrumented).
    pub wasm: Vec<u8>,
    /// How stable memory is reached.
    pub stable_mode: StableMode,
    /// The heap's address type.
    pub heap_type: HeapType,
    /// Heap (memory 0) bytes; its length is a multiple of 64 KiB.
    pub heap: Vec<u8>,
    /// Stable memory bytes; its length is a multiple of 64 KiB.
    pub stable: Vec<u8>,
    /// Values of the module's mutable globals, by global index.
    pub globals: Vec<(u32, GlobalValue)>,
    /// System state.
    pub system: SystemState,
    /// Message counter and time.
    pub clock: Clock,
}

impl CanisterState {
    /// SHA-256 of the installed module, hex.
    pub fn module_hash(&self) -> String {
        sha256_hex(&self.wasm)
    }
}

/// Grows `buf` to `len` bytes of zeros without writing the new part: a large growth takes a
/// fresh zeroed allocation (pages the OS maps lazily) and copies the old non-zero pages into it,
/// so growing to GiBs costs the old size in CPU and the old non-zero pages in memory. Fails
/// (leaving `buf` alone) if the allocation fails.
pub fn grow_zeroed(buf: &mut Vec<u8>, len: usize) -> Result<(), std::collections::TryReserveError> {
    if len <= buf.len() {
        return Ok(());
    }
    if len <= buf.capacity() {
        buf.resize(len, 0);
        return Ok(());
    }
    // Probe that the allocation can succeed, then allocate zeroed memory (calloc).
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(len)?;
    drop(probe);
    let mut grown = vec![0u8; len];
    // Only the old buffer's non-zero pages are written: its zero pages stay unallocated in the
    // new one.
    copy_nonzero_pages(&mut grown[..buf.len()], buf, 0, &mut Vec::new());
    *buf = grown;
    Ok(())
}

/// Copies `bytes` into a fresh zeroed buffer, writing only its non-zero 4 KiB pages: the OS maps
/// the untouched (zero) pages lazily, so copying a mostly-zero memory costs resident memory only
/// for its non-zero pages. With `nonzero` (ascending page indices; every other page of `bytes`
/// is zero) only those pages are read. Fails with a message if the allocation fails.
pub fn sparse_copy(bytes: &[u8], nonzero: Option<&[u64]>) -> Result<Vec<u8>, String> {
    let mut out = zeroed(bytes.len())?;
    match nonzero {
        None => copy_nonzero_pages(&mut out, bytes, 0, &mut Vec::new()),
        Some(pages) => copy_listed_pages(&mut out, bytes, pages),
    }
    Ok(out)
}

/// Copies the 4 KiB pages `pages` (page indices; those past the end are ignored) of `src` into
/// `dst`, which has the same length.
pub(crate) fn copy_listed_pages(dst: &mut [u8], src: &[u8], pages: &[u64]) {
    for &p in pages {
        let start = (p as usize).saturating_mul(hash::PAGE_SIZE);
        if start >= src.len() {
            continue;
        }
        let end = (start + hash::PAGE_SIZE).min(src.len());
        dst[start..end].copy_from_slice(&src[start..end]);
    }
}

/// A zeroed buffer of `len` bytes that the OS maps lazily.
fn zeroed(len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    grow_zeroed(&mut out, len).map_err(|_| format!("cannot allocate {len} bytes"))?;
    Ok(out)
}

/// Copies the non-zero 4 KiB pages of `src` into `dst` (same length, zero), appending their page
/// indices (counted from `first_page`) to `nonzero`.
fn copy_nonzero_pages(dst: &mut [u8], src: &[u8], first_page: usize, nonzero: &mut Vec<u64>) {
    for (i, (dst, src)) in dst
        .chunks_mut(hash::PAGE_SIZE)
        .zip(src.chunks(hash::PAGE_SIZE))
        .enumerate()
    {
        if src.iter().any(|&b| b != 0) {
            dst.copy_from_slice(src);
            nonzero.push((first_page + i) as u64);
        }
    }
}

/// Which 4 KiB pages of the heap and of stable memory may hold non-zero bytes, as ascending
/// page indices; every page not listed is zero. Reading page files finds them at no extra cost
/// (only their data extents are read), and restoring and hashing a large, mostly-zero memory
/// then touch only these pages: opening a canister costs O(pages written), not O(memory size).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonZeroPages {
    /// Heap pages.
    pub heap: Vec<u64>,
    /// Stable memory pages.
    pub stable: Vec<u64>,
}

/// A test seam: the hook is called with the name of each step of a checkpoint as it completes
/// (`wal`, `manifest`, `current` — the commit point —, `applied`, `record-half`, `record`), so
/// a crash test can kill a process at an exact step (`tests/all/integrity.rs`). Set once per
/// process; not part of the supported API.
#[doc(hidden)]
pub fn set_checkpoint_hook(hook: fn(&str)) {
    let _ = CHECKPOINT_HOOK.set(hook);
}

static CHECKPOINT_HOOK: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Reports a completed checkpoint step to the hook, if any.
fn checkpoint_step(name: &str) {
    if let Some(hook) = CHECKPOINT_HOOK.get() {
        hook(name);
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
