//! IC certificates made by canister-vm's (simulated) subnet: the data certificate a canister
//! reads with `ic0.data_certificate_copy` in a non-replicated query, and certificates for any
//! state tree witness (the HTTP interface's `read_state` will use [`RootKey::certify`]).
//!
//! What is implemented, as the IC interface specification defines it (sections "Certification",
//! "Certificate", "Encoding of certificates", "BLS signatures", "Certified data"):
//!
//! - A certificate is the CBOR map `{ "tree": <hash tree>, "signature": <bytes> }` behind the
//!   self-describing CBOR tag 55799 (`d9 d9 f7`), exactly as the replica writes it
//!   (`serde_cbor::Serializer::self_describe` + `Certificate { tree, signature, delegation }` with
//!   `delegation` left out when absent). canister-vm is a single root subnet: no delegation.
//! - `signature` is a BLS12-381 signature, min-sig "basic" scheme (signature in G1, 48 bytes
//!   compressed; public key in G2, 96 bytes compressed), hash-to-G1 with the ciphersuite DST
//!   [`BLS_DST`], over the message `b"\x0Dic-state-root" ++ reconstruct(tree)`, where
//!   `reconstruct` is the tree's root hash (`HashTree::digest`, the spec's domain-separated
//!   SHA-256 over `ic-hashtree-{empty,fork,labeled,leaf}`).
//! - The root key is handed to agents DER-encoded: the 37-byte prefix [`IC_ROOT_KEY_DER_PREFIX`]
//!   (SubjectPublicKeyInfo with algorithm OID 1.3.6.1.4.1.44668.5.3.1.2.1 and curve OID
//!   1.3.6.1.4.1.44668.5.3.2.1, then a 97-byte BIT STRING header) followed by the 96 key bytes;
//!   the same prefix as dfinity's agents and `ic-certificate-verification`.
//! - The data certificate's tree holds `/canister/<canister_id>/certified_data` (the canister's
//!   certified data, the empty blob if never set) and `/time` (unsigned LEB128 of the time in
//!   nanoseconds) — the two paths the replica asks `read_certified_state` for when it makes a
//!   query's data certificate (`get_latest_certified_state_and_data_certificate` in dfinity/ic:
//!   `canister/<id>/certified_data` and `time`). The replica's witness prunes every other part
//!   of its state tree to a `Pruned` digest; the state this function is given consists of just
//!   those two leaves, so there is nothing else to prune: the tree is
//!   `fork(labeled("canister", labeled(id, labeled("certified_data", leaf(data)))),
//!         labeled("time", leaf(leb128(time))))`
//!   (labels in the spec's order, "canister" < "time"). Its digest is the root hash of that
//!   two-leaf state tree. Lookups of the two certified paths answer as on the replica's
//!   certificate; the one difference is for paths outside them (say
//!   `/canister/<id>/module_hash` or `/subnet`): the replica's pruned siblings make those
//!   `Unknown`, here they are provably `Absent`. Nothing a canister is meant to read from its
//!   data certificate depends on that. (A witness of a fuller state tree, with the replica's
//!   pruning, can be made with `ic_certification::NestedTree::witness` and
//!   `merge_hash_trees` and signed with [`RootKey::certify`]; a test below does so.)
//!
//! Dependencies (all pure Rust, all build for wasm32-wasip1):
//! - `ic-certification` 4 (dfinity/response-verification): `HashTree` with the spec's
//!   `labeled`/`fork`/`leaf` constructors, its root hash (`digest`) and its serde form (the
//!   spec's CBOR encoding of hash trees); its `Certificate` struct serializes as the spec's map.
//! - `ic_bls12_381` 0.10 (dfinity's fork of zkcrypto's `bls12_381`, features `groups` +
//!   `experimental` for RFC 9380 hash-to-curve): the BLS12-381 arithmetic for keys and
//!   signatures. It is the curve crate dfinity's own verifier (`ic-verify-bls-signature`) uses;
//!   `blst` is not used because it needs a C compiler for wasm targets.
//! - `ciborium` 0.2: CBOR serialization, and `ciborium::tag::Required` for the 55799 tag.
//! - `sha2` 0.10: SHA-256 for hash-to-curve's `expand_message_xmd`, SHA-512 for the seed-to-key
//!   derivation.

use ciborium::tag::Required;
use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use ic_bls12_381::{G1Affine, G1Projective, G2Affine, G2Projective, Scalar};
use ic_certification::{Certificate, fork, labeled, leaf};
use sha2::{Digest, Sha256, Sha512};

