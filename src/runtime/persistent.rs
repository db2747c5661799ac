//! A canister that lives in a state directory: every message that changes it is committed to
//! disk, together with its log record, before its outcome is returned.
//!
//! A persistent canister holds the directory's exclusive lock ([`StateDir::lock`]) from open to
//! drop: a second process that opens the directory meanwhile waits, printing one line on
//! stderr (`waiting for <dir>: another canister-vm process holds it`).

use std::path::Path;

use super::canister::{Canister, CanisterConfig, MessageInput, Outcome};
use crate::error::{Error, StateError};
use crate::replay::Message;
use crate::state::{
    ANONYMOUS, Changed, Checkpoint, CheckpointStats, DirLock, FORMAT_2, LogPosition, StateDir,
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

/// A failed install: its outcome, or the error.
type Failed = Result<Outcome, Error>;

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
                failed.map(|outcome| (None, outcome))
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
            return Err(Err(Error::State(StateError::AlreadyInstalled {
                path: dir.path().to_path_buf(),
            })));
        }
        let controller = input.caller.clone().unwrap_or_else(|| ANONYMOUS.to_vec());
        let mut canister = match Canister::create(wasm, config, controller).map_err(Err)? {
            Ok(c) => c,
            Err(reject) => {
                return Err(Ok(Outcome {
                    result: Err(reject),
                    instructions: 0,
                    debug_log: Vec::new(),
                    dirty: Default::default(),
                }));
            }
        };
        let outcome = canister.init(arg, input).map_err(Err)?;
        if outcome.result.is_err() {
            return Err(Ok(outcome));
        }
        let module = canister.wasm().to_vec();
        let logged = Message::install(&module, arg, input);
        let stats = checkpoint(dir, &canister, Changed::All, &logged, &outcome).map_err(Err)?;
        Ok((canister, outcome, stats, stats.log))
    }

    /// Opens the canister stored in `dir` (repairing an interrupted checkpoint first), and
    /// checks that the state it rebuilt has the state hash the checkpoint recorded. Holds the
    /// directory's lock until dropped (waiting for another process that holds it).
    pub fn open(dir: &Path, config: CanisterConfig) -> Result<PersistentCanister, Error> {
        let dir = StateDir::new(dir);
        let lock = dir.lock(&mut waiting(dir.path()))?;
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
