//! `canister-vm bench`: canbench's workflow in one process.
//!
//! [canbench](https://github.com/dfinity/canbench) builds a canister, installs it on a PocketIC
//! server it downloads, runs every `canister_query __canbench__<name>` method (what canbench-rs's
//! `#[bench]` generates) and compares the `BenchResult` replies with `canbench_results.yml`.
//! This command does the same on an in-memory [`Subnet`]: it reads the same `canbench.yml`,
//! prints the same report (per-benchmark lines, summary, table of significant changes), and
//! reads and writes the same `canbench_results.yml` and `canbench_results.csv`, so a project can
//! switch between the two. The formats are those of canbench 0.7.0 and canbench-rs 0.7.0.
//!
//! Differences from canbench: paths and flags that only concern PocketIC (`--runtime-path`,
//! `--no-runtime-integrity-check`, `--instruction-tracing`) do not exist; `env_vars` is refused
//! (canisters here have no environment variables); bad input is one `error:` line and exit 2
//! where canbench panics; a benchmark that traps is reported and the others still run (canbench
//! stops at it), then the command exits 1 without persisting.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use candid::Principal;
use serde::{Deserialize, Serialize};

use super::{EngineArg, Exit};
use crate::runtime::subnet::{CallOptions, RestoredCanister, Subnet};
use crate::runtime::{CanisterConfig, InstructionLimits};

/// The configuration file canbench reads from the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "canbench.yml";
/// The environment variable canbench takes another configuration file from.
pub const CONFIG_FILE_ENV: &str = "CANBENCH_CFG_FILE";
/// canbench's default results file.
pub const DEFAULT_RESULTS_FILE: &str = "canbench_results.yml";
/// canbench's default CSV file.
pub const DEFAULT_CSV_RESULTS_FILE: &str = "canbench_results.csv";
/// The prefix of benchmark query methods (canbench-rs's `#[bench]` exports
/// `canister_query __canbench__<name>`).
pub const BENCH_PREFIX: &str = "__canbench__";
/// The canbench version whose results-file format this command reads and writes (the `version`
/// field of `canbench_results.yml`): canbench refuses a file from a newer version than its own.
pub const CANBENCH_VERSION: &str = "0.7.0";
/// The instruction limit of every benchmark: that of the PocketIC benchmarking subnet canbench
/// runs on (`PocketIcBuilder::with_benchmarking_application_subnet`, for which the PocketIC
/// server sets `max_instructions_per_message` and `max_query_call_graph_instructions` to
/// 99 999 999 999 999).
pub const BENCH_INSTRUCTION_LIMIT: u64 = 99_999_999_999_999;
/// canbench's default noise threshold (percent).
pub const DEFAULT_NOISE_THRESHOLD: f64 = 2.0;
/// Rows the table of significant changes shows at most (canbench's `MAX_DISPLAYED_ROWS`).
const MAX_DISPLAYED_ROWS: usize = 50;
/// The separator line between report sections.
const RULE: &str = "---------------------------------------------------";

/// Arguments of `canister-vm bench` (canbench's flags, where they apply).
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Only run the benchmarks whose name contains this text (canbench's positional pattern).
    pattern: Option<String>,
    /// The same as the positional pattern.
    #[arg(long = "pattern", value_name = "PATTERN", conflicts_with = "pattern")]
    pattern_flag: Option<String>,
    /// Write the results to the results file (`results_path`, default canbench_results.yml).
    #[arg(long)]
    persist: bool,
    /// Write the results to a CSV file (`csv_results_path`, default canbench_results.csv).
    #[arg(long)]
    csv: bool,
    /// Only print the benchmark results (no summary).
    #[arg(long)]
    less_verbose: bool,
    /// Do not print each benchmark's results.
    #[arg(long)]
    hide_results: bool,
    /// Print the summary (also with --less-verbose).
    #[arg(long)]
    show_summary: bool,
    /// Print the canister's debug output (`ic_cdk::println!`, `eprintln!`) on stderr.
    #[arg(long)]
    show_canister_output: bool,
    /// A change (in percent) below which a difference counts as noise.
    #[arg(long, default_value_t = DEFAULT_NOISE_THRESHOLD, value_name = "PERCENT")]
    noise_threshold: f64,
    /// The configuration file; default: $CANBENCH_CFG_FILE, else canbench.yml. Paths in it are
    /// relative to the current directory, as for canbench.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The engine that runs the benchmarks (wasmtime needs a build with `--features wasmtime`).
    #[arg(long, value_enum, default_value = "wasmi")]
    engine: EngineArg,
}

/// `canbench.yml`.
#[derive(Debug, Deserialize)]
struct Config {
    /// A shell command that builds the canister (run with `bash -c`).
    build_cmd: Option<String>,
    /// The module to benchmark (`.wasm`, `.wasm.gz`; `.wat` too).
    wasm_path: String,
    /// The results file (default canbench_results.yml).
    results_path: Option<String>,
    /// The CSV file (default canbench_results.csv).
    csv_results_path: Option<String>,
    /// The init argument.
    init_args: Option<InitArgs>,
    /// A file loaded into stable memory after `canister_init`.
    stable_memory: Option<FileRef>,
    /// Environment variables (not supported here).
    env_vars: Option<FileRef>,
}

