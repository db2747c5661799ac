//! Deterministic record and replay (DESIGN.md §7).
//!
//! Every message a [`PersistentCanister`](crate::runtime::persistent::PersistentCanister)
//! executes (install, update, query, upgrade) is appended to `<state dir>/messages.jsonl` as one
//! [`Record`]: its inputs as actually used (caller, time, argument, module hash, limits) and its
//! outcome (reply or reject, instructions, dirty pages, message counter, state hash after). The
//! format is documented with an example in `docs/message-log.md`.
//!
//! [`Replayer`] rebuilds the canister from the log's install record in memory, re-executes every
//! record and compares every outcome field; the first difference is a [`Divergence`]. With
//! [`Options::record`] it fills in the outcomes of a hand-written log instead. A [`Recorder`]
//! records in process, without a state directory:
//!
//! ```no_run
//! use canister_vm::replay::{self, Options, Recorder};
//! use canister_vm::runtime::{CanisterConfig, MessageInput};
//!
//! let wasm = canister_vm::load::read_module("examples/counter.wat".as_ref())?;
//! let mut recorder = Recorder::new();
//! let none = MessageInput::default();
//! recorder.install(wasm, b"DIDL\0\0", CanisterConfig::default(), &none)?;
//! recorder.update("inc", b"DIDL\0\0", &none)?;
//! let (log, modules) = recorder.into_log();
//! let summary = replay::replay(log, modules, Options::default())?;
//! assert_eq!(summary.messages, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
mod log;
mod modules;
mod record;
mod recorder;
mod replayer;

pub use apply::{Applied, apply};
pub use log::{Entry, FILE_NAME, Log, LogError, MODULES_DIR, append, to_line};
pub use modules::{Modules, store as store_module};
pub use record::{Caller, ExecutedRecord, Kind, Record, RecordedOutcome, RecordedReject, ranges};
pub use recorder::{Message, Recorder, capture, log_message, record_line};
pub use replayer::{
    DirState, Divergence, FieldDiff, Options, Replayer, Summary, replay, replay_dir,
};

/// The engine a replay runs on: the runtime's engine choice (wasmi; wasmtime in builds with the
/// `wasmtime` feature). Replaying a log on either must give the same outcomes (DESIGN.md §7).
pub use crate::runtime::Engine;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A re-executed message did not give the recorded outcome.
    #[error("{0}")]
    Diverged(Box<Divergence>),
    /// A log line is malformed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A record cannot be executed as written (missing module, no outcome, no canister, ...).
    #[error("record {record} (line {line}): {why}")]
    Record {
        /// The 1-based record number.
        record: usize,
        /// The line in the log file.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The checkpoint to start from does not fit the log.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The replayed state differs from the state directory the log came from.
    #[error("{0}")]
    Directory(String),
    /// Reading files or running the canister failed.
    #[error(transparent)]
    Runtime(#[from] crate::Error),
}

impl ReplayError {
    /// Whether the replay ran and found a difference (as opposed to bad input): the CLI exits 1
    /// for these and 2 for the rest.
    pub fn is_divergence(&self) -> bool {
        matches!(
            self,
            ReplayError::Diverged(_) | ReplayError::Checkpoint(_) | ReplayError::Directory(_)
        )
    }
}
