//! Tests of the write barrier: instrumented WAT runs on wasmi, and every 4 KiB page whose bytes
//! changed must be marked in its memory's byte map (a randomized oracle over stores of every
//! width, bulk operators, growth, traps and control flow, on i32 and i64 memories), marks are
//! elided for same-base store groups, and instrumented modules compute what plain ones do.

use wasmi::{Engine, Instance, Linker, Memory, Module, Store, Val};

use super::super::{Config, InstrumentError, StableMode, Summary, instrument, names, validate};
use super::{BarrierError, map_export, map_pages};

const PAGE: usize = 4096;

fn engine() -> Engine {
    crate::runtime::engine::new_engine()
}

fn linker(engine: &Engine) -> Linker<()> {
    let mut l = Linker::new(engine);
    l.func_wrap(
        names::HOST_MODULE,
        "trap",
        |code: i32| -> Result<(), wasmi::Error> { Err(wasmi::Error::i32_exit(code)) },
    )
    .unwrap();
    l
}

/// Instruments `wat` with `config` (barrier on) and checks the output validates.
fn instrument_with(wat: &str, config: &Config) -> (Vec<u8>, Summary) {
    let wasm = wat::parse_str(wat).unwrap();
    let out = instrument(&wasm, config).unwrap();
    validate(&out.wasm).expect("instrumented output validates");
    (out.wasm, out.summary)
}

fn generic(wat: &str) -> (Vec<u8>, Summary) {
    instrument_with(wat, &Config::generic().metering(false))
}

fn instantiate(engine: &Engine, store: &mut Store<()>, wasm: &[u8]) -> Instance {
    let module = Module::new(engine, wasm).unwrap();
    linker(engine)
        .instantiate_and_start(&mut *store, &module)
        .unwrap()
}

fn memory(store: &Store<()>, instance: &Instance, name: &str) -> Memory {
    instance
        .get_memory(store, name)
        .unwrap_or_else(|| panic!("no memory export {name}"))
}

/// Indices of the nonzero bytes of map `k`.
fn marked(store: &Store<()>, instance: &Instance, k: u32) -> Vec<usize> {
    let map = memory(store, instance, &map_export(k));
    map.data(store)
        .iter()
        .enumerate()
        .filter(|(_, b)| **b != 0)
        .map(|(i, _)| i)
        .collect()
}

/// Pages (4 KiB) whose bytes differ between `before` and `after` (bytes past the end of
/// `before` count as zero).
fn changed_pages(before: &[u8], after: &[u8]) -> Vec<usize> {
    (0..after.len().div_ceil(PAGE))
        .filter(|p| {
            let r = p * PAGE..((p + 1) * PAGE).min(after.len());
            after[r.clone()]
                .iter()
                .enumerate()
                .any(|(i, b)| *b != before.get(r.start + i).copied().unwrap_or(0))
        })
        .collect()
}

