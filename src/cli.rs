//! The command-line interface: a thin layer over the library.
//!
//! Exit status: 0 for a reply, 1 for a reject or trap (reason on stderr), 2 for bad usage or
//! invalid input (always one line on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::candid_text::{Interface, decode_reply, encode_args};
use crate::error::Error;
use crate::replay::{Caller, Kind, Record};
use crate::runtime::ic0::api::WASM_PAGE_SIZE;
use crate::runtime::persistent::{Executed, PersistentSubnet};
use crate::runtime::{CanisterConfig, Engine, Outcome};
use crate::state::StableMode;

mod bench;
mod replay;

/// canister-vm: run Internet Computer canisters locally, deterministically, on wasmi.
#[derive(Debug, Parser)]
#[command(name = "canister-vm", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StableArg {
    /// Stable memory is an injected memory64 memory (Wasm-native).
    Native,
    /// Stable memory is reached through host calls (the IC's system API; baseline).
    Syscall,
}

impl From<StableArg> for StableMode {
    fn from(s: StableArg) -> Self {
        match s {
            StableArg::Native => StableMode::Native,
            StableArg::Syscall => StableMode::Syscall,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineArg {
    /// The wasmi interpreter.
    Wasmi,
    /// The wasmtime JIT (builds with the `wasmtime` cargo feature only).
    Wasmtime,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Wasmi => Engine::Wasmi,
            EngineArg::Wasmtime => Engine::Wasmtime,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// Candid text, like `dfx canister call` (field names from the canister's interface).
    Candid,
    /// JSON in the convention of dfinity's `idl2json` (README, "Candid").
    Json,
    /// The reply bytes in hex.
    Hex,
    /// The reply bytes as they are.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatsFormat {
    /// `name: value` lines.
    Text,
    /// One JSON object on one line.
    Json,
}

#[derive(Debug, clap::Args)]
struct MessageArgs {
    /// Caller principal (text form); default: the anonymous principal.
    #[arg(long)]
    caller: Option<String>,
    /// `ic0.time` for this message in nanoseconds; default: the previous message's time + 1 s.
    #[arg(long)]
    time: Option<u64>,
    /// Instruction limit for this message (default: the IC's, 40 B for updates, 5 B for
    /// queries, 300 B for install and upgrade).
    #[arg(long, value_name = "N")]
    instruction_limit: Option<u64>,
    /// The engine that runs the message (wasmtime needs a build with `--features wasmtime`).
    #[arg(long, value_enum, default_value = "wasmi")]
    engine: EngineArg,
}

impl MessageArgs {
    /// The configuration the subnet's canisters run with.
    fn config(&self) -> CanisterConfig {
        CanisterConfig::default().engine(self.engine.into())
    }

    /// A record of `kind` with this message's caller, time and instruction limit.
    fn record(&self, kind: Kind) -> anyhow::Result<Record> {
        let mut record = Record::new(kind);
        if let Some(text) = &self.caller {
            let p = candid::Principal::from_text(text)
                .map_err(|e| anyhow::anyhow!("invalid --caller principal `{text}`: {e}"))?;
            record.caller = Some(Caller(p.as_slice().to_vec()));
        }
        record.time = self.time;
        record.instruction_limit = self.instruction_limit;
        Ok(record)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install a canister module (.wasm, .wasm.gz or .wat) as a new canister of a state
    /// directory (created if needed); the last line printed is the new canister's principal.
    Install {
        /// The module.
        wasm: PathBuf,
        /// The state directory (created if it does not exist).
        #[arg(long)]
        state: PathBuf,
        /// A name to call the canister by (`call --canister NAME`).
        #[arg(long)]
        name: Option<String>,
        /// Argument for `canister_init`, as Candid text (typed by the interface's init types).
        #[arg(long)]
        arg: Option<String>,
        /// The canister's Candid interface (a `.did` file), recorded in the state directory;
        /// default: the module's `candid:service` metadata.
        #[arg(long, value_name = "FILE")]
        did: Option<PathBuf>,
        /// How stable memory is reached (recorded in the state directory).
        #[arg(long, value_enum, default_value = "native")]
        stable: StableArg,
        #[command(flatten)]
        msg: MessageArgs,
    },
    /// Call a method of an installed canister (or of the management canister, `aaaaa-aa`).
    Call {
        /// The state directory.
        dir: PathBuf,
        /// Method name.
        method: String,
        /// The canister: its name or principal, or `aaaaa-aa` for the management canister.
        /// Default: the directory's only canister.
        #[arg(long)]
        canister: Option<String>,
        /// Argument as Candid text, typed by the method's signature in the canister's interface
        /// where it has one; default `()`.
        candid: Option<String>,
        /// The Candid interface to type this call with (a `.did` file), instead of the one
        /// recorded at install or the module's `candid:service` metadata.
        #[arg(long, value_name = "FILE")]
        did: Option<PathBuf>,
        /// Call a query method (changes are discarded).
        #[arg(long)]
        query: bool,
        /// How to print the reply.
        #[arg(long, value_enum, default_value = "candid")]
        output: OutputFormat,
        /// Print execution statistics on stderr: instructions, dirty 4 KiB heap and stable pages,
        /// 4 KiB pages the checkpoint wrote to disk (`--stats-format json` adds the wall time).
        #[arg(long)]
        stats: bool,
        /// How `--stats` prints (implies `--stats`).
        #[arg(long, value_enum, value_name = "FORMAT")]
        stats_format: Option<StatsFormat>,
        #[command(flatten)]
        msg: MessageArgs,
    },
    /// Upgrade a canister to a new module, keeping stable memory.
    Upgrade {
        /// The state directory.
        dir: PathBuf,
        /// The new module.
        wasm: PathBuf,
        /// The canister (name or principal); default: the directory's only canister.
        #[arg(long)]
        canister: Option<String>,
        /// Argument for `canister_post_upgrade`, as Candid text (typed by the new interface's
        /// init types).
        #[arg(long)]
        arg: Option<String>,
        /// The new module's Candid interface (a `.did` file), recorded in place of the old one;
        /// without it, the recorded interface is dropped (the new module's metadata is used).
        #[arg(long, value_name = "FILE")]
        did: Option<PathBuf>,
        #[command(flatten)]
        msg: MessageArgs,
    },
    /// Advance the subnet's time and run heartbeats and due global timers (and every message
    /// they cause).
    Tick {
        /// The state directory.
        dir: PathBuf,
        /// Seconds to advance.
        #[arg(long, default_value_t = 1)]
        seconds: u64,
        /// The engine that runs the messages.
        #[arg(long, value_enum, default_value = "wasmi")]
        engine: EngineArg,
    },
    /// Show every canister (name, principal, module hash, sizes, methods, Candid interface),
    /// the subnet's root key, hash and clock, and the message log's length.
    Info {
        /// The state directory.
        dir: PathBuf,
    },
    /// Instrument a module and write the result.
    Instrument {
        /// The input module.
        input: PathBuf,
        /// Where to write the instrumented module.
        #[arg(short, long)]
        output: PathBuf,
        /// How stable memory is reached.
        #[arg(long, value_enum, default_value = "native")]
        stable: StableArg,
        /// Leave out instruction counting.
        #[arg(long)]
        no_metering: bool,
    },
    /// Replay a message log: rebuild the canister from its install record in memory, re-execute
    /// every record and compare every outcome (exit 1 at the first divergence).
    Replay(replay::ReplayArgs),
    /// Run a canister's canbench benchmarks (`canbench.yml`, `canbench_results.yml`) in process.
    Bench(bench::BenchArgs),
}

/// What the CLI exits with after printing.
enum Exit {
    Reply,
    Reject,
}

/// Runs the CLI with the process arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli) {
        Ok(Exit::Reply) => ExitCode::SUCCESS,
        Ok(Exit::Reject) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// Prints a command-line parse error as the one `error:` line the exit-status contract promises
/// (`--help` and `--version` print in full and exit 0).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Help asked for (or a bare `canister-vm`): clap's own text.
        let _ = e.print();
        return match e.kind() {
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::from(2),
            _ => ExitCode::SUCCESS,
        };
    }
    eprintln!("error: {}", usage_line(&e.render().to_string()));
    ExitCode::from(2)
}

/// clap's multi-line error text (`error: …`, indented details, `Usage: …`, a `--help` hint) as
/// one line: the message and its details, the usage, and where to read more.
fn usage_line(rendered: &str) -> String {
    let mut message: Vec<&str> = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim());
        } else if line.is_empty() || line.starts_with("For more information") {
            continue;
        } else if usage.is_none() {
            message.push(line.strip_prefix("error:").unwrap_or(line).trim());
        }
    }
    let mut text = message.join(" ");
    if let Some(usage) = usage {
        let command = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['<', '[', '-']))
            .collect::<Vec<_>>()
            .join(" ");
        text.push_str(&format!(" (usage: {usage}; see `{command} --help`)"));
    }
    text
}

