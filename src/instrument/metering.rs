//! The metering pass: deterministic instruction counting in the module itself (DESIGN.md §5).
//!
//! The pass runs on the module before the stable-memory pass (whose injected code is not
//! metered) and injects:
//!
//! ```wat
//! (import "canister_vm" "trap" (func $trap (param i32)))   ;; unless the module has it already
//! (global $counter (mut i64) (i64.const 300_000_000_000))  ;; appended after the last global
//! (export "canister counter_instructions" (global $counter))
//! ```
//!
//! The host sets the counter to the message's budget before each message and reads
//! `used = budget - counter` afterwards. Its initial value (the *IC* install limit,
//! [`START_BUDGET`]) only bounds the start function, which runs at instantiation before the host
//! can set it. Adding the import shifts the index of every defined function by one; calls,
//! `ref.func`, element segments, exports, the start function and the name section are remapped
//! through [`Reencode::function_index`].
//!
//! **Basic blocks** are the replica's (`injections` in dfinity/ic's
//! `rs/embedders/src/wasm_utils/instrumentation.rs`; DESIGN.md, "Instruction counts"), so that
//! every count and every `performance_counter` reading is the IC's. A function body is cut into
//! straight-line segments that end after `loop`, `if`, `else`, `br`, `br_if`, `br_table`, `end`,
//! `return`, `unreachable`, `return_call` and `return_call_indirect`; calls do not end a segment
//! (the callee returns to the next instruction). A function's first segment also costs
//! [`cost::FUNCTION_ENTRY`]. Each segment's static cost (the sum of [`cost::static_cost`] over
//! its operators; segments costing 0 inject nothing) is charged at its start. One merge keeps
//! the interpreter's work down without changing anything observable: the segment after the
//! `end` of a `loop`, or of a `block` no branch targets (reached only by falling through), is
//! merged into the one before it while that one has no operator that can see the counter yet
//! (`observes_counter`: calls and bulk operators), so every path pays the same and every
//! observer sees the replica's value. A call of `ic0.stable64_read` or `ic0.stable64_write`
//! whose length is an `i64.const` right before it costs `20 + len`
//! (`stable::folded_call_cost`): it is added to its segment's cost when nothing before it in the
//! segment observes the counter, and charged right before the `i64.const` otherwise; the
//! stable-memory pass then charges nothing at that call site:
//!
//! ```wat
//! global.get $counter  i64.const <cost>  i64.sub  global.set $counter
//! ```
//!
//! A segment that starts right after an unconditional transfer is unreachable and not charged.
//! At every loop header, and at the entry of every function that loops or calls, the charge is
//! followed by a check (made even if the cost is 0), so an infinite loop or recursion traps. The
//! new value goes through a scratch i64 local `$t` so the check does not read the global again
//! (one interpreter instruction less per loop iteration):
//!
//! ```wat
//! global.get $counter  i64.const <cost>  i64.sub  local.tee $t  global.set $counter
//! (if (i64.lt_s (local.get $t) (i64.const 0))
//!   (then (call $trap (i32.const 1)) unreachable))       ;; InjectedTrap::InstructionLimit
//! ```
//!
//! Between two checks the code executes a loop-free path of one function, plus the whole of any
//! loop-free, call-free functions it calls, plus the rest of the paths of the functions it returns
//! to, so the counter goes below zero by at most the cost of such paths before the message traps
//! (in a loop: less than one iteration). The host must treat a message that ends with a negative
//! counter as having exceeded its limit.
//!
//! **Bulk operators.** `memory.copy/fill/init` and `table.copy/fill/init` also charge their
//! length (one per byte or element) right before they execute, and check the counter, so a huge
//! copy traps before it runs. The length is the top of the stack; it is kept there through a
//! scratch i64 local `$n` added to the function:
//!
//! ```wat
//! local.tee $n                               ;; 64-bit length (i64 memories and tables)
//! i64.extend_i32_u local.tee $n i32.wrap_i64 ;; 32-bit length (the same value stays on the stack)
//! global.get $counter  local.get $n  i64.sub  global.set $counter
//! (if (i64.lt_s (global.get $counter) (i64.const 0)) (then (call $trap (i32.const 1)) unreachable))
//! ```
//!
//! A 64-bit length of 2^63 or more (which can never be in bounds) traps as an instruction limit:
//! the check is then `(i64.lt_s (i64.or (global.get $counter) (local.get $n)) (i64.const 0))`.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, EntityType, ExportKind, ExportSection, Function,
    GlobalSection, GlobalType, ImportSection, Instruction as I, Module, SectionId, TypeSection,
    ValType,
};
use wasmparser::{KnownCustom, Operator, Parser, Payload, TypeRef};

