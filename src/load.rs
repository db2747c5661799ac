//! Reading canister modules: `.wasm`, gzipped `.wasm.gz` (what dfx produces) and `.wat` text.
//!
//! One size limit applies to every form: the binary module, as given, gunzipped or assembled
//! from text, has at most [`MAX_MODULE_BYTES`] bytes (the replica's `WASM_MAX_SIZE`,
//! `rs/config/src/embedders.rs`), with the replica's message. Gzip data is decompressed with a
//! cap, so a gzip bomb stops at the limit, and a file is never read much beyond it.

use std::io::Read;
use std::path::Path;

use crate::error::Error;

const WASM_MAGIC: &[u8] = b"\0asm";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// Largest module accepted, raw, after decompression or assembled from WAT: 100 MiB (the
/// replica's `WASM_MAX_SIZE`).
pub const MAX_MODULE_BYTES: u64 = 100 * 1024 * 1024;
/// Largest WAT text read: WAT spells a data byte in up to 3 characters (`\00`).
const MAX_TEXT_BYTES: u64 = 4 * MAX_MODULE_BYTES;

/// The replica's message for a module over the limit `max` (`WasmValidationError::ModuleTooLarge`).
fn too_large(size: impl std::fmt::Display, max: u64) -> String {
    format!("Wasm module size of {size} exceeds the maximum allowed size of {max}.")
}

/// Reads the module at `path`, decompressing gzip and assembling WAT as needed.
pub fn read_module(path: &Path) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // Read no more than the largest input any form may have (plus one byte, to tell).
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TEXT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > MAX_TEXT_BYTES {
        return Err(Error::Decode {
            origin: path.display().to_string(),
            why: too_large(
                format!("more than {MAX_TEXT_BYTES} bytes"),
                MAX_MODULE_BYTES,
            ),
        });
    }
    module_from_bytes(&bytes, &path.display().to_string())
}

/// Turns binary, gzipped binary or WAT bytes into a binary module. `origin` names the input in
/// errors.
pub fn module_from_bytes(bytes: &[u8], origin: &str) -> Result<Vec<u8>, Error> {
    module_within(bytes, origin, MAX_MODULE_BYTES)
}

/// [`module_from_bytes`] with the size limit `max`.
fn module_within(bytes: &[u8], origin: &str, max: u64) -> Result<Vec<u8>, Error> {
    let decode = |why: String| Error::Decode {
        origin: origin.to_string(),
        why,
    };
    let checked = |module: Vec<u8>| {
        if module.len() as u64 > max {
            return Err(decode(too_large(module.len(), max)));
        }
        Ok(module)
    };
    if bytes.starts_with(WASM_MAGIC) {
        if bytes.len() as u64 > max {
            return Err(decode(too_large(bytes.len(), max)));
        }
        return Ok(bytes.to_vec());
    }
    if bytes.starts_with(GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| decode(format!("invalid gzip data: {e}")))?;
        if out.len() as u64 > max {
            return Err(decode(too_large(
                format!("more than {max} bytes (decompressed)"),
                max,
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
    checked(wat::parse_str(text).map_err(|e| decode(format!("invalid WAT: {e}")))?)
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

    /// A valid module of exactly `len` bytes: a header and a custom section of zeros.
    fn module_of(len: usize) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        let size = (len - m.len() - 1 - 5) as u32;
        m.push(0); // custom section
        // The section size as a 5-byte LEB128.
        for i in 0..5 {
            let byte = ((size >> (7 * i)) & 0x7f) as u8;
            m.push(if i < 4 { byte | 0x80 } else { byte });
        }
        m.push(0); // empty name
        m.resize(len, 0);
        wasmparser::Validator::new().validate_all(&m).unwrap();
        m
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn one_size_limit_for_raw_gzip_and_wat() {
        // The public functions use MAX_MODULE_BYTES; the same code is tested with 1 MiB.
        let max = 1 << 20;
        let err = |bytes: &[u8], origin| module_within(bytes, origin, max).unwrap_err().to_string();
        let at = module_of(max as usize);
        let over = module_of(max as usize + 1);
        assert_eq!(module_within(&at, "x", max).unwrap(), at);
        assert_eq!(module_within(&gzip(&at), "x", max).unwrap(), at);
        assert_eq!(
            err(&over, "big.wasm"),
            "big.wasm: Wasm module size of 1048577 exceeds the maximum allowed size of 1048576."
        );
        // Gzipped, the same module (zeros: a bomb of ~1 KiB) stops at the limit.
        let bomb = gzip(&over);
        assert!(bomb.len() < 8192, "{}", bomb.len());
        assert_eq!(
            err(&bomb, "big.wasm.gz"),
            "big.wasm.gz: Wasm module size of more than 1048576 bytes (decompressed) exceeds \
             the maximum allowed size of 1048576."
        );
        let wat = format!("(module (data \"{}\"))", "a".repeat(max as usize));
        assert!(
            err(wat.as_bytes(), "big.wat").starts_with("big.wat: Wasm module size of 1048"),
            "{}",
            err(wat.as_bytes(), "big.wat")
        );
        assert_eq!(
            module_from_bytes(&over, "x").unwrap().len() as u64,
            max + 1,
            "the real limit is larger"
        );
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
