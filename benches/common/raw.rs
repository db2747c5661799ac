//! A bare host for benchmarks that need instrumentation settings the runtime does not offer
//! (the write barrier off, elision off): instruments a canister with any
//! [`instrument::Config`], instantiates it on an engine with the runtime's `ic0` linker and runs
//! messages, with no snapshot, commit or state hash — only the Wasm execution and, when the
//! barrier is on, reading and clearing its byte maps after each message (the barrier's host-side
//! cost). Native-mode stable memory and the heap live in the instance.

use std::sync::atomic::{AtomicU64, Ordering};

use wasmi::{Caller, Linker};

use canister_vm::instrument::{self, Instrumented, barrier, names};
use canister_vm::runtime::ic0::api::{EntryPoint, HostTrap, Ic0, MessageContext, Response};
use canister_vm::runtime::wasmi_backend::{HostData, linker};
use canister_vm::state::SystemState;

/// Which write barrier the module gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    /// No barrier.
    Off,
    /// A mark after every store (no elision).
    EveryStore,
    /// The barrier as the runtime instruments it (with elision).
    Elided,
}

impl Barrier {
    /// The name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Barrier::Off => "off",
            Barrier::EveryStore => "every_store",
            Barrier::Elided => "elided",
        }
    }
}

/// Instruments `wasm` with `config` and the barrier `barrier`.
pub fn instrument(wasm: &[u8], config: &instrument::Config, barrier: Barrier) -> Instrumented {
    let mut out = instrument::instrument(wasm, &config.clone().barrier(false)).unwrap();
    if barrier != Barrier::Off {
        out.wasm =
            barrier::rewrite_with(&out.wasm, &mut out.summary, barrier == Barrier::Elided).unwrap();
    }
    out
}

/// Calls of the system-API stable read/write functions, by length, while counting is on.
pub struct StableCalls {
    /// All calls.
    pub total: AtomicU64,
    /// Calls with length 8 (the inline path in native mode at every 64-bit call site).
    pub len8: AtomicU64,
    /// Calls with length 1, 2 or 4 (the inline path only where the length is a constant).
    pub len124: AtomicU64,
}

/// The counts of [`WasmiCanister::with_counting`] canisters.
pub static STABLE_CALLS: StableCalls = StableCalls {
    total: AtomicU64::new(0),
    len8: AtomicU64::new(0),
    len124: AtomicU64::new(0),
};

fn count_call(len: u64) {
    STABLE_CALLS.total.fetch_add(1, Ordering::Relaxed);
    match len {
        8 => STABLE_CALLS.len8.fetch_add(1, Ordering::Relaxed),
        1 | 2 | 4 => STABLE_CALLS.len124.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
}

/// The heap bytes and the host data of a call.
fn split<'a>(caller: &'a mut Caller<'_, HostData>) -> (&'a mut [u8], &'a mut HostData) {
    match caller.data().heap {
        Some(heap) => heap.data_and_store_mut(caller),
        None => (&mut [], caller.data_mut()),
    }
}

fn host(result: Result<(), HostTrap>) -> Result<(), wasmi::Error> {
    result.map_err(wasmi::Error::host)
}

/// Shadows the four stable read/write host functions with counting ones (wasm32 heap).
fn counting_stable(linker: &mut Linker<HostData>) {
    linker.allow_shadowing(true);
    linker
        .func_wrap(
            "ic0",
            "stable64_read",
            |mut c: Caller<'_, HostData>, d: i64, o: i64, n: i64| {
                count_call(n as u64);
                let (heap, data) = split(&mut c);
                host(data.ic0.stable64_read(heap, d, o, n))
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "ic0",
            "stable64_write",
            |mut c: Caller<'_, HostData>, o: i64, s: i64, n: i64| {
                count_call(n as u64);
                let (heap, data) = split(&mut c);
                host(data.ic0.stable64_write(heap, o, s, n))
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "ic0",
            "stable_read",
            |mut c: Caller<'_, HostData>, d: i32, o: i32, n: i32| {
                count_call(n as u32 as u64);
                let (heap, data) = split(&mut c);
                host(data.ic0.stable_read(heap, d, o, n))
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "ic0",
            "stable_write",
            |mut c: Caller<'_, HostData>, o: i32, s: i32, n: i32| {
                count_call(n as u32 as u64);
                let (heap, data) = split(&mut c);
                host(data.ic0.stable_write(heap, o, s, n))
            },
        )
        .unwrap();
}

