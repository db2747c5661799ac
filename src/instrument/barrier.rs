//! The write-barrier pass: dirty-page tracking in the module itself, without signals
//! (DESIGN.md §4).
//!
//! The pass runs last, after the stable pass, so the stores and copies of the injected stable
//! functions are tracked like the canister's own. **Every** memory of its input is tracked (the
//! heap, other declared or imported memories, and `stable_memory` when present). For each
//! tracked memory `k` (of `n`), one byte map is appended after all existing memories, so no
//! existing memory index changes:
//!
//! ```wat
//! (memory $map_k i32 <map_pages(initial_k)> <map_pages(maximum_k), at most 65536>)  ;; index n + k
//! (export "canister_vm:dirty:<k>" (memory $map_k))
//! ```
//!
//! Byte `p` of map `k` is nonzero iff 4 KiB page `p` of memory `k` was written since the host
//! last cleared it. A map always holds at least one byte more than its memory has 4 KiB pages:
//! [`map_pages`]`(pages) = pages / 4096 + 1` (a 64 KiB map page covers 4096 memory pages), so a
//! memory of 0 pages still gets a 1-page map, and a mark may land one page past the end of the
//! memory (see elision below) without trapping.
//!
//! **Stores.** A store to memory `k` with effective address `ea = addr + offset` and width `w`
//! marks the pages of `ea` and `ea + w - 1`, after the store. When the address is not a local
//! plus a constant (below), it is kept in scratch locals added to the function (`$v` has the stored value's
//! type, `$a` the memory's address type):
//!
//! ```wat
//! local.set $v  local.tee $a  local.get $v  i64.store offset=16 k
//! (i32.store8 $map_k (i32.shr_u (i32.add (local.get $a) (i32.const 16)) (i32.const 12)) (i32.const 1))
//! (i32.store8 $map_k (i32.shr_u (i32.add (local.get $a) (i32.const 23)) (i32.const 12)) (i32.const 1))
//! ```
//!
//! (A 1-byte store marks one page; a memory64 address is shifted as an i64 and wrapped.)
//!
//! **Elision.** Within straight-line code, consecutive stores whose address is `local.get $x`
//! (or `local.tee $x`), possibly plus or minus constants (`i32.add`/`i32.sub` with an
//! `i32.const`, or the i64 forms), with `$x` not written in between, can form a group. Such a
//! store needs no scratch local even when it is not grouped: its mark recomputes
//! `x + constant + offset` modulo the address width, which is its effective address whenever
//! the store succeeds (Wasm computes `ea = addr + offset` without wrapping and traps past the
//! memory, while the `i32.add` that built `addr` wraps).
//!
//! A group is anchored at its **first** store (the leader), whose address operand is
//! `A = x + c` (as the program computes it, modulo the address width). A later store through
//! `$x` with constant `c'` and offset `o` writes `[A + p, A + p + w)` modulo the address width,
//! with `p = (c' - c + o) mod 2^32` (or `2^64`); it joins the group if the bytes of the whole
//! group, `[A + lo, A + hi)`, stay within 4096 bytes (`hi - lo <= 4096`), comparing the `p` as
//! plain unsigned numbers. So a store below the anchor (`c' + o < c`, e.g. `x` after `x + 8`)
//! never joins: its `p` is near `2^32`. The leader marks the pages of `A + lo` and `A + hi - 1`
//! right after it executes; the other stores emit nothing. This is exact and cannot trap:
//! - the leader succeeded, so `A + offset_leader` is in bounds, and `0 <= lo <= offset_leader`:
//!   `A + lo` does not wrap and is a page of the memory;
//! - `A + hi - 1 < A + lo + 4096` is at most one page past the memory's last page (the map's
//!   spare byte), or wraps to a low page on a memory of the whole address space (harmless);
//! - a store of the group that succeeds writes bytes congruent to `[A + lo, A + hi)`, a range of
//!   at most 4096 bytes, so on the two pages marked (when the range wraps around the address
//!   space, those are the last page and page 0).
//!
//! So a mark never traps and never runs before an earlier instruction (it follows the leader's
//! store): a message traps where the plain module traps, after the same effects, and every
//! store that ran before the trap is marked. (Anchoring at `x` instead of `A`, as this pass once
//! did, marked `x + lo` with `lo` below the anchor: when `x + c` wraps, that address is near
//! `2^32`, the mark traps on the map before the leader's page is marked and before the code
//! between the stores runs.) A group ends (and the provenance of every operand is forgotten) at
//! `block`, `loop`, `if`, `else`, `end`, `br`, `br_table`, `return`, `unreachable`,
//! `return_call*` and `memory.grow`; a write to `$x` ends `$x`'s groups. Calls and `br_if` do
//! not end a group: the mark was made before them, and `$x` cannot change (a callee that grows
//! the memory grows the map too). E.g. eight `i64.store offset=0..56` from `$x` emit one mark:
//! the pages of `x + 0` and `x + 63`. The operand provenance comes from a small abstract stack
//! over wasmparser's operator arities.
//!
//! **Host defence.** The host trusts the marks: commit and rollback copy only marked pages
//! (O(dirty pages)). Detecting an unmarked page would need a full diff (O(memory)) per message,
//! so that check lives in the tests (`barrier/tests.rs`, `tests/all/barrier_traps.rs`, the spec
//! suite's soundness mode), which diff whole snapshots, not on the message path.
//!
//! **Bulk operators.** `memory.fill`, `memory.copy` (destination memory) and `memory.init` with
//! destination `d` and length `len > 0` mark pages `d >> 12 ..= (d + len - 1) >> 12` with one
//! `memory.fill` of the map, after the operator; operands go through scratch locals:
//!
//! ```wat
//! local.set $n  local.set $s  local.tee $d  local.get $s  local.get $n  memory.fill k
//! (if (local.get $n)
//!   (then (memory.fill $map_k
//!           (local.tee $p (i32.shr_u (local.get $d) (i32.const 12)))
//!           (i32.const 1)
//!           (i32.add (i32.sub (i32.shr_u (i32.sub (i32.add (local.get $d) (local.get $n))
//!                                                 (i32.const 1)) (i32.const 12))
//!                             (local.get $p)) (i32.const 1)))))
//! ```
//!
//! **Growth.** After every successful `memory.grow k` (the canister's or an injected stable
//! function's), the map grows to `map_pages(memory.size k)` if it is smaller; if the map cannot
//! grow, the code traps (`unreachable`), so a memory is never larger than its map covers:
//!
//! ```wat
//! memory.grow k  local.tee $r
//! (if (i32.ne (local.get $r) (i32.const -1))
//!   (then (if (i32.gt_s (local.tee $t (i32.sub (i32.add (i32.shr_u (memory.size k) (i32.const 12))
//!                                                       (i32.const 1))
//!                                              (memory.size $map_k)))
//!                       (i32.const 0))
//!           (then (if (i32.eq (memory.grow $map_k (local.get $t)) (i32.const -1))
//!                   (then unreachable))))))
//! ```
//!
//! **The host** must: read map `k` (bytes `0 .. ceil(size_k / 4096)`, `size_k` in bytes) after a
//! message and clear the bytes it found set; after it grows or restores a tracked memory itself
//! (e.g. restoring a checkpoint into a fresh instance), grow map `k` to at least
//! [`map_pages`]`(pages of memory k)` pages before running code; let maps grow (a resource
//! limiter that refuses makes the canister's `memory.grow` trap); and make an imported tracked
//! memory no larger at instantiation than its declared minimum's map covers (`4096 *
//! map_pages(minimum)` pages) or grow the map first. Active data segments are not marked: a map
//! starts zeroed, and the host treats the whole initial image as written at install.

