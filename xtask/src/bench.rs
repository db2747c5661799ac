//! `cargo xtask bench [--quick] [--report-only]`: runs the criterion suites in `benches/` (with
//! the `wasmtime` feature when the crate has it) and rewrites `BENCHMARKS.md` and
//! `docs/bench/crossover.svg` from their medians.
//!
//! - `--quick`: short warm-up and measurement, 10 samples per benchmark (the suites read
//!   `CANISTER_VM_BENCH_QUICK=1`, see `benches/common/mod.rs`);
//! - `--report-only`: skip the run and regenerate the report from the results already in
//!   `$CARGO_TARGET_DIR/criterion` (default `target/criterion`).
//!
//! The results of every suite are removed before a run, so a report only ever holds numbers
//! measured side by side in one run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The bench targets run, in order, and the criterion group each writes.
const SUITES: [(&str, &str); 7] = [
    ("stable_access", "stable_access"),
    ("barrier", "barrier"),
    ("barrier_signals", "barrier_signals"),
    ("checkpoint", "checkpoint"),
    ("cold_start", "cold_start"),
    ("instrument", "instrument"),
    ("subnet", "subnet"),
];

/// Engines, in table order.
const ENGINES: [&str; 2] = ["wasmi", "wasmtime"];

/// One benchmark's median and 95% confidence interval, in nanoseconds per iteration.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    median: f64,
    lower: f64,
    upper: f64,
}

impl Estimate {
    fn scaled(self, by: f64) -> Estimate {
        Estimate {
            median: self.median / by,
            lower: self.lower / by,
            upper: self.upper / by,
        }
    }
}

/// Every result, by criterion's full id (`group/function`).
type Results = BTreeMap<String, Estimate>;

/// Entry point of `cargo xtask bench`.
pub fn run(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut report_only = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--report-only" => report_only = true,
            other => bail!(
                "unknown argument `{other}` (usage: cargo xtask bench [--quick] [--report-only])"
            ),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let criterion = target.join("criterion");
    let wasmtime = has_wasmtime_feature(&root)?;

    let started = Instant::now();
    if !report_only {
        super::canisters::build_canisters(&[])?;
        for (_, group) in SUITES {
            let dir = criterion.join(group);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing old results in {}", dir.display()))?;
            }
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .arg("bench")
            .arg("-p")
            .arg("canister-vm");
        for (bench, _) in SUITES {
            cmd.args(["--bench", bench]);
        }
        if wasmtime {
            cmd.args(["--features", "wasmtime"]);
        }
        cmd.env("CARGO_TARGET_DIR", &target);
        if quick {
            cmd.env("CANISTER_VM_BENCH_QUICK", "1");
        }
        eprintln!("running: {cmd:?}");
        let status = cmd.status().context("running cargo bench")?;
        if !status.success() {
            bail!("cargo bench failed ({status})");
        }
    }
    // The run's settings and length, kept for `--report-only`.
    let run_file = criterion.join("canister-vm-run.json");
    let (quick, elapsed) = if report_only {
        let saved = std::fs::read_to_string(&run_file)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
        match saved {
            Some(v) => (v["quick"].as_bool().unwrap_or(quick), v["seconds"].as_f64()),
            None => (quick, None),
        }
    } else {
        let seconds = started.elapsed().as_secs_f64();
        std::fs::write(
            &run_file,
            format!("{{\"quick\": {quick}, \"seconds\": {seconds:.1}}}\n"),
        )
        .with_context(|| format!("writing {}", run_file.display()))?;
        (quick, Some(seconds))
    };

    let results = read_results(&criterion)?;
    if results.is_empty() {
        bail!("no criterion results under {}", criterion.display());
    }
    let calls = std::fs::read_to_string(criterion.join("barrier/kv_stable_calls.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    let run = RunInfo {
        quick,
        elapsed,
        wasmtime,
    };
    let svg = crossover_svg(&results);
    let chart = root.join("docs/bench/crossover.svg");
    std::fs::create_dir_all(chart.parent().expect("has a parent"))?;
    std::fs::write(&chart, svg).with_context(|| format!("writing {}", chart.display()))?;
    let report = report(&root, &results, calls.as_ref(), &run)?;
    std::fs::write(root.join("BENCHMARKS.md"), report).context("writing BENCHMARKS.md")?;
    eprintln!(
        "wrote BENCHMARKS.md and docs/bench/crossover.svg ({} results{})",
        results.len(),
        match run.elapsed {
            Some(s) => format!(", build and run took {:.0} s", s),
            None => String::new(),
        }
    );
    Ok(())
}

/// Whether the root crate declares a `wasmtime` feature.
fn has_wasmtime_feature(root: &Path) -> Result<bool> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let mut in_features = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features && line.starts_with("wasmtime") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads every `new/benchmark.json` + `new/estimates.json` pair under `dir`.
fn read_results(dir: &Path) -> Result<Results> {
    let mut out = Results::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                let bench = path.join("benchmark.json");
                let est = path.join("estimates.json");
                if let (Ok(b), Ok(e)) = (
                    std::fs::read_to_string(&bench),
                    std::fs::read_to_string(&est),
                ) {
                    let b: serde_json::Value = serde_json::from_str(&b)
                        .with_context(|| format!("parsing {}", bench.display()))?;
                    let e: serde_json::Value = serde_json::from_str(&e)
                        .with_context(|| format!("parsing {}", est.display()))?;
                    let id = b["full_id"].as_str().unwrap_or_default().to_string();
                    let m = &e["median"];
                    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
                    out.insert(
                        id,
                        Estimate {
                            median: num(&m["point_estimate"]),
                            lower: num(&m["confidence_interval"]["lower_bound"]),
                            upper: num(&m["confidence_interval"]["upper_bound"]),
                        },
                    );
                }
            } else if path
                .file_name()
                .is_none_or(|n| n != "report" && n != "base")
            {
                stack.push(path);
            }
        }
    }
    Ok(out)
}

