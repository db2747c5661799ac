//! One line of the message log: the inputs of a message and, once executed, its outcome.
//!
//! The JSON form is documented with an example in `docs/message-log.md`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::runtime::{InstructionLimits, Outcome};
use crate::state::{ANONYMOUS, StableMode};

/// What kind of message a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Create the canister from a module and run `canister_init`; always the first record.
    Install,
    /// An update call (or a query method called as an update: a replicated query).
    Update,
    /// A query call (its changes are discarded).
    Query,
    /// An upgrade to another module.
    Upgrade,
    /// `canister-vm tick`: time advances and heartbeats and due global timers run.
    Tick,
}

impl Kind {
    /// The lowercase name used in the log.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Install => "install",
            Kind::Update => "update",
            Kind::Query => "query",
            Kind::Upgrade => "upgrade",
            Kind::Tick => "tick",
        }
    }

    /// The name with its indefinite article ("an update", "a query").
    pub fn article(self) -> String {
        match self {
            Kind::Query => "a query".into(),
            other => format!("an {}", other.name()),
        }
    }

    /// Whether the message advances the canister's clock (everything but a query).
    pub fn ticks(self) -> bool {
        self != Kind::Query
    }

    /// The IC's default instruction limit for this kind.
    pub fn default_limit(self) -> u64 {
        let l = InstructionLimits::default();
        match self {
            Kind::Install | Kind::Upgrade => l.install,
            Kind::Update | Kind::Tick => l.update,
            Kind::Query => l.query,
        }
    }
}

/// A principal, written as principal text (`2vxsx-fae`), or as `0x<hex>` when the bytes are
/// too long to be a principal (logs written before callers were principals may hold such
/// bytes; a message from one cannot be replayed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub Vec<u8>);

impl Caller {
    /// The anonymous principal.
    pub fn anonymous() -> Self {
        Caller(ANONYMOUS.to_vec())
    }

    /// The textual form used in the log.
    pub fn to_text(&self) -> String {
        match candid::Principal::try_from_slice(&self.0) {
            Ok(p) => p.to_text(),
            Err(_) => format!("0x{}", hex::encode(&self.0)),
        }
    }

    /// Parses the textual form.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(h) = text.strip_prefix("0x") {
            return hex::decode(h)
                .map(Caller)
                .map_err(|e| format!("invalid caller hex `{text}`: {e}"));
        }
        candid::Principal::from_text(text)
            .map(|p| Caller(p.as_slice().to_vec()))
            .map_err(|e| format!("invalid caller principal `{text}`: {e}"))
    }
}

impl Serialize for Caller {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for Caller {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Caller::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One message of the log.
///
/// Inputs are what the message ran with, after defaults were applied (a record written by
/// canister-vm always has `caller` and `time`); a hand-written record may leave them out, and
/// may name its module by file (`module_file`) and its argument as Candid text (`candid`), which
/// `replay --record` turns into `module` and `arg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The message kind.
    pub kind: Kind,
    /// The canister the message is for (for an install: the canister it created; `aaaaa-aa`
    /// for the management canister). Absent in records written before subnets (state format
    /// 4), which are all for the first canister and replay with its single-canister semantics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canister: Option<Caller>,
    /// The name an install gave its canister.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds a tick advances the clock by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// The method (update and query records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// SHA-256 (hex) of the module (install and upgrade records); the module is looked up by
    /// this hash in a `modules/` directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Hand-written logs only: a module file (`.wasm`, `.wasm.gz`, `.wat`), relative to the
    /// log's directory. `replay --record` stores it in `modules/` and writes `module` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_file: Option<PathBuf>,
    /// How stable memory is reached (install records; default native).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_mode: Option<StableMode>,
    /// The argument bytes, hex.
    #[serde(default, with = "hex::serde", skip_serializing_if = "Vec::is_empty")]
    pub arg: Vec<u8>,
    /// Hand-written logs only: the argument as Candid text instead of `arg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candid: Option<String>,
    /// The caller (for an install, the controller); default the anonymous principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    /// `ic0.time` of the message in nanoseconds; default: the previous message's time plus one
    /// second (queries: the previous message's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// The message's instruction limit when it is not the IC default for its kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_limit: Option<u64>,
    /// The stable memory limit in 64 KiB pages when it is not the default (400 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_limit_pages: Option<u64>,
    /// `false` when the canister ran without instruction counting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metering: Option<bool>,
    /// What the message did; absent in a hand-written log until `replay --record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RecordedOutcome>,
}

impl Record {
    /// A record of `kind` with every optional input left out.
    pub fn new(kind: Kind) -> Self {
        Record {
            kind,
            canister: None,
            name: None,
            seconds: None,
            method: None,
            module: None,
            module_file: None,
            stable_mode: None,
            arg: Vec::new(),
            candid: None,
            caller: None,
            time: None,
            instruction_limit: None,
            stable_limit_pages: None,
            metering: None,
            outcome: None,
        }
    }

