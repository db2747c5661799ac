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