/// The keys of `canbench.yml` canbench knows (others are ignored, with a warning here).
const CONFIG_KEYS: [&str; 7] = [
    "build_cmd",
    "wasm_path",
    "results_path",
    "csv_results_path",
    "init_args",
    "stable_memory",
    "env_vars",
];

/// `init_args:` of `canbench.yml`.
#[derive(Debug, Deserialize)]
struct InitArgs {
    /// The argument's bytes in hex (Candid, usually).
    hex: String,
}

/// `stable_memory:` / `env_vars:` of `canbench.yml`.
#[derive(Debug, Deserialize)]
struct FileRef {
    file: String,
}

/// One measurement of canbench-rs (`canbench_rs::Measurement`, 0.7.0): the Candid record the
/// benchmark replies with and the YAML mapping of the results file, fields in this order.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, candid::CandidType, Serialize, Deserialize,
)]
pub struct Measurement {
    /// Calls of the scope (1 for a benchmark's total).
    #[serde(default)]
    pub calls: u64,
    /// Instructions (`ic0.performance_counter(0)` differences).
    #[serde(default)]
    pub instructions: u64,
    /// Heap growth in 64 KiB pages.
    #[serde(default)]
    pub heap_increase: u64,
    /// Stable memory growth in 64 KiB pages.
    #[serde(default)]
    pub stable_memory_increase: u64,
}

/// A benchmark's result (`canbench_rs::BenchResult`, 0.7.0): the whole benchmark and its scopes
/// (`canbench_rs::bench_scope`) by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, candid::CandidType, Serialize, Deserialize)]
pub struct BenchResult {
    /// The whole benchmark.
    pub total: Measurement,
    /// Scopes by name.
    #[serde(default)]
    pub scopes: BTreeMap<String, Measurement>,
}

/// `canbench_results.yml`: results by benchmark name and the canbench version that wrote them.
#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    benches: BTreeMap<String, BenchResult>,
    version: String,
}