use std::collections::HashMap;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, Encode, ExportKind, ExportSection, Function, Instruction as I, MemArg,
    MemorySection, MemoryType, Module, SectionId, ValType,
};
use wasmparser::{FrameKind, ModuleArity, Operator, Parser, Payload, SubType, TypeRef};

use super::sections;
use super::{InstrumentError, Summary, names};

/// Bytes per tracked page (4 KiB), as a shift.
pub const PAGE_SHIFT: u32 = 12;

/// The largest number of locals (parameters included) a function may have (wasmparser's limit).
const MAX_LOCALS: u64 = 50_000;

/// The largest number of memories a module may have (wasmparser's limit).
const MAX_MEMORIES: u32 = 100;

/// The largest i32 memory, in 64 KiB pages.
const MAX_MAP_PAGES: u64 = 65536;

/// Pages (64 KiB) the byte map of a memory of `memory_pages` 64 KiB pages needs: one byte per
/// 4 KiB page plus one spare byte (so `memory_pages / 4096 + 1`).
pub fn map_pages(memory_pages: u64) -> u64 {
    memory_pages / 4096 + 1
}

/// The export name of the byte map of tracked memory `memory`.
pub fn map_export(memory: u32) -> String {
    format!("{}{memory}", names::DIRTY_PREFIX)
}

