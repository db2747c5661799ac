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

// Stores through addresses that wrap around the address space, and traps after them
// (issue 14, fault 2). Tracked memories are compared with the plain module's after every run,
// host calls record the order of observable effects, and a rollback that restores only the
// marked pages must give back the memories as they were.

/// A store (and host) with a host function `env.log(i32)` that records its arguments.
fn log_linker(engine: &Engine) -> Linker<Vec<i32>> {
    let mut l = Linker::new(engine);
    l.func_wrap(
        "env",
        "log",
        |mut caller: wasmi::Caller<'_, Vec<i32>>, id: i32| caller.data_mut().push(id),
    )
    .unwrap();
    l
}

/// One run of `export(args)` on a fresh instance of `wasm`, with every memory named in
/// `memories` exported by the module.
struct Ran {
    store: Store<Vec<i32>>,
    instance: Instance,
    /// The trap, as text.
    trap: Option<String>,
    /// The memories before the call.
    before: Vec<Vec<u8>>,
}

fn run_logged(engine: &Engine, wasm: &[u8], export: &str, args: &[Val], memories: &[&str]) -> Ran {
    let mut store = Store::new(engine, Vec::new());
    let module = Module::new(engine, wasm).unwrap();
    let instance = log_linker(engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let before = memories
        .iter()
        .map(|m| {
            instance
                .get_memory(&store, m)
                .unwrap()
                .data(&store)
                .to_vec()
        })
        .collect();
    let f = instance.get_func(&store, export).unwrap();
    let trap = f
        .call(&mut store, args, &mut [])
        .err()
        .map(|e| e.to_string());
    Ran {
        store,
        instance,
        trap,
        before,
    }
}

/// Checks the instrumented run `ran` against the plain run `plain`: the same trap, the same host
/// calls in the same order, the same memories; every changed page marked, so that restoring the
/// marked pages from the snapshot (what the host's rollback does) gives the snapshot back.
fn check_against_plain(plain: &Ran, ran: &Ran, memories: &[&str], what: &str) {
    assert_eq!(ran.trap, plain.trap, "{what}: trap");
    assert_eq!(ran.store.data(), plain.store.data(), "{what}: host calls");
    for (k, name) in memories.iter().enumerate() {
        let after = ran.instance.get_memory(&ran.store, name).unwrap();
        let after = after.data(&ran.store);
        let expected = plain.instance.get_memory(&plain.store, name).unwrap();
        assert!(
            after == expected.data(&plain.store),
            "{what}: memory {k} differs from the plain module's"
        );
        let map = ran
            .instance
            .get_memory(&ran.store, &map_export(k as u32))
            .unwrap();
        let map = map.data(&ran.store);
        let marked = |p: usize| map.get(p).is_some_and(|b| *b != 0);
        let before = &ran.before[k];
        let missing: Vec<usize> = changed_pages(before, after)
            .into_iter()
            .filter(|&p| !marked(p))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: memory {k}: pages {missing:?} changed but are not marked"
        );
        // The host's rollback: the marked pages from the snapshot.
        let mut rolled_back = after[..before.len()].to_vec();
        for p in (0..before.len().div_ceil(PAGE)).filter(|&p| marked(p)) {
            let r = p * PAGE..((p + 1) * PAGE).min(before.len());
            rolled_back[r.clone()].copy_from_slice(&before[r]);
        }
        assert!(
            rolled_back == *before,
            "{what}: memory {k}: rollback from the marks left changed bytes"
        );
    }
}

/// `repro/barrier-unmarked-on-trap.wat` (memory exported): `f1` writes 1.5f32 at 1640 through
/// base -1 (`-1 + 1636` wraps), then traps on the store through the base itself (`0xffffffff`).
/// The group of both stores used to mark `x + 0 = 0xffffffff` first: that mark trapped on the
/// byte map before page 0 was marked, so the write survived a rollback.
#[test]
fn wrapped_store_before_a_trapping_store_is_marked() {
    let wat = r#"(module
      (memory (export "m0") 1 3)
      (func (export "f0") (param $p0 i32) (param $p1 i32)
        (block $x0 (loop $l0)))
      (func (export "f1") (param $p0 i32) (param $p1 i32)
        (local $b0_2 i32)
        (local.set $b0_2 (i32.const 4095))
        (local.set $b0_2 (i32.sub (local.get $b0_2) (i32.const 4096)))
        (block $bb0
          (block $bb1
            (f32.store 0 offset=5 (i32.add (local.get $b0_2) (i32.const 1636)) (f32.const 1.5))
            (i64.store8 0 offset=0 (local.get $b0_2) (i64.const 0x99))))))"#;
    let engine = engine();
    let plain = wat::parse_str(wat).unwrap();
    let (wasm, summary) = generic(wat);
    let args = [Val::I32(0), Val::I32(0)];
    let p = run_logged(&engine, &plain, "f1", &args, &["m0"]);
    let r = run_logged(&engine, &wasm, "f1", &args, &["m0"]);
    assert!(p.trap.is_some());
    let m = r.instance.get_memory(&r.store, "m0").unwrap();
    assert_eq!(m.data(&r.store)[1640..1644], 1.5f32.to_le_bytes());
    check_against_plain(&p, &r, &["m0"], "f1");
    // `b + 0` is below the first store's anchor `b + 1636`: two groups.
    assert_eq!((summary.barrier_marks, summary.barrier_elided), (2, 0));
}