/// The number of `i32.store8` into memory `map` in the module's code.
fn map_stores(wasm: &[u8], map: u32) -> usize {
    let mut n = 0;
    for p in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = p.unwrap() {
            let mut r = body.get_operators_reader().unwrap();
            while !r.eof() {
                if let wasmparser::Operator::I32Store8 { memarg } = r.read().unwrap()
                    && memarg.memory == map
                {
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn outputs_validate() {
    let modules = [
        "(module)",
        "(module (func (export \"f\") (result i32) (i32.const 1)))",
        r#"(module (import "env" "mem" (memory 1))
             (func (i32.store (i32.const 0) (i32.const 1))))"#,
        r#"(module (import "env" "mem" (memory i64 0))
             (func (i64.store offset=0x10000000000 (i64.const 0) (i64.const 1))))"#,
        r#"(module (memory i64 1)
             (func (param i64) (i32.store8 offset=0xffffffffffffffff (local.get 0) (i32.const 1))
               (drop (memory.grow (i64.const 1))) (memory.fill (i64.const 0) (i32.const 1) (i64.const 9))))"#,
        r#"(module (memory $a 1) (memory $b i64 1) (memory $c 0 0)
             (data $d "abc")
             (func (param i32 i64)
               (memory.copy $a $b (local.get 0) (local.get 1) (i32.const 3))
               (memory.copy $b $a (local.get 1) (local.get 0) (i32.const 3))
               (memory.copy $b $b (local.get 1) (local.get 1) (i64.const 3))
               (memory.init $b $d (local.get 1) (i32.const 0) (i32.const 3))
               (drop (memory.grow $c (i32.const 1)))
               (i64.store $b offset=3 (local.get 1) (i64.const 7))))"#,
        r#"(module (memory 1)
             (func (param i32) (local v128)
               (v128.store (local.get 0) (local.get 1))
               (v128.store8_lane 3 (local.get 0) (local.get 1))
               (v128.store16_lane offset=1 2 (i32.const 8) (local.get 1))
               (v128.store32_lane 1 (local.get 0) (local.get 1))
               (v128.store64_lane offset=4095 1 (i32.add (local.get 0) (i32.const 1)) (local.get 1))
               (f32.store (local.get 0) (f32.const 1)) (f64.store (local.get 0) (f64.const 1))
               (i64.store32 (local.get 0) (i64.const 1)) (i64.store16 (local.get 0) (i64.const 1))
               (i64.store8 (local.get 0) (i64.const 1)) (i32.store16 (local.get 0) (i32.const 1))))"#,
        // Unreachable code after `br`/`unreachable` with stores from an empty stack.
        r#"(module (memory 1)
             (func (param i32) (block (br 0) (i32.store (i64.store (local.get 0) (i64.const 0))))
               unreachable (i32.store) (memory.fill) (drop (memory.grow))))"#,
    ];
    for m in modules {
        let (wasm, _) = generic(m);
        let info = validate(&wasm).unwrap();
        let tracked = validate(&wat::parse_str(m).unwrap()).unwrap().memories;
        assert_eq!(info.memories, 2 * tracked, "{m}");
        for k in 0..tracked {
            assert!(info.exports.contains(&map_export(k)), "{m}");
        }
    }
}

#[test]
fn map_layout_sizes_and_exports() {
    let (wasm, summary) = generic(
        r#"(module (memory 1) (memory i64 8193 10000) (memory 0 0)
             (export "mem" (memory 0)))"#,
    );
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&engine, &mut store, &wasm);
    let sizes: Vec<u64> = (0..3)
        .map(|k| memory(&store, &instance, &map_export(k)).size(&store))
        .collect();
    assert_eq!(sizes, [1, 3, 1]);
    assert_eq!(map_pages(0), 1);
    assert_eq!(map_pages(4095), 1);
    assert_eq!(map_pages(4096), 2);
    let ty = memory(&store, &instance, &map_export(1)).ty(&store);
    assert_eq!(ty.maximum(), Some(map_pages(10000)));
    assert_eq!(
        summary.host_exports,
        [
            "canister_vm:heap",
            "canister_vm:dirty:0",
            "canister_vm:dirty:1",
            "canister_vm:dirty:2"
        ]
    );
    assert_eq!(summary.memories[3].0, 3);
}

#[test]
fn elides_marks_for_same_base_store_groups() {
    let wat = r#"(module (memory 2)
      (func (export "f") (param $x i32)
        (i64.store offset=0 (local.get $x) (i64.const -1))
        (i64.store offset=8 (local.get $x) (i64.const -1))
        (i64.store offset=16 (local.get $x) (i64.const -1))
        (i64.store offset=24 (local.get $x) (i64.const -1))
        (i64.store offset=32 (local.get $x) (i64.const -1))
        (i64.store offset=40 (local.get $x) (i64.const -1))
        (i64.store offset=48 (local.get $x) (i64.const -1))
        (i64.store offset=56 (local.get $x) (i64.const -1))))"#;
    let (wasm, summary) = generic(wat);
    assert_eq!((summary.barrier_marks, summary.barrier_elided), (1, 7));
    assert_eq!(map_stores(&wasm, 1), 2);
    let engine = engine();
    for (x, pages) in [(0, vec![0]), (4090, vec![0, 1]), (4096 + 4032, vec![1])] {
        let mut store = Store::new(&engine, ());
        let instance = instantiate(&engine, &mut store, &wasm);
        let f = instance.get_func(&store, "f").unwrap();
        f.call(&mut store, &[Val::I32(x)], &mut []).unwrap();
        assert_eq!(marked(&store, &instance, 0), pages, "x = {x}");
    }
}

