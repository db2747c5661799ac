//! The wasmtime backend (cargo feature `wasmtime`): the same instrumented module and the same
//! [`Ic0`] implementation as the wasmi backend, compiled by Cranelift.
//!
//! The glue is generated from the one table in [`for_each_ic0!`](crate::for_each_ic0), exactly as
//! in [`wasmi_backend`](super::wasmi_backend): each host function widens its address arguments to
//! `u64`, hands the heap to the [`Ic0`] method of the same name and narrows the result back. No
//! `ic0` semantics live here. Traps map to the engine-independent `engine::Trap` (wasmtime's trap codes
//! onto wasmi's), so both engines give the same reject messages.
//!
//! Engine settings: the proposals of [`engine_config`](super::engine::engine_config) (multi-memory,
//! memory64, SIMD, tail calls, extended-const, bulk memory, reference types; no threads, no relaxed
//! SIMD, no GC), no fuel and no epochs (instruction counting is instrumented), no backtraces, and
//! wasmtime's default signal-based trap handling for out-of-bounds accesses.

use std::sync::OnceLock;

use wasmtime::{Caller, Global, Linker, Memory, Module, Store, Val, WasmTy};

use super::engine::{Instance, Mem, Trap};
use super::ic0::api::{HostTrap, Ic0, covered};
use super::ic0::{Addr, HeapType};
use crate::error::Error;
use crate::instrument::{InjectedTrap, names};
use crate::state::GlobalValue;

/// What a wasmtime [`Store`] holds for a canister.
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
    /// The replica's store limits (tables), applied through wasmtime's resource limiter, as the
    /// replica does (and as the wasmi backend does).
    pub limits: wasmtime::StoreLimits,
}

impl HostData {
    /// Host data for a new instance: no memory or counter bound yet, the replica's table limits.
    pub fn new(ic0: Ic0) -> Self {
        use crate::instrument::rules::{MAX_TABLE_ELEMENTS, MAX_TABLES};
        HostData {
            ic0,
            heap: None,
            counter: None,
            stable: None,
            budget: 0,
            limits: wasmtime::StoreLimitsBuilder::new()
                .tables(MAX_TABLES as usize)
                .table_elements(MAX_TABLE_ELEMENTS as usize)
                .build(),
        }
    }
}

/// The wasmtime configuration used for canisters.
pub fn engine_config() -> wasmtime::Config {
    // Reference types are on by default (the setter needs wasmtime's `gc` feature); threads are
    // off without wasmtime's `threads` feature, GC types without its `gc` feature.
    let mut config = wasmtime::Config::new();
    config
        .strategy(wasmtime::Strategy::Cranelift)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(false)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_backtrace_max_frames(None)
        .consume_fuel(false)
        .epoch_interruption(false)
        .signals_based_traps(true);
    config
}

