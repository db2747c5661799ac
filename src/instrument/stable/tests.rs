//! Tests of the stable-memory pass: every injected `ic0.stable*` function run on wasmi, the
//! constant-length fast path against the general path, native mode against syscall mode (over a
//! test host keeping stable memory in a `Vec<u8>`), heap layouts (memory64 heap, several
//! memories, no memory), and the sections the pass must carry over.

use wasmi::{Caller, Extern, Linker, Memory, Module, Store, Val};

use super::super::{Config, InjectedTrap, StableMode, instrument, names, validate};

const PAGE: i64 = 65536;
/// Heap size of the test modules (2 pages).
const HEAP_END: i64 = 2 * PAGE;
/// A budget no test call comes near.
const BUDGET: i64 = 1 << 40;

/// One module calling each stable function from an export of the same shape, plus
/// constant-length call sites (the fast path in native mode) and heap accessors. `$HEAP` is
/// replaced by the heap's memory declaration and `$A` by its address type.
const OPS: &str = r#"
(module
  (import "ic0" "stable_size" (func $size32 (result i32)))
  (import "ic0" "stable_grow" (func $grow32 (param i32) (result i32)))
  (import "ic0" "stable_read" (func $read32 (param i32 i32 i32)))
  (import "ic0" "stable_write" (func $write32 (param i32 i32 i32)))
  (import "ic0" "stable64_size" (func $size64 (result i64)))
  (import "ic0" "stable64_grow" (func $grow64 (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $read64 (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $write64 (param i64 i64 i64)))
  $HEAP
  (func (export "size32") (result i32) (call $size32))
  (func (export "grow32") (param i32) (result i32) (call $grow32 (local.get 0)))
  (func (export "read32") (param i32 i32 i32) (call $read32 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "write32") (param i32 i32 i32) (call $write32 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "size64") (result i64) (call $size64))
  (func (export "grow64") (param i64) (result i64) (call $grow64 (local.get 0)))
  (func (export "read64") (param i64 i64 i64) (call $read64 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "write64") (param i64 i64 i64) (call $write64 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "read64_1") (param i64 i64) (call $read64 (local.get 0) (local.get 1) (i64.const 1)))
  (func (export "read64_2") (param i64 i64) (call $read64 (local.get 0) (local.get 1) (i64.const 2)))
  (func (export "read64_4") (param i64 i64) (call $read64 (local.get 0) (local.get 1) (i64.const 4)))
  (func (export "read64_8") (param i64 i64) (call $read64 (local.get 0) (local.get 1) (i64.const 8)))
  (func (export "write64_1") (param i64 i64) (call $write64 (local.get 0) (local.get 1) (i64.const 1)))
  (func (export "write64_2") (param i64 i64) (call $write64 (local.get 0) (local.get 1) (i64.const 2)))
  (func (export "write64_4") (param i64 i64) (call $write64 (local.get 0) (local.get 1) (i64.const 4)))
  (func (export "write64_8") (param i64 i64) (call $write64 (local.get 0) (local.get 1) (i64.const 8)))
  ;; a constant length that takes the general path
  (func (export "read64_16") (param i64 i64) (call $read64 (local.get 0) (local.get 1) (i64.const 16)))
  (func (export "load") (param $A) (result i64) (i64.load (local.get 0)))
  (func (export "store") (param $A i64) (i64.store (local.get 0) (local.get 1)))
)
"#;

/// Constant-length call sites in [`OPS`] that take the fast path in native mode.
const FAST_PATH_SITES: u64 = 8;

fn ops_wat(heap: &str, addr: &str) -> String {
    OPS.replace("$HEAP", heap).replace("$A", addr)
}

fn ops32() -> String {
    ops_wat("(memory 2)", "i32")
}

/// What a call did, with trap reasons reduced to the named injected traps. As in the runtime, an
/// engine out-of-bounds access (the fast path lets the heap access itself trap) is a heap out of
/// bounds.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok(Vec<V>),
    Trap(InjectedTrap),
}

/// A result value (`wasmi::Val` has no `PartialEq`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum V {
    I32(i32),
    I64(i64),
}

impl From<&Val> for V {
    fn from(v: &Val) -> V {
        match v {
            Val::I32(x) => V::I32(*x),
            Val::I64(x) => V::I64(*x),
            other => panic!("unexpected result {other:?}"),
        }
    }
}

use Outcome::Trap;

const SOOB: Outcome = Trap(InjectedTrap::StableOutOfBounds);
const HOOB: Outcome = Trap(InjectedTrap::HeapOutOfBounds);
const BIG: Outcome = Trap(InjectedTrap::StableTooBigFor32Bit);

fn ok() -> Outcome {
    Outcome::Ok(vec![])
}
fn ok32(v: i32) -> Outcome {
    Outcome::Ok(vec![V::I32(v)])
}
fn ok64(v: i64) -> Outcome {
    Outcome::Ok(vec![V::I64(v)])
}

/// The syscall-mode host: `ic0.stable*` over a `Vec<u8>` with the IC's semantics (the same as
/// `runtime::ic0::api`), and `canister_vm.trap`. Traps exit with the [`InjectedTrap`] code of
/// their reason, so both modes report alike.
#[derive(Debug, Default)]
struct Host {
    stable: Vec<u8>,
    limit_pages: u64,
}

const MAX_32_BIT_PAGES: u64 = 65536;

