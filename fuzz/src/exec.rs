//! Running one module on one engine: the engine-independent view the checks compare.
//!
//! Plain and instrumented modules are both linked with canister-vm's own host
//! (`runtime::wasmi_backend::linker`, `runtime::wasmtime_backend::linker`): every `ic0` function
//! and `canister_vm.trap`. A plain module that imports `ic0.stable*` thus gets the system-API
//! stable memory of [`Ic0`], which is what the native stable pass must reproduce.

use canister_vm::instrument::rules::MAX_TABLE_ELEMENTS;
use canister_vm::instrument::{InjectedTrap, names};
use canister_vm::runtime::ic0::HeapType;
use canister_vm::runtime::ic0::api::{HostTrap, Ic0};
use canister_vm::state::SystemState;

use crate::module::{GLOBAL_PREFIX, Layout, MEMORY_PREFIX};

/// The largest stable memory the checks allow, in 64 KiB pages (keeps every run small).
pub const STABLE_LIMIT_PAGES: u64 = 32;

/// Largest size a memory may grow to in an executor (every side, every engine, the same): 64 MiB.
/// wasm-smith bounds declared memories, but a memory without a maximum can still grow, and a
/// module that grows a memory64 by gigabytes makes every state comparison after a call copy
/// and compare gigabytes (a 68-second module, seen as a "hang" on a loaded machine).
pub const MAX_MEMORY_BYTES: usize = 64 << 20;

/// Tables an executor may have: generated modules may have several (a canister may not, but
/// the instrumentation and the engines are checked for any module); elements per table are the
/// replica's limit, as for canisters.
pub const MAX_TABLES: usize = 100;

/// The instruction counter's value before every call of an instrumented module: effectively
/// infinite (wasm-smith's fuel bounds every call long before).
pub const BUDGET: i64 = 1 << 60;

/// A Wasm value as bits (references as null / non-null only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    /// `i32`.
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `f32` bits.
    F32(u32),
    /// `f64` bits.
    F64(u64),
    /// `v128` bits.
    V128(u128),
    /// A reference: whether it is null.
    Ref {
        /// Whether the reference is null.
        null: bool,
    },
}

impl Value {
    /// The zero / null value of `ty`.
    pub fn zero(ty: wasmparser::ValType) -> Value {
        use wasmparser::ValType as T;
        match ty {
            T::I32 => Value::I32(0),
            T::I64 => Value::I64(0),
            T::F32 => Value::F32(0),
            T::F64 => Value::F64(0),
            T::V128 => Value::V128(0),
            T::Ref(_) => Value::Ref { null: true },
        }
    }
}

/// Why a call trapped, normalized across engines and across host and injected traps.
///
/// A Wasm memory access out of bounds and a heap range of an `ic0` call out of bounds are one
/// kind, `heap out of bounds`, as in canister-vm's reject messages (native stable memory leaves
/// the heap check to `memory.copy`).
pub type TrapKind = String;

/// The trap kind of a wasmi trap code (also used for wasmtime's, mapped onto it).
pub fn trap_code_kind(code: wasmi::TrapCode) -> TrapKind {
    match code {
        wasmi::TrapCode::MemoryOutOfBounds => "heap out of bounds".into(),
        code => format!("{code:?}"),
    }
}

/// The trap kind of a host trap.
pub fn host_trap_kind(trap: &HostTrap) -> TrapKind {
    match trap {
        HostTrap::HeapOutOfBounds { .. } | HostTrap::Injected(InjectedTrap::HeapOutOfBounds) => {
            "heap out of bounds".into()
        }
        HostTrap::StableOutOfBounds { .. }
        | HostTrap::Injected(InjectedTrap::StableOutOfBounds) => "stable out of bounds".into(),
        HostTrap::StableTooBigFor32Bit { .. }
        | HostTrap::Injected(InjectedTrap::StableTooBigFor32Bit) => "stable too big".into(),
        HostTrap::Injected(InjectedTrap::InstructionLimit) => "instruction limit".into(),
        other => {
            let debug = format!("{other:?}");
            let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
            format!("host {}", &debug[..end])
        }
    }
}

/// What one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// It returned these values.
    Returned(Vec<Value>),
    /// It trapped.
    Trapped(TrapKind),
}

impl CallResult {
    /// Whether this is a stack-overflow trap (engines differ in stack depth; documented).
    pub fn is_stack_overflow(&self) -> bool {
        matches!(self, CallResult::Trapped(k) if k == "StackOverflow")
    }
}

