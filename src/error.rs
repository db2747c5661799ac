//! Errors: bad input and environment failures (a canister trap is not an error, it is a
//! [`Reject`](crate::runtime::Reject) in the message outcome; only a trap of the start
//! function, which leaves no canister to give an outcome, is [`Error::StartTrapped`]).

use std::path::PathBuf;

/// Everything that can go wrong in canister-vm outside the canister's own execution.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a Wasm module we can read (binary, gzip or WAT).
    #[error("{origin}: {why}")]
    Decode {
        /// Where the bytes came from.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// The module failed validation or instrumentation.
    #[error(transparent)]
    Instrument(#[from] crate::instrument::InstrumentError),
    /// The engine rejected the module or failed to instantiate it.
    #[error("instantiating the module failed: {0}")]
    Instantiate(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The module's start function trapped while [`Canister::create`](crate::runtime::Canister::create)
    /// instantiated it: there is no canister.
    #[error("the start function trapped: {0}")]
    StartTrapped(crate::runtime::Reject),
    /// The configuration asks for an engine this build does not have.
    #[error("this build has no {engine} engine: rebuild with --features {engine}")]
    EngineUnavailable {
        /// The engine asked for.
        engine: crate::runtime::engine::Engine,
    },
    /// The canister does not export the requested method.
    #[error("the canister has no {kind} method `{method}`{hint}")]
    MethodNotFound {
        /// The method.
        method: String,
        /// "update" or "query".
        kind: &'static str,
        /// Extra guidance.
        hint: String,
    },
    /// Candid text that does not parse.
    #[error("invalid Candid argument `{text}`: {why}")]
    Candid {
        /// The text given.
        text: String,
        /// Parser message.
        why: String,
    },
    /// A problem with a state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// An inconsistency in canister-vm's own bookkeeping (a bug in canister-vm, not in the
    /// canister or the input).
    #[error("internal error: {0} (a bug in canister-vm)")]
    Internal(String),
    /// A request that cannot be carried out as given (which canister, which method, why).
    #[error("{0}")]
    Input(String),
}

/// Problems with a canister state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// There is no canister in the directory.
    #[error("{path}: no canister installed here (run `canister-vm install` first)")]
    NoCanister {
        /// The directory.
        path: PathBuf,
    },
    /// A canister is already installed in the directory.
    #[error("{path}: a canister is already installed here (use `upgrade`, or another directory)")]
    AlreadyInstalled {
        /// The directory.
        path: PathBuf,
    },
    /// The directory is already open in this process (a second handle would wait for the lock
    /// forever).
    #[error("{path}: this state directory is already open in this process")]
    InUse {
        /// The directory.
        path: PathBuf,
    },
    /// A file of the state is damaged.
    #[error("{path}: corrupt canister state: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The saved state cannot be put back into a fresh instance of its module.
    #[error("cannot restore the canister state: {why}")]
    Restore {
        /// What is wrong.
        why: String,
    },
}
