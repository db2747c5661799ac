//! Integration tests: one binary (as in wasmtime's `tests/all`), driving the CLI and the library.

mod bad_input;
mod cli_example;
mod lifecycle;
mod support;
