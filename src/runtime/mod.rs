//! The runtime: engine setup, the `ic0` system API and the canister lifecycle.

pub mod engine;
pub mod ic0;