pub use ic_certification::HashTree;

/// The seed of a subnet's root key when none is given (`RootKey::from_seed(DEFAULT_SEED)`):
/// every directory and every subnet created without a seed has the same root key.
pub const DEFAULT_SEED: &[u8] = b"canister-vm";

/// The DER prefix of an IC root (threshold BLS) public key; the 96 key bytes follow it.
pub const IC_ROOT_KEY_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// The hash-to-G1 domain separation tag of the IC's BLS signatures.
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// The domain separator before a state tree's root hash in the signed message:
/// its length (13) as one byte, then `ic-state-root`.
pub const STATE_ROOT_DOMAIN_SEPARATOR: &[u8] = b"\x0Dic-state-root";

/// The self-describing CBOR tag (`d9 d9 f7`) the IC puts in front of a certificate.
pub const CBOR_SELF_DESCRIBE_TAG: u64 = 55799;

/// The domain string of [`RootKey::from_seed`]; changing it changes every derived key.
pub const ROOT_KEY_SEED_DOMAIN: &[u8] = b"canister-vm root key v1";

/// The subnet's root key: a BLS12-381 secret scalar and its public key in G2.
///
/// Deterministic by construction: [`RootKey::from_seed`] is the only constructor, and signing
/// (BLS "basic" signatures are unique) has no randomness, so one seed gives one key and one
/// signature per message, on every platform.
#[derive(Clone)]
pub struct RootKey {
    secret: Scalar,
    public: G2Affine,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey")
            .field("public_key", &hex_string(&self.public_key()))
            .finish_non_exhaustive()
    }
}

impl RootKey {
    /// The key derived from `seed` (any bytes, any length).
    ///
    /// Derivation: for the counter `c = 0, 1, 2, ...` (4 bytes, big-endian),
    /// `wide = SHA-512(len(D) as one byte ++ D ++ c ++ seed)` with `D` =
    /// [`ROOT_KEY_SEED_DOMAIN`] (`"canister-vm root key v1"`, 23 bytes); the secret key is `wide`
    /// read as a little-endian 512-bit integer reduced modulo the group order `r`
    /// (`Scalar::from_bytes_wide`, bias below 2^-256), taking the first counter whose scalar is
    /// non-zero (in practice always `c = 0`: zero has probability about 2^-255). The public key
    /// is `secret · G2` for the standard G2 generator.
    pub fn from_seed(seed: &[u8]) -> RootKey {
        let domain_len =
            u8::try_from(ROOT_KEY_SEED_DOMAIN.len()).expect("seed domain is under 256 bytes");
        for counter in 0u32.. {
            let mut hash = Sha512::new();
            hash.update([domain_len]);
            hash.update(ROOT_KEY_SEED_DOMAIN);
            hash.update(counter.to_be_bytes());
            hash.update(seed);
            let wide: [u8; 64] = hash.finalize().into();
            let secret = Scalar::from_bytes_wide(&wide);
            if secret != Scalar::zero() {
                let public = G2Affine::from(G2Projective::generator() * secret);
                return RootKey { secret, public };
            }
        }
        unreachable!("2^32 SHA-512 outputs all reduced to zero")
    }

    /// The public key: a compressed G2 point (96 bytes).
    pub fn public_key(&self) -> [u8; 96] {
        self.public.to_compressed()
    }

    /// The public key as the IC hands it to agents: [`IC_ROOT_KEY_DER_PREFIX`] then the 96 key
    /// bytes (133 bytes).
    pub fn public_key_der(&self) -> Vec<u8> {
        let mut der = Vec::with_capacity(IC_ROOT_KEY_DER_PREFIX.len() + 96);
        der.extend_from_slice(&IC_ROOT_KEY_DER_PREFIX);
        der.extend_from_slice(&self.public_key());
        der
    }

    /// The BLS signature of `message`: `secret · H(message)`, `H` the hash to G1 with
    /// [`BLS_DST`] (RFC 9380 `expand_message_xmd` with SHA-256, SSWU, random oracle), as a
    /// compressed G1 point (48 bytes).
    pub fn sign(&self, message: &[u8]) -> [u8; 48] {
        let point =
            <G1Projective as HashToCurve<ExpandMsgXmd<Sha256>>>::hash_to_curve(message, BLS_DST);
        G1Affine::from(point * self.secret).to_compressed()
    }