/// Why the barrier pass cannot instrument a module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarrierError {
    /// One byte map per memory would exceed the memory limit.
    #[error(
        "the module has {memories} memories; the write barrier adds one byte map per memory and \
         a module may have at most {MAX_MEMORIES}"
    )]
    TooManyMemories {
        /// The module's number of memories.
        memories: u32,
    },
    /// The module already exports a name the pass needs.
    #[error("the module already exports `{name}`, which the write barrier reserves")]
    ReservedExport {
        /// The export name.
        name: String,
    },
    /// The function has no room for the scratch locals the barrier needs.
    #[error(
        "function {function} has {locals} locals; its write barrier needs {needed} more \
         (at byte offset {offset:#x})"
    )]
    TooManyLocals {
        /// Function index (in the input module).
        function: u32,
        /// Its number of locals, parameters included.
        locals: u64,
        /// Scratch locals needed.
        needed: u64,
        /// Byte offset of the function body.
        offset: usize,
    },
}

/// A tracked memory.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    memory64: bool,
    initial: u64,
    maximum: Option<u64>,
}

impl Tracked {
    fn map_type(&self) -> MemoryType {
        let largest = self
            .maximum
            .unwrap_or(if self.memory64 { u64::MAX } else { 65536 });
        let maximum = map_pages(largest).min(MAX_MAP_PAGES);
        MemoryType {
            minimum: map_pages(self.initial).min(maximum),
            maximum: Some(maximum),
            memory64: false,
            shared: false,
            page_size_log2: None,
        }
    }
    fn addr(&self) -> Ty {
        if self.memory64 { Ty::I64 } else { Ty::I32 }
    }
}

/// What the pass needs to know about the input module.
#[derive(Debug, Default)]
struct Facts {
    memories: Vec<Tracked>,
    types: Vec<SubType>,
    /// Type index of every function, imported ones first.
    func_types: Vec<u32>,
    imported_functions: u32,
    has_memory_section: bool,
    has_export_section: bool,
    exports: Vec<String>,
}

fn scan(wasm: &[u8]) -> Result<Facts, InstrumentError> {
    let mut facts = Facts::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    facts.types.extend(group?.into_types());
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    match import?.ty {
                        TypeRef::Func(t) => {
                            facts.func_types.push(t);
                            facts.imported_functions += 1;
                        }
                        TypeRef::Memory(m) => facts.memories.push(Tracked {
                            memory64: m.memory64,
                            initial: m.initial,
                            maximum: m.maximum,
                        }),
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    facts.func_types.push(t?);
                }
            }
            Payload::MemorySection(reader) => {
                facts.has_memory_section = true;
                for m in reader {
                    let m = m?;
                    facts.memories.push(Tracked {
                        memory64: m.memory64,
                        initial: m.initial,
                        maximum: m.maximum,
                    });
                }
            }
            Payload::ExportSection(reader) => {
                facts.has_export_section = true;
                for e in reader {
                    facts.exports.push(e?.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

impl ModuleArity for Facts {
    fn sub_type_at(&self, type_idx: u32) -> Option<&SubType> {
        self.types.get(type_idx as usize)
    }
    fn tag_type_arity(&self, _at: u32) -> Option<(u32, u32)> {
        None
    }
    fn type_index_of_function(&self, function_idx: u32) -> Option<u32> {
        self.func_types.get(function_idx as usize).copied()
    }
    fn func_type_of_cont_type(&self, _c: &wasmparser::ContType) -> Option<&wasmparser::FuncType> {
        None
    }
    fn sub_type_of_ref_type(&self, _rt: &wasmparser::RefType) -> Option<&SubType> {
        None
    }
    fn control_stack_height(&self) -> u32 {
        0
    }
    fn label_block(&self, _depth: u32) -> Option<(wasmparser::BlockType, FrameKind)> {
        None
    }
}

/// Value types of scratch locals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ty {
    I32,
    I64,
    F32,
    F64,
    V128,
}

impl Ty {
    fn val_type(self) -> ValType {
        match self {
            Ty::I32 => ValType::I32,
            Ty::I64 => ValType::I64,
            Ty::F32 => ValType::F32,
            Ty::F64 => ValType::F64,
            Ty::V128 => ValType::V128,
        }
    }
}

/// A store: memory, offset, width in bytes, type of the stored value.
#[derive(Debug, Clone, Copy)]
struct Store {
    memory: u32,
    offset: u64,
    width: u64,
    value: Ty,
}

fn store_of(op: &Operator<'_>) -> Option<Store> {
    let (m, width, value) = match op {
        Operator::I32Store { memarg } => (memarg, 4, Ty::I32),
        Operator::I64Store { memarg } => (memarg, 8, Ty::I64),
        Operator::F32Store { memarg } => (memarg, 4, Ty::F32),
        Operator::F64Store { memarg } => (memarg, 8, Ty::F64),
        Operator::I32Store8 { memarg } => (memarg, 1, Ty::I32),
        Operator::I32Store16 { memarg } => (memarg, 2, Ty::I32),
        Operator::I64Store8 { memarg } => (memarg, 1, Ty::I64),
        Operator::I64Store16 { memarg } => (memarg, 2, Ty::I64),
        Operator::I64Store32 { memarg } => (memarg, 4, Ty::I64),
        Operator::V128Store { memarg } => (memarg, 16, Ty::V128),
        Operator::V128Store8Lane { memarg, .. } => (memarg, 1, Ty::V128),
        Operator::V128Store16Lane { memarg, .. } => (memarg, 2, Ty::V128),
        Operator::V128Store32Lane { memarg, .. } => (memarg, 4, Ty::V128),
        Operator::V128Store64Lane { memarg, .. } => (memarg, 8, Ty::V128),
        _ => return None,
    };
    Some(Store {
        memory: m.memory,
        offset: m.offset,
        width,
        value,
    })
}

/// Whether `op` ends straight-line code (or enters it from elsewhere).
fn is_boundary(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrTable { .. }
            | Operator::Return
            | Operator::Unreachable
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. }
            | Operator::TryTable { .. }
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Try { .. }
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Delegate { .. }
            | Operator::Rethrow { .. }
            | Operator::MemoryGrow { .. }
    )
}

