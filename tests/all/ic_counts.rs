//! Instruction counts that must equal the replica's (issue 18).
//!
//! Every expected number here is the replica's, derived by hand from its rules, never from
//! canister-vm's output. The rules (dfinity/ic):
//!
//! - **Operator costs**: `instruction_to_cost` in `rs/embedders/src/wasm_utils/instrumentation.rs`
//!   (commit 002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe). The ones used below: markers `block`,
//!   `loop`, `else`, `end` 0; constants, integer arithmetic and comparisons, `local.*`, `select`,
//!   `drop`, `nop`, `return`, `unreachable`, extends/wraps/reinterprets, `ref.null` 1; `if`,
//!   `br`, `br_if`, `br_table` 2; `global.get/set` 2; integer `div/rem` 10; f32/f64
//!   `add/sub/mul/ceil/floor/trunc/nearest` 2, `abs/neg` 1, `f32.div` 3, `f64.div` 5,
//!   `min/max` 18, `f32.copysign` 2, `f64.copysign` 3, `f32.sqrt` 5, `f64.sqrt` 8, float
//!   comparisons 3, `convert_*_s` 3, `convert_*_u` 16, `trunc_*` and `trunc_sat_*` 20,
//!   `promote/demote` 1; loads and stores 1 (2 when memory 0 is a memory64); `memory.size` 20,
//!   `memory.grow` and `table.grow` 300, `table.size` 100, `table.get/set` 5; `memory.fill/copy/
//!   init`, `table.fill/copy/init` 100; `data.drop`, `elem.drop` 300; `call` 5, `call_indirect`
//!   10, `return_call` 3, `return_call_indirect` 60; `ref.is_null` 5, `ref.func` 130; SIMD
//!   `i8x16.shuffle` 3, `i8x16.popcnt` 3, `i64x2.mul` 4, `f64x2.sqrt` 14, `v128.const` 1.
//! - **Injection points**: `injections()` in the same file. A function starts a block costing 1
//!   plus its operators ("even empty functions should consume at least some fuel"); every
//!   operator's cost goes to the block it is in; a block ends after `loop` (the body is a new
//!   block), `if`, `else`, `br`, `br_if`, `br_table`, every `end` (also of a `block`), `return`,
//!   `unreachable`, `return_call`, `return_call_indirect`. A block is charged whole when it
//!   starts. Calls do not end a block. `memory.fill/copy/init` and `table.fill/copy/init` also
//!   charge their length (bytes or elements) right before they run (`DynamicCost`).
//! - **ic0 overheads**: `charge_for_cpu`/`charge_for_cpu_and_mem` in
//!   `rs/embedders/src/wasmtime_embedder/linker.rs` subtract `overhead::*` of
//!   `system_api_complexity.rs` (+ one instruction per byte, `get_num_instructions_from_bytes`)
//!   before the function runs: `msg_reply` 500, `msg_reply_data_append` 500 + 50 per byte
//!   (`BYTE_TRANSMISSION_COST_FACTOR`), `msg_arg_data_size` 500, `msg_arg_data_copy` 500 + 1 per
//!   byte, `time`/`canister_self_size`/`msg_caller_size` 500, `performance_counter` 200,
//!   `debug_print` 100 + `2·len + 50·len` (log allocation and transmission, `logging_charge_bytes`;
//!   plus `len` more when debug printing is enabled, i.e. without rate limiting or on a system
//!   subnet; this file follows PocketIC, which disables the rate limiting, as canister-vm does).
//!   Wasm-native stable memory (the replica's default): `stable64_grow` 100
//!   (`overhead_native::STABLE_GROW`), `stable64_read/write` 20 + len, and each stable page a
//!   write dirties for the first time 1000 (`dirty_page_overhead` of an application subnet).
//! - **`performance_counter(0)`** returns `message_instructions_executed(counter)`, the
//!   instructions charged so far, read *after* the call's own 200 were charged. Since a block is
//!   charged when it starts, the value includes the rest of the block the call is in.
//!
//! **The whole-message count** (`Outcome::instructions`) is what the replica charges the message:
//! the message's limit minus the counter when it ends (`message_instructions_executed`, from
//! which execution cycles are computed). It is the in-Wasm counter plus ic0 overheads, plus one
//! thing charged after the Wasm returns: `WasmtimeInstance::run` subtracts
//! `dirty_page_overhead` (1000 on an application subnet) per 4 KiB heap page the message
//! dirtied. Non-replicated queries run with `ModificationTracking::Ignore`, so their dirty page
//! list is empty and they pay nothing for it; updates do. The scheduler's
//! `instruction_overhead_per_execution` (2 M) and `_per_canister` (8 M) count toward the round
//! limit only, not toward the message, and are not part of it (nor of canbench's
//! `performance_counter` differences).
//!
//! **Harness.** Every case's method ends by calling `$out(performance_counter(0))` (`TAIL`):
//! `$out` stores the value at heap address 0 and replies with those 8 bytes (the last 8 bytes
//! of the reply; some cases append more before). `TAIL` costs 11 in the caller's block
//! (`i32.const` 1, two `call`s 5 each) and 200 for `performance_counter`, and `$out` costs
//! `OUT` = 16 in Wasm (entry 1, `i32.const` 1, `local.get` 1, `i64.store` 1, two `i32.const`,
//! two `call`s) + 900 (`msg_reply_data_append` of 8 bytes) + 500 (`msg_reply`) after the reading.
//! So the whole-message count of a query is `perf + OUT` and of an update `perf + OUT + 1000 ×
//! dirty heap pages` (`$out`'s store dirties page 0).