fn exit(trap: InjectedTrap) -> wasmi::Error {
    wasmi::Error::i32_exit(trap.code())
}

/// What the real host's grow charges (`charge::STABLE_GROW`): taken from the counter, if metered.
fn charge_grow(caller: &mut Caller<'_, Host>) {
    if let Some(counter) = caller
        .get_export(names::COUNTER)
        .and_then(Extern::into_global)
        && let Val::I64(left) = counter.get(&*caller)
    {
        counter
            .set(&mut *caller, Val::I64(left - super::STABLE_GROW_COST))
            .unwrap();
    }
}

fn heap(caller: &Caller<'_, Host>) -> Memory {
    caller
        .get_export(names::HEAP)
        .and_then(Extern::into_memory)
        .expect("the heap is exported")
}

impl Host {
    fn pages(&self) -> u64 {
        self.stable.len() as u64 / PAGE as u64
    }
    fn check_32_bit(&self) -> Result<(), wasmi::Error> {
        match self.pages() > MAX_32_BIT_PAGES {
            true => Err(exit(InjectedTrap::StableTooBigFor32Bit)),
            false => Ok(()),
        }
    }
    fn grow(&mut self, add: u64, limit: u64) -> i64 {
        let old = self.pages();
        match old.checked_add(add) {
            Some(new) if new <= limit => {
                self.stable.resize((new * PAGE as u64) as usize, 0);
                old as i64
            }
            _ => -1,
        }
    }
    fn stable_range(&self, off: u64, len: u64) -> Result<std::ops::Range<usize>, wasmi::Error> {
        match off.checked_add(len) {
            Some(end) if end <= self.stable.len() as u64 => Ok(off as usize..end as usize),
            _ => Err(exit(InjectedTrap::StableOutOfBounds)),
        }
    }
}

fn heap_range(heap: &[u8], addr: u64, len: u64) -> Result<std::ops::Range<usize>, wasmi::Error> {
    match addr.checked_add(len) {
        Some(end) if end <= heap.len() as u64 => Ok(addr as usize..end as usize),
        _ => Err(exit(InjectedTrap::HeapOutOfBounds)),
    }
}

fn read(c: &mut Caller<'_, Host>, dst: u64, off: u64, len: u64) -> Result<(), wasmi::Error> {
    let range = c.data().stable_range(off, len)?;
    let memory = heap(c);
    let (heap, host) = memory.data_and_store_mut(c);
    let dst = heap_range(heap, dst, len)?;
    heap[dst].copy_from_slice(&host.stable[range]);
    Ok(())
}

fn write(c: &mut Caller<'_, Host>, off: u64, src: u64, len: u64) -> Result<(), wasmi::Error> {
    let range = c.data().stable_range(off, len)?;
    let memory = heap(c);
    let (heap, host) = memory.data_and_store_mut(c);
    let src = heap_range(heap, src, len)?;
    host.stable[range].copy_from_slice(&heap[src]);
    Ok(())
}

type R<T> = Result<T, wasmi::Error>;

fn linker(engine: &wasmi::Engine) -> Linker<Host> {
    let mut l = Linker::new(engine);
    l.func_wrap(names::HOST_MODULE, "trap", |code: i32| -> R<()> {
        Err(wasmi::Error::i32_exit(code))
    })
    .unwrap();
    l.func_wrap("ic0", "msg_reply", || {}).unwrap();
    l.func_wrap("ic0", "debug_print", |_: i32, _: i32| {})
        .unwrap();
    l.func_wrap("ic0", "stable_size", |c: Caller<'_, Host>| -> R<i32> {
        c.data().check_32_bit()?;
        Ok(c.data().pages() as i32)
    })
    .unwrap();
    l.func_wrap(
        "ic0",
        "stable_grow",
        |mut c: Caller<'_, Host>, n: i32| -> R<i32> {
            charge_grow(&mut c);
            c.data().check_32_bit()?;
            let limit = c.data().limit_pages.min(MAX_32_BIT_PAGES);
            Ok(c.data_mut().grow(n as u32 as u64, limit) as i32)
        },
    )
    .unwrap();
    l.func_wrap(
        "ic0",
        "stable_read",
        |mut c: Caller<'_, Host>, dst: i32, off: i32, len: i32| -> R<()> {
            c.data().check_32_bit()?;
            if len == 0 {
                return Ok(());
            }
            read(
                &mut c,
                dst as u32 as u64,
                off as u32 as u64,
                len as u32 as u64,
            )
        },
    )
    .unwrap();
    l.func_wrap(
        "ic0",
        "stable_write",
        |mut c: Caller<'_, Host>, off: i32, src: i32, len: i32| -> R<()> {
            c.data().check_32_bit()?;
            write(
                &mut c,
                off as u32 as u64,
                src as u32 as u64,
                len as u32 as u64,
            )
        },
    )
    .unwrap();
    l.func_wrap("ic0", "stable64_size", |c: Caller<'_, Host>| -> i64 {
        c.data().pages() as i64
    })
    .unwrap();
    l.func_wrap(
        "ic0",
        "stable64_grow",
        |mut c: Caller<'_, Host>, n: i64| -> i64 {
            charge_grow(&mut c);
            let limit = c.data().limit_pages;
            c.data_mut().grow(n as u64, limit)
        },
    )
    .unwrap();
    l.func_wrap(
        "ic0",
        "stable64_read",
        |mut c: Caller<'_, Host>, dst: i64, off: i64, len: i64| -> R<()> {
            if len == 0 {
                return Ok(());
            }
            read(&mut c, dst as u64, off as u64, len as u64)
        },
    )
    .unwrap();
    l.func_wrap(
        "ic0",
        "stable64_write",
        |mut c: Caller<'_, Host>, off: i64, src: i64, len: i64| -> R<()> {
            if len == 0 {
                return Ok(());
            }
            write(&mut c, off as u64, src as u64, len as u64)
        },
    )
    .unwrap();
    l
}

