//! A canister that lives in a state directory: every message that changes it is committed to
//! disk, together with its log record, before its outcome is returned.
//!
//! A persistent canister holds the directory's exclusive lock ([`StateDir::lock`]) from open to
//! drop: a second process that opens the directory meanwhile waits, printing one line on
//! stderr (`waiting for <dir>: another canister-vm process holds it`).

use std::collections::BTreeMap;
use std::path::Path;

use candid::Principal;
use candid::utils::{ArgumentDecoder, ArgumentEncoder};

use super::call::{self, CallError};
use super::canister::{Canister, CanisterConfig, MessageInput, Outcome};
use super::subnet::{Counters, Subnet, Unsaved, canister_id};
use crate::error::{Error, StateError};
use crate::replay::{Applied, Caller, Kind, Message, Record};
use crate::state::subnet_dir::{
    CanisterEntry, CodeRef, SUBNET_FORMAT, SubnetCommit, SubnetCommitStats, canister_dir_name,
};
use crate::state::{
    ANONYMOUS, Changed, Checkpoint, CheckpointStats, DirLock, FORMAT_2, LogPosition, StateDir,
    SubnetDir, SubnetFacts, SystemState,
};

/// A [`Canister`] backed by a [`StateDir`].
///
/// Every committed message is followed by a delta checkpoint of the pages it dirtied (the write
/// barrier's dirty set), so persisting costs O(dirty pages), not O(memory size).
#[derive(Debug)]
pub struct PersistentCanister {
    dir: StateDir,
    canister: Canister,
    last_checkpoint: CheckpointStats,
    log: Option<LogPosition>,
    _lock: DirLock,
}

/// Prints that this process waits for another one's lock on `dir`.
fn waiting(dir: &Path) -> impl FnMut() + '_ {
    move || {
        eprintln!(
            "waiting for {}: another canister-vm process holds it",
            dir.display()
        )
    }
}

/// Commits `canister`'s current state to `dir`, writing the pages `changed` names, with the log
/// record of `message` (just executed with `outcome`) as part of the commit.
fn checkpoint(
    dir: &StateDir,
    canister: &Canister,
    changed: Changed<'_>,
    message: &Message<'_>,
    outcome: &Outcome,
) -> Result<CheckpointStats, Error> {
    let record = crate::replay::record_line(dir.path(), message, canister, outcome)?;
    dir.checkpoint(&Checkpoint {
        wasm: canister.wasm(),
        stable_mode: canister.config().get_stable_mode(),
        heap_type: canister.heap_type(),
        heap: canister.heap(),
        stable: canister.stable(),
        globals: canister.globals(),
        system: canister.system(),
        clock: canister.clock(),
        state_hash: canister.state_hash(),
        changed,
        log_record: Some(&record),
    })
}

/// A failed install: its outcome, or the error (boxed: an outcome is large).
type Failed = Box<Result<Outcome, Error>>;

impl PersistentCanister {
    /// Installs `wasm` into the empty state directory `dir` and runs `canister_init(arg)`.
    ///
    /// Returns the outcome of `canister_init`; on a reject nothing is written (a directory this
    /// call created is removed again) and no canister is returned.
    pub fn install(
        dir: &Path,
        wasm: Vec<u8>,
        arg: &[u8],
        config: CanisterConfig,
        input: &MessageInput,
    ) -> Result<(Option<PersistentCanister>, Outcome), Error> {
        let dir = StateDir::new(dir);
        let created = !dir.path().exists();
        let lock = dir.create_locked(&mut waiting(dir.path()))?;
        match Self::install_locked(&dir, wasm, arg, config, input) {
            Ok((canister, outcome, last_checkpoint, log)) => Ok((
                Some(PersistentCanister {
                    dir,
                    canister,
                    last_checkpoint,
                    log,
                    _lock: lock,
                }),
                outcome,
            )),
            Err(failed) => {
                if created {
                    crate::state::lock::remove_lock_file(dir.path());
                    drop(lock);
                    let _ = std::fs::remove_dir(dir.path());
                }
                (*failed).map(|outcome| (None, outcome))
            }
        }
    }

