//! Typed Candid calls: what [`Subnet`](super::subnet::Subnet) and
//! [`PersistentSubnet`](super::persistent::PersistentSubnet) give back when they encode the
//! arguments and decode the reply for you.
//!
//! Arguments are a tuple of [`CandidType`](candid::CandidType) values (`()`, `(x,)`,
//! `(x, y)`, ...: candid's [`ArgumentEncoder`]); the reply is decoded as a tuple of
//! `Deserialize` values ([`ArgumentDecoder`]), as PocketIC's `update_candid` does. One
//! [`CallError`] tells what went wrong instead.

use candid::utils::{ArgumentDecoder, ArgumentEncoder};

use super::canister::Reject;
use crate::error::Error;

/// Why a typed call (or an install) did not give a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call was rejected: by the canister (it trapped, called `msg_reject` or did not
    /// reply), or by the subnet on its behalf (no such canister or method, stopped or empty
    /// canister, an install whose module is not valid or whose `canister_init` trapped).
    #[error("`{method}` was rejected: {reject}")]
    Rejected {
        /// The method called (`install_code` for an install).
        method: String,
        /// The reject, with its code and message.
        reject: Reject,
    },
    /// The arguments do not encode as Candid.
    #[error("the arguments of `{method}` do not encode as Candid: {error}")]
    Encode {
        /// The method called.
        method: String,
        /// Candid's error.
        error: candid::Error,
    },
    /// The canister replied, but the reply does not decode as the Rust type asked for.
    #[error("the reply of `{method}` does not decode as {expected}: {error}")]
    Decode {
        /// The method called.
        method: String,
        /// The Rust type the reply was decoded as.
        expected: &'static str,
        /// Candid's error.
        error: candid::Error,
        /// The reply as it came (Candid bytes).
        reply: Vec<u8>,
    },
    /// The runtime failed (a state directory, the engine, a bug in canister-vm): not an answer
    /// of the canister.
    #[error(transparent)]
    Runtime(#[from] Error),
}

impl CallError {
    /// The reject, if the call was rejected.
    pub fn reject(&self) -> Option<&Reject> {
        match self {
            CallError::Rejected { reject, .. } => Some(reject),
            _ => None,
        }
    }
}

/// Encodes `args` for a call of `method`.
pub(crate) fn encode<A: ArgumentEncoder>(method: &str, args: A) -> Result<Vec<u8>, CallError> {
    candid::utils::encode_args(args).map_err(|error| CallError::Encode {
        method: method.to_string(),
        error,
    })
}

/// Decodes the answer of a call of `method` as `R` (a reject stays a reject).
pub(crate) fn decode<R>(method: &str, answer: Result<Vec<u8>, Reject>) -> Result<R, CallError>
where
    R: for<'a> ArgumentDecoder<'a>,
{
    let reply = answer.map_err(|reject| CallError::Rejected {
        method: method.to_string(),
        reject,
    })?;
    candid::utils::decode_args(&reply).map_err(|error| CallError::Decode {
        method: method.to_string(),
        expected: std::any::type_name::<R>(),
        error,
        reply,
    })
}

/// The method name an install's rejects carry (the management method it stands for).
pub(crate) const INSTALL_METHOD: &str = "install_code";

/// What an install did: the new id (`None` if it failed) and `canister_init`'s answer.
pub(crate) type Installed = (Option<candid::Principal>, Result<Vec<u8>, Reject>);

/// The answer of an install: the new id, or why there is none. `done` is the new id (`None`
/// if the start function or `canister_init` trapped) with `canister_init`'s answer, or the
/// error of an install that could not run; a module that is not valid is a reject, as a
/// replica gives it.
pub(crate) fn install_answer(
    done: Result<Installed, Error>,
) -> Result<candid::Principal, CallError> {
    let rejected = |reject| CallError::Rejected {
        method: INSTALL_METHOD.to_string(),
        reject,
    };
    match done {
        Ok((Some(id), _)) => Ok(id),
        Ok((None, answer)) => {
            Err(rejected(answer.err().unwrap_or_else(|| {
                super::management::error("the install failed".into())
            })))
        }
        Err(e @ (Error::Instrument(_) | Error::Instantiate(_))) => Err(rejected(
            super::management::error(format!("the Wasm module is not valid: {e}")),
        )),
        Err(e) => Err(CallError::Runtime(e)),
    }
}
