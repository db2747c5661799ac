//! `cargo xtask build-canisters [extra cargo args]`: builds the Rust test canisters in
//! `test-canisters/` (a separate cargo workspace) for `wasm32-unknown-unknown`.
//!
//! Outputs go to `target/test-canisters/wasm32-unknown-unknown/release/{kv,counter,raw_stable}.wasm`.
//! The integration tests build the same way (see `tests/support/canisters.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The canisters in `test-canisters/`, by crate (and wasm file) name.
pub const CANISTERS: [&str; 3] = ["kv", "counter", "raw_stable"];

/// Inherited variables that would leak an outer build's settings into the canister build.
const CLEARED_ENV: [&str; 12] = [
    "CARGO_TARGET_DIR",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_INCREMENTAL",
    "__CARGO_FIX_PLZ",
];

/// Prefixes of inherited variables that are cleared too: the outer build's settings
/// (`CARGO_BUILD_TARGET`, `CARGO_BUILD_RUSTFLAGS`, `CARGO_PROFILE_RELEASE_*`) and the per-crate
/// variables cargo sets for build scripts and tests.
const CLEARED_ENV_PREFIXES: [&str; 8] = [
    "CARGO_BUILD_",
    "CARGO_PROFILE_",
    "CARGO_MANIFEST_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
];

/// The directory the canister build writes to: `<root>/target/test-canisters`.
pub fn target_dir(root: &Path) -> PathBuf {
    root.join("target").join("test-canisters")
}

/// The wasm file of every test canister, in [`CANISTERS`] order.
pub fn canister_paths(root: &Path) -> [PathBuf; 3] {
    let out_dir = target_dir(root)
        .join("wasm32-unknown-unknown")
        .join("release");
    CANISTERS.map(|name| out_dir.join(format!("{name}.wasm")))
}

/// Builds the test canisters; `args` are passed on to `cargo build`.
pub fn build_canisters(args: &[String]) -> Result<()> {
    let root = repo_root()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--manifest-path",
        ])
        .arg(root.join("test-canisters").join("Cargo.toml"))
        .args(args);
    for (var, _) in std::env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        if CLEARED_ENV.contains(&var) || CLEARED_ENV_PREFIXES.iter().any(|p| var.starts_with(p)) {
            cmd.env_remove(var);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir(&root));

    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!("building the test canisters failed ({status})");
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
