//! Cross-engine check (cargo feature `wasmtime`): the same messages on wasmi and on wasmtime give
//! identical replies and rejects, instruction counts, dirty pages, debug output, memories,
//! globals and state hashes, after every message, in both stable modes.
//!
//! Run with `cargo test --features wasmtime --test engines`.

#[path = "../support/canisters.rs"]
mod canisters;

use canister_vm::candid_text::encode_args;
use canister_vm::runtime::{
    Canister, CanisterConfig, Engine, InstructionLimits, MessageInput, Outcome,
};
use canister_vm::state::StableMode;

/// One message of a scenario.
#[derive(Debug, Clone)]
enum Msg {
    /// An update call (a query method runs replicated) with a Candid argument.
    Update(&'static str, &'static str),
    /// An update call with raw argument bytes.
    Raw(&'static str, Vec<u8>),
    /// A query call with a Candid argument.
    Query(&'static str, &'static str),
    /// An upgrade to this module with a Candid argument.
    Upgrade(Vec<u8>, &'static str),
}

/// What a message produced, as far as the engines must agree.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    outcome: Outcome,
    state_hash: [u8; 32],
    heap_sha: String,
    stable_sha: String,
    globals: Vec<(u32, canister_vm::state::GlobalValue)>,
    system: String,
}

fn observe(c: &Canister, outcome: Outcome) -> Observed {
    let state_hash = c.state_hash();
    // The incremental state hash must also be right, not merely equal across engines.
    assert_eq!(
        state_hash,
        c.state_hash_from_scratch(),
        "incremental state hash"
    );
    Observed {
        outcome,
        state_hash,
        heap_sha: canister_vm::state::sha256_hex(c.heap()),
        stable_sha: canister_vm::state::sha256_hex(c.stable()),
        globals: c.globals(),
        system: format!("{:?}", c.system()),
    }
}

/// A canister on every engine, driven in lock step.
struct Both {
    canisters: Vec<(Engine, Canister)>,
    /// The outcomes on wasmi, message by message (for assertions on what actually happened).
    log: Vec<Outcome>,
}

impl Both {
    /// Creates and initialises `wasm` on wasmi and wasmtime with `config`.
    fn new(wasm: &[u8], config: CanisterConfig, init_arg: &str) -> Both {
        let mut canisters = Vec::new();
        for engine in [Engine::Wasmi, Engine::Wasmtime] {
            let c = Canister::create(
                wasm.to_vec(),
                config.clone().engine(engine),
                candid::Principal::from_slice(&[4]),
            )
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
            assert_eq!(c.config().get_engine(), engine);
            canisters.push((engine, c));
        }
        let mut both = Both {
            canisters,
            log: Vec::new(),
        };
        let arg = encode_args(init_arg).unwrap();
        both.step("init", |c| c.init(&arg, &MessageInput::default()).unwrap());
        both
    }

    /// Runs `f` on every engine and asserts the observations agree.
    fn step(&mut self, what: &str, mut f: impl FnMut(&mut Canister) -> Outcome) {
        let mut seen: Vec<(Engine, Observed)> = Vec::new();
        for (engine, c) in &mut self.canisters {
            let outcome = f(c);
            seen.push((*engine, observe(c, outcome)));
        }
        let (first_engine, first) = &seen[0];
        for (engine, other) in &seen[1..] {
            assert_eq!(first, other, "{what}: {first_engine} and {engine} disagree");
        }
        self.log.push(seen.remove(0).1.outcome);
    }

    fn run(&mut self, msgs: &[Msg]) {
        let input = MessageInput::default();
        for msg in msgs {
            let what = format!("{msg:?}");
            match msg {
                Msg::Update(method, arg) => {
                    let arg = encode_args(arg).unwrap();
                    self.step(&what, |c| c.update(method, &arg, &input).unwrap());
                }
                Msg::Raw(method, arg) => {
                    self.step(&what, |c| c.update(method, arg, &input).unwrap());
                }
                Msg::Query(method, arg) => {
                    let arg = encode_args(arg).unwrap();
                    self.step(&what, |c| c.query(method, &arg, &input).unwrap());
                }
                Msg::Upgrade(wasm, arg) => {
                    let arg = encode_args(arg).unwrap();
                    self.step(&what, |c| c.upgrade(wasm.clone(), &arg, &input).unwrap());
                }
            }
        }
    }

