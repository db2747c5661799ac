//! A canister's state directory.
//!
//! Layout:
//!
//! ```text
//! <dir>/CURRENT                  name of the live snapshot, replaced atomically (write + rename)
//! <dir>/modules/<sha256>.wasm    every module ever installed, content-addressed
//! <dir>/snapshot-<n>/state.json  globals, system state, sizes, module hash, stable mode, clock
//! <dir>/snapshot-<n>/heap.bin    heap bytes
//! <dir>/snapshot-<n>/stable.bin  stable memory bytes
//! ```
//!
//! A save writes a complete new snapshot directory under a temporary name, fsyncs it, renames it
//! into place and only then switches `CURRENT`: a crash at any point leaves either the old or
//! the new state readable, never a mix. Old snapshots are removed after the switch.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CanisterState, Clock, GlobalValue, StableMode, SystemState, sha256_hex};
use crate::error::{Error, StateError};
use crate::runtime::ic0::HeapType;

const FORMAT: u32 = 1;
const CURRENT: &str = "CURRENT";

/// What `state.json` holds.
#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    module_sha256: String,
    stable_mode: StableMode,
    heap_type: HeapType,
    heap_bytes: u64,
    heap_sha256: String,
    stable_bytes: u64,
    stable_sha256: String,
    globals: Vec<(u32, GlobalValue)>,
    system: SystemState,
    clock: Clock,
}

