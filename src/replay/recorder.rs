//! Turning executed messages into records: [`capture`] (used by the persistent canister after
//! each message) and [`Recorder`], which records a [`Canister`] in process.

use super::log::Log;
use super::modules::Modules;
use super::record::{Caller, Kind, Record, RecordedOutcome};
use crate::error::Error;
use crate::runtime::{Canister, CanisterConfig, MessageInput, Outcome};
use crate::state::{ANONYMOUS, sha256_hex};

/// The inputs of an executed message, as the caller gave them (defaults not yet applied).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The kind.
    pub kind: Kind,
    /// The method (update and query).
    pub method: Option<&'a str>,
    /// The module (install and upgrade).
    pub module: Option<&'a [u8]>,
    /// The argument bytes.
    pub arg: &'a [u8],
    /// Caller and time as requested.
    pub input: &'a MessageInput,
}

impl<'a> Message<'a> {
    /// An install of `module` (`canister_init(arg)`).
    pub fn install(module: &'a [u8], arg: &'a [u8], input: &'a MessageInput) -> Self {
        Message {
            kind: Kind::Install,
            method: None,
            module: Some(module),
            arg,
            input,
        }
    }
    /// An update call.
    pub fn update(method: &'a str, arg: &'a [u8], input: &'a MessageInput) -> Self {
        Message {
            kind: Kind::Update,
            method: Some(method),
            module: None,
            arg,
            input,
        }
    }
    /// A query call.
    pub fn query(method: &'a str, arg: &'a [u8], input: &'a MessageInput) -> Self {
        Message {
            kind: Kind::Query,
            ..Message::update(method, arg, input)
        }
    }
    /// An upgrade to `module`.
    pub fn upgrade(module: &'a [u8], arg: &'a [u8], input: &'a MessageInput) -> Self {
        Message {
            kind: Kind::Upgrade,
            ..Message::install(module, arg, input)
        }
    }
}

/// The record of `message`, which `canister` has just executed with `outcome`.
///
/// Caller and time are the *effective* ones: the anonymous principal when none was given, and
/// the time the canister's clock used (read back from the clock after the message, or for a
/// query the time it saw). Configuration that differs from the defaults (the instruction limit
/// of this message's kind, the stable limit, metering off) is recorded too.
pub fn capture(message: &Message<'_>, canister: &Canister, outcome: &Outcome) -> Record {
    let kind = message.kind;
    let clock = canister.clock();
    let config = canister.config();
    let defaults = CanisterConfig::default();
    let time = match kind {
        Kind::Query => message.input.time.unwrap_or(clock.last_time),
        _ => clock.last_time,
    };
    let limits = config.get_instruction_limits();
    let limit = match kind {
        Kind::Install | Kind::Upgrade => limits.install,
        Kind::Update | Kind::Tick => limits.update,
        Kind::Query => limits.query,
    };
    let mut record = Record::new(kind);
    record.method = message.method.map(str::to_string);
    record.module = message.module.map(sha256_hex);
    record.stable_mode = (kind == Kind::Install).then(|| config.get_stable_mode());
    record.arg = message.arg.to_vec();
    record.caller =
        Some(Caller(message.input.caller.map_or_else(
            || ANONYMOUS.to_vec(),
            |p| p.as_slice().to_vec(),
        )));
    record.time = Some(time);
    record.instruction_limit = (limit != kind.default_limit()).then_some(limit);
    record.stable_limit_pages = (config.get_stable_limit_pages()
        != defaults.get_stable_limit_pages())
    .then(|| config.get_stable_limit_pages());
    record.metering = (!config.get_metering()).then_some(false);
    record.outcome = Some(RecordedOutcome::new(
        outcome,
        clock.messages,
        hex::encode(canister.state_hash()),
    ));
    record
}

/// The log line (newline included) of `message`, which `canister` has just executed with
/// `outcome`, for a checkpoint of state directory `dir` to commit; stores the message's module
/// in `<dir>/modules/` first (a failed upgrade's module is not part of the committed state,
/// but replay needs it).
pub fn record_line(
    dir: &std::path::Path,
    message: &Message<'_>,
    canister: &Canister,
    outcome: &Outcome,
) -> Result<String, Error> {
    if let Some(module) = message.module {
        super::modules::store(&dir.join(super::log::MODULES_DIR), module)?;
    }
    Ok(super::log::to_line(&capture(message, canister, outcome)))
}