struct RunInfo {
    quick: bool,
    elapsed: Option<f64>,
    wasmtime: bool,
}

/// A duration in nanoseconds, with a unit that keeps 3 significant digits.
fn time(ns: f64) -> String {
    if !ns.is_finite() {
        return "—".into();
    }
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// A median with its confidence interval, e.g. `32.8 ns [31.7, 35.5]`.
fn est(e: Option<Estimate>) -> String {
    match e {
        None => "—".into(),
        Some(e) => format!(
            "{} <sub>[{}, {}]</sub>",
            time(e.median),
            time(e.lower),
            time(e.upper)
        ),
    }
}

/// `a / b` as a ratio, e.g. `1.56x`.
fn ratio(a: Option<Estimate>, b: Option<Estimate>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{r:.2}x"),
        None => "—".into(),
    }
}

fn fmt_pct(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{:+.0}%", (r - 1.0) * 100.0),
        None => "—".into(),
    }
}

/// "met" / "missed by N%" for a ratio that must be at least `target`.
fn at_least(r: Option<f64>, target: f64) -> String {
    match r {
        None => "not measured".into(),
        Some(r) if r >= target => format!("**met** ({r:.2}x ≥ {target}x)"),
        Some(r) => format!(
            "**missed** ({r:.2}x < {target}x: {:.0}% short)",
            (1.0 - r / target) * 100.0
        ),
    }
}

/// "met" / "missed by N%" for a ratio that must be at most `target`.
fn at_most(r: Option<f64>, target: f64) -> String {
    match r {
        None => "not measured".into(),
        Some(r) if r <= target => format!("**met** ({r:.2}x ≤ {target}x)"),
        Some(r) => format!(
            "**missed** ({r:.2}x > {target}x: {:.0}% over)",
            (r / target - 1.0) * 100.0
        ),
    }
}

/// Accesses per message of the stable-access kernels (see `benches/stable_access.rs`).
const STABLE_KERNELS: [(&str, f64, &str); 8] = [
    (
        "empty",
        100_000.0,
        "`empty` loop, no access (floor), per iteration",
    ),
    ("read", 100_000.0, "8-byte random read, constant length"),
    ("write", 100_000.0, "8-byte random write, constant length"),
    (
        "read_dyn",
        100_000.0,
        "8-byte random read, length in a local",
    ),
    ("read4k", 4096.0, "4 KiB read"),
    ("write4k", 4096.0, "4 KiB write"),
    ("read1m", 64.0, "1 MiB read"),
    ("write1m", 64.0, "1 MiB write"),
];

/// Stores per dirty page swept by `benches/barrier_signals.rs`, and its dirty pages per run.
const SWEEP: [u32; 8] = [1, 4, 16, 64, 256, 1024, 4096, 16384];
const SWEEP_PAGES: f64 = 256.0;

fn get(results: &Results, id: &str) -> Option<Estimate> {
    results.get(id).copied()
}