use super::cost;
use super::sections;
use super::{InjectedTrap, InstrumentError, Summary, names};

/// The counter's initial value: the budget of the start function (the *IC* install limit). The
/// host sets the counter before every message.
pub const START_BUDGET: i64 = 300_000_000_000;

/// Name of the host function injected code calls to trap (module [`names::HOST_MODULE`]).
pub const TRAP_IMPORT: &str = "trap";

/// The largest number of locals (parameters included) a function may have (wasmparser's limit).
const MAX_LOCALS: u64 = 50_000;

/// Why the metering pass cannot instrument a module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeteringError {
    /// The module already exports a name the pass needs.
    #[error("the module already exports `{name}`, which metering reserves")]
    ReservedExport {
        /// The export name.
        name: String,
    },
    /// The function has no room for the scratch local bulk operators need.
    #[error(
        "function {function} has {locals} locals; metering its bulk operators needs one more \
         (at byte offset {offset:#x})"
    )]
    TooManyLocals {
        /// Function index (in the input module).
        function: u32,
        /// Its number of locals, parameters included.
        locals: u64,
        /// Byte offset of the function body.
        offset: usize,
    },
    /// An operator of a proposal canister-vm does not enable.
    #[error(
        "operator {operator} is not supported (function {function}, at byte offset {offset:#x})"
    )]
    UnsupportedOperator {
        /// The operator, as wasmparser prints it.
        operator: String,
        /// Function index (in the input module).
        function: u32,
        /// Byte offset of the operator.
        offset: usize,
    },
}

/// What the pass needs to know about the input module.
#[derive(Debug, Default)]
struct Facts {
    /// Number of parameters of every type.
    type_params: Vec<u32>,
    /// Whether every type is `(func (param i32))`, the type of the trap import.
    trap_shaped: Vec<bool>,
    /// The first type `(func (param i32))`, if any.
    trap_type: Option<u32>,
    /// Number of imported functions.
    imported_functions: u32,
    /// Function index of an existing `canister_vm.trap` import of type `(func (param i32))`.
    trap_import: Option<u32>,
    /// Type index of every defined function.
    defined_function_types: Vec<u32>,
    /// Number of globals, imported ones included.
    globals: u32,
    /// Whether each memory (imported ones first) is a memory64.
    memory64: Vec<bool>,
    /// Whether each table (imported ones first) is a table64.
    table64: Vec<bool>,
    /// Whether the module exports [`names::COUNTER`].
    exports_counter: bool,
    /// Function indices of the `ic0.stable64_read`/`ic0.stable64_write` imports, whose calls
    /// with a constant length are charged with their segment (see `stable::folded_call_cost`).
    stable_read_write: Vec<u32>,
}

impl Facts {
    /// The address type of memory 0, which prices loads and stores.
    fn heap(&self) -> cost::HeapWidth {
        match self.memory64.first() {
            Some(true) => cost::HeapWidth::Wasm64,
            _ => cost::HeapWidth::Wasm32,
        }
    }
}

/// Whether `op` can see the instruction counter while its segment runs: a call (the callee may
/// read it with `ic0.performance_counter`, charge and check it) or a bulk operator (which
/// charges its length and checks). The replica charges each of its blocks at the block's start,
/// so a segment that merges two of its blocks must not have such an operator before the second.
fn observes_counter(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::MemoryFill { .. }
            | Operator::MemoryCopy { .. }
            | Operator::MemoryInit { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
    )
}

