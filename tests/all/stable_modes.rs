//! Native stable memory (injected memory64 + injected functions) against the system-API
//! baseline: the same operations give the same replies, the same trap reasons, the same memory
//! bytes and the same instruction counts, and both follow the IC interface spec.

use canister_vm::runtime::{Canister, CanisterConfig, MessageInput, Outcome};
use canister_vm::state::StableMode;

/// `canister_update op` reads a raw 32-byte argument (op, a, b, c as little-endian i64), runs
/// one stable operation and replies with an i64 result. Reads land at heap address `a` (or are
/// echoed back from heap 64.. for the `*_echo` ops). Heap: 2 pages.
const OPS: &str = r#"
(module
  (import "ic0" "msg_arg_data_copy" (func $arg (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable_size" (func $size32 (result i32)))
  (import "ic0" "stable_grow" (func $grow32 (param i32) (result i32)))
  (import "ic0" "stable_read" (func $read32 (param i32 i32 i32)))
  (import "ic0" "stable_write" (func $write32 (param i32 i32 i32)))
  (import "ic0" "stable64_size" (func $size64 (result i64)))
  (import "ic0" "stable64_grow" (func $grow64 (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $read64 (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $write64 (param i64 i64 i64)))
  (memory 2)
  (func $a (result i64) (i64.load (i32.const 8)))
  (func $b (result i64) (i64.load (i32.const 16)))
  (func $c (result i64) (i64.load (i32.const 24)))
  (func (export "canister_update op") (local $r i64)
    (call $arg (i32.const 0) (i32.const 0) (i32.const 32))
    (block $done
      (block $b13 (block $b12 (block $b11 (block $b10 (block $b9 (block $b8 (block $b7
      (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
        (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b9 $b10 $b11 $b12 $b13 $done
          (i32.wrap_i64 (i64.load (i32.const 0)))))
      (local.set $r (call $size64)) (br $done))
      (local.set $r (call $grow64 (call $a))) (br $done))
      (call $read64 (call $a) (call $b) (call $c)) (br $done))
      (call $write64 (call $a) (call $b) (call $c)) (br $done))
      (local.set $r (i64.extend_i32_u (call $size32))) (br $done))
      (local.set $r (i64.extend_i32_s (call $grow32 (i32.wrap_i64 (call $a))))) (br $done))
      (call $read32 (i32.wrap_i64 (call $a)) (i32.wrap_i64 (call $b)) (i32.wrap_i64 (call $c))) (br $done))
      (call $write32 (i32.wrap_i64 (call $a)) (i32.wrap_i64 (call $b)) (i32.wrap_i64 (call $c))) (br $done))
      ;; constant-length reads/writes (the inline fast path in native mode)
      (call $read64 (call $a) (call $b) (i64.const 8)) (br $done))
      (call $write64 (call $a) (call $b) (i64.const 8)) (br $done))
      (call $read64 (call $a) (call $b) (i64.const 1)) (br $done))
      (call $write64 (call $a) (call $b) (i64.const 2)) (br $done))
      (call $read64 (call $a) (call $b) (i64.const 4)) (br $done))
      (call $write64 (call $a) (call $b) (i64.const 4)) (br $done))
    (i64.store (i32.const 32) (local.get $r))
    (call $append (i32.const 32) (i32.const 8))
    (call $reply))
  (func (export "canister_update fill")
    ;; heap[4096..4096+256] = 0..255 pattern, as source data for writes
    (local $i i32)
    (loop $l
      (i32.store8 (i32.add (i32.const 4096) (local.get $i)) (i32.add (local.get $i) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 256))))
    (call $reply))
)
"#;

const HEAP_END: i64 = 2 * 65536;
const PAGE: i64 = 65536;

#[derive(Debug, Clone, Copy)]
#[repr(i64)]
enum Op {
    Size64 = 0,
    Grow64,
    Read64,
    Write64,
    Size32,
    Grow32,
    Read32,
    Write32,
    Read64Const8,
    Write64Const8,
    Read64Const1,
    Write64Const2,
    Read64Const4,
    Write64Const4,
}