fn report(
    root: &Path,
    results: &Results,
    calls: Option<&serde_json::Value>,
    run: &RunInfo,
) -> Result<String> {
    let mut md = String::new();
    let engines: Vec<&str> = ENGINES
        .iter()
        .copied()
        .filter(|e| results.keys().any(|k| k.contains(&format!("/{e}"))))
        .collect();
    let has_wasmtime = engines.contains(&"wasmtime");

    // --- header --------------------------------------------------------------------------------
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Generated by `cargo xtask bench{}` — do not edit by hand; the prose lives in \
         `xtask/src/bench.rs`. Criterion medians with 95% confidence intervals \
         (<sub>[low, high]</sub>); every ratio compares two medians of **the same run**.\n",
        if run.quick { " --quick" } else { "" }
    )?;
    writeln!(md, "## Machine and versions\n")?;
    writeln!(md, "| | |\n|---|---|")?;
    writeln!(md, "| CPU | {} |", cpu_model())?;
    writeln!(md, "| cores | {} |", cores())?;
    writeln!(md, "| memory | {} |", mem_total())?;
    writeln!(md, "| OS | {} |", os())?;
    writeln!(md, "| rustc | {} |", command_line("rustc", &["--version"]))?;
    writeln!(md, "| wasmi | {} |", lock_version(root, "wasmi"))?;
    writeln!(
        md,
        "| wasmtime | {} |",
        if run.wasmtime {
            lock_version(root, "wasmtime")
        } else {
            "not built (no `wasmtime` feature in this checkout)".into()
        }
    )?;
    writeln!(
        md,
        "| commit | {}{} |",
        command_line("git", &["log", "-1", "--format=%h %cd", "--date=short"]),
        match command_line("git", &["status", "--porcelain", "--", "src"]).as_str() {
            "" => "",
            _ => " plus uncommitted changes under `src/` (work in progress in the same checkout)",
        }
    )?;
    writeln!(
        md,
        "| mode | {} |",
        if run.quick {
            "`--quick`: 0.3 s warm-up, 1.2 s measurement, 10 samples per benchmark (long \
             benchmarks: flat sampling, 0.1 s / 1 s)"
        } else {
            "full: 2 s warm-up, 5 s measurement, 30 samples per benchmark (long benchmarks: flat \
             sampling, 15 samples, 1 s / 8 s)"
        }
    )?;
    if let Some(s) = run.elapsed {
        writeln!(
            md,
            "| this run | {:.1} min, test-canister and bench builds included (warm) |",
            s / 60.0
        )?;
    }
    writeln!(md)?;
    md.push_str(INTRO);

    // --- suite 1 -------------------------------------------------------------------------------
    md.push_str(SUITE1_INTRO);
    write!(md, "| kernel (time per access) |")?;
    for e in &engines {
        write!(md, " {e} system-API | {e} native | {e} native speed-up |")?;
    }
    writeln!(md)?;
    writeln!(md, "|---|{}", "---|---|---|".repeat(engines.len()))?;
    for (kernel, n, label) in STABLE_KERNELS {
        write!(md, "| {label} (`{kernel}`) |")?;
        for e in &engines {
            let s =
                get(results, &format!("stable_access/{kernel}/{e}/syscall")).map(|x| x.scaled(n));
            let nat =
                get(results, &format!("stable_access/{kernel}/{e}/native")).map(|x| x.scaled(n));
            let speedup = if kernel == "empty" {
                "—".into()
            } else {
                format!("**{}**", fmt_ratio(ratio(s, nat)))
            };
            write!(md, " {} | {} | {} |", est(s), est(nat), speedup)?;
        }
        writeln!(md)?;
    }
    writeln!(md)?;
    let speedup = |kernel: &str, engine: &str| {
        ratio(
            get(results, &format!("stable_access/{kernel}/{engine}/syscall")),
            get(results, &format!("stable_access/{kernel}/{engine}/native")),
        )
    };
    let worst = |engine: &str| match (speedup("read", engine), speedup("write", engine)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    };
    writeln!(md, "Targets (issue 8):\n")?;
    writeln!(
        md,
        "- native / system-API, 8-byte reads and writes, wasmi, ≥ 2x: reads {}, writes {} → {}",
        fmt_ratio(speedup("read", "wasmi")),
        fmt_ratio(speedup("write", "wasmi")),
        at_least(worst("wasmi"), 2.0)
    )?;
    writeln!(
        md,
        "- the same on wasmtime, ≥ 4x: {}",
        if has_wasmtime {
            format!(
                "reads {}, writes {} → {}",
                fmt_ratio(speedup("read", "wasmtime")),
                fmt_ratio(speedup("write", "wasmtime")),
                at_least(worst("wasmtime"), 4.0)
            )
        } else {
            "not measured (no wasmtime in this run)".into()
        }
    )?;
    let copy = |kernel: &str| {
        ratio(
            get(results, &format!("stable_access/{kernel}/wasmi/native")),
            get(results, &format!("stable_access/{kernel}/wasmtime/native")),
        )
    };
    writeln!(
        md,
        "- 1 MiB stable copies, wasmi native within 1.3x of wasmtime native: {}",
        if has_wasmtime {
            format!(
                "reads {} → {}; writes {} → {}",
                fmt_ratio(copy("read1m")),
                at_most(copy("read1m"), 1.3),
                fmt_ratio(copy("write1m")),
                at_most(copy("write1m"), 1.3)
            )
        } else {
            "not measured (no wasmtime in this run)".into()
        }
    )?;
    writeln!(md)?;
    md.push_str(SUITE1_NOTES);

    // --- suite 2 -------------------------------------------------------------------------------
    md.push_str(SUITE2_INTRO);
    writeln!(
        md,
        "| workload | engine | barrier off | mark every store | barrier (elision) | overhead, elision | overhead, every store |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    let workloads = [
        (
            "kv_insert/{e}/syscall",
            "kv: 100 `StableBTreeMap` inserts, system-API",
        ),
        (
            "kv_insert/{e}/native",
            "kv: 100 `StableBTreeMap` inserts, native",
        ),
        ("stores/{e}", "8 stores from one base × 100 000"),
        ("sort/{e}", "bubble sort of 1000 i32"),
    ];
    for (pattern, label) in workloads {
        for e in &engines {
            let base = format!("barrier/{}", pattern.replace("{e}", e));
            let off = get(results, &format!("{base}/off"));
            let every = get(results, &format!("{base}/every_store"));
            let elided = get(results, &format!("{base}/elided"));
            if off.is_none() && elided.is_none() {
                continue;
            }
            writeln!(
                md,
                "| {label} | {e} | {} | {} | {} | **{}** | {} |",
                est(off),
                est(every),
                est(elided),
                fmt_pct(ratio(elided, off)),
                fmt_pct(ratio(every, off))
            )?;
        }
    }
    writeln!(md)?;
    writeln!(
        md,
        "StableBTreeMap inserts, native vs system-API (barrier with elision, same run):\n"
    )?;
    for e in &engines {
        let r = ratio(
            get(results, &format!("barrier/kv_insert/{e}/syscall/elided")),
            get(results, &format!("barrier/kv_insert/{e}/native/elided")),
        );
        if r.is_some() {
            writeln!(
                md,
                "- {e}: system-API ÷ native = **{}** ({})",
                fmt_ratio(r),
                if r.is_some_and(|r| r >= 1.0) {
                    "native faster"
                } else {
                    "native slower"
                }
            )?;
        }
    }
    if let Some(c) = calls {
        let n = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
        let total = n("calls");
        let fast = total - n("general");
        writeln!(
            md,
            "- stable read/write calls of {} `fill` messages ({} inserts each): {} in all; \
             {:.1}% have length 8, {:.1}% length 1, 2 or 4. In native mode **{:.1}%** of them \
             took the inline fast path ({} calls went to the injected general function; counted \
             on a counting build, see below). Statically, the instrumented kv module has {} \
             constant-length fast-path call sites and {} run-time-length sites that take the \
             inline path when the length is 8.",
            n("messages"),
            n("inserts_per_message"),
            total,
            100.0 * n("len8") / total,
            100.0 * n("len124") / total,
            100.0 * fast / total,
            n("general"),
            n("static_const_sites"),
            n("static_dynamic_sites"),
        )?;
    }
    writeln!(md)?;
    writeln!(md, "Targets (issue 8):\n")?;
    for (e, target) in [("wasmi", 1.20), ("wasmtime", 1.05)] {
        let line = if engines.contains(&e) {
            let syscall = ratio(
                get(results, &format!("barrier/kv_insert/{e}/syscall/elided")),
                get(results, &format!("barrier/kv_insert/{e}/syscall/off")),
            );
            let native = ratio(
                get(results, &format!("barrier/kv_insert/{e}/native/elided")),
                get(results, &format!("barrier/kv_insert/{e}/native/off")),
            );
            format!(
                "native {} → {}; system-API {} → {}",
                fmt_pct(native),
                at_most(native, target),
                fmt_pct(syscall),
                at_most(syscall, target)
            )
        } else {
            "not measured (no wasmtime in this run)".into()
        };
        writeln!(
            md,
            "- barrier overhead on StableBTreeMap inserts, {e}, ≤ {:.0}%: {line}",
            (target - 1.0) * 100.0
        )?;
    }
    writeln!(md)?;
    md.push_str(SUITE2_NOTES);

    // --- suite 3 -------------------------------------------------------------------------------
    md.push_str(SUITE3_INTRO);
    writeln!(
        md,
        "| stores per dirty page | no tracking | byte-map barrier | mprotect + SIGSEGV | signals ÷ barrier (> 1: barrier cheaper) |"
    )?;
    writeln!(md, "|---|---|---|---|---|")?;
    for s in SWEEP {
        let g = |k: &str| {
            get(results, &format!("barrier_signals/{s}/{k}")).map(|e| e.scaled(SWEEP_PAGES))
        };
        writeln!(
            md,
            "| {s} | {} | {} | {} | {} |",
            est(g("plain")),
            est(g("barrier")),
            est(g("signals")),
            fmt_ratio(ratio(g("signals"), g("barrier")))
        )?;
    }
    writeln!(md)?;
    match crossover(results) {
        Crossover::At(s) => writeln!(
            md,
            "**Crossover: ~{s:.0} stores per dirty page** (interpolated on the log scale): below \
             it the barrier tracks a page for less than a fault costs; above it the signals win.\n"
        )?,
        Crossover::BarrierAlways => writeln!(
            md,
            "**No crossover in the sweep**: the barrier is cheaper at every point up to {} stores \
             per dirty page.\n",
            SWEEP[SWEEP.len() - 1]
        )?,
        Crossover::SignalsAlways => writeln!(
            md,
            "**No crossover in the sweep**: the signals are cheaper at every point.\n"
        )?,
        Crossover::Unknown => writeln!(md, "Crossover: not measured.\n")?,
    }
    writeln!(md, "![barrier vs signals](docs/bench/crossover.svg)\n")?;
    md.push_str(SUITE3_NOTES);

    // --- suite 4 -------------------------------------------------------------------------------
    md.push_str(SUITE4_INTRO);
    writeln!(md, "| stable memory | update + checkpoint | vs 16 MiB |")?;
    writeln!(md, "|---|---|---|")?;
    let base = get(results, "checkpoint/16");
    for mib in [16u64, 64, 256, 1024] {
        let e = get(results, &format!("checkpoint/{mib}"));
        let size = if mib >= 1024 {
            format!("{} GiB", mib / 1024)
        } else {
            format!("{mib} MiB")
        };
        writeln!(
            md,
            "| {size} | {} | {} |",
            est(e),
            fmt_ratio(ratio(e, base))
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Target (issue 8): checkpoint time with 16 dirty pages, 1 GiB ≤ 1.5x the 16 MiB case: {}\n",
        at_most(ratio(get(results, "checkpoint/1024"), base), 1.5)
    )?;
    md.push_str(SUITE4_NOTES);
    writeln!(
        md,
        "Opening the state directory of a canister whose stable memory was grown but written only at \
         17 pages (`PersistentCanister::open`: read the page files, rebuild, check the state hash):\n"
    )?;
    writeln!(md, "| stable mode | 16 MiB | 1 GiB | 1 GiB ÷ 16 MiB |")?;
    writeln!(md, "|---|---|---|---|")?;
    for mode in ["native", "syscall"] {
        let small = get(results, &format!("checkpoint/open/{mode}/16"));
        let large = get(results, &format!("checkpoint/open/{mode}/1024"));
        writeln!(
            md,
            "| {mode} | {} | {} | {} |",
            est(small),
            est(large),
            fmt_ratio(ratio(large, small))
        )?;
    }
    writeln!(md)?;
    md.push_str(SUITE4_OPEN_NOTES);

    // --- suite 5 -------------------------------------------------------------------------------
    md.push_str(SUITE5_INTRO);
    writeln!(md, "| step | median |")?;
    writeln!(md, "|---|---|")?;
    for (id, label) in [
        (
            "instrument/kv/validate",
            "validate (wasmparser, canister features)",
        ),
        (
            "cold_start/kv/instrument",
            "validate + all instrumentation passes",
        ),
        (
            "instrument/kv/compile_wasmi_eager",
            "wasmi eager translation of the instrumented module",
        ),
        (
            "cold_start/kv/wasmi",
            "**cold start on wasmi**: validate + instrument + instantiate + init + first reply",
        ),
        (
            "cold_start/kv/wasmtime",
            "**cold start on wasmtime** (uncached Cranelift compile)",
        ),
    ] {
        let e = get(results, id);
        if e.is_some() || !id.contains("wasmtime") {
            writeln!(md, "| {label} | {} |", est(e))?;
        }
    }
    writeln!(md)?;
    let cold = ratio(
        get(results, "cold_start/kv/wasmtime"),
        get(results, "cold_start/kv/wasmi"),
    );
    writeln!(
        md,
        "Target (issue 8): cold start of a large canister, wasmi ≥ 30x faster than wasmtime: {}\n",
        if has_wasmtime {
            format!(
                "wasmtime / wasmi = {} → {}",
                fmt_ratio(cold),
                at_least(cold, 30.0)
            )
        } else {
            "not measured (no wasmtime in this run)".into()
        }
    )?;
    if let Some(i) = get(results, "cold_start/kv/instrument") {
        writeln!(
            md,
            "Instrumentation of kv took {} in this run{}.\n",
            time(i.median),
            if i.median < 100e6 {
                ": in the tens of milliseconds, as the cold-start target requires"
            } else {
                " — above the tens of milliseconds the cold-start target assumes (it was 43 ms \
                 on a quiet machine before the NaN-canonicalization pass was added; this run \
                 shared the 2 cores with other builds)"
            }
        )?;
    }
    if let (Some(i), Some(w)) = (
        get(results, "cold_start/kv/instrument"),
        get(results, "cold_start/kv/wasmi"),
    ) {
        writeln!(
            md,
            "On wasmi the cold start is dominated by instrumentation: {} of {} ({:.0}%). The \
             issue's premise (wasmi compiles the module 40–150x faster than wasmtime) holds for \
             compilation alone (wasmi eager translation above vs the wasmtime cold start), but \
             validate + instrument is paid on both engines, which caps the ratio.\n",
            time(i.median),
            time(w.median),
            100.0 * i.median / w.median
        )?;
    }
    md.push_str(SUITE5_NOTES);

    // --- suite 6 -------------------------------------------------------------------------------
    md.push_str(SUITE6_INTRO);
    writeln!(md, "| engine | round trip (median) | messages/s |")?;
    writeln!(md, "|---|---|---|")?;
    for engine in ENGINES {
        if let Some(e) = get(results, &format!("subnet/round_trip/{engine}")) {
            writeln!(
                md,
                "| {engine} | {} | {:.0} |",
                est(Some(e)),
                3.0 * 1e9 / e.median
            )?;
        }
    }
    writeln!(md)?;
    if let (Some(i), Some(j)) = (
        get(results, "subnet/round_trip/wasmi"),
        get(results, "subnet/round_trip/wasmtime"),
    ) {
        writeln!(
            md,
            "Round trip time wasmi / wasmtime = {} (the same subnet code around both engines).\n",
            fmt_ratio(ratio(Some(i), Some(j)))
        )?;
    }
    md.push_str(SUITE7);
    md.push_str(CLOSING);
    Ok(md)
}

