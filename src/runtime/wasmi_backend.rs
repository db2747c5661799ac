//! The wasmi backend: links the `ic0` functions of [`Ic0`] into a wasmi [`Linker`] and runs an
//! instrumented canister module as an `engine::Instance`.
//!
//! The glue is generated from the one table in [`for_each_ic0!`](crate::for_each_ic0): each host
//! function widens its address arguments to `u64`, hands the heap to the [`Ic0`] method of the
//! same name and narrows the result back. No `ic0` semantics live here.

use wasmi::{Caller, Global, Linker, Memory, Module, Store, Val, WasmTy};

use super::engine::{Instance, Mem, Trap, new_engine};
use super::ic0::api::{HostTrap, Ic0, covered};
use super::ic0::{Addr, HeapType};
use crate::error::Error;
use crate::instrument::{InjectedTrap, names};
use crate::state::GlobalValue;

/// What a wasmi [`Store`] holds for a canister.
#[derive(Debug)]
pub struct HostData {
    /// The `ic0` host state.
    pub ic0: Ic0,
    /// The heap (memory 0), once instantiated.
    pub heap: Option<Memory>,
    /// The instruction counter global (`canister counter_instructions`), if metered.
    pub counter: Option<Global>,
    /// Wasm-native stable memory and its dirty byte map, if the module has them (the dirty
    /// stable pages' charge is part of what `performance_counter` reports).
    pub stable: Option<(Memory, Memory)>,
    /// The counter's value at the start of the message.
    pub budget: i64,
    /// The replica's store limits (tables), applied through wasmi's resource limiter.
    pub limits: wasmi::StoreLimits,
}

