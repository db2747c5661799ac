//! Certified queries: a non-replicated query sees a data certificate (hash tree with `time` and
//! `canister/<id>/certified_data`, BLS-signed by the subnet's root key) that dfinity's own
//! verifier accepts; replicated messages see none; `ic0.root_key_*` gives the key.

use candid::Principal;
use canister_vm::runtime::subnet::Subnet;
use canister_vm::runtime::{Canister, CanisterConfig, MessageInput, RejectCode};
use ic_cbor::CertificateToCbor;
use ic_certificate_verification::VerifyCertificate;
use ic_certification::{Certificate, LookupResult};

const CERTIFIED: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "certified_data_set" (func $set (param i32 i32)))
  (import "ic0" "data_certificate_present" (func $present (result i32)))
  (import "ic0" "data_certificate_size" (func $size (result i32)))
  (import "ic0" "data_certificate_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "root_key_size" (func $key_size (result i32)))
  (import "ic0" "root_key_copy" (func $key_copy (param i32 i32 i32)))
  (memory 1)
  (func (export "canister_update set")
    (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
    (call $set (i32.const 0) (call $arg_size))
    (call $reply))
  ;; Replies [present] ++ certificate (if present).
  (func $cert
    (i32.store8 (i32.const 0) (call $present))
    (if (call $present)
      (then (call $copy (i32.const 1) (i32.const 0) (call $size))
            (call $append (i32.const 0) (i32.add (call $size) (i32.const 1))))
      (else (call $append (i32.const 0) (i32.const 1))))
    (call $reply))
  (func (export "canister_query cert") (call $cert))
  (func (export "canister_update cert_in_update") (call $cert))
  (func (export "canister_update size_in_update") (drop (call $size)) (call $reply))
  (func (export "canister_update key")
    (call $key_copy (i32.const 0) (i32.const 0) (call $key_size))
    (call $append (i32.const 0) (call $key_size))
    (call $reply)))"#;

fn verify(cert: &[u8], canister: Principal, key: &[u8], now: u64) -> Result<Certificate, String> {
    let parsed = Certificate::from_cbor(cert).map_err(|e| e.to_string())?;
    parsed
        .verify(canister.as_slice(), key, &u128::from(now), &0)
        .map_err(|e| e.to_string())?;
    Ok(parsed)
}

fn certified_data(cert: &Certificate, canister: Principal) -> Vec<u8> {
    let path: [&[u8]; 3] = [b"canister", canister.as_slice(), b"certified_data"];
    match cert.tree.lookup_path(path.iter()) {
        LookupResult::Found(data) => data.to_vec(),
        other => panic!("certified_data not found: {other:?}"),
    }
}

#[test]
fn a_query_certificate_verifies_against_the_subnet_root_key() {
    let anon = Principal::anonymous();
    let mut subnet = Subnet::with_seed(CanisterConfig::default(), b"certificates test");
    let wasm = wat::parse_str(CERTIFIED).unwrap();
    let a = subnet.install_raw(wasm.clone(), b"", anon).unwrap();
    let b = subnet.install_raw(wasm, b"", anon).unwrap();
    subnet
        .update_call_raw(a, "set", b"hash of a", anon)
        .unwrap()
        .unwrap();
    let key = subnet.root_key_der();
    assert_eq!(key.len(), 133);

    let reply = subnet
        .query_call_raw(a, "cert", b"", anon)
        .unwrap()
        .unwrap();
    assert_eq!(reply[0], 1, "a non-replicated query has a certificate");
    let cert = verify(&reply[1..], a, &key, subnet.time()).unwrap();
    assert_eq!(certified_data(&cert, a), b"hash of a");
    // Canister b never set certified data: the empty blob is certified.
    let reply = subnet
        .query_call_raw(b, "cert", b"", anon)
        .unwrap()
        .unwrap();
    let cert_b = verify(&reply[1..], b, &key, subnet.time()).unwrap();
    assert_eq!(certified_data(&cert_b, b), b"");

    // It certifies b's data only (a's path is absent), under this subnet's key only, untampered.
    let path: [&[u8]; 3] = [b"canister", a.as_slice(), b"certified_data"];
    assert_eq!(cert_b.tree.lookup_path(path.iter()), LookupResult::Absent);
    let other = Subnet::with_seed(CanisterConfig::default(), b"another seed").root_key_der();
    assert_ne!(other, key);
    assert!(verify(&reply[1..], b, &other, subnet.time()).is_err());
    let mut tampered = reply[1..].to_vec();
    let n = tampered.len();
    tampered[n - 5] ^= 1; // inside the signature, the map's last value
    assert!(verify(&tampered, b, &key, subnet.time()).is_err());

    // Replicated execution has no certificate, and asking for its size traps.
    let reply = subnet
        .update_call_raw(a, "cert_in_update", b"", anon)
        .unwrap()
        .unwrap();
    assert_eq!(reply, [0]);
    let reject = subnet
        .update_call_raw(a, "size_in_update", b"", anon)
        .unwrap()
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(
        reject.message.contains("data_certificate_size"),
        "{}",
        reject.message
    );

    // The canister reads the same root key.
    assert_eq!(
        subnet
            .update_call_raw(a, "key", b"", anon)
            .unwrap()
            .unwrap(),
        key
    );
}

#[test]
fn a_canister_alone_has_certificates_from_the_default_key() {
    let wasm = wat::parse_str(CERTIFIED).unwrap();
    let mut c =
        Canister::create(wasm, CanisterConfig::default(), Principal::from_slice(&[4])).unwrap();
    let input = MessageInput::default();
    c.update("set", b"x", &input).unwrap().result.unwrap();
    let key = c.update("key", b"", &input).unwrap().result.unwrap();
    assert_eq!(key, Subnet::new(CanisterConfig::default()).root_key_der());
    let reply = c.query("cert", b"", &input).unwrap().result.unwrap();
    let id = Principal::from_slice(&c.system().canister_id);
    let cert = verify(&reply[1..], id, &key, c.clock().last_time).unwrap();
    assert_eq!(certified_data(&cert, id), b"x");
    // Same inputs, same bytes.
    assert_eq!(c.query("cert", b"", &input).unwrap().result.unwrap(), reply);
}
