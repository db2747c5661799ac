//! `cargo xtask demo`: builds the CLI and drives `examples/counter.wat` end to end in a fresh
//! state directory, echoing each command, so a new user sees every lifecycle step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the repository) or `<repo>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Runs the demo. `args` may name the state directory (default: `target/demo-state`).
///
/// The CLI is built once, in release (the xtask itself links none of the runtime), with cargo's
/// own progress output; each step after that is echoed as the command it runs.
pub fn run(args: &[String]) -> Result<()> {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!(
        "demo: building the CLI (`cargo build --release --bin canister-vm`; a first build takes \
         minutes, later ones seconds)"
    );
    let started = Instant::now();
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "--bin", "canister-vm"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building canister-vm failed ({status})");
    }
    println!(
        "demo: built canister-vm in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let bin = target_dir(&root).join("release/canister-vm");
    let state = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/demo-state"));
    if state.exists() {
        std::fs::remove_dir_all(&state).with_context(|| format!("removing {}", state.display()))?;
    }
    let example = root.join("examples/counter.wat");
    let state_s = state.display().to_string();
    let example_s = example.display().to_string();
    let steps: Vec<Vec<&str>> = vec![
        vec!["install", &example_s, "--state", &state_s],
        vec!["call", &state_s, "inc", "--stats"],
        vec!["call", &state_s, "inc", "--stats"],
        vec!["call", &state_s, "read", "--query"],
        vec!["upgrade", &state_s, &example_s],
        vec!["call", &state_s, "inc", "--stats"],
        vec!["info", &state_s],
    ];
    println!(
        "demo: {} steps on examples/counter.wat, state in {}",
        steps.len(),
        state.display()
    );
    for step in steps {
        println!("$ canister-vm {}", step.join(" "));
        let status = Command::new(&bin)
            .args(&step)
            .status()
            .with_context(|| format!("running {}", bin.display()))?;
        if !status.success() {
            bail!("`canister-vm {}` failed with {status}", step.join(" "));
        }
    }
    Ok(())
}
