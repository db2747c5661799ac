//! `cargo xtask wasi-check`: canister-vm compiled to `wasm32-wasip1` gives the same results as the
//! native build.
//!
//! The check builds the CLI twice (natively and for `wasm32-wasip1`), builds the test canisters,
//! and drives the same sequence of `install` / `call` / `upgrade` / `info` commands through both:
//! the native binary as a process, the WASI binary inside a WASI host embedded here (wasmtime +
//! wasmtime-wasi, preview 1, one preopened directory per state tree). Every step must give the
//! same exit status, stdout (replies, `info`) and stderr (`--stats` lines, trap reasons, debug
//! prints); the state hashes of both runs are printed side by side. Then each run's state
//! directories are opened by the other build (`info` and a further call), which must agree too.
//! Any difference makes the check fail.
//!
//! The WASI host pulls in wasmtime, which takes minutes to build, so it sits behind xtask's
//! `wasi-host` feature: a plain `cargo xtask wasi-check` re-runs the xtask with that feature
//! instead of making every `cargo build --workspace` compile wasmtime.
//!
//! Built binaries are looked up under `CARGO_TARGET_DIR` (default `<repo>/target`); the check
//! works in `<target>/wasi-check/`, which it recreates on every run.

#![cfg_attr(not(feature = "wasi-host"), allow(dead_code))]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[cfg(feature = "wasi-host")]
mod host;

/// What the check accepts on its command line.
#[derive(Debug)]
struct Options {
    /// The cargo profile both binaries are built with.
    profile: String,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            profile: "release".to_string(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--profile" => {
                    options.profile = args
                        .next()
                        .context("`--profile` needs a cargo profile name (release, dev)")?
                        .clone();
                }
                "--help" | "-h" => {
                    println!(
                        "cargo xtask wasi-check [--profile <PROFILE>]\n\n\
                         Builds canister-vm natively and for wasm32-wasip1 (profile: release by \
                         default), runs the same command sequence on both (the WASI build in an \
                         embedded wasmtime host) and fails on any difference."
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument `{other}` for `cargo xtask wasi-check`"),
            }
        }
        Ok(options)
    }

    /// The directory cargo writes this profile's outputs to (`dev` builds go to `debug`).
    fn profile_dir(&self) -> &str {
        match self.profile.as_str() {
            "dev" | "test" => "debug",
            "bench" => "release",
            other => other,
        }
    }
}

/// Runs the check (`args` follow `wasi-check` on the command line).
pub fn run(args: &[String]) -> Result<()> {
    #[cfg(feature = "wasi-host")]
    {
        check(&Options::parse(args)?)
    }
    #[cfg(not(feature = "wasi-host"))]
    {
        Options::parse(args)?;
        // Before the minutes of building wasmtime: both targets the check builds for are there
        // (installed now if missing), or it stops here with the one command that adds them.
        ensure_targets()?;
        rerun_with_host(args)
    }
}