/// One call of an exported function.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The export name.
    pub export: String,
    /// The arguments.
    pub args: Vec<Value>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}(", self.export)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match a {
                Value::I32(v) => write!(f, "{v}")?,
                Value::I64(v) => write!(f, "{v}i64")?,
                Value::F32(v) => write!(f, "f32:{v:#x}")?,
                Value::F64(v) => write!(f, "f64:{v:#x}")?,
                Value::V128(v) => write!(f, "v128:{v:#x}")?,
                Value::Ref { .. } => f.write_str("null")?,
            }
        }
        f.write_str(")")
    }
}

/// The observable state of an instance after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Every memory of the module as written, in index order.
    pub memories: Vec<Vec<u8>>,
    /// Every global of the module as written, in index order.
    pub globals: Vec<Value>,
    /// Stable memory (the host buffer, or native mode's injected memory).
    pub stable: Vec<u8>,
}

/// An instantiated module on some engine.
pub trait Exec {
    /// Calls `call`. Engine errors that are not traps are reported as `Trapped("error: …")`.
    fn call(&mut self, call: &Call) -> CallResult;
    /// The bytes of memory `index` of the module as written.
    fn memory(&self, index: u32) -> &[u8];
    /// Global `index` of the module as written.
    fn global(&mut self, index: u32) -> Value;
    /// Sets global `index` (must be mutable).
    fn set_global(&mut self, index: u32, value: Value);
    /// Stable memory's bytes.
    fn stable(&self) -> &[u8];
    /// The instruction counter (instrumented modules).
    fn counter(&mut self) -> Option<i64>;
    /// Sets the instruction counter, if any.
    fn set_counter(&mut self, value: i64);
    /// The write barrier's byte map of memory `index` (instrumented modules), mutably.
    fn dirty_map(&mut self, index: u32) -> Option<&mut [u8]>;
    /// The bytes of memory `index` of the instrumented module, injected memories included.
    fn raw_memory(&self, index: u32) -> Option<&[u8]>;
    /// The host's own dirty-page records (`ic0` writes the barrier cannot see), drained:
    /// `(heap pages, system-API stable pages)`.
    fn take_host_dirty(&mut self) -> (Vec<u64>, Vec<u64>);

    /// The observable state, for `layout`.
    fn state(&mut self, layout: &Layout) -> State {
        State {
            memories: (0..layout.memories)
                .map(|i| self.memory(i).to_vec())
                .collect(),
            globals: (0..layout.globals).map(|i| self.global(i)).collect(),
            stable: self.stable().to_vec(),
        }
    }
}

/// The host state a run starts with.
pub fn new_ic0(heap64: bool) -> Ic0 {
    Ic0::new(
        SystemState::new(vec![4]),
        Vec::new(),
        STABLE_LIMIT_PAGES,
        heap_type(heap64),
    )
}

/// The `ic0` heap type for a memory-0 address type.
pub fn heap_type(heap64: bool) -> HeapType {
    if heap64 {
        HeapType::Wasm64
    } else {
        HeapType::Wasm32
    }
}

/// Export names the executors look up.
pub(crate) fn memory_name(i: u32) -> String {
    format!("{MEMORY_PREFIX}{i}")
}
pub(crate) fn global_name(i: u32) -> String {
    format!("{GLOBAL_PREFIX}{i}")
}
pub(crate) fn dirty_name(i: u32) -> String {
    format!("{}{i}", names::DIRTY_PREFIX)
}

/// Why a module could not be instantiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantiateError {
    /// The engine rejected the module (compilation or linking).
    Rejected(String),
    /// Instantiation trapped (data segment or start function).
    Trapped(TrapKind),
}

pub mod wasmi_exec {
    //! The wasmi executor.

    use wasmi::{Global, Instance, Memory, Module, Store, Val};

    use super::*;
    use canister_vm::runtime::engine::new_engine;
    use canister_vm::runtime::wasmi_backend::{HostData, linker};

    /// A module instantiated on wasmi with canister-vm's engine configuration and host.
    pub struct WasmiExec {
        store: Store<HostData>,
        instance: Instance,
        memories: Vec<Memory>,
        globals: Vec<Option<Global>>,
        stable: Option<Memory>,
        maps: Vec<Option<Memory>>,
    }

    fn kind(e: &wasmi::Error) -> TrapKind {
        if let Some(h) = e.downcast_ref::<HostTrap>() {
            return host_trap_kind(h);
        }
        match e.as_trap_code() {
            Some(code) => trap_code_kind(code),
            None => format!("error: {e}"),
        }
    }

