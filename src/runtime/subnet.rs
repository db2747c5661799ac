//! A local subnet: many canisters, inter-canister calls and one deterministic scheduler.
//!
//! A [`Subnet`] holds canisters by principal and delivers messages between them with the IC's
//! semantics (DESIGN.md §11; the IC interface specification decides the rest):
//!
//! - **Call contexts.** Every request a canister receives opens a call context. The message may
//!   answer it (`msg_reply`/`msg_reject`) or make calls and answer from any of their callbacks.
//!   When a message ends without an answer and the context has no outstanding calls, the
//!   context is rejected with `CANISTER_ERROR` ("did not reply"); a trap rejects it with the
//!   trap's message.
//! - **Transactions.** Each request and each callback is its own transaction: everything but a
//!   trap commits. A trapping callback is rolled back alone, then its cleanup callback runs.
//! - **Cycles.** Cycles added to a call leave the caller's balance when added; the callee
//!   accepts what it wants; the rest comes back with the response and reaches the caller's
//!   balance before its callback runs (also if the callback traps).
//! - **Order.** One FIFO queue for the whole subnet: a message is appended when it is sent
//!   (requests in the order of `call_perform`, then the response of the context it answers)
//!   and executed in that order, one at a time, to completion. Nothing depends on host time,
//!   threads or hash iteration. An ingress update returns when the queue is empty, so every
//!   message it caused has run; its call context is answered by then.
//! - **Time.** Each ingress update advances the subnet's clock by one second (or to the time it
//!   names); every message it causes sees that time.
//!
//! Canister ids follow the IC's canister-id ranges as a local replica allocates them: canister
//! `n` is the principal of the 8-byte big-endian `n` followed by `0x01 0x01`, so the first is
//! `rwlgt-iiaaa-aaaaa-aaaaa-cai` (as for a single canister), then `rrkah-fqaaa-aaaaa-aaaaq-cai`,
//! `ryjl3-tyaaa-aaaaa-aaaba-cai`, ...

mod composite;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use candid::Principal;
use candid::utils::{ArgumentDecoder, ArgumentEncoder};

use super::call::{self, CallError};
use super::canister::{
    Callbacks, Canister, CanisterConfig, Delivery, DeliveryKind, DirtyPages, InstructionLimits,
    MessageInput, Outcome, Reject, RejectCode, SubnetInfo, did_not_reply,
};
use super::ic0::api::{EntryPoint, OutgoingCall};
use super::management::{self as mgmt, Request as MgmtRequest};
use crate::error::Error;
use crate::state::hash::Hash;
use crate::state::{CanisterState, NonZeroPages, StableMode, SystemState};
use ic_management_canister_types::{CanisterIdRecord, CanisterInstallMode, CanisterStatusType};

/// One second in nanoseconds: how far an ingress update advances the clock by default.
const SECOND: u64 = 1_000_000_000;

/// The id of the `n`-th canister of the subnet (see the module documentation).
pub fn canister_id(n: u64) -> Principal {
    let mut bytes = n.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x01, 0x01]);
    Principal::from_slice(&bytes)
}

/// Who is waiting for a call context's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// An ingress message (its number).
    Ingress(u64),
    /// A canister's call, answered through that canister's callback.
    Call(u64),
    /// A system task (heartbeat, global timer): nobody waits for an answer.
    System,
}

/// A call context: one request a canister received, until it is answered.
#[derive(Debug, Clone)]
struct CallContext {
    canister: Principal,
    caller: Principal,
    origin: Origin,
    responded: bool,
    /// Calls made from this context whose responses have not been handled yet.
    outstanding: u32,
    cycles_available: u128,
    deadline: u64,
    /// Instructions its messages executed so far (`performance_counter(1)` in its callbacks).
    instructions: u64,
}

/// A call waiting for its response.
#[derive(Debug, Clone)]
struct PendingCall {
    /// The caller's call context.
    context: u64,
    callbacks: Callbacks,
    /// The method called (for the callback's [`Executed`] record).
    method: String,
}

/// A request in the subnet's queue.
#[derive(Debug, Clone)]
struct Request {
    /// The callee's new call context answers here.
    origin: Origin,
    caller: Principal,
    callee: Principal,
    method: String,
    arg: Vec<u8>,
    cycles: u128,
    deadline: u64,
}

/// A message in the subnet's queue.
#[derive(Debug, Clone)]
enum Message {
    Request(Request),
    Response {
        /// The pending call it answers.
        call: u64,
        result: Result<Vec<u8>, Reject>,
        refund: u128,
    },
}

/// What kind of message a [`Executed`] record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A request (ingress or inter-canister) to an update (or replicated query) method.
    Request,
    /// A reply callback.
    ReplyCallback,
    /// A reject callback.
    RejectCallback,
    /// `canister_heartbeat`.
    Heartbeat,
    /// `canister_global_timer`.
    GlobalTimer,
    /// A request to the management canister (`aaaaa-aa`), answered by the subnet.
    Management,
}

impl MessageKind {
    /// The name used in the message log.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::ReplyCallback => "reply callback",
            MessageKind::RejectCallback => "reject callback",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::GlobalTimer => "global timer",
            MessageKind::Management => "management call",
        }
    }
}

/// A canister of the subnet: its system state, its code (none while empty) and whether it runs.
struct Slot {
    /// The system state while the canister is empty; with code, the canister holds its own.
    system: SystemState,
    canister: Option<Canister>,
    stopped: bool,
    /// What changed since the persistent layer last saved the canister (`None`: nothing).
    unsaved: Option<Unsaved>,
}

/// What changed in a canister since it was last saved ([`Subnet::take_unsaved`]): enough for a
/// delta checkpoint of exactly the pages that differ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsaved {
    /// The canister got new code (install, reinstall): every page is new.
    pub all: bool,
    /// The heap was replaced wholesale (an upgrade): it must be compared page by page.
    pub heap_replaced: bool,
    /// 4 KiB heap pages written by committed messages.
    pub heap: BTreeSet<u64>,
    /// 4 KiB stable memory pages written by committed messages (and upgrade hooks).
    pub stable: BTreeSet<u64>,
}

impl Unsaved {
    fn add(&mut self, dirty: &DirtyPages) {
        self.heap.extend(dirty.heap.iter().copied());
        self.stable.extend(dirty.stable.iter().copied());
    }
}

