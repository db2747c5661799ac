//! A canister's state directory, with delta checkpoints.
//!
//! Layout:
//!
//! ```text
//! <dir>/CURRENT                   name of the live checkpoint manifest, replaced atomically
//! <dir>/checkpoint-<n>.json       globals, system state, sizes, module hash, stable mode, clock,
//!                                 state hash, and the write-ahead log of checkpoint n
//! <dir>/wal-<n>.bin               the 4 KiB pages checkpoint n changed (index + bytes, SHA-256)
//! <dir>/heap.pages                heap bytes as of the last applied checkpoint (sparse file)
//! <dir>/stable.pages              stable memory bytes, likewise
//! <dir>/APPLIED                   number of the last checkpoint whose log is in the page files
//! <dir>/modules/<sha256>.wasm     every module ever installed, content-addressed
//! <dir>/messages.jsonl            the message log (see [`super::log_file`])
//! <dir>/LOCK                      locked by the process that has the directory open
//! ```
//!
//! A checkpoint writes only the pages that changed since the previous one: first into its
//! write-ahead log `wal-<n>.bin` (fsynced), then the manifest, then `CURRENT` is switched by an
//! atomic rename — the commit point — and only then are the logged pages written in place into
//! the page files and `APPLIED` advanced. A crash before the switch leaves the old state (the page
//! files were not touched); a crash after it is repaired on the next open by applying the log
//! again (applying is idempotent). So a reader sees the old or the new state, never a mix, and a
//! checkpoint costs O(changed pages) whatever the memory size.
//!
//! The manifest (format 3) also holds the state hash over everything that decides behaviour
//! ([`super::hash::state_root`]; a checkpoint without one is refused) and the message's log
//! record with the log's position after it ([`super::log_file`]): the record is appended to the
//! log after the commit point and appended again on open if a crash cut it off, so the state
//! and its log commit as one unit. Format 2 (no log position; the state hash is the memory
//! hash) is still read; the next checkpoint writes format 3.
//!
//! A [`StateDir`] does not lock by itself: [`StateDir::lock`] takes the directory's exclusive
//! lock, and every persistent canister holds it while it has the directory open.
//!
//! Opening reads the page files through a memory mapping ([`super::page_file`]) and copies only
//! their non-zero pages.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hash::{Hash, PAGE_SIZE};
use super::lock::DirLock;
use super::log_file::{self, LogPosition, LogRef};
use super::page_file::{PageView, PageWriter, read_memory};
use super::{CanisterState, Clock, GlobalValue, NonZeroPages, StableMode, SystemState, sha256_hex};
use crate::abi::HeapType;
use crate::error::{Error, StateError};

/// The manifest format written.
pub const FORMAT: u32 = 3;
/// The previous format, still read: no log position, and the state hash is the memory hash.
pub const FORMAT_2: u32 = 2;
const CURRENT: &str = "CURRENT";
const APPLIED: &str = "APPLIED";
const HEAP_FILE: &str = "heap.pages";
const STABLE_FILE: &str = "stable.pages";
const WAL_MAGIC: &[u8; 8] = b"CVMWAL02";
/// Bytes of one log record: memory (1), page index (8), page bytes.
const RECORD_BYTES: usize = 1 + 8 + PAGE_SIZE;

/// What `checkpoint-<n>.json` holds. Unknown keys are refused: a renamed key must not turn a
/// check off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    number: u64,
    module_sha256: String,
    stable_mode: StableMode,
    heap_type: HeapType,
    heap_bytes: u64,
    stable_bytes: u64,
    globals: Vec<(u32, GlobalValue)>,
    system: SystemState,
    clock: Clock,
    /// The state hash after this checkpoint (hex): the full state hash in format 3, the memory
    /// hash in format 2. Required (optional only so that its absence gets a clear error).
    #[serde(default)]
    state_hash: Option<String>,
    wal: WalRef,
    /// The message log after this checkpoint's record (format 3; required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<LogRef>,
}

/// The write-ahead log of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalRef {
    file: String,
    sha256: String,
    pages: u64,
    /// The page files start empty (install, or a full rewrite) before the log is applied.
    fresh: bool,
}

