//! canister-vm: a portable, deterministic runtime for Internet Computer canisters on wasmi.
//!
//! ```no_run
//! use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};
//!
//! let wasm = canister_vm::load::read_module("examples/counter.wat".as_ref())?;
//! let mut canister = Canister::create(wasm, CanisterConfig::default(), vec![4])?
//!     .expect("start function does not trap");
//! canister.init(b"DIDL\0\0", &MessageInput::default())?;
//! let outcome = canister.update("inc", b"DIDL\0\0", &MessageInput::default())?;
//! println!("{}", canister_vm::candid_text::decode_reply(outcome.result.as_ref().unwrap()));
//! # Ok::<(), canister_vm::Error>(())
//! ```
#![deny(missing_docs)]

pub mod candid_text;
pub mod cli;
pub mod error;
pub mod instrument;
pub mod load;
pub mod replay;
pub mod runtime;
pub mod state;

pub use error::Error;