/// How one store is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Covered by an earlier store's mark.
    Elided,
    /// Marks the pages of `local + first` and `local + last` (both modulo the address width)
    /// after the store; `first == last` marks one page.
    Group { local: u32, first: u64, last: u64 },
    /// The address is kept in a scratch local and marked after the store.
    Own,
}

/// What the planner knows of an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prov {
    /// `local + k` (wrapping in the width of the `add` that built it), with the local not
    /// written since it was read.
    Local { x: u32, k: u64 },
    /// A constant.
    Const(u64),
}

/// Decides how each store of a function body is marked (elision, see the module docs).
struct Planner<'f> {
    facts: &'f Facts,
    /// Provenance of the top slots of the operand stack (deeper slots are unknown).
    stack: Vec<Option<Prov>>,
    /// Open groups.
    groups: Vec<Group>,
    marks: Vec<Mark>,
}

/// A group of stores through one local into one memory whose marks are made by its first store
/// (the leader), right after it.
#[derive(Debug, Clone, Copy)]
struct Group {
    local: u32,
    memory: u32,
    /// Index of the leader's mark.
    leader: usize,
    /// The constant of the leader's address, `local + base`: the anchor `A`.
    base: u64,
    /// The bytes the group writes, `[A + lo, A + hi)`, relative to the anchor (not reduced:
    /// `0 <= lo <= ` the leader's offset).
    lo: u64,
    hi: u64,
}

