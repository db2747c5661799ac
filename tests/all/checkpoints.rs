//! Delta checkpoints: a checkpoint writes the pages a message dirtied, whatever the memory
//! size, and a process killed at any instant leaves the last or the next committed state.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use canister_vm::runtime::persistent::{PersistentCanister, PersistentSubnet};
use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};

/// `grow(n: u64 LE)` grows stable memory by n pages; `touch()` bumps a heap counter and writes
/// 8 bytes into each of 16 stable 4 KiB pages spread evenly over stable memory.
const CANISTER: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_size" (func $size (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 2)
  (func (export "canister_update grow")
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (drop (call $grow (i64.load (i32.const 0))))
    (call $reply))
  (func (export "canister_update grow_and_trap")
    (drop (call $grow (i64.const 1)))
    (call $swrite (i64.const 0) (i64.const 8) (i64.const 8))
    (unreachable))
  (func (export "canister_update touch") (local $i i64) (local $stride i64)
    (local.set $stride (i64.div_u (i64.mul (call $size) (i64.const 65536)) (i64.const 16)))
    (i64.store (i32.const 8) (i64.add (i64.load (i32.const 8)) (i64.const 1)))
    (loop $l
      (call $swrite (i64.add (i64.mul (local.get $i) (local.get $stride)) (local.get $i))
                    (i64.const 8) (i64.const 8))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 16))))
    (call $reply))
)
"#;

fn wasm() -> Vec<u8> {
    wat::parse_str(CANISTER).unwrap()
}

fn no_input() -> MessageInput {
    MessageInput::default()
}

/// Installs the canister with `wasm_pages` of stable memory, then runs `touch` and returns
/// (pages the touch checkpoint wrote, its log bytes).
fn touch_with_stable(dir: &Path, wasm_pages: u64) -> (u64, u64) {
    let (c, _) =
        PersistentCanister::install(dir, wasm(), &[], CanisterConfig::default(), &no_input())
            .unwrap();
    let mut c = c.unwrap();
    let grow = c
        .update("grow", &wasm_pages.to_le_bytes(), &no_input())
        .unwrap();
    assert!(grow.result.is_ok(), "{:?}", grow.result);
    let touch = c.update("touch", &[], &no_input()).unwrap();
    assert!(touch.result.is_ok(), "{:?}", touch.result);
    assert_eq!(touch.dirty.stable.len(), 16);
    assert_eq!(touch.dirty.heap, vec![0]);
    let stats = c.last_checkpoint();
    // Reopening gives the same state (the hash recorded by the checkpoint is verified).
    let hash = c.canister().state_hash();
    drop(c);
    let reopened = PersistentCanister::open(dir, CanisterConfig::default()).unwrap();
    assert_eq!(reopened.canister().state_hash(), hash);
    // Opening restored and hashed only the pages the page files hold: the live memories must
    // still hash, from scratch, to the same state.
    assert_eq!(reopened.canister().state_hash_from_scratch(), hash);
    assert_eq!(
        reopened.canister().stable().len() as u64,
        wasm_pages * 65536
    );
    (stats.pages_written, stats.log_bytes)
}

#[test]
fn a_checkpoint_writes_the_dirty_pages_whatever_the_memory_size_1gib() {
    let tmp = tempfile::tempdir().unwrap();
    let small = touch_with_stable(&tmp.path().join("16mib"), 256);
    let large = touch_with_stable(&tmp.path().join("1gib"), 16384);
    // 16 stable pages and 1 heap page, for 16 MiB and for 1 GiB alike.
    assert_eq!(small.0, 17);
    assert_eq!(large, small);
    // The page file of the 1 GiB memory is sparse: only written pages take disk space.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(tmp.path().join("1gib/stable.pages")).unwrap();
        assert_eq!(meta.len(), 1 << 30);
        assert!(
            meta.blocks() * 512 < 16 << 20,
            "{} bytes allocated",
            meta.blocks() * 512
        );
    }
}