/// Which pages changed since the previous checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum Changed<'a> {
    /// Everything: write every non-zero page (install).
    All,
    /// Unknown: compare every page with the page files and write those that differ (upgrade,
    /// which replaces the heap wholesale).
    Compare,
    /// An upgrade: the heap is compared page by page (it was replaced wholesale), stable memory
    /// changed exactly at these 4 KiB pages (the hooks' dirty set).
    Upgrade {
        /// Stable memory pages.
        stable: &'a [u64],
    },
    /// Exactly these 4 KiB pages (the write barrier's dirty set).
    Pages {
        /// Heap pages.
        heap: &'a [u64],
        /// Stable memory pages.
        stable: &'a [u64],
    },
}

/// A state to commit, borrowed from a running canister.
#[derive(Debug, Clone)]
pub struct Checkpoint<'a> {
    /// The installed (uninstrumented) module.
    pub wasm: &'a [u8],
    /// How stable memory is reached.
    pub stable_mode: StableMode,
    /// The heap's address type.
    pub heap_type: HeapType,
    /// Heap bytes.
    pub heap: &'a [u8],
    /// Stable memory bytes.
    pub stable: &'a [u8],
    /// Mutable globals.
    pub globals: Vec<(u32, GlobalValue)>,
    /// System state.
    pub system: &'a SystemState,
    /// Message counter and time.
    pub clock: &'a Clock,
    /// The state hash ([`super::hash::state_root`]), stored so that opening can verify what it
    /// rebuilt.
    pub state_hash: Hash,
    /// Which pages changed since the previous checkpoint.
    pub changed: Changed<'a>,
    /// The message's log record (one JSON line, newline included), appended to
    /// `messages.jsonl` as part of the commit; `None` adds no record.
    pub log_record: Option<&'a str>,
}

/// What a checkpoint wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint's number (0 for the install).
    pub number: u64,
    /// 4 KiB pages written to the log (each is then written once more into its page file).
    pub pages_written: u64,
    /// Bytes written to the log.
    pub log_bytes: u64,
    /// Where the message log stands after the checkpoint's record (`None` when unknown).
    pub log: Option<LogPosition>,
}

/// A loaded state and what its checkpoint recorded about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The state.
    pub state: CanisterState,
    /// The checkpoint's number.
    pub number: u64,
    /// The state hash recorded by the checkpoint: the state hash ([`super::hash::state_root`])
    /// in format 3, the memory hash ([`super::hash::StateHash::root`]) in format 2.
    pub state_hash: Hash,
    /// The checkpoint's format ([`FORMAT`] or [`FORMAT_2`]).
    pub format: u32,
    /// Where the message log stood at the checkpoint (format 3).
    pub log: Option<LogPosition>,
    /// The pages of `state`'s memories that are not zero.
    pub nonzero: NonZeroPages,
}

/// A canister's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    /// The directory keeps its own message log (a single-canister directory). A canister of a
    /// subnet directory does not: the subnet's manifest holds the log position
    /// ([`super::subnet_dir`]), and its checkpoints have no `log`.
    logged: bool,
    /// Where modules are stored: `<dir>/modules`, or the subnet directory's for its canisters.
    modules: PathBuf,
}

/// A checkpoint written up to its commit point ([`StateDir::prepare`]): its page log and
/// manifest are on disk, `CURRENT` still names the previous one.
#[derive(Debug)]
pub struct Prepared {
    manifest: Manifest,
    name: String,
    heap_pages: Vec<u64>,
    stable_pages: Vec<u64>,
    heap_changed: bool,
    stable_changed: bool,
    /// Where the record goes in the log, and the record.
    append: Option<(u64, String)>,
}