/// Records the messages of a [`Canister`] in memory: the library counterpart of a state
/// directory's log. [`Recorder::into_log`] hands the log and its modules to
/// [`replay`](super::replay).
#[derive(Debug, Default)]
pub struct Recorder {
    canister: Option<Canister>,
    records: Vec<Record>,
    modules: Modules,
}

impl Recorder {
    /// A recorder with no canister yet.
    pub fn new() -> Self {
        Recorder::default()
    }

    /// Creates the canister from `wasm` and runs `canister_init(arg)`. As with a state
    /// directory, a failed install (start function or init traps) leaves the recorder empty and
    /// records nothing.
    pub fn install(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        config: CanisterConfig,
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        if self.canister.is_some() {
            return Err(Error::State(crate::error::StateError::AlreadyInstalled {
                path: "<recorder>".into(),
            }));
        }
        let controller = input
            .caller
            .unwrap_or_else(|| candid::Principal::from_slice(&ANONYMOUS));
        let mut canister = match Canister::create(wasm, config, controller) {
            Ok(c) => c,
            Err(Error::StartTrapped(reject)) => return Ok(Outcome::rejected(reject)),
            Err(e) => return Err(e),
        };
        let outcome = canister.init(arg, input)?;
        if outcome.result.is_ok() {
            let module = canister.wasm().to_vec();
            self.records.push(capture(
                &Message::install(&module, arg, input),
                &canister,
                &outcome,
            ));
            self.modules.insert(module);
            self.canister = Some(canister);
        }
        Ok(outcome)
    }

    fn canister_mut(&mut self) -> Result<&mut Canister, Error> {
        self.canister.as_mut().ok_or_else(|| {
            Error::State(crate::error::StateError::Restore {
                why: "the recorder has no canister: install one first".into(),
            })
        })
    }

    /// Calls update method `method` (see [`Canister::update`]) and records it.
    pub fn update(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let canister = self.canister_mut()?;
        let outcome = canister.update(method, arg, input)?;
        let record = capture(&Message::update(method, arg, input), canister, &outcome);
        self.records.push(record);
        Ok(outcome)
    }

    /// Calls query method `method` (see [`Canister::query`]) and records it.
    pub fn query(
        &mut self,
        method: &str,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let canister = self.canister_mut()?;
        let outcome = canister.query(method, arg, input)?;
        let record = capture(&Message::query(method, arg, input), canister, &outcome);
        self.records.push(record);
        Ok(outcome)
    }

    /// Upgrades to `wasm` (see [`Canister::upgrade`]) and records it.
    pub fn upgrade(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        input: &MessageInput,
    ) -> Result<Outcome, Error> {
        let module = wasm.clone();
        let canister = self.canister_mut()?;
        let outcome = canister.upgrade(wasm, arg, input)?;
        let record = capture(&Message::upgrade(&module, arg, input), canister, &outcome);
        self.records.push(record);
        self.modules.insert(module);
        Ok(outcome)
    }

    /// The running canister, once installed.
    pub fn canister(&self) -> Option<&Canister> {
        self.canister.as_ref()
    }

    /// The records so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The log and the modules it names.
    pub fn into_log(self) -> (Log, Modules) {
        (Log::from_records(self.records), self.modules)
    }
}

/// Appends the record of `message` (just executed by `canister` with `outcome`) to the log of
/// state directory `dir`, storing its module in `<dir>/modules/` first. Used for queries, which
/// commit no state; the records of the other messages are part of their checkpoint
/// ([`record_line`]).
pub fn log_message(
    dir: &std::path::Path,
    message: &Message<'_>,
    canister: &Canister,
    outcome: &Outcome,
) -> Result<(), Error> {
    if let Some(module) = message.module {
        super::modules::store(&dir.join(super::log::MODULES_DIR), module)?;
    }
    super::log::append(dir, &capture(message, canister, outcome))
}