/// `zero()` clears the data segment's bytes at 0; `far()` grows the heap by 64 pages and writes
/// into the new part; `gs()` grows stable memory by 4 pages and writes into its third page.
const SPARSE: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (data (i32.const 16) "initial bytes from a data segment")
  (func (export "canister_update zero")
    (memory.fill (i32.const 16) (i32.const 0) (i32.const 33))
    (call $reply))
  (func (export "canister_update far")
    (drop (memory.grow (i32.const 64)))
    (i64.store (i32.const 3000000) (i64.const 0x0102030405060708))
    (call $reply))
  (func (export "canister_update gs")
    (drop (call $sgrow (i64.const 4)))
    (call $swrite (i64.const 140000) (i64.const 16) (i64.const 8))
    (call $reply))
)
"#;

/// Reopening restores exactly the committed memories: a data-segment page the canister zeroed
/// stays zero (the fresh instance wrote it at instantiation), pages past the initial sizes come
/// back from the page files, zero pages stay zero, in both stable modes.
#[test]
fn reopening_restores_zeroed_data_segments_and_grown_pages_exactly() {
    use canister_vm::state::StableMode;
    let tmp = tempfile::tempdir().unwrap();
    for mode in [StableMode::Native, StableMode::Syscall] {
        let dir = tmp.path().join(format!("{mode:?}"));
        let config = CanisterConfig::default().stable_mode(mode);
        let wasm = wat::parse_str(SPARSE).unwrap();
        let (c, _) = PersistentCanister::install(&dir, wasm, &[], config, &no_input()).unwrap();
        let mut c = c.unwrap();
        for method in ["gs", "far", "zero"] {
            let out = c.update(method, &[], &no_input()).unwrap();
            assert!(out.result.is_ok(), "{mode:?} {method}: {:?}", out.result);
        }
        let (heap, stable, hash) = (
            c.canister().heap().to_vec(),
            c.canister().stable().to_vec(),
            c.canister().state_hash(),
        );
        assert!(heap[16..49].iter().all(|&b| b == 0));
        assert_eq!(heap[3000000], 8);
        assert_eq!(&stable[140000..140008], b"initial ");
        drop(c);
        let reopened = PersistentCanister::open(&dir, CanisterConfig::default()).unwrap();
        assert!(
            reopened.canister().heap() == &heap[..],
            "{mode:?}: heap differs"
        );
        assert!(
            reopened.canister().stable() == &stable[..],
            "{mode:?}: stable differs"
        );
        assert_eq!(reopened.canister().state_hash(), hash, "{mode:?}");
        assert_eq!(
            reopened.canister().state_hash_from_scratch(),
            hash,
            "{mode:?}"
        );
    }
}

/// `canister_pre_upgrade` and `canister_post_upgrade` each write 8 bytes to their own stable
/// page; `grow()` grows stable memory to 1 GiB.
const HOOKS: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (data (i32.const 0) "pre-upgpost-upg")
  (func (export "canister_update grow")
    (drop (call $sgrow (i64.const 16384)))
    (call $reply))
  (func (export "canister_pre_upgrade")
    (call $swrite (i64.const 409600) (i64.const 0) (i64.const 7)))
  (func (export "canister_post_upgrade")
    (call $swrite (i64.const 819200) (i64.const 7) (i64.const 8)))
)
"#;