    /// [`install`](Self::install) with the lock held.
    fn install_locked(
        dir: &StateDir,
        wasm: Vec<u8>,
        arg: &[u8],
        config: CanisterConfig,
        input: &MessageInput,
    ) -> Result<(Canister, Outcome, CheckpointStats, Option<LogPosition>), Failed> {
        if dir.exists() {
            return Err(Box::new(Err(Error::State(StateError::AlreadyInstalled {
                path: dir.path().to_path_buf(),
            }))));
        }
        let controller = input
            .caller
            .unwrap_or_else(|| Principal::from_slice(&ANONYMOUS));
        let mut canister = match Canister::create(wasm, config, controller) {
            Ok(c) => c,
            Err(Error::StartTrapped(reject)) => {
                return Err(Box::new(Ok(Outcome::rejected(reject))));
            }
            Err(e) => return Err(Box::new(Err(e))),
        };
        let outcome = canister.init(arg, input).map_err(|e| Box::new(Err(e)))?;
        if outcome.result.is_err() {
            return Err(Box::new(Ok(outcome)));
        }
        let module = canister.wasm().to_vec();
        let logged = Message::install(&module, arg, input);
        let stats = checkpoint(dir, &canister, Changed::All, &logged, &outcome)
            .map_err(|e| Box::new(Err(e)))?;
        Ok((canister, outcome, stats, stats.log))
    }

    /// Opens the canister stored in `dir` (repairing an interrupted checkpoint first), and
    /// checks that the state it rebuilt has the state hash the checkpoint recorded. Holds the
    /// directory's lock until dropped (waiting for another process that holds it).
    pub fn open(dir: &Path, config: CanisterConfig) -> Result<PersistentCanister, Error> {
        let dir = StateDir::new(dir);
        let lock = dir.lock(&mut waiting(dir.path()))?;
        if SubnetDir::new(dir.path()).is_subnet() {
            return Err(Error::Input(format!(
                "{}: a subnet directory (state format {SUBNET_FORMAT}); open it as a \
                 PersistentSubnet",
                dir.path().display()
            )));
        }
        let loaded = dir.load_checked()?;
        let (number, expected, format, log) =
            (loaded.number, loaded.state_hash, loaded.format, loaded.log);
        let canister = Canister::from_sparse_state(loaded.state, &loaded.nonzero, config)?;
        // Format 2 recorded the memory hash; format 3 the state hash over everything.
        let got = if format == FORMAT_2 {
            canister.memory_hash()
        } else {
            canister.state_hash()
        };
        if got != expected {
            return Err(Error::State(StateError::Corrupt {
                path: dir.path().join(format!("checkpoint-{number}.json")),
                why: format!(
                    "the state rebuilt from it and the page files hashes to {}, the checkpoint \
                     recorded {}: a file of the state was changed",
                    hex::encode(got),
                    hex::encode(expected)
                ),
            }));
        }
        Ok(PersistentCanister {
            dir,
            canister,
            last_checkpoint: CheckpointStats {
                number,
                ..CheckpointStats::default()
            },
            log,
            _lock: lock,
        })
    }

    /// What the last checkpoint wrote (all zero right after opening).
    pub fn last_checkpoint(&self) -> CheckpointStats {
        self.last_checkpoint
    }

    /// Where the message log stood at the last checkpoint (`None` when opened from a format-2
    /// directory and nothing was committed since): replaying the directory checks its log
    /// against it.
    pub fn log_position(&self) -> Option<LogPosition> {
        self.log
    }

    /// The running canister.
    pub fn canister(&self) -> &Canister {
        &self.canister
    }

    /// The state directory.
    pub fn dir(&self) -> &StateDir {
        &self.dir
    }

    /// Calls an update method and commits the result with its log record (a reject commits
    /// only the clock).
    pub fn update(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let outcome = self.canister.update(method, arg, input)?;
        // A message that did not commit reports no dirty pages: only the clock changes.
        self.last_checkpoint = checkpoint(
            &self.dir,
            &self.canister,
            Changed::Pages {
                heap: &outcome.dirty.heap,
                stable: &outcome.dirty.stable,
            },
            &Message::update(method, arg, input),
            &outcome,
        )?;
        self.log = self.last_checkpoint.log;
        Ok(outcome)
    }

    /// Calls a query method; the state is not written, only the message log gets its record.
    pub fn query(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let outcome = self.canister.query(method, arg, input)?;
        let logged = Message::query(method, arg, input);
        crate::replay::log_message(self.dir.path(), &logged, &self.canister, &outcome)?;
        Ok(outcome)
    }