/// A canister instance driven directly, on some engine.
pub trait Driver {
    /// Runs update `method` with `arg`; panics unless it replies. Returns the reply.
    fn update(&mut self, method: &str, arg: &[u8]) -> Vec<u8>;
}

/// Instantiates an instrumented canister on `engine` and runs `canister_init(init_arg)`.
pub fn driver(
    engine: canister_vm::runtime::Engine,
    module: &Instrumented,
    init_arg: &[u8],
) -> Box<dyn Driver> {
    match engine {
        canister_vm::runtime::Engine::Wasmi => Box::new(WasmiCanister::new(module, init_arg)),
        #[cfg(feature = "wasmtime")]
        canister_vm::runtime::Engine::Wasmtime => {
            Box::new(wasmtime_driver::WasmtimeCanister::new(module, init_arg))
        }
        #[allow(unreachable_patterns)]
        other => panic!("engine {other} is not in this build"),
    }
}

impl Driver for WasmiCanister {
    fn update(&mut self, method: &str, arg: &[u8]) -> Vec<u8> {
        WasmiCanister::update(self, method, arg)
    }
}

/// A canister instance on wasmi, driven directly.
pub struct WasmiCanister {
    store: wasmi::Store<HostData>,
    instance: wasmi::Instance,
    maps: Vec<wasmi::Memory>,
    time: u64,
}

/// Instruction budget set before every message (the IC's update limit).
const BUDGET: i64 = 40_000_000_000;

impl WasmiCanister {
    /// Instantiates an instrumented canister and runs `canister_init(arg)`.
    pub fn new(module: &Instrumented, init_arg: &[u8]) -> WasmiCanister {
        Self::with_counting(module, init_arg, false)
    }

    /// [`WasmiCanister::new`]; with `count`, the system-API stable read/write host functions
    /// also count their calls by length in [`STABLE_CALLS`] (system-API mode only).
    pub fn with_counting(module: &Instrumented, init_arg: &[u8], count: bool) -> WasmiCanister {
        let engine = canister_vm::runtime::engine::new_engine();
        let heap_type = module.summary.heap_type;
        let compiled = wasmi::Module::new(&engine, &module.wasm[..]).unwrap();
        let ic0 = Ic0::new(SystemState::new(vec![4]), Vec::new(), 1 << 22, heap_type);
        let mut store = wasmi::Store::new(&engine, HostData::new(ic0));
        store.data_mut().ic0.begin(MessageContext::start(0));
        let mut linker = linker(&engine, heap_type).unwrap();
        if count {
            counting_stable(&mut linker);
        }
        let instance = linker.instantiate_and_start(&mut store, &compiled).unwrap();
        store.data_mut().heap = instance.get_memory(&store, names::HEAP);
        store.data_mut().counter = instance.get_global(&store, names::COUNTER);
        let maps = instance
            .exports(&store)
            .filter(|e| e.name().starts_with(names::DIRTY_PREFIX))
            .filter_map(|e| e.into_memory())
            .collect();
        let mut can = WasmiCanister {
            store,
            instance,
            maps,
            time: 1,
        };
        if can.instance.get_func(&can.store, "canister_init").is_some() {
            can.call(EntryPoint::Init, "canister_init", init_arg);
        }
        can
    }

    /// Runs update `method` with `arg`; panics unless it replies. Returns the reply.
    pub fn update(&mut self, method: &str, arg: &[u8]) -> Vec<u8> {
        match self.call(
            EntryPoint::Update,
            &format!("canister_update {method}"),
            arg,
        ) {
            Some(Response::Reply(bytes)) => bytes,
            other => panic!("{method}: {other:?}"),
        }
    }

    fn call(&mut self, entry: EntryPoint, export: &str, arg: &[u8]) -> Option<Response> {
        self.time += 1;
        let data = self.store.data_mut();
        data.ic0.begin(MessageContext {
            method: export.to_string(),
            arg: arg.to_vec(),
            ..MessageContext::new(entry, self.time)
        });
        data.budget = BUDGET;
        if let Some(counter) = data.counter {
            counter
                .set(&mut self.store, wasmi::Val::I64(BUDGET))
                .unwrap();
        }
        let func = self
            .instance
            .get_typed_func::<(), ()>(&self.store, export)
            .unwrap();
        func.call(&mut self.store, ()).unwrap();
        let dirty = self.drain();
        std::hint::black_box(dirty);
        self.store.data_mut().ic0.take_response()
    }

