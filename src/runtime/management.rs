//! The management canister (`aaaaa-aa`) of a [`Subnet`](super::subnet::Subnet): Candid
//! arguments and results as the IC defines them (the types of dfinity's
//! `ic-management-canister-types`), answered by the subnet itself.
//!
//! Methods: `create_canister` (from canisters), `provisional_create_canister_with_cycles`,
//! `provisional_top_up_canister`, `install_code` (install / reinstall / upgrade),
//! `uninstall_code`, `start_canister`, `stop_canister`, `delete_canister`, `canister_status`,
//! `update_settings`, `deposit_cycles`, `raw_rand`. Any other method is rejected with
//! `DESTINATION_INVALID`, naming it. Controllers are checked as the IC checks them: a caller
//! that is not a controller of the target is rejected with `CANISTER_ERROR` and the replica's
//! message (IC0512).

use candid::{CandidType, Nat, Principal};
use ic_management_canister_types as mgmt;

use super::canister::{Reject, RejectCode};

/// A request to the management canister, decoded.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    CreateCanister(mgmt::CreateCanisterArgs),
    ProvisionalCreate(mgmt::ProvisionalCreateCanisterWithCyclesArgs),
    ProvisionalTopUp(mgmt::ProvisionalTopUpCanisterArgs),
    InstallCode(mgmt::InstallCodeArgs),
    UninstallCode(mgmt::UninstallCodeArgs),
    Start(mgmt::CanisterIdRecord),
    Stop(mgmt::CanisterIdRecord),
    Delete(mgmt::CanisterIdRecord),
    Status(mgmt::CanisterIdRecord),
    UpdateSettings(mgmt::UpdateSettingsArgs),
    DepositCycles(mgmt::CanisterIdRecord),
    RawRand,
}

impl Request {
    /// Decodes `arg` for `method`; an unknown method or a bad argument is the reject the IC
    /// gives.
    pub fn decode(method: &str, arg: &[u8]) -> Result<Request, Reject> {
        fn one<T: CandidType + for<'de> serde::Deserialize<'de>>(
            method: &str,
            arg: &[u8],
        ) -> Result<T, Reject> {
            candid::decode_one(arg).map_err(|e| Reject {
                code: RejectCode::CanisterReject,
                message: format!(
                    "Error decoding candid argument of management canister method {method}: {e}"
                ),
            })
        }
        Ok(match method {
            "create_canister" => Request::CreateCanister(one(method, arg)?),
            "provisional_create_canister_with_cycles" => {
                Request::ProvisionalCreate(one(method, arg)?)
            }
            "provisional_top_up_canister" => Request::ProvisionalTopUp(one(method, arg)?),
            "install_code" => Request::InstallCode(one(method, arg)?),
            "uninstall_code" => Request::UninstallCode(one(method, arg)?),
            "start_canister" => Request::Start(one(method, arg)?),
            "stop_canister" => Request::Stop(one(method, arg)?),
            "delete_canister" => Request::Delete(one(method, arg)?),
            "canister_status" => Request::Status(one(method, arg)?),
            "update_settings" => Request::UpdateSettings(one(method, arg)?),
            "deposit_cycles" => Request::DepositCycles(one(method, arg)?),
            "raw_rand" => Request::RawRand,
            other => {
                return Err(Reject {
                    code: RejectCode::DestinationInvalid,
                    message: format!(
                        "Management canister has no method '{other}' (canister-vm implements: \
                         create_canister, provisional_create_canister_with_cycles, \
                         provisional_top_up_canister, install_code, uninstall_code, \
                         start_canister, stop_canister, delete_canister, canister_status, \
                         update_settings, deposit_cycles, raw_rand)"
                    ),
                });
            }
        })
    }

    /// The canister the request is about, if any (its controllers are checked).
    pub fn target(&self) -> Option<Principal> {
        match self {
            Request::InstallCode(a) => Some(a.canister_id),
            Request::UninstallCode(a) => Some(a.canister_id),
            Request::Start(a)
            | Request::Stop(a)
            | Request::Delete(a)
            | Request::Status(a)
            | Request::DepositCycles(a) => Some(a.canister_id),
            Request::UpdateSettings(a) => Some(a.canister_id),
            Request::ProvisionalTopUp(a) => Some(a.canister_id),
            Request::CreateCanister(_) | Request::ProvisionalCreate(_) | Request::RawRand => None,
        }
    }

    /// Whether only a controller of [`target`](Self::target) may make the request.
    pub fn needs_controller(&self) -> bool {
        !matches!(
            self,
            Request::DepositCycles(_) | Request::ProvisionalTopUp(_)
        ) && self.target().is_some()
    }
}

/// The Candid reply `(value)`.
pub(crate) fn reply<T: CandidType>(value: &T) -> Result<Vec<u8>, Reject> {
    candid::encode_one(value).map_err(|e| Reject {
        code: RejectCode::SysFatal,
        message: format!("encoding the management canister's reply: {e}"),
    })
}

