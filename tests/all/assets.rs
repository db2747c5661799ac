//! The asset canister `dfx` deploys for frontends (`test-canisters/assets`, the published
//! `ic-certified-assets` 0.3.0) on a subnet: assets stored with `store` and with the batch API,
//! listed, and served by `http_request` as a non-replicated query whose `IC-Certificate` header
//! is checked here as an HTTP gateway checks it (response verification v2 and v1): the
//! certificate verifies against the subnet's root key with dfinity's verifier, certifies the
//! tree's root hash as the canister's certified data, and the tree holds the response served.
//! The assets survive an upgrade through the management canister, and the canister's own
//! permission check rejects a `store` from a principal without the `Commit` permission.

use candid::{CandidType, Decode, Encode, Int, Nat, Principal, define_function};
use canister_vm::runtime::subnet::Subnet;
use canister_vm::runtime::{CanisterConfig, Reject, RejectCode};
use ic_cbor::{CertificateToCbor, HashTreeToCbor};
use ic_certificate_verification::VerifyCertificate;
use ic_certification::{Certificate, HashTree, LookupResult};
use ic_management_canister_types::{CanisterInstallMode, InstallCodeArgs};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::canisters::test_canister_bytes;

const IC: Principal = Principal::management_canister();

fn alice() -> Principal {
    Principal::self_authenticating(b"alice")
}
fn bob() -> Principal {
    Principal::self_authenticating(b"bob")
}

// The parts of the asset canister's interface (its `assets.did`) the tests use.

#[derive(CandidType)]
struct StoreArg {
    key: String,
    content_type: String,
    content_encoding: String,
    content: ByteBuf,
    sha256: Option<ByteBuf>,
}

#[derive(CandidType)]
struct Empty {}

#[derive(CandidType, Deserialize)]
struct CreateBatchResponse {
    batch_id: Nat,
}

#[derive(CandidType)]
struct CreateChunkArg {
    batch_id: Nat,
    content: ByteBuf,
}

#[derive(CandidType, Deserialize)]
struct CreateChunkResponse {
    chunk_id: Nat,
}

#[derive(CandidType)]
struct CreateAssetArguments {
    key: String,
    content_type: String,
    headers: Option<Vec<(String, String)>>,
}

#[derive(CandidType)]
struct SetAssetContentArguments {
    key: String,
    content_encoding: String,
    chunk_ids: Vec<Nat>,
    sha256: Option<ByteBuf>,
}

#[derive(CandidType)]
enum BatchOperationKind {
    CreateAsset(CreateAssetArguments),
    SetAssetContent(SetAssetContentArguments),
}

#[derive(CandidType)]
struct CommitBatchArguments {
    batch_id: Nat,
    operations: Vec<BatchOperationKind>,
}

#[derive(CandidType, Deserialize, Debug)]
struct AssetEncodingDetails {
    content_encoding: String,
    sha256: Option<ByteBuf>,
    length: Nat,
    modified: Int,
}

#[derive(CandidType, Deserialize, Debug)]
struct AssetDetails {
    key: String,
    content_type: String,
    encodings: Vec<AssetEncodingDetails>,
}

#[derive(CandidType)]
struct HttpRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: ByteBuf,
    certificate_version: Option<u16>,
}

#[derive(CandidType, Deserialize, Debug, Clone)]
struct StreamingCallbackToken {
    key: String,
    content_encoding: String,
    index: Nat,
    sha256: Option<ByteBuf>,
}

define_function!(CallbackFunc: (StreamingCallbackToken) -> (Option<StreamingCallbackHttpResponse>) query);

#[derive(CandidType, Deserialize, Debug)]
struct CallbackStrategy {
    callback: CallbackFunc,
    token: StreamingCallbackToken,
}

#[derive(CandidType, Deserialize, Debug)]
enum StreamingStrategy {
    Callback(CallbackStrategy),
}

