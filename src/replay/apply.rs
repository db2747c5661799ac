//! Executing one subnet record: the one path by which a message reaches a subnet, whether it
//! comes from the CLI (and is then committed with its record) or from a log being replayed.
//!
//! The outcome of a record is the outcome of the message it names (for an install,
//! `canister_init`; for an update, the ingress message itself, with the answer of its call
//! context as reply or reject), the target canister's message counter and state hash, every
//! further message the record caused on the subnet (`executed`) and the subnet's state hash.

use candid::Principal;

use super::record::{Caller, ExecutedRecord, Kind, Record, RecordedOutcome};
use crate::error::Error;
use crate::runtime::Outcome;
use crate::runtime::canister::DirtyPages;
use crate::runtime::subnet::{CallOptions, MessageKind, Subnet};
use crate::state::ANONYMOUS;

/// What executing a record did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The outcome, as it is recorded.
    pub outcome: RecordedOutcome,
    /// The time the message ran at.
    pub time: u64,
    /// The canister the record is for (an install: the one it created, if it succeeded).
    pub canister: Option<Principal>,
    /// The message's own outcome (reply, instructions, dirty pages, debug output).
    pub message: Outcome,
}

/// The principal of a record's `canister` (or of a caller).
pub fn principal(caller: &Caller) -> Result<Principal, String> {
    Principal::try_from_slice(&caller.0)
        .map_err(|e| format!("`{}` is not a principal: {e}", caller.to_text()))
}

/// The options a record's message runs with.
pub fn options(record: &Record) -> Result<CallOptions, String> {
    let caller = match &record.caller {
        Some(c) => principal(c)?,
        None => Principal::from_slice(&ANONYMOUS),
    };
    Ok(CallOptions {
        caller,
        time: record.time,
        instruction_limit: record.instruction_limit,
    })
}

fn empty_outcome() -> Outcome {
    Outcome {
        result: Ok(Vec::new()),
        instructions: 0,
        debug_log: Vec::new(),
        dirty: DirtyPages::default(),
        written: DirtyPages::default(),
    }
}

/// Executes `record` (a subnet record, [`Record::on_subnet`]) on `subnet`, with its argument
/// `arg` and, for an install or upgrade, its module. `Err(String)` is a record that cannot
/// run as written; a runtime error (an invalid module, an unknown method) is `Ok(Err(_))`.
pub fn apply(
    subnet: &mut Subnet,
    record: &Record,
    arg: &[u8],
    wasm: Option<Vec<u8>>,
) -> Result<Result<Applied, Error>, String> {
    let options = options(record)?;
    let target = match (&record.canister, record.kind) {
        (_, Kind::Install | Kind::Tick) => None,
        (Some(c), _) => Some(principal(c)?),
        (None, kind) => return Err(format!("{} record needs `canister`", kind.article())),
    };
    subnet.take_history();
    let method = record.method.as_deref().unwrap_or_default();
    let run = || -> Result<(Option<Principal>, Outcome, u64), Error> {
        Ok(match record.kind {
            Kind::Install => {
                let (id, outcome) = subnet.install_with(
                    wasm.unwrap_or_default(),
                    arg,
                    &options,
                    Some(record.stable_mode.unwrap_or_default()),
                )?;
                (id, outcome, subnet.time())
            }
            Kind::Update => {
                let id = target.expect("checked above");
                let result = subnet.update_call_with(id, method, arg, &options)?;
                (
                    Some(id),
                    Outcome {
                        result,
                        ..empty_outcome()
                    },
                    subnet.time(),
                )
            }
            Kind::Query => {
                let id = target.expect("checked above");
                let outcome = subnet.query_call_with(id, method, arg, &options)?;
                (Some(id), outcome, options.time.unwrap_or(subnet.time()))
            }
            Kind::Upgrade => {
                let id = target.expect("checked above");
                let outcome = subnet.upgrade_with(id, wasm.unwrap_or_default(), arg, &options)?;
                (Some(id), outcome, subnet.time())
            }
            Kind::Tick => {
                subnet.tick(record.seconds.unwrap_or(1))?;
                (None, empty_outcome(), subnet.time())
            }
        })
    };
    let (canister, mut message, time) = match run() {
        Ok(done) => done,
        Err(e) => return Ok(Err(e)),
    };
    let mut history = subnet.take_history();
    // An update's own message is the first one run, on its target.
    if record.kind == Kind::Update
        && let Some(first) = history.first()
        && Some(first.canister) == canister
        && first.kind == MessageKind::Request
    {
        let first = history.remove(0);
        message.instructions = first.instructions;
        message.debug_log = first.debug_log;
        message.dirty = first.dirty;
    }
    let (messages, state_hash) = match canister.and_then(|id| subnet.canister(id)) {
        Some(c) => (c.clock().messages, hex::encode(c.state_hash())),
        None => (0, String::new()),
    };
    let mut outcome = RecordedOutcome::new(&message, messages, state_hash);
    outcome.executed = history.iter().map(ExecutedRecord::new).collect();
    outcome.subnet_hash = Some(hex::encode(subnet.state_hash()));
    Ok(Ok(Applied {
        outcome,
        time,
        canister,
        message,
    }))
}
