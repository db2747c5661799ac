//! The replay engine: re-executes a log in a fresh in-memory canister and compares outcomes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candid::Principal;

use super::log::{Entry, FILE_NAME, Log, MODULES_DIR};
use super::modules::Modules;
use super::record::{
    COUNT_FORMAT, Caller, ExecutedRecord, HASH_FORMAT, Kind, Record, RecordedOutcome,
};
use super::{Engine, ReplayError};
use crate::error::Error;
use crate::runtime::persistent::PersistentSubnet;
use crate::runtime::subnet::{Subnet, canister_id};
use crate::runtime::{Canister, CanisterConfig, MessageInput, Outcome};
use crate::state::{ANONYMOUS, Clock, LogPosition};

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The engine to run on.
    pub engine: Engine,
    /// Fill in missing outcomes (and effective caller and time, `arg` from `candid`, `module`
    /// from `module_file`) instead of failing on them; records that have an outcome are still
    /// compared. The completed log is [`Summary::log`].
    pub record: bool,
    /// The directory `module_file` paths are relative to (normally the log's directory).
    pub base_dir: Option<PathBuf>,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records executed.
    pub messages: u64,
    /// Records skipped because the checkpoint already reflects them.
    pub skipped: u64,
    /// Executed records by kind: install, update, query, upgrade.
    pub installs: u64,
    /// Update records executed.
    pub updates: u64,
    /// Query records executed.
    pub queries: u64,
    /// Upgrade records executed.
    pub upgrades: u64,
    /// Tick records executed.
    pub ticks: u64,
    /// Further messages the records caused on the subnet (callbacks, calls, timers, ...).
    pub caused: u64,
    /// Executed records whose outcome is a reject.
    pub rejects: u64,
    /// Instructions executed, all records together.
    pub instructions: u64,
    /// Dirty 4 KiB heap pages, all records together.
    pub dirty_heap_pages: u64,
    /// Dirty 4 KiB stable pages, all records together.
    pub dirty_stable_pages: u64,
    /// Outcomes filled in ([`Options::record`]).
    pub filled: u64,
    /// The first canister's state hash at the end (hex), if it exists.
    pub state_hash: Option<String>,
    /// The subnet's state hash at the end (hex).
    pub subnet_hash: String,
    /// Wall-clock time of the replay.
    pub wall: Duration,
    /// The completed log ([`Options::record`] only).
    pub log: Option<Log>,
}

/// One outcome field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// The field's name in the log (`reply`, `reject`, `instructions`, `state_hash`, ...).
    pub field: &'static str,
    /// The recorded value.
    pub expected: String,
    /// The replayed value.
    pub got: String,
}

/// The first record whose re-execution did not give the recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The 1-based record number.
    pub record: usize,
    /// The line in the log file.
    pub line: usize,
    /// The record, described (kind and method or module).
    pub message: String,
    /// Every field that differs, the most telling first (result, instructions, dirty pages,
    /// debug output, message counter, state hash).
    pub diffs: Vec<FieldDiff>,
}

impl Divergence {
    /// The first differing field.
    pub fn field(&self) -> &'static str {
        self.diffs.first().map_or("outcome", |d| d.field)
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} (line {}, {}) diverged in `{}`",
            self.record,
            self.line,
            self.message,
            self.field()
        )?;
        if let Some(d) = self.diffs.first() {
            write!(f, "\n  expected: {}\n  got:      {}", d.expected, d.got)?;
        }
        for d in self.diffs.iter().skip(1) {
            write!(
                f,
                "\n  also `{}`: expected {}, got {}",
                d.field, d.expected, d.got
            )?;
        }
        Ok(())
    }
}

/// Hex of `bytes`, at most 48 bytes of it around `at`.
fn hex_around(bytes: &[u8], at: usize) -> String {
    const SHOW: usize = 48;
    if bytes.len() <= SHOW {
        return hex::encode(bytes);
    }
    let start = at.saturating_sub(8).min(bytes.len() - SHOW);
    let end = start + SHOW;
    format!(
        "{}{}{} ({} bytes)",
        if start > 0 { "…" } else { "" },
        hex::encode(&bytes[start..end]),
        if end < bytes.len() { "…" } else { "" },
        bytes.len()
    )
}