/// Runs `canister-vm bench`.
pub(super) fn run(args: BenchArgs) -> anyhow::Result<Exit> {
    let config_path = args
        .config
        .clone()
        .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let config = read_config(&config_path)?;
    let shown = config_path.display();
    if config.env_vars.is_some() {
        bail!(
            "{shown}: env_vars is not supported: canisters on canister-vm have no environment \
             variables (ic0.env_var_count is 0); remove the key to benchmark without them"
        );
    }
    let init_arg = match &config.init_args {
        None => Vec::new(),
        Some(InitArgs { hex }) => hex::decode(hex.trim())
            .map_err(|e| anyhow!("{shown}: init_args.hex is not valid hex: {e}"))?,
    };
    let stable_memory = config
        .stable_memory
        .as_ref()
        .map(|f| {
            std::fs::read(&f.file)
                .map_err(|e| anyhow!("{shown}: stable_memory.file {}: {e}", f.file))
        })
        .transpose()?;
    let results_path = PathBuf::from(
        config
            .results_path
            .as_deref()
            .unwrap_or(DEFAULT_RESULTS_FILE),
    );
    let csv_path = PathBuf::from(
        config
            .csv_results_path
            .as_deref()
            .unwrap_or(DEFAULT_CSV_RESULTS_FILE),
    );
    if let Some(cmd) = &config.build_cmd {
        build(cmd, &config_path)?;
    }
    let old = read_results(&results_path)?;
    let wasm_path = PathBuf::from(&config.wasm_path);
    let wasm = crate::load::read_module(&wasm_path)
        .with_context(|| format!("{shown}: wasm_path {}", wasm_path.display()))?;
    let names = benchmark_names(&wasm)
        .with_context(|| format!("{}: not a valid module", wasm_path.display()))?;
    if names.is_empty() {
        eprintln!(
            "warning: {} exports no benchmarks (no `canister_query {BENCH_PREFIX}<name>` \
             methods): build it with canbench-rs and the feature that enables it",
            wasm_path.display()
        );
    }

    let limits = InstructionLimits {
        update: BENCH_INSTRUCTION_LIMIT,
        query: BENCH_INSTRUCTION_LIMIT,
        ..InstructionLimits::default()
    };
    let canister_config = CanisterConfig::default()
        .engine(args.engine.into())
        .instruction_limits(limits);
    let mut subnet = Subnet::new(canister_config);
    let options = CallOptions::new(Principal::anonymous());
    let (id, init) = subnet
        .install_with(wasm, &init_arg, &options, None)
        .with_context(|| wasm_path.display().to_string())?;
    if args.show_canister_output {
        for line in &init.debug_log {
            eprintln!("[canister] {line}");
        }
    }
    let id = match (id, &init.result) {
        (Some(id), _) => id,
        (None, Err(reject)) => bail!(
            "{}: installing the canister failed (canister_init with the init_args of {shown}): \
             {reject}",
            wasm_path.display()
        ),
        (None, Ok(_)) => bail!("{}: installing the canister failed", wasm_path.display()),
    };
    if let Some(bytes) = stable_memory {
        load_stable_memory(&mut subnet, id, bytes)
            .with_context(|| format!("{shown}: stable_memory"))?;
    }

    let pattern = args.pattern.as_deref().or(args.pattern_flag.as_deref());
    let style = Style::detect();
    let threshold = args.noise_threshold;
    let mut new = BTreeMap::new();
    let mut failed = 0usize;
    for name in names
        .iter()
        .filter(|n| pattern.is_none_or(|p| n.contains(p)))
    {
        let method = format!("{BENCH_PREFIX}{name}");
        let outcome = subnet
            .query_call_with(id, &method, b"DIDL\0\0", &options)
            .with_context(|| format!("benchmark {name}"))?;
        if args.show_canister_output {
            for line in &outcome.debug_log {
                eprintln!("[canister] {line}");
            }
        }
        let bytes = match outcome.result {
            Ok(bytes) => bytes,
            Err(reject) => {
                eprintln!("error: benchmark {name} failed: {reject}");
                failed += 1;
                continue;
            }
        };
        let result: BenchResult = candid::decode_one(&bytes).map_err(|e| {
            anyhow!(
                "benchmark {name}: the reply of {method} is not a canbench-rs BenchResult \
                 (record {{ total : Measurement; scopes : vec record {{ text; Measurement }} }}): \
                 {e}"
            )
        })?;
        if !args.hide_results {
            println!("{RULE}");
            println!();
            print_benchmark(name, &result, old.get(name), threshold, style);
            // Beyond canbench: what the benchmark wrote (the query's changes are discarded).
            println!();
            println!(
                "  dirty 4 KiB pages: heap {}, stable {}",
                outcome.written.heap.len(),
                outcome.written.stable.len()
            );
            println!();
        }
        new.insert(name.clone(), result);
    }
    println!("{RULE}");

    let entries = entries(&new, &old);
    if !args.less_verbose || args.show_summary {
        println!();
        print_summary(&entries, threshold);
        println!();
        println!("{RULE}");
        let significant = significant(&entries, threshold);
        if !significant.is_empty() {
            println!();
            println!("Only significant changes:");
            print!("{}", table(&significant, MAX_DISPLAYED_ROWS));
            println!();
            println!("{RULE}");
        }
    }
    if args.csv {
        std::fs::write(&csv_path, csv(&entries))
            .map_err(|e| anyhow!("writing {}: {e}", csv_path.display()))?;
        println!("CSV results saved to {}", csv_path.display());
    }
    if failed > 0 {
        if args.persist {
            eprintln!(
                "{} not written: {failed} benchmark{} failed",
                results_path.display(),
                if failed == 1 { "" } else { "s" }
            );
        }
        return Ok(Exit::Reject);
    }
    if args.persist {
        write_results(&results_path, new)?;
        println!(
            "Successfully persisted results to {}",
            results_path.display()
        );
    }
    Ok(Exit::Reply)
}

/// Reads and parses `canbench.yml`; unknown keys are a warning (canbench ignores them).
fn read_config(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!(
            "{}: no such file: canister-vm bench reads canbench's configuration file from the \
             current directory (or --config <FILE>, or ${CONFIG_FILE_ENV})",
            path.display()
        ),
        _ => anyhow!("{}: {e}", path.display()),
    })?;
    let value: serde_norway::Value = serde_norway::from_str(&text)
        .map_err(|e| anyhow!("{}: not valid YAML: {e}", path.display()))?;
    if let serde_norway::Value::Mapping(map) = &value {
        for key in map.keys() {
            match key.as_str() {
                Some(k) if CONFIG_KEYS.contains(&k) => {}
                _ => eprintln!(
                    "warning: {}: unknown key {} ignored (canbench knows {})",
                    path.display(),
                    serde_norway::to_string(key)
                        .map_or_else(|_| "?".into(), |s| s.trim().to_string()),
                    CONFIG_KEYS.join(", ")
                ),
            }
        }
    }
    serde_norway::from_value(value)
        .map_err(|e| anyhow!("{}: not a canbench configuration: {e}", path.display()))
}

/// Runs the build command with `bash -c`, as canbench does; its output goes where ours does.
fn build(cmd: &str, config: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .status()
        .map_err(|e| {
            anyhow!(
                "{}: could not run build_cmd with bash: {e}",
                config.display()
            )
        })?;
    if !status.success() {
        bail!(
            "{}: build_cmd `{}` failed ({status})",
            config.display(),
            cmd.trim()
        );
    }
    Ok(())
}