/// The empty Candid reply `()`.
pub(crate) fn reply_unit() -> Vec<u8> {
    candid::encode_args(()).unwrap_or_else(|_| b"DIDL\0\0".to_vec())
}

/// A reject with `CANISTER_ERROR` (5).
pub(crate) fn error(message: String) -> Reject {
    Reject {
        code: RejectCode::CanisterError,
        message,
    }
}

/// The replica's reject for a caller that is not a controller (IC0512).
pub(crate) fn not_controller(
    canister: Principal,
    controllers: &[Vec<u8>],
    caller: Principal,
) -> Reject {
    let list: Vec<String> = controllers
        .iter()
        .map(|c| Principal::from_slice(c).to_text())
        .collect();
    error(format!(
        "Only the controllers of the canister {canister} can control it.\nCanister's controllers: \
         {}\nSender's ID: {caller}",
        list.join(" ")
    ))
}

/// The controllers named by `settings`, checked (at most 10), or `None` to keep the default.
pub(crate) fn controllers(
    settings: &Option<mgmt::CanisterSettings>,
) -> Result<Option<Vec<Vec<u8>>>, Reject> {
    let Some(list) = settings.as_ref().and_then(|s| s.controllers.as_ref()) else {
        return Ok(None);
    };
    if list.len() > 10 {
        return Err(Reject {
            code: RejectCode::CanisterReject,
            message: format!(
                "Invalid settings: at most 10 controllers are allowed, got {}",
                list.len()
            ),
        });
    }
    Ok(Some(list.iter().map(|p| p.as_slice().to_vec()).collect()))
}

/// The `nat` as `u128` (saturating: no balance here exceeds it).
pub(crate) fn nat_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

/// What `canister_status` reports about a canister.
#[derive(Debug, Clone)]
pub(crate) struct StatusFacts {
    pub status: mgmt::CanisterStatusType,
    pub version: u64,
    pub controllers: Vec<Principal>,
    pub module_hash: Option<Vec<u8>>,
    pub heap_bytes: u64,
    pub stable_bytes: u64,
    pub wasm_bytes: u64,
    pub cycles: u128,
}

/// The `canister_status` reply: the facts canister-vm has, and the IC's defaults for the
/// settings it does not model (compute and memory allocation 0, freezing threshold 30 days,
/// reserved cycles limit 5 T, log memory 4 KiB, wasm memory limit 3 GiB).
pub(crate) fn status_result(f: StatusFacts) -> mgmt::CanisterStatusResult {
    let memory = f.heap_bytes + f.stable_bytes + f.wasm_bytes;
    mgmt::CanisterStatusResult {
        status: f.status,
        ready_for_migration: false,
        version: f.version,
        settings: mgmt::DefiniteCanisterSettings {
            controllers: f.controllers,
            compute_allocation: Nat::from(0u8),
            memory_allocation: Nat::from(0u8),
            freezing_threshold: Nat::from(2_592_000u64),
            reserved_cycles_limit: Nat::from(5_000_000_000_000u64),
            minimum_incoming_canister_call_cycles: Nat::from(0u8),
            log_visibility: mgmt::LogVisibility::Controllers,
            log_memory_limit: Nat::from(4096u64),
            snapshot_visibility: mgmt::SnapshotVisibility::Controllers,
            status_visibility: mgmt::StatusVisibility::Controllers,
            wasm_memory_limit: Nat::from(3_221_225_472u64),
            wasm_memory_threshold: Nat::from(0u8),
            environment_variables: Vec::new(),
        },
        module_hash: f.module_hash,
        memory_size: Nat::from(memory),
        memory_metrics: mgmt::MemoryMetrics {
            wasm_memory_size: Nat::from(f.heap_bytes),
            stable_memory_size: Nat::from(f.stable_bytes),
            global_memory_size: Nat::from(0u8),
            wasm_binary_size: Nat::from(f.wasm_bytes),
            custom_sections_size: Nat::from(0u8),
            canister_history_size: Nat::from(0u8),
            wasm_chunk_store_size: Nat::from(0u8),
            snapshots_size: Nat::from(0u8),
            log_memory_store_size: Nat::from(0u8),
        },
        cycles: Nat::from(f.cycles),
        reserved_cycles: Nat::from(0u8),
        idle_cycles_burned_per_day: Nat::from(0u8),
        query_stats: mgmt::QueryStats {
            num_calls_total: Nat::from(0u8),
            num_instructions_total: Nat::from(0u8),
            request_payload_bytes_total: Nat::from(0u8),
            response_payload_bytes_total: Nat::from(0u8),
        },
    }
}

/// 32 bytes of `raw_rand`: SHA-256 of a domain string, the subnet's seed and the number of
/// the call (the n-th `raw_rand` of the subnet's history), so two subnets with the same seed
/// and the same history give the same bytes.
pub(crate) fn raw_rand(seed: &[u8], n: u64) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"canister-vm raw_rand v1");
    h.update((seed.len() as u64).to_be_bytes());
    h.update(seed);
    h.update(n.to_be_bytes());
    h.finalize().to_vec()
}
