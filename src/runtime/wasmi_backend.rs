//! The wasmi backend: links the `ic0` functions of [`Ic0`] into a wasmi [`Linker`].
//!
//! The glue is generated from the one table in [`for_each_ic0!`](crate::for_each_ic0): each host
//! function widens its address arguments to `u64`, hands the heap to the [`Ic0`] method of the
//! same name and narrows the result back. No `ic0` semantics live here.

use wasmi::{Caller, Global, Linker, Memory, Val, WasmTy};

use super::ic0::HeapType;
use super::ic0::api::{HostTrap, Ic0};
use crate::instrument::InjectedTrap;

/// What a wasmi [`Store`](wasmi::Store) holds for a canister.
#[derive(Debug)]
pub struct HostData {
    /// The `ic0` host state.
    pub ic0: Ic0,
    /// The heap (memory 0), once instantiated.
    pub heap: Option<Memory>,
    /// The instruction counter global (`canister counter_instructions`), if metered.
    pub counter: Option<Global>,
    /// The counter's value at the start of the message.
    pub budget: i64,
}

impl HostData {
    /// Host data around `ic0`, not yet bound to an instance.
    pub fn new(ic0: Ic0) -> Self {
        HostData {
            ic0,
            heap: None,
            counter: None,
            budget: 0,
        }
    }
}

/// A heap address type: `i32` or `i64`.
trait Addr: WasmTy + Copy {
    fn to_u64(self) -> u64;
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

/// The heap bytes and the host data, borrowed together.
#[inline(always)]
fn split<'a>(caller: &'a mut Caller<'_, HostData>) -> (&'a mut [u8], &'a mut HostData) {
    match caller.data().heap {
        Some(heap) => heap.data_and_store_mut(caller),
        None => (&mut [], caller.data_mut()),
    }
}

/// Brings `Ic0::instructions` up to date from the counter global.
fn refresh_instructions(caller: &mut Caller<'_, HostData>) {
    if let Some(counter) = caller.data().counter {
        let now = match counter.get(&*caller) {
            Val::I64(v) => v,
            _ => 0,
        };
        let data = caller.data_mut();
        data.ic0.instructions = data.budget.saturating_sub(now).max(0) as u64;
    }
}

macro_rules! wasm_ty {
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

macro_rules! to_api {
    (I, $v:expr) => {
        Addr::to_u64($v)
    };
    ($k:tt, $v:expr) => {
        $v
    };
}

macro_rules! from_api {
    (I, $v:expr) => {
        <I as Addr>::from_u64($v)
    };
    ($k:tt, $v:expr) => {
        $v
    };
}

macro_rules! link_ic0 {
    ($( $name:ident ( $($p:ident : $pk:tt),* ) -> $rk:tt ;)*) => {
        fn link_ic0<I: Addr>(linker: &mut Linker<HostData>) -> Result<(), wasmi::Error> {
            $(
                linker.func_wrap(
                    "ic0",
                    stringify!($name),
                    |mut caller: Caller<'_, HostData>, $($p: wasm_ty!($pk)),*|
                        -> Result<wasm_ty!($rk), wasmi::Error>
                    {
                        if stringify!($name) == "performance_counter" {
                            refresh_instructions(&mut caller);
                        }
                        let (heap, data) = split(&mut caller);
                        #[allow(clippy::unit_arg)]
                        match data.ic0.$name(heap, $(to_api!($pk, $p)),*) {
                            Ok(r) => Ok(from_api!($rk, r)),
                            Err(trap) => Err(wasmi::Error::host(trap)),
                        }
                    },
                )?;
            )*
            Ok(())
        }
    };
}

crate::for_each_ic0!(link_ic0);

/// A linker with every `ic0` function for a heap of type `heap`, and `canister_vm.trap` for
/// traps raised by instrumented code.
pub fn linker(engine: &wasmi::Engine, heap: HeapType) -> Result<Linker<HostData>, wasmi::Error> {
    let mut linker = Linker::new(engine);
    match heap {
        HeapType::Wasm32 => link_ic0::<i32>(&mut linker)?,
        HeapType::Wasm64 => link_ic0::<i64>(&mut linker)?,
    }
    linker.func_wrap(
        "canister_vm",
        "trap",
        |code: i32| -> Result<(), wasmi::Error> {
            Err(wasmi::Error::host(match InjectedTrap::from_code(code) {
                Some(trap) => HostTrap::Injected(trap),
                None => HostTrap::UnknownInjected(code),
            }))
        },
    )?;
    Ok(linker)
}