/// The benchmark names of a module, in export order: `canister_query __canbench__<name>`.
fn benchmark_names(wasm: &[u8]) -> anyhow::Result<Vec<String>> {
    let prefix = format!("canister_query {BENCH_PREFIX}");
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ExportSection(reader) = payload? {
            for export in reader {
                if let Some(name) = export?.name.strip_prefix(&prefix) {
                    names.push(name.to_string());
                }
            }
        }
    }
    Ok(names)
}

/// Replaces the canister's stable memory with `bytes` (grown to whole 64 KiB pages), as
/// PocketIC's `set_stable_memory`, which canbench calls after installing.
fn load_stable_memory(subnet: &mut Subnet, id: Principal, bytes: Vec<u8>) -> anyhow::Result<()> {
    const WASM_PAGE: usize = crate::runtime::ic0::api::WASM_PAGE_SIZE as usize;
    const PAGE: usize = 4096;
    let canister = subnet
        .canister(id)
        .ok_or_else(|| anyhow!("the canister is not installed"))?;
    let mut state = canister.to_state();
    let mut stable = bytes;
    stable.resize(stable.len().div_ceil(WASM_PAGE) * WASM_PAGE, 0);
    state.stable = stable;
    let nonzero = |bytes: &[u8]| -> Vec<u64> {
        bytes
            .chunks(PAGE)
            .enumerate()
            .filter(|(_, page)| page.iter().any(|&b| b != 0))
            .map(|(i, _)| i as u64)
            .collect()
    };
    let pages = crate::state::NonZeroPages {
        heap: nonzero(&state.heap),
        stable: nonzero(&state.stable),
    };
    let system = state.system.clone();
    subnet.restore_canister(RestoredCanister {
        id,
        system,
        state: Some((state, pages)),
        stopped: false,
    })?;
    Ok(())
}

/// Reads a results file; a missing one is empty (as for canbench).
fn read_results(path: &Path) -> anyhow::Result<BTreeMap<String, BenchResult>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => bail!("{}: {e}", path.display()),
    };
    let persisted: Persisted = serde_norway::from_str(&text)
        .map_err(|e| anyhow!("{}: not a canbench results file: {e}", path.display()))?;
    let (ours, theirs) = (version(CANBENCH_VERSION), version(&persisted.version));
    match theirs {
        None => bail!(
            "{}: version `{}` is not a version number",
            path.display(),
            persisted.version
        ),
        Some(theirs) if Some(theirs) > ours => bail!(
            "{}: written by canbench {}, whose format is newer than the one canister-vm reads \
             (canbench {CANBENCH_VERSION})",
            path.display(),
            persisted.version
        ),
        Some(_) => Ok(persisted.benches),
    }
}

/// `major.minor.patch` of a version (a pre-release or build suffix ignored).
fn version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.trim().split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