    /// A one-line description: kind and method or module.
    pub fn describe(&self) -> String {
        if self.kind == Kind::Tick {
            return format!("tick of {} s", self.seconds.unwrap_or(1));
        }
        match (&self.method, &self.module) {
            (Some(m), _) => format!("{} `{m}`", self.kind.name()),
            (None, Some(sha)) => format!("{} of module {}", self.kind.name(), short(sha)),
            (None, None) => self.kind.name().to_string(),
        }
    }

    /// Checks the fields that belong together; `Err` says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        match self.kind {
            Kind::Tick => {
                if self.method.is_some() || self.module.is_some() || self.module_file.is_some() {
                    return Err("a tick record has no method and no module".into());
                }
            }
            Kind::Update | Kind::Query => {
                if self.method.is_none() {
                    return Err(format!("{} record needs `method`", self.kind.article()));
                }
                if self.module.is_some() || self.module_file.is_some() {
                    return Err(format!("{} record has no module", self.kind.article()));
                }
            }
            Kind::Install | Kind::Upgrade => {
                if self.method.is_some() {
                    return Err(format!("an {} record has no `method`", self.kind.name()));
                }
                match (&self.module, &self.module_file) {
                    (None, None) => {
                        return Err(format!(
                            "an {} record needs `module` (a SHA-256) or `module_file`",
                            self.kind.name()
                        ));
                    }
                    (Some(sha), _) if !is_sha256(sha) => {
                        return Err(format!("`module` `{sha}` is not a hex SHA-256"));
                    }
                    _ => {}
                }
            }
        }
        if self.stable_mode.is_some() && self.kind != Kind::Install {
            return Err("`stable_mode` belongs to the install record".into());
        }
        if self.candid.is_some() && !self.arg.is_empty() {
            return Err("give the argument as `arg` or as `candid`, not both".into());
        }
        if self.seconds.is_some() && self.kind != Kind::Tick {
            return Err("`seconds` belongs to a tick record".into());
        }
        if self.name.is_some() && self.kind != Kind::Install {
            return Err("`name` belongs to an install record".into());
        }
        if let Some(o) = &self.outcome {
            o.check()?;
        }
        Ok(())
    }

    /// Whether the record runs on the subnet (records written since state format 4, and
    /// ticks), rather than with the single-canister semantics of older records.
    pub fn on_subnet(&self) -> bool {
        self.canister.is_some() || self.kind == Kind::Tick
    }

    /// The instruction limits to run this record with: the IC defaults, with this kind's
    /// replaced by `instruction_limit`.
    pub fn limits(&self) -> InstructionLimits {
        let mut limits = InstructionLimits::default();
        if let Some(n) = self.instruction_limit {
            match self.kind {
                Kind::Install | Kind::Upgrade => limits.install = n,
                Kind::Update | Kind::Tick => limits.update = n,
                Kind::Query => limits.query = n,
            }
        }
        limits
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first 12 characters of a hash.
pub(crate) fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// A reject as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedReject {
    /// The IC reject code (4 canister reject, 5 canister error, ...).
    pub code: u8,
    /// The reject message.
    pub message: String,
}