fn describe_reject(r: &super::record::RecordedReject) -> String {
    format!("reject {}: {}", r.code, r.message)
}

fn describe_ranges(r: &[[u64; 2]]) -> String {
    let pages: u64 = r.iter().map(|[a, b]| b - a + 1).sum();
    let list: Vec<String> = r
        .iter()
        .take(8)
        .map(|[a, b]| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let more = if r.len() > 8 { ", …" } else { "" };
    format!("{pages} pages [{}{more}]", list.join(", "))
}

/// The fields of `got` that differ from `expected`, in report order.
fn compare(expected: &RecordedOutcome, got: &RecordedOutcome) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let mut push = |field, expected: String, got: String| {
        diffs.push(FieldDiff {
            field,
            expected,
            got,
        })
    };
    match (&expected.reply, &got.reply, &expected.reject, &got.reject) {
        (Some(e), Some(g), _, _) if e != g => {
            let at = e.iter().zip(g).position(|(a, b)| a != b);
            let at = at.unwrap_or(e.len().min(g.len()));
            push(
                "reply",
                format!("{} (first difference at byte {at})", hex_around(e, at)),
                hex_around(g, at),
            );
        }
        (_, _, Some(e), Some(g)) if e != g => {
            push("reject", describe_reject(e), describe_reject(g))
        }
        (Some(e), None, _, Some(g)) => push(
            "reply",
            format!("reply {}", hex_around(e, 0)),
            describe_reject(g),
        ),
        (None, Some(g), Some(e), _) => push(
            "reject",
            describe_reject(e),
            format!("reply {}", hex_around(g, 0)),
        ),
        _ => {}
    }
    // Records written before hash format 3 were counted before the byte-moving ic0 functions
    // were charged as on the replica (500 + 50 per appended byte, 500 + 1 per copied byte), and
    // records before count format 2 with canister-vm's earlier cost table (DESIGN.md,
    // "Instruction counts"): their instruction counts no longer apply, everything else is
    // compared.
    let counts = expected.hash_format >= HASH_FORMAT && expected.count_format >= COUNT_FORMAT;
    if expected.instructions != got.instructions && counts {
        push(
            "instructions",
            expected.instructions.to_string(),
            got.instructions.to_string(),
        );
    }
    if expected.dirty_heap != got.dirty_heap {
        push(
            "dirty_heap",
            describe_ranges(&expected.dirty_heap),
            describe_ranges(&got.dirty_heap),
        );
    }
    if expected.dirty_stable != got.dirty_stable {
        push(
            "dirty_stable",
            describe_ranges(&expected.dirty_stable),
            describe_ranges(&got.dirty_stable),
        );
    }
    if expected.debug != got.debug {
        push(
            "debug",
            format!("{:?}", expected.debug),
            format!("{:?}", got.debug),
        );
    }
    if expected.messages != got.messages {
        push(
            "messages",
            expected.messages.to_string(),
            got.messages.to_string(),
        );
    }
    if expected.state_hash != got.state_hash {
        push(
            "state_hash",
            expected.state_hash.clone(),
            got.state_hash.clone(),
        );
    }
    let (e, g) = (&expected.executed, &got.executed);
    let same = |e: &ExecutedRecord, g: &ExecutedRecord| {
        e == g
            || (!counts
                && *e
                    == ExecutedRecord {
                        instructions: e.instructions,
                        ..g.clone()
                    })
    };
    let differs = |i: usize| match (e.get(i), g.get(i)) {
        (Some(e), Some(g)) => !same(e, g),
        _ => true,
    };
    if let Some(i) = (0..e.len().max(g.len())).find(|&i| differs(i)) {
        let describe = |x: Option<&ExecutedRecord>| match x {
            None => "no message".to_string(),
            Some(x) => describe_executed(x),
        };
        push(
            "executed",
            format!("message {} of the record: {}", i + 1, describe(e.get(i))),
            describe(g.get(i)),
        );
    }
    if let Some(expected) = &expected.subnet_hash
        && Some(expected) != got.subnet_hash.as_ref()
    {
        push(
            "subnet_hash",
            expected.clone(),
            got.subnet_hash.clone().unwrap_or_default(),
        );
    }
    diffs
}