/// The longest a single part of an error line may be: inputs echoed back in errors (a garbage
/// module, a huge Candid argument) are cut to this many bytes.
const MAX_ERROR_PART: usize = 400;

/// `text` cut to about `max` bytes (at a character boundary), saying how much was left out.
fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// The error and its sources on one line, each part cut to [`MAX_ERROR_PART`] bytes.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts
        .into_iter()
        .map(|p| truncate(p, MAX_ERROR_PART))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Where a canister's interface came from.
enum InterfaceSource {
    /// `--did` of this command.
    Flag(PathBuf),
    /// Recorded at install or upgrade (`interfaces/<principal>.did`).
    Recorded,
    /// The module's `candid:service` metadata.
    Metadata,
}

impl std::fmt::Display for InterfaceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterfaceSource::Flag(path) => write!(f, "{}", path.display()),
            InterfaceSource::Recorded => f.write_str("recorded with --did"),
            InterfaceSource::Metadata => f.write_str("candid:service metadata"),
        }
    }
}

/// Reads and parses a `.did` file, with its imports (an error names the file).
fn read_did(path: &std::path::Path) -> anyhow::Result<Interface> {
    Interface::read_file(path).with_context(|| path.display().to_string())
}

/// The interface of a module's metadata; metadata that does not parse is a warning (calls are
/// then untyped), not an error: the module is the canister's, whatever its metadata says.
fn module_interface(wasm: &[u8]) -> Option<Interface> {
    match Interface::from_module(wasm) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("warning: {e}; arguments and replies are untyped");
            None
        }
    }
}

