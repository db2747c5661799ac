//! The runtime: engine setup, the `ic0` system API and the canister lifecycle.

pub mod call;
pub mod canister;
pub mod engine;
pub mod ic0;
mod management;
pub mod persistent;
pub mod subnet;
pub mod wasmi_backend;
#[cfg(feature = "wasmtime")]
pub mod wasmtime_backend;

pub use call::CallError;
pub use engine::Engine;

pub use canister::{
    Canister, CanisterConfig, InstructionLimits, MessageInput, Methods, Outcome, Reject, RejectCode,
};