/// The observable result of one step, with trap reasons reduced to their named category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Value(i64),
    Trap(&'static str),
}

const REASONS: [&str; 4] = [
    "stable memory out of bounds",
    "heap out of bounds",
    "stable memory is larger than 4 GiB",
    "instructions for single message execution.",
];

fn classify(outcome: &Outcome) -> Step {
    match &outcome.result {
        Ok(bytes) => Step::Value(i64::from_le_bytes(bytes[..8].try_into().unwrap())),
        Err(reject) => Step::Trap(
            REASONS
                .iter()
                .find(|r| reject.message.contains(*r))
                .unwrap_or_else(|| panic!("unnamed trap reason: {}", reject.message)),
        ),
    }
}

fn arg(op: Op, a: i64, b: i64, c: i64) -> Vec<u8> {
    [op as i64, a, b, c]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

struct Run {
    steps: Vec<Step>,
    instructions: Vec<u64>,
    /// SHA-256 of the heap and of stable memory (stable memory may be GiBs).
    heap: String,
    stable: String,
}

fn run(mode: StableMode, ops: &[(Op, i64, i64, i64)]) -> Run {
    let wasm = wat::parse_str(OPS).unwrap();
    let config = CanisterConfig::default().stable_mode(mode);
    let mut c = Canister::create(wasm, config, candid::Principal::from_slice(&[4])).unwrap();
    let input = MessageInput::default();
    c.init(&[], &input).unwrap();
    c.update("fill", &[], &input).unwrap().result.unwrap();
    let mut steps = Vec::new();
    let mut instructions = Vec::new();
    for &(op, a, b, len) in ops {
        let out = c.update("op", &arg(op, a, b, len), &input).unwrap();
        instructions.push(out.instructions);
        steps.push(classify(&out));
    }
    Run {
        steps,
        instructions,
        heap: canister_vm::state::sha256_hex(c.heap()),
        stable: canister_vm::state::sha256_hex(c.stable()),
    }
}

/// Runs `ops` in both modes and asserts they agree; returns the steps.
fn both(ops: &[(Op, i64, i64, i64)]) -> Vec<Step> {
    let native = run(StableMode::Native, ops);
    let syscall = run(StableMode::Syscall, ops);
    for (i, (n, s)) in native.steps.iter().zip(&syscall.steps).enumerate() {
        assert_eq!(n, s, "step {i} {:?}: native vs syscall", ops[i]);
    }
    assert_eq!(
        native.instructions, syscall.instructions,
        "instruction counts differ"
    );
    assert_eq!(native.heap, syscall.heap, "heap bytes differ");
    assert_eq!(native.stable, syscall.stable, "stable bytes differ");
    native.steps
}

use Op::*;
use Step::{Trap, Value};

const SOOB: Step = Trap("stable memory out of bounds");
const HOOB: Step = Trap("heap out of bounds");

#[test]
fn sizes_and_growth() {
    let steps = both(&[
        (Size64, 0, 0, 0),
        (Size32, 0, 0, 0),
        (Grow64, 3, 0, 0),
        (Grow32, 2, 0, 0),
        (Size64, 0, 0, 0),
        (Grow64, -1, 0, 0),        // u64::MAX pages
        (Grow64, 6_553_600, 0, 0), // past the 400 GiB limit
        (Grow32, 65_532, 0, 0),    // new size 65537 pages > 4 GiB
        (Grow32, -1, 0, 0),        // u32::MAX pages
        (Size32, 0, 0, 0),
        (Grow64, 0, 0, 0),
    ]);
    assert_eq!(
        steps,
        [
            Value(0),
            Value(0),
            Value(0),
            Value(3),
            Value(5),
            Value(-1),
            Value(-1),
            Value(-1),
            Value(-1),
            Value(5),
            Value(5)
        ]
    );
}

#[test]
fn reads_and_writes_at_the_edges() {
    let end = PAGE;
    let steps = both(&[
        // Zero length: 64-bit calls and the 32-bit read return before any check, even on
        // an empty stable memory and wild addresses.
        (Read64, 1 << 40, 1 << 50, 0),
        (Write64, 1 << 50, 1 << 40, 0),
        (Read32, 0xFFFF_FFF0, 0xFFFF_FFF0, 0),
        (Write32, 70_000, 0, 0), // the 32-bit write checks bounds first
        (Grow64, 1, 0, 0),
        (Write32, end, 0, 0), // exactly at the end: fine
        (Write64, end - 8, 4096, 8),
        (Read64, 200, end - 8, 8),
        (Read64, 200, end - 7, 8),   // one past the end
        (Write64, end - 7, 4096, 8), // one past the end
        (Read64, 0, -1, 2),          // offset + size overflows
        (Write64, -2, 4096, 4),
        (Read32, 300, end - 4, 4),
        (Write32, end - 3, 4096, 4),
        (Read64, HEAP_END - 4, 0, 8), // heap out of bounds
        (Write64, 0, HEAP_END - 4, 8),
        (Read64, 1 << 33, 0, 8), // heap address beyond 4 GiB
        (Read32, HEAP_END - 4, 0, 8),
        (Write32, 0, HEAP_END - 1, 2),
        (Read64, HEAP_END + 10, end + 10, 8), // both out of bounds: stable is checked first
    ]);
    let expected = [
        Value(0),
        Value(0),
        Value(0),
        SOOB,
        Value(0),
        Value(0),
        Value(0),
        Value(0),
        SOOB,
        SOOB,
        SOOB,
        SOOB,
        Value(0),
        SOOB,
        HOOB,
        HOOB,
        HOOB,
        HOOB,
        HOOB,
        SOOB,
    ];
    assert_eq!(steps, expected);
}

#[test]
fn constant_length_fast_paths_match_the_general_path() {
    let end = 2 * PAGE;
    let steps = both(&[
        (Read64Const8, 100, 0, 0), // empty stable memory
        (Grow64, 2, 0, 0),
        (Write64Const8, 0, 4096, 0),
        (Write64Const2, end - 2, 4100, 0),
        (Write64Const4, 77, 4104, 0),
        (Read64Const8, 400, 0, 0),
        (Read64Const1, 408, end - 1, 0),
        (Read64Const4, 412, 77, 0),
        (Read64Const8, 420, end - 8, 0),
        (Read64Const8, 420, end - 7, 0),    // stable out of bounds
        (Write64Const4, end - 3, 4096, 0),  // stable out of bounds
        (Read64Const8, 420, -4, 0),         // overflow
        (Read64Const8, HEAP_END - 7, 0, 0), // heap out of bounds
        (Write64Const8, 0, HEAP_END - 7, 0),
        (Read64Const8, 1 << 32, 0, 0),   // heap address beyond 4 GiB
        (Read64Const8, 1 << 32, end, 0), // both: stable first
    ]);
    assert_eq!(
        steps,
        [
            SOOB,
            Value(0),
            Value(0),
            Value(0),
            Value(0),
            Value(0),
            Value(0),
            Value(0),
            Value(0),
            SOOB,
            SOOB,
            SOOB,
            HOOB,
            HOOB,
            HOOB,
            SOOB
        ]
    );
}

/// Grows stable memory past 4 GiB, where the 32-bit API must trap. Needs several GiB of RAM
/// (stable memory is zero-filled memory in both modes, and each message snapshots it).
#[test]
fn the_32_bit_api_traps_above_4_gib_needs_several_gib_of_ram() {
    let big = Trap("stable memory is larger than 4 GiB");
    // Few messages: until delta checkpoints land, each message snapshots stable memory whole.
    let steps = both(&[(Grow64, 65_537, 0, 0), (Size32, 0, 0, 0), (Read32, 0, 0, 0)]);
    assert_eq!(steps, [Value(0), big, big]);
}