impl Prepared {
    /// The checkpoint's number.
    pub fn number(&self) -> u64 {
        self.manifest.number
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, why: impl Into<String>) -> Error {
    Error::State(StateError::Corrupt {
        path: path.to_path_buf(),
        why: why.into(),
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = File::create(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

/// Writes `bytes` to `path` atomically: a synced temporary file renamed over it.
pub(crate) fn replace_synced(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}.tmp"));
    write_synced(&tmp, bytes)?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(dir)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    match File::open(path) {
        Ok(dir) => {
            let _ = dir.sync_all();
            Ok(())
        }
        Err(e) => Err(io_err(path, e)),
    }
}

fn page_count(len: usize) -> u64 {
    len.div_ceil(PAGE_SIZE) as u64
}

fn page_bytes(memory: &[u8], page: u64) -> &[u8] {
    let start = page as usize * PAGE_SIZE;
    &memory[start..(start + PAGE_SIZE).min(memory.len())]
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// How one memory changed since the last checkpoint.
#[derive(Debug, Clone, Copy)]
enum MemoryChange<'a> {
    /// Log every non-zero page.
    All,
    /// Compare every page with the page file.
    Compare,
    /// Exactly these pages.
    Pages(&'a [u64]),
}

/// The pages of one memory that a checkpoint logs (`old`: the page file, for `Compare`).
fn pages_to_log(memory: &[u8], change: MemoryChange<'_>, old: &[u8]) -> Vec<u64> {
    let pages = page_count(memory.len());
    match change {
        MemoryChange::All => (0..pages)
            .filter(|&p| !is_zero(page_bytes(memory, p)))
            .collect(),
        MemoryChange::Compare => (0..pages)
            .filter(|&p| {
                let new = page_bytes(memory, p);
                let start = p as usize * PAGE_SIZE;
                if start + new.len() <= old.len() {
                    new != &old[start..start + new.len()]
                } else {
                    !is_zero(new)
                }
            })
            .collect(),
        MemoryChange::Pages(dirty) => {
            let mut v: Vec<u64> = dirty.iter().copied().filter(|&p| p < pages).collect();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

/// One page of a write-ahead log, as read back.
struct LogRecord {
    memory: u8,
    page: u64,
    bytes: Vec<u8>,
}

fn parse_wal(path: &Path, bytes: &[u8], wal: &WalRef) -> Result<Vec<LogRecord>, Error> {
    if sha256_hex(bytes) != wal.sha256 {
        return Err(corrupt(
            path,
            "log hash differs from its checkpoint manifest",
        ));
    }
    let Some(rest) = bytes.strip_prefix(WAL_MAGIC) else {
        return Err(corrupt(path, "not a canister-vm checkpoint log"));
    };
    if rest.len() < 8 {
        return Err(corrupt(path, "truncated log header"));
    }
    let count = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
    let body = &rest[8..];
    if count != wal.pages || body.len() as u64 != count.saturating_mul(RECORD_BYTES as u64) {
        return Err(corrupt(
            path,
            format!(
                "log holds {} bytes for {count} pages; the manifest says {} pages",
                body.len(),
                wal.pages
            ),
        ));
    }
    Ok(body
        .chunks(RECORD_BYTES)
        .map(|r| LogRecord {
            memory: r[0],
            page: u64::from_le_bytes(r[1..9].try_into().expect("8 bytes")),
            bytes: r[9..].to_vec(),
        })
        .collect())
}

impl StateDir {
    /// A handle on the state directory at `path` (nothing is read or created yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        StateDir {
            modules: path.join("modules"),
            path,
            logged: true,
        }
    }

    /// A handle on the directory of a canister of a subnet directory, which keeps no message
    /// log of its own (its checkpoints are committed by the subnet's manifest).
    /// Its modules are stored in `modules` (the subnet directory's `modules/`).
    pub fn member(path: impl Into<PathBuf>, modules: impl Into<PathBuf>) -> Self {
        StateDir {
            path: path.into(),
            logged: false,
            modules: modules.into(),
        }
    }

    /// The log position the live checkpoint records (`None` in format 2, or without a
    /// checkpoint): a subnet directory that takes over a single-canister directory continues
    /// its log from there.
    pub(super) fn current_log(&self) -> Result<Option<LogRef>, Error> {
        match self.current_manifest() {
            Ok(m) => Ok(m.log),
            Err(Error::State(StateError::NoCanister { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The number of the checkpoint `CURRENT` names (`None` without one).
    pub fn current_number(&self) -> Option<u64> {
        fs::read_to_string(self.path.join(CURRENT))
            .ok()?
            .trim()
            .strip_prefix("checkpoint-")?
            .strip_suffix(".json")?
            .parse()
            .ok()
    }

    /// Makes checkpoint `number` the live one if `CURRENT` still names an older one (a crash
    /// between a subnet's commit and the switch of its canisters): the subnet's manifest
    /// decides. The page files are brought up to it by the next load.
    pub fn recover_to(&self, number: u64) -> Result<(), Error> {
        if self.current_number() == Some(number) {
            return Ok(());
        }
        let name = format!("checkpoint-{number}.json");
        if !self.path.join(&name).is_file() {
            return Err(corrupt(
                &self.path.join(&name),
                "the subnet's manifest names this checkpoint, which is missing",
            ));
        }
        replace_synced(&self.path, CURRENT, name.as_bytes())
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory holds a canister.
    pub fn exists(&self) -> bool {
        self.path.join(CURRENT).is_file()
    }

    /// Reads the live checkpoint's manifest.
    fn current_manifest(&self) -> Result<Manifest, Error> {
        let current = self.path.join(CURRENT);
        let name = match fs::read_to_string(&current) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::State(StateError::NoCanister {
                    path: self.path.clone(),
                }));
            }
            Err(e) => return Err(io_err(&current, e)),
        };
        let name = name.trim();
        if name.starts_with("snapshot-") {
            return Err(corrupt(
                &current,
                "this state directory was written by an older canister-vm (format 1); install the canister again",
            ));
        }
        let valid = name
            .strip_prefix("checkpoint-")
            .and_then(|n| n.strip_suffix(".json"))
            .is_some_and(|n| n.parse::<u64>().is_ok());
        if !valid {
            return Err(corrupt(
                &current,
                format!("`{name}` is not a checkpoint name"),
            ));
        }
        let path = self.path.join(name);
        let text = fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| corrupt(&path, format!("invalid JSON: {e}")))?;
        if m.format != FORMAT && m.format != FORMAT_2 {
            return Err(corrupt(
                &path,
                format!(
                    "format {} is not supported (expected {FORMAT_2} or {FORMAT})",
                    m.format
                ),
            ));
        }
        if m.state_hash.is_none() {
            return Err(corrupt(
                &path,
                "the checkpoint has no `state_hash`: refusing a state that cannot be verified",
            ));
        }
        if self.logged && m.format == FORMAT && m.log.is_none() {
            return Err(corrupt(
                &path,
                "the checkpoint has no `log`: refusing a message log that cannot be verified",
            ));
        }
        Ok(m)
    }

    fn applied(&self) -> Option<u64> {
        fs::read_to_string(self.path.join(APPLIED))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Makes the page files hold checkpoint `m`: applies its log again unless `APPLIED` says it
    /// is in already (after a crash between the commit and the end of the apply).
    /// Then checks the message log against the checkpoint, appending the checkpoint's record
    /// again if a crash cut it off.
    fn recover(&self, m: &Manifest) -> Result<(), Error> {
        if self.applied() != Some(m.number) {
            self.reapply(m)?;
        }
        match &m.log {
            Some(r) if self.logged => {
                log_file::repair(&self.path, r, &format!("checkpoint-{}.json", m.number))
            }
            _ => Ok(()),
        }
    }

    /// Applies checkpoint `m`'s write-ahead log to the page files again.
    fn reapply(&self, m: &Manifest) -> Result<(), Error> {
        let path = self.path.join(&m.wal.file);
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let records = parse_wal(&path, &bytes, &m.wal)?;
        let (heap_pages, stable_pages) = (
            m.heap_bytes.div_ceil(PAGE_SIZE as u64),
            m.stable_bytes.div_ceil(PAGE_SIZE as u64),
        );
        for r in &records {
            let limit = match r.memory {
                0 => heap_pages,
                1 => stable_pages,
                _ => return Err(corrupt(&path, format!("unknown memory {}", r.memory))),
            };
            if r.page >= limit {
                return Err(corrupt(
                    &path,
                    format!("page {} is past the memory", r.page),
                ));
            }
        }
        let pages = |memory: u8| {
            records
                .iter()
                .filter(move |r| r.memory == memory)
                .map(|r| (r.page, r.bytes.as_slice()))
        };
        self.apply(m, pages(0), pages(1), true, true)
    }

    /// Writes a checkpoint's pages into the page files and advances `APPLIED`.
    fn apply<'b>(
        &self,
        m: &Manifest,
        heap: impl Iterator<Item = (u64, &'b [u8])>,
        stable: impl Iterator<Item = (u64, &'b [u8])>,
        heap_changed: bool,
        stable_changed: bool,
    ) -> Result<(), Error> {
        for (file, len, pages, changed) in [
            (
                HEAP_FILE,
                m.heap_bytes,
                Box::new(heap) as Box<dyn Iterator<Item = _>>,
                heap_changed,
            ),
            (
                STABLE_FILE,
                m.stable_bytes,
                Box::new(stable),
                stable_changed,
            ),
        ] {
            let mut w = PageWriter::open(&self.path.join(file))?;
            if m.wal.fresh {
                w.set_len(0)?;
            }
            w.set_len(len)?;
            let mut wrote = false;
            for (page, bytes) in pages {
                w.write_page(page, bytes)?;
                wrote = true;
            }
            if wrote || changed || m.wal.fresh {
                w.sync()?;
            }
        }
        replace_synced(&self.path, APPLIED, m.number.to_string().as_bytes())
    }

    /// Reads the committed state.
    pub fn load(&self) -> Result<CanisterState, Error> {
        Ok(self.load_checked()?.state)
    }

    /// Reads the committed state together with the checkpoint's number and recorded hash,
    /// repairing the page files first if the last checkpoint was interrupted.
    pub fn load_checked(&self) -> Result<Loaded, Error> {
        let m = self.current_manifest()?;
        self.recover(&m)?;
        let heap = read_memory(&self.path.join(HEAP_FILE), m.heap_bytes)?;
        let stable = read_memory(&self.path.join(STABLE_FILE), m.stable_bytes)?;
        let nonzero = NonZeroPages {
            heap: heap.nonzero,
            stable: stable.nonzero,
        };
        let wasm = self.read_module(&m.module_sha256)?;
        let manifest_path = self.path.join(format!("checkpoint-{}.json", m.number));
        let mut state_hash = [0u8; 32];
        hex::decode_to_slice(m.state_hash.as_deref().unwrap_or_default(), &mut state_hash)
            .map_err(|e| corrupt(&manifest_path, format!("state_hash: {e}")))?;
        let log = match &m.log {
            Some(r) if self.logged => Some(r.position(&manifest_path)?),
            _ => None,
        };
        Ok(Loaded {
            state: CanisterState {
                wasm,
                stable_mode: m.stable_mode,
                heap_type: m.heap_type,
                heap: heap.bytes,
                stable: stable.bytes,
                globals: m.globals,
                system: m.system,
                clock: m.clock,
            },
            number: m.number,
            state_hash,
            format: m.format,
            log,
            nonzero,
        })
    }

    /// Reads the module with this SHA-256 from `modules/`.
    pub fn read_module(&self, sha256: &str) -> Result<Vec<u8>, Error> {
        let path = self.modules.join(format!("{sha256}.wasm"));
        let wasm = fs::read(&path).map_err(|e| io_err(&path, e))?;
        if sha256_hex(&wasm) != sha256 {
            return Err(corrupt(&path, "module hash differs from its name"));
        }
        Ok(wasm)
    }

    /// Takes the directory's exclusive lock (see [`super::lock`]), which must exist; waits for
    /// another process that holds it, calling `on_wait` first.
    pub fn lock(&self, on_wait: &mut dyn FnMut()) -> Result<DirLock, Error> {
        if !self.path.is_dir() {
            return Err(Error::State(StateError::NoCanister {
                path: self.path.clone(),
            }));
        }
        super::lock::lock(&self.path, on_wait)
    }

    /// Creates the directory if needed and takes its exclusive lock (see [`StateDir::lock`]).
    pub fn create_locked(&self, on_wait: &mut dyn FnMut()) -> Result<DirLock, Error> {
        fs::create_dir_all(&self.path).map_err(|e| io_err(&self.path, e))?;
        self.lock(on_wait)
    }

    /// Commits `state` as the new current state, atomically, writing every page (a full
    /// checkpoint) and no log record.
    pub fn save(&self, state: &CanisterState) -> Result<CheckpointStats, Error> {
        self.checkpoint(&Checkpoint {
            wasm: &state.wasm,
            stable_mode: state.stable_mode,
            heap_type: state.heap_type,
            heap: &state.heap,
            stable: &state.stable,
            globals: state.globals.clone(),
            system: &state.system,
            clock: &state.clock,
            state_hash: super::hash::state_hash_of(state),
            changed: Changed::All,
            log_record: None,
        })
    }

    /// Commits a new checkpoint, atomically, writing only the pages `cp.changed` names.
    ///
    /// With [`Changed::Pages`], every page that differs from the previous checkpoint must be
    /// listed (the write barrier's dirty set guarantees it); unlisted pages keep their previous
    /// bytes, and pages past the previous size read as zero.
    pub fn checkpoint(&self, cp: &Checkpoint<'_>) -> Result<CheckpointStats, Error> {
        let prepared = self.prepare(cp)?;
        self.publish(prepared, cp)
    }

    /// The first half of [`checkpoint`](Self::checkpoint): writes the checkpoint's page log and
    /// manifest, but does not switch `CURRENT` (the commit point). A subnet prepares every
    /// changed canister, commits its own manifest, then [`publish`](Self::publish)es each.
    pub fn prepare(&self, cp: &Checkpoint<'_>) -> Result<Prepared, Error> {
        fs::create_dir_all(&self.path).map_err(|e| io_err(&self.path, e))?;
        let module_sha256 = self.write_module(cp.wasm)?;
        let previous = match self.current_manifest() {
            Ok(m) => {
                self.recover(&m)?;
                Some(m)
            }
            Err(Error::State(StateError::NoCanister { .. })) => None,
            Err(e) => return Err(e),
        };
        let number = previous.as_ref().map_or(0, |m| m.number + 1);
        let changed = match (cp.changed, &previous) {
            (_, None) => Changed::All,
            (c, Some(_)) => c,
        };
        let fresh = matches!(changed, Changed::All);

        // Which pages to log (comparing with the page files needs a view of them).
        let (heap_change, stable_change) = match changed {
            Changed::All => (MemoryChange::All, MemoryChange::All),
            Changed::Compare => (MemoryChange::Compare, MemoryChange::Compare),
            Changed::Upgrade { stable } => (MemoryChange::Compare, MemoryChange::Pages(stable)),
            Changed::Pages { heap, stable } => {
                (MemoryChange::Pages(heap), MemoryChange::Pages(stable))
            }
        };
        let pages_of = |name: &str, memory: &[u8], change: MemoryChange<'_>| {
            let view = match change {
                MemoryChange::Compare => Some(PageView::open(&self.path.join(name))?),
                _ => None,
            };
            let old = view.as_ref().map_or(&[][..], |v| v.bytes());
            Ok::<_, Error>(pages_to_log(memory, change, old))
        };
        let heap_pages = pages_of(HEAP_FILE, cp.heap, heap_change)?;
        let stable_pages = pages_of(STABLE_FILE, cp.stable, stable_change)?;

        // 0. Where the log record goes (the log exists and its tail is clean from here on).
        let (log, append) = if self.logged {
            let prepared = log_file::prepare(
                &self.path,
                previous.is_none(),
                previous.as_ref().and_then(|m| m.log.as_ref()),
            )?;
            let record = cp.log_record.unwrap_or_default();
            let log = prepared.with_record(record);
            let append = (!record.is_empty()).then(|| (prepared.bytes, record.to_string()));
            (Some(log), append)
        } else {
            (None, None)
        };

        // 1. The write-ahead log.
        let wal_name = format!("wal-{number}.bin");
        let wal_path = self.path.join(&wal_name);
        let count = (heap_pages.len() + stable_pages.len()) as u64;
        let sha256 = {
            let file = File::create(&wal_path).map_err(|e| io_err(&wal_path, e))?;
            let mut out = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hasher: Sha256::new(),
            };
            let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(|e| io_err(&wal_path, e));
            write(WAL_MAGIC)?;
            write(&count.to_le_bytes())?;
            let mut padded = [0u8; PAGE_SIZE];
            for (memory, bytes, pages) in
                [(0u8, cp.heap, &heap_pages), (1, cp.stable, &stable_pages)]
            {
                for &p in pages {
                    let page = page_bytes(bytes, p);
                    padded[..page.len()].copy_from_slice(page);
                    padded[page.len()..].fill(0);
                    write(&[memory])?;
                    write(&p.to_le_bytes())?;
                    write(&padded)?;
                }
            }
            let HashingWriter { inner, hasher } = out;
            let file = inner
                .into_inner()
                .map_err(|e| io_err(&wal_path, e.into_error()))?;
            file.sync_all().map_err(|e| io_err(&wal_path, e))?;
            hex::encode(hasher.finalize())
        };
        super::checkpoint_step("wal");

        // 2. The manifest.
        let manifest = Manifest {
            format: FORMAT,
            number,
            module_sha256,
            stable_mode: cp.stable_mode,
            heap_type: cp.heap_type,
            heap_bytes: cp.heap.len() as u64,
            stable_bytes: cp.stable.len() as u64,
            globals: cp.globals.clone(),
            system: cp.system.clone(),
            clock: cp.clock.clone(),
            state_hash: Some(hex::encode(cp.state_hash)),
            wal: WalRef {
                file: wal_name.clone(),
                sha256,
                pages: count,
                fresh,
            },
            log,
        };
        let name = format!("checkpoint-{number}.json");
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        replace_synced(&self.path, &name, &json)?;
        super::checkpoint_step("manifest");
        let size_changed = |old: Option<u64>, new: usize| old != Some(new as u64);
        Ok(Prepared {
            heap_changed: size_changed(previous.as_ref().map(|m| m.heap_bytes), cp.heap.len()),
            stable_changed: size_changed(
                previous.as_ref().map(|m| m.stable_bytes),
                cp.stable.len(),
            ),
            manifest,
            name,
            heap_pages,
            stable_pages,
            append,
        })
    }

    /// The second half of [`checkpoint`](Self::checkpoint): switches `CURRENT` to the prepared
    /// checkpoint, writes its pages into the page files and appends its log record. `cp` must
    /// be the state [`prepare`](Self::prepare) was given.
    pub fn publish(
        &self,
        prepared: Prepared,
        cp: &Checkpoint<'_>,
    ) -> Result<CheckpointStats, Error> {
        let Prepared {
            manifest,
            name,
            heap_pages,
            stable_pages,
            heap_changed,
            stable_changed,
            append,
        } = prepared;
        // 3. The commit point: CURRENT names the new checkpoint.
        replace_synced(&self.path, CURRENT, name.as_bytes())?;
        super::checkpoint_step("current");

        // 4. The pages into the page files (repeated by `recover` if this is interrupted).
        self.apply(
            &manifest,
            heap_pages.iter().map(|&p| (p, page_bytes(cp.heap, p))),
            stable_pages.iter().map(|&p| (p, page_bytes(cp.stable, p))),
            heap_changed,
            stable_changed,
        )?;
        super::checkpoint_step("applied");
        // 5. The log record (appended again by `recover` if this is interrupted).
        if let Some((at, record)) = &append {
            log_file::append_at(&self.path, *at, record.as_bytes())?;
            super::checkpoint_step("record");
        }
        self.remove_stale(manifest.number);
        let count = manifest.wal.pages;
        Ok(CheckpointStats {
            number: manifest.number,
            pages_written: count,
            log_bytes: (WAL_MAGIC.len() + 8) as u64 + count * RECORD_BYTES as u64,
            log: match &manifest.log {
                Some(log) => Some(log.position(&self.path.join(&name))?),
                None => None,
            },
        })
    }

    /// Stores `wasm` in the modules directory (content-addressed) and returns its SHA-256.
    pub fn write_module(&self, wasm: &[u8]) -> Result<String, Error> {
        let sha = sha256_hex(wasm);
        let modules = self.modules.clone();
        fs::create_dir_all(&modules).map_err(|e| io_err(&modules, e))?;
        let path = modules.join(format!("{sha}.wasm"));
        if !path.exists() {
            let tmp = modules.join(format!("{sha}.wasm.tmp"));
            write_synced(&tmp, wasm)?;
            fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
            sync_dir(&modules)?;
        }
        Ok(sha)
    }

    /// Removes the manifests and logs of checkpoints older than `keep` and leftovers of
    /// interrupted ones (best effort: leftovers are harmless). Never removes what `CURRENT`
    /// names (read again here), nor anything numbered above `keep`.
    fn remove_stale(&self, keep: u64) {
        let current = fs::read_to_string(self.path.join(CURRENT)).ok();
        let live = current
            .as_deref()
            .map(str::trim)
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok());
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let number = name
                .strip_prefix("checkpoint-")
                .and_then(|n| {
                    n.strip_suffix(".json")
                        .or_else(|| n.strip_suffix(".json.tmp"))
                })
                .or_else(|| {
                    name.strip_prefix("wal-")
                        .and_then(|n| n.strip_suffix(".bin"))
                })
                .and_then(|n| n.parse::<u64>().ok());
            let stale = number.is_some_and(|n| n < keep && Some(n) != live);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A writer that hashes what it writes.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