/// What a message did, as recorded and as compared by replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedOutcome {
    /// The reply bytes, hex (exactly one of `reply` and `reject`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::state::hex_option"
    )]
    pub reply: Option<Vec<u8>>,
    /// The reject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<RecordedReject>,
    /// Instructions executed.
    pub instructions: u64,
    /// 4 KiB heap pages the message dirtied, as inclusive ranges `[first, last]`.
    #[serde(default)]
    pub dirty_heap: Vec<[u64; 2]>,
    /// 4 KiB stable pages the message dirtied, as inclusive ranges `[first, last]`.
    #[serde(default)]
    pub dirty_stable: Vec<[u64; 2]>,
    /// Lines printed with `ic0.debug_print`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debug: Vec<String>,
    /// The canister's message counter after the message (install, updates and upgrades count;
    /// queries do not): the state after this record reflects that many messages.
    pub messages: u64,
    /// The state hash after the message (hex; empty when no canister exists, after a failed
    /// install).
    pub state_hash: String,
    /// Which hash `state_hash` is: `HASH_FORMAT` (the state hash over everything that decides
    /// behaviour), or absent in logs written before it (2: the memory hash, over memories,
    /// globals and certified data only). Replay compares with the same kind.
    #[serde(default = "hash_format_2")]
    pub hash_format: u32,
    /// How `instructions` were counted: `2` (the replica's costs, DESIGN.md, "Instruction
    /// counts"), or absent in logs written before it (1: canister-vm's earlier cost table).
    /// Replay compares the instruction counts of records of the current format only.
    #[serde(default = "count_format_1")]
    pub count_format: u32,
    /// Every further message the record caused on the subnet, in execution order (callbacks,
    /// calls to other canisters, management calls, heartbeats, timers); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executed: Vec<ExecutedRecord>,
    /// The subnet's state hash after the record (`Subnet::state_hash`; subnet records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_hash: Option<String>,
}

/// One further message a subnet record caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutedRecord {
    /// The canister that ran it.
    pub canister: Caller,
    /// `request`, `reply_callback`, `reject_callback`, `heartbeat`, `global_timer` or
    /// `management`.
    pub kind: crate::runtime::subnet::MessageKind,
    /// The method (of the request, or of the call whose response the callback handles).
    pub method: String,
    /// The caller of its call context.
    pub caller: Caller,
    /// Instructions executed (with its cleanup callback).
    pub instructions: u64,
    /// It trapped and was rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trapped: bool,
    /// A cleanup callback ran after the trap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup: bool,
    /// The reply it answered its call context with (hex).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::state::hex_option"
    )]
    pub reply: Option<Vec<u8>>,
    /// The reject it answered its call context with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<RecordedReject>,
    /// 4 KiB heap pages it wrote, as inclusive ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirty_heap: Vec<[u64; 2]>,
    /// 4 KiB stable pages it wrote, as inclusive ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirty_stable: Vec<[u64; 2]>,
    /// Lines it printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debug: Vec<String>,
}

impl ExecutedRecord {
    /// The recorded form of a message the subnet executed.
    pub fn new(e: &crate::runtime::subnet::Executed) -> Self {
        let (reply, reject) = match &e.response {
            None => (None, None),
            Some(Ok(bytes)) => (Some(bytes.clone()), None),
            Some(Err(r)) => (
                None,
                Some(RecordedReject {
                    code: r.code as u8,
                    message: r.message.clone(),
                }),
            ),
        };
        ExecutedRecord {
            canister: Caller(e.canister.as_slice().to_vec()),
            kind: e.kind,
            method: e.method.clone(),
            caller: Caller(e.caller.as_slice().to_vec()),
            instructions: e.instructions,
            trapped: e.trapped,
            cleanup: e.cleanup,
            reply,
            reject,
            dirty_heap: ranges(&e.dirty.heap),
            dirty_stable: ranges(&e.dirty.stable),
            debug: e.debug_log.clone(),
        }
    }

