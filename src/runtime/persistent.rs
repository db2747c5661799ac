//! A canister that lives in a state directory: every message that changes it is committed to
//! disk before its outcome is returned.

use std::path::Path;

use super::canister::{Canister, CanisterConfig, MessageInput, Outcome};
use crate::error::{Error, StateError};
use crate::state::{ANONYMOUS, StateDir};

/// A [`Canister`] backed by a [`StateDir`].
#[derive(Debug)]
pub struct PersistentCanister {
    dir: StateDir,
    canister: Canister,
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
        dir.save(&canister.to_state())?;
        let logged = crate::replay::Message::install(canister.wasm(), arg, input);
        crate::replay::log_message(dir.path(), &logged, &canister, &outcome)?;
        Ok((Some(PersistentCanister { dir, canister }), outcome))
    }

    /// Opens the canister stored in `dir`.
    pub fn open(dir: &Path, config: CanisterConfig) -> Result<PersistentCanister, Error> {
        let dir = StateDir::new(dir);
        let state = dir.load()?;
        let canister = Canister::from_state(state, config)?;
        Ok(PersistentCanister { dir, canister })
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
        self.dir.save(&self.canister.to_state())?;
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
        let outcome = self.canister.upgrade(wasm, arg, input)?;
        self.dir.save(&self.canister.to_state())?;
        let logged = crate::replay::Message::upgrade(&module, arg, input);
        crate::replay::log_message(self.dir.path(), &logged, &self.canister, &outcome)?;
        Ok(outcome)
    }
}