/// `repro/barrier-trap-order-min.wat` (memories exported): on the loop's second round, the
/// store16 through `$b1_1 = -2904` is out of bounds, and the i32.store to memory 0 before it
/// must still happen. Its mark, grouped with the store8 through `$b1_1 + 3530` (a wrapped
/// address), used to run first and trap on the byte map, so memory 0 was not written.
#[test]
fn grouped_mark_does_not_trap_before_earlier_code() {
    let wat = r#"(module
      (memory (export "m0") 3 5)
      (memory (export "m1") 1 3)
      (func (export "f0") (param $p0 i32) (param $p1 i32)
        (local $b0_2 i32)
        (local $b1_1 i32)
        (local $n0 i32) (local $n1 i32) (local $n2 i32) (local $n3 i32) (local $t i32)
        (local.set $b1_1 (i32.const 5288))
        (block $x0 (loop $l0
          (block $x1 (loop $l1
            (local.set $b1_1 (i32.sub (local.get $b1_1) (i32.const 4096)))
            (i64.store8 1 offset=0 (i32.add (local.get $b1_1) (i32.const 3530)) (i64.const 0x99))
            (i32.store 0 offset=4091 (local.tee $b0_2 (i32.add (local.get $b0_2) (i32.const 8))) (i32.const 0x11223344))
            (i32.store16 1 offset=1548 (local.get $b1_1) (i32.const 0xabcd))
            (br_if $l1 (local.get $n1))))
          (local.set $n0 (i32.sub (local.get $n0) (i32.const 1)))
          (br_if $l0 (local.get $n0))))))"#;
    let engine = engine();
    let plain = wat::parse_str(wat).unwrap();
    let (wasm, _) = generic(wat);
    let args = [Val::I32(0), Val::I32(0)];
    let memories = ["m0", "m1"];
    let p = run_logged(&engine, &plain, "f0", &args, &memories);
    let r = run_logged(&engine, &wasm, "f0", &args, &memories);
    assert!(p.trap.is_some());
    let m0 = r.instance.get_memory(&r.store, "m0").unwrap();
    assert_eq!(m0.data(&r.store)[4107..4111], 0x11223344u32.to_le_bytes());
    check_against_plain(&p, &r, &memories, "f0");
}

/// A host call between a store and a later out-of-bounds store through the same base happens
/// before the trap (`repro/trap-order-canister.wat` as a plain module), and stores through a
/// wrapping base are grouped only where that is exact.
#[test]
fn host_call_between_stores_runs_before_the_trap() {
    let wat = r#"(module
      (import "env" "log" (func $log (param i32)))
      (memory (export "m0") 1)
      (func (export "t") (local $b i32)
        (local.set $b (i32.const -2904))
        (i32.store8 (i32.add (local.get $b) (i32.const 3530)) (i32.const 1))
        (call $log (i32.const 1))
        (i32.store16 offset=1548 (local.get $b) (i32.const 2)))
      ;; One base, constants and offsets on both sides of the first store's address.
      (func (export "g") (param $x i32)
        (i32.store offset=8 (local.get $x) (i32.const 1))
        (i32.store (local.get $x) (i32.const 2))
        (call $log (local.get $x))
        (i32.store offset=16 (local.get $x) (i32.const 3))
        (i32.store (i32.add (local.get $x) (i32.const 12)) (i32.const 4))
        (i32.store offset=40 (i32.sub (local.get $x) (i32.const 8)) (i32.const 5))
        (i32.store offset=4 (i32.sub (local.get $x) (i32.const 8)) (i32.const 6))))"#;
    let engine = engine();
    let plain = wat::parse_str(wat).unwrap();
    let (wasm, summary) = generic(wat);
    let p = run_logged(&engine, &plain, "t", &[], &["m0"]);
    let r = run_logged(&engine, &wasm, "t", &[], &["m0"]);
    assert_eq!(r.store.data(), &[1]);
    check_against_plain(&p, &r, &["m0"], "t");
    for x in [0, 4, 8, 4090, 4092, 65536 - 40, 65536 - 16, -8, -4, -1] {
        let args = [Val::I32(x)];
        let p = run_logged(&engine, &plain, "g", &args, &["m0"]);
        let r = run_logged(&engine, &wasm, "g", &args, &["m0"]);
        check_against_plain(&p, &r, &["m0"], &format!("g({x})"));
    }
    // t: two marks (`b + 0` is below the anchor `b + 3530`). g: `offset=8` leads with anchor
    // `x`; `x + 0`, `+16`, `x + 12` and `x - 8 + 40` are at or above it and join; `x - 8 + 4`
    // is below it and leads a new group.
    assert_eq!((summary.barrier_marks, summary.barrier_elided), (2 + 2, 4));
}

