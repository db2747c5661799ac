//! `cargo xtask fuzz [--target T[,T…]|all] [--seconds N] [--modules N] [--seed S] [--jobs J]`:
//! builds the fuzz driver (`fuzz/`, crate `canister-vm-fuzz`) in release and runs it.
//!
//! The driver checks wasm-smith modules seed after seed in worker processes, prints progress
//! (modules/s) and a summary (modules, calls, mismatches by class, documented differences), writes
//! every finding to `target/fuzz-failures/<target>-<seed>.{wasm,wat,txt}` and exits non-zero if
//! there was one. The default targets are the three wasmi ones; a list with `wasmi_vs_wasmtime`
//! (`all` has it) builds the driver with the
//! `wasmtime` feature (a cold build takes minutes). Without `--seconds` or `--modules` the run
//! lasts 60 seconds.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

const TARGETS: [&str; 4] = [
    "plain_vs_instrumented",
    "wasmi_vs_wasmtime",
    "barrier_soundness",
    "instrument_never_panics",
];

/// Runs the fuzz driver.
pub fn run(args: &[String]) -> Result<()> {
    // The wasmi targets by default (no wasmtime build); `--target all` adds wasmi_vs_wasmtime.
    let mut target = "plain_vs_instrumented,barrier_soundness,instrument_never_panics".to_string();
    let mut driver_args: Vec<String> = Vec::new();
    let mut limited = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => target = args.next().context("--target needs a value")?.clone(),
            flag @ ("--seconds" | "--modules" | "--seed" | "--jobs") => {
                let value = args
                    .next()
                    .with_context(|| format!("{flag} needs a value"))?;
                value
                    .parse::<u64>()
                    .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
                limited |= matches!(flag, "--seconds" | "--modules");
                driver_args.extend([flag.to_string(), value.clone()]);
            }
            "-h" | "--help" => {
                println!(
                    "cargo xtask fuzz [--target T[,T...]|all] [--seconds N] [--modules N] \
                     [--seed S] [--jobs J]\n\ntargets: {}",
                    TARGETS.join(", ")
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try `cargo xtask fuzz --help`)"),
        }
    }
    for name in target.split(',') {
        if name != "all" && !TARGETS.contains(&name) {
            bail!(
                "unknown target {name:?} (one of: all, {})",
                TARGETS.join(", ")
            );
        }
    }
    if !limited {
        driver_args.extend(["--seconds".to_string(), "60".to_string()]);
    }
    let wasmtime = target == "all" || target.split(',').any(|t| t == "wasmi_vs_wasmtime");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask's manifest directory has no parent")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "run",
        "--release",
        "-p",
        "canister-vm-fuzz",
        "--bin",
        "fuzz-driver",
    ]);
    if wasmtime {
        cmd.args(["--features", "wasmtime"]);
    }
    cmd.args(["--", "run", "--target", &target, "--out"])
        .arg(root.join("target").join("fuzz-failures"))
        .args(&driver_args);
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("the fuzz run failed ({status}); see the findings above");
    }
    Ok(())
}