    /// The certificate for `tree`: the CBOR map `{tree, signature}` behind tag 55799, where
    /// `signature = sign(b"\x0Dic-state-root" ++ tree.digest())`.
    pub fn certify(&self, tree: &HashTree) -> Vec<u8> {
        let signature = self.sign(&state_root_message(&tree.digest()));
        encode_certificate(&Certificate {
            tree: tree.clone(),
            signature: signature.to_vec(),
            delegation: None,
        })
    }
}

/// The message a certificate's signature signs for a tree with root hash `root_hash`:
/// [`STATE_ROOT_DOMAIN_SEPARATOR`] then the 32 hash bytes.
pub fn state_root_message(root_hash: &[u8; 32]) -> Vec<u8> {
    let mut message = Vec::with_capacity(STATE_ROOT_DOMAIN_SEPARATOR.len() + 32);
    message.extend_from_slice(STATE_ROOT_DOMAIN_SEPARATOR);
    message.extend_from_slice(root_hash);
    message
}

/// A certificate's CBOR bytes as the IC emits them: tag 55799, then the map
/// `{"tree": ..., "signature": ...}` (and `"delegation"` only when there is one).
pub fn encode_certificate(certificate: &Certificate) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(
        &Required::<_, CBOR_SELF_DESCRIBE_TAG>(certificate),
        &mut bytes,
    )
    .expect("writing CBOR into a Vec cannot fail");
    bytes
}

/// The tree a canister sees in `ic0.data_certificate_copy`: `/canister/<canister_id>/certified_data`
/// = `certified_data` and `/time` = unsigned LEB128 of `time_nanos`, nothing else (see the
/// module documentation for why there is nothing to prune).
///
/// `certified_data` is the canister's certified data as `ic0.certified_data_set` left it (at
/// most 32 bytes there; the empty blob for a canister that never set it). This function does
/// not check the length.
pub fn data_certificate_tree(
    time_nanos: u64,
    canister_id: &[u8],
    certified_data: &[u8],
) -> HashTree {
    fork(
        labeled(
            "canister",
            labeled(canister_id, labeled("certified_data", leaf(certified_data))),
        ),
        labeled("time", leaf(leb128_u64(time_nanos))),
    )
}

/// The data certificate for a canister's query: [`data_certificate_tree`] certified by `key`.
pub fn data_certificate(
    key: &RootKey,
    time_nanos: u64,
    canister_id: &[u8],
    certified_data: &[u8],
) -> Vec<u8> {
    key.certify(&data_certificate_tree(
        time_nanos,
        canister_id,
        certified_data,
    ))
}