enum Crossover {
    At(f64),
    BarrierAlways,
    SignalsAlways,
    Unknown,
}

/// One point of the sweep: (stores, plain, barrier, signals), times per dirty page in ns.
type SweepPoint = (f64, f64, f64, f64);

/// A line of the chart: name, colour, and the value it takes from a sweep point.
type Series = (&'static str, &'static str, fn(&SweepPoint) -> f64);

/// Per dirty page times of the sweep.
fn sweep(results: &Results) -> Vec<SweepPoint> {
    SWEEP
        .iter()
        .filter_map(|&s| {
            let g = |k: &str| {
                get(results, &format!("barrier_signals/{s}/{k}")).map(|e| e.median / SWEEP_PAGES)
            };
            Some((f64::from(s), g("plain")?, g("barrier")?, g("signals")?))
        })
        .collect()
}

/// Where the barrier's time per dirty page overtakes the signals', interpolated on log2(stores).
fn crossover(results: &Results) -> Crossover {
    let points = sweep(results);
    if points.is_empty() {
        return Crossover::Unknown;
    }
    for w in points.windows(2) {
        let (s0, _, b0, g0) = w[0];
        let (s1, _, b1, g1) = w[1];
        let (d0, d1) = ((b0 / g0).ln(), (b1 / g1).ln());
        if d0 <= 0.0 && d1 > 0.0 {
            let (x0, x1) = (s0.log2(), s1.log2());
            return Crossover::At((x0 + (x1 - x0) * d0 / (d0 - d1)).exp2());
        }
    }
    if points.iter().all(|p| p.2 <= p.3) {
        Crossover::BarrierAlways
    } else if points.iter().all(|p| p.2 > p.3) {
        Crossover::SignalsAlways
    } else {
        Crossover::Unknown
    }
}

