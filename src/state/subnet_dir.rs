//! A subnet's state directory (format 4): many canisters, one commit point, one message log.
//!
//! Layout (on top of the canister files, see [`StateDir`]):
//!
//! ```text
//! <dir>/SUBNET                    name of the live subnet manifest, replaced atomically
//! <dir>/subnet-<n>.json           the subnet's counters and canisters, and the log position
//! <dir>/messages.jsonl            the message log of the whole subnet
//! <dir>/modules/<sha256>.wasm     every module ever installed on the subnet
//! <dir>/CURRENT, heap.pages, ...  the first canister's files (as in a single-canister directory)
//! <dir>/canisters/<principal>/    the files of every other canister that has code
//! <dir>/interfaces/<principal>.did  a Candid interface given with `install --did` (optional)
//! ```
//!
//! An interface file is the CLI's note of which `.did` types a canister's calls: it is written
//! after the commit of the install or upgrade that named it (atomically, on its own), is not
//! part of the subnet's state or hash, and replay does not read it.
//!
//! Every canister with code has a canister directory of its own ([`StateDir::member`]), whose
//! checkpoints carry no log. A commit first *prepares* a checkpoint of every canister the
//! message changed (page log and manifest written, `CURRENT` not switched), then writes the
//! subnet manifest, which names each canister's checkpoint and holds the message's log record,
//! and switches `SUBNET` by an atomic rename: the commit point of the whole subnet. Then each
//! canister's `CURRENT` is switched and its pages applied, and the record appended to the log.
//! A crash before the switch leaves the old subnet (the prepared checkpoints are unused and
//! overwritten by the next commit); after it, opening switches every canister still behind to
//! the checkpoint the manifest names and applies its page log again, and appends the record
//! if it was cut off. So a reader sees the subnet before or after a message, never a mix, even
//! when a message changed many canisters.
//!
//! A single-canister directory (format 2 or 3: `CURRENT` but no `SUBNET`) opens as a subnet of
//! one canister whose files are the directory's own; its first commit writes the first subnet
//! manifest, which continues the directory's log (its line count and hash chain) where the
//! canister's last checkpoint left it. Nothing is copied.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SystemState;
use super::dir::{Checkpoint, CheckpointStats, Loaded, StateDir};
use super::log_file::{self, LogPosition, LogRef};
use crate::error::{Error, StateError};

/// The subnet manifest format.
pub const SUBNET_FORMAT: u32 = 4;
const SUBNET: &str = "SUBNET";
/// Where canisters other than the first keep their files.
pub const CANISTERS_DIR: &str = "canisters";
const MODULES_DIR: &str = "modules";

/// A canister as the subnet manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanisterEntry {
    /// Its principal (text).
    pub id: String,
    /// The name it was installed with (`install --name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// It is stopped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Its code and memories: a canister directory and the checkpoint that is live there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeRef>,
    /// Its system state while it is empty (with code, the checkpoint holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemState>,
}

/// Where a canister's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRef {
    /// The canister directory, relative to the subnet directory (`.` for the first canister).
    pub dir: String,
    /// The checkpoint of that directory the subnet commits to.
    pub checkpoint: u64,
}

/// The subnet's own facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubnetFacts {
    /// The seed of the root key and of `raw_rand` (`None`: the default seed).
    pub seed: Option<Vec<u8>>,
    /// The clock (ns).
    pub time: u64,
    /// The number of the next canister id.
    pub next_canister: u64,
    /// `raw_rand` calls answered so far.
    pub raw_rand_calls: u64,
}

/// `subnet-<n>.json`. Unknown keys are refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetManifest {
    format: u32,
    number: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::hex_option"
    )]
    seed: Option<Vec<u8>>,
    time: u64,
    next_canister: u64,
    raw_rand_calls: u64,
    canisters: Vec<CanisterEntry>,
    log: LogRef,
}

