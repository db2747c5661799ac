//! The IC's resource limits (issue 14, fault 4): every bomb of `../shared/repro/bombs.wat` and
//! `tablebomb.wat` ends in the replica's limit trap or reject (or a bounded success where the
//! replica succeeds), run through the CLI in a child process whose peak resident memory stays
//! below 256 MiB, and a message stopped by a limit leaves the committed state unchanged. The
//! charges of the byte-moving `ic0` functions follow the replica's table.

use std::path::Path;

use super::support::{cli, write_file};

/// The bomb canister of `../shared/repro/bombs.wat` (methods kept as they are there), plus
/// `appendn`, `rejectn` (a reply / reject of N bytes from a one-page heap) and `copyarg` (copies
/// its whole argument into the heap), for the charge and reject-size tests.
const BOMBS: &str = r#"
(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "stable64_size" (func $s64size (result i64)))
  (import "ic0" "stable64_grow" (func $s64grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $s64write (param i64 i64 i64)))
  (import "ic0" "msg_arg_data_size" (func $argsize (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $argcopy (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "DIDL\00\01\78")
  (data (i32.const 64) "DIDL\00\01\74")
  (func $reply_i64 (param $v i64)
    (i64.store (i32.const 71) (local.get $v))
    (call $append (i32.const 64) (i32.const 15))
    (call $reply))
  (func $reply_counter
    (i64.store (i32.const 23) (i64.load (i32.const 0)))
    (call $append (i32.const 16) (i32.const 15))
    (call $reply))
  (func (export "canister_update inc")
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (call $reply_counter))
  (func (export "canister_query read") (call $reply_counter))
  (func (export "canister_update growheap")
    (local $old i32)
    (local.set $old (memory.grow (i32.const 65535)))
    (if (i32.ge_s (local.get $old) (i32.const 0))
      (then (i32.store8 (i32.const -1) (i32.const 7))))
    (call $reply_i64 (i64.extend_i32_s (local.get $old))))
  (func (export "canister_update growmore")
    (call $reply_i64 (i64.extend_i32_s (memory.grow (i32.const 1)))))
  (func (export "canister_query heapsize")
    (call $reply_i64 (i64.extend_i32_u (memory.size))))
  (func $arg_i64 (result i64)
    (call $argcopy (i32.const 128) (i32.const 0) (call $argsize))
    (i64.load (i32.const 135)))
  (func (export "canister_update sgrow")
    (call $reply_i64 (call $s64grow (call $arg_i64))))
  (func (export "canister_update stouch")
    (local $sz i64)
    (local.set $sz (i64.mul (call $s64size) (i64.const 65536)))
    (call $s64write (i64.sub (local.get $sz) (i64.const 8)) (i64.const 0) (i64.const 8))
    (call $reply_i64 (local.get $sz)))
  (func (export "canister_query ssize")
    (call $reply_i64 (call $s64size)))
  (func (export "canister_update bigreply")
    (local $n i64)
    (local.set $n (call $arg_i64))
    (drop (memory.grow (i32.wrap_i64 (i64.add (i64.div_u (local.get $n) (i64.const 65536)) (i64.const 1)))))
    (call $append (i32.const 0) (i32.wrap_i64 (local.get $n)))
    (call $reply))
  (func (export "canister_query bigreplyq")
    (local $n i64)
    (local.set $n (call $arg_i64))
    (drop (memory.grow (i32.wrap_i64 (i64.add (i64.div_u (local.get $n) (i64.const 65536)) (i64.const 1)))))
    (call $append (i32.const 0) (i32.wrap_i64 (local.get $n)))
    (call $reply))
  (func (export "canister_update manyappend")
    (local $n i64)
    (local.set $n (call $arg_i64))
    (drop (memory.grow (i32.const 17)))
    (block $b (loop $l
      (br_if $b (i64.eqz (local.get $n)))
      (call $append (i32.const 0) (i32.const 1048576))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $l)))
    (call $reply))
  (func (export "canister_update appendn")
    (call $append (i32.const 0) (i32.wrap_i64 (call $arg_i64)))
    (call $reply))
  (func (export "canister_update rejectn")
    (local $n i64)
    (local.set $n (call $arg_i64))
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (drop (memory.grow (i32.wrap_i64 (i64.add (i64.div_u (local.get $n) (i64.const 65536)) (i64.const 1)))))
    (call $reject (i32.const 65536) (i32.wrap_i64 (local.get $n))))
  (func (export "canister_update copyarg")
    (call $argcopy (i32.const 1024) (i32.const 0) (call $argsize))
    (call $reply))
)
"#;

/// `tablebomb.wat`: `tgrow` grows a table with no maximum by N entries and replies the old size.
const TABLE_BOMB: &str = r#"
(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_arg_data_copy" (func $argcopy (param i32 i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $argsize (result i32)))
  (memory 1)
  (table 1 funcref)
  (data (i32.const 16) "DIDL\00\01\75")
  (func (export "canister_update tgrow")
    (call $argcopy (i32.const 64) (i32.const 0) (call $argsize))
    (i32.store (i32.const 23) (table.grow (ref.null func) (i32.load (i32.const 71))))
    (call $append (i32.const 16) (i32.const 11))
    (call $reply)))
"#;

/// The bound on a bomb's host: the issue's acceptance criterion.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const MAX_RSS: u64 = 256 << 20;

/// Installs `wat` into `dir` (stable mode `mode`).
fn install(tmp: &Path, dir: &Path, wat: &str, mode: &str) {
    let module = write_file(tmp, "module.wat", wat);
    cli(&[
        "install",
        module.to_str().unwrap(),
        "--state",
        dir.to_str().unwrap(),
        "--stable",
        mode,
    ])
    .ok();
}

/// Runs `canister-vm args...` in a fresh child and returns (exit status, its stderr); on Linux
/// fails the test if the child's peak resident memory reaches [`MAX_RSS`].
#[track_caller]
fn bounded(args: &[&str]) -> (i32, String) {
    #[cfg(target_os = "linux")]
    {
        let (code, out, rss) = super::checkpoints::cli_peak_rss_via_probe(args);
        eprintln!("{args:?}: peak resident memory {} MiB", rss >> 20);
        assert!(
            rss < MAX_RSS,
            "{args:?}: peak resident memory {} MiB (at most {} MiB allowed)\n{out}",
            rss >> 20,
            MAX_RSS >> 20
        );
        (code, out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let run = cli(args);
        (run.code, format!("{}{}", run.stdout, run.stderr))
    }
}

/// A digest of the committed heap and stable memory of `dir`.
fn state_hash(dir: &Path) -> String {
    // The committed memories: a rejected message still advances the clock, which the state hash
    // covers, so the memories are what must not change.
    let (heap, stable) = crate::support::memories(dir);
    format!(
        "heap {} stable {}",
        canister_vm::state::sha256_hex(&heap),
        canister_vm::state::sha256_hex(&stable)
    )
}

/// The reply of `call dir method arg` (must succeed).
fn reply(dir: &Path, method: &str, arg: &str) -> String {
    cli(&["call", dir.to_str().unwrap(), method, arg]).ok()
}

/// The instructions `call --stats` reports for `method(arg)`.
fn instructions(dir: &Path, method: &str, arg: &str) -> u64 {
    instructions_and_pages(dir, method, arg).0
}

/// The instructions and the dirty heap pages of an update call.
fn instructions_and_pages(dir: &Path, method: &str, arg: &str) -> (u64, u64) {
    let run = cli(&["call", "--stats", dir.to_str().unwrap(), method, arg]);
    let pages = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("dirty heap pages: "))
        .unwrap_or_else(|| panic!("no dirty page count in {run:#?}"))
        .trim()
        .parse()
        .unwrap();
    let instructions = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("instructions: "))
        .unwrap_or_else(|| panic!("no instruction count in {run:#?}"))
        .trim()
        .parse()
        .unwrap();
    (instructions, pages)
}