/// The process-wide wasmtime engine (compiled code is per module; the engine holds only settings
/// and the signal handlers, so one is enough).
fn engine() -> Result<&'static wasmtime::Engine, Error> {
    static ENGINE: OnceLock<Result<wasmtime::Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| wasmtime::Engine::new(&engine_config()).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|why| Error::Instantiate(format!("configuring wasmtime: {why}").into()))
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
        let left = match counter.get(&mut *caller) {
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
        fn link_ic0<I: Addr + WasmTy>(linker: &mut Linker<HostData>) -> wasmtime::Result<()> {
            $(
                let fee = $crate::runtime::ic0::api::charge::fixed(stringify!($name));
                linker.func_wrap(
                    "ic0",
                    stringify!($name),
                    move |mut caller: Caller<'_, HostData>, $($p: $crate::ic0_wasm_ty!($pk)),*|
                        -> wasmtime::Result<$crate::ic0_wasm_ty!($rk)>
                    {
                        if let Err(trap) = enter(&mut caller, fee, stringify!($name) == "performance_counter") {
                            store_counter(&mut caller);
                            return Err(wasmtime::Error::new(trap));
                        }
                        let (heap, data) = split(&mut caller);
                        #[allow(clippy::unit_arg)]
                        let result = data.ic0.$name(heap, $($crate::ic0_to_api!($pk, $p)),*);
                        store_counter(&mut caller);
                        match result {
                            Ok(r) => Ok($crate::ic0_from_api!($rk, r)),
                            Err(trap) => Err(wasmtime::Error::new(trap)),
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
pub fn linker(engine: &wasmtime::Engine, heap: HeapType) -> wasmtime::Result<Linker<HostData>> {
    let mut linker = Linker::new(engine);
    match heap {
        HeapType::Wasm32 => link_ic0::<i32>(&mut linker)?,
        HeapType::Wasm64 => link_ic0::<i64>(&mut linker)?,
    }
    linker.func_wrap("canister_vm", "trap", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(match InjectedTrap::from_code(code) {
            Some(trap) => HostTrap::Injected(trap),
            None => HostTrap::UnknownInjected(code),
        }))
    })?;
    Ok(linker)
}

/// wasmtime's trap code as the wasmi trap code of the same meaning (whose text the reject
/// message uses), or `None` for traps the instrumented canister modules cannot raise.
fn trap_code(trap: wasmtime::Trap) -> Option<wasmi::TrapCode> {
    use wasmi::TrapCode as W;
    use wasmtime::Trap as T;
    Some(match trap {
        T::UnreachableCodeReached => W::UnreachableCodeReached,
        T::MemoryOutOfBounds => W::MemoryOutOfBounds,
        T::TableOutOfBounds => W::TableOutOfBounds,
        T::IndirectCallToNull => W::IndirectCallToNull,
        T::IntegerDivisionByZero => W::IntegerDivisionByZero,
        T::IntegerOverflow => W::IntegerOverflow,
        T::BadConversionToInteger => W::BadConversionToInteger,
        T::StackOverflow => W::StackOverflow,
        T::BadSignature => W::BadSignature,
        T::OutOfFuel => W::OutOfFuel,
        _ => return None,
    })
}

/// Whether a wasmtime error is a trap of the canister (as opposed to a host/linking failure).
fn is_trap(error: &wasmtime::Error) -> bool {
    error.downcast_ref::<wasmtime::Trap>().is_some() || error.downcast_ref::<HostTrap>().is_some()
}

/// Maps a failed wasmtime call to the engine-independent [`Trap`].
fn to_trap(error: wasmtime::Error) -> Trap {
    if let Some(trap) = error.downcast_ref::<HostTrap>() {
        return Trap::Host(trap.clone());
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(&code) => match trap_code(code) {
            Some(code) => Trap::Wasm(code),
            None => Trap::Other(code.to_string()),
        },
        None => Trap::Other(format!("{error:#}")),
    }
}

fn val_to_global(v: &Val) -> GlobalValue {
    match v {
        Val::I32(x) => GlobalValue::I32(*x),
        Val::I64(x) => GlobalValue::I64(*x),
        Val::F32(x) => GlobalValue::F32(*x),
        Val::F64(x) => GlobalValue::F64(*x),
        Val::V128(x) => GlobalValue::V128(x.as_u128()),
        // Non-null references cannot be persisted; they are saved as null.
        Val::FuncRef(_) => GlobalValue::NullFuncRef,
        _ => GlobalValue::NullExternRef,
    }
}

fn global_to_val(g: GlobalValue) -> Val {
    match g {
        GlobalValue::I32(x) => Val::I32(x),
        GlobalValue::I64(x) => Val::I64(x),
        GlobalValue::F32(x) => Val::F32(x),
        GlobalValue::F64(x) => Val::F64(x),
        GlobalValue::V128(x) => Val::V128(wasmtime::V128::from(x)),
        GlobalValue::NullFuncRef => Val::FuncRef(None),
        GlobalValue::NullExternRef => Val::ExternRef(None),
    }
}

/// A canister module instantiated on wasmtime.
pub(crate) struct WasmtimeInstance {
    module: Module,
    heap_type: HeapType,
    stable_index: Option<u32>,
    store: Store<HostData>,
    instance: wasmtime::Instance,
    exports: Vec<String>,
    heap: Option<Memory>,
    stable: Option<Memory>,
    heap_map: Option<Memory>,
    stable_map: Option<Memory>,
    stable_bytes: Option<Global>,
    fast_limit: Option<Global>,
    counter: Option<Global>,
    globals: Vec<(u32, Global)>,
    /// The values of `globals`, read after every call and write (reading a wasmtime global needs
    /// the store mutably; the lifecycle reads globals through `&self`).
    values: Vec<(u32, GlobalValue)>,
}

/// Compiles the instrumented module `wasm` with wasmtime and instantiates it in a new store,
/// running its start function. A trap of the start function is `Ok(Err(trap))`.
pub(crate) fn instantiate(
    wasm: &[u8],
    heap_type: HeapType,
    stable_index: Option<u32>,
    ic0: Ic0,
) -> Result<Result<WasmtimeInstance, Trap>, Error> {
    let module = Module::new(engine()?, wasm).map_err(instantiate_err)?;
    start(module, heap_type, stable_index, ic0)
}

fn instantiate_err(e: wasmtime::Error) -> Error {
    Error::Instantiate(e.into_boxed_dyn_error())
}

/// Instantiates the compiled `module` in a new store, running its start function.
fn start(
    module: Module,
    heap_type: HeapType,
    stable_index: Option<u32>,
    ic0: Ic0,
) -> Result<Result<WasmtimeInstance, Trap>, Error> {
    let engine = module.engine().clone();
    let exports = module.exports().map(|e| e.name().to_string()).collect();
    let mut store = Store::new(&engine, HostData::new(ic0));
    store.limiter(|data| &mut data.limits);
    let linker = linker(&engine, heap_type).map_err(instantiate_err)?;
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(instance) => instance,
        Err(e) if is_trap(&e) => return Ok(Err(to_trap(e))),
        Err(e) => return Err(instantiate_err(e)),
    };
    let mut globals = Vec::new();
    for export in module.exports() {
        if let Some(i) = export.name().strip_prefix(names::GLOBAL_PREFIX)
            && let Ok(i) = i.parse::<u32>()
            && let Some(g) = instance.get_global(&mut store, export.name())
        {
            globals.push((i, g));
        }
    }
    globals.sort_by_key(|(i, _)| *i);
    let mut memory = |name: &str| instance.get_memory(&mut store, name);
    let heap = memory(names::HEAP);
    let stable = memory(names::STABLE_MEMORY);
    let heap_map = memory(&format!("{}0", names::DIRTY_PREFIX));
    let stable_map = stable_index.and_then(|k| memory(&format!("{}{k}", names::DIRTY_PREFIX)));
    let counter = instance.get_global(&mut store, names::COUNTER);
    let stable_bytes = instance.get_global(&mut store, names::STABLE_BYTES);
    let fast_limit = instance.get_global(&mut store, names::STABLE_FAST_LIMIT);
    store.data_mut().heap = heap;
    store.data_mut().counter = counter;
    store.data_mut().stable = stable.zip(stable_map);
    let mut wasmtime = WasmtimeInstance {
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
        values: Vec::new(),
    };
    wasmtime.read_globals();
    Ok(Ok(wasmtime))
}

impl WasmtimeInstance {
    fn mem(&self, m: Mem) -> Option<Memory> {
        match m {
            Mem::Heap => self.heap,
            Mem::Stable => self.stable,
            Mem::HeapMap => self.heap_map,
            Mem::StableMap => self.stable_map,
        }
    }

    /// Refreshes `values` from the globals.
    fn read_globals(&mut self) {
        let store = &mut self.store;
        self.values = self
            .globals
            .iter()
            .map(|(i, g)| (*i, val_to_global(&g.get(&mut *store))))
            .collect();
    }
}

impl Instance for WasmtimeInstance {
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
        memory
            .grow(&mut self.store, delta)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    }

    fn pages(&self, m: Mem) -> u64 {
        self.mem(m).map_or(0, |m| m.size(&self.store))
    }

    fn globals(&self) -> Vec<(u32, GlobalValue)> {
        self.values.clone()
    }

    fn set_global(&mut self, index: u32, value: GlobalValue) -> Result<(), String> {
        let Some(pos) = self.globals.iter().position(|(i, _)| *i == index) else {
            return Err(format!("the module has no mutable global {index}"));
        };
        let global = self.globals[pos].1;
        global
            .set(&mut self.store, global_to_val(value))
            .map_err(|e| format!("global {index}: {e:#}"))?;
        self.values[pos].1 = val_to_global(&global.get(&mut self.store));
        Ok(())
    }

    fn counter(&mut self) -> Option<i64> {
        match self.counter.map(|c| c.get(&mut self.store)) {
            Some(Val::I64(left)) => Some(left),
            _ => None,
        }
    }

    fn set_budget(&mut self, budget: i64) {
        self.store.data_mut().budget = budget;
        if let Some(counter) = self.counter {
            // The counter is an i64 global created by instrumentation.
            let _ = counter.set(&mut self.store, Val::I64(budget));
            self.read_globals();
        }
    }

    fn set_stable_bytes(&mut self, bytes: i64) -> Result<(), String> {
        let limit = crate::instrument::fast_limit(bytes);
        let mut result = Ok(());
        for (global, value) in [(self.stable_bytes, bytes), (self.fast_limit, limit)] {
            if let Some(g) = global
                && let Err(e) = g.set(&mut self.store, Val::I64(value))
            {
                result = Err(format!("{e:#}"));
            }
        }
        self.read_globals();
        result
    }

    fn call(&mut self, name: &str) -> Result<(), Trap> {
        let func = self
            .instance
            .get_typed_func::<(), ()>(&mut self.store, name)
            .map_err(|e| Trap::Other(format!("export `{name}`: {e:#}")))?;
        let result = func.call(&mut self.store, ()).map_err(to_trap);
        self.read_globals();
        result
    }

    fn call_callback(&mut self, fun: u64, env: u64) -> Result<(), Trap> {
        use wasmi::TrapCode as T;
        let table = self
            .instance
            .get_table(&mut self.store, names::TABLE)
            .ok_or(Trap::Wasm(T::TableOutOfBounds))?;
        let func = match table.get(&mut self.store, fun) {
            None => return Err(Trap::Wasm(T::TableOutOfBounds)),
            Some(wasmtime::Ref::Func(Some(func))) => func,
            Some(_) => return Err(Trap::Wasm(T::IndirectCallToNull)),
        };
        let result = match self.heap_type {
            HeapType::Wasm32 => func
                .typed::<i32, ()>(&self.store)
                .map_err(|_| Trap::Wasm(T::BadSignature))?
                .call(&mut self.store, env as u32 as i32),
            HeapType::Wasm64 => func
                .typed::<i64, ()>(&self.store)
                .map_err(|_| Trap::Wasm(T::BadSignature))?
                .call(&mut self.store, env as i64),
        }
        .map_err(to_trap);
        self.read_globals();
        result
    }

    fn reinstantiate(&self, ic0: Ic0) -> Result<Result<Box<dyn Instance>, Trap>, Error> {
        Ok(
            start(self.module.clone(), self.heap_type, self.stable_index, ic0)?
                .map(|i| Box::new(i) as Box<dyn Instance>),
        )
    }
}