/// The store limits of a canister: at most [`MAX_TABLES`](crate::instrument::rules::MAX_TABLES)
/// table of at most [`MAX_TABLE_ELEMENTS`](crate::instrument::rules::MAX_TABLE_ELEMENTS) elements;
/// a `table.grow` beyond that returns -1, as on the replica (wasmtime's `StoreLimits`).
pub fn store_limits() -> wasmi::StoreLimits {
    use crate::instrument::rules::{MAX_TABLE_ELEMENTS, MAX_TABLES};
    wasmi::StoreLimitsBuilder::new()
        .tables(MAX_TABLES as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build()
}

impl HostData {
    /// Host data around `ic0`, not yet bound to an instance.
    pub fn new(ic0: Ic0) -> Self {
        HostData {
            ic0,
            heap: None,
            counter: None,
            stable: None,
            budget: 0,
            limits: store_limits(),
        }
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

/// Brings `Ic0::instructions` up to date from `Ic0::counter` (loaded, and the function's
/// overhead charged) and the dirty stable pages' charge.
fn refresh_instructions(caller: &mut Caller<'_, HostData>) {
    let data = caller.data();
    let Some(left) = data.ic0.counter else {
        return;
    };
    let map = data
        .stable
        .map(|(stable, map)| covered(stable.data(&*caller).len(), map.data(&*caller)));
    let executed = data.ic0.executed(data.budget, left, map);
    caller.data_mut().ic0.instructions = executed;
}

/// What the glue does before an `ic0` function runs: hands the counter to `Ic0::counter`,
/// charges the function's fixed overhead `fee` and, for `performance_counter`
/// (`reads_counter`), brings `Ic0::instructions` up to date.
fn enter(caller: &mut Caller<'_, HostData>, fee: u64, reads_counter: bool) -> Result<(), HostTrap> {
    load_counter(caller);
    caller.data_mut().ic0.charge_fixed(fee)?;
    if reads_counter {
        refresh_instructions(caller);
    }
    Ok(())
}

/// Hands the counter global to `Ic0::counter` before an `ic0` function runs.
fn load_counter(caller: &mut Caller<'_, HostData>) {
    if let Some(counter) = caller.data().counter {
        let left = match counter.get(&*caller) {
            Val::I64(v) => Some(v),
            _ => None,
        };
        caller.data_mut().ic0.counter = left;
    }
}

/// Writes what a function charged back to the counter global.
fn store_counter(caller: &mut Caller<'_, HostData>) {
    if let (Some(counter), Some(left)) =
        (caller.data().counter, caller.data_mut().ic0.counter.take())
    {
        // The counter is an i64 global created by instrumentation.
        let _ = counter.set(&mut *caller, Val::I64(left));
    }
}

macro_rules! link_ic0 {
    ($( $name:ident ( $($p:ident : $pk:tt),* ) -> $rk:tt ;)*) => {
        fn link_ic0<I: Addr + WasmTy>(linker: &mut Linker<HostData>) -> Result<(), wasmi::Error> {
            $(
                let fee = $crate::runtime::ic0::api::charge::fixed(stringify!($name));
                linker.func_wrap(
                    "ic0",
                    stringify!($name),
                    move |mut caller: Caller<'_, HostData>, $($p: $crate::ic0_wasm_ty!($pk)),*|
                        -> Result<$crate::ic0_wasm_ty!($rk), wasmi::Error>
                    {
                        if let Err(trap) = enter(&mut caller, fee, stringify!($name) == "performance_counter") {
                            store_counter(&mut caller);
                            return Err(wasmi::Error::host(trap));
                        }
                        let (heap, data) = split(&mut caller);
                        #[allow(clippy::unit_arg)]
                        let result = data.ic0.$name(heap, $($crate::ic0_to_api!($pk, $p)),*);
                        store_counter(&mut caller);
                        match result {
                            Ok(r) => Ok($crate::ic0_from_api!($rk, r)),
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

/// Maps a failed wasmi call to the engine-independent [`Trap`].
fn to_trap(error: wasmi::Error) -> Trap {
    if let Some(trap) = error.downcast_ref::<HostTrap>() {
        return Trap::Host(trap.clone());
    }
    match error.as_trap_code() {
        Some(code) => Trap::Wasm(code),
        None => Trap::Other(error.to_string()),
    }
}

/// Whether a wasmi error is a trap of the canister (as opposed to a host/linking failure).
fn is_trap(error: &wasmi::Error) -> bool {
    error.as_trap_code().is_some() || error.downcast_ref::<HostTrap>().is_some()
}

fn val_to_global(v: &Val) -> GlobalValue {
    match v {
        Val::I32(x) => GlobalValue::I32(*x),
        Val::I64(x) => GlobalValue::I64(*x),
        Val::F32(x) => GlobalValue::F32(x.to_bits()),
        Val::F64(x) => GlobalValue::F64(x.to_bits()),
        Val::V128(x) => GlobalValue::V128(x.as_u128()),
        // Non-null references cannot be persisted; they are saved as null.
        Val::ExternRef(_) => GlobalValue::NullExternRef,
        Val::FuncRef(_) => GlobalValue::NullFuncRef,
    }
}

fn global_to_val(g: GlobalValue) -> Val {
    match g {
        GlobalValue::I32(x) => Val::I32(x),
        GlobalValue::I64(x) => Val::I64(x),
        GlobalValue::F32(x) => Val::F32(wasmi::F32::from_bits(x)),
        GlobalValue::F64(x) => Val::F64(wasmi::F64::from_bits(x)),
        GlobalValue::V128(x) => Val::V128(wasmi::V128::from(x)),
        GlobalValue::NullFuncRef => Val::FuncRef(wasmi::Nullable::Null),
        GlobalValue::NullExternRef => Val::ExternRef(wasmi::Nullable::Null),
    }
}

/// A canister module instantiated on wasmi.
pub(crate) struct WasmiInstance {
    module: Module,
    heap_type: HeapType,
    stable_index: Option<u32>,
    store: Store<HostData>,
    instance: wasmi::Instance,
    exports: Vec<String>,
    heap: Option<Memory>,
    stable: Option<Memory>,
    heap_map: Option<Memory>,
    stable_map: Option<Memory>,
    stable_bytes: Option<Global>,
    fast_limit: Option<Global>,
    counter: Option<Global>,
    globals: Vec<(u32, Global)>,
}

/// Instantiates the instrumented module `wasm` on a new wasmi engine and store, running its start
/// function. A trap of the start function is `Ok(Err(trap))`.
pub(crate) fn instantiate(
    wasm: &[u8],
    heap_type: HeapType,
    stable_index: Option<u32>,
    ic0: Ic0,
) -> Result<Result<WasmiInstance, Trap>, Error> {
    let engine = new_engine();
    let module = Module::new(&engine, wasm).map_err(|e| Error::Instantiate(Box::new(e)))?;
    start(module, heap_type, stable_index, ic0)
}

/// Instantiates the compiled `module` in a new store, running its start function.
fn start(
    module: Module,
    heap_type: HeapType,
    stable_index: Option<u32>,
    ic0: Ic0,
) -> Result<Result<WasmiInstance, Trap>, Error> {
    let engine = module.engine().clone();
    let exports = module.exports().map(|e| e.name().to_string()).collect();
    let mut store = Store::new(&engine, HostData::new(ic0));
    store.limiter(|data| &mut data.limits);
    let linker = linker(&engine, heap_type).map_err(|e| Error::Instantiate(Box::new(e)))?;
    let instance = match linker.instantiate_and_start(&mut store, &module) {
        Ok(instance) => instance,
        Err(e) if is_trap(&e) => return Ok(Err(to_trap(e))),
        Err(e) => return Err(Error::Instantiate(Box::new(e))),
    };
    let memory = |name: &str| instance.get_memory(&store, name);
    let mut globals = Vec::new();
    for export in instance.exports(&store) {
        if let Some(i) = export.name().strip_prefix(names::GLOBAL_PREFIX)
            && let (Ok(i), Some(g)) = (i.parse::<u32>(), export.clone().into_global())
        {
            globals.push((i, g));
        }
    }
    globals.sort_by_key(|(i, _)| *i);
    let heap = memory(names::HEAP);
    let counter = instance.get_global(&store, names::COUNTER);
    let stable = memory(names::STABLE_MEMORY);
    let heap_map = memory(&format!("{}0", names::DIRTY_PREFIX));
    let stable_map = stable_index.and_then(|k| memory(&format!("{}{k}", names::DIRTY_PREFIX)));
    let stable_bytes = instance.get_global(&store, names::STABLE_BYTES);
    let fast_limit = instance.get_global(&store, names::STABLE_FAST_LIMIT);
    store.data_mut().heap = heap;
    store.data_mut().counter = counter;
    store.data_mut().stable = stable.zip(stable_map);
    Ok(Ok(WasmiInstance {
        module,
        heap_type,
        stable_index,
        store,
        instance,
        exports,
        heap,
        stable,
        heap_map,
        stable_map,
        stable_bytes,
        fast_limit,
        counter,
        globals,
    }))
}

impl WasmiInstance {
    fn mem(&self, m: Mem) -> Option<Memory> {
        match m {
            Mem::Heap => self.heap,
            Mem::Stable => self.stable,
            Mem::HeapMap => self.heap_map,
            Mem::StableMap => self.stable_map,
        }
    }
}

impl Instance for WasmiInstance {
    fn export_names(&self) -> Vec<String> {
        self.exports.clone()
    }

    fn ic0(&self) -> &Ic0 {
        &self.store.data().ic0
    }

    fn ic0_mut(&mut self) -> &mut Ic0 {
        &mut self.store.data_mut().ic0
    }

    fn memory(&self, m: Mem) -> Option<&[u8]> {
        self.mem(m).map(|m| m.data(&self.store))
    }

    fn memory_mut(&mut self, m: Mem) -> Option<&mut [u8]> {
        self.mem(m).map(|m| m.data_mut(&mut self.store))
    }

    fn grow(&mut self, m: Mem, delta: u64) -> Result<(), String> {
        let memory = self.mem(m).ok_or("the module has no such memory")?;
        // One grow, all or nothing. On Linux the patched wasmi_core maps lazily zeroed pages
        // (vendor/patches/wasmi_core-0001-lazy-zeroed-memory.patch), so this costs nothing per page granted:
        // only the pages a restore then writes become resident.
        memory
            .grow(&mut self.store, delta)
            .map(|_| ())
            .map_err(|e| {
                let size = memory.size(&self.store);
                let max = memory.ty(&self.store).maximum();
                format!("cannot grow a memory of {size} pages by {delta} (maximum {max:?}): {e}")
            })
    }

    fn pages(&self, m: Mem) -> u64 {
        self.mem(m).map_or(0, |m| m.size(&self.store))
    }

    fn globals(&self) -> Vec<(u32, GlobalValue)> {
        self.globals
            .iter()
            .map(|(i, g)| (*i, val_to_global(&g.get(&self.store))))
            .collect()
    }

    fn set_global(&mut self, index: u32, value: GlobalValue) -> Result<(), String> {
        let Some((_, global)) = self.globals.iter().find(|(i, _)| *i == index) else {
            return Err(format!("the module has no mutable global {index}"));
        };
        global
            .set(&mut self.store, global_to_val(value))
            .map_err(|e| format!("global {index}: {e}"))
    }

    fn counter(&mut self) -> Option<i64> {
        match self.counter.map(|c| c.get(&self.store)) {
            Some(Val::I64(left)) => Some(left),
            _ => None,
        }
    }

    fn set_budget(&mut self, budget: i64) {
        self.store.data_mut().budget = budget;
        if let Some(counter) = self.counter {
            // The counter is an i64 global created by instrumentation.
            let _ = counter.set(&mut self.store, Val::I64(budget));
        }
    }

    fn set_stable_bytes(&mut self, bytes: i64) -> Result<(), String> {
        let limit = crate::instrument::fast_limit(bytes);
        let mut result = Ok(());
        for (global, value) in [(self.stable_bytes, bytes), (self.fast_limit, limit)] {
            if let Some(g) = global
                && let Err(e) = g.set(&mut self.store, Val::I64(value))
            {
                result = Err(e.to_string());
            }
        }
        result
    }

    fn call(&mut self, name: &str) -> Result<(), Trap> {
        let func = self
            .instance
            .get_typed_func::<(), ()>(&self.store, name)
            .map_err(|e| Trap::Other(format!("export `{name}`: {e}")))?;
        func.call(&mut self.store, ()).map_err(to_trap)
    }

    fn call_callback(&mut self, fun: u64, env: u64) -> Result<(), Trap> {
        use wasmi::TrapCode as T;
        let table = self
            .instance
            .get_table(&self.store, names::TABLE)
            .ok_or(Trap::Wasm(T::TableOutOfBounds))?;
        let func = match table.get(&self.store, fun) {
            None => return Err(Trap::Wasm(T::TableOutOfBounds)),
            Some(wasmi::Ref::Func(wasmi::Nullable::Val(func))) => func,
            Some(_) => return Err(Trap::Wasm(T::IndirectCallToNull)),
        };
        let (param, arg) = match self.heap_type {
            HeapType::Wasm32 => (wasmi::ValType::I32, Val::I32(env as u32 as i32)),
            HeapType::Wasm64 => (wasmi::ValType::I64, Val::I64(env as i64)),
        };
        let ty = func.ty(&self.store);
        if ty.params() != [param] || !ty.results().is_empty() {
            return Err(Trap::Wasm(T::BadSignature));
        }
        func.call(&mut self.store, &[arg], &mut []).map_err(to_trap)
    }

    fn reinstantiate(&self, ic0: Ic0) -> Result<Result<Box<dyn Instance>, Trap>, Error> {
        Ok(
            start(self.module.clone(), self.heap_type, self.stable_index, ic0)?
                .map(|i| Box::new(i) as Box<dyn Instance>),
        )
    }
}