/// A further message, with the fields replay compares.
fn describe_executed(x: &ExecutedRecord) -> String {
    let answer = match (&x.reply, &x.reject) {
        (Some(b), _) => format!(", reply {}", hex_around(b, 0)),
        (_, Some(r)) => format!(", {}", describe_reject(r)),
        _ => String::new(),
    };
    format!(
        "{} from {}: {} instructions{}{}, dirty heap {}, dirty stable {}{}",
        x.describe(),
        x.caller.to_text(),
        x.instructions,
        if x.trapped { ", trapped" } else { "" },
        if x.cleanup { ", cleanup ran" } else { "" },
        describe_ranges(&x.dirty_heap),
        describe_ranges(&x.dirty_stable),
        answer
    )
}

/// Re-executes a log record by record (see the module docs of [`replay`](super)).
///
/// Drive it with [`Replayer::step`] (e.g. to show progress) or let [`replay`] run it.
#[derive(Debug)]
pub struct Replayer {
    entries: Vec<Entry>,
    modules: Modules,
    options: Options,
    subnet: Subnet,
    next: usize,
    summary: Summary,
    completed: Vec<Record>,
    started: Instant,
}

impl Replayer {
    /// A replay of `log` from its install record; modules come from `modules`.
    pub fn new(log: Log, modules: Modules, options: Options) -> Self {
        let subnet = Subnet::new(CanisterConfig::default().engine(options.engine));
        Replayer {
            entries: log.entries,
            modules,
            options,
            subnet,
            next: 0,
            summary: Summary::default(),
            completed: Vec::new(),
            started: Instant::now(),
        }
    }

    /// A replay of `log` that starts from `checkpoint`, a subnet that already reflects the
    /// log's first `records` records (the log position of the checkpoint it was opened from):
    /// those are skipped, and the checkpoint must have the state hash recorded after the last
    /// of them (the subnet's, or for single-canister records the first canister's).
    pub fn from_checkpoint(
        log: Log,
        modules: Modules,
        checkpoint: Subnet,
        records: usize,
        options: Options,
    ) -> Result<Self, ReplayError> {
        let mut replayer = Replayer::new(log, modules, options);
        if records > replayer.entries.len() {
            return Err(ReplayError::Checkpoint(format!(
                "the checkpoint reflects {records} records, the log has only {}",
                replayer.entries.len()
            )));
        }
        replayer.completed = replayer.entries[..records]
            .iter()
            .map(|e| e.record.clone())
            .collect();
        replayer.next = records;
        if let Some(entry) = records.checked_sub(1).map(|i| &replayer.entries[i])
            && let Some(outcome) = &entry.record.outcome
        {
            let (expected, got) = match &outcome.subnet_hash {
                Some(h) => (h.clone(), hex::encode(checkpoint.state_hash())),
                None => (
                    outcome.state_hash.clone(),
                    checkpoint
                        .canister(canister_id(0))
                        .map(|c| hex::encode(hash_of(c, outcome.hash_format)))
                        .unwrap_or_default(),
                ),
            };
            if expected != got {
                return Err(ReplayError::Checkpoint(format!(
                    "the checkpoint's state hash {got} differs from the one recorded after \
                     record {records} (line {}): {expected}",
                    entry.line
                )));
            }
        }
        replayer.summary.skipped = records as u64;
        replayer.subnet = checkpoint;
        Ok(replayer)
    }

    /// The number of records in the log.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log has no records.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many records are done (executed or skipped).
    pub fn position(&self) -> usize {
        self.next
    }

    /// The first canister as replayed so far.
    pub fn canister(&self) -> Option<&Canister> {
        self.subnet.canister(canister_id(0))
    }

    /// The subnet as replayed so far.
    pub fn subnet(&self) -> &Subnet {
        &self.subnet
    }

