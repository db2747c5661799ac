//! Where replay finds the modules that install and upgrade records name by SHA-256.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, StateError};
use crate::state::sha256_hex;

/// Modules by SHA-256: read from a `modules/` directory (`<sha256>.wasm` files, as a state
/// directory keeps them) and/or held in memory.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    dir: Option<PathBuf>,
    loaded: BTreeMap<String, Vec<u8>>,
}

impl Modules {
    /// No modules (add some with [`Modules::insert`]).
    pub fn new() -> Self {
        Modules::default()
    }

    /// The modules in directory `dir` (`<dir>/<sha256>.wasm`).
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Modules {
            dir: Some(dir.into()),
            loaded: BTreeMap::new(),
        }
    }

    /// The directory modules are read from, if any.
    pub fn directory(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Adds `wasm`; returns its SHA-256.
    pub fn insert(&mut self, wasm: Vec<u8>) -> String {
        let sha = sha256_hex(&wasm);
        self.loaded.insert(sha.clone(), wasm);
        sha
    }

    /// The modules held in memory (not those only on disk).
    pub fn loaded(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.loaded.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The module with SHA-256 `sha`; a file whose contents do not hash to its name is an
    /// error.
    pub fn get(&mut self, sha: &str) -> Result<Vec<u8>, String> {
        if let Some(wasm) = self.loaded.get(sha) {
            return Ok(wasm.clone());
        }
        let Some(dir) = &self.dir else {
            return Err(format!("module {sha} is not available"));
        };
        let path = dir.join(format!("{sha}.wasm"));
        let wasm = fs::read(&path).map_err(|e| format!("module {}: {e}", path.display()))?;
        if sha256_hex(&wasm) != sha {
            return Err(format!(
                "module {}: its contents do not hash to its name",
                path.display()
            ));
        }
        self.loaded.insert(sha.to_string(), wasm.clone());
        Ok(wasm)
    }
}

/// Stores `wasm` as `<dir>/<sha256>.wasm` unless it is there already (written to a temporary
/// file, fsynced and renamed); returns the SHA-256.
pub fn store(dir: &Path, wasm: &[u8]) -> Result<String, Error> {
    let sha = sha256_hex(wasm);
    let io = |path: &Path, source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(format!("{sha}.wasm"));
    if path.is_file() {
        let existing = fs::read(&path).map_err(|e| io(&path, e))?;
        if sha256_hex(&existing) == sha {
            return Ok(sha);
        }
        return Err(Error::State(StateError::Corrupt {
            path,
            why: "module contents do not hash to its name".into(),
        }));
    }
    let tmp = dir.join(format!("{sha}.wasm.tmp"));
    {
        use std::io::Write;
        let mut file = fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        file.write_all(wasm).map_err(|e| io(&tmp, e))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
    }
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok(sha)
}