impl Planner<'_> {
    fn pop(&mut self, n: u32) {
        let keep = self.stack.len().saturating_sub(n as usize);
        self.stack.truncate(keep);
    }

    fn top(&self, depth: usize) -> Option<Prov> {
        let n = self.stack.len();
        if n > depth {
            self.stack[n - 1 - depth]
        } else {
            None
        }
    }

    fn forget_local(&mut self, local: u32) {
        for slot in &mut self.stack {
            if matches!(slot, Some(Prov::Local { x, .. }) if *x == local) {
                *slot = None;
            }
        }
        self.groups.retain(|g| g.local != local);
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.groups.clear();
    }

    /// `i32.add`/`i64.add`/`i32.sub`/`i64.sub` (`mask`: the width); folds `local + const`.
    fn add(&mut self, mask: u64, sub: bool) {
        let folded = match (self.top(1), self.top(0)) {
            (Some(Prov::Local { x, k }), Some(Prov::Const(c))) => Some(Prov::Local {
                x,
                k: if sub {
                    k.wrapping_sub(c)
                } else {
                    k.wrapping_add(c)
                } & mask,
            }),
            (Some(Prov::Const(c)), Some(Prov::Local { x, k })) if !sub => Some(Prov::Local {
                x,
                k: k.wrapping_add(c) & mask,
            }),
            _ => None,
        };
        self.pop(2);
        self.stack.push(folded);
    }

    fn store(&mut self, s: Store) {
        let addr = self.top(1);
        self.pop(2);
        let Some(Prov::Local { x, k }) = addr else {
            self.marks.push(Mark::Own);
            return;
        };
        let mask = if self.facts.memories[s.memory as usize].memory64 {
            u64::MAX
        } else {
            0xffff_ffff
        };
        if let Some(pos) = self
            .groups
            .iter()
            .position(|g| g.local == x && g.memory == s.memory)
        {
            let g = self.groups[pos];
            // This store writes `[A + p, A + p + width)` modulo the address width, where `A` is
            // the leader's address operand: `local + k + offset = local + base + p`.
            let p = k.wrapping_sub(g.base).wrapping_add(s.offset) & mask;
            if let Some(end) = p.checked_add(s.width) {
                let (lo, hi) = (g.lo.min(p), g.hi.max(end));
                if hi - lo <= 1 << PAGE_SHIFT {
                    self.groups[pos].lo = lo;
                    self.groups[pos].hi = hi;
                    self.marks[g.leader] = Mark::Group {
                        local: x,
                        first: g.base.wrapping_add(lo) & mask,
                        last: g.base.wrapping_add(hi - 1) & mask,
                    };
                    self.marks.push(Mark::Elided);
                    return;
                }
            }
            self.groups.remove(pos);
        }
        let Some(end) = s.offset.checked_add(s.width) else {
            self.marks.push(Mark::Own);
            return;
        };
        self.groups.push(Group {
            local: x,
            memory: s.memory,
            leader: self.marks.len(),
            base: k,
            lo: s.offset,
            hi: end,
        });
        self.marks.push(Mark::Group {
            local: x,
            first: k.wrapping_add(s.offset) & mask,
            last: k.wrapping_add(end - 1) & mask,
        });
    }

    fn step(&mut self, op: &Operator<'_>) {
        if let Some(s) = store_of(op) {
            self.store(s);
            return;
        }
        if is_boundary(op) {
            self.reset();
            return;
        }
        const M32: u64 = 0xffff_ffff;
        match *op {
            Operator::LocalGet { local_index } => self.stack.push(Some(Prov::Local {
                x: local_index,
                k: 0,
            })),
            Operator::LocalSet { local_index } => {
                self.pop(1);
                self.forget_local(local_index);
            }
            Operator::LocalTee { local_index } => {
                self.pop(1);
                self.forget_local(local_index);
                self.stack.push(Some(Prov::Local {
                    x: local_index,
                    k: 0,
                }));
            }
            Operator::I32Const { value } => self.stack.push(Some(Prov::Const(value as u32 as u64))),
            Operator::I64Const { value } => self.stack.push(Some(Prov::Const(value as u64))),
            Operator::I32Add => self.add(M32, false),
            Operator::I32Sub => self.add(M32, true),
            Operator::I64Add => self.add(u64::MAX, false),
            Operator::I64Sub => self.add(u64::MAX, true),
            // The condition; the label's values stay.
            Operator::BrIf { .. } => self.pop(1),
            _ => match op.operator_arity(self.facts) {
                Some((pop, push)) => {
                    self.pop(pop);
                    self.stack.extend((0..push).map(|_| None));
                }
                None => self.reset(),
            },
        }
    }
}

/// Scratch locals appended to a function, allocated on first use by (type, slot).
struct Scratch {
    next: u32,
    slots: HashMap<(Ty, u8), u32>,
    added: Vec<ValType>,
}

impl Scratch {
    fn get(&mut self, ty: Ty, slot: u8) -> u32 {
        *self.slots.entry((ty, slot)).or_insert_with(|| {
            self.added.push(ty.val_type());
            self.next += 1;
            self.next - 1
        })
    }
}

/// Instruction bytes of a function body being rewritten.
struct Out(Vec<u8>);