/// Unsigned LEB128 (the spec's encoding of natural numbers in the state tree, e.g. `/time`).
pub fn leb128_u64(mut value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    //! Everything here is checked with code that did not make the certificate: dfinity's
    //! `ic-certificate-verification` (with its own nom CBOR parser `ic-cbor` and
    //! `ic-verify-bls-signature`), `ciborium`'s generic CBOR `Value`, a root hash recomputed
    //! here from the spec's definition with `sha2`, and the `leb128` crate.

    use super::*;
    use ciborium::Value;
    use ic_cbor::CertificateToCbor;
    use ic_certificate_verification::VerifyCertificate;
    use ic_certification::{LookupResult, NestedTree, merge_hash_trees};

    const CANISTER: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 1, 1, 1]; // lqy7q-dh777-77777-aaaaq-cai
    const OTHER_CANISTER: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 2, 1, 1];
    const TIME: u64 = 1_700_000_000_123_456_789;

    /// dfinity's verifier: parse with `ic-cbor`, check time (exactly `now`), signature and DER.
    fn verify(cert: &[u8], canister_id: &[u8], der_key: &[u8], now: u64) -> Result<(), String> {
        let parsed = Certificate::from_cbor(cert).map_err(|e| format!("parse: {e}"))?;
        parsed
            .verify(canister_id, der_key, &u128::from(now), &0)
            .map_err(|e| format!("verify: {e}"))
    }

    /// The certificate parsed with ic-certification's serde form, through the 55799 tag.
    fn parse_serde(cert: &[u8]) -> Certificate {
        let Required::<Certificate, CBOR_SELF_DESCRIBE_TAG>(c) =
            ciborium::from_reader(cert).expect("a tagged CBOR certificate");
        c
    }

    /// The spec's `reconstruct`, over the raw CBOR of a hash tree.
    fn reconstruct(tree: &Value) -> [u8; 32] {
        fn dsep(s: &str) -> Sha256 {
            let mut h = Sha256::new();
            h.update([s.len() as u8]);
            h.update(s.as_bytes());
            h
        }
        let items = tree.as_array().expect("a hash tree node is an array");
        let tag = u8::try_from(items[0].as_integer().expect("node tag")).unwrap();
        let bytes = |i: usize| items[i].as_bytes().expect("a blob").clone();
        match tag {
            0 => dsep("ic-hashtree-empty").finalize().into(),
            1 => {
                let mut h = dsep("ic-hashtree-fork");
                h.update(reconstruct(&items[1]));
                h.update(reconstruct(&items[2]));
                h.finalize().into()
            }
            2 => {
                let mut h = dsep("ic-hashtree-labeled");
                h.update(bytes(1));
                h.update(reconstruct(&items[2]));
                h.finalize().into()
            }
            3 => {
                let mut h = dsep("ic-hashtree-leaf");
                h.update(bytes(1));
                h.finalize().into()
            }
            4 => bytes(1).try_into().expect("a 32-byte pruned digest"),
            _ => panic!("unknown hash tree tag {tag}"),
        }
    }

    /// The certificate as a generic CBOR value: (tree, signature), checking the tag and keys.
    fn raw_parts(cert: &[u8]) -> (Value, Vec<u8>) {
        assert_eq!(&cert[..3], &[0xd9, 0xd9, 0xf7], "self-describing tag first");
        let Value::Tag(CBOR_SELF_DESCRIBE_TAG, inner) =
            ciborium::from_reader::<Value, _>(cert).unwrap()
        else {
            panic!("not tagged 55799")
        };
        let map = inner.as_map().expect("a certificate is a map").clone();
        let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_text().unwrap()).collect();
        assert_eq!(
            keys,
            ["tree", "signature"],
            "exactly tree and signature, no delegation"
        );
        (map[0].1.clone(), map[1].1.as_bytes().unwrap().clone())
    }

    fn lookup<'a>(tree: &'a HashTree, path: &[&[u8]]) -> LookupResult<'a> {
        tree.lookup_path(path.iter())
    }

    fn blob(bytes: &[u8]) -> Value {
        Value::Bytes(bytes.to_vec())
    }
    fn node(tag: u8, rest: Vec<Value>) -> Value {
        let mut items = vec![Value::Integer(tag.into())];
        items.extend(rest);
        Value::Array(items)
    }

    #[test]
    fn data_certificate_verifies_and_holds_time_and_certified_data() {
        let key = RootKey::from_seed(b"test seed");
        let data = [7u8; 32];
        let cert = data_certificate(&key, TIME, CANISTER, &data);

        verify(&cert, CANISTER, &key.public_key_der(), TIME).unwrap();

        // The tree, parsed twice independently: ic-cbor (the verifier's parser) and serde.
        for parsed in [Certificate::from_cbor(&cert).unwrap(), parse_serde(&cert)] {
            let tree = &parsed.tree;
            assert_eq!(
                lookup(tree, &[b"canister", CANISTER, b"certified_data"]),
                LookupResult::Found(&data)
            );
            let LookupResult::Found(mut time) = lookup(tree, &[b"time"]) else {
                panic!("no time")
            };
            assert_eq!(leb128::read::unsigned(&mut time).unwrap(), TIME);
            assert!(time.is_empty(), "time is exactly one LEB128 number");
            // Another canister's data is provably absent, not just unknown.
            assert_eq!(
                lookup(tree, &[b"canister", OTHER_CANISTER, b"certified_data"]),
                LookupResult::Absent
            );
            assert_eq!(parsed.signature.len(), 48);
            assert!(parsed.delegation.is_none());
        }
    }

    #[test]
    fn data_certificate_tree_has_the_replicas_shape() {
        let key = RootKey::from_seed(b"shape");
        let cert = data_certificate(&key, 5, CANISTER, b"hi");
        let (tree, signature) = raw_parts(&cert);
        let expected = node(
            1,
            vec![
                node(
                    2,
                    vec![
                        blob(b"canister"),
                        node(
                            2,
                            vec![
                                blob(CANISTER),
                                node(2, vec![blob(b"certified_data"), node(3, vec![blob(b"hi")])]),
                            ],
                        ),
                    ],
                ),
                node(2, vec![blob(b"time"), node(3, vec![blob(&[5])])]),
            ],
        );
        assert_eq!(tree, expected);

        // The signature checked with ic-verify-bls-signature over a root hash recomputed here.
        let message = [STATE_ROOT_DOMAIN_SEPARATOR, &reconstruct(&tree)[..]].concat();
        assert_eq!(&message[..14], b"\x0dic-state-root");
        ic_verify_bls_signature::verify_bls_signature(&signature, &message, &key.public_key())
            .unwrap();
    }

    #[test]
    fn public_key_der_is_the_ic_encoding() {
        let key = RootKey::from_seed(b"der");
        let der = key.public_key_der();
        assert_eq!(der.len(), 133);
        // Written out as the agents write it.
        let prefix = "308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100";
        assert_eq!(hex_string(&der[..37]), prefix);
        assert_eq!(der[37..], key.public_key());
        // A valid G2 point, as the independent verifier reads it.
        ic_verify_bls_signature::PublicKey::deserialize(&key.public_key()).unwrap();
    }

    #[test]
    fn flipped_signature_or_data_byte_fails() {
        let key = RootKey::from_seed(b"flip");
        let data = [0xabu8; 32];
        let cert = data_certificate(&key, TIME, CANISTER, &data);
        verify(&cert, CANISTER, &key.public_key_der(), TIME).unwrap();

        // Flip a bit in the signature (the last 48 bytes of the encoding).
        for at in [cert.len() - 1, cert.len() - 20, cert.len() - 48] {
            let mut bad = cert.clone();
            bad[at] ^= 0x01;
            assert!(
                verify(&bad, CANISTER, &key.public_key_der(), TIME).is_err(),
                "sig byte {at}"
            );
        }

        // Flip a byte of certified_data inside the encoding.
        let pos = cert
            .windows(32)
            .position(|w| w == data)
            .expect("data in the encoding");
        let mut bad = cert.clone();
        bad[pos + 3] ^= 0x80;
        let parsed = Certificate::from_cbor(&bad).unwrap();
        assert_ne!(
            lookup(&parsed.tree, &[b"canister", CANISTER, b"certified_data"]),
            LookupResult::Found(&data)
        );
        assert!(verify(&bad, CANISTER, &key.public_key_der(), TIME).is_err());

        // A signature over other data does not carry over.
        let other = data_certificate(&key, TIME, CANISTER, &[0xacu8; 32]);
        let mut spliced = parse_serde(&cert);
        spliced.signature = parse_serde(&other).signature;
        let spliced = encode_certificate(&spliced);
        assert!(verify(&spliced, CANISTER, &key.public_key_der(), TIME).is_err());
    }

    #[test]
    fn other_seed_other_key() {
        let a = RootKey::from_seed(b"seed a");
        let b = RootKey::from_seed(b"seed b");
        assert_ne!(a.public_key(), b.public_key());
        assert_ne!(RootKey::from_seed(b"").public_key(), a.public_key());
        let cert = data_certificate(&a, TIME, CANISTER, b"x");
        verify(&cert, CANISTER, &a.public_key_der(), TIME).unwrap();
        assert!(verify(&cert, CANISTER, &b.public_key_der(), TIME).is_err());
        // The mainnet root key does not accept it either.
        let mainnet = "308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100\
            814c0e6ec71fab583b08bd81373c255c3c371b2e84863c98a4f1e08b74235d14fb5d9c0cd546d9685f91\
            3a0c0b2cc5341583bf4b4392e467db96d65b9bb4cb717112f8472e0d5a4d14505ffd7484b01291091c5f\
            87b98883463f98091a0baaae";
        assert!(verify(&cert, CANISTER, &from_hex(mainnet), TIME).is_err());
    }

    #[test]
    fn deterministic() {
        let one = data_certificate(&RootKey::from_seed(b"same"), TIME, CANISTER, b"data");
        let two = data_certificate(&RootKey::from_seed(b"same"), TIME, CANISTER, b"data");
        assert_eq!(one, two);
        let key = RootKey::from_seed(b"same");
        assert_eq!(key.public_key(), RootKey::from_seed(b"same").public_key());
        assert_eq!(key.sign(b"m"), key.clone().sign(b"m"));
        // Pinned: a change of derivation, DST or encoding shows up here. (Values made by this
        // module; their validity is what the other tests check.)
        let pinned = RootKey::from_seed(b"canister-vm");
        let cert = data_certificate(&pinned, 0, &[], &[]);
        assert_eq!(hex_string(&pinned.public_key()), PINNED_PUBLIC_KEY);
        assert_eq!(hex_string(&cert), PINNED_CERT);
        verify(&cert, &[], &pinned.public_key_der(), 0).unwrap();
    }
    /// `RootKey::from_seed(b"canister-vm").public_key()`.
    const PINNED_PUBLIC_KEY: &str = "\
        a6c9edb804b86ffdc2ec9899d804308bdb11c636e4cf8fab4a158cbdaa290e5648b28d97ec50c05fa8110ea5\
        76f7db7f0491b9eea2ced5d558e622bdf3c69fa0cbddfd79952edf0288247cb9338f759d9f56064614f1d483\
        a9c9d7e9e70ad293";
    /// Its data certificate for time 0, canister id `aaaaa-aa` (empty) and empty data:
    /// `d9d9f7` tag, map(2) "tree" [1 [2 "canister" [2 h'' [2 "certified_data" [3 h'']]]]
    /// [2 "time" [3 h'00']]], "signature" 48 bytes.
    const PINNED_CERT: &str = "\
        d9d9f7a26474726565830183024863616e697374657283024083024e6365727469666965645f64617461\
        82034083024474696d6582034100697369676e61747572655830ac04b6f03fdd781424658ead16f6ab50\
        6b2a7f1545c1699ce4a14c9f23325f6772fd3c2153790209dd44a4a4bdeab630";

    #[test]
    fn certified_data_and_time_edge_values() {
        let key = RootKey::from_seed(b"edges");
        let der = key.public_key_der();
        for data in [&[][..], &[0u8; 32][..], &[0xffu8; 32][..], &[1u8][..]] {
            for time in [0, 1, 127, 128, TIME, u64::MAX - 1, u64::MAX] {
                let cert = data_certificate(&key, time, CANISTER, data);
                verify(&cert, CANISTER, &der, time).unwrap_or_else(|e| panic!("{time}: {e}"));
                let parsed = Certificate::from_cbor(&cert).unwrap();
                assert_eq!(
                    lookup(&parsed.tree, &[b"canister", CANISTER, b"certified_data"]),
                    LookupResult::Found(data)
                );
                let LookupResult::Found(mut t) = lookup(&parsed.tree, &[b"time"]) else {
                    panic!("no time")
                };
                assert_eq!(leb128::read::unsigned(&mut t).unwrap(), time);
                // The verifier checks time: one nanosecond away fails with a zero tolerance.
                if time < u64::MAX {
                    assert!(verify(&cert, CANISTER, &der, time + 1).is_err());
                }
            }
        }
        assert_eq!(leb128_u64(0), [0]);
        assert_eq!(leb128_u64(624_485), [0xe5, 0x8e, 0x26]);
        assert_eq!(leb128_u64(u64::MAX).len(), 10);
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The interface specification's example ("Encoding of certificates", Example): the
    /// hash tree CBOR this module writes (ic-certification's serde form through ciborium) and
    /// its root hash, byte for byte as the spec gives them, for the full and the pruned tree.
    #[test]
    fn spec_example_tree_encoding_and_root_hash() {
        use ic_certification::{empty, pruned};
        let full = fork(
            fork(
                labeled(
                    "a",
                    fork(
                        fork(labeled("x", leaf(&b"hello"[..])), empty()),
                        labeled("y", leaf(&b"world"[..])),
                    ),
                ),
                labeled("b", leaf(&b"good"[..])),
            ),
            fork(labeled("c", empty()), labeled("d", leaf(&b"morning"[..]))),
        );
        let root = "eb5c5b2195e62d996b84c9bcc8259d19a83786a2f59e0878cec84c811f669aa0";
        let mut cbor = Vec::new();
        ciborium::into_writer(&full, &mut cbor).unwrap();
        assert_eq!(
            hex_string(&cbor),
            "8301830183024161830183018302417882034568656c6c6f810083024179820345776f726c6483024162\
             820344676f6f648301830241638100830241648203476d6f726e696e67"
        );
        assert_eq!(hex_string(&full.digest()), root);

        let pruned_tree = fork(
            fork(
                labeled(
                    "a",
                    fork(
                        pruned(
                            <[u8; 32]>::try_from(from_hex(
                                "1b4feff9bef8131788b0c9dc6dbad6e81e524249c879e9f10f71ce3749f5a638",
                            ))
                            .unwrap(),
                        ),
                        labeled("y", leaf(&b"world"[..])),
                    ),
                ),
                labeled(
                    "b",
                    pruned(
                        <[u8; 32]>::try_from(from_hex(
                            "7b32ac0c6ba8ce35ac82c255fc7906f7fc130dab2a090f80fe12f9c2cae83ba6",
                        ))
                        .unwrap(),
                    ),
                ),
            ),
            fork(
                pruned(
                    <[u8; 32]>::try_from(from_hex(
                        "ec8324b8a1f1ac16bd2e806edba78006479c9877fed4eb464a25485465af601d",
                    ))
                    .unwrap(),
                ),
                labeled("d", leaf(&b"morning"[..])),
            ),
        );
        let mut cbor = Vec::new();
        ciborium::into_writer(&pruned_tree, &mut cbor).unwrap();
        assert_eq!(
            hex_string(&cbor),
            "83018301830241618301820458201b4feff9bef8131788b0c9dc6dbad6e81e524249c879e9f10f71ce37\
             49f5a63883024179820345776f726c6483024162820458207b32ac0c6ba8ce35ac82c255fc7906f7fc13\
             0dab2a090f80fe12f9c2cae83ba6830182045820ec8324b8a1f1ac16bd2e806edba78006479c9877fed4\
             eb464a25485465af601d830241648203476d6f726e696e67"
        );
        assert_eq!(hex_string(&pruned_tree.digest()), root);
        // And the independent reconstruct agrees.
        let value: Value = ciborium::from_reader(&cbor[..]).unwrap();
        assert_eq!(hex_string(&reconstruct(&value)), root);
    }

    #[test]
    fn certify_request_status_witness() {
        // A state tree as read_state will have it, witnessed with ic-certification's NestedTree.
        let request_a = [0x11u8; 32];
        let request_b = [0x22u8; 32];
        let mut state: NestedTree<Vec<u8>, Vec<u8>> = NestedTree::default();
        let path = |parts: &[&[u8]]| parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        state.insert(
            &path(&[b"request_status", &request_a, b"status"]),
            b"replied".to_vec(),
        );
        state.insert(
            &path(&[b"request_status", &request_a, b"reply"]),
            b"DIDL\0\0".to_vec(),
        );
        state.insert(
            &path(&[b"request_status", &request_b, b"status"]),
            b"processing".to_vec(),
        );
        state.insert(&path(&[b"time"]), leb128_u64(TIME));
        state.insert(
            &path(&[b"canister", CANISTER, b"certified_data"]),
            vec![1, 2, 3],
        );

        let witness = merge_hash_trees(
            state.witness(&path(&[b"request_status", &request_a])),
            state.witness(&path(&[b"time"])),
        );
        // The witness has the full tree's root hash.
        assert_eq!(
            witness.digest(),
            ic_certification::AsHashTree::root_hash(&state)
        );

        let key = RootKey::from_seed(b"read_state");
        let cert = key.certify(&witness);
        verify(&cert, CANISTER, &key.public_key_der(), TIME).unwrap();
        let parsed = Certificate::from_cbor(&cert).unwrap();
        let tree = &parsed.tree;
        assert_eq!(
            lookup(tree, &[b"request_status", &request_a, b"status"]),
            LookupResult::Found(b"replied")
        );
        assert_eq!(
            lookup(tree, &[b"request_status", &request_a, b"reply"]),
            LookupResult::Found(b"DIDL\0\0")
        );
        assert_eq!(
            lookup(tree, &[b"request_status", &request_b, b"status"]),
            LookupResult::Unknown,
            "another request is pruned"
        );
        assert_eq!(
            lookup(tree, &[b"canister", CANISTER, b"certified_data"]),
            LookupResult::Unknown
        );
        let (raw_tree, signature) = raw_parts(&cert);
        let message = state_root_message(&reconstruct(&raw_tree));
        ic_verify_bls_signature::verify_bls_signature(&signature, &message, &key.public_key())
            .unwrap();

        // A hand-built tree with the labels certify is given, too.
        let simple = fork(
            labeled(
                "request_status",
                labeled(&request_a[..], labeled("status", leaf(&b"replied"[..]))),
            ),
            labeled("time", leaf(leb128_u64(TIME))),
        );
        verify(&key.certify(&simple), CANISTER, &key.public_key_der(), TIME).unwrap();
    }
}