/// An instantiated instrumented module.
struct Canister {
    store: Store<Host>,
    instance: wasmi::Instance,
    mode: StableMode,
    /// Instructions used by each call so far (0 when not metered).
    used: Vec<i64>,
    summary: super::super::Summary,
}

impl Canister {
    fn new(wat: &str, config: Config, mode: StableMode, limit_pages: u64) -> Canister {
        let wasm = wat::parse_str(wat).unwrap();
        let out = instrument(&wasm, &config.stable(mode).stable_limit_pages(limit_pages))
            .expect("instruments");
        validate(&out.wasm).expect("instrumented output validates");
        let engine = crate::runtime::engine::new_engine();
        let module = Module::new(&engine, &out.wasm[..]).unwrap();
        let host = Host {
            stable: Vec::new(),
            limit_pages,
        };
        let mut store = Store::new(&engine, host);
        let instance = linker(&engine)
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        Canister {
            store,
            instance,
            mode,
            used: Vec::new(),
            summary: out.summary,
        }
    }

    /// The OPS module, wasm32 heap, metered, with the default limit.
    fn ops(mode: StableMode) -> Canister {
        Canister::new(&ops32(), Config::default(), mode, 6_553_600)
    }

    fn global(&self, name: &str) -> Option<wasmi::Global> {
        self.instance.get_global(&self.store, name)
    }

    fn call(&mut self, export: &str, args: &[Val]) -> Outcome {
        let counter = self.global(names::COUNTER);
        if let Some(c) = counter {
            c.set(&mut self.store, Val::I64(BUDGET)).unwrap();
        }
        let func = self
            .instance
            .get_func(&self.store, export)
            .unwrap_or_else(|| panic!("no export {export}"));
        let mut results: Vec<Val> = func
            .ty(&self.store)
            .results()
            .iter()
            .map(|t| Val::default_for_ty(*t))
            .collect();
        let result = func.call(&mut self.store, args, &mut results);
        let used = counter.map_or(0, |c| BUDGET - c.get(&self.store).i64().unwrap());
        self.used.push(used);
        match result {
            Ok(()) => Outcome::Ok(results.iter().map(V::from).collect()),
            Err(e) => {
                if let Some(code) = e.i32_exit_status() {
                    Trap(InjectedTrap::from_code(code).expect("a known trap code"))
                } else if e.as_trap_code() == Some(wasmi::TrapCode::MemoryOutOfBounds) {
                    HOOB
                } else {
                    panic!("{export}{args:?}: unexpected error {e}")
                }
            }
        }
    }

    fn stable(&self) -> Vec<u8> {
        match self.mode {
            StableMode::Native => self
                .instance
                .get_memory(&self.store, names::STABLE_MEMORY)
                .expect("stable memory is exported")
                .data(&self.store)
                .to_vec(),
            StableMode::Syscall => self.store.data().stable.clone(),
        }
    }

    fn heap(&self) -> Vec<u8> {
        self.instance
            .get_memory(&self.store, names::HEAP)
            .expect("the heap is exported")
            .data(&self.store)
            .to_vec()
    }

    /// The host's view of the stable size: `canister_vm:stable_bytes` (native mode).
    fn stable_bytes(&self) -> i64 {
        self.global(names::STABLE_BYTES)
            .unwrap()
            .get(&self.store)
            .i64()
            .unwrap()
    }
}

fn i32s(v: &[i64]) -> Vec<Val> {
    v.iter().map(|&x| Val::I32(x as i32)).collect()
}
fn i64s(v: &[i64]) -> Vec<Val> {
    v.iter().map(|&x| Val::I64(x)).collect()
}

/// One call of a script: export name and arguments (i32 exports get their arguments wrapped).
type Step = (&'static str, &'static [i64]);

fn args_for(export: &str, args: &[i64]) -> Vec<Val> {
    match export.ends_with("32") {
        true => i32s(args),
        false => i64s(args),
    }
}

fn run_script(c: &mut Canister, script: &[Step]) -> Vec<Outcome> {
    script
        .iter()
        .map(|(export, args)| {
            let args = args_for(export, args);
            c.call(export, &args)
        })
        .collect()
}

/// Fills heap bytes 4096..4096+256 with 1, 2, 3, ... as write sources.
fn fill_heap(c: &mut Canister) {
    for i in 0..32i64 {
        let mut v = 0i64;
        for b in 0..8 {
            v |= ((i * 8 + b + 1) & 0xff) << (8 * b);
        }
        c.call("store", &[Val::I32((4096 + 8 * i) as i32), Val::I64(v)]);
    }
}

