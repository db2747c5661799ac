//! The engine choice: `CanisterConfig::engine` and `--engine` (wasmi in every build; wasmtime only
//! with the `wasmtime` feature, a clear error without it).

use canister_vm::runtime::Engine;

use crate::support::{cli, repo};

#[test]
fn engine_names_round_trip() {
    for engine in Engine::ALL {
        assert_eq!(engine.name().parse::<Engine>(), Ok(engine));
        assert_eq!(engine.to_string(), engine.name());
    }
    assert!("v8".parse::<Engine>().is_err());
    assert_eq!(Engine::default(), Engine::Wasmi);
    assert!(Engine::available().contains(&Engine::Wasmi));
    assert_eq!(
        Engine::Wasmtime.is_available(),
        cfg!(feature = "wasmtime"),
        "wasmtime is available exactly in builds with the feature"
    );
}

#[cfg(not(feature = "wasmtime"))]
#[test]
fn wasmtime_without_the_feature_is_a_clear_error() {
    use canister_vm::runtime::{Canister, CanisterConfig};
    let wasm = canister_vm::load::read_module(&repo().join("examples/counter.wat")).unwrap();
    let config = CanisterConfig::default().engine(Engine::Wasmtime);
    let err = Canister::create(wasm, config, candid::Principal::from_slice(&[4])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "this build has no wasmtime engine: rebuild with --features wasmtime"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let example = repo().join("examples/counter.wat");
    let stderr = cli(&[
        "install".as_ref(),
        example.as_os_str(),
        "--state".as_ref(),
        dir.as_os_str(),
        "--engine".as_ref(),
        "wasmtime".as_ref(),
    ])
    .fails(2);
    assert!(
        stderr.contains("this build has no wasmtime engine: rebuild with --features wasmtime"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing is installed");
}

#[test]
fn engine_flag_on_install_call_and_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    let example = repo().join("examples/counter.wat");
    let example = example.to_str().unwrap();
    cli(&["install", example, "--state", d, "--engine", "wasmi"]).ok();
    assert_eq!(
        cli(&["call", d, "inc", "--engine", "wasmi"]).ok(),
        "(1 : nat64)"
    );
    let stderr = cli(&["call", d, "inc", "--engine", "v8"]).fails(2);
    assert!(stderr.contains("v8"), "{stderr}");
    let engine = Engine::available().last().copied().unwrap().name();
    assert_eq!(
        cli(&["call", d, "inc", "--engine", engine]).ok(),
        "(2 : nat64)"
    );
    cli(&["upgrade", d, example, "--engine", engine]).ok();
    assert_eq!(
        cli(&["call", d, "read", "--query", "--engine", engine]).ok(),
        "(2 : nat64)"
    );
}
