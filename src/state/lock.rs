//! An exclusive lock per state directory, held by every handle that opens it
//! ([`StateDir::lock`](super::StateDir::lock)), so two processes never interleave their
//! commits.
//!
//! The lock is an advisory `flock(2)` (through `std::fs::File::lock`) on `<dir>/LOCK`; the
//! operating system drops it when the process exits, killed or not, so a crash never leaves a
//! directory locked. A second process waits for it, saying so once on stderr. Within one
//! process a second handle on a directory that is already open is refused with a clear error
//! (waiting would deadlock). Where the platform has no file locks (WASI preview 1), the lock is
//! a no-op: the caller must not run two processes on one directory there.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, StateError};

/// The lock file's name inside a state directory.
pub const LOCK_FILE: &str = "LOCK";

/// Directories locked by this process (canonical paths).
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// An exclusive lock on a state directory, released on drop.
#[derive(Debug)]
pub struct DirLock {
    /// The lock file (`None` where the platform has no locks).
    _file: Option<File>,
    key: PathBuf,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|p| p != &self.key);
        // Closing `_file` (after this) releases the OS lock.
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Takes the exclusive lock on the existing directory `dir`, waiting for another process that
/// holds it (after calling `on_wait` once).
pub(crate) fn lock(dir: &Path, on_wait: &mut dyn FnMut()) -> Result<DirLock, Error> {
    // WASI has no `canonicalize`: the path as given is the key there.
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if held.contains(&key) {
            return Err(Error::State(StateError::InUse {
                path: dir.to_path_buf(),
            }));
        }
        held.push(key.clone());
    }
    // From here on, `guard` unregisters the key if taking the OS lock fails.
    let mut guard = DirLock { _file: None, key };
    if cfg!(target_os = "wasi") {
        // No file locks in WASI preview 1: documented above.
        return Ok(guard);
    }
    let path = dir.join(LOCK_FILE);
    let mut waited = false;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                if !waited {
                    on_wait();
                    waited = true;
                }
                file.lock().map_err(|e| io_err(&path, e))?;
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                // No file locks on this platform (WASI): documented above.
                return Ok(guard);
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, e)),
        }
        // The holder may have removed the directory's lock file (a failed install cleans up):
        // then this lock is on a file nobody else will open, so start again.
        if same_file(&file, &path) {
            guard._file = Some(file);
            return Ok(guard);
        }
        if !dir.is_dir() {
            return Err(Error::State(StateError::NoCanister {
                path: dir.to_path_buf(),
            }));
        }
    }
}

/// Whether `file` is (still) the file at `path`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `file` is (still) the file at `path` (assumed where inodes are not available).
#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.is_file()
}

/// Removes the lock file of a directory that `lock` (held) created, before the directory
/// itself is removed (see [`same_file`]).
pub(crate) fn remove_lock_file(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(LOCK_FILE));
}