impl Out {
    fn ins(&mut self, i: I<'_>) {
        i.encode(&mut self.0);
    }
    /// An integer constant of type `ty` (i32 or i64); `v` is truncated for i32.
    fn int(&mut self, ty: Ty, v: u64) {
        match ty {
            Ty::I64 => self.ins(I::I64Const(v as i64)),
            _ => self.ins(I::I32Const(v as u32 as i32)),
        }
    }
    fn add(&mut self, ty: Ty) {
        self.ins(if ty == Ty::I64 { I::I64Add } else { I::I32Add });
    }
    fn sub(&mut self, ty: Ty) {
        self.ins(if ty == Ty::I64 { I::I64Sub } else { I::I32Sub });
    }
    /// `>> 12`, then wrap an i64 to i32: a page index.
    fn page(&mut self, ty: Ty) {
        self.int(ty, PAGE_SHIFT as u64);
        if ty == Ty::I64 {
            self.ins(I::I64ShrU);
            self.ins(I::I32WrapI64);
        } else {
            self.ins(I::I32ShrU);
        }
    }
}

fn map_arg(map: u32) -> MemArg {
    MemArg {
        offset: 0,
        align: 0,
        memory_index: map,
    }
}

/// The rewriter.
struct Barrier<'f> {
    facts: &'f Facts,
    /// Whether marks are elided (off: every store gets its own mark, for measuring elision).
    elision: bool,
    body: usize,
    marks: u64,
    elided: u64,
    memories_done: bool,
    exports_done: bool,
}

