//! A canister that lives in a state directory: every message that changes it is committed to
//! disk before its outcome is returned.

use std::path::Path;

use super::canister::{Canister, CanisterConfig, MessageInput, Outcome};
use crate::error::{Error, StateError};
use crate::state::{ANONYMOUS, Changed, Checkpoint, CheckpointStats, StateDir};

/// A [`Canister`] backed by a [`StateDir`].
///
/// Every committed message is followed by a delta checkpoint of the pages it dirtied (the write
/// barrier's dirty set), so persisting costs O(dirty pages), not O(memory size).
#[derive(Debug)]
pub struct PersistentCanister {
    dir: StateDir,
    canister: Canister,
    last_checkpoint: CheckpointStats,
}

/// Commits `canister`'s current state to `dir`, writing the pages `changed` names.
fn checkpoint(
    dir: &StateDir,
    canister: &Canister,
    changed: Changed<'_>,
) -> Result<CheckpointStats, Error> {
    dir.checkpoint(&Checkpoint {
        wasm: canister.wasm(),
        stable_mode: canister.config().get_stable_mode(),
        heap_type: canister.heap_type(),
        heap: canister.heap(),
        stable: canister.stable(),
        globals: canister.globals(),
        system: canister.system(),
        clock: canister.clock(),
        state_hash: Some(canister.state_hash()),
        changed,
    })
}

impl PersistentCanister {
    /// Installs `wasm` into the empty state directory `dir` and runs `canister_init(arg)`.
    ///
    /// Returns the outcome of `canister_init`; on a reject nothing is written and no canister is
    /// returned.
    pub fn install(
        dir: &Path,
        wasm: Vec<u8>,
        arg: &[u8],
        config: CanisterConfig,
        input: &MessageInput,
    ) -> Result<(Option<PersistentCanister>, Outcome), Error> {
        let dir = StateDir::new(dir);
        if dir.exists() {
            return Err(Error::State(StateError::AlreadyInstalled {
                path: dir.path().to_path_buf(),
            }));
        }
        let controller = input.caller.clone().unwrap_or_else(|| ANONYMOUS.to_vec());
        let mut canister = match Canister::create(wasm, config, controller)? {
            Ok(c) => c,
            Err(reject) => {
                let outcome = Outcome {
                    result: Err(reject),
                    instructions: 0,
                    debug_log: Vec::new(),
                    dirty: Default::default(),
                };
                return Ok((None, outcome));
            }
        };
        let outcome = canister.init(arg, input)?;
        if outcome.result.is_err() {
            return Ok((None, outcome));
        }
        let last_checkpoint = checkpoint(&dir, &canister, Changed::All)?;
        let logged = crate::replay::Message::install(canister.wasm(), arg, input);
        crate::replay::log_message(dir.path(), &logged, &canister, &outcome)?;
        Ok((
            Some(PersistentCanister {
                dir,
                canister,
                last_checkpoint,
            }),
            outcome,
        ))
    }

    /// Opens the canister stored in `dir` (repairing an interrupted checkpoint first), and
    /// checks that the state it rebuilt has the state hash the checkpoint recorded.
    pub fn open(dir: &Path, config: CanisterConfig) -> Result<PersistentCanister, Error> {
        let dir = StateDir::new(dir);
        let loaded = dir.load_checked()?;
        let canister = Canister::from_sparse_state(loaded.state, &loaded.nonzero, config)?;
        if let Some(expected) = loaded.state_hash {
            let got = canister.state_hash();
            if got != expected {
                return Err(Error::State(StateError::Corrupt {
                    path: dir
                        .path()
                        .join(format!("checkpoint-{}.json", loaded.number)),
                    why: format!(
                        "the state rebuilt from the page files hashes to {}, the checkpoint recorded {}",
                        hex::encode(got),
                        hex::encode(expected)
                    ),
                }));
            }
        }
        Ok(PersistentCanister {
            dir,
            canister,
            last_checkpoint: CheckpointStats {
                number: loaded.number,
                ..CheckpointStats::default()
            },
        })
    }

    /// What the last checkpoint wrote (all zero right after opening).
    pub fn last_checkpoint(&self) -> CheckpointStats {
        self.last_checkpoint
    }

    /// The running canister.
    pub fn canister(&self) -> &Canister {
        &self.canister
    }

    /// The state directory.
    pub fn dir(&self) -> &StateDir {
        &self.dir
    }

    /// Calls an update method and commits the result (a reject commits only the clock).
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
        )?;
        let logged = crate::replay::Message::update(method, arg, input);
        crate::replay::log_message(self.dir.path(), &logged, &self.canister, &outcome)?;
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
        let logged = crate::replay::Message::query(method, arg, input);
        crate::replay::log_message(self.dir.path(), &logged, &self.canister, &outcome)?;
        Ok(outcome)
    }

    /// Upgrades to `wasm` and commits the result (a failed upgrade commits only the clock).
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
        )?;
        let logged = crate::replay::Message::upgrade(&module, arg, input);
        crate::replay::log_message(self.dir.path(), &logged, &self.canister, &outcome)?;
        Ok(outcome)
    }
}