/// Inserts a charge of `cost` at byte offset `at` if it lies in the last piece (a raw range:
/// the length's `i64.const`, always copied raw right before its call); `false` if it does not.
fn split_before(pieces: &mut Vec<Piece>, at: usize, cost: u64) -> bool {
    let Some(&Piece::Raw(start, end)) = pieces.last() else {
        return false;
    };
    if !(start..end).contains(&at) {
        return false;
    }
    pieces.pop();
    if start < at {
        pieces.push(Piece::Raw(start, at));
    }
    pieces.push(Piece::Charge(cost));
    pieces.push(Piece::Raw(at, end));
    true
}

fn scan(wasm: &[u8]) -> Result<Facts, InstrumentError> {
    let mut facts = Facts::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty?;
                    let index = facts.type_params.len() as u32;
                    let trap_shaped =
                        ty.params() == [wasmparser::ValType::I32] && ty.results().is_empty();
                    if trap_shaped && facts.trap_type.is_none() {
                        facts.trap_type = Some(index);
                    }
                    facts.trap_shaped.push(trap_shaped);
                    facts.type_params.push(ty.params().len() as u32);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import?;
                    match import.ty {
                        TypeRef::Func(ty) => {
                            if import.module == "ic0"
                                && super::stable::is_wide_read_write(import.name)
                            {
                                facts.stable_read_write.push(facts.imported_functions);
                            }
                            if facts.trap_import.is_none()
                                && import.module == names::HOST_MODULE
                                && import.name == TRAP_IMPORT
                                && facts.trap_shaped.get(ty as usize) == Some(&true)
                            {
                                facts.trap_import = Some(facts.imported_functions);
                            }
                            facts.imported_functions += 1;
                        }
                        TypeRef::Global(_) => facts.globals += 1,
                        TypeRef::Memory(m) => facts.memory64.push(m.memory64),
                        TypeRef::Table(t) => facts.table64.push(t.table64),
                        TypeRef::Tag(_) => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    facts.defined_function_types.push(ty?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    facts.table64.push(table?.ty.table64);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    facts.memory64.push(memory?.memory64);
                }
            }
            Payload::GlobalSection(reader) => facts.globals += reader.count(),
            Payload::ExportSection(reader) => {
                for export in reader {
                    if export?.name == names::COUNTER {
                        facts.exports_counter = true;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// Where a segment can be entered from, which decides what is injected at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The function's first segment: charge and check (a function that neither loops nor
    /// calls has a [`Entry::Plain`] first segment instead).
    Function,
    /// The first segment of a loop body: charge and check.
    LoopHeader,
    /// Any other reachable segment: charge.
    Plain,
    /// Follows an unconditional transfer: unreachable, nothing injected.
    Dead,
}

/// A straight-line run of operators entered only at its first one.
#[derive(Debug)]
struct Segment {
    /// The sum of the static costs of its operators.
    cost: u64,
    entry: Entry,
    /// Whether it has no operator yet.
    empty: bool,
}

/// How a bulk operator's length is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    I32,
    I64,
}

/// The re-encoder of the metering pass.
struct Metering<'f> {
    facts: &'f Facts,
    /// Whether the trap import is appended (defined function indices shift by one).
    add_import: bool,
    /// Type of the trap import, and whether it is appended to the type section.
    trap_type: u32,
    add_type: bool,
    /// Function index of the trap import in the output.
    trap: u32,
    /// Global index of the counter.
    counter: u32,
    /// Index of the next function body among defined functions.
    body: usize,
    /// Charges and checks injected.
    points: u64,
    import_done: bool,
    global_done: bool,
    export_done: bool,
}

impl<'f> Metering<'f> {
    fn new(facts: &'f Facts) -> Self {
        let needs_trap = !facts.defined_function_types.is_empty();
        let add_import = needs_trap && facts.trap_import.is_none();
        let (trap_type, add_type) = match facts.trap_type {
            Some(t) => (t, false),
            None => (facts.type_params.len() as u32, add_import),
        };
        Metering {
            facts,
            add_import,
            trap_type,
            add_type,
            trap: facts.trap_import.unwrap_or(facts.imported_functions),
            counter: facts.globals,
            body: 0,
            points: 0,
            import_done: !add_import,
            global_done: false,
            export_done: false,
        }
    }

    fn length_of(&self, op: &Operator<'_>) -> Option<Length> {
        let mem = |i: u32| {
            self.facts
                .memory64
                .get(i as usize)
                .copied()
                .unwrap_or(false)
        };
        let table = |i: u32| self.facts.table64.get(i as usize).copied().unwrap_or(false);
        let wide = |b: bool| if b { Length::I64 } else { Length::I32 };
        match *op {
            Operator::MemoryFill { mem: m } => Some(wide(mem(m))),
            Operator::MemoryCopy { dst_mem, src_mem } => Some(wide(mem(dst_mem) && mem(src_mem))),
            Operator::MemoryInit { .. } | Operator::TableInit { .. } => Some(Length::I32),
            Operator::TableFill { table: t } => Some(wide(table(t))),
            Operator::TableCopy {
                dst_table,
                src_table,
            } => Some(wide(table(dst_table) && table(src_table))),
            _ => None,
        }
    }

    /// `global.get $counter  i64.const cost  i64.sub  global.set $counter`
    fn charge(&mut self, f: &mut Function, cost: u64) {
        f.instruction(&I::GlobalGet(self.counter))
            .instruction(&I::I64Const(cost.min(i64::MAX as u64) as i64))
            .instruction(&I::I64Sub)
            .instruction(&I::GlobalSet(self.counter));
        self.points += 1;
    }

    /// Charges `cost` and traps with the instruction limit if the counter is then negative. With
    /// scratch local `tmp`, the new value is checked from the local instead of a second
    /// `global.get` (one interpreter instruction less per loop iteration on wasmi).
    fn charge_and_check(&mut self, f: &mut Function, cost: u64, tmp: Option<u32>) {
        match tmp {
            Some(tmp) if cost > 0 => {
                f.instruction(&I::GlobalGet(self.counter))
                    .instruction(&I::I64Const(cost.min(i64::MAX as u64) as i64))
                    .instruction(&I::I64Sub)
                    .instruction(&I::LocalTee(tmp))
                    .instruction(&I::GlobalSet(self.counter))
                    .instruction(&I::LocalGet(tmp));
                self.points += 1;
            }
            _ => {
                if cost > 0 {
                    self.charge(f, cost);
                }
                f.instruction(&I::GlobalGet(self.counter));
            }
        }
        self.trap_if_negative(f);
    }

    /// Traps with the instruction limit if the counter (or'ed with local `or_local`) is negative.
    fn check(&mut self, f: &mut Function, or_local: Option<u32>) {
        f.instruction(&I::GlobalGet(self.counter));
        if let Some(local) = or_local {
            f.instruction(&I::LocalGet(local)).instruction(&I::I64Or);
        }
        self.trap_if_negative(f);
    }

    /// `(if (i64.lt_s <top of stack> (i64.const 0)) (then (call $trap (i32.const 1)) unreachable))`
    fn trap_if_negative(&mut self, f: &mut Function) {
        f.instruction(&I::I64Const(0))
            .instruction(&I::I64LtS)
            .instruction(&I::If(BlockType::Empty))
            .instruction(&I::I32Const(InjectedTrap::InstructionLimit.code()))
            .instruction(&I::Call(self.trap))
            .instruction(&I::Unreachable)
            .instruction(&I::End);
        self.points += 1;
    }

    /// Charges the length on top of the stack (kept there) through scratch local `n`.
    fn charge_length(&mut self, f: &mut Function, length: Length, n: u32) {
        match length {
            Length::I64 => {
                f.instruction(&I::LocalTee(n));
            }
            Length::I32 => {
                f.instruction(&I::I64ExtendI32U)
                    .instruction(&I::LocalTee(n))
                    .instruction(&I::I32WrapI64);
            }
        }
        f.instruction(&I::GlobalGet(self.counter))
            .instruction(&I::LocalGet(n))
            .instruction(&I::I64Sub)
            .instruction(&I::GlobalSet(self.counter));
        // The charge and its check count as one metering point (the check's).
        self.check(f, (length == Length::I64).then_some(n));
    }

    fn user(e: impl Into<InstrumentError>) -> reencode::Error<InstrumentError> {
        reencode::Error::UserError(e.into())
    }
}

/// One step of re-emitting a function body.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// What segment `i` injects at its start (nothing for a dead segment).
    Segment(usize),
    /// Operators copied unchanged: the module's bytes `start..end`.
    Raw(usize, usize),
    /// The dynamic charge of the bulk operator that follows.
    Length(Length),
    /// A constant charge at this point (a stable call's, see `scan_body`).
    Charge(u64),
    /// `call`, `return_call` and `ref.func` of a function whose index shifts.
    Call(u32),
    ReturnCall(u32),
    RefFunc(u32),
}