use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};

/// `$out(performance_counter(0))`: 11 in the current block, 200 for the call.
const TAIL: &str = "(call $out (call $perf (i32.const 0)))";
/// What `$out` costs after the reading (see the module docs).
const OUT: u64 = 16 + 500 + 50 * 8 + 500;
/// `$out` in a memory64 module: its `i64.store` costs 2 and its constants are `i64.const`.
const OUT64: u64 = 17 + 500 + 50 * 8 + 500;
/// The replica's `dirty_page_overhead` on an application subnet, per 4 KiB heap page.
const DIRTY_PAGE: u64 = 1000;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Query,
    Update,
}

struct Case {
    name: &'static str,
    wat: String,
    kind: Kind,
    arg: Vec<u8>,
    /// The value `performance_counter(0)` returns (the reply's last 8 bytes).
    perf: u64,
    /// The replica's count for the whole message.
    whole: u64,
}

/// A 32-bit module: the ic0 imports the cases use, one page of memory, `$out`, module items
/// `items`, and the method `t` (`canister_query t` or `canister_update t`) with `body`.
fn module(kind: Kind, items: &str, body: &str) -> String {
    let export = match kind {
        Kind::Query => "canister_query t",
        Kind::Update => "canister_update t",
    };
    format!(
        r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (import "ic0" "time" (func $time (result i64)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "msg_caller_size" (func $caller_size (result i32)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (global $len100 (mut i32) (i32.const 100))
  (global $five (mut i32) (i32.const 5))
  (global $three (mut i32) (i32.const 3))
  (global $two (mut i32) (i32.const 2))
  {items}
  (func $out (param $v i64)
    (i64.store (i32.const 0) (local.get $v))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
  (func (export "{export}")
    {body}))"#
    )
}

fn query(name: &'static str, items: &str, body: &str, perf: u64) -> Case {
    Case {
        name,
        wat: module(Kind::Query, items, body),
        kind: Kind::Query,
        arg: Vec::new(),
        perf,
        whole: perf + OUT,
    }
}

/// Items of the table cases: a table with `$f` at index 0, a passive and a declared segment.
const TABLE_ITEMS: &str = r#"
  (type $v (func))
  (table $t 4 funcref)
  (func $f)
  (elem (table $t) (i32.const 0) func $f)
  (elem $e func $f $f)
  (elem declare func $f)
  (func $tc (return_call $f))
  (func $tci (return_call_indirect $t (type $v) (i32.const 0)))"#;

fn cases() -> Vec<Case> {
    let t = TAIL;
    let mut c = vec![
        // ----- straight-line code and function entry -----
        // entry 1 + TAIL 11 + performance_counter 200.
        query("empty body", "", t, 1 + 11 + 200),
        // entry 1 + i64.const 1 + i64.const 1 + i64.add 1 + drop 1 + TAIL 11 + 200.
        query(
            "straight line",
            "",
            &format!("(drop (i64.add (i64.const 1) (i64.const 2))) {t}"),
            1 + 4 + 11 + 200,
        ),
        // caller: call 5; callee entry 1 (an empty function still costs 1).
        query(
            "call of an empty function",
            "(func $e)",
            &format!("(call $e) {t}"),
            1 + 5 + 11 + 200 + 1,
        ),
        // caller: call 5 + drop 1; callee: entry 1 + i32.const 1.
        query(
            "call of a function with a result",
            "(func $k (result i32) (i32.const 7))",
            &format!("(drop (call $k)) {t}"),
            1 + 6 + 11 + 200 + 2,
        ),
        // caller: call 5; $a: 1 + call 5; $b: 1 + call 5; $c: 1.
        query(
            "nested calls",
            "(func $c) (func $b (call $c)) (func $a (call $b))",
            &format!("(call $a) {t}"),
            1 + 5 + 11 + 200 + 6 + 6 + 1,
        ),
        // $r(n): entry block local.get 1 + if 2 = 1 + 3; then-block local.get, i32.const,
        // i32.sub 3 + call 5 = 8 for n > 0. r(3), r(2), r(1): 3 × 12, r(0): 4. Caller:
        // i32.const 1 + call 5.
        query(
            "recursion",
            "(func $r (param i32) (if (local.get 0) (then (call $r (i32.sub (local.get 0) (i32.const 1))))))",
            &format!("(call $r (i32.const 3)) {t}"),
            1 + 6 + 11 + 200 + 3 * 12 + 4,
        ),
        // ----- control flow -----
        // entry: i32.const 1 + if 2; then-block: i32.const, drop (the `else` ends it, 0);
        // after `end`: TAIL.
        query(
            "if/else, then arm",
            "",
            &format!(
                "(if (i32.const 1) (then (drop (i32.const 10))) \
                 (else (drop (i32.const 20)) (drop (i32.const 30)))) {t}"
            ),
            1 + 3 + 2 + 11 + 200,
        ),
        // As above, the else-block: 2 × (i32.const, drop) = 4.
        query(
            "if/else, else arm",
            "",
            &format!(
                "(if (i32.const 0) (then (drop (i32.const 10))) \
                 (else (drop (i32.const 20)) (drop (i32.const 30)))) {t}"
            ),
            1 + 3 + 4 + 11 + 200,
        ),
        query(
            "if without else, taken",
            "",
            &format!("(if (i32.const 1) (then (drop (i32.const 5)))) {t}"),
            1 + 3 + 2 + 11 + 200,
        ),
        query(
            "if without else, not taken",
            "",
            &format!("(if (i32.const 0) (then (drop (i32.const 5)))) {t}"),
            1 + 3 + 11 + 200,
        ),
        // entry: block 0, i32.const 1, drop 1, br 2; the block after the br is dead; after
        // the block's `end`: TAIL.
        query(
            "br out of a block",
            "",
            &format!("(block $b (drop (i32.const 1)) (br $b) (drop (i32.const 2))) {t}"),
            1 + 4 + 11 + 200,
        ),
        // entry: i32.const 1 + br_if 2; not taken: the next block (i32.const, drop) runs too.
        query(
            "br_if taken",
            "",
            &format!("(block $b (br_if $b (i32.const 1)) (drop (i32.const 2))) {t}"),
            1 + 3 + 11 + 200,
        ),
        query(
            "br_if not taken",
            "",
            &format!("(block $b (br_if $b (i32.const 0)) (drop (i32.const 2))) {t}"),
            1 + 3 + 2 + 11 + 200,
        ),
        // entry: i32.const 1 + br_table 2. Target $b0 runs [i32.const, drop, br 2] = 4 then
        // jumps past $b2; target $b1 runs 3 × (i32.const, drop) = 6; the default ($b2) none.
        query(
            "br_table first target",
            "",
            &br_table_body(0),
            1 + 3 + 4 + 11 + 200,
        ),
        query(
            "br_table second target",
            "",
            &br_table_body(1),
            1 + 3 + 6 + 11 + 200,
        ),
        query("br_table default", "", &br_table_body(7), 1 + 3 + 11 + 200),
        // entry 1 (loop 0); loop body: local.get, i32.const, i32.add, local.set, local.get,
        // i32.const, i32.lt_u 7 + br_if 2 = 9, five times; after the loop: TAIL.
        query(
            "loop, 5 iterations",
            "",
            &format!(
                "(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) \
                 (br_if $l (i32.lt_u (local.get $i) (i32.const 5)))) {t}"
            ),
            1 + 5 * 9 + 11 + 200,
        ),
        // One block: i32.const, drop, TAIL 11, return 1 (charged before the reading); the
        // rest is dead.
        query(
            "return after the reading",
            "",
            &format!("(drop (i32.const 1)) {t} (return) (drop (i32.const 9))"),
            1 + 2 + 11 + 1 + 200,
        ),
        // callee: entry 1 + i32.const 1 + drop 1 + return 1; the nops after it are dead.
        query(
            "return in a callee",
            "(func $early (drop (i32.const 4)) (return) (nop) (nop))",
            &format!("(call $early) {t}"),
            1 + 5 + 11 + 200 + 4,
        ),
        // entry: i32.const 1 + if 2; the then-block (unreachable 1) never runs.
        query(
            "unreachable in a dead branch",
            "",
            &format!("(if (i32.const 0) (then unreachable)) {t}"),
            1 + 3 + 11 + 200,
        ),
        // three i32.const + select 1 + drop 1.
        query(
            "select",
            "",
            &format!("(drop (select (i32.const 1) (i32.const 2) (i32.const 0))) {t}"),
            1 + 5 + 11 + 200,
        ),
        // global.get 2 + i32.const 1 + i32.add 1 + global.set 2.
        query(
            "globals",
            "",
            &format!("(global.set $g (i32.add (global.get $g) (i32.const 1))) {t}"),
            1 + 6 + 11 + 200,
        ),
        // ----- floats and integer division -----
        // (2 consts + op + drop): f32.add 2 → 5, f64.mul 2 → 5, f64.sub 2 → 5.
        query(
            "float add/mul/sub",
            "",
            &format!(
                "(drop (f32.add (f32.const 1) (f32.const 2))) \
                 (drop (f64.mul (f64.const 1) (f64.const 2))) \
                 (drop (f64.sub (f64.const 1) (f64.const 2))) {t}"
            ),
            1 + 15 + 11 + 200,
        ),
        // f32.div 3 → 6, f64.div 5 → 8.
        query(
            "float div",
            "",
            &format!(
                "(drop (f32.div (f32.const 1) (f32.const 2))) \
                 (drop (f64.div (f64.const 1) (f64.const 2))) {t}"
            ),
            1 + 14 + 11 + 200,
        ),
        // (const + op + drop): f32.sqrt 5 → 7, f64.sqrt 8 → 10.
        query(
            "float sqrt",
            "",
            &format!("(drop (f32.sqrt (f32.const 4))) (drop (f64.sqrt (f64.const 4))) {t}"),
            1 + 17 + 11 + 200,
        ),
        // f32.min 18 → 21, f64.max 18 → 21.
        query(
            "float min/max",
            "",
            &format!(
                "(drop (f32.min (f32.const 1) (f32.const 2))) \
                 (drop (f64.max (f64.const 1) (f64.const 2))) {t}"
            ),
            1 + 42 + 11 + 200,
        ),
        // f32.copysign 2 → 5, f64.copysign 3 → 6.
        query(
            "float copysign",
            "",
            &format!(
                "(drop (f32.copysign (f32.const 1) (f32.const -2))) \
                 (drop (f64.copysign (f64.const 1) (f64.const -2))) {t}"
            ),
            1 + 11 + 11 + 200,
        ),
        // f32.lt 3 → 6, f64.eq 3 → 6.
        query(
            "float compare",
            "",
            &format!(
                "(drop (f32.lt (f32.const 1) (f32.const 2))) \
                 (drop (f64.eq (f64.const 1) (f64.const 2))) {t}"
            ),
            1 + 12 + 11 + 200,
        ),
        // f64.floor 2 → 4, f32.nearest 2 → 4, f32.neg 1 → 3, f64.abs 1 → 3.
        query(
            "float rounding, neg, abs",
            "",
            &format!(
                "(drop (f64.floor (f64.const 1.5))) (drop (f32.nearest (f32.const 1.5))) \
                 (drop (f32.neg (f32.const 1))) (drop (f64.abs (f64.const -1))) {t}"
            ),
            1 + 14 + 11 + 200,
        ),
        // f32.convert_i32_s 3 → 5, f64.convert_i64_u 16 → 18.
        query(
            "int to float conversions",
            "",
            &format!(
                "(drop (f32.convert_i32_s (i32.const 1))) \
                 (drop (f64.convert_i64_u (i64.const 1))) {t}"
            ),
            1 + 23 + 11 + 200,
        ),
        // i32.trunc_f32_s 20 → 22, i64.trunc_f64_u 20 → 22.
        query(
            "float to int trunc",
            "",
            &format!(
                "(drop (i32.trunc_f32_s (f32.const 1.5))) \
                 (drop (i64.trunc_f64_u (f64.const 1.5))) {t}"
            ),
            1 + 44 + 11 + 200,
        ),
        // i32.trunc_sat_f64_u 20 → 22, i64.trunc_sat_f32_s 20 → 22.
        query(
            "float to int trunc_sat",
            "",
            &format!(
                "(drop (i32.trunc_sat_f64_u (f64.const 1.5))) \
                 (drop (i64.trunc_sat_f32_s (f32.const 1.5))) {t}"
            ),
            1 + 44 + 11 + 200,
        ),
        // f64.promote_f32 1 → 3, f32.demote_f64 1 → 3, i32.reinterpret_f32 1 → 3.
        query(
            "promote, demote, reinterpret",
            "",
            &format!(
                "(drop (f64.promote_f32 (f32.const 1))) (drop (f32.demote_f64 (f64.const 1))) \
                 (drop (i32.reinterpret_f32 (f32.const 1))) {t}"
            ),
            1 + 9 + 11 + 200,
        ),
        // i32.div_s 10 → 13, i64.rem_u 10 → 13.
        query(
            "integer div/rem",
            "",
            &format!(
                "(drop (i32.div_s (i32.const 7) (i32.const 2))) \
                 (drop (i64.rem_u (i64.const 7) (i64.const 2))) {t}"
            ),
            1 + 26 + 11 + 200,
        ),
        // ----- memory -----
        // memory.size 20 + drop 1.
        query(
            "memory.size",
            "",
            &format!("(drop (memory.size)) {t}"),
            1 + 21 + 11 + 200,
        ),
        // i32.const 1 + memory.grow 300 + drop 1 (the injected try_grow_wasm_memory charges
        // nothing).
        query(
            "memory.grow",
            "",
            &format!("(drop (memory.grow (i32.const 1))) {t}"),
            1 + 302 + 11 + 200,
        ),
        // static: 2 × i32.const + global.get 2 + memory.fill 100 = 104; dynamic: 100 bytes.
        query(
            "memory.fill of a run-time length",
            "",
            &format!("(memory.fill (i32.const 64) (i32.const 7) (global.get $len100)) {t}"),
            1 + 104 + 11 + 200 + 100,
        ),
        // static: 2 × i32.const + global.get 2 + memory.copy 100; dynamic: 100 bytes.
        query(
            "memory.copy of a run-time length",
            "",
            &format!("(memory.copy (i32.const 200) (i32.const 64) (global.get $len100)) {t}"),
            1 + 104 + 11 + 200 + 100,
        ),
        // static: 2 × i32.const + global.get 2 + memory.init 100; dynamic: 5 bytes.
        query(
            "memory.init of a run-time length",
            r#"(data $d "0123456789")"#,
            &format!("(memory.init $d (i32.const 64) (i32.const 2) (global.get $five)) {t}"),
            1 + 104 + 11 + 200 + 5,
        ),
        // data.drop 300.
        query(
            "data.drop",
            r#"(data $d "0123456789")"#,
            &format!("(data.drop $d) {t}"),
            1 + 300 + 11 + 200,
        ),
        // ----- tables and references -----
        // table.size 100 + drop 1.
        query(
            "table.size",
            TABLE_ITEMS,
            &format!("(drop (table.size $t)) {t}"),
            1 + 101 + 11 + 200,
        ),
        // 2 × i32.const + table.get 5 + table.set 5.
        query(
            "table.get and table.set",
            TABLE_ITEMS,
            &format!("(table.set $t (i32.const 1) (table.get $t (i32.const 0))) {t}"),
            1 + 12 + 11 + 200,
        ),
        // ref.null 1 + i32.const 1 + table.grow 300 + drop 1.
        query(
            "table.grow",
            TABLE_ITEMS,
            &format!("(drop (table.grow $t (ref.null func) (i32.const 1))) {t}"),
            1 + 303 + 11 + 200,
        ),
        // static: i32.const 1 + ref.null 1 + global.get 2 + table.fill 100; dynamic: 3.
        query(
            "table.fill of a run-time length",
            TABLE_ITEMS,
            &format!("(table.fill $t (i32.const 1) (ref.null func) (global.get $three)) {t}"),
            1 + 104 + 11 + 200 + 3,
        ),
        // static: 2 × i32.const + global.get 2 + table.copy 100; dynamic: 2.
        query(
            "table.copy of a run-time length",
            TABLE_ITEMS,
            &format!("(table.copy $t $t (i32.const 1) (i32.const 0) (global.get $two)) {t}"),
            1 + 104 + 11 + 200 + 2,
        ),
        // static: 2 × i32.const + global.get 2 + table.init 100; dynamic: 2.
        query(
            "table.init of a run-time length",
            TABLE_ITEMS,
            &format!("(table.init $t $e (i32.const 1) (i32.const 0) (global.get $two)) {t}"),
            1 + 104 + 11 + 200 + 2,
        ),
        // elem.drop 300.
        query(
            "elem.drop",
            TABLE_ITEMS,
            &format!("(elem.drop $e) {t}"),
            1 + 300 + 11 + 200,
        ),
        // ref.func 130 + drop 1.
        query(
            "ref.func",
            TABLE_ITEMS,
            &format!("(drop (ref.func $f)) {t}"),
            1 + 131 + 11 + 200,
        ),
        // ref.null 1 + ref.is_null 5 + drop 1.
        query(
            "ref.null and ref.is_null",
            TABLE_ITEMS,
            &format!("(drop (ref.is_null (ref.null func))) {t}"),
            1 + 7 + 11 + 200,
        ),
        // i32.const 1 + call_indirect 10; $f: 1.
        query(
            "call_indirect",
            TABLE_ITEMS,
            &format!("(call_indirect $t (type $v) (i32.const 0)) {t}"),
            1 + 11 + 11 + 200 + 1,
        ),
        // call 5; $tc: entry 1 + return_call 3; $f: 1.
        query(
            "return_call",
            TABLE_ITEMS,
            &format!("(call $tc) {t}"),
            1 + 5 + 11 + 200 + 4 + 1,
        ),
        // call 5; $tci: entry 1 + i32.const 1 + return_call_indirect 60; $f: 1.
        query(
            "return_call_indirect",
            TABLE_ITEMS,
            &format!("(call $tci) {t}"),
            1 + 5 + 11 + 200 + 62 + 1,
        ),
        // ----- SIMD -----
        // (operands v128.const 1 each + op + drop 1): i64x2.mul 4 → 7, f64x2.sqrt 14 → 16,
        // i8x16.popcnt 3 → 5, i8x16.shuffle 3 → 6.
        query(
            "simd with non-1 costs",
            "",
            &format!(
                "(drop (i64x2.mul (v128.const i64x2 1 2) (v128.const i64x2 3 4))) \
                 (drop (f64x2.sqrt (v128.const f64x2 1 4))) \
                 (drop (i8x16.popcnt (v128.const i64x2 7 7))) \
                 (drop (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 \
                   (v128.const i64x2 1 2) (v128.const i64x2 3 4))) {t}"
            ),
            1 + 34 + 11 + 200,
        ),
        // ----- performance_counter -----
        // One block: local.set of the reading (i32.const, call, local.set 7), an i64.add
        // (4), then local.get + call $out (6): the reading includes all 18 and its own 200.
        query(
            "performance_counter mid-block includes the rest of the block",
            "",
            "(local $a i64) (local.set $a (call $perf (i32.const 0))) \
             (drop (i64.add (i64.const 1) (i64.const 2))) (call $out (local.get $a))",
            1 + 7 + 4 + 6 + 200,
        ),
        // The type-1 counter (call context) of a message that is not a callback equals type 0.
        query(
            "performance_counter(1)",
            "",
            "(call $out (call $perf (i32.const 1)))",
            1 + 11 + 200,
        ),
        // ----- ic0 overheads -----
        // i32.const ×2 + call 5 = 7; msg_reply_data_append of 100 bytes: 500 + 50 × 100.
        query(
            "msg_reply_data_append of 100 bytes",
            "",
            &format!("(call $append (i32.const 64) (i32.const 100)) {t}"),
            1 + 7 + 11 + 200 + 500 + 5000,
        ),
        // call 5 + drop 1; msg_arg_data_size 500 (arg of 3 bytes, nothing per byte).
        Case {
            arg: vec![1, 2, 3],
            ..query(
                "msg_arg_data_size",
                "",
                &format!("(drop (call $arg_size)) {t}"),
                1 + 6 + 11 + 200 + 500,
            )
        },
        // i32.const ×3 + call 5 = 8; msg_arg_data_copy of 10 bytes: 500 + 10.
        Case {
            arg: vec![9; 10],
            ..query(
                "msg_arg_data_copy of 10 bytes",
                "",
                &format!("(call $arg_copy (i32.const 64) (i32.const 0) (i32.const 10)) {t}"),
                1 + 8 + 11 + 200 + 510,
            )
        },
        // static: 2 × i32.const + call 5 + memory.fill 100 = 107; msg_arg_data_size 500;
        // dynamic: the argument's 37 bytes.
        Case {
            arg: vec![0; 37],
            ..query(
                "memory.fill of the argument's length",
                "",
                &format!("(memory.fill (i32.const 64) (i32.const 7) (call $arg_size)) {t}"),
                1 + 107 + 11 + 200 + 500 + 37,
            )
        },
        // Three calls with a drop (6 each) and 500 each: time, canister_self_size,
        // msg_caller_size.
        query(
            "fixed 500 overheads",
            "",
            &format!("(drop (call $time)) (drop (call $self_size)) (drop (call $caller_size)) {t}"),
            1 + 18 + 11 + 200 + 1500,
        ),
        // i32.const ×2 + call 5; debug_print of 5 bytes: 100 + 5 + 2 × 5 + 50 × 5 (debug
        // printing on, as PocketIC runs it: rate limiting of debug prints is disabled there, so
        // the replica charges the printed `len` too; on mainnet's rate-limited application
        // subnets the `+ 5` is not charged).
        query(
            "debug_print of 5 bytes",
            r#"(data (i32.const 64) "hello")"#,
            &format!("(call $print (i32.const 64) (i32.const 5)) {t}"),
            1 + 7 + 11 + 200 + 100 + 5 + 10 + 250,
        ),
        // ----- replica tests, same shapes in our own words -----
        // rs/embedders/tests/instrumentation.rs `metering_plain`: global.get, n × (i64.const,
        // i64.add), global.set is `1 + cost_a(n)` with cost_a(n) = 2n + 4; here n = 7.
        query(
            "replica metering_plain shape",
            "(global $acc (mut i64) (i64.const 0))",
            &format!(
                "(global.set $acc (i64.add (i64.add (i64.add (i64.add (i64.add (i64.add \
                 (i64.add (global.get $acc) (i64.const 1)) (i64.const 1)) (i64.const 1)) \
                 (i64.const 1)) (i64.const 1)) (i64.const 1)) (i64.const 1))) {t}"
            ),
            1 + (2 * 7 + 4) + 11 + 200,
        ),
        // instrumentation.rs `metering_block`: `1 + cost_a(p2a) + cost_a(p1) + cost_a(p3) +
        // cbr` (the code after the br inside the outer block is skipped); here p1 = 3,
        // p2a = 4, p3 = 2 and TAIL joins p3's block.
        query(
            "replica metering_block shape",
            "(global $acc (mut i64) (i64.const 0))",
            &format!(
                "{} (block $b1 {} (block $b2 (br $b1)) {}) {} {t}",
                add_to_acc(3),
                add_to_acc(4),
                add_to_acc(5),
                add_to_acc(2)
            ),
            1 + (2 * 4 + 4) + (2 * 3 + 4) + (2 * 2 + 4) + 2 + 11 + 200,
        ),
        // instrumentation.rs `metering_if`: `1 + cost_a(p1) + cost_a(else) + cost_a(p4) + cc
        // + cif` for a false condition; here p1 = 2, then = 3, else = 4, p4 = 1.
        query(
            "replica metering_if shape",
            "(global $acc (mut i64) (i64.const 0))",
            &format!(
                "{} (if (i32.const 0) (then {}) (else {})) {} {t}",
                add_to_acc(2),
                add_to_acc(3),
                add_to_acc(4),
                add_to_acc(1)
            ),
            1 + (2 * 2 + 4) + 1 + 2 + (2 * 4 + 4) + (2 + 4) + 11 + 200,
        ),
        // instrumentation.rs `metering_loop`: `1 + cost_a(p1) + c_loop × iterations +
        // cost_a(p3) + cost_a(p4)`, c_loop = cost_a(p2) + 9 (counter increment and br_if);
        // here p1 = 1, p2 = 2, 3 iterations, p3 = 1 (after the br_if, once), p4 = 2.
        query(
            "replica metering_loop shape",
            "(global $acc (mut i64) (i64.const 0))",
            &format!(
                "(local $i i32) {} (loop $l {} (local.set $i (i32.add (local.get $i) \
                 (i32.const 1))) (br_if $l (i32.lt_s (local.get $i) (i32.const 3))) {}) {} {t}",
                add_to_acc(1),
                add_to_acc(2),
                add_to_acc(1),
                add_to_acc(2)
            ),
            1 + (2 + 4) + 3 * ((2 * 2 + 4) + 9) + (2 + 4) + (2 * 2 + 4) + 11 + 200,
        ),
        // snapshots/instrumentation__control_flow.snap, `countTo`: a loop calling an ic0
        // function; here the loop body is call 5, drop 1, local.get, i32.const, i32.add,
        // local.set, local.get, i32.const, i32.ne 7, br_if 2 = 15 and msg_arg_data_size 500,
        // three times.
        query(
            "replica control_flow countTo shape",
            "",
            &format!(
                "(local $c i32) (loop $l (drop (call $arg_size)) \
                 (local.set $c (i32.add (local.get $c) (i32.const 1))) \
                 (br_if $l (i32.ne (local.get $c) (i32.const 3)))) {t}"
            ),
            1 + 3 * (15 + 500) + 11 + 200,
        ),
        // snapshots/instrumentation__recursive.snap and zero_cost_ops.snap (a factorial):
        // entry block 1 + local.get, i64.const, i64.lt_s 3 + if 2 = 6; then-block i64.const 1;
        // else-block local.get, local.get, i64.const, i64.sub 4 + call 5 + i64.mul 1 = 10.
        // fac(3) runs 3 else-blocks and 1 then-block. Caller: i64.const, call, drop = 7.
        query(
            "replica factorial shape",
            "(func $fac (param i64) (result i64) (if (result i64) (i64.lt_s (local.get 0) \
             (i64.const 1)) (then (i64.const 1)) (else (i64.mul (local.get 0) (call $fac \
             (i64.sub (local.get 0) (i64.const 1)))))))",
            &format!("(drop (call $fac (i64.const 3))) {t}"),
            1 + 7 + 11 + 200 + 4 * 6 + 3 * 10 + 1,
        ),
    ];

    // ----- updates: the dirty heap pages charged after the message -----
    // Nothing but TAIL; `$out`'s store dirties heap page 0.
    c.push(Case {
        name: "update: one dirty heap page",
        wat: module(Kind::Update, "", t),
        kind: Kind::Update,
        arg: Vec::new(),
        perf: 1 + 11 + 200,
        whole: 1 + 11 + 200 + OUT + DIRTY_PAGE,
    });
    // instrumentation.rs `charge_for_heap_pages` (the version that charges
    // `dirty_page_overhead` per 4 KiB page after the run): here three stores (i32.const,
    // i64.const, i64.store: 3 each) to pages 1, 2 and 15, plus page 0 of `$out`.
    c.push(Case {
        name: "update: four dirty heap pages",
        wat: module(
            Kind::Update,
            "",
            &format!(
                "(i64.store (i32.const 4096) (i64.const 1)) (i64.store (i32.const 8192) \
                 (i64.const 2)) (i64.store (i32.const 61440) (i64.const 3)) {t}"
            ),
        ),
        kind: Kind::Update,
        arg: Vec::new(),
        perf: 1 + 9 + 11 + 200,
        whole: 1 + 9 + 11 + 200 + OUT + 4 * DIRTY_PAGE,
    });
    // instrumentation.rs `charge_for_dirty_stable64_native`: `csg + csw × 2 + csr + cd × 3`
    // for two dirtied stable pages and one heap page. Here: stable64_grow (i64.const, call,
    // drop = 7; 100), stable64_write of 8 bytes to a fresh stable page (3 × i64.const + call
    // = 8; 20 + 8 + 1000 for the page), stable64_read of 8 bytes into heap page 0 (8; 20 + 8).
    // Heap page 0 is dirty (the read and `$out`): 1000 after the run.
    c.push(Case {
        name: "update: stable64 grow/write/read",
        wat: module(
            Kind::Update,
            "",
            &format!(
                "(drop (call $sgrow (i64.const 1))) \
                 (call $swrite (i64.const 0) (i64.const 16) (i64.const 8)) \
                 (call $sread (i64.const 24) (i64.const 0) (i64.const 8)) {t}"
            ),
        ),
        kind: Kind::Update,
        arg: Vec::new(),
        perf: 1 + 7 + 8 + 8 + 11 + 200 + 100 + (20 + 8 + 1000) + (20 + 8),
        whole: 1 + 7 + 8 + 8 + 11 + 200 + 100 + (20 + 8 + 1000) + (20 + 8) + OUT + DIRTY_PAGE,
    });
    // Two readings in one block differ by exactly the second call's 200: the block (entry 1,
    // i32.const + call + local.set 7, i32.const + call + local.get + i64.sub + call 13) was
    // charged before the first.
    c.push(Case {
        name: "two readings in one block differ by 200",
        wat: module(
            Kind::Query,
            "",
            "(local $a i64) (local.set $a (call $perf (i32.const 0))) \
             (call $out (i64.sub (call $perf (i32.const 0)) (local.get $a)))",
        ),
        kind: Kind::Query,
        arg: Vec::new(),
        perf: 200,
        whole: 1 + 7 + 13 + 200 + 200 + OUT,
    });
    // The replica's `metering_wasm64_load_store_canister`: loads and stores cost 2 in a
    // memory64 module. Here i64.const ×2 + i64.load 2 + i64.store 2 = 6, and `$out` costs
    // OUT64.
    c.push(Case {
        name: "memory64 load and store cost 2",
        wat: format!(
            r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i64 i64)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
  (memory i64 1)
  (func $out (param $v i64)
    (i64.store (i64.const 0) (local.get $v))
    (call $append (i64.const 0) (i64.const 8))
    (call $reply))
  (func (export "canister_query t")
    (i64.store (i64.const 8) (i64.load (i64.const 16))) {t}))"#
        ),
        kind: Kind::Query,
        arg: Vec::new(),
        perf: 1 + 6 + 11 + 200,
        whole: 1 + 6 + 11 + 200 + OUT64,
    });
    c
}

/// `n` additions to the i64 global `$acc`: global.get 2, n × (i64.const 1, i64.add 1),
/// global.set 2 — the replica test's `cost_a(n)` = 2n + 4.
fn add_to_acc(n: usize) -> String {
    let mut s = "(global.get $acc)".to_string();
    for _ in 0..n {
        s = format!("(i64.add {s} (i64.const 1))");
    }
    format!("(global.set $acc {s})")
}

/// Three nested blocks and a `br_table` on `k`: target 0 leaves $b0 and runs 4 instructions'
/// worth (i32.const, drop, br), target 1 leaves $b1 and runs 6 (3 × i32.const, drop), any other
/// leaves $b2.
fn br_table_body(k: i32) -> String {
    format!(
        "(block $b2 (block $b1 (block $b0 (br_table $b0 $b1 $b2 (i32.const {k}))) \
         (drop (i32.const 1)) (br $b2)) \
         (drop (i32.const 2)) (drop (i32.const 3)) (drop (i32.const 4))) {TAIL}"
    )
}

fn run(case: &Case) -> Result<(u64, u64), String> {
    let wasm = wat::parse_str(&case.wat).map_err(|e| format!("WAT: {e}"))?;
    let controller = candid::Principal::anonymous();
    let mut canister = Canister::create(wasm, CanisterConfig::default(), controller)
        .map_err(|e| format!("install: {e}"))?;
    let input = MessageInput::default();
    let outcome = match case.kind {
        Kind::Query => canister.query("t", &case.arg, &input),
        Kind::Update => canister.update("t", &case.arg, &input),
    }
    .map_err(|e| format!("call: {e}"))?;
    let reply = outcome.result.map_err(|r| format!("reject: {r:?}"))?;
    let last: [u8; 8] = reply[reply.len() - 8..].try_into().unwrap();
    Ok((u64::from_le_bytes(last), outcome.instructions))
}

/// Runs every case and fails listing each mismatch (`expected` is the replica's number).
#[test]
fn instruction_counts_equal_the_replicas() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        match run(case) {
            Ok((perf, whole)) => {
                if perf != case.perf {
                    failures.push(format!(
                        "{}: performance_counter expected {} got {perf} ({:+})",
                        case.name,
                        case.perf,
                        perf as i64 - case.perf as i64
                    ));
                }
                if whole != case.whole {
                    failures.push(format!(
                        "{}: whole message expected {} got {whole} ({:+})",
                        case.name,
                        case.whole,
                        whole as i64 - case.whole as i64
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches with the replica in {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