    fn to_val(v: Value) -> Val {
        match v {
            Value::I32(x) => Val::I32(x),
            Value::I64(x) => Val::I64(x),
            Value::F32(x) => Val::F32(wasmi::F32::from_bits(x)),
            Value::F64(x) => Val::F64(wasmi::F64::from_bits(x)),
            Value::V128(x) => Val::V128(wasmi::V128::from(x)),
            // Only null references are passed; the type is fixed by the caller.
            Value::Ref { .. } => Val::FuncRef(wasmi::Nullable::Null),
        }
    }

    fn from_val(v: &Val) -> Value {
        match v {
            Val::I32(x) => Value::I32(*x),
            Val::I64(x) => Value::I64(*x),
            Val::F32(x) => Value::F32(x.to_bits()),
            Val::F64(x) => Value::F64(x.to_bits()),
            Val::V128(x) => Value::V128(x.as_u128()),
            Val::FuncRef(r) => Value::Ref { null: r.is_null() },
            Val::ExternRef(r) => Value::Ref { null: r.is_null() },
        }
    }

    impl WasmiExec {
        /// Compiles and instantiates `wasm` (exposed, see [`crate::module::expose`]).
        pub fn new(wasm: &[u8], layout: &Layout) -> Result<WasmiExec, InstantiateError> {
            let engine = new_engine();
            let module = Module::new(&engine, wasm)
                .map_err(|e| InstantiateError::Rejected(format!("compile: {e}")))?;
            let mut host = HostData::new(new_ic0(layout.heap64));
            host.limits = wasmi::StoreLimitsBuilder::new()
                .tables(MAX_TABLES)
                .table_elements(MAX_TABLE_ELEMENTS as usize)
                .memory_size(MAX_MEMORY_BYTES)
                .build();
            let mut store = Store::new(&engine, host);
            store.limiter(|data| &mut data.limits);
            let linker = linker(&engine, heap_type(layout.heap64))
                .map_err(|e| InstantiateError::Rejected(format!("linker: {e}")))?;
            let instance = match linker.instantiate_and_start(&mut store, &module) {
                Ok(i) => i,
                Err(e) if e.as_trap_code().is_some() || e.downcast_ref::<HostTrap>().is_some() => {
                    return Err(InstantiateError::Trapped(kind(&e)));
                }
                Err(e) => return Err(InstantiateError::Rejected(format!("instantiate: {e}"))),
            };
            let memories: Vec<Memory> = (0..layout.memories)
                .map(|i| instance.get_memory(&store, &memory_name(i)))
                .collect::<Option<_>>()
                .ok_or_else(|| InstantiateError::Rejected("memory export missing".into()))?;
            let globals = (0..layout.globals)
                .map(|i| instance.get_global(&store, &global_name(i)))
                .collect();
            let stable = instance.get_memory(&store, names::STABLE_MEMORY);
            let maps = (0..layout.memories + 1)
                .map(|i| instance.get_memory(&store, &dirty_name(i)))
                .collect();
            let counter = instance.get_global(&store, names::COUNTER);
            let data = store.data_mut();
            data.heap = memories.first().copied();
            data.counter = counter;
            Ok(WasmiExec {
                store,
                instance,
                memories,
                globals,
                stable,
                maps,
            })
        }
    }