    /// Upgrades to `wasm` and commits the result with its log record (a failed upgrade commits
    /// only the clock).
    pub fn upgrade(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let module = wasm.clone();
        let (outcome, stable) = self.canister.upgrade_tracked(wasm, arg, input)?;
        // An upgrade replaces the heap wholesale (compared with the page files); stable memory
        // changed only where the hooks wrote.
        self.last_checkpoint = checkpoint(
            &self.dir,
            &self.canister,
            Changed::Upgrade { stable: &stable },
            &Message::upgrade(&module, arg, input),
            &outcome,
        )?;
        self.log = self.last_checkpoint.log;
        Ok(outcome)
    }
}

/// A [`Subnet`] backed by a [`SubnetDir`]: every message that changes it is committed, with
/// its log record, before its outcome is returned (see [`crate::state::subnet_dir`]).
///
/// Every message goes through [`PersistentSubnet::execute`] as a [`Record`] of its inputs; the
/// record is executed by [`crate::replay::apply`] — the same code a replay runs it with — and
/// committed with its outcome. Holds the directory's lock from open to drop.
#[derive(Debug)]
pub struct PersistentSubnet {
    dir: SubnetDir,
    subnet: Subnet,
    /// Names and canister directories by canister.
    meta: BTreeMap<Principal, Meta>,
    format: u32,
    log: Option<LogPosition>,
    last_commit: SubnetCommitStats,
    _lock: DirLock,
}

#[derive(Debug, Clone, Default)]
struct Meta {
    name: Option<String>,
    /// The canister directory and its live checkpoint, once it has code.
    code: Option<CodeRef>,
}

/// What [`PersistentSubnet::execute`] did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The record as logged (inputs completed, outcome filled in).
    pub record: Record,
    /// The message's own outcome and the canister it was for.
    pub applied: Applied,
    /// What the commit wrote (all zero for a query, or a message that changed nothing).
    pub commit: SubnetCommitStats,
}

impl PersistentSubnet {
    /// Opens the subnet in `dir` (a subnet directory, or a single-canister one), repairing an
    /// interrupted commit first, and checks that every canister it rebuilt has the state hash
    /// its checkpoint recorded. Waits for another process that holds the directory.
    pub fn open(path: &Path, config: CanisterConfig) -> Result<PersistentSubnet, Error> {
        let dir = SubnetDir::new(path);
        let lock = StateDir::new(path).lock(&mut waiting(path))?;
        let opened = dir.open()?;
        let seed = opened
            .facts
            .seed
            .clone()
            .unwrap_or_else(|| crate::certification::DEFAULT_SEED.to_vec());
        let mut subnet = Subnet::with_seed(config, &seed);
        subnet.set_counters(Counters {
            time: opened.facts.time,
            next_canister: opened.facts.next_canister,
            raw_rand_calls: opened.facts.raw_rand_calls,
        });
        let mut meta = BTreeMap::new();
        for c in opened.canisters {
            let id = Principal::from_text(&c.entry.id).map_err(|e| {
                Error::State(StateError::Corrupt {
                    path: path.to_path_buf(),
                    why: format!("canister id `{}`: {e}", c.entry.id),
                })
            })?;
            let state = match c.loaded {
                None => None,
                Some(loaded) => {
                    let (expected, format) = (loaded.state_hash, loaded.format);
                    let number = loaded.number;
                    let system = loaded.state.system.clone();
                    let config = subnet.canister_config(loaded.state.stable_mode);
                    let canister =
                        Canister::from_sparse_state(loaded.state, &loaded.nonzero, config)?;
                    let got = if format == FORMAT_2 {
                        canister.memory_hash()
                    } else {
                        canister.state_hash()
                    };
                    if got != expected {
                        let dir = c.entry.code.as_ref().map_or(".", |code| code.dir.as_str());
                        return Err(Error::State(StateError::Corrupt {
                            path: path.join(dir).join(format!("checkpoint-{number}.json")),
                            why: format!(
                                "the state rebuilt from it and the page files hashes to {}, \
                                 the checkpoint recorded {}: a file of the state was changed",
                                hex::encode(got),
                                hex::encode(expected)
                            ),
                        }));
                    }
                    Some((system, canister))
                }
            };
            let (system, canister) = match state {
                Some((system, canister)) => (system, Some(canister)),
                None => (
                    c.entry.system.clone().unwrap_or_else(|| {
                        let mut s = SystemState::new(Vec::new());
                        s.canister_id = id.as_slice().to_vec();
                        s
                    }),
                    None,
                ),
            };
            subnet.adopt(id, system, canister, c.entry.stopped);
            meta.insert(
                id,
                Meta {
                    name: c.entry.name.clone(),
                    code: c.entry.code.clone(),
                },
            );
        }
        Ok(PersistentSubnet {
            dir,
            subnet,
            meta,
            format: opened.format,
            log: opened.log,
            last_commit: SubnetCommitStats::default(),
            _lock: lock,
        })
    }