/// Caller, time and instruction limit of a message from outside the subnet (an ingress
/// message, or a call of the persistent layer on a user's behalf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOptions {
    /// The caller.
    pub caller: Principal,
    /// The message's `ic0.time` (ns). Default: the subnet's clock plus one second for updates,
    /// installs and upgrades (which move the clock there), the clock itself for queries.
    pub time: Option<u64>,
    /// The instruction limit of the target canister's messages of this kind while this call
    /// runs; default the IC's ([`InstructionLimits`]).
    pub instruction_limit: Option<u64>,
}

impl CallOptions {
    /// `caller` with the default time and limit.
    pub fn new(caller: Principal) -> Self {
        CallOptions {
            caller,
            time: None,
            instruction_limit: None,
        }
    }
}

/// A canister restored from a state directory ([`Subnet::restore_canister`]).
#[derive(Debug, Clone)]
pub struct RestoredCanister {
    /// Its principal.
    pub id: Principal,
    /// Its system state (used while it is empty; with code, the state's own is used).
    pub system: SystemState,
    /// Its code and memories, with the pages known not to be zero; `None` while empty.
    pub state: Option<(CanisterState, NonZeroPages)>,
    /// Whether it is stopped.
    pub stopped: bool,
}

/// The subnet's own counters, as a state directory stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// The clock (ns).
    pub time: u64,
    /// The number of the next canister id to allocate.
    pub next_canister: u64,
    /// `raw_rand` calls answered so far.
    pub raw_rand_calls: u64,
}

impl Slot {
    fn system(&self) -> &SystemState {
        self.canister.as_ref().map_or(&self.system, |c| c.system())
    }
    fn system_mut(&mut self) -> &mut SystemState {
        self.unsaved.get_or_insert_default();
        match &mut self.canister {
            Some(c) => c.system_mut(),
            None => &mut self.system,
        }
    }
}

/// One message the subnet executed, in execution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// The canister that ran it.
    pub canister: Principal,
    /// Request or callback.
    pub kind: MessageKind,
    /// The method (of the request, or of the call whose response the callback handles).
    pub method: String,
    /// The caller of the call context.
    pub caller: Principal,
    /// Instructions the message executed (with its cleanup callback, if one ran).
    pub instructions: u64,
    /// It trapped (and was rolled back).
    pub trapped: bool,
    /// A cleanup callback ran after it trapped.
    pub cleanup: bool,
    /// The answer it gave its call context, if any.
    pub response: Option<Result<Vec<u8>, Reject>>,
    /// Lines it printed with `ic0.debug_print`.
    pub debug_log: Vec<String>,
    /// The 4 KiB pages it wrote (empty if it trapped, or did not commit).
    pub dirty: DirtyPages,
}

/// A local subnet of canisters (see the module documentation).
pub struct Subnet {
    root_key: std::sync::Arc<crate::certification::RootKey>,
    seed: Vec<u8>,
    /// `raw_rand` calls answered so far.
    raw_rand_calls: u64,
    config: CanisterConfig,
    canisters: BTreeMap<Principal, Slot>,
    next_canister: u64,
    time: u64,
    queue: VecDeque<Message>,
    contexts: BTreeMap<u64, CallContext>,
    calls: BTreeMap<u64, PendingCall>,
    next_id: u64,
    ingress: BTreeMap<u64, Result<Vec<u8>, Reject>>,
    history: Vec<Executed>,
}

