//! The management canister `aaaaa-aa` of a subnet, called with the IC's Candid types (dfinity's
//! `ic-management-canister-types`) from ingress and from a canister: creating, installing,
//! upgrading, stopping, deleting, status, settings, cycles, `raw_rand`, and controllers checked
//! as the IC checks them.

use candid::{Encode, Nat, Principal};
use canister_vm::runtime::subnet::{MessageKind, Subnet};
use canister_vm::runtime::{CanisterConfig, RejectCode};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterSettings, CanisterStatusResult,
    CanisterStatusType, CreateCanisterArgs, InstallCodeArgs,
    ProvisionalCreateCanisterWithCyclesArgs, UpdateSettingsArgs,
};

use crate::subnet::{call_arg, relay};

const IC: Principal = Principal::management_canister();

fn alice() -> Principal {
    Principal::self_authenticating(b"alice")
}
fn bob() -> Principal {
    Principal::self_authenticating(b"bob")
}

fn create(subnet: &mut Subnet, caller: Principal, cycles: u64) -> Principal {
    let args = ProvisionalCreateCanisterWithCyclesArgs {
        amount: Some(Nat::from(cycles)),
        ..Default::default()
    };
    let reply = subnet
        .update_call_raw(
            IC,
            "provisional_create_canister_with_cycles",
            &Encode!(&args).unwrap(),
            caller,
        )
        .unwrap()
        .unwrap();
    candid::decode_one::<CanisterIdRecord>(&reply)
        .unwrap()
        .canister_id
}

fn install(
    subnet: &mut Subnet,
    caller: Principal,
    id: Principal,
    mode: CanisterInstallMode,
    wasm: Vec<u8>,
) -> Result<Vec<u8>, canister_vm::runtime::Reject> {
    let args = InstallCodeArgs {
        mode,
        canister_id: id,
        wasm_module: wasm,
        arg: Vec::new(),
        sender_canister_version: None,
    };
    subnet
        .update_call_raw(IC, "install_code", &Encode!(&args).unwrap(), caller)
        .unwrap()
}

fn status(
    subnet: &mut Subnet,
    caller: Principal,
    id: Principal,
) -> Result<CanisterStatusResult, canister_vm::runtime::Reject> {
    subnet
        .update_call_raw(
            IC,
            "canister_status",
            &Encode!(&CanisterIdRecord { canister_id: id }).unwrap(),
            caller,
        )
        .unwrap()
        .map(|r| candid::decode_one(&r).unwrap())
}

fn mgmt(
    subnet: &mut Subnet,
    caller: Principal,
    method: &str,
    id: Principal,
) -> Result<Vec<u8>, canister_vm::runtime::Reject> {
    subnet
        .update_call_raw(
            IC,
            method,
            &Encode!(&CanisterIdRecord { canister_id: id }).unwrap(),
            caller,
        )
        .unwrap()
}

#[test]
fn create_install_status_and_call_from_ingress() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let id = create(&mut subnet, alice(), 5_000);
    assert_eq!(id.to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
    let s = status(&mut subnet, alice(), id).unwrap();
    assert_eq!(s.module_hash, None);
    assert_eq!(s.cycles, Nat::from(5_000u64));
    assert_eq!(s.settings.controllers, vec![alice()]);
    assert_eq!(s.status, CanisterStatusType::Running);
    // An empty canister takes no messages.
    let reject = subnet
        .update_call_raw(id, "echo", b"", alice())
        .unwrap()
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(reject.message.contains("is empty"), "{}", reject.message);

    install(
        &mut subnet,
        alice(),
        id,
        CanisterInstallMode::Install,
        relay(),
    )
    .unwrap();
    let s = status(&mut subnet, alice(), id).unwrap();
    use sha2::Digest;
    assert_eq!(s.module_hash, Some(sha2::Sha256::digest(relay()).to_vec()));
    assert!(s.memory_metrics.wasm_memory_size > 0u8);
    assert_eq!(
        subnet
            .update_call_raw(id, "echo", b"hi", bob())
            .unwrap()
            .unwrap(),
        b"hi"
    );
    assert!(
        subnet
            .history()
            .iter()
            .any(|m| m.kind == MessageKind::Management)
    );

    // Installing again is refused; reinstalling resets the canister.
    let reject = install(
        &mut subnet,
        alice(),
        id,
        CanisterInstallMode::Install,
        relay(),
    )
    .unwrap_err();
    assert!(reject.message.contains("not empty"), "{}", reject.message);
    subnet
        .update_call_raw(id, "silent", b"", bob())
        .unwrap()
        .unwrap_err();
    let before = |subnet: &mut Subnet| {
        let b = subnet
            .query_call_raw(id, "stats", b"", bob())
            .unwrap()
            .unwrap();
        u64::from_le_bytes(b[..8].try_into().unwrap())
    };
    assert_eq!(before(&mut subnet), 100);
    install(
        &mut subnet,
        alice(),
        id,
        CanisterInstallMode::Upgrade(None),
        relay(),
    )
    .unwrap();
    assert_eq!(
        before(&mut subnet),
        0,
        "an upgrade resets the heap and globals"
    );
    install(
        &mut subnet,
        alice(),
        id,
        CanisterInstallMode::Reinstall,
        relay(),
    )
    .unwrap();
    assert_eq!(before(&mut subnet), 0);
    // A module that is not valid Wasm is a reject, not an error.
    let reject = install(
        &mut subnet,
        alice(),
        id,
        CanisterInstallMode::Reinstall,
        b"nope".to_vec(),
    )
    .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(reject.message.contains("not valid"), "{}", reject.message);
}