    /// Executes the next record and compares (or, recording, fills in) its outcome. Returns
    /// `Ok(false)` when the log is done.
    pub fn step(&mut self) -> Result<bool, ReplayError> {
        let Some(entry) = self.entries.get(self.next).cloned() else {
            return Ok(false);
        };
        self.next += 1;
        let number = self.next;
        let fail = |why: String| ReplayError::Record {
            record: number,
            line: entry.line,
            why,
        };
        let mut record = entry.record;
        if record.outcome.is_none() && !self.options.record {
            return Err(fail(
                "no recorded outcome to compare with (a hand-written log? `replay --record` \
                 fills outcomes in)"
                    .into(),
            ));
        }
        let arg = match &record.candid {
            Some(text) => crate::candid_text::encode_args(text).map_err(|e| fail(e.to_string()))?,
            None => record.arg.clone(),
        };
        let wasm = match record.kind {
            Kind::Install | Kind::Upgrade => Some(self.module(&mut record).map_err(&fail)?),
            Kind::Update | Kind::Query | Kind::Tick => None,
        };
        if record.on_subnet() {
            return self.step_subnet(number, entry.line, record, arg, wasm);
        }
        let caller = record.caller.clone().unwrap_or_else(Caller::anonymous);
        let input = MessageInput {
            caller: Some(super::apply::principal(&caller).map_err(&fail)?),
            time: record.time,
        };
        let executed = self.execute(&record, &arg, wasm, &input);
        let (outcome, time) = match executed {
            Ok(done) => done,
            Err(Exec::Input(why)) => return Err(fail(why)),
            Err(Exec::Runtime(e)) => match &record.outcome {
                Some(expected) => {
                    return Err(ReplayError::Diverged(Box::new(Divergence {
                        record: number,
                        line: entry.line,
                        message: record.describe(),
                        diffs: vec![FieldDiff {
                            field: "outcome",
                            expected: match (&expected.reply, &expected.reject) {
                                (_, Some(r)) => describe_reject(r),
                                (Some(b), None) => format!("reply {}", hex_around(b, 0)),
                                (None, None) => "an outcome".into(),
                            },
                            got: format!("error: {e}"),
                        }],
                    })));
                }
                None => return Err(fail(e.to_string())),
            },
        };
        // An old record (hash format 2) is compared with the memory hash it recorded.
        let format = record
            .outcome
            .as_ref()
            .map_or(HASH_FORMAT, |o| o.hash_format);
        let (messages, state_hash) = match self.subnet.canister(canister_id(0)) {
            Some(c) => (c.clock().messages, hex::encode(hash_of(c, format))),
            None => (0, String::new()),
        };
        let mut got = RecordedOutcome::new(&outcome, messages, state_hash);
        got.hash_format = format;
        match &record.outcome {
            Some(expected) => {
                let diffs = compare(expected, &got);
                if !diffs.is_empty() {
                    return Err(ReplayError::Diverged(Box::new(Divergence {
                        record: number,
                        line: entry.line,
                        message: record.describe(),
                        diffs,
                    })));
                }
            }
            None => self.summary.filled += 1,
        }
        self.count(record.kind, &got);
        if self.options.record {
            record.caller = Some(caller);
            record.time = Some(time);
            if record.kind == Kind::Install {
                record.stable_mode = Some(record.stable_mode.unwrap_or_default());
            }
            record.arg = arg;
            record.candid = None;
            record.outcome = Some(got);
            self.completed.push(record);
        }
        Ok(true)
    }