    impl Exec for WasmiExec {
        fn call(&mut self, call: &Call) -> CallResult {
            let Some(func) = self.instance.get_func(&self.store, &call.export) else {
                return CallResult::Trapped(format!("error: no export {:?}", call.export));
            };
            let ty = func.ty(&self.store);
            let args: Vec<Val> = call
                .args
                .iter()
                .zip(ty.params())
                .map(|(a, t)| match (a, t) {
                    (Value::Ref { .. }, wasmi::ValType::ExternRef) => {
                        Val::ExternRef(wasmi::Nullable::Null)
                    }
                    _ => to_val(*a),
                })
                .collect();
            let mut results: Vec<Val> = ty
                .results()
                .iter()
                .map(|t| Val::default_for_ty(*t))
                .collect();
            match func.call(&mut self.store, &args, &mut results) {
                Ok(()) => CallResult::Returned(results.iter().map(from_val).collect()),
                Err(e) => CallResult::Trapped(kind(&e)),
            }
        }
        fn memory(&self, index: u32) -> &[u8] {
            self.memories[index as usize].data(&self.store)
        }
        fn global(&mut self, index: u32) -> Value {
            match self.globals[index as usize] {
                Some(g) => from_val(&g.get(&self.store)),
                None => Value::Ref { null: true },
            }
        }
        fn set_global(&mut self, index: u32, value: Value) {
            if let Some(g) = self.globals[index as usize] {
                let _ = g.set(&mut self.store, to_val(value));
            }
        }
        fn stable(&self) -> &[u8] {
            match self.stable {
                Some(m) => m.data(&self.store),
                None => &self.store.data().ic0.stable,
            }
        }
        fn counter(&mut self) -> Option<i64> {
            let g = self.store.data().counter?;
            match g.get(&self.store) {
                Val::I64(v) => Some(v),
                _ => None,
            }
        }
        fn set_counter(&mut self, value: i64) {
            if let Some(g) = self.store.data().counter {
                let _ = g.set(&mut self.store, Val::I64(value));
            }
            self.store.data_mut().budget = value;
        }
        fn dirty_map(&mut self, index: u32) -> Option<&mut [u8]> {
            let m = (*self.maps.get(index as usize)?)?;
            Some(m.data_mut(&mut self.store))
        }
        fn raw_memory(&self, index: u32) -> Option<&[u8]> {
            match self.memories.get(index as usize) {
                Some(m) => Some(m.data(&self.store)),
                None => self.stable.map(|m| m.data(&self.store)),
            }
        }
        fn take_host_dirty(&mut self) -> (Vec<u64>, Vec<u64>) {
            let ic0 = &mut self.store.data_mut().ic0;
            (
                std::mem::take(&mut ic0.heap_dirty),
                std::mem::take(&mut ic0.stable_dirty),
            )
        }
    }
}

#[cfg(feature = "wasmtime")]
pub mod wasmtime_exec {
    //! The wasmtime executor (feature `wasmtime`).

    use std::sync::OnceLock;

    use wasmtime::{Global, Instance, Memory, Module, Store, Val};

    use super::*;
    use canister_vm::runtime::wasmtime_backend::{HostData, engine_config, linker};