impl std::fmt::Debug for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subnet")
            .field("canisters", &self.canisters.keys().collect::<Vec<_>>())
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Subnet {
    /// An empty subnet whose canisters run with `config` (engine, stable mode, limits).
    pub fn new(config: CanisterConfig) -> Self {
        Self::with_seed(config, crate::certification::DEFAULT_SEED)
    }

    /// An empty subnet whose root key (which signs certificates, and whose principal is the
    /// subnet's id) derives from `seed`.
    pub fn with_seed(config: CanisterConfig, seed: &[u8]) -> Self {
        let key = std::sync::Arc::new(crate::certification::RootKey::from_seed(seed));
        let info = SubnetInfo::of_key(key.clone());
        Subnet {
            root_key: key,
            seed: seed.to_vec(),
            raw_rand_calls: 0,
            config: config.on_subnet(info),
            canisters: BTreeMap::new(),
            next_canister: 0,
            time: crate::state::GENESIS_TIME_NS - crate::state::TIME_STEP_NS,
            queue: VecDeque::new(),
            contexts: BTreeMap::new(),
            calls: BTreeMap::new(),
            next_id: 0,
            ingress: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    /// The subnet's clock (nanoseconds since the epoch): the time of the last ingress update.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The root public key (DER): certificates of this subnet verify against it.
    pub fn root_key_der(&self) -> Vec<u8> {
        self.root_key.public_key_der()
    }

    /// The subnet's principal.
    pub fn subnet_id(&self) -> Principal {
        Principal::self_authenticating(self.root_key.public_key_der())
    }

    /// The canisters, in id order.
    pub fn canister_ids(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    /// The canister `id`, if it exists and has code.
    pub fn canister(&self, id: Principal) -> Option<&Canister> {
        self.canisters
            .get(&id)
            .and_then(|slot| slot.canister.as_ref())
    }

    /// The system state (controllers, cycles, version, ...) of canister `id`, empty or not.
    pub fn system_state(&self, id: Principal) -> Option<&SystemState> {
        self.canisters.get(&id).map(Slot::system)
    }

    /// Every message executed so far (since the last [`take_history`](Self::take_history)), in
    /// order. The subnet keeps them all: a long-running test that does not need them can take
    /// them now and then.
    pub fn history(&self) -> &[Executed] {
        &self.history
    }

    /// Returns the messages executed so far and forgets them.
    pub fn take_history(&mut self) -> Vec<Executed> {
        std::mem::take(&mut self.history)
    }

    /// The seed the root key and `raw_rand` derive from.
    pub fn seed(&self) -> &[u8] {
        &self.seed
    }

    /// The subnet's counters (clock, next canister id, `raw_rand` calls).
    pub fn counters(&self) -> Counters {
        Counters {
            time: self.time,
            next_canister: self.next_canister,
            raw_rand_calls: self.raw_rand_calls,
        }
    }

    /// Sets the subnet's counters (restoring a saved subnet).
    pub fn set_counters(&mut self, counters: Counters) {
        self.time = counters.time;
        self.next_canister = counters.next_canister;
        self.raw_rand_calls = counters.raw_rand_calls;
    }

    /// The configuration a canister of this subnet runs with (its own stable mode).
    pub fn canister_config(&self, stable_mode: StableMode) -> CanisterConfig {
        self.config.clone().stable_mode(stable_mode)
    }

    /// Puts a saved canister back (replacing one with the same id). Its code is instantiated
    /// with [`canister_config`](Self::canister_config); the canister counts as saved.
    pub fn restore_canister(&mut self, restored: RestoredCanister) -> Result<(), Error> {
        let RestoredCanister {
            id,
            system,
            state,
            stopped,
        } = restored;
        let canister = match state {
            None => None,
            Some((state, nonzero)) => {
                let config = self.canister_config(state.stable_mode);
                Some(Canister::from_sparse_state(state, &nonzero, config)?)
            }
        };
        self.adopt(id, system, canister, stopped);
        Ok(())
    }

    /// Puts `canister` (built with [`canister_config`](Self::canister_config)) in as canister
    /// `id`; the canister counts as saved.
    pub(crate) fn adopt(
        &mut self,
        id: Principal,
        system: SystemState,
        canister: Option<Canister>,
        stopped: bool,
    ) {
        self.canisters.insert(
            id,
            Slot {
                system,
                canister,
                stopped,
                unsaved: None,
            },
        );
    }

    /// The canister `id`, mutably (the persistent layer and replay of old logs run messages
    /// on it directly); marks it changed.
    pub(crate) fn canister_for_update(&mut self, id: Principal) -> Option<&mut Canister> {
        let slot = self.canisters.get_mut(&id)?;
        slot.unsaved.get_or_insert_default();
        slot.canister.as_mut()
    }

    /// Whether canister `id` is stopped (`None` if it does not exist).
    pub fn is_stopped(&self, id: Principal) -> Option<bool> {
        self.canisters.get(&id).map(|slot| slot.stopped)
    }

    /// The canisters changed since the last call, with what changed, in id order (the
    /// persistent layer checkpoints exactly these; deleted canisters are not listed).
    pub fn take_unsaved(&mut self) -> Vec<(Principal, Unsaved)> {
        self.canisters
            .iter_mut()
            .filter_map(|(id, slot)| slot.unsaved.take().map(|u| (*id, u)))
            .collect()
    }

    /// The state hash of the whole subnet: its counters and, per canister in id order, the
    /// canister's state hash (its system state's, while empty) and whether it is stopped. Equal
    /// histories give equal hashes on every engine and host.
    pub fn state_hash(&self) -> Hash {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"canister-vm subnet\0");
        h.update(self.time.to_le_bytes());
        h.update(self.next_canister.to_le_bytes());
        h.update(self.raw_rand_calls.to_le_bytes());
        h.update((self.canisters.len() as u64).to_le_bytes());
        for (id, slot) in &self.canisters {
            h.update((id.as_slice().len() as u64).to_le_bytes());
            h.update(id.as_slice());
            h.update([u8::from(slot.stopped)]);
            match &slot.canister {
                Some(c) => {
                    h.update([1]);
                    h.update(c.state_hash());
                }
                None => {
                    h.update([0]);
                    let system = serde_json::to_vec(&slot.system).expect("system state serializes");
                    h.update(Sha256::digest(&system));
                }
            }
        }
        h.finalize().into()
    }

    /// Creates a canister with the next id, controlled by `controller`, installs `wasm` and
    /// runs `canister_init` with the Candid arguments `args` (a tuple: `()` for none,
    /// `(init,)` for one); what `provisional_create_canister_with_cycles` and `install_code`
    /// do, in one step. Returns the new canister's id.
    ///
    /// A module that is not valid, or a trap of the start function or of `canister_init`, is
    /// [`CallError::Rejected`] (method `install_code`, the reject naming why) and changes
    /// nothing.
    pub fn install<A: ArgumentEncoder>(
        &mut self,
        wasm: Vec<u8>,
        args: A,
        controller: Principal,
    ) -> Result<Principal, CallError> {
        let arg = call::encode(call::INSTALL_METHOD, args)?;
        self.install_raw(wasm, &arg, controller)
    }

    /// [`install`](Self::install) with the init argument as Candid bytes (any bytes: the
    /// canister decides what they mean).
    pub fn install_raw(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        controller: Principal,
    ) -> Result<Principal, CallError> {
        call::install_answer(
            self.install_with(wasm, arg, &CallOptions::new(controller), None)
                .map(|(id, outcome)| (id, outcome.result)),
        )
    }

    /// [`install_raw`](Self::install_raw) with the message's time and instruction limit, and the
    /// canister's stable mode (default: the subnet's). Returns the new id (`None` if the start
    /// function or `canister_init` trapped: then nothing changed) and the outcome of
    /// `canister_init`; a module that is not valid is an error.
    pub fn install_with(
        &mut self,
        wasm: Vec<u8>,
        arg: &[u8],
        options: &CallOptions,
        stable_mode: Option<StableMode>,
    ) -> Result<(Option<Principal>, Outcome), Error> {
        let (before, next) = (self.time, self.next_canister);
        let id = self.create_empty(
            vec![options.caller.as_slice().to_vec()],
            crate::state::DEFAULT_CYCLE_BALANCE,
        );
        self.time = options.time.unwrap_or(self.time.saturating_add(SECOND));
        let installed = self.install_code(
            id,
            CanisterInstallMode::Install,
            wasm,
            arg,
            options,
            stable_mode,
        );
        match installed {
            Ok(outcome) if outcome.result.is_ok() => Ok((Some(id), outcome)),
            failed => {
                self.canisters.remove(&id);
                self.time = before;
                self.next_canister = next;
                failed.map(|outcome| (None, outcome))
            }
        }
    }

    /// Upgrades canister `id` to `wasm` (`install_code` in upgrade mode by `options.caller`,
    /// who must be a controller): the outcome of the hooks (a trap leaves the old code
    /// running), or a reject that ran nothing. A module that is not valid is an error.
    pub fn upgrade_with(
        &mut self,
        id: Principal,
        wasm: Vec<u8>,
        arg: &[u8],
        options: &CallOptions,
    ) -> Result<Outcome, Error> {
        let refused = Outcome::rejected;
        let Some(slot) = self.canisters.get(&id) else {
            return Ok(refused(not_found(id)));
        };
        let controllers = &slot.system().controllers;
        if !controllers
            .iter()
            .any(|c| c.as_slice() == options.caller.as_slice())
        {
            return Ok(refused(mgmt::not_controller(
                id,
                controllers,
                options.caller,
            )));
        }
        let before = self.time;
        self.time = options.time.unwrap_or(self.time.saturating_add(SECOND));
        let upgraded = self.install_code(
            id,
            CanisterInstallMode::Upgrade(None),
            wasm,
            arg,
            options,
            None,
        );
        if upgraded.is_err() {
            // Nothing ran (the module is not valid): nothing changes, not even the clock.
            self.time = before;
        }
        upgraded
    }

    /// A new empty canister with the next id.
    fn create_empty(&mut self, controllers: Vec<Vec<u8>>, cycles: u128) -> Principal {
        let mut id = canister_id(self.next_canister);
        self.next_canister += 1;
        while self.canisters.contains_key(&id) {
            id = canister_id(self.next_canister);
            self.next_canister += 1;
        }
        self.create_at(id, controllers, cycles);
        id
    }

    fn create_at(&mut self, id: Principal, controllers: Vec<Vec<u8>>, cycles: u128) {
        let mut system = SystemState::new(Vec::new());
        system.canister_id = id.as_slice().to_vec();
        system.controllers = controllers;
        system.cycle_balance = cycles;
        self.canisters.insert(
            id,
            Slot {
                system,
                canister: None,
                stopped: false,
                unsaved: Some(Unsaved::default()),
            },
        );
    }

    /// `install_code` on canister `id` (which exists) by `options.caller` (a controller), at
    /// the subnet's time. The outcome's result is the reject when the mode does not fit the
    /// canister or a hook traps; a module that is not valid is an error.
    fn install_code(
        &mut self,
        id: Principal,
        mode: CanisterInstallMode,
        wasm: Vec<u8>,
        arg: &[u8],
        options: &CallOptions,
        stable_mode: Option<StableMode>,
    ) -> Result<Outcome, Error> {
        let input = MessageInput {
            caller: Some(options.caller),
            time: Some(self.time),
        };
        let mut config = self.config.clone();
        if let Some(mode) = stable_mode {
            config = config.stable_mode(mode);
        }
        if let Some(n) = options.instruction_limit {
            let limits = config.get_instruction_limits();
            config = config.instruction_limits(InstructionLimits {
                install: n,
                ..limits
            });
        }
        let slot = self
            .canisters
            .get_mut(&id)
            .ok_or_else(|| Error::Internal(format!("install_code on missing canister {id}")))?;
        let refused = |reject: Reject| Ok(Outcome::rejected(reject));
        match (mode, slot.canister.is_some()) {
            (CanisterInstallMode::Install, true) => refused(mgmt::error(format!(
                "Canister {id} cannot be installed because the canister is not empty. Try \
                 installing with mode='reinstall' instead."
            ))),
            (CanisterInstallMode::Upgrade(_), false) => refused(mgmt::error(format!(
                "Error from Canister {id}: Attempted to upgrade a canister, but the canister \
                 contains no Wasm module."
            ))),
            (CanisterInstallMode::Upgrade(_), true) => {
                let Some(canister) = slot.canister.as_mut() else {
                    return refused(mgmt::error(format!("canister {id} is empty")));
                };
                let limits = canister.config().get_instruction_limits();
                if let Some(n) = options.instruction_limit {
                    canister.set_instruction_limits(InstructionLimits {
                        install: n,
                        ..limits
                    });
                }
                let upgraded = canister.upgrade_tracked(wasm, arg, &input);
                canister.set_instruction_limits(limits);
                let (outcome, stable) = upgraded?;
                let unsaved = slot.unsaved.get_or_insert_default();
                if outcome.result.is_ok() {
                    unsaved.heap_replaced = true;
                    unsaved.stable.extend(stable);
                }
                Ok(outcome)
            }
            (CanisterInstallMode::Install | CanisterInstallMode::Reinstall, _) => {
                let mut system = slot.system().clone();
                if slot.canister.is_some() {
                    system.canister_version += 1;
                }
                system.certified_data.clear();
                system.global_timer = 0;
                let mut canister = match Canister::create_with(wasm, config, system.clone())? {
                    Ok(canister) => canister,
                    Err(reject) => return refused(reject),
                };
                let outcome = canister.init(arg, &input)?;
                if outcome.result.is_err() {
                    return Ok(outcome);
                }
                canister.system_mut().canister_version = system.canister_version + 1;
                // The IC's default limits apply to the canister's later messages.
                canister.set_instruction_limits(self.config.get_instruction_limits());
                slot.canister = Some(canister);
                slot.unsaved = Some(Unsaved {
                    all: true,
                    ..Unsaved::default()
                });
                Ok(outcome)
            }
        }
    }

    /// An ingress update call of `method` on `canister` from `caller`, with the Candid
    /// arguments `args` (a tuple of [`CandidType`](candid::CandidType) values: `()`, `(x,)`,
    /// `(x, y)`, ...), its reply decoded as `R` (a tuple of `Deserialize` values, e.g.
    /// `(u64,)`), as PocketIC's `update_candid` does. Runs every message it causes, in the
    /// subnet's order, before it returns.
    ///
    /// A reject is [`CallError::Rejected`]; a reply that is not an `R`,
    /// [`CallError::Decode`].
    pub fn update_call<A, R>(
        &mut self,
        canister: Principal,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError>
    where
        A: ArgumentEncoder,
        R: for<'a> ArgumentDecoder<'a>,
    {
        let arg = call::encode(method, args)?;
        let answer = self.update_call_raw(canister, method, &arg, caller)?;
        call::decode(method, answer)
    }

    /// [`update_call`](Self::update_call) with the argument as bytes, returning the answer of
    /// the call context as bytes: the reply, or the reject (`Err` only for a runtime failure).
    pub fn update_call_raw(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Result<Vec<u8>, Reject>, Error> {
        self.update_call_with(canister, method, arg, &CallOptions::new(caller))
    }

    /// [`update_call_raw`](Self::update_call_raw) with the message's time and instruction
    /// limit.
    ///
    /// A call the subnet refuses before it runs — to a canister that does not exist, is
    /// stopped or empty, or has no such method (the IC's ingress checks), or that the canister's
    /// `canister_inspect_message` does not accept — is rejected without changing anything, not
    /// even the clock.
    pub fn update_call_with(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        options: &CallOptions,
    ) -> Result<Result<Vec<u8>, Reject>, Error> {
        if canister != Principal::management_canister() {
            let refusal = match self.canisters.get_mut(&canister) {
                None => Some(not_found(canister)),
                Some(slot) => match runnable(canister, slot) {
                    Err(reject) => Some(reject),
                    Ok(c) if !c.methods().has(method) => Some(Reject {
                        code: RejectCode::CanisterError,
                        message: format!("Canister {canister} has no update method '{method}'"),
                    }),
                    Ok(_) => None,
                },
            };
            if let Some(reject) = refusal {
                return Ok(Err(reject));
            }
        }
        let time = options.time.unwrap_or(self.time.saturating_add(SECOND));
        // The canister may refuse the message before it is accepted (nothing changes then).
        if let Some(c) = self
            .canisters
            .get_mut(&canister)
            .and_then(|slot| slot.canister.as_mut())
            && let Err(reject) = c.inspect(method, arg, options.caller.as_slice(), time)?
        {
            return Ok(Err(reject));
        }
        self.time = time;
        let ingress = self.fresh_id();
        self.queue.push_back(Message::Request(Request {
            origin: Origin::Ingress(ingress),
            caller: options.caller,
            callee: canister,
            method: method.to_string(),
            arg: arg.to_vec(),
            cycles: 0,
            deadline: 0,
        }));
        let limits = self.override_limit(canister, options.instruction_limit, |l, n| l.update = n);
        let ran = self.run_queue();
        self.restore_limits(canister, limits);
        ran?;
        self.ingress.remove(&ingress).ok_or_else(|| {
            Error::Internal(format!(
                "the call context of ingress message {ingress} ({method} on {canister}) was \
                 never answered"
            ))
        })
    }

    /// Sets the instruction limit of `canister`'s messages (the kind `set` picks) to `limit`,
    /// if given; returns the limits to restore.
    fn override_limit(
        &mut self,
        canister: Principal,
        limit: Option<u64>,
        set: impl FnOnce(&mut InstructionLimits, u64),
    ) -> Option<InstructionLimits> {
        let n = limit?;
        let c = self.canisters.get_mut(&canister)?.canister.as_mut()?;
        let old = c.config().get_instruction_limits();
        let mut new = old;
        set(&mut new, n);
        c.set_instruction_limits(new);
        Some(old)
    }

    fn restore_limits(&mut self, canister: Principal, limits: Option<InstructionLimits>) {
        if let Some(limits) = limits
            && let Some(c) = self
                .canisters
                .get_mut(&canister)
                .and_then(|s| s.canister.as_mut())
        {
            c.set_instruction_limits(limits);
        }
    }

    /// A query call (non-replicated: its changes are discarded) of `method` on `canister` from
    /// `caller`, with the Candid arguments `args`, its reply decoded as `R` (tuples, as for
    /// [`update_call`](Self::update_call)). A composite query runs with the queries it calls.
    pub fn query_call<A, R>(
        &mut self,
        canister: Principal,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError>
    where
        A: ArgumentEncoder,
        R: for<'a> ArgumentDecoder<'a>,
    {
        let arg = call::encode(method, args)?;
        let answer = self.query_call_raw(canister, method, &arg, caller)?;
        call::decode(method, answer)
    }

    /// [`query_call`](Self::query_call) with the argument and the answer as bytes (`Err` only
    /// for a runtime failure).
    pub fn query_call_raw(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Result<Vec<u8>, Reject>, Error> {
        Ok(self
            .query_call_with(canister, method, arg, &CallOptions::new(caller))?
            .result)
    }

    /// [`query_call_raw`](Self::query_call_raw) with the time it sees (default: the clock) and its
    /// instruction limit; returns its whole outcome (instructions, debug output).
    pub fn query_call_with(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        options: &CallOptions,
    ) -> Result<Outcome, Error> {
        let refused = Outcome::rejected;
        let c = match self.canisters.get_mut(&canister) {
            None => return Ok(refused(not_found(canister))),
            Some(slot) => match runnable(canister, slot) {
                Ok(c) => c,
                Err(reject) => return Ok(refused(reject)),
            },
        };
        if c.is_composite(method) {
            return self.composite_query(canister, method, arg, options);
        }
        let input = MessageInput {
            caller: Some(options.caller),
            time: Some(options.time.unwrap_or(self.time)),
        };
        let limits = c.config().get_instruction_limits();
        if let Some(n) = options.instruction_limit {
            c.set_instruction_limits(InstructionLimits { query: n, ..limits });
        }
        let outcome = c.query(method, arg, &input);
        c.set_instruction_limits(limits);
        match outcome {
            Ok(outcome) => Ok(outcome),
            Err(Error::MethodNotFound { method, .. }) => Ok(refused(Reject {
                code: RejectCode::CanisterError,
                message: format!("Canister {canister} has no query method '{method}'"),
            })),
            Err(e) => Err(e),
        }
    }

    /// Advances the clock by `seconds` and runs one round of system tasks: the heartbeat of
    /// every canister that exports `canister_heartbeat`, then the global timer of every
    /// canister whose deadline has passed (it is deactivated first, as on the IC), each in
    /// canister-id order, then every message they cause. Returns how many tasks ran.
    pub fn tick(&mut self, seconds: u64) -> Result<usize, Error> {
        self.time = self.time.saturating_add(seconds.saturating_mul(SECOND));
        let now = self.time;
        let running = || {
            self.canisters
                .iter()
                .filter(|(_, slot)| !slot.stopped)
                .filter_map(|(id, slot)| Some((*id, slot.canister.as_ref()?)))
        };
        let heartbeats: Vec<Principal> = running()
            .filter(|(_, c)| c.has_heartbeat())
            .map(|(id, _)| id)
            .collect();
        let timers: Vec<Principal> = running()
            .filter(|(_, c)| {
                let deadline = c.system().global_timer;
                c.has_global_timer() && deadline != 0 && deadline <= now
            })
            .map(|(id, _)| id)
            .collect();
        let mut ran = 0;
        for (ids, entry, kind) in [
            (heartbeats, EntryPoint::Heartbeat, MessageKind::Heartbeat),
            (timers, EntryPoint::GlobalTimer, MessageKind::GlobalTimer),
        ] {
            for id in ids {
                self.run_task(id, entry, kind)?;
                ran += 1;
            }
        }
        self.run_queue()?;
        Ok(ran)
    }

    /// Advances the clock by `seconds` without running anything.
    pub fn advance_time(&mut self, seconds: u64) {
        self.time = self.time.saturating_add(seconds.saturating_mul(SECOND));
    }

    fn run_task(
        &mut self,
        id: Principal,
        entry: EntryPoint,
        kind: MessageKind,
    ) -> Result<(), Error> {
        let context = self.fresh_id();
        let management = Principal::management_canister();
        self.contexts.insert(
            context,
            CallContext {
                canister: id,
                caller: management,
                origin: Origin::System,
                responded: false,
                outstanding: 0,
                cycles_available: 0,
                deadline: 0,
                instructions: 0,
            },
        );
        let delivery = Delivery {
            kind: DeliveryKind::Task(entry),
            caller: management.as_slice().to_vec(),
            cycles_available: 0,
            deadline: 0,
            replied: false,
            context_instructions: 0,
        };
        let time = self.time;
        let executed = self.canister_mut(id)?.execute(delivery, time)?;
        let name = match entry {
            EntryPoint::Heartbeat => "canister_heartbeat",
            _ => "canister_global_timer",
        };
        self.record(id, kind, name.to_string(), management, &executed);
        self.after(context, executed);
        Ok(())
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Executes queued messages until the queue is empty.
    fn run_queue(&mut self) -> Result<(), Error> {
        while let Some(message) = self.queue.pop_front() {
            match message {
                Message::Request(request) => self.deliver_request(request)?,
                Message::Response {
                    call,
                    result,
                    refund,
                } => self.deliver_response(call, result, refund)?,
            }
        }
        Ok(())
    }

    fn deliver_request(&mut self, request: Request) -> Result<(), Error> {
        let Request {
            origin,
            caller,
            callee,
            method,
            arg,
            cycles,
            deadline,
        } = request;
        if callee == Principal::management_canister() {
            let from_canister = matches!(origin, Origin::Call(_));
            let (result, refund) = self.management(caller, &method, &arg, cycles, from_canister)?;
            self.history.push(Executed {
                canister: callee,
                kind: MessageKind::Management,
                method,
                caller,
                instructions: 0,
                trapped: false,
                cleanup: false,
                response: Some(result.clone()),
                debug_log: Vec::new(),
                dirty: DirtyPages::default(),
            });
            self.answer(origin, result, refund);
            return Ok(());
        }
        let refusal = match self.canisters.get_mut(&callee) {
            None => Some(not_found(callee)),
            Some(slot) => runnable(callee, slot).err(),
        };
        if let Some(reject) = refusal {
            // The cycles go back with the reject.
            self.answer(origin, Err(reject), cycles);
            return Ok(());
        }
        let context = self.fresh_id();
        self.contexts.insert(
            context,
            CallContext {
                canister: callee,
                caller,
                origin,
                responded: false,
                outstanding: 0,
                cycles_available: cycles,
                deadline,
                instructions: 0,
            },
        );
        let delivery = Delivery {
            kind: DeliveryKind::Request {
                method: method.clone(),
                arg,
            },
            caller: caller.as_slice().to_vec(),
            cycles_available: cycles,
            deadline,
            replied: false,
            context_instructions: 0,
        };
        let time = self.time;
        let executed = self.canister_mut(callee)?.execute(delivery, time)?;
        self.record(callee, MessageKind::Request, method, caller, &executed);
        self.after(context, executed);
        Ok(())
    }

    fn deliver_response(
        &mut self,
        call: u64,
        result: Result<Vec<u8>, Reject>,
        refund: u128,
    ) -> Result<(), Error> {
        let pending = self
            .calls
            .remove(&call)
            .ok_or_else(|| Error::Internal(format!("a response for unknown call {call}")))?;
        let method = pending.method;
        let context_id = pending.context;
        let context = self
            .contexts
            .get_mut(&context_id)
            .ok_or_else(|| Error::Internal(format!("call {call} has no call context")))?;
        context.outstanding -= 1;
        let context = context.clone();
        let kind = match result {
            Ok(_) => MessageKind::ReplyCallback,
            Err(_) => MessageKind::RejectCallback,
        };
        let delivery = Delivery {
            kind: DeliveryKind::Response {
                callbacks: pending.callbacks,
                result,
                refund,
            },
            caller: context.caller.as_slice().to_vec(),
            cycles_available: context.cycles_available,
            deadline: context.deadline,
            replied: context.responded,
            context_instructions: context.instructions,
        };
        let time = self.time;
        let executed = self
            .canister_mut(context.canister)?
            .execute(delivery, time)?;
        self.record(context.canister, kind, method, context.caller, &executed);
        self.after(context_id, executed);
        Ok(())
    }

    fn canister_mut(&mut self, id: Principal) -> Result<&mut Canister, Error> {
        self.canisters
            .get_mut(&id)
            .and_then(|slot| slot.canister.as_mut())
            .ok_or_else(|| Error::Internal(format!("canister {id} has no code")))
    }

    /// Starts or stops canister `id`; a change of status is a new canister version.
    fn set_stopped(&mut self, id: Principal, stop: bool) {
        if let Some(slot) = self.canisters.get_mut(&id)
            && slot.stopped != stop
        {
            slot.stopped = stop;
            slot.system_mut().canister_version += 1;
        }
    }

    /// Answers a request to the management canister: the result and the cycles to refund.
    fn management(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        from_canister: bool,
    ) -> Result<(Result<Vec<u8>, Reject>, u128), Error> {
        let request = match MgmtRequest::decode(method, arg) {
            Ok(request) => request,
            Err(reject) => return Ok((Err(reject), cycles)),
        };
        if let Some(target) = request.target() {
            let Some(slot) = self.canisters.get(&target) else {
                return Ok((Err(not_found(target)), cycles));
            };
            let controllers = &slot.system().controllers;
            if request.needs_controller()
                && !controllers
                    .iter()
                    .any(|c| c.as_slice() == caller.as_slice())
            {
                return Ok((
                    Err(mgmt::not_controller(target, controllers, caller)),
                    cycles,
                ));
            }
        }
        let only_canisters = |what: &str| Reject {
            code: RejectCode::CanisterReject,
            message: format!(
                "{what} can only be called by canisters (from ingress, use \
                 provisional_create_canister_with_cycles to create one)"
            ),
        };
        let unit = Ok(mgmt::reply_unit());
        let (result, refund) = match request {
            MgmtRequest::CreateCanister(args) => {
                if !from_canister {
                    (Err(only_canisters("create_canister")), cycles)
                } else {
                    match mgmt::controllers(&args.settings) {
                        Err(reject) => (Err(reject), cycles),
                        Ok(list) => {
                            let list = list.unwrap_or_else(|| vec![caller.as_slice().to_vec()]);
                            // The attached cycles become the new canister's balance.
                            let id = self.create_empty(list, cycles);
                            (mgmt::reply(&CanisterIdRecord { canister_id: id }), 0)
                        }
                    }
                }
            }
            MgmtRequest::ProvisionalCreate(args) => match mgmt::controllers(&args.settings) {
                Err(reject) => (Err(reject), cycles),
                Ok(list) => {
                    let list = list.unwrap_or_else(|| vec![caller.as_slice().to_vec()]);
                    let amount = args
                        .amount
                        .as_ref()
                        .map_or(crate::state::DEFAULT_CYCLE_BALANCE, mgmt::nat_u128);
                    match args.specified_id {
                        Some(id) if self.canisters.contains_key(&id) => (
                            Err(mgmt::error(format!(
                                "The specified canister id {id} is already in use"
                            ))),
                            cycles,
                        ),
                        Some(id) => {
                            self.create_at(id, list, amount);
                            (mgmt::reply(&CanisterIdRecord { canister_id: id }), cycles)
                        }
                        None => {
                            let id = self.create_empty(list, amount);
                            (mgmt::reply(&CanisterIdRecord { canister_id: id }), cycles)
                        }
                    }
                }
            },
            MgmtRequest::ProvisionalTopUp(args) => {
                if let Some(slot) = self.canisters.get_mut(&args.canister_id) {
                    let system = slot.system_mut();
                    system.cycle_balance = system
                        .cycle_balance
                        .saturating_add(mgmt::nat_u128(&args.amount));
                }
                (unit, cycles)
            }
            MgmtRequest::InstallCode(args) => {
                let id = args.canister_id;
                let installed = self.install_code(
                    id,
                    args.mode,
                    args.wasm_module,
                    &args.arg,
                    &CallOptions::new(caller),
                    None,
                );
                let result = match installed {
                    Ok(outcome) => outcome.result.map(|_| mgmt::reply_unit()),
                    Err(e @ (Error::Instrument(_) | Error::Instantiate(_))) => Err(mgmt::error(
                        format!("Error from Canister {id}: the Wasm module is not valid: {e}"),
                    )),
                    Err(e) => return Err(e),
                };
                (result, cycles)
            }
            MgmtRequest::UninstallCode(args) => {
                if let Some(slot) = self.canisters.get_mut(&args.canister_id)
                    && let Some(canister) = slot.canister.take()
                {
                    let mut system = canister.system().clone();
                    system.canister_version += 1;
                    system.certified_data.clear();
                    system.global_timer = 0;
                    slot.system = system;
                }
                (unit, cycles)
            }
            MgmtRequest::Start(a) => {
                self.set_stopped(a.canister_id, false);
                (unit, cycles)
            }
            MgmtRequest::Stop(a) => {
                self.set_stopped(a.canister_id, true);
                (unit, cycles)
            }
            MgmtRequest::Delete(a) => {
                if self
                    .canisters
                    .get(&a.canister_id)
                    .is_some_and(|s| !s.stopped)
                {
                    (
                        Err(mgmt::error(format!(
                            "Canister {} must be stopped before it is deleted.",
                            a.canister_id
                        ))),
                        cycles,
                    )
                } else {
                    self.canisters.remove(&a.canister_id);
                    (unit, cycles)
                }
            }
            MgmtRequest::Status(a) => {
                let slot = &self.canisters[&a.canister_id];
                let system = slot.system();
                let facts = mgmt::StatusFacts {
                    status: if slot.stopped {
                        CanisterStatusType::Stopped
                    } else {
                        CanisterStatusType::Running
                    },
                    version: system.canister_version,
                    controllers: system
                        .controllers
                        .iter()
                        .map(|c| Principal::from_slice(c))
                        .collect(),
                    module_hash: slot.canister.as_ref().map(|c| c.module_hash().to_vec()),
                    heap_bytes: slot.canister.as_ref().map_or(0, |c| c.heap().len() as u64),
                    stable_bytes: slot
                        .canister
                        .as_ref()
                        .map_or(0, |c| c.stable().len() as u64),
                    wasm_bytes: slot.canister.as_ref().map_or(0, |c| c.wasm().len() as u64),
                    cycles: system.cycle_balance,
                };
                (mgmt::reply(&mgmt::status_result(facts)), cycles)
            }
            MgmtRequest::UpdateSettings(args) => match mgmt::controllers(&Some(args.settings)) {
                Err(reject) => (Err(reject), cycles),
                Ok(list) => {
                    if let (Some(list), Some(slot)) =
                        (list, self.canisters.get_mut(&args.canister_id))
                    {
                        let system = slot.system_mut();
                        system.controllers = list;
                        system.canister_version += 1;
                    }
                    (unit, cycles)
                }
            },
            MgmtRequest::DepositCycles(a) => {
                if let Some(slot) = self.canisters.get_mut(&a.canister_id) {
                    let system = slot.system_mut();
                    system.cycle_balance = system.cycle_balance.saturating_add(cycles);
                }
                (unit, 0)
            }
            MgmtRequest::RawRand => {
                if !from_canister {
                    (Err(only_canisters("raw_rand")), cycles)
                } else {
                    let bytes = mgmt::raw_rand(&self.seed, self.raw_rand_calls);
                    self.raw_rand_calls += 1;
                    (mgmt::reply(&serde_bytes::ByteBuf::from(bytes)), cycles)
                }
            }
        };
        Ok((result, refund))
    }

    /// Sends the calls a message made and answers its call context when it is complete.
    fn after(&mut self, context_id: u64, executed: super::canister::Executed) {
        let Some(context) = self.contexts.get_mut(&context_id) else {
            return;
        };
        context.cycles_available = executed.cycles_left;
        context.instructions = context
            .instructions
            .saturating_add(executed.outcome.instructions);
        let canister = context.canister;
        let deadline_base = self.time;
        for call in executed.calls {
            self.send(context_id, canister, call, deadline_base);
        }
        let Some(context) = self.contexts.get_mut(&context_id) else {
            return;
        };
        let answer = context_answer(
            canister,
            context.responded,
            context.outstanding,
            executed.responded,
            executed.trapped,
            executed.outcome.result,
        );
        if let Some(result) = answer {
            context.responded = true;
            let refund = std::mem::take(&mut context.cycles_available);
            let origin = context.origin;
            self.answer(origin, result, refund);
        }
        if let Some(context) = self.contexts.get(&context_id)
            && context.responded
            && context.outstanding == 0
        {
            self.contexts.remove(&context_id);
        }
    }

    fn send(&mut self, context_id: u64, caller: Principal, call: OutgoingCall, now: u64) {
        let id = self.fresh_id();
        let OutgoingCall {
            callee,
            method,
            arg,
            cycles,
            reply,
            reject,
            cleanup,
            timeout_seconds,
        } = call;
        if let Some(context) = self.contexts.get_mut(&context_id) {
            context.outstanding += 1;
        }
        self.calls.insert(
            id,
            PendingCall {
                context: context_id,
                callbacks: Callbacks {
                    reply,
                    reject,
                    cleanup,
                },
                method: method.clone(),
            },
        );
        let deadline = timeout_seconds.map_or(0, |s| {
            now.saturating_add(u64::from(s).saturating_mul(SECOND))
        });
        let callee = match Principal::try_from_slice(&callee) {
            Ok(callee) => callee,
            Err(e) => {
                self.queue.push_back(Message::Response {
                    call: id,
                    result: Err(Reject {
                        code: RejectCode::DestinationInvalid,
                        message: format!("the callee is not a valid principal: {e}"),
                    }),
                    refund: cycles,
                });
                return;
            }
        };
        self.queue.push_back(Message::Request(Request {
            origin: Origin::Call(id),
            caller,
            callee,
            method,
            arg,
            cycles,
            deadline,
        }));
    }

    /// Delivers the answer of a call context to whoever waits for it.
    fn answer(&mut self, origin: Origin, result: Result<Vec<u8>, Reject>, refund: u128) {
        match origin {
            // Ingress messages carry no cycles: nothing to refund.
            Origin::Ingress(id) => {
                self.ingress.insert(id, result);
            }
            Origin::Call(call) => self.queue.push_back(Message::Response {
                call,
                result,
                refund,
            }),
            Origin::System => {}
        }
    }

    fn record(
        &mut self,
        canister: Principal,
        kind: MessageKind,
        method: String,
        caller: Principal,
        executed: &super::canister::Executed,
    ) {
        let cleanup_instructions = executed.cleanup.as_ref().map_or(0, |c| c.instructions);
        let mut dirty = executed.outcome.dirty.clone();
        if let Some(cleanup) = &executed.cleanup {
            dirty.heap.extend(cleanup.dirty.heap.iter().copied());
            dirty.stable.extend(cleanup.dirty.stable.iter().copied());
            dirty.heap.sort_unstable();
            dirty.heap.dedup();
            dirty.stable.sort_unstable();
            dirty.stable.dedup();
        }
        if let Some(slot) = self.canisters.get_mut(&canister) {
            slot.unsaved.get_or_insert_default().add(&dirty);
        }
        let mut debug_log = executed.outcome.debug_log.clone();
        if let Some(cleanup) = &executed.cleanup {
            debug_log.extend(cleanup.debug_log.iter().cloned());
        }
        self.history.push(Executed {
            canister,
            kind,
            method,
            caller,
            instructions: executed.outcome.instructions + cleanup_instructions,
            trapped: executed.trapped,
            cleanup: executed.cleanup.is_some(),
            response: executed.responded.then(|| executed.outcome.result.clone()),
            debug_log,
            dirty,
        });
    }
}

/// The answer a call context of `canister` gets after one of its messages ran (`responded`,
/// `trapped`, `result`), if it gets one now: the message's own answer; or, once no call of the
/// context is outstanding and nobody answered, the trap's reject or "did not reply". `None`
/// while it is answered already or still waits. Shared by replicated messages and composite
/// query evaluations.
fn context_answer(
    canister: Principal,
    already: bool,
    outstanding: u32,
    responded: bool,
    trapped: bool,
    result: Result<Vec<u8>, Reject>,
) -> Option<Result<Vec<u8>, Reject>> {
    if already {
        None
    } else if responded {
        Some(result)
    } else if outstanding == 0 {
        Some(Err(if trapped {
            result
                .err()
                .unwrap_or_else(|| did_not_reply(canister.as_slice()))
        } else {
            did_not_reply(canister.as_slice())
        }))
    } else {
        None
    }
}

/// The canister of `slot` if it can take a message: it has code and is running.
fn runnable(id: Principal, slot: &mut Slot) -> Result<&mut Canister, Reject> {
    if slot.stopped {
        return Err(Reject {
            code: RejectCode::CanisterError,
            message: format!(
                "Canister {id} is stopped and therefore does not have a CallContextManager"
            ),
        });
    }
    slot.canister.as_mut().ok_or_else(|| Reject {
        code: RejectCode::CanisterError,
        message: format!(
            "Canister {id} is empty: attempted to execute a message, but the canister contains \
             no Wasm module"
        ),
    })
}

/// The reject for a call to a canister that does not exist (`DESTINATION_INVALID`).
fn not_found(canister: Principal) -> Reject {
    Reject {
        code: RejectCode::DestinationInvalid,
        message: format!("Canister {canister} not found"),
    }
}
