//! canister-vm: a portable, deterministic runtime for Internet Computer canisters on wasmi.
#![deny(missing_docs)]

pub mod instrument;
pub mod runtime;
pub mod state;
