//! Candid text ↔ bytes for arguments and replies (the `candid` and `candid_parser` crates).

use crate::error::Error;

/// Encodes Candid text such as `(7 : nat64, blob "abc")` to Candid bytes.
pub fn encode_args(text: &str) -> Result<Vec<u8>, Error> {
    let err = |why: String| Error::Candid {
        text: text.to_string(),
        why,
    };
    let args = candid_parser::parse_idl_args(text).map_err(|e| err(e.to_string()))?;
    args.to_bytes().map_err(|e| err(e.to_string()))
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
    fn malformed_text_is_an_error() {
        let err = encode_args("(7 : nat64").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid Candid argument `(7 : nat64`"),
            "{err}"
        );
    }
}