    /// Opens the subnet in `path`, or starts an empty one there (nothing is written until the
    /// first message commits; a directory this call created is removed again if none does).
    pub fn open_or_create(path: &Path, config: CanisterConfig) -> Result<PersistentSubnet, Error> {
        let dir = SubnetDir::new(path);
        if dir.exists() {
            return Self::open(path, config);
        }
        let lock = StateDir::new(path).create_locked(&mut waiting(path))?;
        Ok(PersistentSubnet {
            dir,
            subnet: Subnet::new(config),
            meta: BTreeMap::new(),
            format: SUBNET_FORMAT,
            log: None,
            last_commit: SubnetCommitStats::default(),
            _lock: lock,
        })
    }

    /// Whether anything is committed in the directory.
    pub fn is_empty(&self) -> bool {
        !self.dir.exists()
    }

    /// The running subnet.
    pub fn subnet(&self) -> &Subnet {
        &self.subnet
    }

    /// The subnet, without the directory (whose lock is released).
    pub fn into_subnet(self) -> Subnet {
        self.subnet
    }

    /// The directory.
    pub fn dir(&self) -> &SubnetDir {
        &self.dir
    }

    /// The directory's format when opened: [`SUBNET_FORMAT`], or 2 or 3 for a single-canister
    /// directory (which becomes a subnet directory at its next commit).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// Where the message log stood at the live commit.
    pub fn log_position(&self) -> Option<LogPosition> {
        self.log
    }

    /// What the last commit wrote.
    pub fn last_commit(&self) -> SubnetCommitStats {
        self.last_commit
    }

    /// The name canister `id` was installed with.
    pub fn name_of(&self, id: Principal) -> Option<&str> {
        self.meta.get(&id).and_then(|m| m.name.as_deref())
    }

    /// The canister called `name`, or with principal text `name`.
    pub fn resolve(&self, name: &str) -> Option<Principal> {
        if let Some((id, _)) = self
            .meta
            .iter()
            .find(|(_, m)| m.name.as_deref() == Some(name))
        {
            return Some(*id);
        }
        Principal::from_text(name).ok().filter(|p| {
            *p == Principal::management_canister() || self.subnet.system_state(*p).is_some()
        })
    }

    /// Installs `wasm` as a new canister (named `name`, controlled by `controller`) and runs
    /// `canister_init` with the Candid arguments `args` (a tuple: `()`, `(init,)`, ...);
    /// committed with its record. Returns the new canister's id.
    ///
    /// A module that is not valid, or a trap of the start function or of `canister_init`, is
    /// [`CallError::Rejected`] (method `install_code`) and commits nothing.
    pub fn install<A: ArgumentEncoder>(
        &mut self,
        wasm: Vec<u8>,
        args: A,
        controller: Principal,
        name: Option<&str>,
    ) -> Result<Principal, CallError> {
        let arg = call::encode(call::INSTALL_METHOD, args)?;
        call::install_answer(
            self.install_raw(wasm, &arg, controller, name)
                .map(|done| (done.applied.canister, done.applied.message.result)),
        )
    }

    /// [`install`](Self::install) with the init argument as bytes, returning what
    /// [`execute`](Self::execute) did. The new id is `executed.applied.canister` (`None` if
    /// the start function or `canister_init` trapped: nothing was committed).
    pub fn install_raw(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        controller: Principal,
        name: Option<&str>,
    ) -> Result<Executed, Error> {
        let mut record = Record::new(Kind::Install);
        record.caller = Some(Caller(controller.as_slice().to_vec()));
        record.name = name.map(str::to_string);
        self.execute(record, arg, Some(wasm))
    }