    /// Executes a subnet record ([`Record::on_subnet`]) through [`super::apply`], the path
    /// the CLI ran it on, and compares its outcome.
    fn step_subnet(
        &mut self,
        number: usize,
        line: usize,
        mut record: Record,
        arg: Vec<u8>,
        wasm: Option<Vec<u8>>,
    ) -> Result<bool, ReplayError> {
        let fail = |why: String| ReplayError::Record {
            record: number,
            line,
            why,
        };
        let applied = super::apply::apply(&mut self.subnet, &record, &arg, wasm).map_err(fail)?;
        let applied = match applied {
            Ok(applied) => applied,
            Err(e) => {
                return Err(match &record.outcome {
                    Some(_) => ReplayError::Diverged(Box::new(Divergence {
                        record: number,
                        line,
                        message: record.describe(),
                        diffs: vec![FieldDiff {
                            field: "outcome",
                            expected: "an outcome".into(),
                            got: format!("error: {e}"),
                        }],
                    })),
                    None => fail(e.to_string()),
                });
            }
        };
        let mut diffs = match &record.outcome {
            Some(expected) => compare(expected, &applied.outcome),
            None => {
                self.summary.filled += 1;
                Vec::new()
            }
        };
        if record.kind == Kind::Install
            && let Some(expected) = &record.canister
            && applied.canister.map(|p| p.as_slice().to_vec()) != Some(expected.0.clone())
            && applied.outcome.reject.is_none()
        {
            diffs.insert(
                0,
                FieldDiff {
                    field: "canister",
                    expected: expected.to_text(),
                    got: applied.canister.map_or("none".into(), |p| p.to_text()),
                },
            );
        }
        if !diffs.is_empty() {
            return Err(ReplayError::Diverged(Box::new(Divergence {
                record: number,
                line,
                message: record.describe(),
                diffs,
            })));
        }
        self.count(record.kind, &applied.outcome);
        if self.options.record {
            if record.caller.is_none() {
                record.caller = Some(Caller::anonymous());
            }
            record.time = Some(applied.time);
            if record.kind == Kind::Install {
                record.stable_mode = Some(record.stable_mode.unwrap_or_default());
                if let Some(id) = applied.canister {
                    record.canister = Some(Caller(id.as_slice().to_vec()));
                }
            }
            record.arg = arg;
            record.candid = None;
            record.outcome = Some(applied.outcome);
            self.completed.push(record);
        }
        Ok(true)
    }

    fn count(&mut self, kind: Kind, got: &RecordedOutcome) {
        let s = &mut self.summary;
        s.messages += 1;
        s.caused += got.executed.len() as u64;
        match kind {
            Kind::Install => s.installs += 1,
            Kind::Update => s.updates += 1,
            Kind::Query => s.queries += 1,
            Kind::Upgrade => s.upgrades += 1,
            Kind::Tick => s.ticks += 1,
        }
        s.rejects += u64::from(got.reject.is_some());
        s.instructions += got.instructions;
        let pages = |r: &[[u64; 2]]| r.iter().map(|[a, b]| b - a + 1).sum::<u64>();
        s.dirty_heap_pages += pages(&got.dirty_heap);
        s.dirty_stable_pages += pages(&got.dirty_stable);
    }

    /// The module of an install or upgrade record; a `module_file` is read (relative to
    /// [`Options::base_dir`]) and, when recording, replaced by its hash.
    fn module(&mut self, record: &mut Record) -> Result<Vec<u8>, String> {
        if let Some(sha) = &record.module {
            return self.modules.get(sha);
        }
        let file = record
            .module_file
            .clone()
            .ok_or("the record names no module")?;
        let path = match &self.options.base_dir {
            Some(base) => base.join(&file),
            None => file,
        };
        let wasm = crate::load::read_module(&path).map_err(|e| e.to_string())?;
        let sha = self.modules.insert(wasm.clone());
        if self.options.record {
            record.module = Some(sha);
            record.module_file = None;
        }
        Ok(wasm)
    }

    /// The configuration a record runs with (the engine is the replay's).
    fn config(record: &Record, base: CanisterConfig) -> CanisterConfig {
        let defaults = CanisterConfig::default();
        base.stable_limit_pages(
            record
                .stable_limit_pages
                .unwrap_or(defaults.get_stable_limit_pages()),
        )
        .metering(record.metering.unwrap_or(true))
        .instruction_limits(record.limits())
    }

