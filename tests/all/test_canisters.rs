//! The Rust test canisters (ic-cdk, ic-stable-structures), driven through the CLI.

use std::path::{Path, PathBuf};

use crate::canisters::test_canister;
use crate::support::{Run, cli, memories};

/// A canister installed in a fresh temporary state directory.
struct Installed {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Installed {
    fn new(name: &str, extra: &[&str]) -> Installed {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(name);
        let wasm = test_canister(name);
        let mut args = vec![
            "install".to_string(),
            wasm.display().to_string(),
            "--state".into(),
            dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        cli(&args).ok();
        Installed { _tmp: tmp, dir }
    }
    fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }
    fn call(&self, method: &str, arg: &str) -> Run {
        cli(&["call", self.d(), method, arg])
    }
    fn query(&self, method: &str, arg: &str) -> Run {
        cli(&["call", self.d(), method, arg, "--query"])
    }
    fn upgrade(&self, wasm: &Path) -> Run {
        cli(&["upgrade", self.d(), wasm.to_str().unwrap()])
    }
}

#[test]
fn kv_put_get_len_fill_and_upgrade() {
    let kv = Installed::new("kv", &[]);
    assert_eq!(kv.query("len", "()").ok(), "(0 : nat64)");
    kv.call("put", r#"(1 : nat64, blob "hello")"#).ok();
    kv.call("put", r#"(2 : nat64, blob "\00\01\02")"#).ok();
    assert_eq!(kv.query("get", "(1 : nat64)").ok(), r#"(opt blob "hello")"#);
    assert_eq!(
        kv.query("get", "(2 : nat64)").ok(),
        r#"(opt blob "\00\01\02")"#
    );
    assert_eq!(kv.query("get", "(3 : nat64)").ok(), "(null)");
    assert_eq!(kv.query("len", "()").ok(), "(2 : nat64)");
    kv.call("fill", "(10000 : nat64)").ok();
    assert_eq!(kv.query("len", "()").ok(), "(10_002 : nat64)");
    // Values survive an upgrade (they live in stable memory); the hooks run.
    assert_eq!(kv.query("upgrades", "()").ok(), "(0 : nat64)");
    kv.upgrade(&test_canister("kv")).ok();
    assert_eq!(kv.query("upgrades", "()").ok(), "(1 : nat64)");
    assert_eq!(kv.query("len", "()").ok(), "(10_002 : nat64)");
    assert_eq!(kv.query("get", "(1 : nat64)").ok(), r#"(opt blob "hello")"#);
}

#[test]
fn counter_traps_and_queries_change_nothing_rejects_keep_changes() {
    let c = Installed::new("counter", &["--arg", "(opt (41 : nat64))"]);
    assert_eq!(c.call("inc", "()").ok(), "(42 : nat64)");
    let before = memories(&c.dir);
    let err = c.call("write_and_trap", "(5 : nat64)").fails(1);
    assert!(err.contains("reject code 5"), "{err}");
    assert!(err.contains("write_and_trap: deliberate trap"), "{err}");
    assert_eq!(
        memories(&c.dir),
        before,
        "a trapping update changed heap or stable memory"
    );
    // A query's writes never persist.
    assert_eq!(c.query("query_mutate", "()").ok(), "(43 : nat64)");
    assert_eq!(memories(&c.dir), before);
    assert_eq!(c.query("read", "()").ok(), "(42 : nat64)");
    // An explicit reject and a missing reply keep the message's changes, as on the IC:
    // `no_reply` bumped the counter.
    let err = c.call("reject_me", "()").fails(1);
    assert!(
        err.contains("reject code 4") && err.contains("rejected on purpose"),
        "{err}"
    );
    let err = c.call("no_reply", "()").fails(1);
    assert!(
        err.contains("reject code 5") && err.contains("did not reply"),
        "{err}"
    );
    assert!(memories(&c.dir) != before, "no_reply's bump was kept");
    assert_eq!(c.call("inc", "()").ok(), "(44 : nat64)");
}

const PAGE: u64 = 65536;

#[test]
fn raw_stable_api_edge_cases() {
    let r = Installed::new("raw_stable", &[]);
    assert_eq!(r.call("size64", "()").ok(), "(0 : nat64)");
    assert_eq!(r.call("size32", "()").ok(), "(0 : nat32)");
    // Zero-length 64-bit accesses and 32-bit reads return before any bounds check.
    assert_eq!(
        r.call("read64", "(1_000_000 : nat64, 0 : nat64)").ok(),
        r#"(blob "")"#
    );
    r.call("write64", r#"(1_000_000 : nat64, blob "")"#).ok();
    assert_eq!(
        r.call("read32", "(1_000_000 : nat32, 0 : nat32)").ok(),
        r#"(blob "")"#
    );
    // The 32-bit write checks bounds first, even for zero length.
    let err = r
        .call("write32", r#"(1_000_000 : nat32, blob "")"#)
        .fails(1);
    assert!(err.contains("stable memory out of bounds"), "{err}");
    // Grow, then exact-end accesses work and one past the end traps.
    assert_eq!(r.call("grow64", "(2 : nat64)").ok(), "(0 : int64)");
    assert_eq!(r.call("grow32", "(1 : nat32)").ok(), "(2 : int32)");
    assert_eq!(r.call("size32", "()").ok(), "(3 : nat32)");
    let end = 3 * PAGE;
    r.call("write64", &format!(r#"({} : nat64, blob "abcd")"#, end - 4))
        .ok();
    assert_eq!(
        r.call("read32", &format!("({} : nat32, 4 : nat32)", end - 4))
            .ok(),
        r#"(blob "abcd")"#
    );
    for (method, arg) in [
        ("read64", format!("({} : nat64, 4 : nat64)", end - 3)),
        ("write64", format!(r#"({} : nat64, blob "abcd")"#, end - 3)),
        ("read32", format!("({} : nat32, 4 : nat32)", end - 3)),
        ("write32", format!(r#"({} : nat32, blob "abcd")"#, end - 3)),
        // offset + size overflows 64 bits
        (
            "read64_to",
            format!("(0 : nat64, {} : nat64, 2 : nat64)", u64::MAX),
        ),
    ] {
        let err = r.call(method, &arg).fails(1);
        assert!(
            err.contains("stable memory out of bounds"),
            "{method}{arg}: {err}"
        );
    }
    // Heap out of bounds is its own trap.
    for (method, arg) in [
        ("read64_to", "(4_294_967_290 : nat64, 0 : nat64, 8 : nat64)"),
        (
            "write64_from",
            "(0 : nat64, 4_294_967_290 : nat64, 8 : nat64)",
        ),
        ("read32_to", "(4_294_967_290 : nat32, 0 : nat32, 8 : nat32)"),
        (
            "write32_from",
            "(0 : nat32, 4_294_967_290 : nat32, 8 : nat32)",
        ),
    ] {
        let err = r.call(method, arg).fails(1);
        assert!(err.contains("heap out of bounds"), "{method}{arg}: {err}");
    }
    // Growing beyond the limits returns -1 and changes nothing.
    assert_eq!(
        r.call("grow64", "(18_446_744_073_709_551_615 : nat64)")
            .ok(),
        "(-1 : int64)"
    );
    assert_eq!(r.call("grow64", "(7_000_000 : nat64)").ok(), "(-1 : int64)"); // > 400 GiB
    assert_eq!(r.call("grow32", "(65_534 : nat32)").ok(), "(-1 : int32)"); // > 4 GiB
    assert_eq!(r.call("size64", "()").ok(), "(3 : nat64)");
    // The failed calls left the data in place.
    assert_eq!(
        r.call("read64", &format!("({} : nat64, 4 : nat64)", end - 4))
            .ok(),
        r#"(blob "abcd")"#
    );
}

/// Every test canister, instrumented in both modes, is valid Wasm with every wasmparser feature
/// on, and says what it did.
#[test]
fn instrumented_test_canisters_validate() {
    use canister_vm::instrument::{Config, StableMode, instrument};
    for name in ["kv", "counter", "raw_stable"] {
        let wasm = std::fs::read(test_canister(name)).unwrap();
        for mode in [StableMode::Native, StableMode::Syscall] {
            let out = instrument(&wasm, &Config::default().stable(mode)).unwrap();
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&out.wasm)
                .unwrap_or_else(|e| panic!("{name} ({mode:?}): {e}"));
            if mode == StableMode::Native {
                assert!(
                    !out.summary.replaced_imports.is_empty(),
                    "{name}: no stable import replaced"
                );
            }
        }
    }
}

/// The same message sequence in system-API mode and native mode gives identical replies,
/// heap bytes, stable bytes and instruction counts.
#[test]
fn native_and_syscall_modes_agree_on_every_test_canister() {
    use canister_vm::candid_text::encode_args;
    use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};
    use canister_vm::state::StableMode;

    /// (canister, init argument, messages as (method, Candid argument)).
    type Script<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let scripts: [Script; 3] = [
        (
            "kv",
            "()",
            &[
                ("put", r#"(1 : nat64, blob "one")"#),
                ("fill", "(500 : nat64)"),
                ("get", "(1 : nat64)"),
                ("get", "(250 : nat64)"),
                ("len", "()"),
                (
                    "put",
                    r#"(7 : nat64, blob "seven, longer than the first value")"#,
                ),
                ("fill", "(3 : nat64)"),
            ],
        ),
        (
            "counter",
            "(opt (3 : nat64))",
            &[
                ("inc", "()"),
                ("write_and_trap", "(2 : nat64)"),
                ("query_mutate", "()"),
                ("reject_me", "()"),
                ("inc", "()"),
                ("read", "()"),
            ],
        ),
        (
            "raw_stable",
            "()",
            &[
                ("grow64", "(3 : nat64)"),
                ("write64", r#"(100 : nat64, blob "hello stable")"#),
                ("read64", "(100 : nat64, 12 : nat64)"),
                ("write32", r#"(65_530 : nat32, blob "crosses a page")"#),
                ("read32", "(65_530 : nat32, 14 : nat32)"),
                ("read64", "(196_600 : nat64, 10 : nat64)"),
                ("grow32", "(1 : nat32)"),
                ("read64_to", "(4_294_967_290 : nat64, 0 : nat64, 8 : nat64)"),
                ("size32", "()"),
            ],
        ),
    ];
    for (name, init, script) in scripts {
        let wasm = std::fs::read(test_canister(name)).unwrap();
        let mut runs = Vec::new();
        for mode in [StableMode::Syscall, StableMode::Native] {
            let config = CanisterConfig::default().stable_mode(mode);
            let mut c = Canister::create(wasm.clone(), config, candid::Principal::from_slice(&[4]))
                .unwrap();
            let input = MessageInput::default();
            let mut outcomes = vec![c.init(&encode_args(init).unwrap(), &input).unwrap()];
            for (method, arg) in script {
                let arg = encode_args(arg).unwrap();
                let out = if c.methods().updates.iter().any(|m| m == method) {
                    c.update(method, &arg, &input).unwrap()
                } else {
                    c.query(method, &arg, &input).unwrap()
                };
                outcomes.push(out);
            }
            runs.push((outcomes, c.heap().to_vec(), c.stable().to_vec()));
        }
        let (syscall, native) = (&runs[0], &runs[1]);
        for (i, (s, n)) in syscall.0.iter().zip(&native.0).enumerate() {
            // Trap messages may differ in detail (the host names the function); compare the
            // reject code and the reply bytes, and the instruction counts exactly.
            assert_eq!(
                s.result.as_ref().map_err(|r| r.code),
                n.result.as_ref().map_err(|r| r.code),
                "{name} message {i}"
            );
            assert_eq!(
                s.instructions, n.instructions,
                "{name} message {i}: instructions"
            );
        }
        assert!(syscall.1 == native.1, "{name}: heap bytes differ");
        assert!(syscall.2 == native.2, "{name}: stable bytes differ");
    }
}

/// The write barrier is sound on real canisters: every 4 KiB page whose bytes a committed message
/// changed is in its dirty set; and the state hash kept up to date from those dirty pages equals
/// the hash computed from scratch.
#[test]
fn dirty_pages_cover_every_change_and_the_hash_follows() {
    use canister_vm::candid_text::encode_args;
    use canister_vm::runtime::{Canister, CanisterConfig, MessageInput};
    use canister_vm::state::StableMode;

    fn changed(before: &[u8], after: &[u8]) -> Vec<u64> {
        (0..after.len().div_ceil(4096))
            .filter(|&p| {
                let (s, e) = (p * 4096, ((p + 1) * 4096).min(after.len()));
                before.get(s..e.min(before.len())) != Some(&after[s..e])
            })
            .map(|p| p as u64)
            .collect()
    }

    let messages: [(&str, &str); 6] = [
        ("put", r#"(3 : nat64, blob "three")"#),
        ("fill", "(300 : nat64)"),
        ("put", r#"(70 : nat64, blob "overwritten value")"#),
        ("get", "(70 : nat64)"),
        ("fill", "(2 : nat64)"),
        ("len", "()"),
    ];
    for mode in [StableMode::Native, StableMode::Syscall] {
        let wasm = std::fs::read(test_canister("kv")).unwrap();
        let config = CanisterConfig::default().stable_mode(mode);
        let mut c = Canister::create(wasm, config, candid::Principal::from_slice(&[4])).unwrap();
        let input = MessageInput::default();
        c.init(&encode_args("()").unwrap(), &input).unwrap();
        for (method, arg) in messages {
            let (heap, stable) = (c.heap().to_vec(), c.stable().to_vec());
            let out = c
                .update(method, &encode_args(arg).unwrap(), &input)
                .unwrap();
            assert!(out.result.is_ok(), "{method}: {:?}", out.result);
            for p in changed(&heap, c.heap()) {
                assert!(
                    out.dirty.heap.contains(&p),
                    "{mode:?} {method}: heap page {p} missed"
                );
            }
            for p in changed(&stable, c.stable()) {
                assert!(
                    out.dirty.stable.contains(&p),
                    "{mode:?} {method}: stable page {p} missed"
                );
            }
            assert_eq!(
                c.state_hash(),
                c.state_hash_from_scratch(),
                "{mode:?} {method}"
            );
        }
        assert!(!c.stable().is_empty());
    }
}