#[test]
fn groups_end_where_the_base_or_the_block_changes() {
    let wat = r#"(module (memory 2)
      (func (export "f") (param $x i32) (param $y i32)
        (i32.store (local.get $x) (i32.const 1))          ;; mark (group x)
        (i32.store offset=4 (local.get $x) (i32.const 1)) ;; elided
        (i32.store (local.get $y) (i32.const 1))          ;; mark (group y)
        (i32.store offset=4092 (local.get $x) (i32.const 1)) ;; elided: span 4096
        (i32.store offset=4093 (local.get $x) (i32.const 1)) ;; mark: span 4097
        ;; the address is the old $x; the value expression writes $x
        (i32.store offset=8 (local.get $x) (block (result i32) (local.set $x (local.get $y)) (i32.const 1)))
        (i32.store offset=8 (local.get $x) (i32.const 1)) ;; mark: $x changed
        (call $g)
        (i32.store offset=12 (local.get $x) (i32.const 1)) ;; elided: calls keep groups
        (block (i32.store offset=16 (local.get $x) (i32.const 1))) ;; mark: new block
        (i32.store offset=20 (local.tee $y (local.get $x)) (i32.const 1)) ;; mark (group y)
        (i32.store offset=24 (local.get $y) (i32.const 1)) ;; elided
        (i32.store offset=24 (i32.const 0) (i32.const 1))  ;; own mark
        (drop (memory.grow (i32.const 0)))
        (i32.store offset=28 (local.get $y) (i32.const 1))) ;; mark after memory.grow
      (func $g))"#;
    let (wasm, summary) = generic(wat);
    assert_eq!((summary.barrier_marks, summary.barrier_elided), (9, 4));
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&engine, &mut store, &wasm);
    let f = instance.get_func(&store, "f").unwrap();
    f.call(&mut store, &[Val::I32(4000), Val::I32(65536)], &mut [])
        .unwrap();
    assert_eq!(marked(&store, &instance, 0), [0, 1, 16]);
}

#[test]
fn grows_the_map_with_the_memory() {
    let wat = r#"(module (memory $m 1 5000) (memory $s i64 0)
      (func (export "grow") (param i32) (result i32) (memory.grow $m (local.get 0)))
      (func (export "grow64") (param i64) (result i64) (memory.grow $s (local.get 0)))
      (func (export "poke") (param i32) (i32.store8 (local.get 0) (i32.const 1)))
      (func (export "poke64") (param i64) (i64.store $s offset=1 (local.get 0) (i64.const 1))))"#;
    let (wasm, _) = generic(wat);
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&engine, &mut store, &wasm);
    let call = |store: &mut Store<()>, name: &str, arg: Val| -> Val {
        let f = instance.get_func(&*store, name).unwrap();
        let mut out = [Val::I32(0)];
        let n = f.ty(&*store).results().len();
        f.call(store, &[arg], &mut out[..n]).unwrap();
        out[0].clone()
    };
    let map_size = |store: &Store<()>, k| memory(store, &instance, &map_export(k)).size(store);
    assert_eq!(call(&mut store, "grow", Val::I32(4094)).i32(), Some(1));
    assert_eq!(map_size(&store, 0), 1);
    assert_eq!(call(&mut store, "grow", Val::I32(1)).i32(), Some(4095));
    assert_eq!(map_size(&store, 0), 2);
    // Failure: -1, no change.
    assert_eq!(call(&mut store, "grow", Val::I32(1000)).i32(), Some(-1));
    assert_eq!(map_size(&store, 0), 2);
    let last = 4096 * 65536 - 1;
    call(&mut store, "poke", Val::I32(last));
    assert_eq!(marked(&store, &instance, 0), [last as usize >> 12]);
    // memory64: 0 → 2 pages, a store straddling 4 KiB pages 0 and 1.
    assert_eq!(call(&mut store, "grow64", Val::I64(2)).i64(), Some(0));
    assert_eq!(map_size(&store, 1), 1);
    call(&mut store, "poke64", Val::I64(4090));
    assert_eq!(marked(&store, &instance, 1), [0, 1]);
}

