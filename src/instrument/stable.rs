//! The stable-memory pass: Wasm-native stable memory (DESIGN.md §2, §3).
//!
//! In [`StableMode::Native`](super::StableMode::Native) the `ic0.stable*` imports are removed and
//! replaced by functions defined in the module, over an injected memory64 memory placed after the
//! last memory (no existing memory index changes):
//!
//! ```wat
//! (import "canister_vm" "trap" (func $trap (param i32)))      ;; added unless present
//! (memory $stable i64 0 <stable_limit_pages>)                 ;; index n = number of memories
//! (global $stable_bytes (mut i64) (i64.const 0))              ;; stable size in bytes
//! (global $fast_limit (mut i64) (i64.const 0))                ;; bytes - 7, or 0 if empty
//! (export "stable_memory" (memory $stable))
//! (export "canister_vm:stable_bytes" (global $stable_bytes))
//! (export "canister_vm:stable_fast_limit" (global $fast_limit))
//!
//! ;; one function per imported stable function, with the IC's semantics, e.g.
//! (func $stable64_read (param $dst i64) (param $off i64) (param $len i64)
//!   (if (i64.eqz (local.get $len)) (then (return)))
//!   ;; stable bounds, overflow-free: off <= size && len <= size - off
//!   (if (i32.or (i64.gt_u (local.get $off) (global.get $stable_bytes))
//!               (i64.gt_u (local.get $len) (i64.sub (global.get $stable_bytes) (local.get $off))))
//!     (then (call $trap (i32.const 2))))                     ;; stable memory out of bounds
//!   ;; heap bounds: left to memory.copy (its out-of-bounds trap is a heap out of bounds); a
//!   ;; wasm32 heap only checks what would wrap when narrowed to i32 (dst > u32::MAX or
//!   ;; len > 2^32), and a module without memory checks dst + len <= 0
//!   (if ... (then (call $trap (i32.const 3))))                ;; heap out of bounds
//!   (memory.copy 0 $stable (local.get $dst) (local.get $off) (local.get $len)))
//! ```
//!
//! **Call sites** (both modes, when the module is metered): a stable read/write costs
//! `20 + len` instructions, so both modes count the same (DESIGN.md §5). A run-time length is
//! charged at the call site, before the call:
//!
//! ```wat
//! local.tee $len  global.get $counter  local.get $len  i64.const 20  i64.add  i64.sub
//! global.set $counter  call $stable64_read
//! ```
//!
//! A `stable64_read`/`stable64_write` whose length is a constant right before the call (0 to
//! 65 536, [`folded_call_cost`]) costs a constant: the metering pass adds it to the cost of the
//! call's straight-line segment, charged at the segment's start, so nothing is executed for it
//! at the call site (on an interpreter, three instructions less per call).
//!
//! **Fast path** (native mode): when a `stable64_read`/`stable64_write` call has a constant length
//! of 1, 2, 4 or 8 right before it (`i64.const 8  call $stable64_read`, the shape
//! ic-stable-structures produces for fixed-size values), the call is replaced by one bounds check
//! and one load/store pair, inline, with no call (the interpreter cost model of DESIGN.md §3):
//! any failed check falls back to the full function, which traps with the exact reason.
//!
//! ```wat
//! local.set $o  local.set $d
//! (block $done
//!   (block $slow
//!     (br_if $slow (i64.ge_u (local.get $o) (global.get $fast_limit)))
//!     (br_if $slow (i64.gt_u (local.get $d) (i64.const 0xffff_ffff)))   ;; wasm32 heap only
//!     (i64.store 0 (i32.wrap_i64 (local.get $d)) (i64.load $stable (local.get $o)))
//!     (br $done))
//!   (call $stable64_read (local.get $d) (local.get $o) (i64.const 8)))
//! ```
//!
//! One compare-and-branch per check: the interpreter fuses each `i64.ge_u`/`i64.gt_u` with its
//! `br_if`. `$fast_limit` is `stable_bytes - 7` (0 while stable memory is empty; stable memory
//! is a whole number of 64 KiB pages, so `off < limit` is exactly `off + 8 <= stable_bytes`, with
//! no overflow). Shorter accesses use the same bound: the last 7 bytes of stable memory take the
//! call, which is only slower.
//!
//! The fast path checks stable bounds exactly, but leaves the heap bounds to the store or load on
//! memory 0: a heap access out of bounds there is the engine's out-of-bounds trap, which the
//! runtime reports as "heap out of bounds" like any heap access of the canister.
//!
//! **Heap layouts.** Memory 0 is the heap, whatever the module declares after it:
//!
//! - *several memories*: stable memory goes after the last one (index n); the others are left
//!   alone and stable functions copy only to and from memory 0;
//! - *memory64 heap*: the stable functions keep their fixed types (the IC's), heap addresses
//!   are used as i64 without narrowing, and the fast path needs no address check;
//! - *wasm32 heap*: a copy takes an i32 length, and a 4 GiB copy (a full heap) is split in two;
//! - *no memory*: stable memory is memory 0, every non-empty heap range is out of bounds and a
//!   zero-length 32-bit write only checks its bounds.

use std::collections::HashMap;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, GlobalSection, GlobalType, ImportSection, Instruction as I, MemArg,
    MemorySection, MemoryType, Module, NameMap, NameSection, SectionId, TypeSection, ValType,
};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use super::sections;
use super::{InjectedTrap, InstrumentError, StableMode, Summary, names};