#[test]
fn sizes_and_growth_follow_the_ic() {
    let mut c = Canister::ops(StableMode::Native);
    assert_eq!(c.stable_bytes(), 0);
    let steps = run_script(
        &mut c,
        &[
            ("size64", &[]),
            ("size32", &[]),
            ("grow64", &[3]),
            ("grow32", &[2]),
            ("size64", &[]),
            ("size32", &[]),
            ("grow64", &[0]),
        ],
    );
    assert_eq!(
        steps,
        [
            ok64(0),
            ok32(0),
            ok64(0),
            ok32(3),
            ok64(5),
            ok32(5),
            ok64(5)
        ]
    );
    assert_eq!(
        c.stable_bytes(),
        5 * PAGE,
        "grow keeps the global up to date"
    );
    assert_eq!(c.stable().len() as i64, 5 * PAGE);
}

#[test]
fn grow_returns_minus_one_past_the_limit() {
    let mut c = Canister::new(&ops32(), Config::default(), StableMode::Native, 10);
    let steps = run_script(
        &mut c,
        &[
            ("grow64", &[6]),
            ("grow64", &[5]),  // 11 > 10
            ("grow32", &[5]),  // 11 > 10
            ("grow64", &[-1]), // u64::MAX pages
            ("grow32", &[-1]), // u32::MAX pages
            ("grow32", &[4]),  // exactly the limit
            ("grow64", &[1]),
            ("size64", &[]),
        ],
    );
    assert_eq!(
        steps,
        [
            ok64(0),
            ok64(-1),
            ok32(-1),
            ok64(-1),
            ok32(-1),
            ok32(6),
            ok64(-1),
            ok64(10)
        ]
    );
    assert_eq!(c.stable_bytes(), 10 * PAGE);
    // The 32-bit grow also refuses a new size above 4 GiB, whatever the limit.
    let mut c = Canister::ops(StableMode::Native);
    assert_eq!(c.call("grow32", &i32s(&[65_537])), ok32(-1));
    assert_eq!(c.call("grow32", &i32s(&[65_536])), ok32(0));
    assert_eq!(c.call("grow32", &i32s(&[1])), ok32(-1));
    assert_eq!(c.call("size32", &[]), ok32(65_536));
}

/// The 32-bit API traps once stable memory exceeds 4 GiB. wasmi zero-fills grown memory
/// (`Vec::resize`), so a real 4 GiB grow commits 4 GiB of RAM; this test instead sets the
/// host-owned `canister_vm:stable_bytes` global (the size every injected function reads) above
/// 4 GiB. `tests/all/stable_modes.rs` grows for real through the runtime.
#[test]
fn the_32_bit_api_traps_when_stable_memory_exceeds_4_gib() {
    let mut c = Canister::ops(StableMode::Native);
    let g = c.global(names::STABLE_BYTES).unwrap();
    g.set(&mut c.store, Val::I64(65_536 * PAGE)).unwrap();
    assert_eq!(c.call("size32", &[]), ok32(65_536), "exactly 4 GiB is fine");
    g.set(&mut c.store, Val::I64(65_537 * PAGE)).unwrap();
    let steps = run_script(
        &mut c,
        &[
            ("size32", &[]),
            ("grow32", &[0]),
            ("read32", &[0, 0, 0]), // even with zero length
            ("write32", &[0, 0, 0]),
            ("read32", &[0, 0, 8]),
            ("size64", &[]),
        ],
    );
    assert_eq!(steps, [BIG, BIG, BIG, BIG, BIG, ok64(65_537)]);
}

/// The edge cases of reads and writes, through the general path (non-constant lengths).
const EDGES: &[Step] = &[
    // Zero length: the 64-bit calls and the 32-bit read return before any check, even on an
    // empty stable memory with wild addresses.
    ("read64", &[1 << 40, 1 << 50, 0]),
    ("write64", &[1 << 50, 1 << 40, 0]),
    ("read32", &[0xFFFF_FFF0, 0xFFFF_FFF0, 0]),
    // The 32-bit write checks bounds first, even for zero length.
    ("write32", &[70_000, 0, 0]),
    ("write32", &[0, 0, 0]),
    ("grow64", &[1]),
    ("write32", &[PAGE, 0, 0]),         // zero bytes exactly at the end
    ("write32", &[0, HEAP_END + 1, 0]), // zero bytes past the heap end
    // Normal use.
    ("write64", &[100, 4096, 16]),
    ("read64", &[200, 100, 16]),
    ("write32", &[300, 4100, 7]),
    ("read32", &[400, 298, 9]),
    // Exact end, one past the end.
    ("write64", &[PAGE - 8, 4096, 8]),
    ("read64", &[500, PAGE - 8, 8]),
    ("read64", &[500, PAGE - 7, 8]),
    ("write64", &[PAGE - 7, 4096, 8]),
    ("read32", &[600, PAGE - 4, 4]),
    ("read32", &[600, PAGE - 3, 4]),
    ("write32", &[PAGE - 3, 4096, 4]),
    // offset + size overflows.
    ("read64", &[0, -1, 2]),
    ("write64", &[-2, 4096, 4]),
    ("read64", &[0, 8, -1]),
    // Heap out of bounds: a distinct reason.
    ("read64", &[HEAP_END - 4, 0, 8]),
    ("write64", &[0, HEAP_END - 4, 8]),
    ("read64", &[1 << 33, 0, 8]), // a heap address beyond 4 GiB
    ("read64", &[-1, 0, 1]),
    ("read32", &[HEAP_END - 4, 0, 8]),
    ("write32", &[0, HEAP_END - 1, 2]),
    ("read64", &[HEAP_END - 8, 0, 8]), // exactly at the heap's end
    // Both out of bounds: stable is checked first.
    ("read64", &[HEAP_END + 10, PAGE + 10, 8]),
    ("write32", &[PAGE + 1, -1, 4]),
];