#[test]
fn marks_imported_memories() {
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let mem = Memory::new(&mut store, wasmi::MemoryType::new(2, None)).unwrap();
    let (wasm, _) = generic(
        r#"(module (import "env" "mem" (memory 1))
             (func (export "f") (i64.store offset=8190 (i32.const 65536) (i64.const -1))))"#,
    );
    let module = Module::new(&engine, &wasm[..]).unwrap();
    let mut l = linker(&engine);
    l.define("env", "mem", mem).unwrap();
    let instance = l.instantiate_and_start(&mut store, &module).unwrap();
    let f = instance.get_func(&store, "f").unwrap();
    f.call(&mut store, &[], &mut []).unwrap();
    assert_eq!(marked(&store, &instance, 0), [17, 18]);
}

#[test]
fn marks_stable_memory_written_by_injected_functions() {
    let wat = r#"(module
      (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
      (import "ic0" "stable64_write" (func $write (param i64 i64 i64)))
      (memory 1)
      (func (export "canister_update run")
        (i64.store (i32.const 0) (i64.const -1))
        (drop (call $grow (i64.const 2)))
        (call $write (i64.const 4095) (i64.const 0) (i64.const 8))       ;; fast path
        (call $write (i64.const 70000) (i64.const 0) (i64.const 9000)))) ;; general path"#;
    let (wasm, summary) = instrument_with(wat, &Config::default().stable(StableMode::Native));
    assert!(summary.stable_fast_paths > 0);
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&engine, &mut store, &wasm);
    let counter = instance.get_global(&store, names::COUNTER).unwrap();
    counter.set(&mut store, Val::I64(1 << 40)).unwrap();
    let f = instance.get_func(&store, "canister_update run").unwrap();
    f.call(&mut store, &[], &mut []).unwrap();
    assert_eq!(marked(&store, &instance, 0), [0]);
    let stable = memory(&store, &instance, names::STABLE_MEMORY);
    assert_eq!(stable.size(&store), 2);
    assert_eq!(
        marked(&store, &instance, 1),
        [0, 1, 17, 18, 19],
        "stable pages 4095..4103 and 70000..79000"
    );
}

#[test]
fn rejects_modules_with_too_many_memories() {
    let wat = format!("(module {})", "(memory 0) ".repeat(51));
    let wasm = wat::parse_str(&wat).unwrap();
    let err = instrument(&wasm, &Config::generic()).unwrap_err();
    assert!(
        matches!(&err, InstrumentError::Barrier(e) if **e == BarrierError::TooManyMemories { memories: 51 }),
        "{err}"
    );
    let out = instrument(&wasm, &Config::generic().barrier(false)).unwrap();
    validate(&out.wasm).unwrap();
}

/// A small deterministic PRNG (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const STORES: [(&str, u64, &str); 14] = [
    ("i32.store", 4, "i32"),
    ("i64.store", 8, "i64"),
    ("f32.store", 4, "f32"),
    ("f64.store", 8, "f64"),
    ("i32.store8", 1, "i32"),
    ("i32.store16", 2, "i32"),
    ("i64.store8", 1, "i64"),
    ("i64.store16", 2, "i64"),
    ("i64.store32", 4, "i64"),
    ("v128.store", 16, "v128"),
    ("v128.store8_lane", 1, "v128"),
    ("v128.store16_lane", 2, "v128"),
    ("v128.store32_lane", 4, "v128"),
    ("v128.store64_lane", 8, "v128"),
];

/// Generates a program over memory `$m0` (i32, base local `$b`) and `$m1` (i64, base `$c`).
struct Gen {
    rng: Rng,
    /// Current size of each memory in 64 KiB pages.
    pages: [u64; 2],
}

const MAX_PAGES: u64 = 4;