#[test]
fn a_non_controller_is_rejected_as_on_the_ic() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let id = create(&mut subnet, alice(), 1);
    let expected = format!(
        "Only the controllers of the canister {id} can control it.\nCanister's controllers: {}\nSender's ID: {}",
        alice(),
        bob()
    );
    let reject = install(
        &mut subnet,
        bob(),
        id,
        CanisterInstallMode::Install,
        relay(),
    )
    .unwrap_err();
    assert_eq!(
        (reject.code, reject.message.clone()),
        (RejectCode::CanisterError, expected.clone())
    );
    for method in [
        "canister_status",
        "stop_canister",
        "start_canister",
        "delete_canister",
        "uninstall_code",
    ] {
        let arg = if method == "uninstall_code" {
            Encode!(&ic_management_canister_types::UninstallCodeArgs {
                canister_id: id,
                sender_canister_version: None
            })
            .unwrap()
        } else {
            Encode!(&CanisterIdRecord { canister_id: id }).unwrap()
        };
        let reject = subnet
            .update_call_raw(IC, method, &arg, bob())
            .unwrap()
            .unwrap_err();
        assert_eq!(reject.message, expected, "{method}");
    }
    // Alice hands control to Bob.
    let settings = UpdateSettingsArgs {
        canister_id: id,
        settings: CanisterSettings {
            controllers: Some(vec![bob()]),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    subnet
        .update_call_raw(IC, "update_settings", &Encode!(&settings).unwrap(), alice())
        .unwrap()
        .unwrap();
    assert!(status(&mut subnet, alice(), id).is_err());
    assert_eq!(
        status(&mut subnet, bob(), id).unwrap().settings.controllers,
        vec![bob()]
    );
}

#[test]
fn stop_start_delete_and_unknown_methods() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let id = create(&mut subnet, alice(), 1);
    install(
        &mut subnet,
        alice(),
        id,
        CanisterInstallMode::Install,
        relay(),
    )
    .unwrap();
    let reject = mgmt(&mut subnet, alice(), "delete_canister", id).unwrap_err();
    assert!(
        reject.message.contains("must be stopped"),
        "{}",
        reject.message
    );
    mgmt(&mut subnet, alice(), "stop_canister", id).unwrap();
    assert_eq!(
        status(&mut subnet, alice(), id).unwrap().status,
        CanisterStatusType::Stopped
    );
    let reject = subnet
        .update_call_raw(id, "echo", b"", bob())
        .unwrap()
        .unwrap_err();
    assert!(reject.message.contains("is stopped"), "{}", reject.message);
    mgmt(&mut subnet, alice(), "start_canister", id).unwrap();
    assert_eq!(
        subnet
            .update_call_raw(id, "echo", b"x", bob())
            .unwrap()
            .unwrap(),
        b"x"
    );
    mgmt(&mut subnet, alice(), "stop_canister", id).unwrap();
    mgmt(&mut subnet, alice(), "delete_canister", id).unwrap();
    assert_eq!(
        subnet
            .update_call_raw(id, "echo", b"", bob())
            .unwrap()
            .unwrap_err()
            .code,
        RejectCode::DestinationInvalid
    );

    let reject = subnet
        .update_call_raw(IC, "sign_with_nothing", b"DIDL\0\0", alice())
        .unwrap()
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::DestinationInvalid);
    assert!(reject.message.contains("has no method 'sign_with_nothing'"));
    let reject = subnet
        .update_call_raw(IC, "canister_status", b"garbage", alice())
        .unwrap()
        .unwrap_err();
    assert_eq!(reject.code, RejectCode::CanisterReject);
    // create_canister and raw_rand are for canisters.
    let args = Encode!(&CreateCanisterArgs::default()).unwrap();
    assert_eq!(
        subnet
            .update_call_raw(IC, "create_canister", &args, alice())
            .unwrap()
            .unwrap_err()
            .code,
        RejectCode::CanisterReject
    );
    assert_eq!(
        subnet
            .update_call_raw(IC, "raw_rand", b"DIDL\0\0", alice())
            .unwrap()
            .unwrap_err()
            .code,
        RejectCode::CanisterReject
    );
}