/// The interface that types calls to `id`: `--did`, else the one recorded with install or
/// upgrade, else the module's metadata.
fn interface_of(
    subnet: &PersistentSubnet,
    id: candid::Principal,
    did: Option<&std::path::Path>,
) -> anyhow::Result<Option<(Interface, InterfaceSource)>> {
    if let Some(path) = did {
        return Ok(Some((read_did(path)?, InterfaceSource::Flag(path.into()))));
    }
    if id == candid::Principal::management_canister() {
        return Ok(None);
    }
    if let Some(text) = subnet.dir().interface(&id.to_text())? {
        let path = subnet.dir().path().join("interfaces");
        let interface = Interface::parse(&text)
            .with_context(|| format!("{}: the interface recorded for {id}", path.display()))?;
        return Ok(Some((interface, InterfaceSource::Recorded)));
    }
    Ok(subnet
        .subnet()
        .canister(id)
        .and_then(|c| module_interface(c.wasm()))
        .map(|i| (i, InterfaceSource::Metadata)))
}

/// The bytes of an install or upgrade argument: typed by the interface's init types where it
/// names them.
fn init_bytes(interface: Option<&Interface>, text: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let text = text.unwrap_or("()");
    match interface.and_then(|i| i.encode_init(text)) {
        Some(typed) => Ok(typed?),
        None => Ok(encode_args(text)?),
    }
}