/// A function body cut into segments, and how to emit it.
#[derive(Debug, Default)]
struct Body {
    segments: Vec<Segment>,
    pieces: Vec<Piece>,
    /// Whether a reachable bulk operator needs the length's scratch local.
    needs_length_local: bool,
}

impl Metering<'_> {
    /// Reads a function body once: cuts it into segments (see the module docs), prices them and
    /// lists the pieces to emit, consecutive unchanged operators merged into one byte range.
    fn scan_body(
        &self,
        mut reader: wasmparser::OperatorsReader<'_>,
        function: u32,
    ) -> Result<Body, InstrumentError> {
        /// An open block, loop, if or the function body, and whether a branch targets its end.
        struct Frame {
            kind: FrameKind,
            targeted: bool,
        }
        #[derive(PartialEq)]
        enum FrameKind {
            Block,
            Loop,
            If,
            Body,
        }
        fn mark(stack: &mut [Frame], depth: u32) {
            let frame = (stack.len() as u64)
                .checked_sub(1 + u64::from(depth))
                .and_then(|i| stack.get_mut(i as usize));
            if let Some(frame) = frame {
                frame.targeted = true;
            }
        }
        let frame = |kind| Frame {
            kind,
            targeted: false,
        };
        let mut stack = vec![frame(FrameKind::Body)];
        let mut body = Body::default();
        let mut current = Segment {
            cost: u64::from(cost::FUNCTION_ENTRY),
            entry: Entry::Function,
            empty: true,
        };
        body.pieces.push(Piece::Segment(0));
        let mut calls_or_loops = false;
        // The operand and start offset of an `i64.const` that is the previous operator.
        let mut previous_const: Option<(i64, usize)> = None;
        // Whether an operator of the current segment can see the counter (see
        // `observes_counter`): the segment then cannot be merged with the next one.
        let mut observed = false;
        while !reader.eof() {
            let start = reader.original_position();
            let op = reader.read()?;
            let end = reader.original_position();
            let cost = cost::static_cost(&op, self.facts.heap()).ok_or_else(|| {
                MeteringError::UnsupportedOperator {
                    operator: format!("{op:?}"),
                    function,
                    offset: start,
                }
            })?;
            current.cost += u64::from(cost);
            // A stable read/write with a constant length: its cost is a constant too, charged
            // with the segment when nothing before it in the segment can see the counter, and
            // right before its length otherwise (where the replica's function would charge it).
            if let Operator::Call { function_index } = op
                && self.facts.stable_read_write.contains(&function_index)
                && let Some((len, len_start)) = previous_const
                && let Some(folded) = super::stable::folded_call_cost(len)
                && !(observed && split_before(&mut body.pieces, len_start, folded))
            {
                current.cost += folded;
            }
            previous_const = match op {
                Operator::I64Const { value } => Some((value, start)),
                _ => None,
            };
            observed |= observes_counter(&op);
            current.empty = false;
            calls_or_loops |= matches!(
                op,
                Operator::Loop { .. }
                    | Operator::Call { .. }
                    | Operator::CallIndirect { .. }
                    | Operator::ReturnCall { .. }
                    | Operator::ReturnCallIndirect { .. }
            );
            if current.entry != Entry::Dead
                && let Some(length) = self.length_of(&op)
            {
                body.pieces.push(Piece::Length(length));
                body.needs_length_local = true;
            }
            let remapped = match op {
                Operator::Call { function_index } => Some(Piece::Call(function_index)),
                Operator::ReturnCall { function_index } => Some(Piece::ReturnCall(function_index)),
                Operator::RefFunc { function_index } => Some(Piece::RefFunc(function_index)),
                _ => None,
            };
            match (remapped, body.pieces.last_mut()) {
                (Some(piece), _) if self.add_import => body.pieces.push(piece),
                (_, Some(Piece::Raw(_, last_end))) if *last_end == start => *last_end = end,
                _ => body.pieces.push(Piece::Raw(start, end)),
            }
            let next = match op {
                Operator::Block { .. } => {
                    stack.push(frame(FrameKind::Block));
                    continue;
                }
                Operator::Loop { .. } => {
                    stack.push(frame(FrameKind::Loop));
                    Entry::LoopHeader
                }
                Operator::If { .. } => {
                    stack.push(frame(FrameKind::If));
                    Entry::Plain
                }
                Operator::Else => Entry::Plain,
                Operator::End => match stack.pop() {
                    // Only a fall-through reaches the end of a loop, or of a block no branch
                    // targets. The replica starts a block there; merging it into the current
                    // segment charges the same on every path, and is invisible while nothing
                    // in the segment so far can see the counter (or the segment is dead).
                    Some(Frame {
                        kind: FrameKind::Loop,
                        ..
                    })
                    | Some(Frame {
                        kind: FrameKind::Block,
                        targeted: false,
                    }) if !observed || current.entry == Entry::Dead => continue,
                    _ => Entry::Plain,
                },
                Operator::BrIf { relative_depth } => {
                    mark(&mut stack, relative_depth);
                    Entry::Plain
                }
                Operator::Br { relative_depth } => {
                    mark(&mut stack, relative_depth);
                    Entry::Dead
                }
                Operator::BrTable { targets } => {
                    for depth in targets.targets() {
                        mark(&mut stack, depth?);
                    }
                    mark(&mut stack, targets.default());
                    Entry::Dead
                }
                Operator::Return
                | Operator::Unreachable
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. } => Entry::Dead,
                _ => continue,
            };
            observed = false;
            let done = std::mem::replace(
                &mut current,
                Segment {
                    cost: 0,
                    entry: next,
                    empty: true,
                },
            );
            body.segments.push(done);
            body.pieces.push(Piece::Segment(body.segments.len()));
        }
        if !current.empty {
            body.segments.push(current);
        }
        // A function that neither loops nor calls runs for a bounded time: its entry needs no
        // check (the caller's next check sees its charges).
        if !calls_or_loops && let Some(first) = body.segments.first_mut() {
            first.entry = Entry::Plain;
        }
        Ok(body)
    }
}

