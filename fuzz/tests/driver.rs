//! The driver binary: a host abort is reported (not a silent end), and a short run summarizes.

use std::process::Command;

fn driver() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fuzz-driver"))
}

fn repro(file: &str) -> String {
    format!("{}/tests/repro/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The module on which wasmi overflowed the host stack (issue 14) checks in a child process and
/// passes. (Its `f1(8, 1587878272)` no longer aborts but never returns: it loops, without fuel,
/// so it is not checked here; tests/all/engine_faults.rs runs it with fuel. Aborts of a worker
/// are covered by `a_dead_worker_is_reported_with_its_seed_and_the_run_continues`.)
#[test]
fn the_module_that_overflowed_the_host_stack_passes() {
    let out = driver()
        .args([
            "check",
            "--target",
            "plain_vs_instrumented",
            "--call",
            "f0(0, 0)",
        ])
        .arg(repro("wasmi-host-stack-overflow.wat"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
}

#[test]
fn a_short_run_prints_a_summary_and_succeeds() {
    let dir = std::env::temp_dir().join(format!("cvm-fuzz-{}", std::process::id()));
    let out = driver()
        .args([
            "run",
            "--target",
            "plain_vs_instrumented,barrier_soundness",
            "--modules",
            "4",
        ])
        .args(["--seed", "4", "--jobs", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("plain_vs_instrumented: 4 modules"),
        "{stdout}"
    );
    assert!(stdout.contains("barrier_soundness: 4 modules"), "{stdout}");
    assert!(!dir.exists(), "no findings, nothing written");
}

/// A worker that dies mid-check is reported with its seed, and the run goes on after it.
#[test]
fn a_dead_worker_is_reported_with_its_seed_and_the_run_continues() {
    let dir = std::env::temp_dir().join(format!("cvm-fuzz-abort-{}", std::process::id()));
    let out = driver()
        .env(canister_vm_fuzz::driver::ABORT_SEED_VAR, "1")
        .args([
            "run",
            "--target",
            "barrier_soundness",
            "--modules",
            "3",
            "--seed",
            "0",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FINDING barrier_soundness seed 1 [abort] worker died: killed by signal 6"),
        "{stdout}"
    );
    assert!(stdout.contains("barrier_soundness: 3 modules"), "{stdout}");
    assert!(dir.join("barrier_soundness-1.wasm").exists());
    assert!(dir.join("barrier_soundness-1.txt").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
