//! How a canister runs (stable mode, limits, engine, its subnet) and what its module exports.

use super::*;

/// How a canister is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanisterConfig {
    pub(super) stable_mode: StableMode,
    pub(super) stable_limit_pages: u64,
    pub(super) limits: InstructionLimits,
    pub(super) metering: bool,
    pub(super) engine: Engine,
    /// Set when the canister runs on a [`Subnet`](super::subnet::Subnet): it may then make
    /// inter-canister calls, and sees the subnet's id and root key.
    pub(super) subnet: Option<SubnetInfo>,
}

/// What a canister on a subnet knows about the subnet.
#[derive(Debug, Clone)]
pub(crate) struct SubnetInfo {
    /// The subnet's principal (`ic0.subnet_self_*`).
    pub subnet_id: Vec<u8>,
    /// The root key that signs certificates (`ic0.root_key_*`, `ic0.data_certificate_*`).
    pub root_key: std::sync::Arc<crate::certification::RootKey>,
}

impl PartialEq for SubnetInfo {
    fn eq(&self, other: &Self) -> bool {
        self.subnet_id == other.subnet_id
            && self.root_key.public_key() == other.root_key.public_key()
    }
}
impl Eq for SubnetInfo {}

impl SubnetInfo {
    /// The subnet of a root key: its id is the self-authenticating principal of the key's DER
    /// encoding, as for the IC's subnets.
    pub fn of_key(root_key: std::sync::Arc<crate::certification::RootKey>) -> Self {
        let subnet_id = candid::Principal::self_authenticating(root_key.public_key_der())
            .as_slice()
            .to_vec();
        SubnetInfo {
            subnet_id,
            root_key,
        }
    }

    /// The subnet of a canister that runs alone: the default seed's key
    /// ([`DEFAULT_SEED`](crate::certification::DEFAULT_SEED)).
    pub(super) fn standalone() -> Self {
        static DEFAULT: std::sync::OnceLock<SubnetInfo> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                SubnetInfo::of_key(std::sync::Arc::new(
                    crate::certification::RootKey::from_seed(crate::certification::DEFAULT_SEED),
                ))
            })
            .clone()
    }
}

impl Default for CanisterConfig {
    fn default() -> Self {
        CanisterConfig {
            stable_mode: StableMode::default(),
            stable_limit_pages: 400 * 1024 * 1024 * 1024 / WASM_PAGE_SIZE,
            limits: InstructionLimits::default(),
            metering: true,
            engine: Engine::default(),
            subnet: None,
        }
    }
}

impl CanisterConfig {
    /// How stable memory is reached (default: native).
    pub fn stable_mode(mut self, mode: StableMode) -> Self {
        self.stable_mode = mode;
        self
    }
    /// Largest stable memory in 64 KiB pages (default: 400 GiB).
    pub fn stable_limit_pages(mut self, pages: u64) -> Self {
        self.stable_limit_pages = pages;
        self
    }
    /// Instruction limits per message kind.
    pub fn instruction_limits(mut self, limits: InstructionLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Whether instruction counting is instrumented (default: on).
    pub fn metering(mut self, on: bool) -> Self {
        self.metering = on;
        self
    }
    /// The engine that runs the canister (default: wasmi). Choosing one this build does not
    /// have ([`Engine::is_available`]) makes creating the canister fail with
    /// [`Error::EngineUnavailable`].
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }
    /// The configured stable mode.
    pub fn get_stable_mode(&self) -> StableMode {
        self.stable_mode
    }
    /// The configured engine.
    pub fn get_engine(&self) -> Engine {
        self.engine
    }

    /// The configuration of a canister on a subnet.
    pub(crate) fn on_subnet(mut self, subnet: SubnetInfo) -> Self {
        self.subnet = Some(subnet);
        self
    }

    pub(super) fn instrument_config(&self) -> instrument::Config {
        instrument::Config::default()
            .stable(self.stable_mode)
            .metering(self.metering)
            .stable_limit_pages(self.stable_limit_pages)
    }
}

/// The remaining settings, as the message log records them.
impl CanisterConfig {
    /// The configured instruction limits.
    pub fn get_instruction_limits(&self) -> InstructionLimits {
        self.limits
    }
    /// The configured stable memory limit in 64 KiB pages.
    pub fn get_stable_limit_pages(&self) -> u64 {
        self.stable_limit_pages
    }
    /// Whether instruction counting is instrumented.
    pub fn get_metering(&self) -> bool {
        self.metering
    }
}

/// What a module exports, as far as the lifecycle cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Methods {
    /// `canister_update <name>` methods.
    pub updates: Vec<String>,
    /// `canister_query <name>` and `canister_composite_query <name>` methods.
    pub queries: Vec<String>,
    /// Lifecycle hooks present (`canister_init`, `canister_pre_upgrade`, ...).
    pub hooks: Vec<String>,
    /// The query methods that are composite queries (`canister_composite_query <name>`).
    pub composite: Vec<String>,
}

impl Methods {
    /// Whether `method` is an update or a query method.
    pub fn has(&self, method: &str) -> bool {
        self.updates
            .iter()
            .chain(&self.queries)
            .any(|m| m == method)
    }

    pub(super) fn of(exports: &[String]) -> Self {
        let mut m = Methods::default();
        for name in exports {
            let name = name.as_str();
            if let Some(u) = name.strip_prefix("canister_update ") {
                m.updates.push(u.to_string());
            } else if let Some(q) = name.strip_prefix("canister_query ") {
                m.queries.push(q.to_string());
            } else if let Some(q) = name.strip_prefix("canister_composite_query ") {
                m.queries.push(q.to_string());
                m.composite.push(q.to_string());
            } else if matches!(
                name,
                "canister_init"
                    | "canister_pre_upgrade"
                    | "canister_post_upgrade"
                    | "canister_inspect_message"
                    | "canister_heartbeat"
                    | "canister_global_timer"
            ) {
                m.hooks.push(name.to_string());
            }
        }
        m.updates.sort();
        m.queries.sort();
        m
    }

    pub(super) fn export_of_query(exports: &[String], method: &str) -> String {
        let composite = format!("canister_composite_query {method}");
        if exports.contains(&composite) {
            composite
        } else {
            format!("canister_query {method}")
        }
    }
}