    /// The wasmi outcome of message `i` (0 is init).
    fn outcome(&self, i: usize) -> &Outcome {
        &self.log[i]
    }
}

const MODES: [StableMode; 2] = [StableMode::Native, StableMode::Syscall];

fn config(mode: StableMode) -> CanisterConfig {
    CanisterConfig::default().stable_mode(mode)
}

fn reject_text(o: &Outcome) -> &str {
    match &o.result {
        Ok(_) => panic!("expected a reject, got a reply: {o:?}"),
        Err(r) => &r.message,
    }
}

#[test]
fn counter_canister_agrees() {
    use Msg::*;
    let wasm = canisters::test_canister_bytes("counter");
    for mode in MODES {
        let mut both = Both::new(&wasm, config(mode), "(opt (5 : nat64))");
        both.run(&[
            Update("inc", "()"),
            Query("read", "()"),
            Update("write_and_trap", "(3 : nat64)"),
            Query("query_mutate", "()"),
            Update("query_mutate", "()"),
            Update("reject_me", "()"),
            Update("no_reply", "()"),
            Update("inc", "()"),
            Upgrade(wasm.clone(), "(null)"),
            Query("read", "()"),
            Update("inc", "()"),
        ]);
        assert!(both.outcome(1).result.is_ok(), "{mode:?}");
        assert!(reject_text(both.outcome(3)).contains("deliberate trap"));
        assert!(reject_text(both.outcome(6)).contains("rejected on purpose"));
        assert!(reject_text(both.outcome(7)).contains("did not reply"));
        assert!(
            !both.outcome(8).dirty.heap.is_empty(),
            "inc dirties the heap"
        );
    }
}

#[test]
fn kv_canister_agrees() {
    use Msg::*;
    let wasm = canisters::test_canister_bytes("kv");
    for mode in MODES {
        let mut both = Both::new(&wasm, config(mode), "()");
        both.run(&[
            Update("put", r#"(1 : nat64, blob "hello")"#),
            Update("put", r#"(2 : nat64, blob "\00\01\02")"#),
            Query("get", "(1 : nat64)"),
            Query("len", "()"),
            Update("fill", "(3000 : nat64)"),
            Query("get", "(2999 : nat64)"),
            Upgrade(wasm.clone(), "()"),
            Query("upgrades", "()"),
            Update("fill", "(100 : nat64)"),
            Query("len", "()"),
        ]);
        assert!(
            both.outcome(5).dirty.stable.len() > 10,
            "{mode:?}: fill dirties stable pages: {:?}",
            both.outcome(5).dirty
        );
        assert!(both.outcome(5).instructions > 1_000_000);
    }
}

#[test]
fn instruction_limit_exceeded_agrees() {
    use Msg::*;
    let wasm = canisters::test_canister_bytes("kv");
    for mode in MODES {
        let limits = InstructionLimits {
            update: 20_000_000,
            ..InstructionLimits::default()
        };
        let mut both = Both::new(&wasm, config(mode).instruction_limits(limits), "()");
        both.run(&[
            Update("fill", "(10 : nat64)"),
            Update("fill", "(100000 : nat64)"),
            Query("len", "()"),
        ]);
        assert!(reject_text(both.outcome(2)).contains("instructions for single message execution"));
        assert!(both.outcome(2).instructions >= 20_000_000);
        assert_eq!(
            both.outcome(3).result,
            Ok(encode_args("(10 : nat64)").unwrap())
        );
    }
}

#[test]
fn raw_stable_canister_agrees() {
    use Msg::*;
    let wasm = canisters::test_canister_bytes("raw_stable");
    for mode in MODES {
        // A small stable limit so growing past it is cheap to reach.
        let mut both = Both::new(&wasm, config(mode).stable_limit_pages(20), "()");
        both.run(&[
            Update("size32", "()"),
            Update("grow32", "(1 : nat32)"),
            Update("write32", r#"(10 : nat32, blob "abcdef")"#),
            Update("read32", "(8 : nat32, 10 : nat32)"),
            Update("grow64", "(2 : nat64)"),
            Update("write64", r#"(131070 : nat64, blob "spans a page")"#),
            Update("read64", "(131068 : nat64, 16 : nat64)"),
            // Stable out of bounds, both APIs, and an overflowing offset.
            Update("read32", "(196600 : nat32, 100 : nat32)"),
            Update("write64", r#"(196607 : nat64, blob "xy")"#),
            Update(
                "read64_to",
                "(0 : nat64, 18446744073709551615 : nat64, 2 : nat64)",
            ),
            // Heap out of bounds through the raw pointer variants.
            Update("read32_to", "(4294967290 : nat32, 0 : nat32, 16 : nat32)"),
            Update("write64_from", "(0 : nat64, 4294967295 : nat64, 8 : nat64)"),
            // Zero lengths: no bounds checks for the 64-bit calls.
            Update("read64_to", "(0 : nat64, 999999999 : nat64, 0 : nat64)"),
            Update("write64_from", "(999999999 : nat64, 0 : nat64, 0 : nat64)"),
            // Growing past the limit returns -1 and changes nothing.
            Update("grow64", "(100 : nat64)"),
            Update("grow32", "(17 : nat32)"),
            Update("grow32", "(18 : nat32)"),
            Update("size64", "()"),
        ]);
        for i in [8, 9, 10] {
            assert!(reject_text(both.outcome(i)).contains("stable memory out of bounds"));
        }
        for i in [11, 12] {
            assert!(reject_text(both.outcome(i)).contains("heap out of bounds"));
        }
        assert_eq!(
            both.outcome(18).result,
            Ok(encode_args("(20 : nat64)").unwrap())
        );
    }
}

#[test]
fn example_counter_wat_agrees() {
    use Msg::*;
    let wasm = canister_vm::load::read_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/counter.wat"),
    )
    .unwrap();
    for mode in MODES {
        let mut both = Both::new(&wasm, config(mode), "()");
        both.run(&[
            Update("inc", "()"),
            Update("inc", "()"),
            Query("read", "()"),
            Upgrade(wasm.clone(), "()"),
            Query("read", "()"),
            Update("inc", "()"),
        ]);
        assert_eq!(
            both.outcome(5).result,
            Ok(encode_args("(2 : nat64)").unwrap())
        );
        assert_eq!(both.outcome(4).debug_log.len(), 1, "post_upgrade prints");
    }
}

/// Wasm traps of every kind the engines must name alike, plus growth followed by a trap
/// (rollback by re-instantiation) and the performance counter.
const TRAPS: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_grow" (func $grow64 (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $write64 (param i64 i64 i64)))
  (type $v (func))
  (memory 1)
  (table 2 funcref)
  (global $g (mut i64) (i64.const 7))
  (global $f (mut f64) (f64.const 1.5))
  (data (i32.const 100) "explicit trap message")
  (func $spin (param $n i32)
    (loop $l
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0)))))
  (func (export "canister_update unreachable") unreachable)
  (func (export "canister_update div0")
    (drop (i32.div_u (i32.const 1) (i32.wrap_i64 (i64.sub (global.get $g) (global.get $g))))))
  (func (export "canister_update overflow")
    (drop (i32.div_s (i32.const 0x80000000) (i32.const -1))))
  (func (export "canister_update convert")
    (drop (i32.trunc_f64_s (f64.div (f64.const 0) (f64.const 0)))))
  (func (export "canister_update heap_oob")
    (drop (i64.load (i32.const 65530))))
  (func (export "canister_update null_call")
    (call_indirect (type $v) (i32.const 0)))
  (func (export "canister_update table_oob")
    (call_indirect (type $v) (i32.const 5)))
  (func (export "canister_update explicit")
    (call $trap (i32.const 100) (i32.const 21)))
  (func (export "canister_update grow_then_trap")
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (drop (memory.grow (i32.const 3)))
    (drop (call $grow64 (i64.const 2)))
    (call $write64 (i64.const 70000) (i64.const 0) (i64.const 8))
    (i64.store (i32.const 200000) (i64.const 1))
    unreachable)
  (func (export "canister_update work")
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (global.set $f (f64.mul (global.get $f) (f64.const 3)))
    (drop (memory.grow (i32.const 1)))
    (i64.store (i32.const 70000) (global.get $g))
    (call $spin (i32.const 1000))
    (i64.store (i32.const 0) (call $perf (i32.const 0)))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
)
"#;

#[test]
fn wasm_traps_and_rollbacks_agree() {
    use Msg::*;
    let wasm = wat::parse_str(TRAPS).unwrap();
    for mode in MODES {
        let mut both = Both::new(&wasm, config(mode), "()");
        let expected = [
            ("unreachable", "wasm `unreachable` instruction executed"),
            ("div0", "integer divide by zero"),
            ("overflow", "integer overflow"),
            ("convert", "invalid conversion to integer"),
            ("heap_oob", "heap out of bounds"),
            ("null_call", "uninitialized element"),
            ("table_oob", "undefined element"),
            ("explicit", "trapped explicitly: explicit trap message"),
            ("grow_then_trap", "unreachable"),
        ];
        let msgs: Vec<Msg> = expected
            .iter()
            .map(|(m, _)| Raw(m, Vec::new()))
            .chain([Raw("work", Vec::new()), Raw("grow_then_trap", Vec::new())])
            .chain([Raw("work", Vec::new())])
            .collect();
        both.run(&msgs);
        for (i, (method, reason)) in expected.iter().enumerate() {
            let text = reject_text(both.outcome(i + 1));
            assert!(text.contains(reason), "{method}: {text}");
        }
        let work = both.outcome(expected.len() + 1);
        assert!(work.result.is_ok(), "{work:?}");
        assert!(work.instructions > 1000, "the spin loop is counted");
    }
}

/// `canister-vm call --engine wasmtime` on a state directory gives what wasmi gives: the same
/// reply, statistics and state hash, and either engine can continue the other's state.
#[test]
fn cli_engine_flag_agrees() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_canister-vm"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let kv = canisters::test_canister("kv");
    let tmp = tempfile::tempdir().unwrap();
    let mut infos = Vec::new();
    for engine in ["wasmi", "wasmtime"] {
        let dir = tmp.path().join(engine);
        let d = dir.to_str().unwrap();
        run(&[
            "install",
            kv.to_str().unwrap(),
            "--state",
            d,
            "--engine",
            engine,
        ]);
        let mut outputs = Vec::new();
        for (i, method, arg) in [
            (0, "put", r#"(7 : nat64, blob "seven")"#),
            (1, "fill", "(500 : nat64)"),
            (2, "len", "()"),
        ] {
            // Alternate engines on the wasmtime directory: the state is engine-independent.
            let e = if engine == "wasmtime" && i == 1 {
                "wasmi"
            } else {
                engine
            };
            outputs.push(run(&["call", d, method, arg, "--stats", "--engine", e]));
        }
        let (info, _) = run(&["info", d]);
        infos.push((outputs, info.replace(d, "<dir>")));
    }
    assert_eq!(infos[0], infos[1]);
    assert!(infos[0].0[1].1.contains("instructions:"), "{:?}", infos[0]);
}

/// A session of `msgs` recorded on wasmi through a state directory (every message is logged),
/// replayed on wasmtime: every recorded outcome (reply or reject, instructions, dirty pages,
/// state hash) must come out identical.
fn record_on_wasmi(dir: &std::path::Path, wasm: &[u8], mode: StableMode, msgs: &[Msg]) {
    use canister_vm::runtime::persistent::PersistentCanister;
    let input = MessageInput::default();
    let config = || config(mode).engine(Engine::Wasmi);
    let (c, init) = PersistentCanister::install(
        dir,
        wasm.to_vec(),
        &encode_args("()").unwrap(),
        config(),
        &input,
    )
    .unwrap();
    assert!(init.result.is_ok(), "{init:?}");
    let mut c = c.unwrap();
    for msg in msgs {
        match msg {
            Msg::Update(method, arg) => {
                c.update(method, &encode_args(arg).unwrap(), &input)
                    .unwrap();
            }
            Msg::Raw(method, arg) => {
                c.update(method, arg, &input).unwrap();
            }
            Msg::Query(method, arg) => {
                c.query(method, &encode_args(arg).unwrap(), &input).unwrap();
            }
            Msg::Upgrade(wasm, arg) => {
                c.upgrade(wasm.clone(), &encode_args(arg).unwrap(), &input)
                    .unwrap();
            }
        }
    }
}

#[test]
fn recorded_logs_replay_on_wasmtime() {
    use Msg::*;
    let kv = canisters::test_canister_bytes("kv");
    let counter = canisters::test_canister_bytes("counter");
    let raw = canisters::test_canister_bytes("raw_stable");
    let sessions: Vec<(&str, Vec<u8>, StableMode, Vec<Msg>)> = vec![
        (
            "kv",
            kv.clone(),
            StableMode::Native,
            vec![
                Update("put", r#"(1 : nat64, blob "one")"#),
                Update("fill", "(1000 : nat64)"),
                Query("get", "(1 : nat64)"),
                Upgrade(kv.clone(), "()"),
                Query("upgrades", "()"),
                Update("fill", "(50 : nat64)"),
            ],
        ),
        (
            "counter",
            counter.clone(),
            StableMode::Syscall,
            vec![
                Update("inc", "()"),
                Update("write_and_trap", "(2 : nat64)"),
                Update("reject_me", "()"),
                Update("no_reply", "()"),
                Update("query_mutate", "()"),
                Upgrade(counter.clone(), "(null)"),
                Query("read", "()"),
            ],
        ),
        (
            "raw_stable",
            raw.clone(),
            StableMode::Native,
            vec![
                Update("grow64", "(2 : nat64)"),
                Update("write64", r#"(65530 : nat64, blob "across pages")"#),
                Update("read32", "(65528 : nat32, 20 : nat32)"),
                Update("read64", "(131070 : nat64, 10 : nat64)"),
                Update("grow32", "(1 : nat32)"),
            ],
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, wasm, mode, msgs) in &sessions {
        let dir = tmp.path().join(name);
        record_on_wasmi(&dir, wasm, *mode, msgs);
        let options = canister_vm::replay::Options {
            engine: Engine::Wasmtime,
            ..Default::default()
        };
        let summary = canister_vm::replay::replay_dir(&dir, options, |_, _| {})
            .unwrap_or_else(|e| panic!("{name}: replay on wasmtime diverged: {e}"));
        assert_eq!(summary.messages, msgs.len() as u64 + 1, "{name}");
        assert!(summary.instructions > 0, "{name}");
    }
    // The CLI: `replay --engine wasmtime` of a state directory written on wasmi.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canister-vm"))
        .args([
            "replay",
            tmp.path().join("kv").to_str().unwrap(),
            "--engine",
            "wasmtime",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("on wasmtime"), "{stdout}");
    assert!(stdout.contains("every outcome identical"), "{stdout}");
}

/// Many canisters: the same calls between three relay canisters (replies, rejects, traps in
/// callbacks with cleanup, self-calls, cycles) give the same executed messages — each with its
/// instruction count and answer — and the same state hashes on wasmi and on wasmtime.
#[test]
fn subnet_histories_agree() {
    use candid::Principal;
    use canister_vm::runtime::subnet::Subnet;
    let anon = Principal::anonymous();
    let run = |engine: Engine| {
        let mut subnet = Subnet::new(CanisterConfig::default().engine(engine));
        let wasm = wat::parse_str(include_str!("../support/relay.wat")).unwrap();
        let ids: Vec<Principal> = (0..3)
            .map(|_| subnet.install_raw(wasm.clone(), b"", anon).unwrap())
            .collect();
        let mut replies = Vec::new();
        for (i, (method, mode)) in [
            ("echo", 0u8),
            ("reject", 0),
            ("trap", 0),
            ("echo", 1),
            ("echo", 2),
            ("accept", 0),
        ]
        .into_iter()
        .enumerate()
        {
            let callee = ids[(i + 1) % 3];
            let mut arg = vec![callee.as_slice().len() as u8];
            arg.extend_from_slice(callee.as_slice());
            arg.push(method.len() as u8);
            arg.extend_from_slice(method.as_bytes());
            arg.push(mode);
            arg.extend_from_slice(&1000u64.to_le_bytes());
            arg.extend_from_slice(b"payload");
            replies.push(
                subnet
                    .update_call_raw(ids[i % 3], "call", &arg, anon)
                    .unwrap(),
            );
        }
        let hashes: Vec<[u8; 32]> = ids
            .iter()
            .map(|id| subnet.canister(*id).unwrap().state_hash())
            .collect();
        (replies, subnet.history().to_vec(), hashes)
    };
    let wasmi = run(Engine::Wasmi);
    let wasmtime = run(Engine::Wasmtime);
    assert!(wasmi.1.len() >= 18, "{} messages", wasmi.1.len());
    assert_eq!(wasmi.0, wasmtime.0, "replies");
    assert_eq!(wasmi.1, wasmtime.1, "executed messages");
    assert_eq!(wasmi.2, wasmtime.2, "state hashes");
}

/// A multi-canister state directory written through the CLI on wasmi (two ic-cdk canisters
/// calling each other, a trapping callee, timers and heartbeats on `tick`, the management
/// canister) replays on wasmtime with every caused message identical.
#[test]
fn a_multi_canister_directory_replays_on_wasmtime() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let calls = canisters::test_canister("calls");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_canister-vm"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let d = dir.to_str().unwrap();
    let wasm = calls.to_str().unwrap();
    cli(&["install", wasm, "--state", d, "--name", "a"]);
    let b = cli(&["install", wasm, "--state", d, "--name", "b"]);
    let b = b.lines().last().unwrap();
    cli(&[
        "call",
        d,
        "call_echo",
        &format!(r#"(principal "{b}", "hi")"#),
        "--canister",
        "a",
    ]);
    cli(&[
        "call",
        d,
        "call_boom",
        &format!(r#"(principal "{b}")"#),
        "--canister",
        "a",
    ]);
    cli(&[
        "call",
        d,
        "start_timers",
        "(3 : nat64, 2 : nat64)",
        "--canister",
        "a",
    ]);
    cli(&["tick", d, "--seconds", "2"]);
    cli(&["tick", d, "--seconds", "2"]);
    let status = format!(r#"(record {{ canister_id = principal "{b}" }})"#);
    cli(&[
        "call",
        d,
        "canister_status",
        &status,
        "--canister",
        "aaaaa-aa",
    ]);
    let options = canister_vm::replay::Options {
        engine: Engine::Wasmtime,
        ..Default::default()
    };
    let summary = canister_vm::replay::replay_dir(&dir, options, |_, _| {})
        .unwrap_or_else(|e| panic!("replay on wasmtime diverged: {e}"));
    assert_eq!((summary.installs, summary.ticks), (2, 2));
    assert!(summary.caused >= 8, "{summary:?}");
    let out = cli(&["replay", d, "--engine", "wasmtime"]);
    assert!(out.contains("every outcome identical"), "{out}");
}