impl Reencode for Metering<'_> {
    type Error = InstrumentError;

    fn function_index(&mut self, func: u32) -> u32 {
        if self.add_import && func >= self.facts.imported_functions {
            func + 1
        } else {
            func
        }
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        if self.add_type {
            types.ty().function([ValType::I32], []);
        }
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        if self.add_import {
            imports.import(
                names::HOST_MODULE,
                TRAP_IMPORT,
                EntityType::Function(self.trap_type),
            );
        }
        self.import_done = true;
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.append_global(globals);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        self.append_export(exports);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let past = |id: SectionId| before.is_none_or(|b| sections::rank(b) > sections::rank(id));
        if !self.import_done && past(SectionId::Import) {
            let mut imports = ImportSection::new();
            imports.import(
                names::HOST_MODULE,
                TRAP_IMPORT,
                EntityType::Function(self.trap_type),
            );
            module.section(&imports);
            self.import_done = true;
        }
        if !self.global_done && past(SectionId::Global) {
            let mut globals = GlobalSection::new();
            self.append_global(&mut globals);
            module.section(&globals);
        }
        if !self.export_done && past(SectionId::Export) {
            let mut exports = ExportSection::new();
            self.append_export(&mut exports);
            module.section(&exports);
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        match section.as_known() {
            // A malformed name section is debug information the module can do without.
            KnownCustom::Name(names) => {
                if let Ok(names) = self.custom_name_section(names) {
                    module.section(&names);
                }
                Ok(())
            }
            _ => reencode::utils::parse_custom_section(self, module, section),
        }
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let function = self.facts.imported_functions + self.body as u32;
        let params = self
            .facts
            .defined_function_types
            .get(self.body)
            .and_then(|&t| self.facts.type_params.get(t as usize))
            .copied()
            .unwrap_or(0);
        self.body += 1;

        let mut locals = Vec::new();
        let mut count = u64::from(params);
        for pair in func.get_locals_reader()? {
            let (n, ty) = pair?;
            count += u64::from(n);
            locals.push((n, self.val_type(ty)?));
        }
        let scan = self
            .scan_body(func.get_operators_reader()?, function)
            .map_err(Self::user)?;
        // Scratch locals, appended: the length of bulk operators (required) and the new counter
        // value at checks (optional: without it, checks read the global again).
        let mut next_local = count;
        let mut scratch = |needed: bool| {
            (needed && next_local < MAX_LOCALS).then(|| {
                locals.push((1, ValType::I64));
                next_local += 1;
                (next_local - 1) as u32
            })
        };
        let length_local = scratch(scan.needs_length_local);
        if scan.needs_length_local && length_local.is_none() {
            return Err(Self::user(MeteringError::TooManyLocals {
                function,
                locals: count,
                offset: func.range().start,
            }));
        }
        let charged_check = scan
            .segments
            .iter()
            .any(|s| matches!(s.entry, Entry::Function | Entry::LoopHeader) && s.cost > 0);
        let check_local = scratch(charged_check);

        let bytes = func.as_bytes();
        let base = func.range().start;
        let mut f = Function::new(locals);
        for piece in &scan.pieces {
            match *piece {
                Piece::Segment(i) => match scan.segments.get(i) {
                    Some(s) if matches!(s.entry, Entry::Function | Entry::LoopHeader) => {
                        self.charge_and_check(&mut f, s.cost, check_local);
                    }
                    Some(s) if s.entry == Entry::Plain && s.cost > 0 => self.charge(&mut f, s.cost),
                    _ => {}
                },
                Piece::Raw(start, end) => {
                    let range = start.checked_sub(base).zip(end.checked_sub(base));
                    let raw = range.and_then(|(start, end)| bytes.get(start..end));
                    let raw = raw.ok_or_else(|| {
                        Self::user(InstrumentError::Encode(format!(
                            "operator bytes {start:#x}..{end:#x} outside function {function}"
                        )))
                    })?;
                    f.raw(raw.iter().copied());
                }
                Piece::Charge(cost) => self.charge(&mut f, cost),
                Piece::Length(length) => {
                    if let Some(n) = length_local {
                        self.charge_length(&mut f, length, n);
                    }
                }
                Piece::Call(index) => {
                    f.instruction(&I::Call(self.function_index(index)));
                }
                Piece::ReturnCall(index) => {
                    f.instruction(&I::ReturnCall(self.function_index(index)));
                }
                Piece::RefFunc(index) => {
                    f.instruction(&I::RefFunc(self.function_index(index)));
                }
            }
        }
        code.function(&f);
        Ok(())
    }
}

impl Metering<'_> {
    fn append_global(&mut self, globals: &mut GlobalSection) {
        globals.global(
            GlobalType {
                val_type: ValType::I64,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i64_const(START_BUDGET),
        );
        self.global_done = true;
    }

    fn append_export(&mut self, exports: &mut ExportSection) {
        exports.export(names::COUNTER, ExportKind::Global, self.counter);
        self.export_done = true;
    }
}

/// Instruments `wasm` (a valid module) with instruction counting.
pub fn rewrite(wasm: &[u8], summary: &mut Summary) -> Result<Vec<u8>, InstrumentError> {
    let facts = scan(wasm)?;
    if facts.exports_counter {
        return Err(MeteringError::ReservedExport {
            name: names::COUNTER.to_string(),
        }
        .into());
    }
    let mut metering = Metering::new(&facts);
    let mut module = Module::new();
    metering
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            reencode::Error::UserError(e) => e,
            reencode::Error::ParseError(e) => e.into(),
            other => InstrumentError::Encode(other.to_string()),
        })?;
    summary.metering_points += metering.points;
    Ok(module.finish())
}

#[cfg(test)]
mod tests;
