//! The WebAssembly spec-suite runner for canister-vm.