    /// Executes a record written before subnets (single-canister semantics) on the first
    /// canister.
    fn execute(
        &mut self,
        record: &Record,
        arg: &[u8],
        wasm: Option<Vec<u8>>,
        input: &MessageInput,
    ) -> Result<(Outcome, u64), Exec> {
        let first = canister_id(0);
        let method = record.method.as_deref().unwrap_or_default();
        if record.kind == Kind::Install {
            if self.subnet.system_state(first).is_some() {
                return Err(Exec::Input(
                    "a second install record: the canister is already installed".into(),
                ));
            }
            let base = self
                .subnet
                .canister_config(record.stable_mode.unwrap_or_default());
            let config = Self::config(record, base);
            let controller = input
                .caller
                .unwrap_or_else(|| Principal::from_slice(&ANONYMOUS));
            let wasm = wasm.unwrap_or_default();
            let time = Clock::default().next_time(input.time);
            return match Canister::create(wasm, config, controller) {
                Err(Error::StartTrapped(reject)) => Ok((Outcome::rejected(reject), time)),
                Err(e) => Err(Exec::Runtime(e)),
                Ok(mut canister) => {
                    let outcome = canister.init(arg, input).map_err(Exec::Runtime)?;
                    let time = canister.clock().last_time;
                    if outcome.result.is_ok() {
                        let system = canister.system().clone();
                        self.subnet.adopt(first, system, Some(canister), false);
                        self.sync_counters(time);
                    }
                    Ok((outcome, time))
                }
            };
        }
        let Some(canister) = self.subnet.canister_for_update(first) else {
            return Err(Exec::Input(
                "no canister: the log must start with a successful install".into(),
            ));
        };
        // Settings that change the instrumented module need a new instance.
        let config = Self::config(record, canister.config().clone());
        if config.get_stable_limit_pages() != canister.config().get_stable_limit_pages()
            || config.get_metering() != canister.config().get_metering()
        {
            let state = canister.to_state();
            *canister = Canister::from_state(state, config).map_err(Exec::Runtime)?;
        }
        canister.set_instruction_limits(record.limits());
        let outcome = match record.kind {
            Kind::Update => canister.update(method, arg, input),
            Kind::Query => {
                let time = input.time.unwrap_or(canister.clock().last_time);
                let outcome = canister.query(method, arg, input).map_err(Exec::Runtime)?;
                canister.set_instruction_limits(Default::default());
                return Ok((outcome, time));
            }
            Kind::Upgrade => canister.upgrade(wasm.unwrap_or_default(), arg, input),
            Kind::Install | Kind::Tick => unreachable!("handled above"),
        }
        .map_err(Exec::Runtime)?;
        canister.set_instruction_limits(Default::default());
        let time = canister.clock().last_time;
        self.sync_counters(time);
        Ok((outcome, time))
    }

    /// After a single-canister record: the subnet's clock follows the canister's, and the
    /// first canister id is taken (as when a single-canister directory opens as a subnet).
    fn sync_counters(&mut self, time: u64) {
        let mut counters = self.subnet.counters();
        counters.time = time;
        counters.next_canister = counters.next_canister.max(1);
        self.subnet.set_counters(counters);
    }

    /// The summary, once [`Replayer::step`] returned `Ok(false)`.
    pub fn finish(mut self) -> Summary {
        self.summary.wall = self.started.elapsed();
        self.summary.state_hash = self
            .subnet
            .canister(canister_id(0))
            .map(|c| hex::encode(c.state_hash()));
        self.summary.subnet_hash = hex::encode(self.subnet.state_hash());
        if self.options.record {
            self.summary.log = Some(Log::from_records(self.completed));
        }
        self.summary
    }

    /// The modules used (including those read from `module_file`s).
    pub fn modules(&self) -> &Modules {
        &self.modules
    }
}

/// Why a record could not be executed.
enum Exec {
    /// The record is unusable as written.
    Input(String),
    /// The runtime returned an error (unknown method, invalid module, ...).
    Runtime(crate::Error),
}

/// The hash of `canister` that a record of `hash_format` holds: the state hash, or for
/// records written before state format 3 the memory hash.
fn hash_of(canister: &Canister, hash_format: u32) -> crate::state::hash::Hash {
    if hash_format < HASH_FORMAT {
        canister.memory_hash()
    } else {
        canister.state_hash()
    }
}

/// Replays `log` from its install record (see [`Replayer`]).
pub fn replay(log: Log, modules: Modules, options: Options) -> Result<Summary, ReplayError> {
    let mut replayer = Replayer::new(log, modules, options);
    while replayer.step()? {}
    Ok(replayer.finish())
}

