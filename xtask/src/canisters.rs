//! `cargo xtask build-canisters [extra cargo args]`: builds the Rust test canisters in
//! `test-canisters/` (a separate cargo workspace) for `wasm32-unknown-unknown`.
//!
//! `test-canisters/assets` is a workspace of its own, built second (its Cargo.toml says why).
//! Outputs go to `target/test-canisters/wasm32-unknown-unknown/release/<name>.wasm`.
//! The integration tests build the same way (see `tests/support/canisters.rs`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

#[path = "../../tests/support/canisters.rs"]
mod support;

pub use support::{CANISTERS, WASM_TARGET, ensure_target};

/// The directory the canister build writes to: `<root>/target/test-canisters`.
pub fn target_dir(root: &Path) -> PathBuf {
    root.join("target").join("test-canisters")
}

/// The wasm file of every test canister, in [`CANISTERS`] order.
pub fn canister_paths(root: &Path) -> [PathBuf; CANISTERS.len()] {
    let out_dir = target_dir(root)
        .join("wasm32-unknown-unknown")
        .join("release");
    CANISTERS.map(|name| out_dir.join(format!("{name}.wasm")))
}

/// Builds the test canisters; `args` are passed on to `cargo build`.
pub fn build_canisters(args: &[String]) -> Result<()> {
    let root = repo_root()?;
    support::ensure_wasm_target(&root).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    for mut cmd in support::build_commands(&root) {
        cmd.args(args);
        let status = cmd.status().context("running cargo")?;
        if !status.success() {
            bail!("building the test canisters failed ({status})");
        }
    }
    eprintln!(
        "built the test canisters in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    for wasm in canister_paths(&root) {
        if !wasm.is_file() {
            bail!(
                "expected {} after the build, but it is missing",
                wasm.display()
            );
        }
        println!("{}", wasm.display());
    }
    Ok(())
}

/// The repository root: the parent of xtask's manifest directory.
fn repo_root() -> Result<PathBuf> {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}