/// A canister's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, why: impl Into<String>) -> Error {
    Error::State(StateError::Corrupt {
        path: path.to_path_buf(),
        why: why.into(),
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = File::create(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    match File::open(path) {
        Ok(dir) => {
            let _ = dir.sync_all();
            Ok(())
        }
        Err(e) => Err(io_err(path, e)),
    }
}

impl StateDir {
    /// A handle on the state directory at `path` (nothing is read or created yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory holds a canister.
    pub fn exists(&self) -> bool {
        self.path.join(CURRENT).is_file()
    }

    fn current_snapshot(&self) -> Result<(u64, PathBuf), Error> {
        let current = self.path.join(CURRENT);
        let name = match fs::read_to_string(&current) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::State(StateError::NoCanister {
                    path: self.path.clone(),
                }));
            }
            Err(e) => return Err(io_err(&current, e)),
        };
        let name = name.trim();
        let n = name
            .strip_prefix("snapshot-")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| corrupt(&current, format!("`{name}` is not a snapshot name")))?;
        Ok((n, self.path.join(name)))
    }

    /// Reads the committed state.
    pub fn load(&self) -> Result<CanisterState, Error> {
        let (_, snap) = self.current_snapshot()?;
        let manifest_path = snap.join("state.json");
        let text = fs::read_to_string(&manifest_path).map_err(|e| io_err(&manifest_path, e))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| corrupt(&manifest_path, format!("invalid JSON: {e}")))?;
        if m.format != FORMAT {
            return Err(corrupt(
                &manifest_path,
                format!("format {} is not supported (expected {FORMAT})", m.format),
            ));
        }
        let read_checked = |name: &str, len: u64, hash: &str| -> Result<Vec<u8>, Error> {
            let path = snap.join(name);
            let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
            if bytes.len() as u64 != len || sha256_hex(&bytes) != hash {
                return Err(corrupt(&path, "size or hash differs from state.json"));
            }
            Ok(bytes)
        };
        let heap = read_checked("heap.bin", m.heap_bytes, &m.heap_sha256)?;
        let stable = read_checked("stable.bin", m.stable_bytes, &m.stable_sha256)?;
        let wasm = self.read_module(&m.module_sha256)?;
        Ok(CanisterState {
            wasm,
            stable_mode: m.stable_mode,
            heap_type: m.heap_type,
            heap,
            stable,
            globals: m.globals,
            system: m.system,
            clock: m.clock,
        })
    }

    /// Reads the module with this SHA-256 from `modules/`.
    pub fn read_module(&self, sha256: &str) -> Result<Vec<u8>, Error> {
        let path = self.path.join("modules").join(format!("{sha256}.wasm"));
        let wasm = fs::read(&path).map_err(|e| io_err(&path, e))?;
        if sha256_hex(&wasm) != sha256 {
            return Err(corrupt(&path, "module hash differs from its name"));
        }
        Ok(wasm)
    }

    /// Commits `state` as the new current state, atomically.
    pub fn save(&self, state: &CanisterState) -> Result<(), Error> {
        fs::create_dir_all(&self.path).map_err(|e| io_err(&self.path, e))?;
        let module_sha256 = self.write_module(&state.wasm)?;
        let next = match self.current_snapshot() {
            Ok((n, _)) => n + 1,
            Err(Error::State(StateError::NoCanister { .. })) => 0,
            Err(e) => return Err(e),
        };
        let name = format!("snapshot-{next}");
        let tmp = self.path.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| io_err(&tmp, e))?;
        write_synced(&tmp.join("heap.bin"), &state.heap)?;
        write_synced(&tmp.join("stable.bin"), &state.stable)?;
        let manifest = Manifest {
            format: FORMAT,
            module_sha256,
            stable_mode: state.stable_mode,
            heap_type: state.heap_type,
            heap_bytes: state.heap.len() as u64,
            heap_sha256: sha256_hex(&state.heap),
            stable_bytes: state.stable.len() as u64,
            stable_sha256: sha256_hex(&state.stable),
            globals: state.globals.clone(),
            system: state.system.clone(),
            clock: state.clock.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        write_synced(&tmp.join("state.json"), &json)?;
        sync_dir(&tmp)?;
        let snap = self.path.join(&name);
        fs::rename(&tmp, &snap).map_err(|e| io_err(&snap, e))?;
        sync_dir(&self.path)?;
        // Switch CURRENT atomically.
        let current_tmp = self.path.join("CURRENT.tmp");
        write_synced(&current_tmp, name.as_bytes())?;
        let current = self.path.join(CURRENT);
        fs::rename(&current_tmp, &current).map_err(|e| io_err(&current, e))?;
        sync_dir(&self.path)?;
        self.remove_stale_snapshots(&name);
        Ok(())
    }

    fn write_module(&self, wasm: &[u8]) -> Result<String, Error> {
        let sha = sha256_hex(wasm);
        let modules = self.path.join("modules");
        fs::create_dir_all(&modules).map_err(|e| io_err(&modules, e))?;
        let path = modules.join(format!("{sha}.wasm"));
        if !path.exists() {
            let tmp = modules.join(format!("{sha}.wasm.tmp"));
            write_synced(&tmp, wasm)?;
            fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
            sync_dir(&modules)?;
        }
        Ok(sha)
    }

    /// Removes every snapshot but `keep` (best effort: leftovers are harmless).
    fn remove_stale_snapshots(&self, keep: &str) {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("snapshot-") && name != keep {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(heap_byte: u8) -> CanisterState {
        CanisterState {
            wasm: b"\0asm\x01\0\0\0".to_vec(),
            stable_mode: StableMode::Syscall,
            heap_type: HeapType::Wasm32,
            heap: vec![heap_byte; 65536],
            stable: vec![7; 65536 * 2],
            globals: vec![(0, GlobalValue::I32(42)), (3, GlobalValue::F64(1))],
            system: SystemState::new(vec![4]),
            clock: Clock::default(),
        }
    }

    #[test]
    fn save_then_load_round_trips_and_keeps_one_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("c"));
        assert!(!dir.exists());
        assert!(matches!(
            dir.load(),
            Err(Error::State(StateError::NoCanister { .. }))
        ));
        dir.save(&sample(1)).unwrap();
        dir.save(&sample(2)).unwrap();
        assert_eq!(dir.load().unwrap(), sample(2));
        let snapshots: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot-"))
            .collect();
        assert_eq!(snapshots.len(), 1);
    }

    #[test]
    fn a_torn_save_leaves_the_previous_state() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        dir.save(&sample(1)).unwrap();
        // A crash after writing the next snapshot but before switching CURRENT.
        let half = tmp.path().join("snapshot-1.tmp");
        fs::create_dir(&half).unwrap();
        fs::write(half.join("heap.bin"), b"partial").unwrap();
        assert_eq!(dir.load().unwrap(), sample(1));
        // The next save still works and replaces the leftover.
        dir.save(&sample(3)).unwrap();
        assert_eq!(dir.load().unwrap(), sample(3));
    }

    #[test]
    fn corrupted_files_are_reported_not_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        dir.save(&sample(1)).unwrap();
        let heap = tmp.path().join("snapshot-0").join("heap.bin");
        fs::write(&heap, vec![9u8; 65536]).unwrap();
        let err = dir.load().unwrap_err().to_string();
        assert!(err.contains("heap.bin"), "{err}");
    }
}