fn edges_expected() -> Vec<Outcome> {
    vec![
        ok(),
        ok(),
        ok(),
        SOOB,
        ok(),
        ok64(0),
        ok(),
        HOOB,
        ok(),
        ok(),
        ok(),
        ok(),
        ok(),
        ok(),
        SOOB,
        SOOB,
        ok(),
        SOOB,
        SOOB,
        SOOB,
        SOOB,
        SOOB,
        HOOB,
        HOOB,
        HOOB,
        HOOB,
        HOOB,
        HOOB,
        ok(),
        SOOB,
        SOOB,
    ]
}

#[test]
fn reads_and_writes_at_the_edges() {
    let mut c = Canister::ops(StableMode::Native);
    fill_heap(&mut c);
    let steps = run_script(&mut c, EDGES);
    for (i, (got, want)) in steps.iter().zip(edges_expected()).enumerate() {
        assert_eq!(got, &want, "step {i}: {:?}", EDGES[i]);
    }
    let stable = c.stable();
    let heap = c.heap();
    let src = |i: usize| (i + 1) as u8; // heap[4096 + i]
    assert_eq!(stable[100..116], (0..16).map(src).collect::<Vec<_>>()[..]);
    assert_eq!(heap[200..216], stable[100..116]);
    assert_eq!(stable[300..307], (4..11).map(src).collect::<Vec<_>>()[..]);
    assert_eq!(heap[400..409], stable[298..307]);
    assert_eq!(
        stable[PAGE as usize - 8..],
        (0..8).map(src).collect::<Vec<_>>()[..]
    );
    assert_eq!(heap[500..508], stable[PAGE as usize - 8..]);
}

/// Stable out of bounds is always the injected trap (code 2), never the engine's out-of-bounds
/// trap, which the runtime reports as a heap out of bounds. Heap ranges are left to the engine
/// (`memory.copy`, or the fast path's load/store on memory 0) except where an address would wrap
/// when narrowed to a 32-bit heap: that is the injected heap trap (code 3).
#[test]
fn traps_name_their_reason() {
    let mut c = Canister::ops(StableMode::Native);
    c.call("grow64", &i64s(&[1]));
    let trap = |c: &mut Canister, export: &str, args: &[i64]| {
        let func = c.instance.get_func(&c.store, export).unwrap();
        let err = func.call(&mut c.store, &i64s(args), &mut []).unwrap_err();
        match err.i32_exit_status() {
            Some(code) => Ok(InjectedTrap::from_code(code).unwrap()),
            None => Err(err.as_trap_code()),
        }
    };
    let soob = Ok(InjectedTrap::StableOutOfBounds);
    assert_eq!(trap(&mut c, "read64", &[0, PAGE, 1]), soob);
    assert_eq!(trap(&mut c, "write64", &[PAGE, 0, 1]), soob);
    assert_eq!(trap(&mut c, "read64_8", &[0, PAGE - 7]), soob);
    assert_eq!(trap(&mut c, "write64_8", &[-1, 0]), soob);
    assert_eq!(trap(&mut c, "read64", &[HEAP_END, PAGE, 1]), soob);
    let engine_oob = Err(Some(wasmi::TrapCode::MemoryOutOfBounds));
    let injected_hoob = Ok(InjectedTrap::HeapOutOfBounds);
    for (export, args) in [
        ("read64", &[HEAP_END, 0, 1][..]),
        ("write64", &[0, HEAP_END, 1]),
        ("read64_8", &[HEAP_END - 7, 0]),
        ("read64", &[1 << 32, 0, 1]),
    ] {
        let got = trap(&mut c, export, args);
        assert!(
            got == engine_oob || got == injected_hoob,
            "{export}{args:?}: {got:?}"
        );
    }
    assert_eq!(
        InjectedTrap::HeapOutOfBounds.to_string(),
        "heap out of bounds"
    );
    assert_eq!(
        InjectedTrap::StableOutOfBounds.to_string(),
        "stable memory out of bounds"
    );
}