/// Metered cost of a stable read/write call besides its length (DESIGN.md §5).
pub const STABLE_CALL_BASE_COST: i64 = 20;

/// Metered cost of a stable grow call (the replica's `overhead_native::STABLE_GROW`), charged
/// by the injected grow function (and by the host function in system-API mode).
pub const STABLE_GROW_COST: i64 = 100;

/// The cost of a `stable64_read`/`stable64_write` call whose length is the constant `len`
/// pushed right before it, when the metering pass charges it with the call's segment (at the
/// segment's start, with the segment's other instructions) rather than at the call site: no
/// instruction runs for it at run time. `None` (a charge at the call site) for negative or
/// large constants. The metering pass and this pass both use this function, so the two agree.
pub(crate) fn folded_call_cost(len: i64) -> Option<u64> {
    (0..=65_536)
        .contains(&len)
        .then(|| (STABLE_CALL_BASE_COST + len) as u64)
}

/// Whether `ic0.<name>` is a 64-bit stable read or write (the calls whose constant lengths are
/// charged by the metering pass, see [`folded_call_cost`]).
pub(crate) fn is_wide_read_write(name: &str) -> bool {
    matches!(name, "stable64_read" | "stable64_write")
}

/// The eight stable functions, in the order injected functions are appended.
const STABLE_FUNCTIONS: [&str; 8] = [
    "stable_size",
    "stable_grow",
    "stable_read",
    "stable_write",
    "stable64_size",
    "stable64_grow",
    "stable64_read",
    "stable64_write",
];

const MAX_32_BIT_STABLE_BYTES: i64 = 1 << 32;

/// `$fast_limit = stable_bytes - FAST_LIMIT_SLACK` (when stable memory is not empty): an 8-byte
/// access at `off` fits iff `off < $fast_limit`.
const FAST_LIMIT_SLACK: i64 = 7;

/// The value of the exported `canister_vm:stable_fast_limit` global for a stable memory of
/// `bytes` bytes (a whole number of 64 KiB pages): what the host sets beside
/// `canister_vm:stable_bytes` when it resizes stable memory.
pub fn fast_limit(bytes: i64) -> i64 {
    if bytes == 0 {
        0
    } else {
        bytes - FAST_LIMIT_SLACK
    }
}

/// Facts about the input module gathered before rewriting.
#[derive(Debug, Default)]
struct Scan {
    /// Parameter counts of every type index (non-function types: 0).
    type_params: Vec<u32>,
    /// Every type index's function type (`None` for non-function types).
    func_types: Vec<Option<wasmparser::FuncType>>,
    /// Whether a type `(param i32)` with no results exists, and its index.
    trap_type: Option<u32>,
    /// Imported functions in order: (module, name, type index).
    func_imports: Vec<(String, String, u32)>,
    /// The byte offset of each imported function's import.
    func_import_offsets: Vec<usize>,
    /// Type index of each defined function.
    defined_types: Vec<u32>,
    memories: u32,
    heap64: bool,
    globals: u32,
    counter_global: Option<u32>,
    has: Vec<SectionId>,
}

impl Scan {
    fn new(wasm: &[u8]) -> Result<Scan, InstrumentError> {
        let mut s = Scan::default();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    s.has.push(SectionId::Type);
                    for group in reader {
                        for sub in group?.into_types() {
                            let idx = s.type_params.len() as u32;
                            match &sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => {
                                    s.type_params.push(f.params().len() as u32);
                                    s.func_types.push(Some(f.clone()));
                                    if f.params() == [wasmparser::ValType::I32]
                                        && f.results().is_empty()
                                        && s.trap_type.is_none()
                                    {
                                        s.trap_type = Some(idx);
                                    }
                                }
                                _ => {
                                    s.type_params.push(0);
                                    s.func_types.push(None);
                                }
                            }
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    s.has.push(SectionId::Import);
                    for import in reader.into_iter_with_offsets() {
                        let (offset, import) = import?;
                        match import.ty {
                            TypeRef::Func(t) => {
                                s.func_imports.push((
                                    import.module.to_string(),
                                    import.name.to_string(),
                                    t,
                                ));
                                s.func_import_offsets.push(offset);
                            }
                            TypeRef::Memory(m) => {
                                if s.memories == 0 {
                                    s.heap64 = m.memory64;
                                }
                                s.memories += 1;
                            }
                            TypeRef::Global(_) => s.globals += 1,
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    s.has.push(SectionId::Function);
                    for t in reader {
                        s.defined_types.push(t?);
                    }
                }
                Payload::MemorySection(reader) => {
                    s.has.push(SectionId::Memory);
                    for m in reader {
                        let m = m?;
                        if s.memories == 0 {
                            s.heap64 = m.memory64;
                        }
                        s.memories += 1;
                    }
                }
                Payload::GlobalSection(reader) => {
                    s.has.push(SectionId::Global);
                    s.globals += reader.count();
                }
                Payload::ExportSection(reader) => {
                    s.has.push(SectionId::Export);
                    for e in reader {
                        let e = e?;
                        if e.name == names::COUNTER && e.kind == wasmparser::ExternalKind::Global {
                            s.counter_global = Some(e.index);
                        }
                    }
                }
                Payload::CodeSectionStart { .. } => s.has.push(SectionId::Code),
                _ => {}
            }
        }
        Ok(s)
    }
}

/// Which rewrite a call to an old function index gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A read or write: charge `20 + len` before the call. `wide` = 64-bit API.
    ReadWrite { write: bool, wide: bool },
    /// Size or grow: nothing charged at the call site (grow charges in its function).
    Other,
}