/// Generates programs whose stores go through bases anywhere in the address space (near 0,
/// near 2^32 or 2^64, in bounds, anywhere) plus constants chosen so that the effective address
/// is mostly in bounds: `base + k` wraps often. Three memories: i32, i64 and an i32 memory
/// whose maximum is the whole address space. Host calls between stores make the order of
/// effects observable; out-of-bounds stores and loads trap in the middle; a callee grows a
/// memory inside a group.
struct WrapGen {
    rng: Rng,
    /// The last effective address used per memory (to build groups around it).
    last: [u64; 3],
    /// The value the generated code last gave each base local `$b<m>`.
    shadow: [u128; 3],
}

impl WrapGen {
    const PAGES: [u64; 3] = [2, 1, 1];
    fn i64(m: usize) -> bool {
        m == 1
    }
    fn at(m: usize) -> &'static str {
        if Self::i64(m) { "i64" } else { "i32" }
    }
    fn modulus(m: usize) -> u128 {
        if Self::i64(m) { 1 << 64 } else { 1 << 32 }
    }
    /// A constant of memory `m`'s address type (two's complement).
    fn konst(m: usize, v: u128) -> String {
        let v = v % Self::modulus(m);
        if Self::i64(m) {
            format!("(i64.const {})", v as u64 as i64)
        } else {
            format!("(i32.const {})", v as u32 as i32)
        }
    }
    /// A base value: near 0, near the top of the address space, in bounds, or anywhere.
    fn base(&mut self, m: usize) -> u128 {
        let top = Self::modulus(m);
        match self.rng.below(4) {
            0 => u128::from(self.rng.below(3 * 4096)),
            1 => top - 1 - u128::from(self.rng.below(3 * 4096)),
            2 => u128::from(self.rng.below(Self::PAGES[m] * 65536)),
            _ => u128::from(self.rng.next()) % top,
        }
    }
    /// A target effective address for `w` bytes: near the last one (groups), in bounds, just
    /// past the end, or past the top of the address space.
    fn target(&mut self, m: usize, w: u64) -> u128 {
        let size = Self::PAGES[m] * 65536;
        let ea = match self.rng.below(50) {
            0 => u128::from(size + self.rng.below(8192)),
            1 => Self::modulus(m) - 1 - u128::from(self.rng.below(64)),
            2..=29 => u128::from(
                (self.last[m] + self.rng.below(128))
                    .saturating_sub(64)
                    .min(size - w),
            ),
            _ => u128::from(self.rng.below(size).min(size - w)),
        };
        if ea < u128::from(size) {
            self.last[m] = ea as u64;
        }
        ea
    }
    fn store(&mut self, m: usize) -> String {
        let &(op, w, ty) = self.rng.pick(&STORES);
        let lane = if op.ends_with("_lane") {
            format!(" {}", self.rng.below(16 / w))
        } else {
            String::new()
        };
        let ea = self.target(m, w);
        let offset = match self.rng.below(3) {
            0 => 0,
            1 => self.rng.below(64),
            _ => self.rng.below(5000),
        };
        let offset = u128::from(offset).min(ea);
        let at = Self::at(m);
        // The address is `base + k` with `k = ea - offset - base` (modulo the address width).
        let base = self.shadow[m];
        let k = (ea - offset + Self::modulus(m) - base) % Self::modulus(m);
        let addr = match (k, self.rng.below(2)) {
            (0, _) => format!("(local.get $b{m})"),
            (_, 0) => format!("({at}.add (local.get $b{m}) {})", Self::konst(m, k)),
            _ => format!(
                "({at}.sub (local.get $b{m}) {})",
                Self::konst(m, Self::modulus(m) - k)
            ),
        };
        let value = Gen {
            rng: Rng(self.rng.next()),
            pages: [1, 1],
        }
        .value(ty);
        format!("({op} $m{m} offset={offset}{lane} {addr} {value})")
    }
}