/// Every constant-length call site: the inline fast path gives what the general function gives.
#[test]
fn fast_paths_match_the_general_path() {
    let mut c = Canister::ops(StableMode::Native);
    assert_eq!(c.summary.stable_fast_paths, FAST_PATH_SITES);
    fill_heap(&mut c);
    let end = 2 * PAGE;
    let mut general = Canister::ops(StableMode::Native);
    fill_heap(&mut general);
    for c in [&mut c, &mut general] {
        assert_eq!(
            c.call("read64_8", &i64s(&[100, 0])),
            SOOB,
            "empty stable memory"
        );
        assert_eq!(c.call("grow64", &i64s(&[2])), ok64(0));
    }
    let mut cases = Vec::new();
    for len in [1i64, 2, 4, 8] {
        for (a, b) in [
            (0, 4096),
            (end - len, 4096 + 8),
            (end - len + 1, 4096),
            (-len, 4096),
            (-1, 4096),
            (77, HEAP_END - len),
            (77, HEAP_END - len + 1),
            (77, 1 << 32),
            (77, -1),
            (end, 1 << 32),
        ] {
            cases.push((format!("write64_{len}"), a, b));
            cases.push((format!("read64_{len}"), b - 4096 + 1024, a));
            cases.push((format!("read64_{len}"), b, a));
        }
    }
    for (export, a, b) in &cases {
        let fast = c.call(export, &i64s(&[*a, *b]));
        let len: i64 = export.rsplit('_').next().unwrap().parse().unwrap();
        let which = export.split('_').next().unwrap();
        let slow = general.call(which, &i64s(&[*a, *b, len]));
        assert_eq!(fast, slow, "{export}({a}, {b})");
    }
    assert!(c.stable() == general.stable(), "stable bytes differ");
    assert!(c.heap() == general.heap(), "heap bytes differ");
    // A constant length other than 1, 2, 4, 8 takes the general path.
    assert_eq!(c.call("read64_16", &i64s(&[0, 0])), ok());
    assert_eq!(c.call("read64_16", &i64s(&[0, end - 15])), SOOB);
}

/// A script over every function and edge, the fast paths included.
fn differential_script() -> Vec<Step> {
    let mut s: Vec<Step> = vec![
        ("size64", &[]),
        ("size32", &[]),
        ("read64_8", &[0, 0]),
        ("grow64", &[3]),
        ("grow32", &[2]),
        ("grow64", &[-1]),
        ("grow64", &[6_553_600]),
        ("grow32", &[65_532]),
        ("size32", &[]),
        ("write64_8", &[8, 4096]),
        ("write64_4", &[5 * PAGE - 4, 4104]),
        ("write64_2", &[5 * PAGE - 1, 4104]),
        ("write64_1", &[1000, 4110]),
        ("read64_8", &[700, 8]),
        ("read64_4", &[708, 5 * PAGE - 4]),
        ("read64_2", &[712, 1000]),
        ("read64_1", &[HEAP_END, 0]),
        ("read64_8", &[1 << 32, 0]),
        ("read64_16", &[720, 0]),
    ];
    s.extend_from_slice(EDGES);
    s
}

/// Native and syscall modes on the same script: the same results and trap reasons, the same
/// heap and stable bytes, and the same instruction counts call by call.
#[test]
fn native_and_syscall_modes_agree_exactly() {
    let script = differential_script();
    let mut native = Canister::ops(StableMode::Native);
    let mut syscall = Canister::ops(StableMode::Syscall);
    assert_eq!(syscall.summary.stable_fast_paths, 0);
    for c in [&mut native, &mut syscall] {
        fill_heap(c);
    }
    let a = run_script(&mut native, &script);
    let b = run_script(&mut syscall, &script);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "step {i}: {:?}", script[i]);
    }
    assert!(native.stable() == syscall.stable(), "stable bytes differ");
    assert!(native.heap() == syscall.heap(), "heap bytes differ");
    assert!(
        native.used.iter().all(|&u| u > 0),
        "metered: {:?}",
        native.used
    );
    assert_eq!(native.used, syscall.used, "instruction counts differ");
}

/// A stable read/write costs `20 + len` on top of its instructions, in both modes.
#[test]
fn stable_reads_and_writes_charge_20_plus_len() {
    for mode in [StableMode::Native, StableMode::Syscall] {
        let mut c = Canister::ops(mode);
        c.call("grow64", &i64s(&[1]));
        c.call("read64", &i64s(&[0, 0, 100]));
        c.call("read64", &i64s(&[0, 0, 1100]));
        c.call("read64_8", &i64s(&[0, 0]));
        c.call("read64_16", &i64s(&[0, 0]));
        let u = &c.used[1..];
        assert_eq!(u[1] - u[0], 1000, "{mode:?}: the length is charged");
        assert_eq!(u[3] - u[2], 8, "{mode:?}: constant lengths too");
    }
}

/// A memory64 heap: the stable functions keep their types and copy to and from the 64-bit heap.
#[test]
fn memory64_heap() {
    let wat = ops_wat("(memory i64 2)", "i64");
    for mode in [StableMode::Native, StableMode::Syscall] {
        let mut c = Canister::new(&wat, Config::default(), mode, 100);
        let args = |v: &[i64]| i64s(v);
        c.call("store", &args(&[4096, 0x0102_0304_0506_0708]));
        let steps = [
            c.call("grow64", &args(&[1])),
            c.call("write64", &args(&[10, 4096, 8])),
            c.call("read64", &args(&[200, 10, 8])),
            c.call("load", &args(&[200])),
            c.call("write64_8", &args(&[20, 4096])),
            c.call("read64_8", &args(&[300, 20])),
            c.call("load", &args(&[300])),
            c.call("read64", &args(&[HEAP_END - 4, 0, 8])),
            c.call("read64_8", &args(&[HEAP_END - 4, 0])),
            c.call("read64_8", &args(&[1 << 40, 0])),
            c.call("read32", &i32s(&[400, 10, 8])),
            c.call("load", &args(&[400])),
        ];
        let v = ok64(0x0102_0304_0506_0708);
        assert_eq!(
            steps,
            [
                ok64(0),
                ok(),
                ok(),
                v.clone(),
                ok(),
                ok(),
                v.clone(),
                HOOB,
                HOOB,
                HOOB,
                ok(),
                v
            ],
            "{mode:?}"
        );
    }
}

