//! Candid typed by the canister's interface through the CLI, as `dfx canister call` types it:
//! the `typed` test canister (ic-cdk, its interface embedded as `candid:service` metadata) and a
//! WAT canister without metadata given a `.did` file; JSON and raw output, `--stats-format
//! json`, the instruction-limit hint, `--time` in the past, and `replay`'s progress lines.

use std::path::Path;

use serde_json::json;

use crate::canisters::test_canister;
use crate::support::{cli, write_file};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Lines of the log (what `replay` re-executes).
fn log_records(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("messages.jsonl"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn the_module_interface_types_arguments_and_names_replies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let d = s(&dir);
    let wasm = test_canister("typed");
    // The init record is typed by the service's init types.
    cli(&[
        "install",
        s(&wasm),
        "--state",
        d,
        "--arg",
        r#"(record { greeting = "hello" })"#,
    ])
    .ok();
    // `deadline = 5` is a nat64 because `Priority` says so; `note`, an omitted `opt`, is null.
    let out = cli(&[
        "call",
        d,
        "add",
        r#"(record { title = "buy milk"; tags = vec { "home"; "shop" }; priority = variant { high = record { deadline = 5 } } })"#,
    ])
    .ok();
    assert_eq!(out, "(variant { ok = 0 : nat64 })");
    cli(&[
        "call",
        d,
        "add",
        r#"(record { title = "call mum"; tags = vec {}; priority = variant { low }; note = opt "sunday" })"#,
        "--caller",
        "aaaaa-aa",
    ])
    .ok();

    // `(0)` is typed as the nat64 `get` takes; the reply has field names and variant tags.
    let out = cli(&["call", d, "get", "(0)", "--query"]).ok();
    for field in [
        "title = \"buy milk\"",
        "owner = principal \"2vxsx-fae\"",
        "done = false",
        "note = null",
        "tags = vec { \"home\"; \"shop\" }",
        "priority = variant { high = record { deadline = 5 : nat64 } }",
        "id = 0 : nat64",
    ] {
        assert!(out.contains(field), "{field} missing in {out}");
    }
    assert!(!out.contains("_23515_") && !out.contains("23_515"), "{out}");

    // JSON in idl2json's convention: an array of the reply's values, nat64 as strings, opt as
    // [] / [v], variants as one-key objects.
    let out = cli(&["call", d, "list", "--query", "--output", "json"]).ok();
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        got,
        json!([[
            {"id": "0", "title": "buy milk", "done": false, "owner": "2vxsx-fae",
             "tags": ["home", "shop"], "priority": {"high": {"deadline": "5"}}, "note": []},
            {"id": "1", "title": "call mum", "done": false, "owner": "aaaaa-aa",
             "tags": [], "priority": {"low": null}, "note": ["sunday"]}
        ]])
    );
    let out = cli(&["call", d, "list", "(opt 1)", "--query", "--output", "json"]).ok();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Variants of `variant { ok : Item; err : Error }`.
    let out = cli(&["call", d, "complete", "(1)"]).ok();
    assert!(
        out.contains("ok = record {") && out.contains("done = true"),
        "{out}"
    );
    let out = cli(&["call", d, "complete", "(1)"]).ok();
    assert_eq!(
        out,
        "(variant { err = variant { already_done = 1 : nat64 } })"
    );
    let out = cli(&["call", d, "complete", "(7)", "--output", "json"]).ok();
    assert_eq!(out, r#"[{"err":{"not_found":"7"}}]"#);
    let out = cli(&["call", d, "stats", "--query"]).ok();
    assert!(out.contains("greeting = \"hello\""), "{out}");
    assert!(
        out.contains("count = 2 : nat64") && out.contains("done = 1 : nat64"),
        "{out}"
    );

    // Blobs, nat and principals.
    let out = cli(&[
        "call",
        d,
        "echo_blob",
        r#"(blob "\01\ff")"#,
        "--query",
        "--output",
        "json",
    ])
    .ok();
    assert_eq!(out, r#"[[1,255],"2"]"#);
    let out = cli(&["call", d, "whoami", "--query", "--caller", "aaaaa-aa"]).ok();
    assert_eq!(out, "(principal \"aaaaa-aa\")");

    // A type mismatch is reported before the canister runs: exit 2, method and type named,
    // nothing logged or changed.
    let records = log_records(&dir);
    let hash = |d: &str| {
        let info = cli(&["info", d]).ok();
        info.lines()
            .find(|l| l.starts_with("subnet hash:"))
            .unwrap()
            .to_string()
    };
    let before = hash(d);
    for (method, arg, expected) in [
        (
            "get",
            r#"("zero")"#,
            "does not match method `get`, which takes (nat64)",
        ),
        (
            "add",
            r#"(record { title = 5 })"#,
            "does not match method `add`, which takes (NewItem)",
        ),
        ("complete", "(1, 2)", "2 values given, 1 expected"),
        (
            "add",
            r#"(record { title = "x"; tags = vec {}; priority = variant { urgent } })"#,
            "method `add`",
        ),
    ] {
        let err = cli(&["call", d, method, arg]).fails(2);
        assert!(err.starts_with("error: the argument `"), "{err}");
        assert!(err.contains(expected), "{method} {arg}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(log_records(&dir), records);
    assert_eq!(hash(d), before);
    // The init argument is typed too: a wrong one installs nothing.
    let err = cli(&["install", s(&wasm), "--state", d, "--arg", "(5)"]).fails(2);
    assert!(err.contains("does not match the init argument"), "{err}");
    assert_eq!(log_records(&dir), records);

    // Hex and raw bytes of the same reply.
    let hex_out = cli(&["call", d, "whoami", "--query", "--output", "hex"]).ok();
    let raw = cli(&["call", d, "whoami", "--query", "--output", "raw"]);
    assert_eq!(raw.code, 0);
    assert!(hex_out.starts_with(&hex::encode(b"DIDL")), "{hex_out}");
    assert_eq!(hex::encode(raw.stdout.as_bytes()), hex_out);

    // `info` prints the interface; its log count is what `replay` replays.
    let info = cli(&["info", d]).ok();
    assert!(
        info.contains("interface:     (candid:service metadata)"),
        "{info}"
    );
    assert!(
        info.contains("service : (record { greeting : text }) -> {"),
        "{info}"
    );
    assert!(
        info.contains("get : (nat64) -> (opt Item) query;"),
        "{info}"
    );
    let records = log_records(&dir);
    assert!(
        info.contains(&format!("log records:   {records} ")),
        "{info}"
    );
    let replayed = cli(&["replay", d]).ok();
    assert!(
        replayed.starts_with(&format!("replayed {records} messages")),
        "{replayed}"
    );
}

/// A WAT canister without metadata: `pair` replies `record { name = "pair"; n = 7 : nat64 }`,
/// `take` replies `()` whatever its argument.
fn plain_canister(dir: &Path) -> std::path::PathBuf {
    #[derive(candid::CandidType)]
    struct Pair {
        name: String,
        n: u64,
    }
    let reply = candid::encode_one(Pair {
        name: "pair".into(),
        n: 7,
    })
    .unwrap();
    let escaped: String = reply.iter().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (memory 1)
  (data (i32.const 0) "{escaped}")
  (data (i32.const 512) "DIDL\00\00")
  (func (export "canister_query pair")
    (call $append (i32.const 0) (i32.const {len}))
    (call $reply))
  (func (export "canister_update take")
    (call $append (i32.const 512) (i32.const 6))
    (call $reply)))"#,
        len = reply.len()
    );
    write_file(dir, "plain.wat", wat)
}

#[test]
fn a_did_file_types_a_canister_without_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = plain_canister(tmp.path());
    // An interface that imports its types from another file.
    let types = write_file(
        tmp.path(),
        "types.did",
        "type Pair = record { name : text; n : nat64 };",
    );
    let did = write_file(
        tmp.path(),
        "plain.did",
        r#"import "types.did"; service : { pair : () -> (Pair) query; take : (nat64) -> () }"#,
    );
    let renamed = write_file(
        tmp.path(),
        "renamed.did",
        "service : { pair : () -> (record { name : text; n : nat64; extra : opt nat }) query }",
    );
    let dir = tmp.path().join("state");
    let d = s(&dir);

    // A .did that does not parse installs nothing.
    let bad = write_file(
        tmp.path(),
        "bad.did",
        "service : { pair : () -> (record { name ; }) }",
    );
    let err = cli(&["install", s(&wasm), "--state", d, "--did", s(&bad)]).fails(2);
    assert!(
        err.contains("bad.did") && err.contains("invalid Candid interface"),
        "{err}"
    );
    assert!(!dir.exists());

    // Without an interface: hashed field ids, untyped arguments (today's behaviour).
    let untyped = tmp.path().join("untyped");
    cli(&["install", s(&wasm), "--state", s(&untyped)]).ok();
    let out = cli(&["call", s(&untyped), "pair", "--query"]).ok();
    assert!(out.contains("1_224_700_491 = \"pair\""), "{out}");
    let info = cli(&["info", s(&untyped)]).ok();
    assert!(info.contains("interface:     (none"), "{info}");

    // With --did at install: recorded (imports resolved: the imported file is not needed
    // afterwards), names in replies, arguments typed.
    cli(&["install", s(&wasm), "--state", d, "--did", s(&did)]).ok();
    let kept = std::fs::read(&types).unwrap();
    std::fs::remove_file(&types).unwrap();
    let out = cli(&["call", d, "pair", "--query"]).ok();
    assert!(
        out.contains("name = \"pair\"") && out.contains("n = 7 : nat64"),
        "{out}"
    );
    let info = cli(&["info", d]).ok();
    assert!(
        info.contains("interface:     (recorded with --did)"),
        "{info}"
    );
    cli(&["call", d, "take", "(3)"]).ok();
    let err = cli(&["call", d, "take", "(-3)"]).fails(2);
    assert!(err.contains("which takes (nat64)"), "{err}");

    // `call --did` overrides the recorded interface for one call.
    let out = cli(&[
        "call",
        d,
        "pair",
        "--query",
        "--did",
        s(&renamed),
        "--output",
        "json",
    ])
    .ok();
    assert_eq!(out, r#"[{"extra":[],"n":"7","name":"pair"}]"#);
    // A method the interface does not list is called untyped.
    let err = cli(&["call", d, "take", "(-3)", "--did", s(&renamed)]);
    assert_eq!(err.code, 0, "{err:?}");

    // Upgrade without --did drops the recorded interface (it belonged to the old module).
    cli(&["upgrade", d, s(&wasm)]).ok();
    let out = cli(&["call", d, "pair", "--query"]).ok();
    assert!(out.contains("1_224_700_491"), "{out}");
    // Upgrade with --did records the new one.
    std::fs::write(&types, kept).unwrap();
    cli(&["upgrade", d, s(&wasm), "--did", s(&did)]).ok();
    let out = cli(&["call", d, "pair", "--query"]).ok();
    assert!(out.contains("name = \"pair\""), "{out}");
    cli(&["replay", d]).ok();
}

#[test]
fn stats_as_json_limit_hints_time_and_replay_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = write_file(
        tmp.path(),
        "spin.wat",
        r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (memory 2)
  (func (export "canister_update spin") (loop (br 0)))
  (func (export "canister_update touch")
    (i32.store (i32.const 70000) (i32.const 1))
    (call $reply)))"#,
    );
    let dir = tmp.path().join("state");
    let d = s(&dir);
    cli(&["install", s(&wasm), "--state", d]).ok();

    let run = cli(&["call", d, "touch", "--stats-format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let stats: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert!(stats["instructions"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["dirty_heap_pages"], 1, "{stats}");
    assert_eq!(stats["dirty_stable_pages"], 0, "{stats}");
    assert!(stats["pages_written"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["wall_time_ms"].as_f64().unwrap() >= 0.0, "{stats}");
    assert_eq!(stats["messages_caused"], 0, "{stats}");

    // The instruction-limit reject says which limit and which flag changes it.
    let err = cli(&["call", d, "spin", "--instruction-limit", "100000"]).fails(1);
    assert!(
        err.contains("instructions for single message execution"),
        "{err}"
    );
    assert!(
        err.contains("hint: the message used up its limit of 100000 instructions (given with --instruction-limit); raise it with --instruction-limit <N>"),
        "{err}"
    );

    // Time never goes back.
    let info = cli(&["info", d]).ok();
    let now: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("time:"))
        .and_then(|t| t.trim().strip_suffix(" ns"))
        .unwrap()
        .parse()
        .unwrap();
    let records = log_records(&dir);
    let err = cli(&["call", d, "touch", "--time", &(now - 1).to_string()]).fails(2);
    assert!(err.contains("is earlier than the subnet's clock"), "{err}");
    assert_eq!(log_records(&dir), records);
    cli(&["call", d, "touch", "--time", &(now + 5).to_string()]).ok();

    // Replay prints progress lines where stderr is not a terminal.
    for _ in 0..3 {
        cli(&["call", d, "touch"]).ok();
    }
    let records = log_records(&dir);
    let run = cli(&["replay", d, "--progress-every", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("replayed "))
        .collect();
    assert_eq!(lines.len(), records / 2, "{}", run.stderr);
    assert!(
        lines[0].starts_with(&format!("replayed 2/{records} records (")),
        "{lines:?}"
    );
    let run = cli(&["replay", d, "--progress-every", "0"]);
    assert!(!run.stderr.contains("records ("), "{}", run.stderr);
}

/// The `assets.did` that ships with the published `ic-certified-assets` crate the `assets` test
/// canister is built from (found with `cargo metadata`, as cargo downloaded it).
fn published_assets_did() -> std::path::PathBuf {
    let root = crate::support::repo();
    let out =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                "wasm32-unknown-unknown",
            ])
            .arg("--manifest-path")
            .arg(root.join("test-canisters/assets/Cargo.toml"))
            .output()
            .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ic-certified-assets")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("ic-certified-assets is a dependency of the assets canister");
    Path::new(manifest).with_file_name("assets.did")
}

#[test]
fn the_published_asset_canister_is_called_through_its_published_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let d = s(&dir);
    let did = published_assets_did();
    let wasm = test_canister("assets");
    // The init argument `opt AssetCanisterArgs` may be left out: typed, it is `null`.
    cli(&["install", s(&wasm), "--state", d, "--did", s(&did)]).ok();
    let out = cli(&[
        "call",
        d,
        "store",
        r#"(record { key = "/index.html"; content_type = "text/html"; content_encoding = "identity"; content = blob "<h1>hi</h1>" })"#,
    ])
    .ok();
    assert_eq!(out, "()");
    let out = cli(&[
        "call",
        d,
        "list",
        "(record {})",
        "--query",
        "--output",
        "json",
    ])
    .ok();
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let asset = &got[0][0];
    assert_eq!(asset["key"], "/index.html", "{out}");
    assert_eq!(asset["content_type"], "text/html", "{out}");
    let encoding = &asset["encodings"][0];
    assert_eq!(encoding["length"], "11", "{out}");
    // `modified : int`, in plain digits.
    let modified = encoding["modified"].as_str().unwrap();
    assert!(modified.parse::<u64>().is_ok(), "{out}");
    let out = cli(&[
        "call",
        d,
        "get",
        r#"(record { key = "/index.html"; accept_encodings = vec { "identity" } })"#,
        "--query",
    ])
    .ok();
    assert!(out.contains("content = blob \"<h1>hi</h1>\""), "{out}");
    assert!(out.contains("total_length = 11 : nat"), "{out}");
    let err = cli(&["call", d, "store", "(record { key = 5 })"]).fails(2);
    assert!(err.contains("does not match method `store`"), "{err}");
}
