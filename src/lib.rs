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
//!
//! Many canisters on a local [`Subnet`](runtime::subnet::Subnet), in-process:
//!
//! ```
//! use canister_vm::runtime::{CanisterConfig, subnet::Subnet};
//! use candid::Principal;
//!
//! let wasm = wat::parse_str(r#"(module
//!   (import "ic0" "msg_reply" (func $reply))
//!   (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
//!   (memory 1)
//!   (data (i32.const 0) "hi")
//!   (func (export "canister_query hello")
//!     (call $append (i32.const 0) (i32.const 2))
//!     (call $reply)))"#)?;
//! let mut subnet = Subnet::new(CanisterConfig::default());
//! let me = Principal::anonymous();
//! let first = subnet.install(wasm.clone(), b"", me)?.expect("installed");
//! let second = subnet.install(wasm, b"", me)?.expect("installed");
//! assert_eq!(first.to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
//! assert_eq!(second.to_text(), "rrkah-fqaaa-aaaaa-aaaaq-cai");
//! assert_eq!(subnet.query_call(second, "hello", b"", me)?, Ok(b"hi".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Using canister-vm as a dependency
//!
//! Cargo takes profiles and patches from the root workspace only, so a project that depends on
//! canister-vm gets neither of the settings canister-vm's own workspace builds with. Add both to
//! the project's root `Cargo.toml`:
//!
//! ```toml
//! # canister-vm's fixes to wasmi 2.0.0 (vendor/README.md in canister-vm lists them): without
//! # them some modules compute wrong results or panic wasmi's translator.
//! [patch.crates-io]
//! wasmi = { path = "<canister-vm>/vendor/wasmi" }        # or { git = "<canister-vm's repository>" }
//! wasmi_core = { path = "<canister-vm>/vendor/wasmi_core" }
//!
//! # The interpreter and the crates every message goes through, optimised in debug builds too.
//! [profile.dev.package.wasmi]
//! opt-level = 3
//! debug-assertions = false
//! overflow-checks = false
//! [profile.dev.package.wasmi_core]
//! opt-level = 3
//! debug-assertions = false
//! overflow-checks = false
//! [profile.dev.package.wasmi_ir]
//! opt-level = 3
//! debug-assertions = false
//! overflow-checks = false
//! [profile.dev.package.wasmparser]
//! opt-level = 3
//! [profile.dev.package.wasm-encoder]
//! opt-level = 3
//! [profile.dev.package.candid]
//! opt-level = 2
//! [profile.dev.package.sha2]
//! opt-level = 3
//! [profile.dev.package.ic_bls12_381]
//! opt-level = 3
//! [profile.dev.package.canister-vm]
//! opt-level = 1
//! ```
//!
//! Without the profile lines a debug build runs canisters ~70x slower (the kv test canister's
//! `put` update: 17 ms instead of 0.3 ms), and with only `opt-level = 3` for `wasmi` ~4x slower.
//! Release builds are optimised anyway. Either form is safe for the host stack: wasmi runs with
//! its loop dispatch (`portable-dispatch`), whose stack use does not depend on the module or the
//! optimisation level (README, "Engines").
//!
//! A build in which canister-vm itself is unoptimised (opt-level 0: the profile lines are missing)
//! prints a warning on stderr once, when it configures its first engine
//! ([`runtime::engine::unoptimised_warning`]); set `CANISTER_VM_QUIET_PROFILE=1` to silence it.
#![deny(missing_docs)]

pub mod abi;
pub mod candid_text;
pub mod certification;
pub mod cli;
pub mod error;
pub mod instrument;
pub mod load;
pub mod replay;
pub mod runtime;
pub mod state;

pub use error::Error;