/// A canister declaring two memories: stable memory is memory 2, the heap stays memory 0 and
/// memory 1 is untouched.
#[test]
fn several_memories_stable_memory_goes_last() {
    let wat = ops_wat(
        r#"(memory 2) (memory $other (export "other") 1) (data (memory $other) (i32.const 0) "other")"#,
        "i32",
    );
    let mut c = Canister::new(&wat, Config::default(), StableMode::Native, 100);
    let stable: Vec<u32> = c
        .summary
        .memories
        .iter()
        .filter(|(_, d)| d.starts_with("stable"))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(stable, [2], "{:?}", c.summary.memories);
    c.call("store", &[Val::I32(4096), Val::I64(0x1122_3344_5566_7788)]);
    assert_eq!(c.call("grow64", &i64s(&[1])), ok64(0));
    assert_eq!(c.call("write64_8", &i64s(&[0, 4096])), ok());
    assert_eq!(c.call("write64", &i64s(&[8, 4096, 8])), ok());
    assert_eq!(c.call("read64", &i64s(&[64, 0, 16])), ok());
    assert_eq!(c.call("load", &[Val::I32(72)]), ok64(0x1122_3344_5566_7788));
    assert_eq!(&c.stable()[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
    let other = c.instance.get_memory(&c.store, "other").unwrap();
    let other = other.data(&c.store);
    assert_eq!(&other[..5], b"other");
    assert!(other[5..].iter().all(|&b| b == 0), "memory 1 is untouched");
}

/// A module without any memory may still call the stable functions: stable memory becomes
/// memory 0 and every non-empty heap range is out of bounds.
#[test]
fn a_module_without_memory() {
    let wat = r#"(module
      (import "ic0" "stable64_grow" (func $grow64 (param i64) (result i64)))
      (import "ic0" "stable_write" (func $write32 (param i32 i32 i32)))
      (import "ic0" "stable64_read" (func $read64 (param i64 i64 i64)))
      (func (export "grow64") (param i64) (result i64) (call $grow64 (local.get 0)))
      (func (export "write32") (param i32 i32 i32) (call $write32 (local.get 0) (local.get 1) (local.get 2)))
      (func (export "read64") (param i64 i64 i64) (call $read64 (local.get 0) (local.get 1) (local.get 2)))
      (func (export "read64_8") (param i64 i64) (call $read64 (local.get 0) (local.get 1) (i64.const 8))))"#;
    let mut c = Canister::new(wat, Config::default(), StableMode::Native, 10);
    assert_eq!(c.call("grow64", &i64s(&[1])), ok64(0));
    assert_eq!(c.call("write32", &i32s(&[0, 0, 0])), ok());
    assert_eq!(c.call("write32", &i32s(&[0, 0, 1])), HOOB);
    assert_eq!(c.call("read64", &i64s(&[0, 0, 1])), HOOB);
    assert_eq!(c.call("read64_8", &i64s(&[0, 0])), HOOB);
    assert_eq!(c.call("read64", &i64s(&[0, PAGE, 1])), SOOB);
}

/// The output validates in every mode, metered or not.
#[test]
fn output_validates_in_every_mode() {
    let wasm = wat::parse_str(ops32()).unwrap();
    for mode in [StableMode::Native, StableMode::Syscall] {
        for metering in [true, false] {
            let config = Config::default().stable(mode).metering(metering);
            let out = instrument(&wasm, &config).unwrap();
            validate(&out.wasm).unwrap_or_else(|e| panic!("{mode:?} metering={metering}: {e}"));
        }
    }
}

/// The function bodies of a module, as bytes.
fn bodies(wasm: &[u8]) -> Vec<Vec<u8>> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::CodeSectionEntry(body) => Some(body.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}

/// Syscall mode without metering changes nothing but the added exports.
#[test]
fn syscall_mode_without_metering_is_the_identity_but_for_exports() {
    let wasm = wat::parse_str(ops32()).unwrap();
    let config = Config::default()
        .stable(StableMode::Syscall)
        .metering(false)
        .barrier(false);
    let out = instrument(&wasm, &config).unwrap();
    assert_eq!(bodies(&out.wasm), bodies(&wasm));
    let sections = |wasm: &[u8]| -> Vec<(u8, Vec<u8>)> {
        wasmparser::Parser::new(0)
            .parse_all(wasm)
            .filter_map(|p| p.unwrap().as_section())
            .filter(|(id, _)| *id != 7) // exports
            .map(|(id, range)| (id, wasm[range].to_vec()))
            .collect()
    };
    assert_eq!(sections(&out.wasm), sections(&wasm));
    let mut c = Canister::new(
        &ops32(),
        Config::default().metering(false),
        StableMode::Syscall,
        100,
    );
    fill_heap(&mut c);
    assert_eq!(c.call("grow64", &i64s(&[1])), ok64(0));
    assert_eq!(c.call("write64_8", &i64s(&[0, 4096])), ok());
    assert_eq!(c.call("read64", &i64s(&[64, 0, 8])), ok());
    assert_eq!(c.heap()[64..72], c.heap()[4096..4104]);
}

/// Removing the stable imports shifts function indices: calls, `ref.func`, element segments,
/// exports, the start function and the name section follow; custom sections are unchanged.
#[test]
fn indices_names_and_custom_sections_survive_import_removal() {
    let wat = r#"(module $m
      (import "ic0" "msg_reply" (func $reply))
      (import "ic0" "stable64_size" (func $size64 (result i64)))
      (import "ic0" "debug_print" (func $print (param i32 i32)))
      (import "ic0" "stable64_grow" (func $grow64 (param i64) (result i64)))
      (memory 1)
      (global $started (mut i32) (i32.const 0))
      (table 4 funcref)
      (elem (i32.const 0) $seven $size64 $grow_one)
      (type $r64 (func (result i64)))
      (func $seven (result i64) (i64.const 7))
      (func $grow_one (result i64) (call $grow64 (i64.const 1)))
      (func $start (global.set $started (i32.const 1)))
      (func (export "started") (result i32) (global.get $started))
      (func (export "indirect") (param i32) (result i64)
        (call_indirect (type $r64) (local.get 0)))
      (func (export "via_ref") (result i32)
        (ref.is_null (ref.func $seven)))
      (start $start))"#;
    let mut custom = wasm_encoder::Module::new();
    custom.section(&wasm_encoder::CustomSection {
        name: "icp:public candid:service".into(),
        data: b"service : {}".as_slice().into(),
    });
    let wasm = wat::parse_str(wat).unwrap();
    let mut input = wasm.clone();
    input.extend_from_slice(&custom.finish()[8..]);
    for mode in [StableMode::Native, StableMode::Syscall] {
        let out = instrument(&input, &Config::default().stable(mode)).unwrap();
        validate(&out.wasm).unwrap();
        let mut c = Canister::new_from_wasm(&out.wasm, mode, 100);
        assert_eq!(c.call("started", &[]), ok32(1), "{mode:?}: start ran");
        assert_eq!(c.call("indirect", &[Val::I32(0)]), ok64(7));
        assert_eq!(
            c.call("indirect", &[Val::I32(1)]),
            ok64(0),
            "size via table"
        );
        assert_eq!(
            c.call("indirect", &[Val::I32(2)]),
            ok64(0),
            "grow via table"
        );
        assert_eq!(c.call("indirect", &[Val::I32(1)]), ok64(1));
        assert_eq!(c.call("via_ref", &[]), ok32(0));
        // The name section names every function by its new index.
        let names = function_names(&out.wasm);
        let imports = import_names(&out.wasm);
        for (i, import) in imports.iter().enumerate() {
            let expected = match import.as_str() {
                "ic0.msg_reply" => Some("reply"),
                "ic0.debug_print" => Some("print"),
                "ic0.stable64_size" => Some("size64"),
                "ic0.stable64_grow" => Some("grow64"),
                _ => None,
            };
            if let Some(expected) = expected {
                assert_eq!(
                    names.get(&(i as u32)).map(String::as_str),
                    Some(expected),
                    "{mode:?}"
                );
            }
        }
        let defined = |name: &str| {
            names
                .iter()
                .find(|(_, n)| n.as_str() == name)
                .map(|(i, _)| *i)
                .unwrap_or_else(|| panic!("{mode:?}: no name {name}: {names:?}"))
        };
        let first_defined = imports.len() as u32;
        assert_eq!(defined("seven"), first_defined, "{mode:?}");
        assert_eq!(defined("grow_one"), first_defined + 1);
        assert_eq!(defined("start"), first_defined + 2);
        assert_eq!(start_function(&out.wasm), Some(first_defined + 2));
        let customs = custom_sections(&out.wasm);
        assert!(
            customs.contains(&("icp:public candid:service".into(), b"service : {}".to_vec())),
            "{customs:?}"
        );
    }
}