/// An upgrade's checkpoint writes the stable pages its hooks wrote (and the heap pages that
/// changed), not the whole stable memory, and the state it leaves reopens to the same hash.
#[test]
fn an_upgrade_checkpoint_writes_the_pages_its_hooks_wrote() {
    use canister_vm::state::StableMode;
    let tmp = tempfile::tempdir().unwrap();
    for mode in [StableMode::Native, StableMode::Syscall] {
        let dir = tmp.path().join(format!("{mode:?}"));
        let config = CanisterConfig::default().stable_mode(mode);
        let wasm = wat::parse_str(HOOKS).unwrap();
        let (c, _) =
            PersistentCanister::install(&dir, wasm.clone(), &[], config, &no_input()).unwrap();
        let mut c = c.unwrap();
        let grow = c.update("grow", &[], &no_input()).unwrap();
        assert!(grow.result.is_ok(), "{:?}", grow.result);
        let up = c.upgrade(wasm, &[], &no_input()).unwrap();
        assert!(up.result.is_ok(), "{mode:?}: {:?}", up.result);
        // Stable pages 100 (pre) and 200 (post); the heap is the module's data again, unchanged.
        assert_eq!(c.last_checkpoint().pages_written, 2, "{mode:?}");
        let stable = c.canister().stable();
        assert_eq!(&stable[409600..409607], b"pre-upg");
        assert_eq!(&stable[819200..819208], b"post-upg");
        let hash = c.canister().state_hash();
        assert_eq!(c.canister().state_hash_from_scratch(), hash, "{mode:?}");
        drop(c);
        let reopened = PersistentCanister::open(&dir, CanisterConfig::default()).unwrap();
        assert_eq!(reopened.canister().state_hash(), hash, "{mode:?}");
        assert_eq!(&reopened.canister().stable()[819200..819208], b"post-upg");
    }
}

/// The update sequence of the crash test: message `j` (0-based, after install) grows stable
/// memory by one page every third message and otherwise touches 16 pages.
fn step(c: &mut Canister, j: u64) -> canister_vm::runtime::Outcome {
    if j.is_multiple_of(3) {
        c.update("grow", &1u64.to_le_bytes(), &no_input()).unwrap()
    } else {
        c.update("touch", &[], &no_input()).unwrap()
    }
}

const CRASH_ENV: &str = "CANISTER_VM_CRASH_CHILD_DIR";
const CRASH_STEPS: u64 = 400;

/// The child of the crash test: continues the update sequence in the state directory named by
/// the environment, printing `<messages> <state hash>` after every commit, until killed. Does
/// nothing when run as an ordinary test.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_ENV) else {
        return;
    };
    let mut c = PersistentCanister::open(Path::new(&dir), CanisterConfig::default()).unwrap();
    loop {
        let j = c.canister().clock().messages - 1;
        if j >= CRASH_STEPS {
            return;
        }
        let outcome = if j.is_multiple_of(3) {
            c.update("grow", &1u64.to_le_bytes(), &no_input()).unwrap()
        } else {
            c.update("touch", &[], &no_input()).unwrap()
        };
        assert!(outcome.result.is_ok());
        println!(
            "{} {}",
            c.canister().clock().messages,
            hex::encode(c.canister().state_hash())
        );
    }
}

#[test]
fn a_process_killed_during_checkpoints_leaves_the_last_or_the_next_state() {
    // The committed states of the sequence, computed in memory: expected[m] after m messages.
    let mut reference = Canister::create(
        wasm(),
        CanisterConfig::default(),
        candid::Principal::anonymous(),
    )
    .unwrap();
    reference.init(&[], &no_input()).unwrap();
    let mut expected = vec![[0u8; 32], reference.state_hash()];
    for j in 0..CRASH_STEPS {
        assert!(step(&mut reference, j).result.is_ok());
        expected.push(reference.state_hash());
    }

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let (c, _) =
        PersistentCanister::install(&dir, wasm(), &[], CanisterConfig::default(), &no_input())
            .unwrap();
    drop(c.unwrap());
    let mut last_committed = 1u64;
    let mut kills = 0;
    for round in 0..25u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["checkpoints::crash_child", "--exact", "--nocapture", "-q"])
            .env(CRASH_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill right after the child's k-th commit marker (k = 1..4 by round): it is then
        // somewhere in its next message, a different point each round. Waiting for markers,
        // not for time, makes the test independent of the machine's speed and load.
        let k = 1 + round % 4;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        let mut line = String::new();
        let mut finished = false;
        while seen < k {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                finished = true; // the sequence is complete
                break;
            }
            // What the child reported as committed before it died.
            let mut parts = line.split_whitespace();
            let (Some(m), Some(h)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(m) = m.parse::<u64>() else { continue };
            assert_eq!(h, hex::encode(expected[m as usize]), "message {m}");
            last_committed = m;
            seen += 1;
        }
        let _ = child.kill(); // SIGKILL on Unix
        child.wait().unwrap();
        if !finished {
            kills += 1;
        }
        // Markers printed after the k-th one, before the kill landed.
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        for line in rest.lines() {
            let mut parts = line.split_whitespace();
            let (Some(m), Some(h)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(m) = m.parse::<u64>() else { continue };
            assert_eq!(h, hex::encode(expected[m as usize]), "message {m}");
            last_committed = m;
        }
        let reopened = PersistentCanister::open(&dir, CanisterConfig::default())
            .unwrap_or_else(|e| panic!("round {round}: reopening failed: {e}"));
        let m = reopened.canister().clock().messages;
        assert!(
            m == last_committed || m == last_committed + 1,
            "round {round}: reopened at message {m}, last reported {last_committed}"
        );
        assert_eq!(
            reopened.canister().state_hash(),
            expected[m as usize],
            "round {round}: state after message {m}"
        );
        last_committed = m;
        drop(reopened);
        if m > CRASH_STEPS {
            break;
        }
    }
    assert_eq!(kills, 25, "every child was killed mid-run");
    // Every round committed at least one message (its first marker).
    assert!(last_committed > 25, "{last_committed}");
}

