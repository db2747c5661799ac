//! Helpers: run the CLI binary, read a state directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit status 0 and returns stdout trimmed.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self.stdout.trim().to_string()
    }
    /// Asserts exit status `code` and returns stderr.
    #[track_caller]
    pub fn fails(self, code: i32) -> String {
        assert_eq!(self.code, code, "expected exit {code}, got {self:#?}");
        self.stderr
    }
}

/// Runs `canister-vm args...`.
pub fn cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_canister-vm"))
        .args(args)
        .output()
        .expect("the canister-vm binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `wat` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The committed heap and stable bytes of the first canister of the state directory `dir`.
pub fn memories(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let state = canister_vm::state::StateDir::member(dir, dir.join("modules"))
        .load()
        .unwrap();
    (state.heap, state.stable)
}