impl Canister {
    fn new_from_wasm(wasm: &[u8], mode: StableMode, limit_pages: u64) -> Canister {
        let engine = crate::runtime::engine::new_engine();
        let module = Module::new(&engine, wasm).unwrap();
        let mut store = Store::new(
            &engine,
            Host {
                stable: Vec::new(),
                limit_pages,
            },
        );
        let instance = linker(&engine)
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        Canister {
            store,
            instance,
            mode,
            used: Vec::new(),
            summary: Default::default(),
        }
    }
}

fn function_names(wasm: &[u8]) -> std::collections::BTreeMap<u32, String> {
    let mut out = std::collections::BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(c) = payload.unwrap()
            && let wasmparser::KnownCustom::Name(reader) = c.as_known()
        {
            for sub in reader {
                if let wasmparser::Name::Function(map) = sub.unwrap() {
                    for naming in map {
                        let naming = naming.unwrap();
                        out.insert(naming.index, naming.name.to_string());
                    }
                }
            }
        }
    }
    out
}

fn import_names(wasm: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ImportSection(reader) = payload.unwrap() {
            for import in reader {
                let import = import.unwrap();
                if let wasmparser::TypeRef::Func(_) = import.ty {
                    out.push(format!("{}.{}", import.module, import.name));
                }
            }
        }
    }
    out
}

fn start_function(wasm: &[u8]) -> Option<u32> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .find_map(|p| match p.unwrap() {
            wasmparser::Payload::StartSection { func, .. } => Some(func),
            _ => None,
        })
}

fn custom_sections(wasm: &[u8]) -> Vec<(String, Vec<u8>)> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) => {
                Some((c.name().to_string(), c.data().to_vec()))
            }
            _ => None,
        })
        .collect()
}
