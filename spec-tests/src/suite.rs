//! Finding the official WebAssembly spec suite and its `.wast` files.

use std::path::{Path, PathBuf};

/// The environment variable naming the suite's root folder.
pub const ENV_VAR: &str = "WASM_TESTSUITE";

/// What to do when the suite is missing.
pub const HOW_TO_GET: &str = "the WebAssembly spec suite was not found: run \
     `git clone https://github.com/WebAssembly/testsuite` and set WASM_TESTSUITE to the clone \
     (default location: <repo>/../shared/wasm-testsuite)";

/// The suite's root: `$WASM_TESTSUITE`, else `<repo>/../shared/wasm-testsuite`.
///
/// `None` if that folder does not exist (the runs then report themselves as skipped).
pub fn root() -> Option<PathBuf> {
    let dir = match std::env::var_os(ENV_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wasm-testsuite"),
    };
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// The suite's version: the first line of its `SOURCE` file, if any.
pub fn version(root: &Path) -> Option<String> {
    let source = std::fs::read_to_string(root.join("SOURCE")).ok()?;
    source.lines().next().map(str::to_owned)
}

/// Every `.wast` file under `root`, as sorted paths relative to `root` with `/` separators.
pub fn files(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    collect(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "wast") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}