    /// An ingress update call of `method` on `canister` (or `aaaaa-aa`) from `caller`, with
    /// the Candid arguments `args`, its reply decoded as `R` (tuples, as for
    /// [`Subnet::update_call`]); every message it causes runs before it returns, and all of it
    /// is committed as one unit (a reject too: the log records it).
    pub fn update_call<A, R>(
        &mut self,
        canister: Principal,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError>
    where
        A: ArgumentEncoder,
        R: for<'a> ArgumentDecoder<'a>,
    {
        let arg = call::encode(method, args)?;
        let executed = self.update_call_raw(canister, method, &arg, caller)?;
        call::decode(method, executed.applied.message.result)
    }

    /// [`update_call`](Self::update_call) with the argument as bytes, returning what
    /// [`execute`](Self::execute) did (the answer is `executed.applied.message.result`).
    pub fn update_call_raw(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Executed, Error> {
        self.execute(
            Self::message(Kind::Update, canister, method, caller),
            arg,
            None,
        )
    }

    /// A query call (logged, not committed: it changes nothing) of `method` on `canister`
    /// from `caller`, with the Candid arguments `args`, its reply decoded as `R`.
    pub fn query_call<A, R>(
        &mut self,
        canister: Principal,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError>
    where
        A: ArgumentEncoder,
        R: for<'a> ArgumentDecoder<'a>,
    {
        let arg = call::encode(method, args)?;
        let executed = self.query_call_raw(canister, method, &arg, caller)?;
        call::decode(method, executed.applied.message.result)
    }

    /// [`query_call`](Self::query_call) with the argument as bytes, returning what
    /// [`execute`](Self::execute) did (the answer is `executed.applied.message.result`).
    pub fn query_call_raw(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Executed, Error> {
        self.execute(
            Self::message(Kind::Query, canister, method, caller),
            arg,
            None,
        )
    }

    /// Upgrades `canister` to `wasm` (`caller` must be a controller).
    pub fn upgrade(
        &mut self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Executed, Error> {
        let mut record = Record::new(Kind::Upgrade);
        record.canister = Some(Caller(canister.as_slice().to_vec()));
        record.caller = Some(Caller(caller.as_slice().to_vec()));
        self.execute(record, arg, Some(wasm))
    }

    /// Advances time by `seconds` and runs heartbeats and due timers (and what they cause).
    pub fn tick(&mut self, seconds: u64) -> Result<Executed, Error> {
        let mut record = Record::new(Kind::Tick);
        record.seconds = Some(seconds);
        self.execute(record, &[], None)
    }

    fn message(kind: Kind, canister: Principal, method: &str, caller: Principal) -> Record {
        let mut record = Record::new(kind);
        record.canister = Some(Caller(canister.as_slice().to_vec()));
        record.method = Some(method.to_string());
        record.caller = Some(Caller(caller.as_slice().to_vec()));
        record
    }

    /// Executes `record` (its inputs; `arg` is the argument and `wasm` the module of an
    /// install or upgrade) on the subnet and commits the result with the completed record:
    /// an install, update, upgrade or tick commits every canister it changed and the subnet's
    /// counters as one unit; a query appends its record only. A failed install, or a message
    /// that could not run (an invalid module), commits nothing.
    pub fn execute(
        &mut self,
        mut record: Record,
        arg: &[u8],
        wasm: Option<Vec<u8>>,
    ) -> Result<Executed, Error> {
        if record.kind == Kind::Install
            && let Some(name) = &record.name
            && self
                .meta
                .values()
                .any(|m| m.name.as_deref() == Some(name.as_str()))
        {
            return Err(Error::Input(format!(
                "{}: a canister named `{name}` exists already",
                self.dir.path().display()
            )));
        }
        // The module is stored once the message ran (also when its hooks failed: the log
        // names it); a module that is not valid, or a failed install, leaves nothing behind.
        let module = wasm.clone();
        if let Some(wasm) = &wasm {
            record.module = Some(crate::state::sha256_hex(wasm));
        }
        record.arg = arg.to_vec();
        record.caller.get_or_insert_with(Caller::anonymous);
        let applied =
            crate::replay::apply(&mut self.subnet, &record, arg, wasm).map_err(Error::Input)??;
        let failed_install = record.kind == Kind::Install && applied.canister.is_none();
        if let Some(module) = &module
            && !failed_install
        {
            self.dir.write_module(module)?;
        }
        record.time = Some(applied.time);
        if record.kind == Kind::Install {
            record.stable_mode = Some(record.stable_mode.unwrap_or_default());
            match applied.canister {
                Some(id) => record.canister = Some(Caller(id.as_slice().to_vec())),
                None => {
                    record.outcome = Some(applied.outcome.clone());
                    return Ok(Executed {
                        record,
                        applied,
                        commit: SubnetCommitStats::default(),
                    });
                }
            }
        }
        record.outcome = Some(applied.outcome.clone());
        let line = crate::replay::to_line(&record);
        let commit = if record.kind == Kind::Query && self.dir.exists() {
            crate::replay::append(self.dir.path(), &record)?;
            SubnetCommitStats::default()
        } else {
            if record.kind == Kind::Install
                && let (Some(id), Some(name)) = (applied.canister, &record.name)
            {
                self.meta.entry(id).or_default().name = Some(name.clone());
            }
            self.commit(Some(&line))?
        };
        self.last_commit = commit;
        Ok(Executed {
            record,
            applied,
            commit,
        })
    }

    /// Commits every canister changed since the last commit, the subnet's counters and
    /// `record`.
    fn commit(&mut self, record: Option<&str>) -> Result<SubnetCommitStats, Error> {
        let unsaved: BTreeMap<Principal, Unsaved> =
            self.subnet.take_unsaved().into_iter().collect();
        let ids = self.subnet.canister_ids();
        self.meta.retain(|id, _| ids.contains(id));
        // The pages each changed canister wrote, as lists the checkpoints borrow.
        let pages: BTreeMap<Principal, (Vec<u64>, Vec<u64>)> = unsaved
            .iter()
            .map(|(id, u)| {
                (
                    *id,
                    (
                        u.heap.iter().copied().collect(),
                        u.stable.iter().copied().collect(),
                    ),
                )
            })
            .collect();
        let mut entries = Vec::new();
        let mut changed = Vec::new();
        for id in &ids {
            let meta = self.meta.entry(*id).or_default();
            let text = id.to_text();
            let canister = self.subnet.canister(*id);
            if canister.is_none() {
                meta.code = None;
            }
            let code = canister.map(|_| {
                meta.code.clone().unwrap_or_else(|| CodeRef {
                    dir: canister_dir_name(*id == canister_id(0), &text),
                    checkpoint: 0,
                })
            });
            if let (Some(c), Some(u)) = (canister, unsaved.get(id)) {
                let (heap, stable) = &pages[id];
                let change = if u.all || meta.code.is_none() {
                    Changed::All
                } else if u.heap_replaced {
                    Changed::Upgrade { stable }
                } else {
                    Changed::Pages { heap, stable }
                };
                changed.push((
                    entries.len(),
                    Checkpoint {
                        wasm: c.wasm(),
                        stable_mode: c.config().get_stable_mode(),
                        heap_type: c.heap_type(),
                        heap: c.heap(),
                        stable: c.stable(),
                        globals: c.globals(),
                        system: c.system(),
                        clock: c.clock(),
                        state_hash: c.state_hash(),
                        changed: change,
                        log_record: None,
                    },
                ));
            }
            entries.push(CanisterEntry {
                id: text,
                name: meta.name.clone(),
                stopped: self.subnet.is_stopped(*id).unwrap_or(false),
                system: match canister {
                    None => self.subnet.system_state(*id).cloned(),
                    Some(_) => None,
                },
                code,
            });
        }
        let counters = self.subnet.counters();
        let seed = self.subnet.seed();
        let facts = SubnetFacts {
            seed: (seed != crate::certification::DEFAULT_SEED).then(|| seed.to_vec()),
            time: counters.time,
            next_canister: counters.next_canister,
            raw_rand_calls: counters.raw_rand_calls,
        };
        let (stats, committed) = self.dir.commit(SubnetCommit {
            facts: &facts,
            canisters: entries,
            changed,
            log_record: record,
        })?;
        for entry in committed {
            if let Ok(id) = Principal::from_text(&entry.id) {
                self.meta.entry(id).or_default().code = entry.code;
            }
        }
        self.log = stats.log;
        self.format = SUBNET_FORMAT;
        Ok(stats)
    }
}