/// The wasm targets the check builds for: `wasm32-wasip1` (the CLI) and `wasm32-unknown-unknown`
/// (the test canisters). Each is added with rustup where it is missing.
fn ensure_targets() -> Result<()> {
    let root = repo_root();
    for target in ["wasm32-wasip1", crate::canisters::WASM_TARGET] {
        crate::canisters::ensure_target(&root, target).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Runs this xtask again with the `wasi-host` feature (the first run builds wasmtime).
#[cfg(not(feature = "wasi-host"))]
fn rerun_with_host(args: &[String]) -> Result<()> {
    let root = repo_root();
    eprintln!(
        "wasi-check: running the xtask with its WASI host (feature `wasi-host`; a first build \
         of wasmtime takes minutes)"
    );
    let status = Command::new(cargo())
        .current_dir(&root)
        .args(["run", "--package", "xtask", "--features", "wasi-host"])
        .arg("--")
        .arg("wasi-check")
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("wasi-check failed ({status})");
    }
    Ok(())
}

/// The result of running the CLI once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The exit status.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// A way to run the canister-vm CLI: the native binary or the WASI build.
trait Cli {
    /// A short name for reports.
    fn name(&self) -> &'static str;
    /// Runs `canister-vm <args>` to completion.
    fn run(&self, args: &[String]) -> Result<Run>;
}

/// The native binary, run as a process.
struct NativeCli {
    bin: PathBuf,
}

impl Cli for NativeCli {
    fn name(&self) -> &'static str {
        "native"
    }

    fn run(&self, args: &[String]) -> Result<Run> {
        let out = Command::new(&self.bin)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        Ok(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(feature = "wasi-host")]
impl Cli for host::WasiHost {
    fn name(&self) -> &'static str {
        "wasi"
    }

    fn run(&self, args: &[String]) -> Result<Run> {
        host::WasiHost::run(self, args)
    }
}

/// The paths a check works with.
struct Layout {
    /// `<target>/wasi-check`.
    work: PathBuf,
    /// Canister modules, shared read-only by both runs.
    inputs: PathBuf,
}

impl Layout {
    fn new(target: &Path) -> Layout {
        let work = target.join("wasi-check");
        Layout {
            inputs: work.join("inputs"),
            work,
        }
    }

    /// The root of the state directories written by `run` (`native`, `wasi`, `cross-*`).
    fn states(&self, run: &str) -> PathBuf {
        self.work.join(run)
    }
}

/// One CLI invocation of a scenario. `{state}` in an argument is replaced by the state root of
/// the run, `{inputs}` by the input directory.
struct Step {
    args: Vec<String>,
    /// The exit status the step must have (the same on both builds in any case).
    expect: i32,
}

fn step(expect: i32, args: &[&str]) -> Step {
    Step {
        args: args.iter().map(|a| a.to_string()).collect(),
        expect,
    }
}

/// The command sequence both builds run: the kv test canister (Rust, ic-stable-structures) in
/// both stable modes and the example counter in WAT, with updates (`--stats`), queries, traps, an
/// instruction-limit overrun, upgrades and `info`; and a subnet of two ic-cdk canisters that call
/// each other, with timers, heartbeats and the management canister.
///
/// With `replay` (the CLI has a `replay` command) every scenario ends by replaying its state
/// directory's message log.
fn scenario(replay: bool) -> Vec<(&'static str, Vec<Step>)> {
    let kv = |mode: &str| {
        vec![
            step(
                0,
                &[
                    "install",
                    "{inputs}/kv.wasm",
                    "--state",
                    "{state}",
                    "--stable",
                    mode,
                ],
            ),
            step(
                0,
                &[
                    "call",
                    "{state}",
                    "put",
                    "(1 : nat64, blob \"hello\")",
                    "--stats",
                ],
            ),
            step(
                0,
                &[
                    "call",
                    "{state}",
                    "put",
                    "(2 : nat64, blob \"world\")",
                    "--stats",
                ],
            ),
            step(0, &["call", "{state}", "fill", "(300 : nat64)", "--stats"]),
            step(
                0,
                &[
                    "call",
                    "{state}",
                    "get",
                    "(1 : nat64)",
                    "--query",
                    "--stats",
                ],
            ),
            step(0, &["call", "{state}", "len", "--query"]),
            // A trap inside the canister: the argument does not decode.
            step(1, &["call", "{state}", "put", "(\"not a key\")", "--stats"]),
            // The instruction limit is exceeded and the message rolls back.
            step(
                1,
                &[
                    "call",
                    "{state}",
                    "fill",
                    "(1000 : nat64)",
                    "--instruction-limit",
                    "100000",
                    "--stats",
                ],
            ),
            step(0, &["call", "{state}", "len", "--query", "--output", "hex"]),
            step(0, &["upgrade", "{state}", "{inputs}/kv.wasm"]),
            step(0, &["call", "{state}", "upgrades", "--query"]),
            step(0, &["call", "{state}", "get", "(2 : nat64)", "--stats"]),
            step(0, &["info", "{state}"]),
        ]
    };
    let counter = vec![
        step(
            0,
            &["install", "{inputs}/counter.wat", "--state", "{state}"],
        ),
        step(0, &["call", "{state}", "inc", "--stats"]),
        step(0, &["call", "{state}", "inc", "--stats"]),
        step(0, &["call", "{state}", "read", "--query"]),
        step(2, &["call", "{state}", "no_such_method"]),
        step(0, &["upgrade", "{state}", "{inputs}/counter.wat"]),
        step(0, &["call", "{state}", "inc", "--stats"]),
        step(0, &["info", "{state}"]),
    ];
    // Many canisters (the `calls` test canister, ic-cdk 0.20 and ic-cdk-timers): a call from one
    // to the other with its reply callback, a trapping callee's reject, timers and heartbeats run
    // by `tick`, the management canister by ingress, `info` listing both.
    let b = "(principal \"rrkah-fqaaa-aaaaa-aaaaq-cai\")";
    let echo = "(principal \"rrkah-fqaaa-aaaaa-aaaaq-cai\", \"hi\")";
    let status = "(record { canister_id = principal \"rrkah-fqaaa-aaaaa-aaaaq-cai\" })";
    let subnet = vec![
        step(
            0,
            &[
                "install",
                "{inputs}/calls.wasm",
                "--state",
                "{state}",
                "--name",
                "a",
            ],
        ),
        step(
            0,
            &[
                "install",
                "{inputs}/calls.wasm",
                "--state",
                "{state}",
                "--name",
                "b",
            ],
        ),
        step(2, &["call", "{state}", "echo", "(\"x\")"]),
        step(
            0,
            &[
                "call",
                "{state}",
                "call_echo",
                echo,
                "--canister",
                "a",
                "--stats",
            ],
        ),
        step(0, &["call", "{state}", "call_boom", b, "--canister", "a"]),
        step(
            0,
            &[
                "call",
                "{state}",
                "start_timers",
                "(3 : nat64, 2 : nat64)",
                "--canister",
                "a",
            ],
        ),
        step(0, &["tick", "{state}", "--seconds", "2"]),
        step(0, &["tick", "{state}", "--seconds", "2"]),
        step(
            0,
            &["call", "{state}", "counters", "--query", "--canister", "a"],
        ),
        step(
            0,
            &[
                "call",
                "{state}",
                "canister_status",
                status,
                "--canister",
                "aaaaa-aa",
            ],
        ),
        step(0, &["info", "{state}"]),
    ];
    let mut scenarios = vec![
        ("kv", kv("native")),
        ("kv-syscall", kv("syscall")),
        ("counter", counter),
        ("subnet", subnet),
    ];
    if replay {
        for (_, steps) in &mut scenarios {
            steps.push(step(0, &["replay", "{state}"]));
        }
    }
    scenarios
}

/// Steps run on a state directory written by the other build: `info` and further messages, and
/// with `replay` the other build's log replayed first and the mixed log (both builds' records)
/// replayed last.
fn cross_steps(replay: bool) -> Vec<Step> {
    let mut steps = vec![
        step(0, &["info", "{state}"]),
        step(
            0,
            &[
                "call",
                "{state}",
                "put",
                "(3 : nat64, blob \"crossed\")",
                "--stats",
            ],
        ),
        step(0, &["call", "{state}", "get", "(3 : nat64)", "--query"]),
        step(0, &["info", "{state}"]),
    ];
    if replay {
        steps.insert(0, step(0, &["replay", "{state}"]));
        steps.push(step(0, &["replay", "{state}"]));
    }
    steps
}

/// Whether this canister-vm has the `replay` command (it is being added concurrently).
fn has_replay(cli: &dyn Cli) -> Result<bool> {
    Ok(cli.run(&["replay".to_string(), "--help".to_string()])?.code == 0)
}

/// Output with run-dependent parts made comparable: the state directory's path becomes
/// `<state>`, and the wall time in `replay`'s summary (`... in 0.123 s: ...`) becomes `<t>`.
fn normalise(text: &str, state: &str) -> String {
    let text = text.replace(state, "<state>");
    let mut out = String::new();
    for line in text.lines() {
        let timed = line
            .starts_with("replayed ")
            .then(|| line.find(" in "))
            .flatten();
        let line = match timed {
            Some(at) => {
                let rest = &line[at + 4..];
                match rest.find(" s:") {
                    Some(end) if rest[..end].chars().all(|c| c.is_ascii_digit() || c == '.') => {
                        format!("{} in <t>{}", &line[..at], &rest[end..])
                    }
                    _ => line.to_string(),
                }
            }
            None => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// What a run of a scenario produced: every step's output (paths made run-independent).
struct Transcript {
    runs: Vec<(String, Run)>,
    elapsed: Duration,
}

impl Transcript {
    /// The state hash printed by the last `info` step.
    fn last_hash(&self) -> Option<&str> {
        self.runs
            .iter()
            .rev()
            .find_map(|(_, run)| state_hash(&run.stdout))
    }

    /// The state hash printed by the first `info` step.
    fn first_hash(&self) -> Option<&str> {
        self.runs
            .iter()
            .find_map(|(_, run)| state_hash(&run.stdout))
    }
}

/// The value of the `state hash:` line of `info`'s output.
fn state_hash(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("state hash:"))
        .map(str::trim)
}

/// Runs `steps` with `cli` on the state directory `state`; outputs are recorded with the state
/// directory's path replaced by `<state>`.
fn drive(cli: &dyn Cli, steps: &[Step], layout: &Layout, state: &Path) -> Result<Transcript> {
    let state_s = state.to_str().context("the state path is not UTF-8")?;
    let inputs_s = layout
        .inputs
        .to_str()
        .context("the input path is not UTF-8")?;
    let started = Instant::now();
    let mut runs = Vec::new();
    for step in steps {
        let args: Vec<String> = step
            .args
            .iter()
            .map(|a| a.replace("{state}", state_s).replace("{inputs}", inputs_s))
            .collect();
        let shown = step.args.join(" ");
        let run = cli
            .run(&args)
            .with_context(|| format!("{}: canister-vm {shown}", cli.name()))?;
        if run.code != step.expect {
            bail!(
                "{}: `canister-vm {shown}` exited with {} (expected {}):\nstdout: {}\nstderr: {}",
                cli.name(),
                run.code,
                step.expect,
                run.stdout.trim_end(),
                run.stderr.trim_end()
            );
        }
        let run = Run {
            code: run.code,
            stdout: normalise(&run.stdout, state_s),
            stderr: normalise(&run.stderr, state_s),
        };
        runs.push((shown, run));
    }
    Ok(Transcript {
        runs,
        elapsed: started.elapsed(),
    })
}

/// Compares two transcripts step by step; returns a description of every difference.
fn differences(label: &str, a: (&str, &Transcript), b: (&str, &Transcript)) -> Vec<String> {
    let mut out = Vec::new();
    for ((cmd, ra), (_, rb)) in a.1.runs.iter().zip(&b.1.runs) {
        if ra == rb {
            continue;
        }
        let mut d = format!("{label}: `canister-vm {cmd}` differs\n");
        for (name, run) in [(a.0, ra), (b.0, rb)] {
            let _ = writeln!(
                d,
                "  {name}: exit {}\n    stdout: {}\n    stderr: {}",
                run.code,
                run.stdout.trim_end().replace('\n', "\n            "),
                run.stderr.trim_end().replace('\n', "\n            ")
            );
        }
        out.push(d);
    }
    if a.1.runs.len() != b.1.runs.len() {
        out.push(format!("{label}: the runs have different step counts"));
    }
    out
}

/// Copies the directory tree `from` to `to` (which must not exist).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The repository root: the parent of xtask's manifest directory.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// The cargo that runs this xtask.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the repository) or `<repo>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Builds the canister-vm binary with `profile`, for `target` (`None`: the host).
fn build_cli(root: &Path, profile: &str, target: Option<&str>) -> Result<()> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["build", "--profile", profile, "--bin", "canister-vm"]);
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    let started = Instant::now();
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!(
            "building canister-vm ({}) failed ({status})",
            target.unwrap_or("native")
        );
    }
    eprintln!(
        "wasi-check: built canister-vm ({}, {profile}) in {:.1}s",
        target.unwrap_or("native"),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The whole check.
#[cfg(feature = "wasi-host")]
fn check(options: &Options) -> Result<()> {
    ensure_targets()?;
    let root = repo_root();
    let target = target_dir(&root);
    let profile_dir = options.profile_dir();

    crate::canisters::build_canisters(&["--quiet".to_string()])
        .context("building the test canisters")?;
    build_cli(&root, &options.profile, None)?;
    build_cli(&root, &options.profile, Some("wasm32-wasip1"))?;
    let native_bin = target.join(profile_dir).join("canister-vm");
    let wasi_bin = target
        .join("wasm32-wasip1")
        .join(profile_dir)
        .join("canister-vm.wasm");

    let layout = Layout::new(&target);
    if layout.work.exists() {
        std::fs::remove_dir_all(&layout.work)
            .with_context(|| format!("removing {}", layout.work.display()))?;
    }
    std::fs::create_dir_all(&layout.inputs)?;
    let kv = crate::canisters::canister_paths(&root)[0].clone();
    std::fs::copy(&kv, layout.inputs.join("kv.wasm"))
        .with_context(|| format!("copying {}", kv.display()))?;
    let calls = crate::canisters::canister_paths(&root)[3].clone();
    std::fs::copy(&calls, layout.inputs.join("calls.wasm"))
        .with_context(|| format!("copying {}", calls.display()))?;
    std::fs::copy(
        root.join("examples/counter.wat"),
        layout.inputs.join("counter.wat"),
    )?;
    let runs = ["native", "wasi", "cross-from-native", "cross-from-wasi"];
    for run in runs {
        std::fs::create_dir_all(layout.states(run))?;
    }

    let native = NativeCli { bin: native_bin };
    let started = Instant::now();
    let mut preopens = vec![(layout.inputs.clone(), false)];
    preopens.extend(runs.iter().map(|run| (layout.states(run), true)));
    let wasi = host::WasiHost::new(&wasi_bin, preopens)?;
    eprintln!(
        "wasi-check: compiled {} ({:.1} MiB) with wasmtime in {:.1}s",
        wasi_bin.display(),
        std::fs::metadata(&wasi_bin)?.len() as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );

    let mut problems = Vec::new();
    let mut table = Vec::new();
    let replay = has_replay(&native)?;
    if !replay {
        eprintln!("wasi-check: this canister-vm has no `replay` command; replay steps skipped");
    }
    for (name, steps) in scenario(replay) {
        let n = drive(
            &native,
            &steps,
            &layout,
            &layout.states("native").join(name),
        )?;
        let w = drive(&wasi, &steps, &layout, &layout.states("wasi").join(name))?;
        problems.extend(differences(name, ("native", &n), ("wasi", &w)));
        table.push(HashRow::new(name, &n, &w));
    }

    // Cross-open: each build continues from the other's state directory.
    let cross = cross_steps(replay);
    for (name, _) in scenario(replay)
        .iter()
        .filter(|(name, _)| name.starts_with("kv"))
    {
        let from_native = layout.states("cross-from-native").join(name);
        let from_wasi = layout.states("cross-from-wasi").join(name);
        copy_tree(&layout.states("native").join(name), &from_native)?;
        copy_tree(&layout.states("wasi").join(name), &from_wasi)?;
        let w = drive(&wasi, &cross, &layout, &from_native)?;
        let n = drive(&native, &cross, &layout, &from_wasi)?;
        let label = format!("{name} (cross-open)");
        problems.extend(differences(
            &label,
            ("wasi on native state", &w),
            ("native on wasi state", &n),
        ));
        let written = table
            .iter()
            .find(|row| row.name == *name)
            .and_then(|row| row.native.clone());
        if w.first_hash().map(str::to_string) != written {
            problems.push(format!(
                "{label}: the WASI build opened the native state with hash {:?}, native `info` \
                 printed {written:?}",
                w.first_hash()
            ));
        }
        table.push(HashRow::new(&label, &n, &w));
    }

    println!();
    println!(
        "{:<24} {:<64}  {:<64}",
        "canister", "native state hash", "wasi state hash"
    );
    for row in &table {
        println!("{row}");
        if row.native.is_none() || row.native != row.wasi {
            problems.push(format!("{}: the state hashes differ", row.name));
        }
    }
    println!();
    println!(
        "time: native {:.2}s, wasi {:.2}s (all scenarios)",
        table
            .iter()
            .map(|r| r.native_time)
            .sum::<Duration>()
            .as_secs_f64(),
        table
            .iter()
            .map(|r| r.wasi_time)
            .sum::<Duration>()
            .as_secs_f64()
    );

    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        bail!(
            "the WASI build differs from the native build in {} place(s)",
            problems.len()
        );
    }
    println!("wasi-check: the native and the WASI build agree on every step");
    Ok(())
}

/// One line of the side-by-side hash table.
struct HashRow {
    name: String,
    native: Option<String>,
    wasi: Option<String>,
    native_time: Duration,
    wasi_time: Duration,
}

impl HashRow {
    fn new(name: &str, native: &Transcript, wasi: &Transcript) -> HashRow {
        HashRow {
            name: name.to_string(),
            native: native.last_hash().map(str::to_string),
            wasi: wasi.last_hash().map(str::to_string),
            native_time: native.elapsed,
            wasi_time: wasi.elapsed,
        }
    }
}

impl std::fmt::Display for HashRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.native.is_some() && self.native == self.wasi {
            "equal"
        } else {
            "DIFFERENT"
        };
        write!(
            f,
            "{:<24} {:<64}  {:<64}  {verdict}",
            self.name,
            self.native.as_deref().unwrap_or("-"),
            self.wasi.as_deref().unwrap_or("-")
        )
    }
}