/// The barrier-vs-signals chart: time per dirty page against stores per dirty page, both axes
/// logarithmic, drawn by hand.
fn crossover_svg(results: &Results) -> String {
    let points = sweep(results);
    let (w, h) = (720.0, 440.0);
    let (left, right, top, bottom) = (80.0, 170.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Dirty-page tracking on wasmi: time per dirty page (256 pages per run)</text>"#,
        w / 2.0
    );
    if points.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no results</text></svg>"#,
            w / 2.0,
            h / 2.0
        );
        return svg;
    }
    let xs: Vec<f64> = points.iter().map(|p| p.0.log2()).collect();
    let (x_min, x_max) = (xs[0], xs[xs.len() - 1].max(xs[0] + 1.0));
    let all: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.1, p.2, p.3])
        .filter(|v| *v > 0.0)
        .collect();
    let y_min = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let y_max = all
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(y_min + 1.0);
    let px = |x: f64| left + (x.log2() - x_min) / (x_max - x_min) * pw;
    let py = |ns: f64| top + ph - (ns.log10() - y_min) / (y_max - y_min) * ph;
    // Axes and grid.
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let mut decade = y_min;
    while decade <= y_max + 1e-9 {
        let y = py(10f64.powf(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0,
            time(10f64.powf(decade))
        );
        decade += 1.0;
    }
    for p in &points {
        let x = px(p.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 18.0,
            p.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">stores per dirty page (8-byte i64.store, one per loop iteration)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">time per dirty page</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    // Series.
    let series: [Series; 3] = [
        ("no tracking", "#999999", |p| p.1),
        ("byte-map barrier", "#1f77b4", |p| p.2),
        ("mprotect + SIGSEGV", "#d62728", |p| p.3),
    ];
    for (i, (name, color, f)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(f(p))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for p in &points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                px(p.0),
                py(f(p))
            );
        }
        let ly = top + 10.0 + 20.0 * i as f64;
        let lx = left + pw + 14.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0
        );
    }
    if let Crossover::At(s) = crossover(results) {
        let x = px(s);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#2ca02c" stroke-dasharray="5,4" stroke-width="1.5"/><text x="{:.1}" y="{}" fill="#2ca02c">crossover ≈ {s:.0}</text>"##,
            top + ph,
            x + 4.0,
            top + 14.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn cores() -> String {
    std::thread::available_parallelism()
        .map(|n| format!("{n} (shared with other work while measuring)"))
        .unwrap_or_else(|_| "unknown".into())
}

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kib: f64 = s
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.0} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn os() -> String {
    let name = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l["PRETTY_NAME=".len()..].trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!(", Linux {}", s.trim()))
        .unwrap_or_default();
    format!("{name}{kernel}")
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The version of `package` in Cargo.lock.
fn lock_version(root: &Path, package: &str) -> String {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"")
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return v.trim_matches('"').to_string();
        }
    }
    "unknown".into()
}