#[derive(CandidType, Deserialize, Debug)]
struct HttpResponse {
    status_code: u16,
    headers: Vec<(String, String)>,
    body: ByteBuf,
    streaming_strategy: Option<StreamingStrategy>,
    upgrade: Option<bool>,
}

#[derive(CandidType, Deserialize, Debug)]
struct StreamingCallbackHttpResponse {
    body: ByteBuf,
    token: Option<StreamingCallbackToken>,
}

const INDEX_HTML: &[u8] =
    b"<!doctype html><title>canister-vm</title><h1>served by the asset canister</h1>";

/// A subnet with the asset canister installed by `alice` (its controller, who gets the `Commit`
/// permission from `init`), with no install argument, as `dfx deploy` installs it.
fn asset_canister() -> (Subnet, Principal, Vec<u8>) {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let wasm = test_canister_bytes("assets");
    let id = subnet
        .install_raw(wasm.clone(), &Encode!().unwrap(), alice())
        .unwrap();
    (subnet, id, wasm)
}

fn update(
    subnet: &mut Subnet,
    id: Principal,
    method: &str,
    arg: Vec<u8>,
    caller: Principal,
) -> Result<Vec<u8>, Reject> {
    subnet.update_call_raw(id, method, &arg, caller).unwrap()
}

fn store(
    subnet: &mut Subnet,
    id: Principal,
    key: &str,
    content: &[u8],
    caller: Principal,
) -> Result<(), Reject> {
    let arg = StoreArg {
        key: key.to_string(),
        content_type: "text/html".to_string(),
        content_encoding: "identity".to_string(),
        content: ByteBuf::from(content.to_vec()),
        sha256: Some(ByteBuf::from(Sha256::digest(content).to_vec())),
    };
    let reply = update(subnet, id, "store", Encode!(&arg).unwrap(), caller)?;
    Decode!(&reply).unwrap();
    Ok(())
}

fn list(subnet: &mut Subnet, id: Principal) -> Vec<AssetDetails> {
    let reply = subnet
        .query_call_raw(id, "list", &Encode!(&Empty {}).unwrap(), bob())
        .unwrap()
        .unwrap();
    Decode!(&reply, Vec<AssetDetails>).unwrap()
}

fn http_get(subnet: &mut Subnet, id: Principal, url: &str, version: Option<u16>) -> HttpResponse {
    let req = HttpRequest {
        method: "GET".to_string(),
        url: url.to_string(),
        headers: vec![("Accept-Encoding".to_string(), "identity".to_string())],
        body: ByteBuf::new(),
        certificate_version: version,
    };
    let reply = subnet
        .query_call_raw(
            id,
            "http_request",
            &Encode!(&req).unwrap(),
            Principal::anonymous(),
        )
        .unwrap()
        .unwrap();
    Decode!(&reply, HttpResponse).unwrap()
}

/// The whole body of `response`: its own, then every chunk `http_request_streaming_callback`
/// (queried as a gateway does) gives until the token runs out.
fn whole_body(subnet: &mut Subnet, id: Principal, response: &HttpResponse) -> Vec<u8> {
    let mut body = response.body.to_vec();
    let mut token = match &response.streaming_strategy {
        None => None,
        Some(StreamingStrategy::Callback(cb)) => {
            assert_eq!(cb.callback.0.principal, id);
            assert_eq!(cb.callback.0.method, "http_request_streaming_callback");
            Some(cb.token.clone())
        }
    };
    while let Some(t) = token {
        let reply = subnet
            .query_call_raw(
                id,
                "http_request_streaming_callback",
                &Encode!(&t).unwrap(),
                Principal::anonymous(),
            )
            .unwrap()
            .unwrap();
        let chunk = Decode!(&reply, Option<StreamingCallbackHttpResponse>)
            .unwrap()
            .expect("a streaming callback answers with a chunk");
        body.extend_from_slice(&chunk.body);
        token = chunk.token;
    }
    body
}