/// The rewriter.
struct StablePass {
    mode: StableMode,
    stable_limit_pages: u64,
    heap64: bool,
    has_heap: bool,
    /// Old function index → new function index.
    func_map: Vec<u32>,
    /// Old import index of each stable import → (name, target).
    stable_calls: HashMap<u32, (&'static str, Target)>,
    /// New index of each injected function by stable function name (native mode).
    injected: Vec<(&'static str, u32, u32)>, // (name, new func index, type index)
    /// Old indices of removed imports (native mode).
    removed: Vec<u32>,
    trap_func: u32,
    trap_import_needed: bool,
    trap_type: u32,
    add_trap_type: bool,
    stable_memory: u32,
    stable_bytes_global: u32,
    /// `$fast_limit`, right after `$stable_bytes`.
    fast_limit_global: u32,
    counter_global: Option<u32>,
    type_params: Vec<u32>,
    defined_types: Vec<u32>,
    next_body: usize,
    fast_paths: u64,
    dynamic_fast_paths: u64,
    emitted: Vec<SectionId>,
    has: Vec<SectionId>,
}

fn mem(memory_index: u32, align: u32) -> MemArg {
    MemArg {
        offset: 0,
        align,
        memory_index,
    }
}

impl StablePass {
    fn native(&self) -> bool {
        self.mode == StableMode::Native
    }

    fn trap(&self, f: &mut Function, trap: InjectedTrap) {
        f.instruction(&I::I32Const(trap.code()));
        f.instruction(&I::Call(self.trap_func));
        f.instruction(&I::Unreachable);
    }

    /// `if (cond on the stack) trap`.
    fn trap_if(&self, f: &mut Function, trap: InjectedTrap) {
        f.instruction(&I::If(BlockType::Empty));
        self.trap(f, trap);
        f.instruction(&I::End);
    }

    /// Pushes the heap size in bytes as an i64.
    fn heap_bytes(&self, f: &mut Function) {
        if !self.has_heap {
            f.instruction(&I::I64Const(0));
            return;
        }
        f.instruction(&I::MemorySize(0));
        if !self.heap64 {
            f.instruction(&I::I64ExtendI32U);
        }
        f.instruction(&I::I64Const(16));
        f.instruction(&I::I64Shl);
    }

    /// Traps unless `addr + len <= limit` (all i64 locals; no overflow).
    fn check_range(
        &self,
        f: &mut Function,
        addr: u32,
        len: u32,
        limit: impl Fn(&mut Function),
        trap: InjectedTrap,
    ) {
        f.instruction(&I::LocalGet(addr));
        limit(f);
        f.instruction(&I::I64GtU);
        f.instruction(&I::LocalGet(len));
        limit(f);
        f.instruction(&I::LocalGet(addr));
        f.instruction(&I::I64Sub);
        f.instruction(&I::I64GtU);
        f.instruction(&I::I32Or);
        self.trap_if(f, trap);
    }

    fn stable_bytes(&self) -> impl Fn(&mut Function) + '_ {
        move |f: &mut Function| {
            f.instruction(&I::GlobalGet(self.stable_bytes_global));
        }
    }

    /// Pushes a heap address from i64 local `l` in the heap's index type.
    fn heap_addr(&self, f: &mut Function, l: u32) {
        f.instruction(&I::LocalGet(l));
        if !self.heap64 {
            f.instruction(&I::I32WrapI64);
        }
    }

    /// Traps if stable memory is larger than 4 GiB (32-bit API).
    fn check_32_bit(&self, f: &mut Function) {
        f.instruction(&I::GlobalGet(self.stable_bytes_global));
        f.instruction(&I::I64Const(MAX_32_BIT_STABLE_BYTES));
        f.instruction(&I::I64GtU);
        self.trap_if(f, InjectedTrap::StableTooBigFor32Bit);
    }

    /// The body of injected function `name`.
    fn body(&self, name: &str) -> Function {
        // Three scratch i64 locals (3, 4, 5) after the params.
        let mut f = Function::new([(3, ValType::I64)]);
        let f64 = &mut f;
        match name {
            "stable64_size" => {
                f64.instruction(&I::GlobalGet(self.stable_bytes_global));
                f64.instruction(&I::I64Const(16));
                f64.instruction(&I::I64ShrU);
            }
            "stable_size" => {
                self.check_32_bit(f64);
                f64.instruction(&I::GlobalGet(self.stable_bytes_global));
                f64.instruction(&I::I64Const(16));
                f64.instruction(&I::I64ShrU);
                f64.instruction(&I::I32WrapI64);
            }
            "stable64_grow" | "stable_grow" => {
                let wide = name == "stable64_grow";
                // The replica's `try_grow_stable_memory` charges `STABLE_GROW`.
                if let Some(counter) = self.counter_global {
                    f64.instruction(&I::GlobalGet(counter));
                    f64.instruction(&I::I64Const(STABLE_GROW_COST));
                    f64.instruction(&I::I64Sub);
                    f64.instruction(&I::GlobalSet(counter));
                }
                if !wide {
                    self.check_32_bit(f64);
                    // New size above 65536 pages: -1.
                    f64.instruction(&I::LocalGet(0));
                    f64.instruction(&I::I64ExtendI32U);
                    f64.instruction(&I::GlobalGet(self.stable_bytes_global));
                    f64.instruction(&I::I64Const(16));
                    f64.instruction(&I::I64ShrU);
                    f64.instruction(&I::I64Add);
                    f64.instruction(&I::I64Const(65536));
                    f64.instruction(&I::I64GtU);
                    f64.instruction(&I::If(BlockType::Empty));
                    f64.instruction(&I::I32Const(-1));
                    f64.instruction(&I::Return);
                    f64.instruction(&I::End);
                }
                // old = memory.grow $stable n; -1 stays -1.
                f64.instruction(&I::LocalGet(0));
                if !wide {
                    f64.instruction(&I::I64ExtendI32U);
                }
                f64.instruction(&I::MemoryGrow(self.stable_memory));
                f64.instruction(&I::LocalTee(3));
                f64.instruction(&I::I64Const(-1));
                f64.instruction(&I::I64Ne);
                f64.instruction(&I::If(BlockType::Empty));
                f64.instruction(&I::MemorySize(self.stable_memory));
                f64.instruction(&I::I64Const(16));
                f64.instruction(&I::I64Shl);
                f64.instruction(&I::GlobalSet(self.stable_bytes_global));
                // $fast_limit = bytes == 0 ? 0 : bytes - 7
                f64.instruction(&I::I64Const(0));
                f64.instruction(&I::GlobalGet(self.stable_bytes_global));
                f64.instruction(&I::I64Const(FAST_LIMIT_SLACK));
                f64.instruction(&I::I64Sub);
                f64.instruction(&I::GlobalGet(self.stable_bytes_global));
                f64.instruction(&I::I64Eqz);
                f64.instruction(&I::Select);
                f64.instruction(&I::GlobalSet(self.fast_limit_global));
                f64.instruction(&I::End);
                f64.instruction(&I::LocalGet(3));
                if !wide {
                    f64.instruction(&I::I32WrapI64);
                }
            }
            "stable64_read" | "stable64_write" => {
                let write = name == "stable64_write";
                f64.instruction(&I::LocalGet(2));
                f64.instruction(&I::I64Eqz);
                f64.instruction(&I::If(BlockType::Empty));
                f64.instruction(&I::Return);
                f64.instruction(&I::End);
                if write {
                    // (off, src, len)
                    self.copy_core_at(f64, 1, 0, 2, true);
                } else {
                    // (dst, off, len)
                    self.copy_core_at(f64, 0, 1, 2, false);
                }
            }
            "stable_read" | "stable_write" => {
                let write = name == "stable_write";
                self.check_32_bit(f64);
                if !write {
                    // Zero length returns before any bounds check (the write checks anyway).
                    f64.instruction(&I::LocalGet(2));
                    f64.instruction(&I::I32Eqz);
                    f64.instruction(&I::If(BlockType::Empty));
                    f64.instruction(&I::Return);
                    f64.instruction(&I::End);
                }
                // Widen the i32 params into the i64 locals 3, 4, 5.
                for i in 0..3 {
                    f64.instruction(&I::LocalGet(i));
                    f64.instruction(&I::I64ExtendI32U);
                    f64.instruction(&I::LocalSet(3 + i));
                }
                if write {
                    // (off, src, len): heap = src (4), stable = off (3)
                    self.copy_core_at(f64, 4, 3, 5, true);
                } else {
                    // (dst, off, len): heap = dst (3), stable = off (4)
                    self.copy_core_at(f64, 3, 4, 5, false);
                }
            }
            other => unreachable!("no injected function for {other}"),
        }
        f.instruction(&I::End);
        f
    }

    /// Copies between heap and stable memory after checking stable bounds, then heap bounds
    /// (the IC's order); `heap`, `stable` and `len` are i64 locals.
    fn copy_core_at(&self, f: &mut Function, heap: u32, stable: u32, len: u32, write: bool) {
        self.check_range(
            f,
            stable,
            len,
            self.stable_bytes(),
            InjectedTrap::StableOutOfBounds,
        );
        if !self.has_heap {
            self.check_range(
                f,
                heap,
                len,
                |f| self.heap_bytes(f),
                InjectedTrap::HeapOutOfBounds,
            );
        } else if !self.heap64 {
            // The heap range itself is checked by `memory.copy` (a Wasm out-of-bounds access is
            // the IC's "heap out of bounds"); only values that would wrap when narrowed to the
            // 32-bit heap's i32 operands need an explicit check. One explicit check instead of
            // `memory.size` and two comparisons: this is the general path's hot part.
            f.instruction(&I::LocalGet(heap));
            f.instruction(&I::I64Const(u32::MAX as i64));
            f.instruction(&I::I64GtU);
            f.instruction(&I::LocalGet(len));
            f.instruction(&I::I64Const(1 << 32));
            f.instruction(&I::I64GtU);
            f.instruction(&I::I32Or);
            self.trap_if(f, InjectedTrap::HeapOutOfBounds);
        }
        if !self.has_heap {
            // No heap: only a zero-length 32-bit write gets here, and it copies nothing.
            return;
        }
        if !self.heap64 {
            // A copy between a 32-bit heap and stable memory takes an i32 length, and the checks
            // allow exactly 4 GiB (a full heap), which does not fit: copy the first 2 GiB apart.
            const HALF: i64 = 1 << 31;
            f.instruction(&I::LocalGet(len));
            f.instruction(&I::I64Const(u32::MAX as i64));
            f.instruction(&I::I64GtU);
            f.instruction(&I::If(BlockType::Empty));
            self.copy(f, heap, stable, None, write);
            for l in [heap, stable] {
                f.instruction(&I::LocalGet(l));
                f.instruction(&I::I64Const(HALF));
                f.instruction(&I::I64Add);
                f.instruction(&I::LocalSet(l));
            }
            f.instruction(&I::LocalGet(len));
            f.instruction(&I::I64Const(HALF));
            f.instruction(&I::I64Sub);
            f.instruction(&I::LocalSet(len));
            f.instruction(&I::End);
        }
        self.copy(f, heap, stable, Some(len), write);
    }

    /// `memory.copy` of `len` bytes (an i64 local; `None`: 2 GiB) between heap address `heap`
    /// and stable offset `stable` (i64 locals), after the checks.
    fn copy(&self, f: &mut Function, heap: u32, stable: u32, len: Option<u32>, write: bool) {
        if write {
            f.instruction(&I::LocalGet(stable));
            self.heap_addr(f, heap);
        } else {
            self.heap_addr(f, heap);
            f.instruction(&I::LocalGet(stable));
        }
        match len {
            Some(len) => self.heap_addr(f, len),
            None => {
                f.instruction(&I::I32Const(i32::MIN)); // 2^31 as an unsigned i32 length
            }
        }
        let (src, dst) = if write {
            (0, self.stable_memory)
        } else {
            (self.stable_memory, 0)
        };
        f.instruction(&I::MemoryCopy {
            src_mem: src,
            dst_mem: dst,
        });
    }

    /// Emits the charge of a read/write whose length is on top of the stack (kept there).
    fn charge_dynamic(&self, f: &mut Function, scratch64: u32, scratch32: u32, wide: bool) {
        let Some(counter) = self.counter_global else {
            return;
        };
        if wide {
            f.instruction(&I::LocalTee(scratch64));
        } else {
            f.instruction(&I::LocalTee(scratch32));
        }
        f.instruction(&I::GlobalGet(counter));
        if wide {
            f.instruction(&I::LocalGet(scratch64));
        } else {
            f.instruction(&I::LocalGet(scratch32));
            f.instruction(&I::I64ExtendI32U);
        }
        f.instruction(&I::I64Const(STABLE_CALL_BASE_COST));
        f.instruction(&I::I64Add);
        f.instruction(&I::I64Sub);
        f.instruction(&I::GlobalSet(counter));
    }

    /// Emits the inline fast path of a 64-bit read/write with constant length `len`.
    /// Stack on entry: (dst, off) for a read, (off, src) for a write.
    /// Its cost was charged by the metering pass ([`folded_call_cost`]).
    fn fast_path(&self, f: &mut Function, write: bool, len: i64, general: u32, locals: (u32, u32)) {
        let (a, b) = locals; // a = first arg, b = second arg
        debug_assert!(folded_call_cost(len).is_some());
        f.instruction(&I::LocalSet(b));
        f.instruction(&I::LocalSet(a));
        self.fast_core(f, write, len, general, (a, b), None);
    }

    /// The fast path's check and load/store pair over i64 locals `a`, `b` (the call's first two
    /// arguments), falling back to the general function `general`; charges nothing.
    /// With `dyn_len` (an i64 local holding a run-time length), the path is taken only when
    /// that length equals `len`, and the fallback call passes the local.
    fn fast_core(
        &self,
        f: &mut Function,
        write: bool,
        len: i64,
        general: u32,
        locals: (u32, u32),
        dyn_len: Option<u32>,
    ) {
        let (a, b) = locals;
        let (heap, stable) = if write { (b, a) } else { (a, b) };
        f.instruction(&I::Block(BlockType::Empty)); // $done
        f.instruction(&I::Block(BlockType::Empty)); // $slow
        if let Some(l) = dyn_len {
            f.instruction(&I::LocalGet(l));
            f.instruction(&I::I64Const(len));
            f.instruction(&I::I64Ne);
            f.instruction(&I::BrIf(0));
        }
        // stable >= fast_limit: out of bounds, or within the last 7 bytes (the call decides)
        f.instruction(&I::LocalGet(stable));
        f.instruction(&I::GlobalGet(self.fast_limit_global));
        f.instruction(&I::I64GeU);
        f.instruction(&I::BrIf(0));
        if !self.heap64 {
            // heap > u32::MAX (wasm32 heap): the call reports the heap out of bounds
            f.instruction(&I::LocalGet(heap));
            f.instruction(&I::I64Const(u32::MAX as i64));
            f.instruction(&I::I64GtU);
            f.instruction(&I::BrIf(0));
        }
        let (load, store) = match len {
            8 => (I::I64Load(mem(0, 0)), I::I64Store(mem(0, 0))),
            4 => (I::I32Load(mem(0, 0)), I::I32Store(mem(0, 0))),
            2 => (I::I32Load16U(mem(0, 0)), I::I32Store16(mem(0, 0))),
            _ => (I::I32Load8U(mem(0, 0)), I::I32Store8(mem(0, 0))),
        };
        let with_mem = |i: &I<'static>, m: u32| -> I<'static> {
            match i {
                I::I64Load(_) => I::I64Load(mem(m, 0)),
                I::I32Load(_) => I::I32Load(mem(m, 0)),
                I::I32Load16U(_) => I::I32Load16U(mem(m, 0)),
                I::I32Load8U(_) => I::I32Load8U(mem(m, 0)),
                I::I64Store(_) => I::I64Store(mem(m, 0)),
                I::I32Store(_) => I::I32Store(mem(m, 0)),
                I::I32Store16(_) => I::I32Store16(mem(m, 0)),
                I::I32Store8(_) => I::I32Store8(mem(m, 0)),
                _ => unreachable!(),
            }
        };
        // store address first, then the loaded value.
        if write {
            f.instruction(&I::LocalGet(stable));
            self.heap_addr(f, heap);
            f.instruction(&with_mem(&load, 0));
            f.instruction(&with_mem(&store, self.stable_memory));
        } else {
            self.heap_addr(f, heap);
            f.instruction(&I::LocalGet(stable));
            f.instruction(&with_mem(&load, self.stable_memory));
            f.instruction(&with_mem(&store, 0));
        }
        f.instruction(&I::Br(1)); // $done
        f.instruction(&I::End); // $slow
        f.instruction(&I::LocalGet(a));
        f.instruction(&I::LocalGet(b));
        match dyn_len {
            Some(l) => f.instruction(&I::LocalGet(l)),
            None => f.instruction(&I::I64Const(len)),
        };
        f.instruction(&I::Call(general));
        f.instruction(&I::End); // $done
    }

    fn emit_missing_sections(&mut self, module: &mut Module, before: Option<SectionId>) {
        let before_rank = before.map(sections::rank).unwrap_or(u8::MAX);
        for id in [
            SectionId::Type,
            SectionId::Import,
            SectionId::Function,
            SectionId::Memory,
            SectionId::Global,
            SectionId::Export,
            SectionId::Code,
        ] {
            if sections::rank(id) < before_rank
                && !self.has.contains(&id)
                && !self.emitted.contains(&id)
            {
                self.emitted.push(id);
                match id {
                    SectionId::Type => {
                        let mut s = TypeSection::new();
                        self.append_types(&mut s);
                        module.section(&s);
                    }
                    SectionId::Import => {
                        let mut s = ImportSection::new();
                        self.append_imports(&mut s);
                        module.section(&s);
                    }
                    SectionId::Function => {
                        let mut s = FunctionSection::new();
                        self.append_functions(&mut s);
                        module.section(&s);
                    }
                    SectionId::Memory => {
                        let mut s = MemorySection::new();
                        self.append_memories(&mut s);
                        module.section(&s);
                    }
                    SectionId::Global => {
                        let mut s = GlobalSection::new();
                        self.append_globals(&mut s);
                        module.section(&s);
                    }
                    SectionId::Export => {
                        let mut s = ExportSection::new();
                        self.append_exports(&mut s);
                        module.section(&s);
                    }
                    SectionId::Code => {
                        let mut s = CodeSection::new();
                        self.append_code(&mut s);
                        module.section(&s);
                    }
                    _ => {}
                }
            }
        }
    }

    fn append_types(&self, s: &mut TypeSection) {
        if self.add_trap_type {
            s.ty().function([ValType::I32], []);
        }
    }
    fn append_imports(&self, s: &mut ImportSection) {
        if self.trap_import_needed {
            s.import(
                names::HOST_MODULE,
                "trap",
                EntityType::Function(self.trap_type),
            );
        }
    }
    fn append_functions(&self, s: &mut FunctionSection) {
        for (_, _, ty) in &self.injected {
            s.function(*ty);
        }
    }
    fn append_memories(&self, s: &mut MemorySection) {
        if self.native() && !self.injected.is_empty() {
            s.memory(MemoryType {
                minimum: 0,
                maximum: Some(self.stable_limit_pages),
                memory64: true,
                shared: false,
                page_size_log2: None,
            });
        }
    }
    fn append_globals(&self, s: &mut GlobalSection) {
        if self.native() && !self.injected.is_empty() {
            // $stable_bytes, then $fast_limit.
            for _ in 0..2 {
                s.global(
                    GlobalType {
                        val_type: ValType::I64,
                        mutable: true,
                        shared: false,
                    },
                    &ConstExpr::i64_const(0),
                );
            }
        }
    }
    fn append_exports(&self, s: &mut ExportSection) {
        if self.native() && !self.injected.is_empty() {
            s.export(names::STABLE_MEMORY, ExportKind::Memory, self.stable_memory);
            s.export(
                names::STABLE_BYTES,
                ExportKind::Global,
                self.stable_bytes_global,
            );
            s.export(
                names::STABLE_FAST_LIMIT,
                ExportKind::Global,
                self.fast_limit_global,
            );
        }
    }
    fn append_code(&self, s: &mut CodeSection) {
        for (name, _, _) in &self.injected {
            s.function(&self.body(name));
        }
    }

    /// Rewrites one function body.
    fn rewrite_body(
        &mut self,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<Function, InstrumentError> {
        let ty = self.defined_types[self.next_body];
        self.next_body += 1;
        let params = self.type_params.get(ty as usize).copied().unwrap_or(0);
        let mut locals = Vec::new();
        let mut count = params;
        for pair in body.get_locals_reader()? {
            let (n, t) = pair?;
            count += n;
            locals.push((
                n,
                self.val_type(t)
                    .map_err(|e| InstrumentError::Encode(e.to_string()))?,
            ));
        }
        // Scratch locals (three i64, one i32) follow the declared ones; they are declared only
        // if the body calls a stable read/write, which the emitting loop below finds out, so the
        // code is emitted first and the locals put in front of it afterwards.
        let (s64a, s64b, s64c, s32) = (count, count + 1, count + 2, count + 3);
        let mut needs_scratch = false;
        let mut f = Function::new(Vec::<(u32, ValType)>::new());
        // Operators are copied as raw byte ranges; only calls to stable functions and the
        // operators that name a function (whose indices move with the removed imports) are
        // re-encoded.
        let bytes = body.as_bytes();
        let base = body.range().start;
        let mut reader = body.get_operators_reader()?;
        let mut copied = reader.original_position();
        let raw_to = |f: &mut Function, copied: &mut usize, to: usize| {
            let raw = bytes.get(*copied - base..to - base).ok_or_else(|| {
                InstrumentError::Encode(format!(
                    "operator bytes {copied:#x}..{to:#x} outside the body"
                ))
            })?;
            f.raw(raw.iter().copied());
            *copied = to;
            Ok::<(), InstrumentError>(())
        };
        // The `i64.const` just before the current operator: (value, its offset).
        let mut last_const: Option<(i64, usize)> = None;
        while !reader.eof() {
            let at = reader.original_position();
            let op = reader.read()?;
            let after = reader.original_position();
            let previous_const = last_const.take();
            match op {
                Operator::Call { function_index } => {
                    let new_index = self.func_map[function_index as usize];
                    let Some(&(_, target)) = self.stable_calls.get(&function_index) else {
                        if new_index != function_index {
                            raw_to(&mut f, &mut copied, at)?;
                            f.instruction(&I::Call(new_index));
                            copied = after;
                        }
                        continue;
                    };
                    // A constant length right before the call is taken out of the raw copy.
                    let mut pending = match previous_const {
                        Some((c, start)) => {
                            raw_to(&mut f, &mut copied, start)?;
                            Some(c)
                        }
                        None => {
                            raw_to(&mut f, &mut copied, at)?;
                            None
                        }
                    };
                    copied = after;
                    needs_scratch |= matches!(target, Target::ReadWrite { .. });
                    match target {
                        Target::ReadWrite { write, wide: true }
                            if self.native()
                                && self.has_heap
                                && matches!(pending, Some(1 | 2 | 4 | 8)) =>
                        {
                            let len = pending.take().expect("checked");
                            self.fast_path(&mut f, write, len, new_index, (s64a, s64b));
                            self.fast_paths += 1;
                            continue;
                        }
                        Target::ReadWrite { write, wide: true }
                            if self.native() && self.has_heap && pending.is_none() =>
                        {
                            // A run-time length: 8 bytes (the commonest length of stable
                            // structures' headers and keys) takes the inline path, anything
                            // else the call.
                            self.charge_dynamic(&mut f, s64c, s32, true);
                            f.instruction(&I::LocalSet(s64c));
                            f.instruction(&I::LocalSet(s64b));
                            f.instruction(&I::LocalSet(s64a));
                            self.fast_core(&mut f, write, 8, new_index, (s64a, s64b), Some(s64c));
                            self.dynamic_fast_paths += 1;
                            continue;
                        }
                        Target::ReadWrite { wide, .. } => {
                            let folded = wide && pending.and_then(folded_call_cost).is_some();
                            if let Some(c) = pending.take() {
                                f.instruction(&I::I64Const(c));
                            }
                            if !folded {
                                self.charge_dynamic(&mut f, s64a, s32, wide);
                            }
                        }
                        Target::Other => {
                            if let Some(c) = pending.take() {
                                f.instruction(&I::I64Const(c));
                            }
                        }
                    }
                    f.instruction(&I::Call(new_index));
                }
                Operator::ReturnCall { function_index } | Operator::RefFunc { function_index } => {
                    let new_index = self.func_map[function_index as usize];
                    if new_index != function_index {
                        raw_to(&mut f, &mut copied, at)?;
                        f.instruction(&match op {
                            Operator::ReturnCall { .. } => I::ReturnCall(new_index),
                            _ => I::RefFunc(new_index),
                        });
                        copied = after;
                    }
                }
                Operator::I64Const { value } => last_const = Some((value, at)),
                _ => {}
            }
        }
        raw_to(&mut f, &mut copied, reader.original_position())?;
        if needs_scratch {
            locals.push((3, ValType::I64));
            locals.push((1, ValType::I32));
        }
        let code = f.into_raw_body();
        let mut f = Function::new(locals);
        // `code` starts with the empty locals vector (one 0 byte) of the temporary function.
        f.raw(code[1..].iter().copied());
        Ok(f)
    }
}

impl Reencode for StablePass {
    type Error = InstrumentError;

    fn function_index(&mut self, func: u32) -> u32 {
        self.func_map[func as usize]
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.append_types(types);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let mut func = 0u32;
        for import in section {
            let import = import?;
            if let TypeRef::Func(_) = import.ty {
                let removed = self.removed.contains(&func);
                func += 1;
                if removed {
                    continue;
                }
            }
            self.parse_import(imports, import)?;
        }
        self.append_imports(imports);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        self.append_functions(functions);
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_memory_section(self, memories, section)?;
        self.append_memories(memories);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.append_globals(globals);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        self.append_exports(exports);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        for body in section {
            let f = self
                .rewrite_body(body?)
                .map_err(reencode::Error::UserError)?;
            code.function(&f);
        }
        self.append_code(code);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        self.emit_missing_sections(module, before);
        Ok(())
    }

    fn parse_custom_name_subsection(
        &mut self,
        names: &mut NameSection,
        section: wasmparser::Name<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        match section {
            wasmparser::Name::Function(map) => {
                // Removed imports lose their names (their indices now name injected functions).
                let mut out = NameMap::new();
                for naming in map {
                    let naming = naming?;
                    if !self.removed.contains(&naming.index) {
                        out.append(self.func_map[naming.index as usize], naming.name);
                    }
                }
                names.functions(&out);
                Ok(())
            }
            other => reencode::utils::parse_custom_name_subsection(self, names, other),
        }
    }
}

/// Runs the stable pass over `wasm` (already metered, if metering is on).
pub fn rewrite(
    wasm: &[u8],
    mode: StableMode,
    stable_limit_pages: u64,
    summary: &mut Summary,
) -> Result<Vec<u8>, InstrumentError> {
    let scan = Scan::new(wasm)?;
    let mut stable_calls = HashMap::new();
    for (i, (module, name, ty)) in scan.func_imports.iter().enumerate() {
        if module != "ic0" {
            continue;
        }
        if let Some(&fname) = STABLE_FUNCTIONS.iter().find(|f| *f == name) {
            // The canister rules check every ic0 import's type; without them (generic settings)
            // an import of another type cannot be replaced by the IC function's definition.
            super::rules::check_ic0_type(
                fname,
                scan.func_types.get(*ty as usize).and_then(Option::as_ref),
                if scan.heap64 {
                    crate::abi::HeapType::Wasm64
                } else {
                    crate::abi::HeapType::Wasm32
                },
                scan.func_import_offsets[i],
            )?;
            let target = match fname {
                "stable_read" => Target::ReadWrite {
                    write: false,
                    wide: false,
                },
                "stable_write" => Target::ReadWrite {
                    write: true,
                    wide: false,
                },
                "stable64_read" => Target::ReadWrite {
                    write: false,
                    wide: true,
                },
                "stable64_write" => Target::ReadWrite {
                    write: true,
                    wide: true,
                },
                _ => Target::Other,
            };
            stable_calls.insert(i as u32, (fname, target));
        }
    }
    let metered = scan.counter_global.is_some();
    // Nothing to do: no stable imports, or syscall mode without metering.
    if stable_calls.is_empty() || (mode == StableMode::Syscall && !metered) {
        return Ok(wasm.to_vec());
    }
    let native = mode == StableMode::Native;
    let imported = scan.func_imports.len() as u32;
    let removed: Vec<u32> = if native {
        let mut r: Vec<u32> = stable_calls.keys().copied().collect();
        r.sort();
        r
    } else {
        Vec::new()
    };
    let existing_trap = scan
        .func_imports
        .iter()
        .position(|(m, n, _)| m == names::HOST_MODULE && n == "trap");
    let trap_import_needed = native && existing_trap.is_none();
    let kept_imports = imported - removed.len() as u32;
    let new_imports = kept_imports + trap_import_needed as u32;
    let defined = scan.defined_types.len() as u32;
    // Old → new function indices.
    let mut func_map = Vec::with_capacity((imported + defined) as usize);
    let mut next_import = 0u32;
    let mut injected = Vec::new();
    for old in 0..imported {
        if removed.contains(&old) {
            func_map.push(u32::MAX); // filled below
        } else {
            func_map.push(next_import);
            next_import += 1;
        }
    }
    for d in 0..defined {
        func_map.push(new_imports + d);
    }
    if native {
        for &name in STABLE_FUNCTIONS.iter() {
            if let Some((&old, _)) = stable_calls.iter().find(|(_, (n, _))| *n == name) {
                let new_index = new_imports + defined + injected.len() as u32;
                func_map[old as usize] = new_index;
                injected.push((name, new_index, scan.func_imports[old as usize].2));
            }
        }
    }
    let trap_func = match existing_trap {
        Some(i) => func_map[i],
        None => kept_imports, // appended after the kept imports
    };
    let (trap_type, add_trap_type) = match scan.trap_type {
        Some(t) => (t, false),
        None => (scan.type_params.len() as u32, true),
    };
    let mut pass = StablePass {
        mode,
        stable_limit_pages,
        heap64: scan.heap64,
        has_heap: scan.memories > 0,
        func_map,
        stable_calls,
        injected,
        removed,
        trap_func,
        trap_import_needed,
        trap_type,
        add_trap_type: add_trap_type && trap_import_needed,
        stable_memory: scan.memories,
        stable_bytes_global: scan.globals,
        fast_limit_global: scan.globals + 1,
        counter_global: scan.counter_global,
        type_params: scan.type_params,
        defined_types: scan.defined_types,
        next_body: 0,
        fast_paths: 0,
        dynamic_fast_paths: 0,
        emitted: Vec::new(),
        has: scan.has,
    };
    let mut module = Module::new();
    pass.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            reencode::Error::UserError(e) => e,
            other => InstrumentError::Encode(other.to_string()),
        })?;
    if native {
        summary.stable_memory_index = Some(pass.stable_memory);
        summary.memories.push((
            pass.stable_memory,
            format!("stable memory, i64, 0..{} pages", pass.stable_limit_pages),
        ));
        summary.replaced_imports = pass
            .injected
            .iter()
            .map(|(n, _, _)| format!("ic0.{n}"))
            .collect();
        summary.injected_functions = pass
            .injected
            .iter()
            .map(|(n, i, _)| format!("{n} (func {i})"))
            .collect();
        summary.host_exports.push(names::STABLE_MEMORY.to_string());
        summary.host_exports.push(names::STABLE_BYTES.to_string());
        summary
            .host_exports
            .push(names::STABLE_FAST_LIMIT.to_string());
    }
    summary.stable_fast_paths = pass.fast_paths;
    summary.stable_dynamic_fast_paths = pass.dynamic_fast_paths;
    Ok(module.finish())
}

#[cfg(test)]
mod tests;