const INTRO: &str = r#"Reproduce with `cargo xtask bench --quick` (under 10 minutes on this 2-core machine with warm
builds; the time of this run is in the table above) or `cargo xtask bench` (the full run: 30
samples and 5 s of measurement per benchmark, about 90 benchmarks: 13.4 minutes on this machine
with warm builds; the wasmtime build of a cold target directory adds ~8–15 minutes). Both honour `CARGO_TARGET_DIR`;
`--report-only` regenerates this file from the last results. The suites are in `benches/`, one
file per concern, with their kernels in `benches/wat/`; CI builds them (clippy `--all-targets`)
but does not run them.

**Noise.** The machine is a shared virtual machine whose 2 cores were also compiling for other
engineers during these runs, and its speed drifts between runs (the same empty loop has measured
7.4 ns and 8.6 ns per iteration on different runs). Compare ratios within one run, not absolute
times across runs; quick-mode intervals are wide.

**Interpreter cost model** (DESIGN.md §3). On wasmi every executed Wasm instruction costs roughly
1–2 ns, so the native path is only faster if the injected code executes few instructions: a JIT
turns the injected function into a few machine instructions, an interpreter dispatches each of its
~15 Wasm instructions. Measured before this issue on a stand-alone loop of 2M random 8-byte
reads (wasmi 2.0 vs wasmtime 48): empty iteration ~20 vs ~2 ns; host-call read ~42–58 vs
~14–21 ns; IC-style injected function ~46 vs ~8 ns; bare `i64.load` + `i64.store` ~31 vs
~3.4 ns; check + load + store inlined at the call site ~14–18 vs ~2.8 ns. Hence the instrumentation
for an interpreter: a fast path for constant lengths 1/2/4/8 (and run-time length 8), the bound
kept in a global (`stable_bytes - 7`) so the stable check is one fused compare-and-branch, no call
on the fast path, and a constant-length call's metering folded into its basic block's charge (no
instruction executed for it at the call site).

"#;

const SUITE1_INTRO: &str = r#"## 1. Stable memory access (`benches/stable_access.rs`)

One update message per iteration over `benches/wat/stable_access.wat`: 100 000 pseudo-random
8-byte accesses over one 64 KiB (cache-resident) stable page, 4096 copies of 4 KiB at random
4 KiB-aligned offsets in 1 MiB, or 64 copies of 1 MiB. The time shown is the message time divided
by the accesses per message: it includes the per-message work (message setup, and the commit and
state-hash update of the pages the message dirtied, a small share for 8-byte accesses but a
visible one for the bulk kernels, equal in both modes). Metering and the write barrier are on in
both modes, as the runtime always runs. System-API mode: `ic0.stable64_read/write` are host
calls into a host buffer. Native mode: stable memory is an injected memory64 memory; 8-byte
accesses take the inline fast path, bulk ones call the injected function (`memory.copy` between
memories, plus the barrier's `memory.fill` of the byte map for writes).

"#;

const SUITE1_NOTES: &str = r#"What the wasmi fast path executes per 8-byte access: two `local.set`s of the operands, one
compare-and-branch against `$fast_limit` (plus one against `u32::MAX` for the wasm32 heap
address), the load/store pair, a `br`, and the write barrier's marks for the page(s) the store
wrote (the heap page for a read, the stable page for a write) — each an interpreter dispatch of
1–2 ns, against a host call whose own cost on wasmi is ~40–60 ns. The metering charge of a
constant-length call is folded into its basic block's charge by the metering pass, in both modes,
so neither mode executes anything for it (which also made system-API mode's constant-length
calls a little cheaper). `read_dyn` (length in a local) charges at the call site and adds the
`len == 8` branch. Bulk copies are `memcpy`-bound in both modes and on both engines:
a 1 MiB `memory.copy` on wasmi is one host-side copy, as on wasmtime, which is why the 1 MiB
target compares the engines rather than the modes; per-copy dispatch costs show only at 4 KiB.

"#;

const SUITE2_INTRO: &str = r#"## 2. Write-barrier cost (`benches/barrier.rs`)

The same module instrumented three ways — barrier off, a mark after every store (elision off:
`barrier::rewrite_with(.., false)`), and the barrier as the runtime instruments it (elision on) —
with metering on, run on a bare host (`benches/common/raw.rs`: the runtime's `ic0` linker, Wasm
execution plus reading and clearing the byte maps after every message; the runtime's snapshot,
commit and state hash are left out because they do not depend on the barrier). Workloads: the kv
test canister's `fill(100)` (100 inserts of 32-byte values into a `StableBTreeMap` that keeps
growing over the run), 100 000 groups of eight `i64.store`s from one base (the barrier's worst
case, DESIGN.md §4), and a bubble sort of 1000 i32. Time per message.

