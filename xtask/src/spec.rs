//! `cargo xtask spec [--mode plain|instrumented|soundness|all] [--all-files] [FILTER]`: runs the
//! WebAssembly spec suite and prints a table per file and mode; exits non-zero if anything in scope
//! failed.
//!
//! The runner is the `spec-table` binary of the `spec-tests` crate (`spec-tests/src/bin/`), run
//! through cargo, so that the xtask itself does not depend on canister-vm and wasmi: every other
//! xtask command (the demo above all) then starts after a few seconds' build instead of a debug
//! build of the whole runtime.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs the spec suite: `cargo run -p spec-tests --bin spec-table -- <args>`.
pub fn run(args: &[String]) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the repository")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "run",
            "--package",
            "spec-tests",
            "--bin",
            "spec-table",
            "--",
        ])
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("the spec suite failed ({status})");
    }
    Ok(())
}