/// Writes a results file in canbench's format (`benches`, then `version`).
fn write_results(path: &Path, benches: BTreeMap<String, BenchResult>) -> anyhow::Result<()> {
    let text = serde_norway::to_string(&Persisted {
        benches,
        version: CANBENCH_VERSION.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// Terminal styling (bold, colours) of the report: on when stdout is a terminal and `NO_COLOR`
/// is not set.
#[derive(Debug, Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn detect() -> Self {
        Style {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
    fn paint(self, codes: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{codes}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    fn red(self, text: &str) -> String {
        self.paint("1;31", text)
    }
    fn green(self, text: &str) -> String {
        self.paint("1;32", text)
    }
    fn blue(self, text: &str) -> String {
        self.paint("1;34", text)
    }
}

/// Prints one benchmark: its total and scopes, each metric compared with the previous run.
fn print_benchmark(
    name: &str,
    new: &BenchResult,
    old: Option<&BenchResult>,
    threshold: f64,
    style: Style,
) {
    match old {
        Some(_) => println!("Benchmark: {}", style.bold(name)),
        None => println!("Benchmark: {} {}", style.bold(name), style.blue("(new)")),
    }
    println!("  total:");
    print_measurement(&new.total, old.map(|o| &o.total), threshold, false, style);
    for (scope, m) in &new.scopes {
        println!();
        println!("  {scope} (scope):");
        let before = old.and_then(|o| o.scopes.get(scope));
        print_measurement(m, before, threshold, true, style);
    }
}

fn print_measurement(
    new: &Measurement,
    old: Option<&Measurement>,
    threshold: f64,
    calls: bool,
    style: Style,
) {
    let metrics: [Metric<Measurement, u64>; 4] = [
        ("calls", |m| m.calls),
        ("instructions", |m| m.instructions),
        ("heap_increase", |m| m.heap_increase),
        ("stable_memory_increase", |m| m.stable_memory_increase),
    ];
    for (metric, get) in metrics.iter().skip(usize::from(!calls)) {
        let line = metric_line(metric, get(new), old.map(get), threshold);
        let line = match line.1 {
            Change::Regressed => style.red(&line.0),
            Change::Improved => style.green(&line.0),
            _ => line.0,
        };
        println!("    {line}");
    }
}

/// A value as canbench prints it in a benchmark's lines: exact below 10 000, else two decimals
/// of K, M, B or T (with a space).
fn readable(value: u64) -> String {
    let v = value as f64;
    match value {
        0..10_000 => value.to_string(),
        10_000..1_000_000 => format!("{:.2} K", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", v / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.2} B", v / 1e9),
        _ => format!("{:.2} T", v / 1e12),
    }
}

/// One metric's line (without indentation) and how it changed.
fn metric_line(metric: &str, value: u64, old: Option<u64>, threshold: f64) -> (String, Change) {
    let mut shown = readable(value);
    if metric.ends_with("_increase") {
        shown.push_str(" pages");
    }
    let head = format!("{metric}: {shown}");
    let Some(old) = old else {
        return (format!("{head} (new)"), Change::New);
    };
    if old == 0 {
        return if value == 0 {
            (format!("{head} (no change)"), Change::Unchanged)
        } else {
            (format!("{head} (regressed from 0)"), Change::Regressed)
        };
    }
    let diff = (value as f64 - old as f64) / old as f64 * 100.0;
    if diff == 0.0 {
        (format!("{head} (no change)"), Change::Unchanged)
    } else if diff.abs() < threshold {
        (
            format!("{head} ({diff:.2}%) (change within noise threshold)"),
            Change::Unchanged,
        )
    } else if diff > 0.0 {
        (
            format!("{head} (regressed by {diff:.2}%)"),
            Change::Regressed,
        )
    } else {
        (
            format!("{head} (improved by {:.2}%)", diff.abs()),
            Change::Improved,
        )
    }
}

/// A metric's name and how to get it from a `T`.
type Metric<T, V> = (&'static str, fn(&T) -> V);

/// How a metric changed against the previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    New,
    Improved,
    Regressed,
    Unchanged,
}

/// A metric now and in the previous run (if it was there).
#[derive(Debug, Clone, Copy)]
struct Values {
    now: u64,
    before: Option<u64>,
}

impl Values {
    fn delta(self) -> Option<i64> {
        Some(self.now as i64 - self.before? as i64)
    }
    /// The change in percent (±infinity from 0).
    fn percent(self) -> Option<f64> {
        let delta = self.delta()?;
        let before = self.before?;
        Some(match (before, delta) {
            (0, 0) => 0.0,
            (0, d) if d > 0 => f64::INFINITY,
            (0, _) => f64::NEG_INFINITY,
            _ => delta as f64 / before as f64 * 100.0,
        })
    }
    fn change(self, threshold: f64) -> Change {
        match self.percent() {
            None => Change::New,
            // canbench counts a 0% change as a regression under --noise-threshold 0; it is none.
            Some(p) if p == 0.0 || p.abs() < threshold => Change::Unchanged,
            Some(p) if p < 0.0 => Change::Improved,
            Some(_) => Change::Regressed,
        }
    }
}

/// A benchmark's total or one of its scopes, compared with the previous run.
#[derive(Debug, Clone)]
struct Entry {
    /// `new` for a benchmark or scope the previous run did not have; in the table, `+`, `-`
    /// or `+/-` for regressions and improvements.
    status: String,
    name: String,
    scope: Option<String>,
    calls: Values,
    instructions: Values,
    heap_increase: Values,
    stable_memory_increase: Values,
}

impl Entry {
    fn new(
        name: &str,
        scope: Option<&str>,
        now: &Measurement,
        before: Option<&Measurement>,
    ) -> Self {
        let values = |get: fn(&Measurement) -> u64| Values {
            now: get(now),
            before: before.map(get),
        };
        Entry {
            status: if before.is_none() { "new" } else { "" }.to_string(),
            name: name.to_string(),
            scope: scope.map(str::to_string),
            calls: values(|m| m.calls),
            instructions: values(|m| m.instructions),
            heap_increase: values(|m| m.heap_increase),
            stable_memory_increase: values(|m| m.stable_memory_increase),
        }
    }
    fn full_name(&self) -> String {
        match &self.scope {
            Some(scope) => format!("{}::{scope}", self.name),
            None => self.name.clone(),
        }
    }
    fn metrics(&self) -> [Values; 3] {
        [
            self.instructions,
            self.heap_increase,
            self.stable_memory_increase,
        ]
    }
}

/// Every benchmark's total and scopes, by benchmark name.
fn entries(new: &BTreeMap<String, BenchResult>, old: &BTreeMap<String, BenchResult>) -> Vec<Entry> {
    let mut out = Vec::new();
    for (name, result) in new {
        let before = old.get(name);
        out.push(Entry::new(
            name,
            None,
            &result.total,
            before.map(|b| &b.total),
        ));
        for (scope, m) in &result.scopes {
            let was = before.and_then(|b| b.scopes.get(scope));
            out.push(Entry::new(name, Some(scope), m, was));
        }
    }
    out
}

/// A count with K, M, B or T (two decimals, no space), as canbench's summary and table print.
fn human(value: f64) -> (f64, &'static str) {
    [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
        .into_iter()
        .find(|(d, _)| value.abs() >= *d)
        .map_or((value, ""), |(d, unit)| (value / d, unit))
}

fn human_u64(value: u64) -> String {
    match human(value as f64) {
        (v, "") => format!("{v}"),
        (v, unit) => format!("{v:.2}{unit}"),
    }
}

fn human_i64(value: i64) -> String {
    match human(value as f64) {
        _ if value == 0 => "0".to_string(),
        (v, "") => format!("{v:+.0}"),
        (v, unit) => format!("{v:+.2}{unit}"),
    }
}

fn human_percent(value: f64) -> String {
    if value.abs() < 0.01 {
        format!("{value:.2}%")
    } else {
        format!("{value:+.2}%")
    }
}

/// The `pct` percentile of sorted values, interpolating linearly between ranks.
fn percentile(sorted: &[f64], pct: f64) -> f64 {
    let rank = pct / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let w = rank - lo as f64;
    if lo == hi {
        sorted[lo]
    } else {
        sorted[lo] * (1.0 - w) + sorted[hi] * w
    }
}

/// `[max … | p75 … | median … | p25 … | min …]` of the values.
fn range(values: &[f64], format: impl Fn(f64) -> String) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let points = [
        ("max", sorted[sorted.len() - 1]),
        ("p75", percentile(&sorted, 75.0)),
        ("median", percentile(&sorted, 50.0)),
        ("p25", percentile(&sorted, 25.0)),
        ("min", sorted[0]),
    ];
    let parts: Vec<String> = points
        .iter()
        .map(|(label, v)| format!("{label} {}", format(*v)))
        .collect();
    format!("[{}]", parts.join(" | "))
}

/// The summary of the benchmarks' totals (scopes are left out), per metric.
fn print_summary(entries: &[Entry], threshold: f64) {
    println!("Summary:");
    let metrics: [Metric<Entry, Values>; 3] = [
        ("instructions", |e| e.instructions),
        ("heap_increase", |e| e.heap_increase),
        ("stable_memory_increase", |e| e.stable_memory_increase),
    ];
    for (i, (label, get)) in metrics.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let totals: Vec<Values> = entries
            .iter()
            .filter(|e| e.scope.is_none())
            .map(get)
            .collect();
        let count = |c: Change| totals.iter().filter(|v| v.change(threshold) == c).count();
        let (regressed, improved, new, unchanged) = (
            count(Change::Regressed),
            count(Change::Improved),
            count(Change::New),
            count(Change::Unchanged),
        );
        let status = match (regressed > 0, improved > 0, new > 0) {
            (false, false, false) => "No significant changes 👍",
            (true, false, false) => "Regressions detected 🔴",
            (false, true, false) => "Improvements detected 🟢",
            (false, false, true) => "New benchmarks added ➕",
            (true, true, false) => "Regressions and improvements 🔴🟢",
            (true, false, true) => "Regressions and new benchmarks 🔴➕",
            (false, true, true) => "Improvements and new benchmarks 🟢➕",
            (true, true, true) => "Regressions, improvements, and new benchmarks 🔴🟢➕",
        };
        println!("  {label}:");
        println!("    status:   {status}");
        println!(
            "    counts:   [total {} | regressed {regressed} | improved {improved} | new {new} | \
             unchanged {unchanged}]",
            totals.len()
        );
        let deltas: Vec<f64> = totals
            .iter()
            .filter_map(|v| v.delta())
            .map(|d| d as f64)
            .collect();
        let percents: Vec<f64> = totals.iter().filter_map(|v| v.percent()).collect();
        if deltas.is_empty() {
            println!("    change:   n/a");
        } else {
            // canbench rounds an interpolated delta to a whole number.
            let shown = range(&deltas, |d| human_i64(d.round() as i64));
            println!("    change:   {shown}");
        }
        if percents.is_empty() {
            println!("    change %: n/a");
        } else {
            println!("    change %: {}", range(&percents, human_percent));
        }
    }
}

/// The entries with a significant change in any metric, marked and ordered as canbench orders
/// them: by instructions change, descending (then by mark, then by name).
fn significant(entries: &[Entry], threshold: f64) -> Vec<Entry> {
    let mut out: Vec<Entry> = entries
        .iter()
        .filter(|e| {
            e.metrics()
                .iter()
                .any(|v| v.change(threshold) != Change::Unchanged)
        })
        .cloned()
        .map(|mut e| {
            if e.status.is_empty() {
                let has = |c: Change| e.metrics().iter().any(|v| v.change(threshold) == c);
                e.status = match (has(Change::Regressed), has(Change::Improved)) {
                    (true, true) => "+/-",
                    (true, false) => "+",
                    (false, true) => "-",
                    (false, false) => "",
                }
                .to_string();
            }
            e
        })
        .collect();
    out.sort_by_key(Entry::full_name);
    out.sort_by(|a, b| a.status.cmp(&b.status));
    let key = |e: &Entry| e.instructions.percent().unwrap_or(f64::MIN);
    out.sort_by(|a, b| {
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

/// The table of significant changes, at most `max_rows` rows (the middle ones left out).
fn table(entries: &[Entry], max_rows: usize) -> String {
    const COLUMNS: [&str; 9] = [
        "status", "name", "calls", "ins", "ins Δ%", "HI", "HI Δ%", "SMI", "SMI Δ%",
    ];
    let percent = |v: Values| v.percent().map_or_else(String::new, human_percent);
    let mut rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let calls = match e.scope {
                Some(_) => human_u64(e.calls.now),
                None => String::new(),
            };
            vec![
                e.status.clone(),
                e.full_name(),
                calls,
                human_u64(e.instructions.now),
                percent(e.instructions),
                human_u64(e.heap_increase.now),
                percent(e.heap_increase),
                human_u64(e.stable_memory_increase.now),
                percent(e.stable_memory_increase),
            ]
        })
        .collect();
    if rows.len() > max_rows {
        let omitted = rows.len() - max_rows;
        let head = max_rows / 2;
        let tail = max_rows - head;
        let mut marker = vec![String::new(); COLUMNS.len()];
        marker[0] = "...".to_string();
        marker[1] = format!(
            "... {omitted} row{} omitted ...",
            if omitted == 1 { "" } else { "s" }
        );
        let tail_rows = rows.split_off(rows.len() - tail);
        rows.truncate(head);
        rows.push(marker);
        rows.extend(tail_rows);
    }
    // Widths in bytes, padding in characters, as canbench has them: a header with a `Δ`
    // (2 bytes) gets one space more.
    let mut widths: Vec<usize> = COLUMNS.iter().map(|c| c.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::from("|");
        for (i, (cell, &width)) in row.iter().zip(&widths).enumerate() {
            s.push_str(&match i {
                0 => format!(" {cell:^width$} |"),
                1 => format!(" {cell:<width$} |"),
                _ => format!(" {cell:>width$} |"),
            });
        }
        s.push('\n');
        s
    };
    let mut out = line(&COLUMNS.map(String::from));
    out.push('|');
    for w in &widths {
        out.push_str(&"-".repeat(w + 2));
        out.push('|');
    }
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
    }
    out.push('\n');
    out.push_str(
        "ins = instructions, HI = heap_increase, SMI = stable_memory_increase, Δ% = percent \
         change\n",
    );
    out
}

/// The CSV report (canbench's columns: values in full, deltas, percentages).
fn csv(entries: &[Entry]) -> String {
    const HEADER: &str = "status,name,scope_calls,scope_calls Δ,scope_calls Δ%,instructions,\
                          instructions Δ,instructions Δ%,heap_increase,heap_increase Δ,\
                          heap_increase Δ%,stable_memory_increase,stable_memory_increase Δ,\
                          stable_memory_increase Δ%";
    let percent = |v: Values| match v.percent() {
        None => String::new(),
        Some(p) if p == f64::INFINITY => "1.0E99".to_string(),
        Some(p) if p == f64::NEG_INFINITY => "-1.0E99".to_string(),
        Some(p) => format!("{p:.2}%"),
    };
    let cells = |v: Values| {
        [
            v.now.to_string(),
            v.delta().map_or_else(String::new, |d| d.to_string()),
            percent(v),
        ]
    };
    let mut out = format!("{HEADER}\n");
    for e in entries {
        let calls = match e.scope {
            Some(_) => cells(e.calls),
            None => Default::default(),
        };
        let mut row = vec![e.status.clone(), e.full_name()];
        row.extend(calls);
        for v in e.metrics() {
            row.extend(cells(v));
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(instructions: u64, heap: u64, stable: u64) -> Measurement {
        Measurement {
            calls: 1,
            instructions,
            heap_increase: heap,
            stable_memory_increase: stable,
        }
    }

    #[test]
    fn metric_lines_use_canbench_wording() {
        let line = |v, old| metric_line("instructions", v, old, 2.0).0;
        assert_eq!(line(207, None), "instructions: 207 (new)");
        assert_eq!(line(207, Some(207)), "instructions: 207 (no change)");
        assert_eq!(
            line(207, Some(10)),
            "instructions: 207 (regressed by 1970.00%)"
        );
        assert_eq!(line(3834, Some(0)), "instructions: 3834 (regressed from 0)");
        assert_eq!(line(0, Some(0)), "instructions: 0 (no change)");
        assert_eq!(
            line(2900, Some(3100)),
            "instructions: 2900 (improved by 6.45%)"
        );
        assert_eq!(
            line(3_390_000, Some(3_450_000)),
            "instructions: 3.39 M (-1.74%) (change within noise threshold)"
        );
        assert_eq!(
            metric_line("heap_increase", 62, Some(65), 2.0).0,
            "heap_increase: 62 pages (improved by 4.62%)"
        );
        assert_eq!(readable(12_345), "12.35 K");
        assert_eq!(readable(2_554_172_078), "2.55 B");
    }

    #[test]
    fn human_formats_match_canbench() {
        assert_eq!(human_u64(207), "207");
        assert_eq!(human_u64(3834), "3.83K");
        assert_eq!(human_u64(9_000_000), "9.00M");
        assert_eq!(human_i64(0), "0");
        assert_eq!(human_i64(197), "+197");
        assert_eq!(human_i64(-154_070), "-154.07K");
        assert_eq!(human_percent(0.0), "0.00%");
        assert_eq!(human_percent(1970.0), "+1970.00%");
        assert_eq!(human_percent(f64::INFINITY), "+inf%");
    }

    #[test]
    fn table_and_csv_match_canbench_layout() {
        let mut new = BTreeMap::new();
        let mut old = BTreeMap::new();
        let mut scoped = BenchResult {
            total: m(3834, 0, 0),
            scopes: BTreeMap::new(),
        };
        scoped.scopes.insert("scope_1".into(), m(970, 0, 0));
        scoped.scopes.insert("scope_2".into(), m(781, 0, 0));
        new.insert("bench_scope_exists".to_string(), scoped);
        let mut before = BenchResult {
            total: m(0, 0, 0),
            scopes: BTreeMap::new(),
        };
        before.scopes.insert("scope_1".into(), m(800, 12, 0));
        old.insert("bench_scope_exists".to_string(), before);
        let e = entries(&new, &old);
        let t = table(&significant(&e, 2.0), 50);
        let expected = "\
| status | name                        | calls |   ins |  ins Δ% | HI |    HI Δ% | SMI |  SMI Δ% |
|--------|-----------------------------|-------|-------|---------|----|----------|-----|---------|
|   +    | bench_scope_exists          |       | 3.83K |   +inf% |  0 |    0.00% |   0 |   0.00% |
|  +/-   | bench_scope_exists::scope_1 |     1 |   970 | +21.25% |  0 | -100.00% |   0 |   0.00% |
|  new   | bench_scope_exists::scope_2 |     1 |   781 |         |  0 |          |   0 |         |

ins = instructions, HI = heap_increase, SMI = stable_memory_increase, Δ% = percent change
";
        assert_eq!(t, expected);
        let c = csv(&e);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            ",bench_scope_exists,,,,3834,3834,1.0E99,0,0,0.00%,0,0,0.00%"
        );
        assert_eq!(
            lines[2],
            ",bench_scope_exists::scope_1,1,0,0.00%,970,170,21.25%,0,-12,-100.00%,0,0,0.00%"
        );
        assert_eq!(
            lines[3],
            "new,bench_scope_exists::scope_2,1,,,781,,,0,,,0,,"
        );
    }

    #[test]
    fn table_leaves_out_middle_rows() {
        let new: BTreeMap<String, BenchResult> = (1..=5)
            .map(|i| {
                (
                    format!("bench_{i}"),
                    BenchResult {
                        total: m(9_000_000, 0, 0),
                        scopes: BTreeMap::new(),
                    },
                )
            })
            .collect();
        let old: BTreeMap<String, BenchResult> = new
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    BenchResult {
                        total: m(10_000_000, 0, 0),
                        scopes: BTreeMap::new(),
                    },
                )
            })
            .collect();
        let t = table(&significant(&entries(&new, &old), 2.0), 2);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].contains("bench_1"), "{t}");
        assert!(lines[3].contains("... 3 rows omitted ..."), "{t}");
        assert!(lines[4].contains("bench_5"), "{t}");
        assert!(lines[2].contains("-10.00%"), "{t}");
    }

    #[test]
    fn results_file_has_canbench_key_order() {
        let mut benches = BTreeMap::new();
        benches.insert(
            "b".to_string(),
            BenchResult {
                total: m(5, 1, 2),
                scopes: BTreeMap::new(),
            },
        );
        let text = serde_norway::to_string(&Persisted {
            benches,
            version: CANBENCH_VERSION.into(),
        })
        .unwrap();
        assert_eq!(
            text,
            "benches:\n  b:\n    total:\n      calls: 1\n      instructions: 5\n      \
             heap_increase: 1\n      stable_memory_increase: 2\n    scopes: {}\nversion: 0.7.0\n"
        );
        // canbench's older files (no `calls`, `scopes` left out) still read.
        let old: Persisted = serde_norway::from_str(
            "benches:\n  x:\n    total:\n      instructions: 7\nversion: 0.1.0\n",
        )
        .unwrap();
        assert_eq!(old.benches["x"].total.instructions, 7);
        assert_eq!(version("0.1.10"), Some((0, 1, 10)));
        assert_eq!(version("1.2.3-rc.1"), Some((1, 2, 3)));
        assert_eq!(version("1.2"), None);
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert_eq!(percentile(&v, 75.0), 3.25);
        assert_eq!(
            range(&[5.0], |x| x.to_string()),
            "[max 5 | p75 5 | median 5 | p25 5 | min 5]"
        );
    }
}