"#;

const SUITE2_NOTES: &str = r#"**How stable these overheads are.** On this machine the kv overheads move by several points
between runs, more than their confidence intervals say: two separate full-mode runs of only the
wasmi kv rows (30 samples each; one on this code, one on a variant of the bulk-operator marks
that was not kept) measured the native overhead at +24% and +28% and the system-API one at +16%
and +13%. Read the wasmi ≤ 20% verdicts as borderline either way, not as settled. A negative
overhead (the wasmtime system-API row of some runs, whose "barrier off" column then has a wide
interval) is such noise, not a barrier that makes code faster.

How the fast-path share is counted: before measuring, the bench runs 20 `fill(100)` messages in
system-API mode with counting host functions (every stable read/write reaches the host, with its
length), then the same 20 messages in native mode on a *counting build*: the instrumented module
rewritten so that the injected general `stable*_read/write` functions increment an exported
counter on entry (the inline fast path never calls them). Both runs are deterministic and execute
the same calls, so the share of fast-path calls is 1 − general / all. The counts are in
`target/criterion/barrier/kv_stable_calls.json`.

Why native mode gains little on the StableBTreeMap workload: only the calls with length 8 take the
inline path (ic-stable-structures passes lengths at run time, so no call site has a constant
length, and a run-time length takes the inline path only when it is 8); the rest — lengths 1, 2, 4
and the values' variable lengths — call the injected general function, which on wasmi is no faster
than a host call (DESIGN.md §3). On wasmtime the general function is a few machine instructions,
so native mode gains there.