/// Prints a reply in the chosen format, decoded with the method's result types where the
/// interface lists the method.
fn print_reply(
    bytes: &[u8],
    interface: Option<&Interface>,
    method: &str,
    output: OutputFormat,
) -> anyhow::Result<()> {
    use std::io::Write;
    let decoded = || match interface.and_then(|i| i.decode_reply(method, bytes)) {
        Some(Ok(args)) => Some(args),
        Some(Err(why)) => {
            eprintln!("warning: {why}; printed untyped");
            candid::IDLArgs::from_bytes(bytes).ok()
        }
        None => candid::IDLArgs::from_bytes(bytes).ok(),
    };
    match output {
        OutputFormat::Candid => match decoded() {
            Some(args) => println!("{args}"),
            None => println!("{}", decode_reply(bytes)),
        },
        OutputFormat::Json => match decoded() {
            Some(args) => println!("{}", crate::candid_text::json::args_to_json(&args)),
            None => anyhow::bail!(
                "the reply is not Candid, so it has no JSON form: {} (use --output hex)",
                truncate(hex::encode(bytes), MAX_ERROR_PART)
            ),
        },
        OutputFormat::Hex => println!("{}", hex::encode(bytes)),
        OutputFormat::Raw => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .context("writing the reply to stdout")?;
        }
    }
    Ok(())
}

/// `call --stats`: the message's figures on stderr, as lines or as one JSON object (keys:
/// `instructions`, `dirty_heap_pages`, `dirty_stable_pages`, `messages_caused`,
/// `instructions_caused`, `pages_written`, `wall_time_ms`). The lines hold only what the same
/// history reproduces on every engine and host (the wall time is in the JSON only), so runs can
/// be compared line by line.
fn print_stats(done: &Executed, wall: std::time::Duration, format: StatsFormat) {
    let outcome = &done.applied.message;
    let executed = done
        .record
        .outcome
        .as_ref()
        .map_or(&[][..], |o| &o.executed[..]);
    let caused: u64 = executed.iter().map(|e| e.instructions).sum();
    let wall_ms = wall.as_secs_f64() * 1e3;
    match format {
        StatsFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "instructions": outcome.instructions,
                "dirty_heap_pages": outcome.dirty.heap.len(),
                "dirty_stable_pages": outcome.dirty.stable.len(),
                "messages_caused": executed.len(),
                "instructions_caused": caused,
                "pages_written": done.commit.pages_written,
                "wall_time_ms": (wall_ms * 1e3).round() / 1e3,
            })
        ),
        StatsFormat::Text => {
            eprintln!("instructions: {}", outcome.instructions);
            eprintln!("dirty heap pages: {}", outcome.dirty.heap.len());
            eprintln!("dirty stable pages: {}", outcome.dirty.stable.len());
            if !executed.is_empty() {
                eprintln!(
                    "messages caused: {} ({caused} instructions)",
                    executed.len()
                );
            }
            // The delta checkpoint after the message (a query writes nothing).
            eprintln!("pages written to disk: {}", done.commit.pages_written);
        }
    }
}

/// Refuses `--time` earlier than the subnet's clock: time on a subnet never goes back.
fn check_time(subnet: &PersistentSubnet, msg: &MessageArgs) -> anyhow::Result<()> {
    let now = subnet.subnet().time();
    match msg.time {
        Some(t) if t < now => anyhow::bail!(
            "--time {t} is earlier than the subnet's clock ({now} ns, `info` shows it): time on a \
             subnet never goes back; give a later time or leave --time out (the clock then \
             advances by 1 s)"
        ),
        _ => Ok(()),
    }
}