/// A canister as opened: its entry and, with code, its loaded state.
#[derive(Debug, Clone)]
pub struct OpenedCanister {
    /// The manifest's entry (for a single-canister directory: made up from its state).
    pub entry: CanisterEntry,
    /// The state, with the hash its checkpoint recorded.
    pub loaded: Option<Loaded>,
}

/// A subnet directory as opened.
#[derive(Debug, Clone)]
pub struct OpenedSubnet {
    /// `SUBNET_FORMAT`, or the single-canister format (2 or 3) of a directory without a subnet
    /// manifest yet.
    pub format: u32,
    /// The subnet's facts (for a single-canister directory: its clock, one canister allocated).
    pub facts: SubnetFacts,
    /// The canisters, in manifest order.
    pub canisters: Vec<OpenedCanister>,
    /// Where the log stood at the live commit (`None` for a format-2 directory).
    pub log: Option<LogPosition>,
}

/// What a commit writes.
#[derive(Debug)]
pub struct SubnetCommit<'a> {
    /// The subnet's facts after the message.
    pub facts: &'a SubnetFacts,
    /// Every canister after the message; `code.checkpoint` of a changed one is filled in.
    pub canisters: Vec<CanisterEntry>,
    /// The changed canisters: index into `canisters`, and their state.
    pub changed: Vec<(usize, Checkpoint<'a>)>,
    /// The message's log record (one JSON line with its newline); `None` adds none.
    pub log_record: Option<&'a str>,
}

/// What a commit wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubnetCommitStats {
    /// The subnet manifest's number.
    pub number: u64,
    /// 4 KiB pages the canisters' checkpoints wrote to their page logs, together.
    pub pages_written: u64,
    /// Bytes written to the page logs.
    pub log_bytes: u64,
    /// Where the message log stands after the record.
    pub log: Option<LogPosition>,
}

/// A subnet's state directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct SubnetDir {
    path: PathBuf,
}

/// The directory of the recorded Candid interfaces.
const INTERFACES: &str = "interfaces";

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

/// The directory of canister `id` (principal text): the first canister's is the subnet
/// directory itself.
pub fn canister_dir_name(first: bool, id: &str) -> String {
    if first {
        ".".to_string()
    } else {
        format!("{CANISTERS_DIR}/{id}")
    }
}

impl SubnetDir {
    /// A handle on the subnet directory at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SubnetDir { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory holds a subnet (or a single canister).
    pub fn exists(&self) -> bool {
        self.path.join(SUBNET).is_file() || StateDir::new(&self.path).exists()
    }

    /// Whether the directory has a subnet manifest (format 4).
    pub fn is_subnet(&self) -> bool {
        self.path.join(SUBNET).is_file()
    }

    /// The canister directory `dir` (relative) of this subnet.
    pub fn canister_dir(&self, dir: &str) -> StateDir {
        StateDir::member(self.resolve(dir), self.path.join(MODULES_DIR))
    }

    fn resolve(&self, dir: &str) -> PathBuf {
        if dir == "." {
            self.path.clone()
        } else {
            self.path.join(dir)
        }
    }