/// What a state directory holds, for checking a replay of its log against it.
#[derive(Debug)]
pub struct DirState {
    dir: PathBuf,
    /// The messages the first canister's state reflects ([`Clock::messages`]).
    pub messages: u64,
    /// The first canister's state hash (hex; empty without one).
    pub state_hash: String,
    /// The subnet's state hash (hex).
    pub subnet_hash: String,
    /// The directory is a subnet directory (state format 4), not a single-canister one.
    pub is_subnet: bool,
    /// Where the log stood at the live checkpoint (format 3 and 4 directories).
    log: Option<LogPosition>,
    /// The directory stays locked while its log is read and replayed.
    open: PersistentSubnet,
}

impl DirState {
    /// Opens the subnet in `dir` (holding the directory's lock until dropped) and reads its
    /// log, checked against the live commit: length, line count and hash chain up to the
    /// commit's record.
    pub fn read(dir: &Path) -> Result<(DirState, Log), ReplayError> {
        let stored = PersistentSubnet::open(dir, CanisterConfig::default())?;
        let path = dir.join(FILE_NAME);
        let bytes = std::fs::read(&path).map_err(|source| crate::Error::Io {
            path: path.clone(),
            source,
        })?;
        let log = stored.log_position();
        if let Some(pos) = &log {
            crate::state::log_file::verify_prefix(&bytes, pos).map_err(|why| {
                ReplayError::Runtime(crate::Error::State(crate::error::StateError::Corrupt {
                    path: path.clone(),
                    why,
                }))
            })?;
        }
        let parsed = Log::parse(&bytes, &path)?;
        let first = stored.subnet().canister(canister_id(0));
        let state = DirState {
            dir: dir.to_path_buf(),
            messages: first.map_or(0, |c| c.clock().messages),
            state_hash: first.map_or(String::new(), |c| hex::encode(c.state_hash())),
            subnet_hash: hex::encode(stored.subnet().state_hash()),
            is_subnet: stored.format() == crate::state::subnet_dir::SUBNET_FORMAT,
            log,
            open: stored,
        };
        Ok((state, parsed))
    }

    /// The subnet as opened (a replay `--from` this directory starts from a copy of it).
    pub fn subnet(&self) -> &PersistentSubnet {
        &self.open
    }

    /// Checks that `log` records as many messages as the state reflects. In a format-2
    /// directory a crash between a commit and its log append lost the last record; in format 3
    /// and 4 the checkpoint holds its record, so a difference means the log was changed.
    pub fn check_log(&self, log: &Log) -> Result<(), ReplayError> {
        if self.is_subnet {
            // The commit's record position was checked against the log's bytes already.
            return Ok(());
        }
        let logged = log.records().filter(|r| r.kind.ticks()).count() as u64;
        if logged == self.messages {
            return Ok(());
        }
        Err(ReplayError::Directory(format!(
            "{}: the state reflects {} messages but the log records {logged}{}",
            self.dir.display(),
            self.messages,
            match (self.log.is_some(), logged < self.messages) {
                (false, true) => {
                    " (the last record was lost: a crash between the commit and the log append, \
                     in a directory written before state format 3)"
                }
                (true, _) => " (the log does not belong to this state)",
                (false, false) => "",
            }
        )))
    }

    /// Checks that the replay ended in this state.
    pub fn check_summary(&self, summary: &Summary) -> Result<(), ReplayError> {
        let (got, expected) = if self.is_subnet {
            (
                Some(summary.subnet_hash.as_str()),
                self.subnet_hash.as_str(),
            )
        } else {
            (summary.state_hash.as_deref(), self.state_hash.as_str())
        };
        if got == Some(expected) {
            return Ok(());
        }
        Err(ReplayError::Directory(format!(
            "{}: the replayed state hash {} differs from the directory's {}",
            self.dir.display(),
            got.unwrap_or("(none)"),
            expected
        )))
    }
}