impl Gen {
    fn addr_ty(m: usize) -> &'static str {
        ["i32", "i64"][m]
    }
    fn base(m: usize) -> &'static str {
        ["$b", "$c"][m]
    }
    /// An address, mostly near 4 KiB page boundaries, rarely out of bounds.
    fn address(&mut self, m: usize, room: u64) -> u64 {
        let size = self.pages[m] * 65536;
        if self.rng.chance(2) {
            return size - room.min(size) + 1 + self.rng.below(8);
        }
        let page = self.rng.below(size / 4096);
        let within = match self.rng.below(3) {
            0 => self.rng.below(32),
            1 => 4096 - 1 - self.rng.below(32),
            _ => self.rng.below(4096),
        };
        (page * 4096 + within).min(size.saturating_sub(room))
    }
    /// An address with `room` bytes after it in bounds.
    fn in_bounds(&mut self, m: usize, room: u64) -> u64 {
        let size = self.pages[m] * 65536;
        let page = self.rng.below(size / 4096);
        (page * 4096 + self.rng.below(4096)).min(size - room)
    }
    fn value(&mut self, ty: &str) -> String {
        let v = self.rng.next();
        match ty {
            "i32" => format!("(i32.const {})", v as u32 as i32),
            "i64" => format!("(i64.const {})", v as i64),
            "f32" => format!("(f32.const {})", (v % 1000) as f32 + 0.5),
            "f64" => format!("(f64.const {})", (v % 100_000) as f64 + 0.25),
            _ => format!("(v128.const i64x2 {} {})", v as i64, self.rng.next() as i64),
        }
    }
    fn store(&mut self, m: usize) -> String {
        let &(op, w, ty) = self.rng.pick(&STORES);
        let lane = if op.ends_with("_lane") {
            format!(" {}", self.rng.below(16 / w))
        } else {
            String::new()
        };
        let offset = self.rng.below(64);
        let at = Self::addr_ty(m);
        let base = Self::base(m);
        let value = self.value(ty);
        let addr = match self.rng.below(6) {
            0 => format!("({at}.const {})", self.address(m, offset + w)),
            1 => format!("(local.tee {base} ({at}.const {}))", self.in_bounds(m, 128)),
            // The value expression changes the base after the address was pushed.
            2 => {
                let other = self.in_bounds(m, 128);
                return format!(
                    "({op} $m{m} offset={offset}{lane} (local.get {base}) \
                     (local.set {base} ({at}.const {other})) {value})"
                );
            }
            3 => {
                let k = self.rng.below(129) as i64 - 64;
                let (add, k) = if self.rng.chance(50) {
                    ("add", k)
                } else {
                    ("sub", -k)
                };
                format!("({at}.{add} (local.get {base}) ({at}.const {k}))")
            }
            _ => format!("(local.get {base})"),
        };
        format!("({op} $m{m} offset={offset}{lane} {addr} {value})")
    }
    fn op(&mut self) -> String {
        let m = self.rng.below(2) as usize;
        let at = Self::addr_ty(m);
        match self.rng.below(20) {
            0..=9 => self.store(m),
            10 | 11 => {
                let a = self.in_bounds(m, 128);
                format!("(local.set {} ({at}.const {a}))", Self::base(m))
            }
            12 => {
                let len = self.length(m);
                let d = self.address(m, len);
                format!(
                    "(memory.fill $m{m} ({at}.const {d}) (i32.const {}) ({at}.const {len}))",
                    self.rng.below(256)
                )
            }
            13 => {
                let s = self.rng.below(2) as usize;
                let len = self.length(m).min(self.pages[s] * 65536);
                let d = self.address(m, len);
                let src = self.address(s, len);
                let lt = if m == 1 && s == 1 { "i64" } else { "i32" };
                let st = Self::addr_ty(s);
                format!(
                    "(memory.copy $m{m} $m{s} ({at}.const {d}) ({st}.const {src}) ({lt}.const {len}))"
                )
            }
            14 => {
                let len = self.rng.below(DATA_LEN as u64 + 1);
                let src = self.rng.below(DATA_LEN as u64 - len + 1);
                let d = self.address(m, len);
                format!(
                    "(memory.init $m{m} $d ({at}.const {d}) (i32.const {src}) (i32.const {len}))"
                )
            }
            15 => {
                let n = self.rng.below(3);
                if self.pages[m] + n <= MAX_PAGES {
                    self.pages[m] += n;
                }
                format!("(drop (memory.grow $m{m} ({at}.const {n})))")
            }
            16 => format!("(call $helper{m} ({at}.const {}))", self.address(m, 16)),
            17 => format!("(block {} {})", self.op(), self.op()),
            18 => format!("(if (i32.const 1) (then {} {}))", self.op(), self.op()),
            _ => {
                // A group: consecutive stores from one base.
                // Mostly within 120 bytes; sometimes spread over more than a page.
                let spread = if self.rng.chance(30) { 6000 } else { 120 };
                let a = self.in_bounds(m, spread);
                let mut s = format!("(local.set {} ({at}.const {a}))", Self::base(m));
                for _ in 0..self.rng.below(8) + 1 {
                    let &(op, w, ty) = self.rng.pick(&STORES[..9]);
                    let offset = self.rng.below(spread - w);
                    let value = self.value(ty);
                    let base = Self::base(m);
                    // A constant moved between the memarg and an add or sub.
                    let (memarg, addr) = match self.rng.below(3) {
                        0 => (offset, format!("(local.get {base})")),
                        1 => {
                            let k = self.rng.below(offset + 1);
                            let a = format!("({at}.add ({at}.const {k}) (local.get {base}))");
                            (offset - k, a)
                        }
                        _ => {
                            let k = self.rng.below(64);
                            let a = format!("({at}.sub (local.get {base}) ({at}.const {k}))");
                            (offset + k, a)
                        }
                    };
                    s += &format!(" ({op} $m{m} offset={memarg} {addr} {value})");
                }
                s
            }
        }
    }
    fn length(&mut self, m: usize) -> u64 {
        match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(16),
            2 => self.rng.below(3 * 4096),
            _ => self.rng.below(self.pages[m] * 65536 / 2),
        }
    }
    fn program(&mut self, ops: usize) -> String {
        let body: Vec<String> = (0..ops).map(|_| self.op()).collect();
        let data: String = (0..DATA_LEN)
            .map(|i| format!("\\{:02x}", 0x41 + i % 26))
            .collect();
        format!(
            r#"(module
  (memory $m0 (export "m0") 2 {MAX_PAGES})
  (memory $m1 (export "m1") i64 1 {MAX_PAGES})
  (data $d "{data}")
  (data (memory $m0) (i32.const 5000) "active")
  (func $helper0 (param $p i32)
    (i64.store offset=7 (local.get $p) (i64.const -1))
    (i32.store16 offset=1 (local.get $p) (i32.const 0x1234)))
  (func $helper1 (param $p i64) (v128.store $m1 (local.get $p) (v128.const i64x2 -1 5)))
  (func (export "run") (local $b i32) (local $c i64)
    {}))"#,
            body.join("\n    ")
        )
    }
}