    fn engine() -> &'static wasmtime::Engine {
        static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            wasmtime::Engine::new(&engine_config()).expect("canister-vm's wasmtime configuration")
        })
    }

    /// A module instantiated on wasmtime with canister-vm's engine configuration and host.
    pub struct WasmtimeExec {
        store: Store<HostData>,
        instance: Instance,
        memories: Vec<Memory>,
        globals: Vec<Option<Global>>,
        stable: Option<Memory>,
        maps: Vec<Option<Memory>>,
    }

    fn kind(e: &wasmtime::Error) -> TrapKind {
        if let Some(h) = e.downcast_ref::<HostTrap>() {
            return host_trap_kind(h);
        }
        use wasmi::TrapCode as W;
        use wasmtime::Trap as T;
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(t) => trap_code_kind(match t {
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
                other => return format!("wasmtime {other:?}"),
            }),
            None => format!("error: {e:#}"),
        }
    }

    fn to_val(v: Value, ty: Option<&wasmtime::ValType>) -> Val {
        match v {
            Value::I32(x) => Val::I32(x),
            Value::I64(x) => Val::I64(x),
            Value::F32(x) => Val::F32(x),
            Value::F64(x) => Val::F64(x),
            Value::V128(x) => Val::V128(x.into()),
            Value::Ref { .. } => match ty {
                Some(wasmtime::ValType::Ref(r)) if r.heap_type().is_extern() => {
                    Val::ExternRef(None)
                }
                _ => Val::FuncRef(None),
            },
        }
    }

    fn from_val(v: &Val) -> Value {
        match v {
            Val::I32(x) => Value::I32(*x),
            Val::I64(x) => Value::I64(*x),
            Val::F32(x) => Value::F32(*x),
            Val::F64(x) => Value::F64(*x),
            Val::V128(x) => Value::V128(x.as_u128()),
            Val::FuncRef(r) => Value::Ref { null: r.is_none() },
            Val::ExternRef(r) => Value::Ref { null: r.is_none() },
            Val::AnyRef(r) => Value::Ref { null: r.is_none() },
            Val::ExnRef(r) => Value::Ref { null: r.is_none() },
            Val::ContRef(r) => Value::Ref { null: r.is_none() },
        }
    }

    impl WasmtimeExec {
        /// Compiles and instantiates `wasm` (exposed, see [`crate::module::expose`]).
        pub fn new(wasm: &[u8], layout: &Layout) -> Result<WasmtimeExec, InstantiateError> {
            let engine = engine();
            let module = Module::new(engine, wasm)
                .map_err(|e| InstantiateError::Rejected(format!("compile: {e:#}")))?;
            let mut host = HostData::new(new_ic0(layout.heap64));
            host.limits = wasmtime::StoreLimitsBuilder::new()
                .tables(MAX_TABLES)
                .table_elements(MAX_TABLE_ELEMENTS as usize)
                .memory_size(MAX_MEMORY_BYTES)
                .build();
            let mut store = Store::new(engine, host);
            store.limiter(|data| &mut data.limits);
            let linker = linker(engine, heap_type(layout.heap64))
                .map_err(|e| InstantiateError::Rejected(format!("linker: {e:#}")))?;
            let instance = match linker.instantiate(&mut store, &module) {
                Ok(i) => i,
                Err(e)
                    if e.downcast_ref::<wasmtime::Trap>().is_some()
                        || e.downcast_ref::<HostTrap>().is_some() =>
                {
                    return Err(InstantiateError::Trapped(kind(&e)));
                }
                Err(e) => return Err(InstantiateError::Rejected(format!("instantiate: {e:#}"))),
            };
            let memories: Vec<Memory> = (0..layout.memories)
                .map(|i| instance.get_memory(&mut store, &memory_name(i)))
                .collect::<Option<_>>()
                .ok_or_else(|| InstantiateError::Rejected("memory export missing".into()))?;
            let globals = (0..layout.globals)
                .map(|i| instance.get_global(&mut store, &global_name(i)))
                .collect();
            let stable = instance.get_memory(&mut store, names::STABLE_MEMORY);
            let maps = (0..layout.memories + 1)
                .map(|i| instance.get_memory(&mut store, &dirty_name(i)))
                .collect();
            let counter = instance.get_global(&mut store, names::COUNTER);
            let data = store.data_mut();
            data.heap = memories.first().copied();
            data.counter = counter;
            Ok(WasmtimeExec {
                store,
                instance,
                memories,
                globals,
                stable,
                maps,
            })
        }
    }

    impl Exec for WasmtimeExec {
        fn call(&mut self, call: &Call) -> CallResult {
            let Some(func) = self.instance.get_func(&mut self.store, &call.export) else {
                return CallResult::Trapped(format!("error: no export {:?}", call.export));
            };
            let ty = func.ty(&self.store);
            let params: Vec<wasmtime::ValType> = ty.params().collect();
            let args: Vec<Val> = call
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| to_val(*a, params.get(i)))
                .collect();
            let mut results: Vec<Val> = ty
                .results()
                .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
                .collect();
            match func.call(&mut self.store, &args, &mut results) {
                Ok(()) => CallResult::Returned(results.iter().map(from_val).collect()),
                Err(e) => CallResult::Trapped(kind(&e)),
            }
        }
        fn memory(&self, index: u32) -> &[u8] {
            self.memories[index as usize].data(&self.store)
        }
        fn global(&mut self, index: u32) -> Value {
            match self.globals[index as usize] {
                Some(g) => from_val(&g.get(&mut self.store)),
                None => Value::Ref { null: true },
            }
        }
        fn set_global(&mut self, index: u32, value: Value) {
            if let Some(g) = self.globals[index as usize] {
                let _ = g.set(&mut self.store, to_val(value, None));
            }
        }
        fn stable(&self) -> &[u8] {
            match self.stable {
                Some(m) => m.data(&self.store),
                None => &self.store.data().ic0.stable,
            }
        }
        fn counter(&mut self) -> Option<i64> {
            let g = self.store.data().counter?;
            match g.get(&mut self.store) {
                Val::I64(v) => Some(v),
                _ => None,
            }
        }
        fn set_counter(&mut self, value: i64) {
            if let Some(g) = self.store.data().counter {
                let _ = g.set(&mut self.store, Val::I64(value));
            }
            self.store.data_mut().budget = value;
        }
        fn dirty_map(&mut self, index: u32) -> Option<&mut [u8]> {
            let m = (*self.maps.get(index as usize)?)?;
            Some(m.data_mut(&mut self.store))
        }
        fn raw_memory(&self, index: u32) -> Option<&[u8]> {
            match self.memories.get(index as usize) {
                Some(m) => Some(m.data(&self.store)),
                None => self.stable.map(|m| m.data(&self.store)),
            }
        }
        fn take_host_dirty(&mut self) -> (Vec<u64>, Vec<u64>) {
            let ic0 = &mut self.store.data_mut().ic0;
            (
                std::mem::take(&mut ic0.heap_dirty),
                std::mem::take(&mut ic0.stable_dirty),
            )
        }
    }
}
