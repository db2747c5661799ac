//! Integration tests: one binary (as in wasmtime's `tests/all`), driving the CLI and the library.

#[path = "../support/canisters.rs"]
mod canisters;

mod assets;
mod bad_input;
mod barrier_traps;
mod cdk_calls;
mod certificates;
mod checkpoints;
mod cli_bench;
mod cli_candid;
mod cli_example;
mod engine_choice;
mod engine_faults;
mod ic_counts;
mod integrity;
mod lifecycle;
mod limits;
mod management;
mod metering;
mod replay;
mod stable_modes;
mod subnet;
mod subnet_dir;
mod support;
mod test_canisters;
mod typed_api;
