//! The `ic0` system API as the runtime provides it: the functions ([`api`]) and the glue every
//! engine backend generates from the ABI table ([`crate::abi`], re-exported here).

pub mod api;

pub use crate::abi::*;

/// A heap address type as engine glue sees it: `i32` or `i64`, widened to the `u64` the [`api`]
/// functions take and narrowed back for results.
pub trait Addr: Copy {
    /// The address as `u64` (an `i32` is zero-extended: wasm32 addresses are unsigned).
    fn to_u64(self) -> u64;
    /// A result back in the Wasm type (wrapping, as the Wasm value would).
    fn from_u64(v: u64) -> Self;
}

impl Addr for i32 {
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self as u32 as u64
    }
    #[inline(always)]
    fn from_u64(v: u64) -> Self {
        v as u32 as i32
    }
}

impl Addr for i64 {
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self as u64
    }
    #[inline(always)]
    fn from_u64(v: u64) -> Self {
        v as i64
    }
}

/// The Rust type of a kind in [`for_each_ic0!`](crate::for_each_ic0) (`I` stays the generic
/// address type of the glue function). Used by every backend's generated glue.
#[macro_export]
#[doc(hidden)]
macro_rules! ic0_wasm_ty {
    (I) => {
        I
    };
    (i32) => {
        i32
    };
    (i64) => {
        i64
    };
    (()) => {
        ()
    };
}

/// A Wasm argument of kind `$k` as the [`api`] function takes it.
#[macro_export]
#[doc(hidden)]
macro_rules! ic0_to_api {
    (I, $v:expr) => {
        $crate::runtime::ic0::Addr::to_u64($v)
    };
    ($k:tt, $v:expr) => {
        $v
    };
}

/// An [`api`] result of kind `$k` as the Wasm function returns it.
#[macro_export]
#[doc(hidden)]
macro_rules! ic0_from_api {
    (I, $v:expr) => {
        <I as $crate::runtime::ic0::Addr>::from_u64($v)
    };
    ($k:tt, $v:expr) => {
        $v
    };
}