const DATA_LEN: usize = 300;

/// What one run of a module did: whether it trapped and the final memories.
fn run(engine: &Engine, wasm: &[u8]) -> (Store<()>, Instance, bool, [Vec<u8>; 2]) {
    let mut store = Store::new(engine, ());
    let instance = instantiate(engine, &mut store, wasm);
    let before = ["m0", "m1"].map(|m| memory(&store, &instance, m).data(&store).to_vec());
    let f = instance.get_func(&store, "run").unwrap();
    let trapped = f.call(&mut store, &[], &mut []).is_err();
    (store, instance, trapped, before)
}

/// Soundness: every changed 4 KiB page is marked; transparency: memories and traps are those of
/// the plain module.
#[test]
fn randomized_soundness_oracle() {
    let engine = engine();
    let mut rng = Rng(0x5eed_ba11);
    let (mut marks, mut elided, mut traps) = (0, 0, 0);
    for case in 0..150 {
        let mut generator = Gen {
            rng: Rng(rng.next()),
            pages: [2, 1],
        };
        let wat = generator.program(40);
        let plain = wat::parse_str(&wat).unwrap();
        let (wasm, summary) = instrument_with(&wat, &Config::generic());
        marks += summary.barrier_marks;
        elided += summary.barrier_elided;
        let (pstore, pinstance, ptrapped, _) = run(&engine, &plain);
        let (store, instance, trapped, before) = run(&engine, &wasm);
        assert_eq!(trapped, ptrapped, "case {case}:\n{wat}");
        traps += trapped as u32;
        for (k, name) in ["m0", "m1"].iter().enumerate() {
            let after = memory(&store, &instance, name).data(&store);
            let expected = memory(&pstore, &pinstance, name).data(&pstore);
            assert!(after == expected, "case {case}: memory {k} differs\n{wat}");
            let changed = changed_pages(&before[k], after);
            let map = memory(&store, &instance, &map_export(k as u32));
            let map = map.data(&store);
            let missing: Vec<usize> = changed
                .iter()
                .copied()
                .filter(|&p| map.get(p).copied().unwrap_or(0) == 0)
                .collect();
            assert!(
                missing.is_empty(),
                "case {case}: memory {k}: pages {missing:?} changed but are not marked\n{wat}"
            );
        }
    }
    assert!(
        elided > 0 && marks > elided,
        "{marks} marks, {elided} elided"
    );
    assert!(traps > 0 && traps < 120, "{traps} runs trapped");
}