Two things to keep in mind when reading the kv rows. In system-API mode stable memory's dirty
pages are recorded by the host functions whatever the barrier setting, so there the barrier only
tracks the heap; in native mode "barrier off" tracks nothing at all, and the barrier also marks
every stable write (through the injected functions' `memory.fill` of the stable map), so native
mode's overhead includes the stable-memory tracking that system-API mode pays in the host in every
column. And the map keeps growing over a benchmark (each variant starts from an empty canister and
runs a few hundred messages), so insert costs drift slightly with the iteration count.

Why the barrier costs what it costs: a mark is ~6 Wasm instructions (address, shift, byte store
into the map) per unelided store, ~1–2 ns each on wasmi. Elision removes the marks of stores that
share a base local within a basic block; the StableBTreeMap workload's stores are mostly spread
over many small functions and loops, where groups end early. On wasmtime a mark is a few machine
instructions, but the JIT-compiled baseline is ~10x faster than wasmi's, so the same marks are a
similar share of the time: the ≤ 5% target, taken from a JIT barrier that elides far more (IC
PR #150), needs the cross-block elision of the closing note.

"#;

const SUITE3_INTRO: &str = r#"## 3. Write barrier vs signals (`benches/barrier_signals.rs`, Linux only)

The same write pattern, `stores` 8-byte stores into each of 256 pages spread over a 16 MiB memory
(`benches/wat/dirty_pages.wat`, one `i64.store` per loop iteration, so no mark can be elided), its
dirty pages tracked three ways on wasmi: not at all; by the byte-map barrier (the kernel
instrumented with metering off; the map is read and cleared after each run); and by an
`mprotect` + SIGSEGV tracker written for this benchmark only — the uninstrumented kernel runs over a
memmap2 region handed to wasmi as its memory (`Memory::new_static`); before each run the region is
made read-only (one `mprotect`), the first write to each page faults, the handler records the page
and makes it writable, and the dirty pages are collected after the run. This is the scheme the IC
uses for canister heaps (DESIGN.md §4). Time per dirty page (run time / 256).

"#;

const SUITE3_NOTES: &str = r#"Reading it: the signal tracker pays a fixed cost per dirty page (a fault, a trip through the
kernel and a `mprotect`, plus its share of re-protecting the region), then nothing per store; the
barrier pays nothing per page but a mark per store. So the barrier wins for pages written a few
times and loses for pages written many times over within one message. The runtime
keeps the barrier because it needs no signals (portable, wasm32-wasip1, no handler to share with
the engine) and because the barrier's marks also give the dirty set of stable memory and of bulk
operations at the same price. wasmtime is left out of this suite: it installs its own SIGSEGV
handler for its guard pages, which a second handler would have to chain to.

"#;

const SUITE4_INTRO: &str = r#"## 4. Checkpoint cost vs memory size (`benches/checkpoint.rs`)

A canister whose stable memory holds N bytes (every page written at install) runs an update that
writes 8 bytes into each of 16 stable pages spread over the whole memory; the time is
`PersistentCanister::update` — the message plus its delta checkpoint to the state directory on
disk (a write-ahead log of the dirty pages, fsynced, an atomic switch, then the pages written in
place; README "State directory").

"#;

const SUITE4_NOTES: &str = r#"The message itself is the same at every size (16 stores); whatever grows with the memory is the
persistence, and a delta checkpoint costs O(dirty pages): 17 pages (16 stable + 1 heap) are
written at every size. What still grows with the memory is in the noise here (the byte maps read
after the message, one byte per 4 KiB page). fsync dominates and varies with the disk.

"#;

const SUITE4_OPEN_NOTES: &str = r#"Reading a page file reads only its data extents (`SEEK_DATA`/`SEEK_HOLE`), and restoring and
hashing then touch only the non-zero pages found there, so in system-API mode (stable memory is a
host buffer) opening a 1 GiB canister costs what opening a 16 MiB one does. In native mode stable
memory is a wasmi memory, and wasmi writes zeros over every byte a memory grows by (its static
buffers too): canister-vm grows it in 16 MiB steps and hands each step's zero pages back to the
OS, which keeps resident memory O(pages written) but leaves the CPU time O(memory size), page
faults mostly. Closing that needs a wasmi memory that can grow without writing (fresh anonymous
mappings already read as zero) — a change upstream, not here.

Why 16 MiB can open slower than 1 GiB here: the benchmark is one long-lived process, and glibc
raises its mmap threshold (up to 32 MiB) after large blocks are freed, so a 16 MiB zeroed buffer
then comes from reused heap memory that calloc must clear, while a 1 GiB one is always a fresh
mapping. With `MALLOC_MMAP_THRESHOLD_=1048576` (a fixed threshold) the same benchmark measured
3.3 ms for 16 MiB and 12 ms for 1 GiB in system-API mode; a fresh `canister-vm info` process
takes ~14.5 ms of CPU for both sizes (`perf stat`).

"#;

const SUITE5_INTRO: &str = r#"## 5. Cold start (`benches/cold_start.rs`, `benches/instrument.rs`)

The issue's target names a 1.8 MB asset canister; this machine cannot fetch one, so the canister
measured is the largest test canister, `kv` (~540 KB of Wasm: ic-cdk 0.20, candid,
ic-stable-structures' `StableBTreeMap`), built by `cargo xtask build-canisters`. Cold start =
`Canister::create` (validate, instrument, compile: wasmi's eager translation or wasmtime's uncached
Cranelift compilation, instantiate) + `canister_init` + the first reply (the query `len`). A
1.8 MB module would scale the compile-bound parts roughly linearly with its code size.

"#;

const SUITE5_NOTES: &str = r#"wasmi's eager translation is a single linear pass over the code, where Cranelift optimises and
emits machine code for every function, so the compile-bound part of a cold start is where the
interpreter wins.

"#;

const SUITE6_INTRO: &str = r#"## 6. Inter-canister round trip (`benches/subnet.rs`)

One ingress update to canister A that calls `echo` on canister B and answers from its reply
callback: three messages (the ingress request, A's request to B, A's reply callback), each its
own transaction with commit, dirty-page tracking and state-hash update, on a `Subnet` of two relay
canisters (`tests/support/relay.wat`). Messages per second = 3 / median.

"#;

/// Section 7 is measured by hand (`benches/cli_bench.sh`, hyperfine), not by criterion: its
/// figures stay as they were written.
const SUITE7: &str = r#"## 7. `canister-vm bench` vs one CLI call per benchmark (`benches/cli_bench.sh`)

The wall time of a whole canbench suite (`canister-vm bench`: read `canbench.yml`, install the
`bench` test canister once, run its 8 benchmarks, print the report) against the same 8
benchmarks as one `canister-vm call <DIR> __canbench__<name> --query` each on a state
directory, the closest per-call workflow. Release build, hyperfine medians of 20 runs after 3
warm-ups, each side starting its processes (`benches/cli_bench.sh`).

*Measured by hand* (2026-12-02, commit 4ea48f5, wasmi; `cargo xtask bench` does not run it and
keeps this text as it is):

| workflow | median |
|---|---|
| `canister-vm bench` (install + 8 benchmarks, one process) | 100 ms |
| 8 × `call --query` on an installed state directory | 649 ms |
| `install` + 8 × `call --query` | 951 ms |

Per-call / `bench` = **6.5x** (9.5x with the install). A `bench` that runs no benchmark
(`canister-vm bench no_such_benchmark`) takes 75 ms of the suite's ~86 ms (`hyperfine -N`, same
session): process start, instrumenting and translating the 744 KB module and `canister_init`.
The 8 benchmarks themselves take ~11 ms together; every `call` pays the start-up again (~80 ms:
opening and locking the state directory, restoring and instantiating the canister), so the gap
grows with the number of benchmarks. canbench itself was not measured (it downloads a PocketIC
server, which this machine cannot fetch).

"#;

const CLOSING: &str = r#"## Closing note: what would close the gaps

- **8-byte stable access on wasmi (≥ 2x).** At the line since the fast path became one fused
  compare-and-branch and constant-length charges were folded into the block's metering: reads
  2.11x–2.16x, writes 1.99x–2.20x across runs (the write pays the barrier's two marks of the
  stable page, a memory64 address shifted and wrapped). More would come from the barrier's
  marks (a stable write's page could be marked once per basic block for same-base accesses, as
  heap stores are) and from using the call's operand locals directly instead of copying them
  into scratch locals.
- **Barrier overhead on StableBTreeMap inserts.** Elision across basic blocks (dominating marks of
  the same base and page), or marking per function for stack-pointer-relative stores (the shadow
  stack is the bulk of the heap stores of Rust canisters), would remove most marks that remain.
- **StableBTreeMap native vs system-API.** Inline paths for run-time lengths 1, 2 and 4 as well
  as 8 (one `br_table` on the length), so that most of ic-stable-structures' calls avoid the
  injected general function.
- **Cold start (≥ 30x).** Instrumentation was most of wasmi's cold start: each pass parses the
  whole module and re-encoded it. The passes now copy every operator they do not change as raw
  bytes (only the stable pass re-encodes, and only calls and `ref.func`s whose function index
  moved) and read each body's operators once per pass: instrumenting kv went from 55 ms to
  ~30 ms, the cold start from 82 ms to ~59 ms (8.4x to ~11.7x). The rest is the five parses of
  every body (validation, metering, NaN, stable, barrier): fusing the passes into one would
  bring instrumentation to about one pass (~10 ms), but even then the target is out of reach
  with eager translation: wasmtime's ~700 ms ÷ 30 leaves ~23 ms, and wasmi's eager translation
  of the instrumented kv alone takes ~18 ms. Reaching 30x needs both the fused pass and lazy
  translation (wasmi's `CompilationMode::LazyTranslation`, which the runtime does not use so
  that a module is fully translated before it runs, DESIGN.md §10).
  The measured module is the 540 KB kv canister, not the 1.8 MB asset canister of the target;
  both sides scale with code size.
"#;