/// After a reject: where it is the instruction limit, says which limit and how to change it.
fn limit_hint(outcome: &Outcome, kind: Kind, msg: &MessageArgs) {
    let Err(reject) = &outcome.result else { return };
    if !reject
        .message
        .ends_with("instructions for single message execution.")
    {
        return;
    }
    let defaults = crate::runtime::InstructionLimits::default();
    let (limit, what) = match (msg.instruction_limit, kind) {
        (Some(n), _) => (n, "given with --instruction-limit"),
        (None, Kind::Install | Kind::Upgrade) => {
            (defaults.install, "the IC's for an install or upgrade")
        }
        (None, Kind::Query) => (defaults.query, "the IC's for a query"),
        (None, _) => (defaults.update, "the IC's for an update"),
    };
    eprintln!(
        "hint: the message used up its limit of {limit} instructions ({what}); \
         raise it with --instruction-limit <N>"
    );
}

/// Prints the debug output of a message and of every message it caused, and the reject, if
/// any; returns the exit kind.
fn report(outcome: &Outcome, done: Option<&Executed>) -> Exit {
    for line in &outcome.debug_log {
        eprintln!("[canister] {line}");
    }
    if let Some(o) = done.and_then(|d| d.record.outcome.as_ref()) {
        for e in &o.executed {
            for line in &e.debug {
                eprintln!("[canister {}] {line}", e.canister.to_text());
            }
        }
    }
    match &outcome.result {
        Ok(_) => Exit::Reply,
        Err(reject) => {
            eprintln!("{reject}");
            Exit::Reject
        }
    }
}

/// The canister a command is for: `--canister` (a name or principal), or the only one.
fn target(
    subnet: &PersistentSubnet,
    dir: &std::path::Path,
    name: Option<&str>,
) -> anyhow::Result<candid::Principal> {
    match name {
        Some(name) => subnet.resolve(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no canister `{name}` (canisters: {})",
                dir.display(),
                list(subnet)
            )
        }),
        None => match subnet.subnet().canister_ids().as_slice() {
            [only] => Ok(*only),
            [] => Err(Error::State(crate::error::StateError::NoCanister {
                path: dir.to_path_buf(),
            })
            .into()),
            _ => Err(anyhow::anyhow!(
                "{} holds several canisters: name one with --canister (canisters: {})",
                dir.display(),
                list(subnet)
            )),
        },
    }
}

