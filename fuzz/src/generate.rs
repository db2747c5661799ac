//! Module and call generation: wasm-smith configured for the features canister-vm accepts.
//!
//! A *seed* gives a deterministic byte string ([`seed_bytes`], fastrand's wyrand), which becomes
//! an [`Unstructured`]; wasm-smith builds a module from it and the rest of the bytes choose the
//! calls ([`plan`]). libFuzzer targets skip the first step and hand their input to [`Input::new`].

use arbitrary::Unstructured;
use wasm_smith::{Config, Module};

use crate::exec::{Call, Value};
use crate::module::Layout;

/// The fuel wasm-smith's `ensure_termination` gives every call: loop iterations plus function
/// entries. The global holding it is reset before each call, so every call is bounded.
pub const FUEL: u32 = 1_000;

/// `ic0` stable-memory functions a generated module may import (the only imports).
const STABLE_IMPORTS: &str = r#"(module
    (import "ic0" "stable64_size" (func (result i64)))
    (import "ic0" "stable64_grow" (func (param i64) (result i64)))
    (import "ic0" "stable64_read" (func (param i64 i64 i64)))
    (import "ic0" "stable64_write" (func (param i64 i64 i64)))
    (import "ic0" "stable_size" (func (result i32)))
    (import "ic0" "stable_grow" (func (param i32) (result i32)))
    (import "ic0" "stable_read" (func (param i32 i32 i32)))
    (import "ic0" "stable_write" (func (param i32 i32 i32)))
)"#;

/// A generated input: the module (not yet exposed) and the calls to make.
#[derive(Debug, Clone)]
pub struct Input {
    /// The module, as wasm-smith made it.
    pub wasm: Vec<u8>,
    /// The calls, in order.
    pub calls: Vec<Call>,
    /// The index of wasm-smith's fuel global, reset to [`FUEL`] before each call.
    pub fuel_global: Option<u32>,
}

/// The deterministic bytes of `seed` (1 to 16 KiB).
pub fn seed_bytes(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let len = rng.usize(1024..16 * 1024);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    bytes
}

/// wasm-smith's configuration for canister-vm: Wasm 2.0, multi-memory, memory64, SIMD, tail
/// calls, extended-const, bulk memory; no threads, relaxed SIMD, GC, exceptions, custom page
/// sizes or wide arithmetic; at most 3 memories of 1 MiB; every item exported; no start function
/// (the host binds the heap after instantiation); only `ic0` stable imports, in some modules.
/// `canonicalize_nans` is chosen per module (see the crate docs, "NaN payloads").
pub fn smith_config(u: &mut Unstructured<'_>) -> arbitrary::Result<Config> {
    let stable = u.ratio(1, 3)?;
    let canonicalize_nans = u.ratio(3, 4)?;
    Ok(Config {
        available_imports: stable.then(|| wat::parse_str(STABLE_IMPORTS).expect("valid WAT")),
        allow_start_export: false,
        bulk_memory_enabled: true,
        canonicalize_nans,
        exceptions_enabled: false,
        export_everything: true,
        gc_enabled: false,
        custom_page_sizes_enabled: false,
        max_funcs: 12,
        min_funcs: 2,
        min_types: 2,
        max_imports: if stable { 8 } else { 0 },
        max_instructions: 120,
        max_memories: 3,
        max_memory32_bytes: 1 << 20,
        max_memory64_bytes: 1 << 20,
        memory64_enabled: true,
        max_tables: 2,
        max_table_elements: 1_000,
        max_data_segments: 8,
        max_element_segments: 8,
        max_globals: 12,
        multi_value_enabled: true,
        reference_types_enabled: true,
        relaxed_simd_enabled: false,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        shared_everything_threads_enabled: false,
        simd_enabled: true,
        tail_call_enabled: true,
        threads_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: true,
        ..Config::default()
    })
}

impl Input {
    /// Builds a module and its calls from `data` (any bytes).
    pub fn new(data: &[u8]) -> arbitrary::Result<Input> {
        let mut u = Unstructured::new(data);
        let config = smith_config(&mut u)?;
        let mut module = Module::new(config, &mut u)?;
        let fuel_global = module.ensure_termination(FUEL).ok();
        let wasm = module.to_bytes();
        let layout =
            crate::module::Layout::of(&wasm).map_err(|_| arbitrary::Error::IncorrectFormat)?;
        let calls = plan(&layout, &mut u)?;
        Ok(Input {
            wasm,
            calls,
            fuel_global,
        })
    }

