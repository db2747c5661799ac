//! Candid text ↔ bytes for arguments and replies (the `candid` and `candid_parser` crates):
//! untyped here, typed by a canister's interface in [`Interface`], and as JSON in [`json`].

use crate::error::Error;

mod interface;
pub mod json;

pub use interface::{Interface, MAX_INTERFACE_BYTES, METADATA_SECTIONS};

/// The deepest nesting of values (`opt`, `vec { }`, `record { }`, `variant { }`, parentheses)
/// that Candid text may have. The parser's cost grows with the square of the depth (30 000
/// nested `opt`s took 52 s), and real arguments nest a few levels.
pub const MAX_NESTING: usize = 256;

/// Encodes Candid text such as `(7 : nat64, blob "abc")` to Candid bytes.
///
/// Text nested deeper than [`MAX_NESTING`] levels is refused before it is parsed.
pub fn encode_args(text: &str) -> Result<Vec<u8>, Error> {
    parse_args(text)?.to_bytes().map_err(|e| Error::Candid {
        text: excerpt(text, 100),
        why: e.to_string(),
    })
}

/// Parses Candid text into untyped values, refusing text nested deeper than [`MAX_NESTING`]
/// levels before it is parsed.
pub fn parse_args(text: &str) -> Result<candid::IDLArgs, Error> {
    let err = |why: String| Error::Candid {
        text: excerpt(text, 100),
        why,
    };
    let depth = nesting(text);
    if depth > MAX_NESTING {
        return Err(err(format!(
            "values are nested {depth} levels deep; at most {MAX_NESTING} are accepted"
        )));
    }
    candid_parser::parse_idl_args(text).map_err(|e| err(e.to_string()))
}

/// `text` cut to about `max` bytes, at a character boundary, with `…` where it was cut.
fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An upper bound of how deeply the values in Candid text nest, from its tokens alone: every open
/// `(` or `{` is a level, and so is each `opt` in a chain (`opt opt 1`), which ends at `,`, `;`
/// or a closing bracket. Strings and comments are skipped. Linear in the text's length.
fn nesting(text: &str) -> usize {
    let bytes = text.as_bytes();
    // Per open bracket: the `opt` chain that stood before it.
    let mut open: Vec<usize> = Vec::new();
    let (mut enclosing, mut chain, mut max) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'(' | b'{' => {
                open.push(chain);
                enclosing += chain + 1;
                chain = 0;
                max = max.max(enclosing);
            }
            b')' | b'}' => {
                enclosing = enclosing.saturating_sub(open.pop().map_or(0, |c| c + 1));
                chain = 0;
            }
            b',' | b';' => chain = 0,
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if &bytes[start..i] == b"opt" {
                    chain += 1;
                    max = max.max(enclosing + chain);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    max
}

/// Decodes Candid bytes to text, like `dfx canister call` prints a reply; bytes that are not
/// Candid are shown as hex.
pub fn decode_reply(bytes: &[u8]) -> String {
    match candid::IDLArgs::from_bytes(bytes) {
        Ok(args) => args.to_string(),
        Err(_) => format!("(non-Candid reply) {}", hex::encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values() {
        let bytes = encode_args("(7 : nat64, blob \"abc\")").unwrap();
        assert!(bytes.starts_with(b"DIDL"));
        let text = decode_reply(&bytes);
        assert!(text.contains("7 : nat64"), "{text}");
        assert!(text.contains("blob \"abc\""), "{text}");
    }

    #[test]
    fn nesting_counts_brackets_and_opt_chains() {
        assert_eq!(nesting("()"), 1);
        assert_eq!(nesting("(opt opt 1, opt 2)"), 3);
        assert_eq!(nesting("(record { a = vec { opt 1 } })"), 4);
        assert_eq!(nesting("(\"(((\\\" {{\", /* (((( */ 1) // ((("), 1);
        assert_eq!(nesting("(vec { 1 }, vec { 2 })"), 2);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("({}1)", "opt ".repeat(30_000));
        let err = encode_args(&deep).unwrap_err().to_string();
        assert!(
            err.contains("nested 30001 levels deep; at most 256 are accepted"),
            "{}",
            &err[err.len() - 200..]
        );
        let deep = format!("({}{})", "vec {".repeat(300), "}".repeat(300));
        assert!(encode_args(&deep).is_err());
        // Within the bound, nesting works as before.
        let ok = format!("({}1)", "opt ".repeat(MAX_NESTING - 1));
        assert!(encode_args(&ok).unwrap().starts_with(b"DIDL"));
    }

    #[test]
    fn malformed_text_is_an_error() {
        let err = encode_args("(7 : nat64").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid Candid argument `(7 : nat64`"),
            "{err}"
        );
    }
}