/// The relay canister calls `method` of `aaaaa-aa` with `payload`; its reply is `"ok:"` + the
/// management canister's reply.
fn via_relay(
    subnet: &mut Subnet,
    relay_id: Principal,
    method: &str,
    cycles: u64,
    payload: &[u8],
) -> Vec<u8> {
    let reply = subnet
        .update_call_raw(
            relay_id,
            "call",
            &call_arg(IC, method, 0, cycles, payload),
            alice(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(&reply[..3], b"ok:", "{}", String::from_utf8_lossy(&reply));
    reply[3..].to_vec()
}

#[test]
fn a_canister_creates_a_canister_installs_it_and_reads_its_status() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let factory = subnet.install_raw(relay(), b"", alice()).unwrap();
    let balance = subnet.system_state(factory).unwrap().cycle_balance;
    let reply = via_relay(
        &mut subnet,
        factory,
        "create_canister",
        1_000_000,
        &Encode!(&CreateCanisterArgs::default()).unwrap(),
    );
    let child = candid::decode_one::<CanisterIdRecord>(&reply)
        .unwrap()
        .canister_id;
    assert_eq!(child.to_text(), "rrkah-fqaaa-aaaaa-aaaaq-cai");
    assert_eq!(
        subnet.system_state(factory).unwrap().cycle_balance,
        balance - 1_000_000
    );
    let install_args = InstallCodeArgs {
        mode: CanisterInstallMode::Install,
        canister_id: child,
        wasm_module: relay(),
        arg: Vec::new(),
        sender_canister_version: None,
    };
    via_relay(
        &mut subnet,
        factory,
        "install_code",
        0,
        &Encode!(&install_args).unwrap(),
    );
    let reply = via_relay(
        &mut subnet,
        factory,
        "canister_status",
        0,
        &Encode!(&CanisterIdRecord { canister_id: child }).unwrap(),
    );
    let s: CanisterStatusResult = candid::decode_one(&reply).unwrap();
    assert_eq!(s.settings.controllers, vec![factory]);
    assert_eq!(s.cycles, Nat::from(1_000_000u64));
    assert!(s.module_hash.is_some());
    // Alice is not a controller of the child.
    assert!(status(&mut subnet, alice(), child).is_err());
    assert_eq!(
        subnet
            .update_call_raw(child, "echo", b"child", bob())
            .unwrap()
            .unwrap(),
        b"child"
    );
}

#[test]
fn raw_rand_is_deterministic_per_seed_and_history() {
    let draw = |seed: &[u8]| {
        let mut subnet = Subnet::with_seed(CanisterConfig::default(), seed);
        let id = subnet.install_raw(relay(), b"", alice()).unwrap();
        let a = via_relay(&mut subnet, id, "raw_rand", 0, b"DIDL\0\0");
        let b = via_relay(&mut subnet, id, "raw_rand", 0, b"DIDL\0\0");
        let a: serde_bytes::ByteBuf = candid::decode_one(&a).unwrap();
        let b: serde_bytes::ByteBuf = candid::decode_one(&b).unwrap();
        (a.into_vec(), b.into_vec())
    };
    let (a1, b1) = draw(b"one");
    assert_eq!(a1.len(), 32);
    assert_ne!(a1, b1, "two draws differ");
    assert_eq!(draw(b"one"), (a1.clone(), b1));
    assert_ne!(draw(b"two").0, a1);
}