    /// A one-line description: kind, canister and method.
    pub fn describe(&self) -> String {
        format!(
            "{} `{}` on {}",
            self.kind.name(),
            self.method,
            self.canister.to_text()
        )
    }
}

/// The `hash_format` of the records written now: the state hash of state format 3.
pub const HASH_FORMAT: u32 = 3;

fn hash_format_2() -> u32 {
    2
}

/// The `count_format` of the records written now: instruction counts equal to the replica's.
pub const COUNT_FORMAT: u32 = 2;

fn count_format_1() -> u32 {
    1
}

impl RecordedOutcome {
    /// The recorded form of `outcome`, with the canister's message counter and state hash after
    /// it.
    pub fn new(outcome: &Outcome, messages: u64, state_hash: String) -> Self {
        let (reply, reject) = match &outcome.result {
            Ok(bytes) => (Some(bytes.clone()), None),
            Err(r) => (
                None,
                Some(RecordedReject {
                    code: r.code as u8,
                    message: r.message.clone(),
                }),
            ),
        };
        RecordedOutcome {
            reply,
            reject,
            instructions: outcome.instructions,
            dirty_heap: ranges(&outcome.dirty.heap),
            dirty_stable: ranges(&outcome.dirty.stable),
            debug: outcome.debug_log.clone(),
            messages,
            state_hash,
            hash_format: HASH_FORMAT,
            count_format: COUNT_FORMAT,
            executed: Vec::new(),
            subnet_hash: None,
        }
    }

    /// Checks that exactly one of `reply` and `reject` is present.
    pub fn check(&self) -> Result<(), String> {
        match (&self.reply, &self.reject) {
            (Some(_), Some(_)) => Err("an outcome has `reply` or `reject`, not both".into()),
            (None, None) => Err("an outcome needs `reply` or `reject`".into()),
            _ => Ok(()),
        }
    }
}

/// Sorted page numbers as inclusive ranges.
pub fn ranges(pages: &[u64]) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for &p in pages {
        match out.last_mut() {
            Some(last) if last[1].checked_add(1) == Some(p) => last[1] = p,
            _ => out.push([p, p]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_become_ranges() {
        assert_eq!(ranges(&[]), Vec::<[u64; 2]>::new());
        assert_eq!(ranges(&[3]), [[3, 3]]);
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), [[0, 2], [5, 5], [7, 8]]);
    }

    #[test]
    fn callers_round_trip_as_principal_text_or_hex() {
        let anon = Caller::anonymous();
        assert_eq!(anon.to_text(), "2vxsx-fae");
        assert_eq!(Caller::parse("2vxsx-fae").unwrap(), anon);
        let long = Caller(vec![7; 40]);
        assert!(long.to_text().starts_with("0x0707"));
        assert_eq!(Caller::parse(&long.to_text()).unwrap(), long);
        assert!(Caller::parse("not a principal").is_err());
    }

    #[test]
    fn records_round_trip_and_are_checked() {
        let mut r = Record::new(Kind::Update);
        r.method = Some("put".into());
        r.arg = vec![0x44, 0x49];
        r.caller = Some(Caller::anonymous());
        r.time = Some(5);
        r.outcome = Some(RecordedOutcome {
            reply: Some(vec![]),
            reject: None,
            instructions: 10,
            dirty_heap: vec![[1, 2]],
            dirty_stable: vec![],
            debug: vec![],
            messages: 2,
            state_hash: "ab".into(),
            hash_format: HASH_FORMAT,
            count_format: COUNT_FORMAT,
            executed: Vec::new(),
            subnet_hash: None,
        });
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        r.check().unwrap();
        r.method = None;
        assert!(r.check().unwrap_err().contains("method"));
        let unknown = line.replace("\"kind\"", "\"colour\":1,\"kind\"");
        let err = serde_json::from_str::<Record>(&unknown).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