    /// The Candid interface recorded for `canister` (`interfaces/<principal>.did`), if any.
    pub fn interface(&self, canister: &str) -> Result<Option<String>, Error> {
        let path = self.path.join(INTERFACES).join(format!("{canister}.did"));
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Records (atomically) or, with `None`, removes the Candid interface of `canister`.
    pub fn set_interface(&self, canister: &str, text: Option<&str>) -> Result<(), Error> {
        let dir = self.path.join(INTERFACES);
        let name = format!("{canister}.did");
        match text {
            Some(text) => {
                fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
                super::dir::replace_synced(&dir, &name, text.as_bytes())
            }
            None => match fs::remove_file(dir.join(&name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(&dir.join(&name), e)),
            },
        }
    }

    /// Stores a module in the subnet's `modules/` (every installed or upgraded module is kept,
    /// so that the log replays).
    pub fn write_module(&self, wasm: &[u8]) -> Result<String, Error> {
        self.canister_dir(".").write_module(wasm)
    }

    fn current(&self) -> Result<Option<SubnetManifest>, Error> {
        let pointer = self.path.join(SUBNET);
        let name = match fs::read_to_string(&pointer) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&pointer, e)),
        };
        let name = name.trim();
        let valid = name
            .strip_prefix("subnet-")
            .and_then(|n| n.strip_suffix(".json"))
            .is_some_and(|n| n.parse::<u64>().is_ok());
        if !valid {
            return Err(corrupt(
                &pointer,
                format!("`{name}` is not a subnet manifest name"),
            ));
        }
        let path = self.path.join(name);
        let text = fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
        let m: SubnetManifest = serde_json::from_str(&text)
            .map_err(|e| corrupt(&path, format!("invalid JSON: {e}")))?;
        if m.format != SUBNET_FORMAT {
            return Err(corrupt(
                &path,
                format!(
                    "format {} is not supported (expected {SUBNET_FORMAT})",
                    m.format
                ),
            ));
        }
        Ok(Some(m))
    }

    /// Opens the subnet: repairs an interrupted commit (canisters behind the manifest are
    /// brought up to it, a cut-off log record is appended again), checks the log's tail
    /// against the manifest and loads every canister. The caller holds the directory's lock.
    pub fn open(&self) -> Result<OpenedSubnet, Error> {
        let Some(m) = self.current()? else {
            return self.open_single();
        };
        let name = format!("subnet-{}.json", m.number);
        let mut canisters = Vec::new();
        for entry in &m.canisters {
            let loaded = match &entry.code {
                None => None,
                Some(code) => {
                    let dir = self.canister_dir(&code.dir);
                    dir.recover_to(code.checkpoint)?;
                    let loaded = dir.load_checked()?;
                    if loaded.number != code.checkpoint {
                        return Err(corrupt(
                            &self.path.join(&name),
                            format!(
                                "canister {} is at checkpoint {}, the manifest names {}",
                                entry.id, loaded.number, code.checkpoint
                            ),
                        ));
                    }
                    Some(loaded)
                }
            };
            canisters.push(OpenedCanister {
                entry: entry.clone(),
                loaded,
            });
        }
        log_file::repair(&self.path, &m.log, &name)?;
        Ok(OpenedSubnet {
            format: SUBNET_FORMAT,
            facts: SubnetFacts {
                seed: m.seed.clone(),
                time: m.time,
                next_canister: m.next_canister,
                raw_rand_calls: m.raw_rand_calls,
            },
            canisters,
            log: Some(m.log.position(&self.path.join(&name))?),
        })
    }

    /// Opens a single-canister directory as a subnet of that canister.
    fn open_single(&self) -> Result<OpenedSubnet, Error> {
        let dir = StateDir::new(&self.path);
        let loaded = dir.load_checked()?;
        let id = candid::Principal::try_from_slice(&loaded.state.system.canister_id)
            .map(|p| p.to_text())
            .map_err(|e| {
                corrupt(
                    &self.path,
                    format!("the canister id is not a principal: {e}"),
                )
            })?;
        let facts = SubnetFacts {
            seed: None,
            time: loaded.state.clock.last_time,
            next_canister: 1,
            raw_rand_calls: 0,
        };
        Ok(OpenedSubnet {
            format: loaded.format,
            facts,
            log: loaded.log,
            canisters: vec![OpenedCanister {
                entry: CanisterEntry {
                    id,
                    name: None,
                    stopped: false,
                    code: Some(CodeRef {
                        dir: ".".into(),
                        checkpoint: loaded.number,
                    }),
                    system: None,
                },
                loaded: Some(loaded),
            }],
        })
    }

    /// Commits a new state of the subnet atomically (see the module documentation).
    /// Returns what it wrote and the canister entries as committed (with the new checkpoint
    /// numbers).
    pub fn commit(
        &self,
        c: SubnetCommit<'_>,
    ) -> Result<(SubnetCommitStats, Vec<CanisterEntry>), Error> {
        fs::create_dir_all(&self.path).map_err(|e| io_err(&self.path, e))?;
        let previous = self.current()?;
        // The log continues from the last subnet manifest, or from the single canister's
        // checkpoint of a directory that becomes a subnet now; a new directory starts one.
        let (fresh, prev_log) = match &previous {
            Some(m) => (false, Some(m.log.clone())),
            None => {
                let root = StateDir::new(&self.path);
                if root.exists() {
                    (false, root.current_log()?)
                } else {
                    (true, None)
                }
            }
        };
        let number = previous.as_ref().map_or(0, |m| m.number + 1);
        let mut canisters = c.canisters;

        // 1. Every changed canister's checkpoint, up to its commit point.
        let mut prepared = Vec::new();
        for (index, cp) in &c.changed {
            let entry = canisters
                .get_mut(*index)
                .ok_or_else(|| Error::Internal(format!("commit: no canister {index}")))?;
            let code = entry.code.as_mut().ok_or_else(|| {
                Error::Internal(format!("commit: canister {} has no code entry", entry.id))
            })?;
            let dir = self.canister_dir(&code.dir);
            let p = dir.prepare(cp)?;
            code.checkpoint = p.number();
            prepared.push((dir, p, cp));
        }

        // 2. The subnet manifest with the log record.
        let log_prepared = log_file::prepare(&self.path, fresh, prev_log.as_ref())?;
        let record = c.log_record.unwrap_or_default();
        let log = log_prepared.with_record(record);
        let manifest = SubnetManifest {
            format: SUBNET_FORMAT,
            number,
            seed: c.facts.seed.clone(),
            time: c.facts.time,
            next_canister: c.facts.next_canister,
            raw_rand_calls: c.facts.raw_rand_calls,
            canisters,
            log: log.clone(),
        };
        let name = format!("subnet-{number}.json");
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        super::dir::replace_synced(&self.path, &name, &json)?;
        super::checkpoint_step("subnet-manifest");

        // 3. The commit point.
        super::dir::replace_synced(&self.path, SUBNET, name.as_bytes())?;
        super::checkpoint_step("subnet-current");

        // 4. Every canister switched to its new checkpoint (repeated on open if interrupted).
        let mut stats = SubnetCommitStats {
            number,
            ..SubnetCommitStats::default()
        };
        for (dir, p, cp) in prepared {
            let s: CheckpointStats = dir.publish(p, cp)?;
            stats.pages_written += s.pages_written;
            stats.log_bytes += s.log_bytes;
        }
        // 5. The record (appended again on open if interrupted).
        if !record.is_empty() {
            log_file::append_at(&self.path, log_prepared.bytes, record.as_bytes())?;
            super::checkpoint_step("record");
        }
        self.remove_stale(&manifest);
        stats.log = Some(log.position(&self.path.join(&name))?);
        Ok((stats, manifest.canisters))
    }

    /// Removes older subnet manifests and the directories of canisters the manifest no longer
    /// lists (deleted or uninstalled). Best effort: leftovers are harmless.
    fn remove_stale(&self, live: &SubnetManifest) {
        if let Ok(entries) = fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let stale = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("subnet-"))
                    .and_then(|n| {
                        n.strip_suffix(".json")
                            .or_else(|| n.strip_suffix(".json.tmp"))
                    })
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n < live.number);
                if stale {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let listed: Vec<String> = live
            .canisters
            .iter()
            .filter_map(|c| c.code.as_ref().map(|code| code.dir.clone()))
            .collect();
        if let Ok(entries) = fs::read_dir(self.path.join(CANISTERS_DIR)) {
            for entry in entries.flatten() {
                let name = format!("{CANISTERS_DIR}/{}", entry.file_name().to_string_lossy());
                if !listed.contains(&name) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}
