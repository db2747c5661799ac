//! Builds the Rust test canisters (`test-canisters/`) once per test process and hands out their
//! paths. Include with `#[path = "../support/canisters.rs"] mod canisters;` (std only).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The canisters in `test-canisters/`, by crate (and wasm file) name.
pub const CANISTERS: [&str; 3] = ["kv", "counter", "raw_stable"];

/// Inherited variables from the outer `cargo test` that would break or skew the nested build.
const CLEARED_ENV: [&str; 10] = [
    "CARGO_TARGET_DIR",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "RUSTC",
];

/// The repository root (the root crate's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the canister wasm files are written.
pub fn canisters_dir() -> PathBuf {
    repo_root().join("target/test-canisters/wasm32-unknown-unknown/release")
}

/// Builds every test canister (once per process; later calls return at once).
pub fn build_all() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = repo_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
            ])
            .arg(root.join("test-canisters/Cargo.toml"));
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("CARGO_TARGET_DIR", root.join("target/test-canisters"));
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("could not run cargo to build the test canisters: {e}"));
        if !out.status.success() {
            panic!(
                "building the test canisters failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        canisters_dir()
    })
}

/// The path of the built test canister `name` (`kv`, `counter` or `raw_stable`), building all of
/// them first if this process has not yet.
pub fn test_canister(name: &str) -> PathBuf {
    let path = build_all().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "test canister {name:?} not found at {}",
        path.display()
    );
    path
}

/// The bytes of the built test canister `name`.
pub fn test_canister_bytes(name: &str) -> Vec<u8> {
    let path = test_canister(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