impl Barrier<'_> {
    fn n(&self) -> u32 {
        self.facts.memories.len() as u32
    }
    fn map(&self, memory: u32) -> u32 {
        self.n() + memory
    }
    fn addr(&self, memory: u32) -> Ty {
        self.facts.memories[memory as usize].addr()
    }

    fn append_memories(&mut self, s: &mut MemorySection) {
        for m in &self.facts.memories {
            s.memory(m.map_type());
        }
        self.memories_done = true;
    }

    fn append_exports(&mut self, s: &mut ExportSection) {
        for k in 0..self.n() {
            s.export(&map_export(k), ExportKind::Memory, self.map(k));
        }
        self.exports_done = true;
    }

    /// Marks the page of `local + off` in the map of `memory`.
    fn mark_one(&self, out: &mut Out, local: u32, memory: u32, off: u64) {
        let ty = self.addr(memory);
        out.ins(I::LocalGet(local));
        if off != 0 {
            out.int(ty, off);
            out.add(ty);
        }
        out.page(ty);
        out.ins(I::I32Const(1));
        out.ins(I::I32Store8(map_arg(self.map(memory))));
    }

    /// Marks the pages of `local + first` and `local + last` (one page if they are equal).
    fn mark_range(&mut self, out: &mut Out, local: u32, memory: u32, first: u64, last: u64) {
        self.mark_one(out, local, memory, first);
        if last != first {
            self.mark_one(out, local, memory, last);
        }
        self.marks += 1;
    }

    /// Rewrites a bulk operator writing `len` bytes at `d` of `memory`; the operands are on the
    /// stack: (d, s, len) with types (`addr(memory)`, `s_ty`, `len_ty`).
    fn bulk(
        &mut self,
        out: &mut Out,
        scratch: &mut Scratch,
        op: &[u8],
        memory: u32,
        s_ty: Ty,
        len_ty: Ty,
    ) {
        let d_ty = self.addr(memory);
        let (d, s, n) = (
            scratch.get(d_ty, 0),
            scratch.get(s_ty, 1),
            scratch.get(len_ty, 2),
        );
        let p = scratch.get(Ty::I32, 3);
        out.ins(I::LocalSet(n));
        out.ins(I::LocalSet(s));
        out.ins(I::LocalTee(d));
        out.ins(I::LocalGet(s));
        out.ins(I::LocalGet(n));
        out.0.extend_from_slice(op);
        out.ins(I::LocalGet(n));
        if len_ty == Ty::I64 {
            out.ins(I::I64Const(0));
            out.ins(I::I64Ne);
        }
        out.ins(I::If(BlockType::Empty));
        out.ins(I::LocalGet(d));
        out.page(d_ty);
        out.ins(I::LocalTee(p));
        out.ins(I::I32Const(1));
        out.ins(I::LocalGet(d));
        out.ins(I::LocalGet(n));
        if d_ty == Ty::I64 && len_ty == Ty::I32 {
            out.ins(I::I64ExtendI32U);
        }
        out.add(d_ty);
        out.int(d_ty, 1);
        out.sub(d_ty);
        out.page(d_ty);
        out.ins(I::LocalGet(p));
        out.ins(I::I32Sub);
        out.ins(I::I32Const(1));
        out.ins(I::I32Add);
        out.ins(I::MemoryFill(self.map(memory)));
        out.ins(I::End);
        self.marks += 1;
    }

    /// Rewrites `memory.grow memory` (its bytes: `op`) so the map grows with the memory.
    fn grow(&self, out: &mut Out, scratch: &mut Scratch, op: &[u8], memory: u32) {
        let ty = self.addr(memory);
        let map = self.map(memory);
        let (r, t) = (scratch.get(ty, 0), scratch.get(ty, 1));
        out.0.extend_from_slice(op);
        out.ins(I::LocalTee(r));
        out.ins(I::LocalGet(r));
        if ty == Ty::I64 {
            out.ins(I::I64Const(-1));
            out.ins(I::I64Ne);
        } else {
            out.ins(I::I32Const(-1));
            out.ins(I::I32Ne);
        }
        out.ins(I::If(BlockType::Empty));
        // t = map_pages(memory.size) - memory.size(map)
        out.ins(I::MemorySize(memory));
        out.int(ty, 12);
        out.ins(if ty == Ty::I64 {
            I::I64ShrU
        } else {
            I::I32ShrU
        });
        out.int(ty, 1);
        out.add(ty);
        out.ins(I::MemorySize(map));
        if ty == Ty::I64 {
            out.ins(I::I64ExtendI32U);
        }
        out.sub(ty);
        out.ins(I::LocalTee(t));
        if ty == Ty::I64 {
            out.ins(I::I64Const(0));
            out.ins(I::I64GtS);
        } else {
            out.ins(I::I32Const(0));
            out.ins(I::I32GtS);
        }
        out.ins(I::If(BlockType::Empty));
        if ty == Ty::I64 {
            // More than an i32 map can hold.
            out.ins(I::LocalGet(t));
            out.ins(I::I64Const(MAX_MAP_PAGES as i64));
            out.ins(I::I64GtU);
            out.ins(I::If(BlockType::Empty));
            out.ins(I::Unreachable);
            out.ins(I::End);
            out.ins(I::LocalGet(t));
            out.ins(I::I32WrapI64);
        } else {
            out.ins(I::LocalGet(t));
        }
        out.ins(I::MemoryGrow(map));
        out.ins(I::I32Const(-1));
        out.ins(I::I32Eq);
        out.ins(I::If(BlockType::Empty));
        out.ins(I::Unreachable);
        out.ins(I::End);
        out.ins(I::End);
        out.ins(I::End);
    }

    fn rewrite_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), InstrumentError> {
        let function = self.facts.imported_functions + self.body as u32;
        let params = self
            .facts
            .func_types
            .get(function as usize)
            .and_then(|&t| self.facts.types.get(t as usize))
            .and_then(|t| match &t.composite_type.inner {
                wasmparser::CompositeInnerType::Func(f) => Some(f.params().len() as u64),
                _ => None,
            })
            .unwrap_or(0);
        self.body += 1;
        let mut locals = Vec::new();
        let mut count = params;
        for pair in func.get_locals_reader()? {
            let (n, ty) = pair?;
            count += u64::from(n);
            locals.push((
                n,
                self.val_type(ty)
                    .map_err(|e| InstrumentError::Encode(e.to_string()))?,
            ));
        }

        // Pass 1: how each store is marked.
        let mut planner = Planner {
            facts: self.facts,
            stack: Vec::new(),
            groups: Vec::new(),
            marks: Vec::new(),
        };
        // The operators with their byte ranges, read once for both passes.
        let mut ops = Vec::new();
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let start = reader.original_position();
            let op = reader.read()?;
            planner.step(&op);
            ops.push((op, start, reader.original_position()));
        }
        let marks = match self.elision {
            true => planner.marks,
            false => vec![Mark::Own; planner.marks.len()],
        };

        // Pass 2: emit.
        let mut scratch = Scratch {
            next: count as u32,
            slots: HashMap::new(),
            added: Vec::new(),
        };
        let bytes = func.as_bytes();
        let base = func.range().start;
        let mut out = Out(Vec::with_capacity(bytes.len() + bytes.len() / 2));
        let mut stores = marks.iter();
        for (op, start, end) in ops {
            let raw = &bytes[start - base..end - base];
            if let Some(s) = store_of(&op) {
                match stores.next().copied().unwrap_or(Mark::Own) {
                    Mark::Elided => {
                        out.0.extend_from_slice(raw);
                        self.elided += 1;
                    }
                    Mark::Group { local, first, last } => {
                        out.0.extend_from_slice(raw);
                        self.mark_range(&mut out, local, s.memory, first, last);
                    }
                    Mark::Own => {
                        let a = scratch.get(self.addr(s.memory), 0);
                        let v = scratch.get(s.value, 1);
                        out.ins(I::LocalSet(v));
                        out.ins(I::LocalTee(a));
                        out.ins(I::LocalGet(v));
                        out.0.extend_from_slice(raw);
                        let last = s.offset.saturating_add(s.width - 1);
                        self.mark_range(&mut out, a, s.memory, s.offset, last);
                    }
                }
                continue;
            }
            match op {
                Operator::MemoryFill { mem } => {
                    let at = self.addr(mem);
                    self.bulk(&mut out, &mut scratch, raw, mem, Ty::I32, at);
                }
                Operator::MemoryCopy { dst_mem, src_mem } => {
                    let (d, s) = (self.addr(dst_mem), self.addr(src_mem));
                    let len = if d == Ty::I64 && s == Ty::I64 {
                        Ty::I64
                    } else {
                        Ty::I32
                    };
                    self.bulk(&mut out, &mut scratch, raw, dst_mem, s, len);
                }
                Operator::MemoryInit { mem, .. } => {
                    self.bulk(&mut out, &mut scratch, raw, mem, Ty::I32, Ty::I32);
                }
                Operator::MemoryGrow { mem } => self.grow(&mut out, &mut scratch, raw, mem),
                _ => out.0.extend_from_slice(raw),
            }
        }
        let needed = scratch.added.len() as u64;
        if count + needed > MAX_LOCALS {
            return Err(BarrierError::TooManyLocals {
                function,
                locals: count,
                needed,
                offset: func.range().start,
            }
            .into());
        }
        locals.extend(scratch.added.iter().map(|&t| (1, t)));
        let mut f = Function::new(locals);
        f.raw(out.0);
        code.function(&f);
        Ok(())
    }
}

