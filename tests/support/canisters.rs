//! Builds the Rust test canisters (`test-canisters/`) once per test process and hands out their
//! paths. Include with `#[path = "../support/canisters.rs"] mod canisters;` (std only).
//!
//! The build is `cargo build --release --target wasm32-unknown-unknown` of the separate
//! `test-canisters` workspace, then of `test-canisters/assets` (a workspace of its own: it is on an
//! older ic-cdk, see its Cargo.toml), into `<repo>/target/test-canisters`, the same as
//! `cargo xtask build-canisters`. Test binaries running at the same time all ask cargo, whose lock
//! on that target directory serialises them; after the first build it is a no-op check (~0.1s).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The canisters in `test-canisters/`, by crate (and wasm file) name.
pub const CANISTERS: [&str; 7] = [
    "kv",
    "counter",
    "raw_stable",
    "calls",
    "assets",
    "typed",
    "bench",
];

/// The cargo workspaces the canisters are built from, relative to the repository root, in build
/// order: `test-canisters` (every canister but `assets`) and `test-canisters/assets`, whose
/// ic-cdk 0.18 cannot share a dependency graph with the others' ic-cdk 0.20 (both versions'
/// executors declare the same cargo `links` key).
pub const MANIFESTS: [&str; 2] = [
    "test-canisters/Cargo.toml",
    "test-canisters/assets/Cargo.toml",
];

/// Inherited variables from the outer `cargo test` that would break or skew the nested build.
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

/// Prefixes of inherited variables cleared too: the outer build's settings (`CARGO_BUILD_TARGET`,
/// `CARGO_BUILD_RUSTFLAGS`, `CARGO_PROFILE_RELEASE_*`) and the per-crate variables cargo sets for
/// tests.
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

/// `cargo build --release --target wasm32-unknown-unknown` of each of [`MANIFESTS`] into
/// `<root>/target/test-canisters`, with the outer build's environment cleared; run them in order.
/// Shared with `cargo xtask build-canisters`, which includes this file.
pub fn build_commands(root: &Path) -> Vec<Command> {
    MANIFESTS
        .iter()
        .map(|manifest| build_command(root, manifest))
        .collect()
}

/// `cargo build --release --target wasm32-unknown-unknown --manifest-path <root>/<manifest>` into
/// `<root>/target/test-canisters`, with the outer build's environment cleared.
pub fn build_command(root: &Path, manifest: &str) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(root.join(manifest));
    for (var, _) in std::env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        if CLEARED_ENV.contains(&var) || CLEARED_ENV_PREFIXES.iter().any(|p| var.starts_with(p)) {
            cmd.env_remove(var);
        }
    }
    cmd.env("CARGO_TARGET_DIR", root.join("target/test-canisters"));
    cmd
}

/// The target the test canisters are built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Makes sure the toolchain has the standard library for [`WASM_TARGET`] (see [`ensure_target`]).
pub fn ensure_wasm_target(root: &Path) -> Result<(), String> {
    ensure_target(root, WASM_TARGET)
}

/// Makes sure the toolchain that builds in `root` has the standard library for `target`: where it
/// is missing and rustup is present, runs `rustup target add <target>` (rustup does not always add
/// the targets that `rust-toolchain.toml` lists, e.g. with `RUSTUP_AUTO_INSTALL=0`); if that fails,
/// or there is no rustup, the error is one line naming what to run. Shared with the xtask commands
/// that build for a wasm target.
pub fn ensure_target(root: &Path, target: &str) -> Result<(), String> {
    if has_target(root, target) {
        return Ok(());
    }
    let fix = format!("rustup target add {target}");
    eprintln!("the {target} target is missing: running `{fix}`");
    match Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", target])
        .status()
    {
        Ok(status) if status.success() && has_target(root, target) => Ok(()),
        Ok(status) if status.success() => Err(format!(
            "`{fix}` succeeded but rustc still has no standard library for {target}: check which \
             toolchain `rustc` is (`rustup show`)"
        )),
        Ok(status) => Err(format!(
            "the {target} target is missing and `{fix}` failed ({status}): run `{fix}` by hand"
        )),
        Err(_) => Err(format!(
            "the {target} target is missing and rustup was not found: install the target's \
             standard library (with rustup: `{fix}`)"
        )),
    }
}

/// Whether the toolchain that builds in `root` has `target`'s `libcore`.
fn has_target(root: &Path, target: &str) -> bool {
    let Ok(out) = Command::new("rustc")
        .current_dir(root)
        .args(["--print", "target-libdir", "--target", target])
        .output()
    else {
        return false;
    };
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
    })
}

/// The repository root (the root crate's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the canister wasm files are written.
pub fn canisters_dir() -> PathBuf {
    repo_root().join("target/test-canisters/wasm32-unknown-unknown/release")
}

/// Builds every test canister (once per process; later calls return at once) and returns the
/// directory holding the wasm files. Panics with cargo's stderr if the build fails.
pub fn build_all() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = repo_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        if let Err(why) = ensure_wasm_target(&root) {
            panic!("building the test canisters: {why}");
        }
        for mut cmd in build_commands(&root) {
            let out = cmd.output().unwrap_or_else(|e| {
                panic!(
                    "could not run {} to build the test canisters: {e}",
                    Path::new(&cargo).display()
                )
            });
            if !out.status.success() {
                panic!(
                    "building the test canisters failed ({}); `cargo xtask build-canisters` runs \
                     the same build. cargo's stderr:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        canisters_dir()
    })
}

/// The path of the built test canister `name` (one of [`CANISTERS`]), building all of
/// them first if this process has not yet.
pub fn test_canister(name: &str) -> PathBuf {
    let path = build_all().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "test canister {name:?} not found at {} (known: {CANISTERS:?})",
        path.display()
    );
    path
}

/// The bytes of the built test canister `name`.
pub fn test_canister_bytes(name: &str) -> Vec<u8> {
    let path = test_canister(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
