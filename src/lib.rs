//! canister-vm: a portable, deterministic runtime for Internet Computer canisters on wasmi.
//!
//! A local subnet in your process, used like PocketIC: install a canister, call it with Rust
//! values, get Rust values back.
//!
//! ```
//! use candid::Principal;
//! use canister_vm::runtime::{CanisterConfig, subnet::Subnet};
//!
//! let mut subnet = Subnet::new(CanisterConfig::default());
//! let alice = Principal::from_slice(&[1, 2, 3]);
//! let wasm = canister_vm::load::read_module("examples/counter.wat".as_ref())?;
//! let counter = subnet.install(wasm, (), alice)?; // canister_init with no arguments
//!
//! // `inc: () -> (nat64)` and `read: () -> (nat64) query`: arguments and replies are tuples.
//! let (after_one,): (u64,) = subnet.update_call(counter, "inc", (), alice)?;
//! let (after_two,): (u64,) = subnet.update_call(counter, "inc", (), Principal::anonymous())?;
//! let (read,): (u64,) = subnet.query_call(counter, "read", (), alice)?;
//! assert_eq!((after_one, after_two, read), (1, 2, 2));
//!
//! // A reject and a reply of another type are errors that say which.
//! use canister_vm::runtime::{CallError, RejectCode};
//! match subnet.update_call::<_, (u64,)>(counter, "dec", (), alice) {
//!     Err(CallError::Rejected { reject, .. }) => assert_eq!(reject.code, RejectCode::CanisterError),
//!     other => panic!("expected a reject, got {other:?}"),
//! }
//! let wrong = subnet.query_call::<_, (String,)>(counter, "read", (), alice);
//! assert!(matches!(wrong, Err(CallError::Decode { method, .. }) if method == "read"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Arguments are tuples of [`CandidType`](candid::CandidType) values (`()`, `(x,)`,
//! `(x, y)`, ...) and replies tuples of `Deserialize` values, as with PocketIC's
//! `update_candid`; [`CallError`](runtime::CallError) says whether the canister rejected, the
//! reply did not decode, or the runtime failed. The `_raw` forms
//! ([`update_call_raw`](runtime::subnet::Subnet::update_call_raw),
//! [`query_call_raw`](runtime::subnet::Subnet::query_call_raw),
//! [`install_raw`](runtime::subnet::Subnet::install_raw)) take and give Candid bytes. A
//! [`PersistentSubnet`](runtime::persistent::PersistentSubnet) has the same calls and commits
//! every message to a state directory.
//!
//! Many canisters on one subnet, with ids as a local replica allocates them:
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
//! let first = subnet.install_raw(wasm.clone(), b"", me)?;
//! let second = subnet.install_raw(wasm, b"", me)?;
//! assert_eq!(first.to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
//! assert_eq!(second.to_text(), "rrkah-fqaaa-aaaaa-aaaaq-cai");
//! // Not Candid: the raw form gives the reply's bytes.
//! assert_eq!(subnet.query_call_raw(second, "hello", b"", me)?, Ok(b"hi".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One canister without a subnet, message by message, with the whole
//! [`Outcome`](runtime::Outcome) of each (instructions, debug output, dirty pages):
//!
//! ```
//! use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};
//!
//! let wasm = canister_vm::load::read_module("examples/counter.wat".as_ref())?;
//! let controller = candid::Principal::anonymous();
//! let mut canister = Canister::create(wasm, CanisterConfig::default(), controller)?;
//! let none = MessageInput::default();
//! canister.init(b"DIDL\0\0", &none)?;
//! let outcome = canister.update("inc", b"DIDL\0\0", &none)?;
//! assert_eq!(candid::decode_one::<u64>(&outcome.result.unwrap())?, 1);
//! assert!(outcome.instructions > 0);
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