/// `stable64_grow` by 10 GiB is within the IC's stable memory limit and succeeds, as on the IC;
/// the grown memory stays lazy: growing, writing its last page and reading its size in later
/// processes keep the host far below 10 GiB resident (it was > 6 GiB in native mode).
#[test]
fn stable_growth_by_10_gib_stays_lazy() {
    let tmp = tempfile::tempdir().unwrap();
    for mode in ["native", "syscall"] {
        let dir = tmp.path().join(mode);
        install(tmp.path(), &dir, BOMBS, mode);
        let d = dir.to_str().unwrap();
        let pages = (10u64 << 30) / 65536;
        let (code, out) = bounded(&["call", d, "sgrow", &format!("({pages} : int64)")]);
        assert_eq!(code, 0, "{mode}: {out}");
        let (code, out) = bounded(&["call", "--stats", d, "stouch"]);
        assert_eq!(code, 0, "{mode}: {out}");
        assert!(out.contains("dirty stable pages: 1\n"), "{mode}: {out}");
        let (code, out) = bounded(&["call", d, "ssize", "--query"]);
        assert_eq!(code, 0, "{mode}: {out}");
        assert_eq!(reply(&dir, "ssize", "()"), "(163_840 : int64)", "{mode}");
    }
}

/// A canister that grew its heap to the 4 GiB maximum (allowed on the IC) does not make later
/// calls fault in 4 GiB; growing past 4 GiB fails with -1, as `memory.grow` does on the IC.
#[test]
fn a_4_gib_heap_stays_lazy_in_later_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("heap");
    install(tmp.path(), &dir, BOMBS, "native");
    let d = dir.to_str().unwrap();
    let (code, out) = bounded(&["call", d, "growheap"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = bounded(&["call", d, "read", "--query"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = bounded(&["call", d, "growmore"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(reply(&dir, "heapsize", "()"), "(65_536 : int64)");
    assert_eq!(reply(&dir, "growmore", "()"), "(-1 : int64)");
}

/// `table.grow` by 2^32 - 32 on a table with no maximum returns -1 at the replica's limit of
/// 1 000 000 elements (it took > 6 GiB); growth within the limit succeeds; a module declaring a
/// larger table, or a second table, is refused at install with the rule it breaks.
#[test]
fn table_growth_stops_at_a_million_elements() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("table");
    install(tmp.path(), &dir, TABLE_BOMB, "native");
    let d = dir.to_str().unwrap();
    let hash = state_hash(&dir);
    let (code, out) = bounded(&["call", d, "tgrow", "(4294967264 : nat32)"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(reply(&dir, "tgrow", "(4294967264 : nat32)"), "(-1 : int32)");
    assert_eq!(reply(&dir, "tgrow", "(1000000 : nat32)"), "(-1 : int32)");
    assert_eq!(reply(&dir, "tgrow", "(999999 : nat32)"), "(1 : int32)");
    assert_ne!(state_hash(&dir), hash, "the calls were committed");

    for (wat, rule) in [
        (
            "(module (memory 1) (table 1000001 funcref))",
            "table 0 has 1000001 initial elements (at most 1000000 allowed)",
        ),
        (
            "(module (memory 1) (table 1 funcref) (table 1 funcref))",
            "defines 2 tables (at most 1 allowed)",
        ),
    ] {
        let module = write_file(tmp.path(), "big-table.wat", wat);
        let target = tmp.path().join("refused");
        let err = cli(&[
            "install",
            module.to_str().unwrap(),
            "--state",
            target.to_str().unwrap(),
        ])
        .fails(2);
        assert!(err.contains(rule), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// Replies and rejects are limited to 2 MiB (3 MiB in a non-replicated query), with the
/// replica's contract violation, before anything is copied; the message is rolled back.
#[test]
fn replies_and_rejects_over_the_payload_limit_are_contract_violations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reply");
    install(tmp.path(), &dir, BOMBS, "native");
    let d = dir.to_str().unwrap();
    reply(&dir, "inc", "()");
    let hash = state_hash(&dir);
    let violation = |size: u64, max: u64, function: &str| {
        format!(
            "violated contract: ic0.{function}: application payload size ({size}) cannot be \
             larger than {max}."
        )
    };

    // 500 appends of 1 MiB: the third one exceeds 2 MiB (it took 3.4 GiB and a 1 GiB log line).
    let (code, out) = bounded(&["call", d, "manyappend", "(500 : int64)"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("reject code 5"), "{out}");
    assert!(
        out.contains(&violation(3 << 20, 2 << 20, "msg_reply_data_append")),
        "{out}"
    );
    assert!(out.len() < 1000, "{} bytes of output", out.len());
    // A single append of 100 MiB.
    let (code, out) = bounded(&["call", d, "bigreply", "(104857600 : int64)"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&violation(100 << 20, 2 << 20, "msg_reply_data_append")),
        "{out}"
    );
    // A reject of 2 MiB + 1 byte.
    let (code, out) = bounded(&["call", d, "rejectn", "(2097153 : int64)"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&violation((2 << 20) + 1, 2 << 20, "msg_reject")),
        "{out}"
    );
    // In a non-replicated query the limit is 3 MiB.
    let (code, out) = bounded(&["call", d, "bigreplyq", "(3145729 : int64)", "--query"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&violation((3 << 20) + 1, 3 << 20, "msg_reply_data_append")),
        "{out}"
    );
    // The same query as a replicated one has the 2 MiB limit.
    let (code, out) = bounded(&["call", d, "bigreplyq", "(3145728 : int64)"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&violation(3 << 20, 2 << 20, "msg_reply_data_append")),
        "{out}"
    );
    // Every one of them left the committed state as it was.
    assert_eq!(state_hash(&dir), hash);
    assert_eq!(reply(&dir, "read", "()"), "(1 : nat64)");
    assert_eq!(reply(&dir, "heapsize", "()"), "(1 : int64)");

    // At the limits, replies and rejects go through.
    let run = cli(&["call", d, "bigreplyq", "(3145728 : int64)", "--query"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = cli(&["call", d, "bigreply", "(2097152 : int64)"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let err = cli(&["call", d, "rejectn", "(2097152 : int64)"]).fails(1);
    assert!(err.contains("reject code 4"), "{err}");
}

/// `msg_reply_data_append` costs the replica's `500 + 50·N` instructions for N bytes and a
/// `*_copy` function `500 + N` (they cost one `call` before); the charge is taken before the
/// bytes move, so an append over the instruction limit traps with the limit.
#[test]
fn byte_moving_functions_are_charged_as_on_the_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("charge");
    install(tmp.path(), &dir, BOMBS, "native");
    let d = dir.to_str().unwrap();

    let append = |n: u64| instructions(&dir, "appendn", &format!("({n} : int64)"));
    let base = append(0);
    for n in [1, 1000, 65536] {
        assert_eq!(append(n) - base, 50 * n, "appending {n} bytes");
    }
    // The fixed part: an empty append costs the call, the IC's 500 and the rest of the method.
    assert!(base > 1000, "{base}");

    // `copyarg` copies its whole argument (a blob of k bytes: 9 bytes of Candid header, the
    // length as LEB128, the bytes), less the 1 000 an update pays per dirty heap page after it
    // ran.
    let copy = |k: usize| {
        let arg = format!("(blob \"{}\")", "a".repeat(k));
        let (instructions, pages) = instructions_and_pages(&dir, "copyarg", &arg);
        instructions - 1000 * pages
    };
    let (small, large) = (copy(10), copy(10_010));
    // 10 -> 10 010 bytes, and the LEB128 length grows from one byte to two.
    assert_eq!(large - small, 10_000 + 1);

    // A 60 000-byte append is charged 3 000 500 instructions before it runs: over a limit of
    // 1 000 000 it traps with the limit and changes nothing.
    let hash = state_hash(&dir);
    let err = cli(&[
        "call",
        d,
        "appendn",
        "(60000 : int64)",
        "--instruction-limit",
        "1000000",
    ])
    .fails(1);
    assert!(
        err.contains("instructions for single message execution"),
        "{err}"
    );
    assert_eq!(state_hash(&dir), hash);
    cli(&[
        "call",
        d,
        "appendn",
        "(10000 : int64)",
        "--instruction-limit",
        "1000000",
    ])
    .ok();
}

/// One module-size limit (the replica's 100 MiB) for raw and gzipped input: a raw module over it
/// is refused with the replica's message, and a gzip bomb stops decompressing at the limit.
#[test]
fn the_module_size_limit_applies_to_raw_and_gzipped_input() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let limit: usize = 100 << 20;
    // A valid module of limit + 1 bytes: a header and one custom section of zeros.
    let mut module = b"\0asm\x01\0\0\0\0".to_vec();
    let size = (limit + 1 - module.len() - 5) as u32;
    for i in 0..5 {
        let byte = ((size >> (7 * i)) & 0x7f) as u8;
        module.push(if i < 4 { byte | 0x80 } else { byte });
    }
    module.resize(limit + 1, 0);
    let raw = write_file(tmp.path(), "big.wasm", &module);
    let target = tmp.path().join("raw");
    let (code, out) = bounded(&[
        "install",
        raw.to_str().unwrap(),
        "--state",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "Wasm module size of {} exceeds the maximum allowed size of {limit}.",
            limit + 1
        )),
        "{out}"
    );

    // 200 MiB of a module that compresses to ~200 KiB.
    module.resize(2 * limit, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&module).unwrap();
    let bomb = write_file(tmp.path(), "bomb.wasm.gz", gz.finish().unwrap());
    let target = tmp.path().join("gzip");
    let (code, out) = bounded(&[
        "install",
        bomb.to_str().unwrap(),
        "--state",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("exceeds the maximum allowed size of {limit}.")),
        "{out}"
    );
}