/// Replays the log of state directory `dir` with its own modules, then checks that the replayed
/// state is the directory's: the same message count and state hash ([`DirState`]).
/// `on_step(done, total)` is called after every record (for a progress bar).
pub fn replay_dir(
    dir: &Path,
    mut options: Options,
    mut on_step: impl FnMut(usize, usize),
) -> Result<Summary, ReplayError> {
    let (state, log) = DirState::read(dir)?;
    state.check_log(&log)?;
    options.base_dir.get_or_insert_with(|| dir.to_path_buf());
    let mut replayer = Replayer::new(log, Modules::dir(dir.join(MODULES_DIR)), options);
    let total = replayer.len();
    while replayer.step()? {
        on_step(replayer.position(), total);
    }
    let summary = replayer.finish();
    state.check_summary(&summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::InstructionLimits;
    use crate::runtime::persistent::PersistentCanister;

    const NO_ARG: &[u8] = b"DIDL\0\0";

    fn counter() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/counter.wat");
        crate::load::read_module(&path).unwrap()
    }

    #[test]
    fn records_run_with_the_settings_they_were_recorded_with() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let none = MessageInput::default();
        let (c, _) =
            PersistentCanister::install(&dir, counter(), NO_ARG, CanisterConfig::default(), &none)
                .unwrap();
        drop(c);
        // Unmetered, a small stable limit, a tight instruction limit, the defaults again.
        let tight = InstructionLimits {
            update: 5,
            ..InstructionLimits::default()
        };
        for config in [
            CanisterConfig::default().metering(false),
            CanisterConfig::default().stable_limit_pages(10),
            CanisterConfig::default().instruction_limits(tight),
            CanisterConfig::default(),
        ] {
            let mut c = PersistentCanister::open(&dir, config).unwrap();
            c.update("inc", NO_ARG, &none).unwrap();
        }
        let log = Log::read(&dir.join(FILE_NAME)).unwrap();
        let r: Vec<&Record> = log.records().collect();
        assert_eq!(r[1].metering, Some(false));
        assert_eq!(r[1].outcome.as_ref().unwrap().instructions, 0);
        assert_eq!(r[2].stable_limit_pages, Some(10));
        assert!(r[2].outcome.as_ref().unwrap().instructions > 0);
        assert_eq!(r[3].instruction_limit, Some(5));
        assert!(r[3].outcome.as_ref().unwrap().reject.is_some());
        assert_eq!(r[4].instruction_limit, None);

        let summary = replay_dir(&dir, Options::default(), |_, _| {}).unwrap();
        assert_eq!((summary.messages, summary.rejects), (5, 1));

        // Without its setting, the unmetered record diverges (it counts instructions now).
        let mut records: Vec<Record> = log.records().cloned().collect();
        records[1].metering = None;
        let modules = Modules::dir(dir.join(MODULES_DIR));
        match replay(Log::from_records(records), modules, Options::default()) {
            Err(ReplayError::Diverged(d)) => {
                assert_eq!((d.record, d.field()), (2, "instructions"));
                assert!(d.to_string().contains("expected: 0"), "{d}");
            }
            other => panic!("expected a divergence, got {other:?}"),
        }
    }

    #[test]
    fn a_checkpoint_skips_what_it_reflects() {
        let none = MessageInput::default();
        let mut recorder = crate::replay::Recorder::new();
        recorder
            .install(counter(), NO_ARG, CanisterConfig::default(), &none)
            .unwrap();
        recorder.update("inc", NO_ARG, &none).unwrap();
        recorder.query("read", NO_ARG, &none).unwrap();
        let checkpoint = recorder.canister().unwrap().to_state();
        recorder.update("inc", NO_ARG, &none).unwrap();
        let (log, modules) = recorder.into_log();
        let full = replay(log.clone(), modules.clone(), Options::default()).unwrap();

        let mut subnet = Subnet::new(CanisterConfig::default());
        let config = subnet.canister_config(checkpoint.stable_mode);
        let system = checkpoint.system.clone();
        let canister = Canister::from_state(checkpoint, config).unwrap();
        subnet.adopt(canister_id(0), system, Some(canister), false);
        let mut from =
            Replayer::from_checkpoint(log, modules, subnet, 2, Options::default()).unwrap();
        // Install and the first update are skipped; the query after them is re-executed.
        assert_eq!(from.position(), 2);
        while from.step().unwrap() {}
        let from = from.finish();
        assert_eq!((from.skipped, from.messages), (2, 2));
        assert_eq!(from.state_hash, full.state_hash);
    }
}
