//! Reading canister modules: `.wasm`, gzipped `.wasm.gz` (what dfx produces) and `.wat` text.

use std::io::Read;
use std::path::Path;

use crate::error::Error;

const WASM_MAGIC: &[u8] = b"\0asm";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// Largest module accepted after decompression (the IC allows 100 MiB).
const MAX_MODULE_BYTES: u64 = 100 * 1024 * 1024;

/// Reads the module at `path`, decompressing gzip and assembling WAT as needed.
pub fn read_module(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    module_from_bytes(&bytes, &path.display().to_string())
}

/// Turns binary, gzipped binary or WAT bytes into a binary module. `origin` names the input in
/// errors.
pub fn module_from_bytes(bytes: &[u8], origin: &str) -> Result<Vec<u8>, Error> {
    let decode = |why: String| Error::Decode {
        origin: origin.to_string(),
        why,
    };
    if bytes.starts_with(WASM_MAGIC) {
        return Ok(bytes.to_vec());
    }
    if bytes.starts_with(GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_MODULE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| decode(format!("invalid gzip data: {e}")))?;
        if out.len() as u64 > MAX_MODULE_BYTES {
            return Err(decode(format!(
                "decompressed module exceeds {MAX_MODULE_BYTES} bytes"
            )));
        }
        if !out.starts_with(WASM_MAGIC) {
            return Err(decode("gzip data does not contain a Wasm module".into()));
        }
        return Ok(out);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        decode("not a Wasm module (no \\0asm header), not gzip and not WAT text".into())
    })?;
    wat::parse_str(text).map_err(|e| decode(format!("invalid WAT: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_binary_gzip_and_wat() {
        let bin = wat::parse_str("(module)").unwrap();
        assert_eq!(module_from_bytes(&bin, "x").unwrap(), bin);
        assert_eq!(module_from_bytes(b"(module)", "x").unwrap(), bin);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bin).unwrap();
        assert_eq!(module_from_bytes(&gz.finish().unwrap(), "x").unwrap(), bin);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = module_from_bytes(&[0xff, 0x00, 0x12], "junk.wasm").unwrap_err();
        assert!(
            err.to_string().starts_with("junk.wasm: not a Wasm module"),
            "{err}"
        );
        let err = module_from_bytes(b"(module (func (oops)))", "bad.wat").unwrap_err();
        assert!(err.to_string().contains("invalid WAT"), "{err}");
        let err = module_from_bytes(&[0x1f, 0x8b, 1, 2, 3], "bad.wasm.gz").unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }
}