impl Reencode for Barrier<'_> {
    type Error = InstrumentError;

    fn parse_memory_section(
        &mut self,
        memories: &mut MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_memory_section(self, memories, section)?;
        self.append_memories(memories);
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

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let rank = before.map(sections::rank).unwrap_or(u8::MAX);
        if !self.facts.has_memory_section
            && !self.memories_done
            && rank > sections::rank(SectionId::Memory)
        {
            let mut s = MemorySection::new();
            self.append_memories(&mut s);
            module.section(&s);
        }
        if !self.facts.has_export_section
            && !self.exports_done
            && rank > sections::rank(SectionId::Export)
        {
            let mut s = ExportSection::new();
            self.append_exports(&mut s);
            module.section(&s);
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        self.rewrite_body(code, func)
            .map_err(reencode::Error::UserError)
    }
}

/// Runs the barrier pass over `wasm` (the output of the other passes).
pub fn rewrite(wasm: &[u8], summary: &mut Summary) -> Result<Vec<u8>, InstrumentError> {
    rewrite_with(wasm, summary, true)
}

/// [`rewrite`], with elision on or off. Off, every store gets its own mark through scratch
/// locals (no groups, no local-plus-constant marks): only for measuring what elision saves.
pub fn rewrite_with(
    wasm: &[u8],
    summary: &mut Summary,
    elision: bool,
) -> Result<Vec<u8>, InstrumentError> {
    let facts = scan(wasm)?;
    let n = facts.memories.len() as u32;
    if n == 0 {
        return Ok(wasm.to_vec());
    }
    if 2 * n > MAX_MEMORIES {
        return Err(BarrierError::TooManyMemories { memories: n }.into());
    }
    for k in 0..n {
        let name = map_export(k);
        if facts.exports.contains(&name) {
            return Err(BarrierError::ReservedExport { name }.into());
        }
    }
    let mut pass = Barrier {
        facts: &facts,
        elision,
        body: 0,
        marks: 0,
        elided: 0,
        memories_done: false,
        exports_done: false,
    };
    let mut module = Module::new();
    pass.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            reencode::Error::UserError(e) => e,
            reencode::Error::ParseError(e) => e.into(),
            other => InstrumentError::Encode(other.to_string()),
        })?;
    for (k, m) in facts.memories.iter().enumerate() {
        let t = m.map_type();
        summary.memories.push((
            n + k as u32,
            format!(
                "dirty byte map of memory {k}, i32, {}..{} pages",
                t.minimum,
                t.maximum.unwrap_or(MAX_MAP_PAGES)
            ),
        ));
        summary.host_exports.push(map_export(k as u32));
    }
    summary.barrier_marks += pass.marks;
    summary.barrier_elided += pass.elided;
    Ok(module.finish())
}

#[cfg(test)]
mod tests;