fn header<'r>(response: &'r HttpResponse, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Standard base64 (with padding), as the `IC-Certificate` header's fields are encoded.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().take_while(|&c| c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("{:?} is not base64", c as char)) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The fields of an `IC-Certificate` header value, `name=:base64:` or `name=value`, comma-separated.
fn certificate_header_fields(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .map(|field| {
            let (name, value) = field.trim().split_once('=').expect("name=value");
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> &'f str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in the IC-Certificate header: {fields:?}"))
}

fn base64_field(fields: &[(String, String)], name: &str) -> Vec<u8> {
    let value = field(fields, name);
    let inner = value
        .strip_prefix(':')
        .and_then(|v| v.strip_suffix(':'))
        .unwrap_or_else(|| panic!("{name} is not :base64: ({value})"));
    base64_decode(inner)
}

/// The representation-independent hash of a map (IC interface specification, "Representation
/// independent hashing of structured data"), for text and natural-number values.
enum Value<'a> {
    Text(&'a str),
    Nat(u64),
}

fn hash_of_map(entries: &[(String, Value)]) -> [u8; 32] {
    let mut pairs: Vec<Vec<u8>> = entries
        .iter()
        .map(|(k, v)| {
            let mut pair = Sha256::digest(k.as_bytes()).to_vec();
            let value = match v {
                Value::Text(t) => Sha256::digest(t.as_bytes()),
                Value::Nat(n) => {
                    let mut buf = Vec::new();
                    leb128::write::unsigned(&mut buf, *n).unwrap();
                    Sha256::digest(&buf)
                }
            };
            pair.extend_from_slice(&value);
            pair
        })
        .collect();
    pairs.sort();
    Sha256::digest(pairs.concat()).into()
}

/// What verifying a response's certification found.
struct Verified {
    /// The certificate's `time`, nanoseconds.
    time: u64,
}

/// Verifies the certificate in `fields` against the subnet's root key (dfinity's verifier) and
/// that it certifies `tree`'s root hash as canister `id`'s certified data.
fn verify_certificate_and_tree(
    subnet: &Subnet,
    id: Principal,
    fields: &[(String, String)],
) -> (HashTree, Verified) {
    let cert_bytes = base64_field(fields, "certificate");
    let cert = Certificate::from_cbor(&cert_bytes).unwrap();
    cert.verify(
        id.as_slice(),
        &subnet.root_key_der(),
        &u128::from(subnet.time()),
        &0,
    )
    .unwrap_or_else(|e| panic!("the certificate does not verify: {e}"));
    let path: [&[u8]; 3] = [b"canister", id.as_slice(), b"certified_data"];
    let LookupResult::Found(certified_data) = cert.tree.lookup_path(path.iter()) else {
        panic!("the certificate has no certified_data for {id}");
    };
    let time_path: [&[u8]; 1] = [b"time"];
    let LookupResult::Found(time) = cert.tree.lookup_path(time_path.iter()) else {
        panic!("the certificate has no time");
    };
    let time = leb128::read::unsigned(&mut &time[..]).unwrap();

    let tree = HashTree::from_cbor(&base64_field(fields, "tree")).unwrap();
    assert_eq!(
        certified_data,
        tree.digest(),
        "the certified data is the root hash of the tree in the header"
    );
    (tree, Verified { time })
}

/// The expression path of an exact match of `url`: `["http_expr", <segments>, "<$>"]`.
fn exact_path(url: &str) -> Vec<String> {
    let mut path = vec!["http_expr".to_string()];
    path.extend(url.trim_start_matches('/').split('/').map(str::to_string));
    path.push("<$>".to_string());
    path
}

/// Response verification v2 (HTTP gateway protocol specification) of `response` with the whole
/// `body`, served by canister `id`: the certificate and tree verify, the expression path is
/// `expected_path`, and the tree holds, under it, the hash of the certificate expression the
/// response carries, no request hash (the expression says `no_request_certification`) and the
/// hash of this response: its status, the headers the expression certifies and the body.
fn verify_v2(
    subnet: &Subnet,
    id: Principal,
    expected_path: &[String],
    response: &HttpResponse,
    body: &[u8],
) -> Verified {
    let value = header(response, "IC-Certificate").expect("an IC-Certificate header");
    let fields = certificate_header_fields(value);
    assert_eq!(field(&fields, "version"), "2", "{value}");
    let (tree, verified) = verify_certificate_and_tree(subnet, id, &fields);

    let expr_path: Vec<String> =
        ciborium::from_reader(&base64_field(&fields, "expr_path")[..]).unwrap();
    assert_eq!(expr_path, expected_path);

    let expression =
        header(response, "IC-CertificateExpression").expect("an IC-CertificateExpression header");
    assert!(
        expression.contains("no_request_certification"),
        "{expression}"
    );
    // `certified_response_headers:ResponseHeaderList{headers:["a","b"]}` (spaces aside)
    let compact: String = expression.split_whitespace().collect();
    let list = compact
        .split_once("certified_response_headers:ResponseHeaderList{headers:[")
        .and_then(|(_, rest)| rest.split_once(']'))
        .unwrap_or_else(|| panic!("no certified_response_headers in {expression}"))
        .0;
    let certified: Vec<String> = list
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let mut headers: Vec<(String, Value)> = response
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .filter(|(n, _)| {
            n != "ic-certificate" && (n == "ic-certificateexpression" || certified.contains(n))
        })
        .map(|(n, v)| (n, Value::Text(v)))
        .collect();
    headers.push((
        ":ic-cert-status".to_string(),
        Value::Nat(response.status_code.into()),
    ));
    let response_hash = |body: &[u8]| -> Vec<u8> {
        let mut both = hash_of_map(&headers).to_vec();
        both.extend_from_slice(&Sha256::digest(body));
        Sha256::digest(both).to_vec()
    };
    let lookup = |response_hash: Vec<u8>| {
        let mut path: Vec<Vec<u8>> = expr_path.iter().map(|s| s.as_bytes().to_vec()).collect();
        path.push(Sha256::digest(expression.as_bytes()).to_vec());
        path.push(Vec::new()); // no request hash
        path.push(response_hash);
        matches!(tree.lookup_path(path.iter()), LookupResult::Found(_))
    };
    assert!(
        lookup(response_hash(body)),
        "the tree does not certify this response under {expr_path:?}"
    );
    // A response with another body is not certified (the check above is not vacuous).
    let mut other = body.to_vec();
    other.push(b'!');
    assert!(!lookup(response_hash(&other)));
    verified
}

/// Response verification v1 (the legacy protocol): the certificate and tree verify and the tree
/// maps `["http_assets", url]` to the SHA-256 of the body.
fn verify_v1(subnet: &Subnet, id: Principal, url: &str, response: &HttpResponse, body: &[u8]) {
    let value = header(response, "IC-Certificate").expect("an IC-Certificate header");
    let fields = certificate_header_fields(value);
    let (tree, _) = verify_certificate_and_tree(subnet, id, &fields);
    let path: [&[u8]; 2] = [b"http_assets", url.as_bytes()];
    match tree.lookup_path(path.iter()) {
        LookupResult::Found(hash) => assert_eq!(hash, Sha256::digest(body).as_slice()),
        other => panic!("http_assets/{url} is not in the tree: {other:?}"),
    }
}

fn upgrade(
    subnet: &mut Subnet,
    id: Principal,
    wasm: Vec<u8>,
    caller: Principal,
) -> Result<Vec<u8>, Reject> {
    let args = InstallCodeArgs {
        mode: CanisterInstallMode::Upgrade(None),
        canister_id: id,
        wasm_module: wasm,
        arg: Encode!().unwrap(),
        sender_canister_version: None,
    };
    subnet
        .update_call_raw(IC, "install_code", &Encode!(&args).unwrap(), caller)
        .unwrap()
}

/// `content` uploaded as `key` through the batch API in chunks of `chunk` bytes, as `dfx deploy`
/// uploads: `create_batch`, `create_chunk` for each piece, then `commit_batch` with
/// `CreateAsset` and `SetAssetContent`.
fn upload_in_batch(
    subnet: &mut Subnet,
    id: Principal,
    key: &str,
    content_type: &str,
    content: &[u8],
    chunk: usize,
) {
    let reply = update(
        subnet,
        id,
        "create_batch",
        Encode!(&Empty {}).unwrap(),
        alice(),
    )
    .unwrap();
    let batch_id = Decode!(&reply, CreateBatchResponse).unwrap().batch_id;
    let chunk_ids = content
        .chunks(chunk)
        .map(|piece| {
            let arg = CreateChunkArg {
                batch_id: batch_id.clone(),
                content: ByteBuf::from(piece.to_vec()),
            };
            let reply =
                update(subnet, id, "create_chunk", Encode!(&arg).unwrap(), alice()).unwrap();
            Decode!(&reply, CreateChunkResponse).unwrap().chunk_id
        })
        .collect();
    let commit = CommitBatchArguments {
        batch_id,
        operations: vec![
            BatchOperationKind::CreateAsset(CreateAssetArguments {
                key: key.to_string(),
                content_type: content_type.to_string(),
                headers: Some(vec![("x-served-by".to_string(), "canister-vm".to_string())]),
            }),
            BatchOperationKind::SetAssetContent(SetAssetContentArguments {
                key: key.to_string(),
                content_encoding: "identity".to_string(),
                chunk_ids,
                sha256: Some(ByteBuf::from(Sha256::digest(content).to_vec())),
            }),
        ],
    };
    let reply = update(
        subnet,
        id,
        "commit_batch",
        Encode!(&commit).unwrap(),
        alice(),
    )
    .unwrap();
    Decode!(&reply).unwrap();
}

#[test]
fn assets_are_stored_listed_served_certified_and_survive_an_upgrade() {
    let (mut subnet, id, wasm) = asset_canister();
    store(&mut subnet, id, "/index.html", INDEX_HTML, alice()).unwrap();
    // A bigger asset in three chunks through the batch API, with a custom header.
    let app_js: Vec<u8> = (0..5000u32)
        .flat_map(|i| format!("f{i}();").into_bytes())
        .collect();
    upload_in_batch(
        &mut subnet,
        id,
        "/js/app.js",
        "text/javascript",
        &app_js,
        16 * 1024,
    );

    let assets = list(&mut subnet, id);
    let keys: Vec<&str> = assets.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["/index.html", "/js/app.js"], "{assets:?}");
    let index = &assets[0];
    assert_eq!(index.content_type, "text/html");
    assert_eq!(index.encodings.len(), 1);
    assert_eq!(index.encodings[0].content_encoding, "identity");
    assert_eq!(index.encodings[0].length, Nat::from(INDEX_HTML.len()));
    assert_eq!(
        index.encodings[0].sha256.as_ref().map(|h| h.as_slice()),
        Some(Sha256::digest(INDEX_HTML).as_slice())
    );
    assert_eq!(assets[1].encodings[0].length, Nat::from(app_js.len()));

    // Served by the `http_request` query, certified (v2, then the legacy v1).
    let served = |subnet: &mut Subnet, url: &str, expected: &[u8]| -> u64 {
        let response = http_get(subnet, id, url, Some(2));
        assert_eq!(response.status_code, 200, "{url}: {response:?}");
        assert_eq!(response.upgrade, None);
        let body = whole_body(subnet, id, &response);
        assert_eq!(body, expected, "{url}");
        let verified = verify_v2(subnet, id, &exact_path(url), &response, &body);

        let response = http_get(subnet, id, url, None);
        assert_eq!(response.status_code, 200);
        let body = whole_body(subnet, id, &response);
        assert_eq!(body, expected, "{url}");
        verify_v1(subnet, id, url, &response, &body);
        verified.time
    };
    let before = served(&mut subnet, "/index.html", INDEX_HTML);
    assert_eq!(
        before,
        subnet.time(),
        "the certificate is of the subnet's current time"
    );
    let response = http_get(&mut subnet, id, "/js/app.js", Some(2));
    assert!(
        response.streaming_strategy.is_some() && response.body.len() < app_js.len(),
        "a three-chunk asset streams: {} bytes in the first response",
        response.body.len()
    );
    assert_eq!(header(&response, "x-served-by"), Some("canister-vm"));
    assert_eq!(header(&response, "content-type"), Some("text/javascript"));
    served(&mut subnet, "/js/app.js", &app_js);

    // A path that is not there is answered with `/index.html` (a single-page app's fallback),
    // certified under the fallback path `<*>` instead of an exact match.
    let missing = http_get(&mut subnet, id, "/nope.css", Some(2));
    assert_eq!(missing.status_code, 200, "{missing:?}");
    assert_eq!(missing.body.as_ref(), INDEX_HTML);
    let fallback = ["http_expr", "<*>"].map(String::from);
    verify_v2(&subnet, id, &fallback, &missing, INDEX_HTML);

    // In replicated execution there is no data certificate: the canister traps, as on the IC.
    let req = HttpRequest {
        method: "GET".to_string(),
        url: "/index.html".to_string(),
        headers: Vec::new(),
        body: ByteBuf::new(),
        certificate_version: Some(2),
    };
    let reject = update(
        &mut subnet,
        id,
        "http_request",
        Encode!(&req).unwrap(),
        alice(),
    )
    .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(
        reject.message.contains("no data certificate available"),
        "{}",
        reject.message
    );

    // The upgrade keeps the assets (pre_upgrade saves them to stable memory, post_upgrade restores
    // them and sets the certified data again) and the permissions.
    upgrade(&mut subnet, id, wasm.clone(), alice()).unwrap();
    assert_eq!(list(&mut subnet, id).len(), 2);
    let after = served(&mut subnet, "/index.html", INDEX_HTML);
    assert!(after > before);
    served(&mut subnet, "/js/app.js", &app_js);
    store(&mut subnet, id, "/index.html", b"<h1>v2</h1>", alice()).unwrap();
    served(&mut subnet, "/index.html", b"<h1>v2</h1>");

    // Only a controller upgrades it.
    let reject = upgrade(&mut subnet, id, wasm, bob()).unwrap_err();
    assert!(reject.message.contains("controller"), "{}", reject.message);
}

#[test]
fn assets_reject_a_store_without_the_commit_permission() {
    let (mut subnet, id, _) = asset_canister();
    let reject = store(&mut subnet, id, "/index.html", b"<h1>bob's</h1>", bob()).unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterReject, "{reject:?}");
    assert!(
        reject
            .message
            .contains("Caller does not have Commit permission"),
        "{}",
        reject.message
    );
    assert!(
        list(&mut subnet, id).is_empty(),
        "the rejected store stored nothing"
    );
    let reject = update(
        &mut subnet,
        id,
        "create_batch",
        Encode!(&Empty {}).unwrap(),
        bob(),
    )
    .unwrap_err();
    assert!(
        reject.message.contains("Prepare permission"),
        "{}",
        reject.message
    );
    // bob cannot grant himself the permission either.
    let reject = update(
        &mut subnet,
        id,
        "authorize",
        Encode!(&bob()).unwrap(),
        bob(),
    )
    .unwrap_err();
    assert!(
        reject.message.contains("is not a controller"),
        "{}",
        reject.message
    );

    // Once the controller authorizes bob, his store goes through.
    let reply = update(
        &mut subnet,
        id,
        "authorize",
        Encode!(&bob()).unwrap(),
        alice(),
    )
    .unwrap();
    Decode!(&reply).unwrap();
    store(&mut subnet, id, "/index.html", b"<h1>bob's</h1>", bob()).unwrap();
    let response = http_get(&mut subnet, id, "/index.html", Some(2));
    assert_eq!(response.status_code, 200);
    assert_eq!(response.body.as_ref(), b"<h1>bob's</h1>");
    verify_v2(
        &subnet,
        id,
        &exact_path("/index.html"),
        &response,
        b"<h1>bob's</h1>",
    );
}