/// Instrumented modules compute the same results as plain ones.
#[test]
fn transparent_results() {
    let wat = r#"(module (memory 1 3)
      (func $fib (export "fib") (param $n i32) (result i64) (local $i i32) (local $a i64) (local $b i64)
        (local.set $b (i64.const 1))
        (loop $l
          (i64.store (i32.shl (local.get $i) (i32.const 3)) (local.get $a))
          (local.set $b (i64.add (local.get $a) (local.tee $a (local.get $b))))
          (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
        (i64.load (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 3))))
      (func (export "copy_sum") (param $len i32) (result i32) (local $i i32) (local $s i32)
        (memory.fill (i32.const 100) (i32.const 7) (local.get $len))
        (memory.copy (i32.const 30000) (i32.const 100) (local.get $len))
        (drop (memory.grow (i32.const 1)))
        (memory.copy (i32.const 70000) (i32.const 100) (local.get $len))
        (block $done (loop $l
          (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
          (local.set $s (i32.add (local.get $s) (i32.load8_u offset=70000 (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
        (i32.add (local.get $s) (memory.size)))
      (func (export "simd") (param $x i32) (result i64)
        (v128.store offset=3 (local.get $x) (i64x2.splat (i64.const 0x0102030405060708)))
        (v128.store32_lane 1 (i32.const 4094) (i32x4.splat (i32.const -1)))
        (i64.add (i64.load offset=3 (local.get $x)) (i64.load (i32.const 4090)))))"#;
    let engine = engine();
    let plain = wat::parse_str(wat).unwrap();
    let (wasm, _) = instrument_with(wat, &Config::generic());
    let calls: [(&str, Val); 4] = [
        ("fib", Val::I32(60)),
        ("copy_sum", Val::I32(5000)),
        ("copy_sum", Val::I32(0)),
        ("simd", Val::I32(4093)),
    ];
    for (name, arg) in calls {
        let results: Vec<String> = [&plain, &wasm]
            .iter()
            .map(|w| {
                let mut store = Store::new(&engine, ());
                let instance = instantiate(&engine, &mut store, w);
                let f = instance.get_func(&store, name).unwrap();
                let mut out = [Val::I32(0)];
                f.call(&mut store, std::slice::from_ref(&arg), &mut out)
                    .unwrap();
                format!("{:?}", out[0])
            })
            .collect();
        assert_eq!(results[0], results[1], "{name}");
    }
}

#[test]
fn elision_off_marks_every_store() {
    let wat = r#"(module (memory 2)
      (func (export "f") (param $x i32)
        (i64.store offset=0 (local.get $x) (i64.const -1))
        (i64.store offset=8 (local.get $x) (i64.const -1))
        (i64.store offset=4088 (local.get $x) (i64.const -1))))"#;
    let out = instrument(
        &wat::parse_str(wat).unwrap(),
        &Config::generic().metering(false).barrier(false),
    )
    .unwrap();
    let mut summary = out.summary;
    let wasm = super::rewrite_with(&out.wasm, &mut summary, false).unwrap();
    validate(&wasm).expect("instrumented output validates");
    assert_eq!((summary.barrier_marks, summary.barrier_elided), (3, 0));
    let engine = engine();
    for (x, pages) in [(0, vec![0]), (8, vec![0, 1]), (4100, vec![1, 2])] {
        let mut store = Store::new(&engine, ());
        let instance = instantiate(&engine, &mut store, &wasm);
        let f = instance.get_func(&store, "f").unwrap();
        f.call(&mut store, &[Val::I32(x)], &mut []).unwrap();
        assert_eq!(marked(&store, &instance, 0), pages, "x = {x}");
    }
}