impl WrapGen {
    fn op(&mut self, depth: u32) -> String {
        let m = self.rng.below(3) as usize;
        let at = Self::at(m);
        match self.rng.below(24) {
            0..=13 => self.store(m),
            14 | 15 => {
                let b = self.base(m);
                self.shadow[m] = b;
                format!("(local.set $b{m} {})", Self::konst(m, b))
            }
            16 => format!("(call $log (i32.const {}))", self.rng.below(1000)),
            17 => {
                // A load through the base (traps out of bounds like a store).
                let ea = self.target(m, 8);
                let k = (ea + Self::modulus(m) - self.shadow[m]) % Self::modulus(m);
                format!(
                    "(drop (i64.load $m{m} ({at}.add (local.get $b{m}) {})))",
                    Self::konst(m, k)
                )
            }
            18 => {
                let len = self.rng.below(6000);
                let ea = self
                    .target(m, 1)
                    .min(u128::from(Self::PAGES[m] * 65536 - len.min(65536)));
                let k = (ea + Self::modulus(m) - self.shadow[m]) % Self::modulus(m);
                format!(
                    "(memory.fill $m{m} ({at}.add (local.get $b{m}) {}) (i32.const {}) ({at}.const {len}))",
                    Self::konst(m, k),
                    self.rng.below(256)
                )
            }
            // A callee grows memory 0 within a group (memory 0 may grow to 3 pages).
            19 => "(call $grow0)".to_string(),
            20 if depth < 2 => {
                let body: Vec<String> = (0..self.rng.below(6) + 1)
                    .map(|_| self.op(depth + 1))
                    .collect();
                let exit = format!(
                    "(br_if $out{depth} (i32.const {}))",
                    self.rng.chance(30) as i32
                );
                let more: Vec<String> =
                    (0..self.rng.below(4)).map(|_| self.op(depth + 1)).collect();
                format!(
                    "(block $out{depth} {} {exit} {})",
                    body.join(" "),
                    more.join(" ")
                )
            }
            21 if depth < 2 => {
                let body: Vec<String> = (0..self.rng.below(6) + 1)
                    .map(|_| self.op(depth + 1))
                    .collect();
                format!("(if (i32.const 1) (then {}))", body.join(" "))
            }
            _ => format!("(call $log (i32.const {}))", self.rng.below(1000) + 1000),
        }
    }

    fn program(&mut self, ops: usize) -> String {
        let body: Vec<String> = (0..ops).map(|_| self.op(0)).collect();
        let [p0, p1, p2] = Self::PAGES;
        format!(
            r#"(module
  (import "env" "log" (func $log (param i32)))
  (memory $m0 (export "m0") {p0} 3)
  (memory $m1 (export "m1") i64 {p1} 2)
  (memory $m2 (export "m2") {p2} 65536)
  (func $grow0 (drop (memory.grow $m0 (i32.const 1))))
  (func (export "run") (local $b0 i32) (local $b1 i64) (local $b2 i32)
    {}))"#,
            body.join("\n    ")
        )
    }
}

/// Randomized soundness under address wrap-around: plain and instrumented runs of generated
/// programs trap alike, make the same host calls and leave the same memories, every changed
/// page is marked, and restoring the marked pages undoes every change.
#[test]
fn randomized_wraparound_soundness() {
    let engine = engine();
    let mut rng = Rng(0x000b_ad5e_ed14);
    let memories = ["m0", "m1", "m2"];
    let (mut traps, mut elided, mut marks) = (0, 0, 0);
    for case in 0..300 {
        let mut g = WrapGen {
            rng: Rng(rng.next()),
            last: [0; 3],
            shadow: [0; 3],
        };
        let wat = g.program(40);
        let plain = wat::parse_str(&wat).unwrap();
        let (wasm, summary) = instrument_with(&wat, &Config::generic().metering(false));
        marks += summary.barrier_marks;
        elided += summary.barrier_elided;
        let p = run_logged(&engine, &plain, "run", &[], &memories);
        let r = run_logged(&engine, &wasm, "run", &[], &memories);
        traps += p.trap.is_some() as u32;
        check_against_plain(&p, &r, &memories, &format!("case {case}:\n{wat}\n"));
    }
    assert!(
        elided > 0 && marks > elided,
        "{marks} marks, {elided} elided"
    );
    assert!((30..270).contains(&traps), "{traps} of 300 runs trapped");
}
