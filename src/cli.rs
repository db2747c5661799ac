//! The command-line interface: a thin layer over the library.
//!
//! Exit status: 0 for a reply, 1 for a reject or trap (reason on stderr), 2 for bad usage or
//! invalid input (always one line on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::candid_text::{decode_reply, encode_args};
use crate::error::Error;
use crate::replay::{Caller, Kind, Record};
use crate::runtime::ic0::api::WASM_PAGE_SIZE;
use crate::runtime::persistent::{Executed, PersistentSubnet};
use crate::runtime::{CanisterConfig, Engine, Outcome};
use crate::state::StableMode;

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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// Candid text, like `dfx canister call`.
    Candid,
    /// The raw reply bytes in hex.
    Hex,
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
        /// Argument for `canister_init`, as Candid text.
        #[arg(long)]
        arg: Option<String>,
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
        /// Argument as Candid text; default `()`.
        candid: Option<String>,
        /// Call a query method (changes are discarded).
        #[arg(long)]
        query: bool,
        /// How to print the reply.
        #[arg(long, value_enum, default_value = "candid")]
        output: OutputFormat,
        /// Print execution statistics on stderr: instructions, dirty 4 KiB heap and stable pages,
        /// 4 KiB pages the checkpoint wrote to disk.
        #[arg(long)]
        stats: bool,
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
        /// Argument for `canister_post_upgrade`, as Candid text.
        #[arg(long)]
        arg: Option<String>,
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
    /// Show every canister (name, principal, module hash, sizes, methods) and the subnet's root
    /// key.
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

fn arg_bytes(text: Option<&str>) -> Result<Vec<u8>, Error> {
    encode_args(text.unwrap_or("()"))
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
            stable,
            msg,
        } => {
            let module = crate::load::read_module(&wasm)?;
            let arg = arg_bytes(arg.as_deref())?;
            let mut record = msg.record(Kind::Install)?;
            record.stable_mode = Some(stable.into());
            record.name = name;
            let created = !state.exists();
            let mut subnet = PersistentSubnet::open_or_create(&state, msg.config())?;
            let done = subnet.execute(record, &arg, Some(module));
            if subnet.is_empty() {
                // Nothing was committed: a directory this call created goes again.
                drop(subnet);
                if created {
                    crate::state::lock::remove_lock_file(&state);
                    let _ = std::fs::remove_dir(&state);
                }
            }
            let done = done.with_context(|| wasm.display().to_string())?;
            let exit = report(&done.applied.message, Some(&done));
            if let Some(id) = done.applied.canister {
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
            query,
            output,
            stats,
            msg,
        } => {
            let arg = arg_bytes(candid.as_deref())?;
            let mut subnet = PersistentSubnet::open(&dir, msg.config())?;
            let id = target(&subnet, &dir, canister.as_deref())?;
            if id == candid::Principal::management_canister() {
                if query {
                    anyhow::bail!(
                        "the management canister has no query methods: call it without --query"
                    );
                }
            } else if let Some(c) = subnet.subnet().canister(id) {
                c.require_method(&method, query)?;
            }
            let mut record = msg.record(if query { Kind::Query } else { Kind::Update })?;
            record.canister = Some(Caller(id.as_slice().to_vec()));
            record.method = Some(method);
            let done = subnet.execute(record, &arg, None)?;
            let outcome = &done.applied.message;
            if let Ok(bytes) = &outcome.result {
                match output {
                    OutputFormat::Candid => println!("{}", decode_reply(bytes)),
                    OutputFormat::Hex => println!("{}", hex::encode(bytes)),
                }
            }
            if stats {
                eprintln!("instructions: {}", outcome.instructions);
                eprintln!("dirty heap pages: {}", outcome.dirty.heap.len());
                eprintln!("dirty stable pages: {}", outcome.dirty.stable.len());
                if let Some(o) = &done.record.outcome
                    && !o.executed.is_empty()
                {
                    let caused: u64 = o.executed.iter().map(|e| e.instructions).sum();
                    eprintln!(
                        "messages caused: {} ({caused} instructions)",
                        o.executed.len()
                    );
                }
                // The delta checkpoint after the message (a query writes nothing).
                eprintln!("pages written to disk: {}", done.commit.pages_written);
            }
            Ok(report(outcome, Some(&done)))
        }
        Command::Upgrade {
            dir,
            wasm,
            canister,
            arg,
            msg,
        } => {
            let module = crate::load::read_module(&wasm)?;
            let arg = arg_bytes(arg.as_deref())?;
            let mut subnet = PersistentSubnet::open(&dir, msg.config())?;
            let id = target(&subnet, &dir, canister.as_deref())?;
            let mut record = msg.record(Kind::Upgrade)?;
            record.canister = Some(Caller(id.as_slice().to_vec()));
            let done = subnet
                .execute(record, &arg, Some(module))
                .with_context(|| wasm.display().to_string())?;
            let exit = report(&done.applied.message, Some(&done));
            if done.applied.message.result.is_ok() {
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
    println!("version:       {}", sys.canister_version);
    println!("messages:      {}", c.clock().messages);
    let m = c.methods();
    println!("updates:       {}", m.updates.join(", "));
    println!("queries:       {}", m.queries.join(", "));
    println!("hooks:         {}", m.hooks.join(", "));
}