    /// Builds the input of `seed` with wasm-smith.
    pub fn from_seed(seed: u64) -> arbitrary::Result<Input> {
        Input::new(&seed_bytes(seed))
    }

    /// The input `seed` gives `target`: every 4th seed (`seed % 4 == 3`) of the running checks
    /// comes from the store-shape generator ([`stores_module`]), the others from wasm-smith.
    pub fn for_target(target: crate::Target, seed: u64) -> arbitrary::Result<Input> {
        if uses_store_generator(target, seed) {
            Ok(stores_module(seed))
        } else {
            Input::from_seed(seed)
        }
    }
}

/// Whether `target` takes seed `seed`'s module from the store-shape generator.
pub fn uses_store_generator(target: crate::Target, seed: u64) -> bool {
    target != crate::Target::InstrumentNeverPanics && seed % 4 == 3
}

/// An argument: boundary values often, arbitrary bits otherwise.
fn arg(ty: wasmparser::ValType, u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    use wasmparser::ValType as T;
    const I32S: [i32; 8] = [0, 1, -1, 8, 4095, 4096, 65536, i32::MIN];
    const I64S: [i64; 7] = [0, 1, -1, 4096, 65536, 1 << 32, i64::MIN];
    let special = u.ratio(1, 2)?;
    Ok(match ty {
        T::I32 if special => Value::I32(*u.choose(&I32S)?),
        T::I32 => Value::I32(u.arbitrary()?),
        T::I64 if special => Value::I64(*u.choose(&I64S)?),
        T::I64 => Value::I64(u.arbitrary()?),
        T::F32 if special => Value::F32(*u.choose(&[0, 0x3f80_0000, 0x7fc0_0000, 0xffc0_0001])?),
        T::F32 => Value::F32(u.arbitrary()?),
        T::F64 if special => Value::F64(*u.choose(&[0, 0x3ff0_0000_0000_0000, 0x7ff8 << 48])?),
        T::F64 => Value::F64(u.arbitrary()?),
        T::V128 => Value::V128(u.arbitrary()?),
        T::Ref(_) => Value::Ref { null: true },
    })
}

/// Up to 16 calls of the module's exported functions, with generated arguments.
pub fn plan(layout: &Layout, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Call>> {
    let mut calls = Vec::new();
    if layout.funcs.is_empty() {
        return Ok(calls);
    }
    // At least one call of every function (up to 8), then random ones.
    for f in layout.funcs.iter().take(8) {
        let args = f
            .params
            .iter()
            .map(|t| arg(*t, u))
            .collect::<Result<_, _>>()?;
        calls.push(Call {
            export: f.name.clone(),
            args,
        });
    }
    let extra = u.int_in_range(0..=8)?;
    for _ in 0..extra {
        let f = u.choose(&layout.funcs)?;
        let args = f
            .params
            .iter()
            .map(|t| arg(*t, u))
            .collect::<Result<_, _>>()?;
        calls.push(Call {
            export: f.name.clone(),
            args,
        });
    }
    Ok(calls)
}

/// The store-shape generator: modules whose functions store through base locals at offsets
/// near 4 KiB page boundaries, move the bases by a page or a few bytes (so addresses wrap around),
/// and mix in loops, branches, bulk operators and out-of-bounds stores: the shapes where the
/// write barrier groups and elides marks (barrier-unmarked-on-trap.wat came from such a
/// generator). wasm-smith rarely makes two stores from one base; these modules do little else.
/// Loops are counted down from at most 4, so every call ends.
pub fn stores_module(seed: u64) -> Input {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5702_e5ba_5e5e_ed00);
    let mems: Vec<bool> = (0..rng.usize(1..=3)).map(|_| rng.u8(..4) == 0).collect();
    let mut wat = String::from("(module\n");
    for (i, &m64) in mems.iter().enumerate() {
        let min = rng.u64(1..=3);
        let max = min + rng.u64(0..=2);
        let ty = if m64 { "i64 " } else { "" };
        wat += &format!("  (memory {ty}{min} {max})\n");
        let _ = i;
    }
    if rng.bool() {
        let t = if mems[0] { "i64" } else { "i32" };
        wat += &format!(
            "  (data ({t}.const 4090) \"\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\")\n"
        );
    }
    let funcs = rng.usize(1..=3);
    for f in 0..funcs {
        wat += &format!("  (func (export \"f{f}\") (param $p0 i32) (param $p1 i32)\n");
        for (m, &m64) in mems.iter().enumerate() {
            let t = if m64 { "i64" } else { "i32" };
            for b in 0..3 {
                wat += &format!("    (local $b{m}_{b} {t})\n");
            }
        }
        wat += "    (local $n0 i32) (local $n1 i32) (local $n2 i32)\n";
        let mut g = StoreGen {
            rng: &mut rng,
            mems: &mems,
            out: String::new(),
            labels: 0,
        };
        let n = g.rng.usize(2..=8);
        for _ in 0..n {
            g.stmt(0, 2);
        }
        wat += &g.out;
        wat += "  )\n";
    }
    wat += ")\n";
    let wasm = wat::parse_str(&wat).expect("the store generator writes valid WAT");
    let mut calls = Vec::new();
    for _ in 0..rng.usize(2..=6) {
        let pick = |rng: &mut fastrand::Rng| match rng.u8(..4) {
            0 => 0,
            1 => *[4096, 8, 64, -1, 1].get(rng.usize(..5)).unwrap_or(&0),
            _ => rng.i32(..),
        };
        calls.push(Call {
            export: format!("f{}", rng.usize(..funcs)),
            args: vec![Value::I32(pick(&mut rng)), Value::I32(pick(&mut rng))],
        });
    }
    Input {
        wasm,
        calls,
        fuel_global: None,
    }
}