/// Runs `canister-vm args...` and returns (exit status, stderr, the child's peak resident
/// memory in bytes, from `wait4`).
#[cfg(target_os = "linux")]
#[allow(
    clippy::zombie_processes,
    reason = "reaped by wait4 below, which std cannot do"
)]
fn cli_peak_rss(args: &[&str]) -> (i32, String, u64) {
    let child = Command::new(env!("CARGO_BIN_EXE_canister-vm"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = String::new();
    child.stderr.unwrap().read_to_string(&mut stderr).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value; `wait4` writes both out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unreaped child (std's `Child` was consumed without waiting).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // ru_maxrss is in KiB on Linux.
    (code, stderr, usage.ru_maxrss as u64 * 1024)
}

#[cfg(target_os = "linux")]
const RSS_PROBE_ENV: &str = "CANISTER_VM_RSS_PROBE_ARGS";

/// The probe of the resident-memory test: runs `canister-vm` with the arguments named by the
/// environment (separated by U+001F) and prints `<exit status> <peak RSS bytes>` then its
/// stderr. Does nothing when run as an ordinary test.
#[cfg(target_os = "linux")]
#[test]
fn rss_probe() {
    let Ok(args) = std::env::var(RSS_PROBE_ENV) else {
        return;
    };
    let args: Vec<&str> = args.split('\u{1f}').collect();
    let (code, stderr, rss) = cli_peak_rss(&args);
    println!("{code} {rss}\n{stderr}");
}

/// [`cli_peak_rss`] run from a fresh, small process (this test binary re-executed as
/// [`rss_probe`]): Linux carries the peak resident memory of the process that spawns a child
/// over into the child's `ru_maxrss`, and the test harness, running other tests in parallel, is
/// large.
#[cfg(target_os = "linux")]
pub(crate) fn cli_peak_rss_via_probe(args: &[&str]) -> (i32, String, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["checkpoints::rss_probe", "--exact", "--nocapture", "-q"])
        .env(RSS_PROBE_ENV, args.join("\u{1f}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            let code = it.next()?.parse::<i32>().ok()?;
            let rss = it.next()?.parse::<u64>().ok()?;
            it.next().is_none().then_some((code, rss))
        })
        .unwrap_or_else(|| panic!("the probe printed no result: {stdout}"));
    (line.0, stdout.into_owned(), line.1)
}

/// A `call` on a canister holding 1 GiB of stable memory reads only the pages it touches: the
/// process's peak resident memory stays far below 1 GiB, in native and in system-API mode.
#[cfg(target_os = "linux")]
#[test]
fn a_call_on_a_1gib_canister_keeps_resident_memory_far_below_1gib() {
    use canister_vm::state::StableMode;
    let tmp = tempfile::tempdir().unwrap();
    for mode in [StableMode::Native, StableMode::Syscall] {
        let dir = tmp.path().join(format!("{mode:?}"));
        let config = CanisterConfig::default().stable_mode(mode);
        let (c, _) = PersistentCanister::install(&dir, wasm(), &[], config, &no_input()).unwrap();
        let mut c = c.unwrap();
        let grow = c
            .update("grow", &16384u64.to_le_bytes(), &no_input())
            .unwrap();
        assert!(grow.result.is_ok(), "{:?}", grow.result);
        let hash = c.canister().state_hash();
        drop(c);

        let dir_arg = dir.to_str().unwrap();
        let (code, stderr, rss) = cli_peak_rss_via_probe(&["call", "--stats", dir_arg, "touch"]);
        assert_eq!(code, 0, "{mode:?}: {stderr}");
        eprintln!("{mode:?}: peak resident memory {} MiB", rss >> 20);
        assert!(stderr.contains("dirty stable pages: 16"), "{stderr}");
        assert!(stderr.contains("pages written to disk: 17"), "{stderr}");
        assert!(
            rss < 128 << 20,
            "{mode:?}: peak resident memory {} MiB for a call touching 17 pages of 1 GiB",
            rss >> 20
        );
        // The call really ran on the 1 GiB state and committed on top of it.
        // The CLI's commit made the directory a subnet directory.
        let subnet = open_subnet(&dir);
        let reopened = subnet
            .canister(canister_vm::runtime::subnet::canister_id(0))
            .unwrap();
        assert_eq!(reopened.stable().len(), 1 << 30);
        assert_ne!(reopened.state_hash(), hash);
        assert_eq!(reopened.clock().messages, 3);
        // The memories, globals and certified data (a trap advances only the clock, which the
        // state hash covers too).
        let hash = reopened.memory_hash();
        drop(subnet);

        // A message that grows stable memory and then traps is rolled back by a fresh instance
        // filled with the committed pages only.
        let (code, stderr, rss) = cli_peak_rss_via_probe(&["call", dir_arg, "grow_and_trap"]);
        assert_eq!(code, 1, "{mode:?}: {stderr}");
        eprintln!(
            "{mode:?}: grow-and-trap peak resident memory {} MiB",
            rss >> 20
        );
        assert!(
            rss < 128 << 20,
            "{mode:?}: peak resident memory {} MiB rolling back a growth of 1 GiB",
            rss >> 20
        );
        let subnet = open_subnet(&dir);
        let reopened = subnet
            .canister(canister_vm::runtime::subnet::canister_id(0))
            .unwrap();
        assert_eq!(reopened.memory_hash(), hash, "{mode:?}");
        assert_eq!(reopened.clock().messages, 4);
        drop(subnet);

        // An upgrade carries the 1 GiB stable memory into the new instance page by page.
        let module = tmp.path().join("touch.wat");
        std::fs::write(&module, CANISTER).unwrap();
        let module_arg = module.to_str().unwrap();
        let (code, stderr, rss) = cli_peak_rss_via_probe(&["upgrade", dir_arg, module_arg]);
        assert_eq!(code, 0, "{mode:?}: {stderr}");
        eprintln!("{mode:?}: upgrade peak resident memory {} MiB", rss >> 20);
        assert!(
            rss < 128 << 20,
            "{mode:?}: peak resident memory {} MiB for upgrading a canister with 1 GiB of stable memory",
            rss >> 20
        );
        let subnet = open_subnet(&dir);
        let reopened = subnet
            .canister(canister_vm::runtime::subnet::canister_id(0))
            .unwrap();
        assert_eq!(reopened.stable().len(), 1 << 30);
        assert_eq!(reopened.clock().messages, 5);
    }
}

/// The subnet in directory `dir`, unlocked (the CLI's first commit makes a single-canister
/// directory a subnet directory).
#[cfg(target_os = "linux")]
fn open_subnet(dir: &Path) -> canister_vm::runtime::subnet::Subnet {
    PersistentSubnet::open(dir, CanisterConfig::default())
        .unwrap()
        .into_subnet()
}