fn list(subnet: &PersistentSubnet) -> String {
    subnet
        .subnet()
        .canister_ids()
        .iter()
        .map(|id| match subnet.name_of(*id) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Install {
            wasm,
            state,
            name,
            arg,
            did,
            stable,
            msg,
        } => {
            let module = crate::load::read_module(&wasm)?;
            let given = did.as_deref().map(read_did).transpose()?;
            let interface = given.clone().or_else(|| module_interface(&module));
            let arg = init_bytes(interface.as_ref(), arg.as_deref())?;
            let mut record = msg.record(Kind::Install)?;
            record.stable_mode = Some(stable.into());
            record.name = name;
            let created = !state.exists();
            let mut subnet = PersistentSubnet::open_or_create(&state, msg.config())?;
            if let Err(e) = check_time(&subnet, &msg) {
                drop(subnet);
                if created {
                    crate::state::lock::remove_lock_file(&state);
                    let _ = std::fs::remove_dir(&state);
                }
                return Err(e);
            }
            let done = subnet.execute(record, &arg, Some(module));
            let mut subnet = Some(subnet);
            if subnet.as_ref().is_some_and(PersistentSubnet::is_empty) {
                // Nothing was committed: a directory this call created goes again.
                subnet = None;
                if created {
                    crate::state::lock::remove_lock_file(&state);
                    let _ = std::fs::remove_dir(&state);
                }
            }
            let done = done.with_context(|| wasm.display().to_string())?;
            let exit = report(&done.applied.message, Some(&done));
            limit_hint(&done.applied.message, Kind::Install, &msg);
            if let Some(id) = done.applied.canister {
                if let (Some(given), Some(subnet)) = (&given, &subnet) {
                    // The whole interface, imports resolved, so that it parses on its own.
                    subnet
                        .dir()
                        .set_interface(&id.to_text(), Some(&given.pretty()))?;
                }
                println!(
                    "installed {} (module sha256 {}) in {}",
                    wasm.display(),
                    done.record.module.as_deref().unwrap_or_default(),
                    state.display()
                );
                println!("{id}");
            }
            Ok(exit)
        }
        Command::Call {
            dir,
            method,
            canister,
            candid,
            did,
            query,
            output,
            stats,
            stats_format,
            msg,
        } => {
            let mut subnet = PersistentSubnet::open(&dir, msg.config())?;
            let id = target(&subnet, &dir, canister.as_deref())?;
            let interface = interface_of(&subnet, id, did.as_deref())?;
            let interface = interface.as_ref().map(|(i, _)| i);
            let text = candid.as_deref().unwrap_or("()");
            let arg = match interface.and_then(|i| i.encode_args(&method, text)) {
                Some(typed) => typed?,
                None => encode_args(text)?,
            };
            check_time(&subnet, &msg)?;
            if id == candid::Principal::management_canister() {
                if query {
                    anyhow::bail!(
                        "the management canister has no query methods: call it without --query"
                    );
                }
            } else if let Some(c) = subnet.subnet().canister(id) {
                c.require_method(&method, query)?;
            }
            let kind = if query { Kind::Query } else { Kind::Update };
            let mut record = msg.record(kind)?;
            record.canister = Some(Caller(id.as_slice().to_vec()));
            record.method = Some(method.clone());
            let started = std::time::Instant::now();
            let done = subnet.execute(record, &arg, None)?;
            let wall = started.elapsed();
            let outcome = &done.applied.message;
            if let Ok(bytes) = &outcome.result {
                print_reply(bytes, interface, &method, output)?;
            }
            if stats || stats_format.is_some() {
                print_stats(&done, wall, stats_format.unwrap_or(StatsFormat::Text));
            }
            let exit = report(outcome, Some(&done));
            limit_hint(outcome, kind, &msg);
            Ok(exit)
        }
        Command::Upgrade {
            dir,
            wasm,
            canister,
            arg,
            did,
            msg,
        } => {
            let module = crate::load::read_module(&wasm)?;
            let given = did.as_deref().map(read_did).transpose()?;
            let interface = given.clone().or_else(|| module_interface(&module));
            let arg = init_bytes(interface.as_ref(), arg.as_deref())?;
            let mut subnet = PersistentSubnet::open(&dir, msg.config())?;
            let id = target(&subnet, &dir, canister.as_deref())?;
            check_time(&subnet, &msg)?;
            let mut record = msg.record(Kind::Upgrade)?;
            record.canister = Some(Caller(id.as_slice().to_vec()));
            let done = subnet
                .execute(record, &arg, Some(module))
                .with_context(|| wasm.display().to_string())?;
            let exit = report(&done.applied.message, Some(&done));
            limit_hint(&done.applied.message, Kind::Upgrade, &msg);
            if done.applied.message.result.is_ok() {
                // The interface belongs to the module: the new one's, or none recorded.
                subnet.dir().set_interface(
                    &id.to_text(),
                    given.as_ref().map(Interface::pretty).as_deref(),
                )?;
                println!(
                    "upgraded {id} in {} to {} (module sha256 {})",
                    dir.display(),
                    wasm.display(),
                    done.record.module.as_deref().unwrap_or_default()
                );
            }
            Ok(exit)
        }
        Command::Tick {
            dir,
            seconds,
            engine,
        } => {
            let mut subnet =
                PersistentSubnet::open(&dir, CanisterConfig::default().engine(engine.into()))?;
            let mut record = Record::new(Kind::Tick);
            record.seconds = Some(seconds);
            let done = subnet.execute(record, &[], None)?;
            let executed = done
                .record
                .outcome
                .as_ref()
                .map_or(&[][..], |o| &o.executed[..]);
            report(&done.applied.message, Some(&done));
            println!(
                "advanced time by {seconds} s to {} ns; ran {} messages",
                done.applied.time,
                executed.len()
            );
            for e in executed {
                let answer = match (&e.trapped, &e.reject) {
                    (true, _) => " (trapped)".to_string(),
                    (false, Some(r)) => format!(" (rejected: {})", r.message),
                    _ => String::new(),
                };
                println!(
                    "  {} ({} instructions){answer}",
                    e.describe(),
                    e.instructions
                );
            }
            Ok(Exit::Reply)
        }
        Command::Info { dir } => {
            let subnet = PersistentSubnet::open(&dir, CanisterConfig::default())?;
            let ids = subnet.subnet().canister_ids();
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                if let Some(name) = subnet.name_of(*id) {
                    println!("name:          {name}");
                }
                match subnet.subnet().canister(*id) {
                    Some(c) => print_info(c),
                    None => {
                        println!("canister id:   {id}");
                        println!("module:        (empty)");
                    }
                }
                if subnet.subnet().is_stopped(*id) == Some(true) {
                    println!("status:        stopped");
                }
                match interface_of(&subnet, *id, None) {
                    Ok(Some((interface, source))) => {
                        println!("interface:     ({source})");
                        for line in interface.pretty().lines() {
                            println!("  {line}");
                        }
                    }
                    Ok(None) => {
                        println!("interface:     (none: arguments and replies are untyped)")
                    }
                    Err(e) => println!("interface:     (unreadable: {})", one_line(&e)),
                }
            }
            println!();
            println!("subnet id:     {}", subnet.subnet().subnet_id());
            println!(
                "root key:      {}",
                hex::encode(subnet.subnet().root_key_der())
            );
            println!(
                "subnet hash:   {}",
                hex::encode(subnet.subnet().state_hash())
            );
            println!("time:          {} ns", subnet.subnet().time());
            let log = subnet.dir().path().join(crate::state::log_file::LOG_FILE);
            println!(
                "log records:   {} (installs, updates, queries, upgrades, ticks: the messages \
                 `replay` re-executes)",
                crate::state::log_file::count_records(&log)?
            );
            Ok(Exit::Reply)
        }
        Command::Instrument {
            input,
            output,
            stable,
            no_metering,
        } => {
            let module = crate::load::read_module(&input)?;
            let config = crate::instrument::Config::default()
                .stable(StableMode::from(stable))
                .metering(!no_metering);
            let out = crate::instrument::instrument(&module, &config)?;
            std::fs::write(&output, &out.wasm).map_err(|source| Error::Io {
                path: output.clone(),
                source,
            })?;
            println!("{}", out.summary);
            println!("wrote {} ({} bytes)", output.display(), out.wasm.len());
            Ok(Exit::Reply)
        }
        Command::Replay(args) => match replay::run(args)? {
            true => Ok(Exit::Reply),
            false => Ok(Exit::Reject),
        },
        Command::Bench(args) => bench::run(args),
    }
}

fn print_info(c: &crate::runtime::Canister) {
    let sys = c.system();
    println!(
        "canister id:   {}",
        candid::Principal::from_slice(&sys.canister_id).to_text()
    );
    println!("module sha256: {}", crate::state::sha256_hex(c.wasm()));
    println!("state hash:    {}", hex::encode(c.state_hash()));
    println!("stable mode:   {:?}", c.config().get_stable_mode());
    println!(
        "heap:          {} pages ({:?})",
        c.heap().len() as u64 / WASM_PAGE_SIZE,
        c.heap_type()
    );
    println!(
        "stable memory: {} pages",
        c.stable().len() as u64 / WASM_PAGE_SIZE
    );
    println!(
        "version:       {} (ic0.canister_version: +1 per install, upgrade and committed update)",
        sys.canister_version
    );
    println!(
        "messages:      {} (this canister's messages whose effects its state keeps)",
        c.clock().messages
    );
    let m = c.methods();
    println!("updates:       {}", m.updates.join(", "));
    println!("queries:       {}", m.queries.join(", "));
    println!("hooks:         {}", m.hooks.join(", "));
}