struct StoreGen<'a> {
    rng: &'a mut fastrand::Rng,
    mems: &'a [bool],
    out: String,
    labels: u32,
}

impl StoreGen<'_> {
    fn konst(&mut self, m64: bool) -> String {
        let v: i64 = match self.rng.u8(..10) {
            0 => 0,
            1 => 4095,
            2 => 4096,
            3 => -1,
            4 => -4096,
            8 => -self.rng.i64(1..64),
            9 => self.rng.i64(1..5000),
            5 => self.rng.i64(0..3 * 65536),
            6 => 65536 - self.rng.i64(1..16),
            _ => self.rng.i64(-8..8) * 4096 + self.rng.i64(-8..8),
        };
        if m64 {
            format!("(i64.const {v})")
        } else {
            format!("(i32.const {})", v as i32)
        }
    }

    fn line(&mut self, depth: usize, s: &str) {
        self.out += &"  ".repeat(depth + 2);
        self.out += s;
        self.out += "\n";
    }

    fn addr(&mut self, m: usize) -> String {
        let m64 = self.mems[m];
        let t = if m64 { "i64" } else { "i32" };
        let b = format!("$b{m}_{}", self.rng.usize(..2));
        // Small constants mostly, so stores from one base group (span <= 4096 bytes).
        let small = |rng: &mut fastrand::Rng| match rng.u8(..4) {
            0 => rng.i64(4000..4100),
            _ => rng.i64(0..2048),
        };
        match self.rng.u8(..6) {
            0 | 1 => format!("(local.get {b})"),
            2 => format!("({t}.add (local.get {b}) ({t}.const {}))", small(self.rng)),
            3 => format!("(local.tee {b} ({t}.add (local.get {b}) ({t}.const 8)))"),
            4 => format!("({t}.sub (local.get {b}) ({t}.const {}))", small(self.rng)),
            _ => format!("({t}.add (local.get {b}) {})", self.konst(m64)),
        }
    }

    fn stmt(&mut self, depth: usize, max_depth: usize) {
        let m = self.rng.usize(..self.mems.len());
        let m64 = self.mems[m];
        let t = if m64 { "i64" } else { "i32" };
        let kind = self.rng.u8(..18);
        match kind {
            16..=17 => {
                // A group of stores from one base near the top of the address space, so that
                // some wrap around to low pages and others are out of bounds.
                let b = self.rng.usize(..2);
                let near = -self.rng.i64(1..=4096);
                let k = if m64 {
                    format!("(i64.const {near})")
                } else {
                    format!("(i32.const {near})")
                };
                self.line(depth, &format!("(local.set $b{m}_{b} {k})"));
                for _ in 0..self.rng.usize(2..=4) {
                    let c = self.rng.i64(0..4096);
                    let addr = match self.rng.u8(..3) {
                        0 => format!("(local.get $b{m}_{b})"),
                        _ => format!("({t}.add (local.get $b{m}_{b}) ({t}.const {c}))"),
                    };
                    let offset = self.rng.u64(..64);
                    let (op, val) = match self.rng.u8(..3) {
                        0 => ("i64.store8", "(i64.const 0x99)"),
                        1 => ("f32.store", "(f32.const 1.5)"),
                        _ => ("i32.store16", "(i32.const 0xabcd)"),
                    };
                    self.line(depth, &format!("({op} {m} offset={offset} {addr} {val})"));
                }
            }
            0..=1 => {
                let b = self.rng.usize(..2);
                let k = self.konst(m64);
                self.line(depth, &format!("(local.set $b{m}_{b} {k})"));
            }
            2..=3 => {
                let b = self.rng.usize(..2);
                let op = if self.rng.bool() { "sub" } else { "add" };
                let step = if self.rng.bool() {
                    4096
                } else {
                    self.rng.i64(1..16)
                };
                self.line(
                    depth,
                    &format!(
                        "(local.set $b{m}_{b} ({t}.{op} (local.get $b{m}_{b}) ({t}.const {step})))"
                    ),
                );
            }
            4..=9 => {
                let (op, val) = match self.rng.u8(..7) {
                    0 => ("i32.store8", "(i32.const 0xab)"),
                    1 => ("i32.store16", "(i32.const 0xabcd)"),
                    2 => ("i32.store", "(i32.const 0x11223344)"),
                    3 => ("i64.store8", "(i64.const 0x99)"),
                    4 => ("i64.store", "(i64.const 0x0102030405060708)"),
                    5 => ("f32.store", "(f32.const 1.5)"),
                    _ => ("f64.store", "(f64.const -2.25)"),
                };
                let offset = match self.rng.u8(..4) {
                    0 => 0,
                    1 => self.rng.u64(4085..=4096),
                    2 => self.rng.u64(..8192),
                    _ => self.rng.u64(..16),
                };
                let a = self.addr(m);
                self.line(depth, &format!("({op} {m} offset={offset} {a} {val})"));
            }
            10 => {
                let a = self.addr(m);
                let len = self.rng.u64(..5000);
                self.line(
                    depth,
                    &format!("(memory.fill {m} {a} (i32.const 0x5a) ({t}.const {len}))"),
                );
            }
            11 => {
                // Between memories of one address type (mixed types need care wasmparser and
                // the spec only recently agreed on).
                let same: Vec<usize> = (0..self.mems.len())
                    .filter(|&n| self.mems[n] == m64)
                    .collect();
                let n = same[self.rng.usize(..same.len())];
                let a = self.addr(m);
                let s = self.addr(n);
                let len = self.rng.u64(..5000);
                // memory.copy's length has the smaller of the two address types.
                let lt = if m64 && self.mems[n] { "i64" } else { "i32" };
                self.line(
                    depth,
                    &format!("(memory.copy {m} {n} {a} {s} ({lt}.const {len}))"),
                );
            }
            12 => {
                let a = self.addr(m);
                let lane = self.rng.u8(..4);
                self.line(
                    depth,
                    &format!(
                        "(v128.store32_lane {m} offset=1032 {lane} {a} (v128.const i64x2 -1 -2))"
                    ),
                );
            }
            13 if depth < max_depth => {
                let l = self.labels;
                self.labels += 1;
                let count = self.rng.u32(1..=4);
                self.line(depth, &format!("(local.set $n{depth} (i32.const {count}))"));
                self.line(depth, &format!("(block $x{l} (loop $l{l}"));
                for _ in 0..self.rng.usize(1..=4) {
                    self.stmt(depth + 1, max_depth);
                }
                self.line(
                    depth + 1,
                    &format!("(local.set $n{depth} (i32.sub (local.get $n{depth}) (i32.const 1)))"),
                );
                self.line(depth + 1, &format!("(br_if $l{l} (local.get $n{depth}))))"));
            }
            14 if depth < max_depth => {
                let bit = 1u32 << self.rng.u32(..8);
                self.line(
                    depth,
                    &format!("(if (i32.and (local.get $p0) (i32.const {bit})) (then"),
                );
                for _ in 0..self.rng.usize(1..=3) {
                    self.stmt(depth + 1, max_depth);
                }
                self.line(depth, "))");
            }
            15 if depth < max_depth => {
                let l = self.labels;
                self.labels += 1;
                self.line(depth, &format!("(block $bb{l}"));
                self.stmt(depth + 1, max_depth);
                self.line(
                    depth + 1,
                    &format!("(br_if $bb{l} (i32.and (local.get $p1) (i32.const 1)))"),
                );
                self.stmt(depth + 1, max_depth);
                self.line(depth, ")");
            }
            _ => {
                let a = self.addr(m);
                self.line(
                    depth,
                    &format!("(i32.store8 {m} offset=4095 {a} (i32.const 0x77))"),
                );
            }
        }
    }
}
