//! Builds the Rust test canisters and checks the wasm they produce: valid modules that import only
//! from `ic0`, only functions canister-vm provides (with the signatures it provides them with),
//! and export the expected canister methods.

#[path = "support/canisters.rs"]
mod canisters;

use canister_vm::runtime::ic0::{self, HeapType, Signature};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

struct Summary {
    /// `(module, name, signature)` of every imported function.
    imports: Vec<(String, String, Signature)>,
    exports: Vec<String>,
}

fn to_ic0_valtype(t: wasmparser::ValType) -> ic0::ValType {
    match t {
        wasmparser::ValType::I32 => ic0::ValType::I32,
        wasmparser::ValType::I64 => ic0::ValType::I64,
        other => panic!("unexpected value type {other:?} in an imported function"),
    }
}

fn summarize(bytes: &[u8]) -> Summary {
    let mut types = Vec::new();
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("malformed wasm") {
            Payload::TypeSection(reader) => {
                for group in reader {
                    // Every function type, the module's own functions' too (which may use
                    // floats): only imported ones are converted to ic0 signatures, below.
                    for sub in group.expect("malformed type").into_types() {
                        types.push(sub.unwrap_func().clone());
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.expect("malformed import");
                    let TypeRef::Func(ty) = import.ty else {
                        panic!(
                            "unexpected non-function import {}.{}",
                            import.module, import.name
                        );
                    };
                    let func: &wasmparser::FuncType = &types[ty as usize];
                    imports.push((
                        import.module.to_string(),
                        import.name.to_string(),
                        Signature {
                            params: func.params().iter().copied().map(to_ic0_valtype).collect(),
                            results: func.results().iter().copied().map(to_ic0_valtype).collect(),
                        },
                    ));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.expect("malformed export");
                    if export.kind == ExternalKind::Func {
                        exports.push(export.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Summary { imports, exports }
}

#[test]
fn test_canisters_build_and_import_only_ic0() {
    let expected_exports: [(&str, &[&str]); 7] = [
        (
            "kv",
            &[
                "canister_init",
                "canister_pre_upgrade",
                "canister_post_upgrade",
                "canister_update put",
                "canister_query get",
                "canister_query len",
                "canister_update fill",
                "canister_query upgrades",
            ],
        ),
        (
            "counter",
            &[
                "canister_init",
                "canister_update inc",
                "canister_query read",
                "canister_update write_and_trap",
                "canister_query query_mutate",
                "canister_update reject_me",
                "canister_update no_reply",
            ],
        ),
        (
            "raw_stable",
            &[
                "canister_update size32",
                "canister_update size64",
                "canister_update grow32",
                "canister_update grow64",
                "canister_update read32",
                "canister_update write32",
                "canister_update read64",
                "canister_update write64",
                "canister_update read32_to",
                "canister_update write32_from",
                "canister_update read64_to",
                "canister_update write64_from",
            ],
        ),
        (
            "calls",
            &[
                "canister_update echo",
                "canister_update boom",
                "canister_update call_echo",
                "canister_update call_boom",
                "canister_update random",
                "canister_update start_timers",
                "canister_heartbeat",
                "canister_query counters",
                "canister_global_timer",
            ],
        ),
        (
            "assets",
            &[
                "canister_init",
                "canister_pre_upgrade",
                "canister_post_upgrade",
                "canister_update store",
                "canister_update create_batch",
                "canister_update create_chunk",
                "canister_update commit_batch",
                "canister_update grant_permission",
                "canister_query list",
                "canister_query get",
                "canister_query http_request",
                "canister_query http_request_streaming_callback",
                "canister_query certified_tree",
            ],
        ),
        (
            "typed",
            &[
                "canister_init",
                "canister_update add",
                "canister_query get",
                "canister_query list",
                "canister_update complete",
                "canister_query whoami",
                "canister_query stats",
                "canister_query echo_blob",
            ],
        ),
        (
            "bench",
            &[
                "canister_init",
                "canister_query pages",
                "canister_query __canbench__compute",
                "canister_query __canbench__scopes",
                "canister_query __canbench__heap_grow",
                "canister_query __canbench__stable_grow",
                "canister_query __canbench__from_init",
                "canister_query __canbench__stable_file",
                "canister_query __canbench__may_trap",
                "canister_query __canbench__odd",
            ],
        ),
    ];
    assert_eq!(expected_exports.map(|(n, _)| n), canisters::CANISTERS);

    for (name, exports) in expected_exports {
        let bytes = canisters::test_canister_bytes(name);
        assert!(
            bytes.starts_with(b"\0asm"),
            "{name}.wasm does not start with \\0asm"
        );
        let summary = summarize(&bytes);
        assert!(!summary.imports.is_empty(), "{name}.wasm imports nothing");
        for (module, field, sig) in &summary.imports {
            assert_eq!(module, "ic0", "{name}.wasm imports {module}.{field}");
            let provided = ic0::signature(field, HeapType::Wasm32).unwrap_or_else(|| {
                panic!("{name}.wasm imports ic0.{field}, which canister-vm does not provide")
            });
            assert_eq!(
                *sig, provided,
                "{name}.wasm imports ic0.{field} as {sig}, canister-vm provides {provided}"
            );
        }
        for export in exports {
            assert!(
                summary.exports.iter().any(|e| e == export),
                "{name}.wasm does not export {export:?}; exports: {:?}",
                summary.exports
            );
        }
    }

    let raw = summarize(&canisters::test_canister_bytes("raw_stable"));
    for f in [
        "stable_size",
        "stable_grow",
        "stable_read",
        "stable_write",
        "stable64_size",
        "stable64_grow",
        "stable64_read",
        "stable64_write",
    ] {
        assert!(
            raw.imports.iter().any(|(_, name, _)| name == f),
            "raw_stable.wasm does not import ic0.{f}"
        );
    }
}