    /// Reads and clears the byte maps: the number of dirty pages.
    fn drain(&mut self) -> usize {
        let mut dirty = 0;
        for map in &self.maps {
            for chunk in map.data_mut(&mut self.store).chunks_mut(64) {
                if chunk.iter().all(|&b| b == 0) {
                    continue;
                }
                for b in chunk {
                    if *b != 0 {
                        *b = 0;
                        dirty += 1;
                    }
                }
            }
        }
        dirty
    }
}

/// Export name of the counter [`count_general_calls`] adds.
const GENERAL_CALLS: &str = "bench:general_calls";

impl StableCalls {
    /// The counts now: `[total, len8, len124]`.
    pub fn snapshot(&self) -> [u64; 3] {
        [
            self.total.load(Ordering::Relaxed),
            self.len8.load(Ordering::Relaxed),
            self.len124.load(Ordering::Relaxed),
        ]
    }
}

/// A counting build of a native-mode module: the injected stable read/write functions (the
/// general, called path; the inline fast path does not call them) increment an exported i64
/// global on entry. Read it with [`WasmiCanister::general_calls`].
pub fn count_general_calls(module: &Instrumented) -> Instrumented {
    use std::collections::HashSet;
    use wasm_encoder::reencode::{self, Reencode};
    use wasm_encoder::{ConstExpr, ExportKind, GlobalType, Instruction as I, ValType};

    // "stable64_read (func 12)" -> 12, for the read/write functions.
    let targets: HashSet<u32> = module
        .summary
        .injected_functions
        .iter()
        .filter(|s| s.contains("_read ") || s.contains("_write "))
        .filter_map(|s| {
            s.rsplit_once("(func ")
                .and_then(|(_, i)| i.trim_end_matches(')').parse().ok())
        })
        .collect();
    assert!(
        !targets.is_empty(),
        "no injected stable read/write functions"
    );
    let (mut imported_funcs, mut globals) = (0u32, 0u32);
    for payload in wasmparser::Parser::new(0).parse_all(&module.wasm) {
        match payload.unwrap() {
            wasmparser::Payload::ImportSection(s) => {
                for import in s {
                    match import.unwrap().ty {
                        wasmparser::TypeRef::Func(_) => imported_funcs += 1,
                        wasmparser::TypeRef::Global(_) => globals += 1,
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::GlobalSection(s) => globals += s.count(),
            _ => {}
        }
    }

    struct Count {
        targets: HashSet<u32>,
        next_body: u32,
        global: u32,
    }
    impl Reencode for Count {
        type Error = std::convert::Infallible;
        fn parse_global_section(
            &mut self,
            section: &mut wasm_encoder::GlobalSection,
            reader: wasmparser::GlobalSectionReader<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            reencode::utils::parse_global_section(self, section, reader)?;
            section.global(
                GlobalType {
                    val_type: ValType::I64,
                    mutable: true,
                    shared: false,
                },
                &ConstExpr::i64_const(0),
            );
            Ok(())
        }
        fn parse_export_section(
            &mut self,
            exports: &mut wasm_encoder::ExportSection,
            reader: wasmparser::ExportSectionReader<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            reencode::utils::parse_export_section(self, exports, reader)?;
            exports.export(GENERAL_CALLS, ExportKind::Global, self.global);
            Ok(())
        }
        fn parse_function_body(
            &mut self,
            code: &mut wasm_encoder::CodeSection,
            func: wasmparser::FunctionBody<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            let index = self.next_body;
            self.next_body += 1;
            let mut f = self.new_function_with_parsed_locals(&func)?;
            if self.targets.contains(&index) {
                f.instruction(&I::GlobalGet(self.global));
                f.instruction(&I::I64Const(1));
                f.instruction(&I::I64Add);
                f.instruction(&I::GlobalSet(self.global));
            }
            let mut reader = func.get_operators_reader()?;
            while !reader.eof() {
                f.instruction(&self.parse_instruction(&mut reader)?);
            }
            code.function(&f);
            Ok(())
        }
    }
    let mut pass = Count {
        targets,
        next_body: imported_funcs,
        global: globals,
    };
    let mut out = wasm_encoder::Module::new();
    pass.parse_core_module(&mut out, wasmparser::Parser::new(0), &module.wasm)
        .unwrap();
    Instrumented {
        wasm: out.finish(),
        summary: module.summary.clone(),
    }
}

impl WasmiCanister {
    /// The counter of a [`count_general_calls`] build.
    pub fn general_calls(&self) -> u64 {
        let global = self
            .instance
            .get_global(&self.store, GENERAL_CALLS)
            .expect("not a counting build");
        match global.get(&self.store) {
            wasmi::Val::I64(v) => v as u64,
            other => panic!("counter: {other:?}"),
        }
    }
}

#[cfg(feature = "wasmtime")]
mod wasmtime_driver {
    use canister_vm::instrument::{Instrumented, names};
    use canister_vm::runtime::ic0::api::{EntryPoint, Ic0, MessageContext, Response};
    use canister_vm::runtime::wasmtime_backend::{HostData, engine_config, linker};
    use canister_vm::state::SystemState;

    use super::{BUDGET, Driver};

    /// A canister instance on wasmtime, driven directly (as [`super::WasmiCanister`]).
    pub struct WasmtimeCanister {
        store: wasmtime::Store<HostData>,
        instance: wasmtime::Instance,
        maps: Vec<wasmtime::Memory>,
        time: u64,
    }

    impl WasmtimeCanister {
        pub fn new(module: &Instrumented, init_arg: &[u8]) -> WasmtimeCanister {
            let engine = wasmtime::Engine::new(&engine_config()).unwrap();
            let heap_type = module.summary.heap_type;
            let compiled = wasmtime::Module::new(&engine, &module.wasm[..]).unwrap();
            let ic0 = Ic0::new(SystemState::new(vec![4]), Vec::new(), 1 << 22, heap_type);
            let mut store = wasmtime::Store::new(&engine, HostData::new(ic0));
            store.data_mut().ic0.begin(MessageContext::start(0));
            let linker = linker(&engine, heap_type).unwrap();
            let instance = linker.instantiate(&mut store, &compiled).unwrap();
            let heap = instance.get_memory(&mut store, names::HEAP);
            let counter = instance.get_global(&mut store, names::COUNTER);
            store.data_mut().heap = heap;
            store.data_mut().counter = counter;
            let names: Vec<String> = instance
                .exports(&mut store)
                .map(|e| e.name().to_string())
                .filter(|n| n.starts_with(names::DIRTY_PREFIX))
                .collect();
            let maps = names
                .iter()
                .filter_map(|n| instance.get_memory(&mut store, n))
                .collect();
            let mut can = WasmtimeCanister {
                store,
                instance,
                maps,
                time: 1,
            };
            if can
                .instance
                .get_func(&mut can.store, "canister_init")
                .is_some()
            {
                can.call(EntryPoint::Init, "canister_init", init_arg);
            }
            can
        }

        fn call(&mut self, entry: EntryPoint, export: &str, arg: &[u8]) -> Option<Response> {
            self.time += 1;
            let data = self.store.data_mut();
            data.ic0.begin(MessageContext {
                method: export.to_string(),
                arg: arg.to_vec(),
                ..MessageContext::new(entry, self.time)
            });
            data.budget = BUDGET;
            if let Some(counter) = data.counter {
                counter
                    .set(&mut self.store, wasmtime::Val::I64(BUDGET))
                    .unwrap();
            }
            let func = self
                .instance
                .get_typed_func::<(), ()>(&mut self.store, export)
                .unwrap();
            func.call(&mut self.store, ()).unwrap();
            let mut dirty = 0usize;
            for map in &self.maps {
                for chunk in map.data_mut(&mut self.store).chunks_mut(64) {
                    if chunk.iter().all(|&b| b == 0) {
                        continue;
                    }
                    for b in chunk {
                        if *b != 0 {
                            *b = 0;
                            dirty += 1;
                        }
                    }
                }
            }
            std::hint::black_box(dirty);
            self.store.data_mut().ic0.take_response()
        }
    }

    impl Driver for WasmtimeCanister {
        fn update(&mut self, method: &str, arg: &[u8]) -> Vec<u8> {
            match self.call(
                EntryPoint::Update,
                &format!("canister_update {method}"),
                arg,
            ) {
                Some(Response::Reply(bytes)) => bytes,
                other => panic!("{method}: {other:?}"),
            }
        }
    }
}
