//! The fuzz driver behind `cargo xtask fuzz`: a loop over seeds in worker processes.
//!
//! The parent hands each of `--jobs` workers (this same binary, `worker` subcommand) every
//! `jobs`-th seed from `--seed` on. A worker prints `B <target> <seed>` before each check and
//! `R …` with the verdict after it, so when a worker dies (a host stack overflow aborts the
//! process) or stops answering, the parent knows the seed, reports it as a finding of class
//! `abort` / `hang`, and starts a new worker after that seed. Every finding is written to the
//! output directory as `<target>-<seed>.wasm`, `.wat` and `.txt` (the reason, one line).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::checks::{Target, Verdict, check_seed};
use crate::generate::Input;

/// Environment variable that makes a worker abort on one seed (tests the crash reporting).
pub const ABORT_SEED_VAR: &str = "CANISTER_VM_FUZZ_ABORT_SEED";

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The targets every seed is checked with.
    pub targets: Vec<Target>,
    /// Stop after this long.
    pub seconds: Option<u64>,
    /// Stop after this many modules (per target).
    pub modules: Option<u64>,
    /// The first seed.
    pub seed: u64,
    /// Worker processes.
    pub jobs: u64,
    /// Where findings are written.
    pub out: PathBuf,
    /// A worker silent this long is killed and its seed reported as a hang.
    pub hang_after: Duration,
}

/// Counters of one target.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Modules checked.
    pub modules: u64,
    /// Calls made.
    pub calls: u64,
    /// Seconds spent in checks (summed over workers).
    pub busy: f64,
    /// Modules skipped, by reason (first words).
    pub skipped: BTreeMap<String, u64>,
    /// Modules checked with no call made (instantiation trapped alike, or nothing exported).
    pub no_calls: u64,
    /// Findings by class.
    pub findings: BTreeMap<String, u64>,
    /// Documented differences by kind.
    pub documented: BTreeMap<String, u64>,
}

/// One line of the worker protocol.
enum Line {
    Begin(Target, u64),
    Result {
        target: Target,
        seed: u64,
        kind: String,
        class: String,
        calls: u64,
        micros: u64,
        detail: String,
    },
    Finished,
}

fn parse_line(line: &str) -> Option<Line> {
    let mut parts = line.splitn(8, '\t');
    match parts.next()? {
        "B" => Some(Line::Begin(
            Target::from_name(parts.next()?)?,
            parts.next()?.parse().ok()?,
        )),
        "R" => Some(Line::Result {
            target: Target::from_name(parts.next()?)?,
            seed: parts.next()?.parse().ok()?,
            kind: parts.next()?.to_string(),
            class: parts.next()?.to_string(),
            calls: parts.next()?.parse().ok()?,
            micros: parts.next()?.parse().ok()?,
            detail: parts.next().unwrap_or("").to_string(),
        }),
        "F" => Some(Line::Finished),
        _ => None,
    }
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > 2000 {
        let mut end = 2000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// The worker loop: checks seeds `start, start + stride, …` with every target until `deadline`
/// (seconds since the Unix epoch) or `count` seeds, printing the protocol lines.
pub fn worker(
    targets: &[Target],
    start: u64,
    stride: u64,
    count: Option<u64>,
    deadline: Option<u64>,
) {
    // Panics are caught and reported by the checks; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    // For the driver's own test: abort on this seed, as a host stack overflow would.
    let abort_seed: Option<u64> = std::env::var(ABORT_SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok());
    let stdout = std::io::stdout();
    let mut seed = start;
    let mut done = 0u64;
    loop {
        if count.is_some_and(|c| done >= c) {
            break;
        }
        if let Some(d) = deadline {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if now >= d {
                break;
            }
        }
        for &target in targets {
            {
                let mut out = stdout.lock();
                let _ = writeln!(out, "B\t{}\t{seed}", target.name());
                let _ = out.flush();
            }
            if abort_seed == Some(seed) {
                std::process::abort();
            }
            let started = Instant::now();
            let outcome = check_seed(target, seed);
            let micros = started.elapsed().as_micros() as u64;
            let (kind, class, detail) = match &outcome.verdict {
                Verdict::Pass => ("pass", String::new(), String::new()),
                Verdict::Documented(d, why) => ("doc", d.name().to_string(), why.clone()),
                Verdict::Skipped(why) => ("skip", String::new(), why.clone()),
                Verdict::Finding(f) => ("find", f.class.to_string(), f.detail.clone()),
            };
            let mut out = stdout.lock();
            let _ = writeln!(
                out,
                "R\t{}\t{seed}\t{kind}\t{class}\t{}\t{micros}\t{}",
                target.name(),
                outcome.calls,
                one_line(&detail)
            );
            let _ = out.flush();
        }
        done += 1;
        seed = seed.wrapping_add(stride);
    }
    let mut out = stdout.lock();
    let _ = writeln!(out, "F");
    let _ = out.flush();
}

struct Worker {
    child: Child,
    /// The check running now, if any.
    current: Option<(Target, u64)>,
    remaining: Option<u64>,
    last_heard: Instant,
    finished: bool,
    /// Killed for not answering.
    hung: bool,
}

enum Event {
    Line(usize, String),
    Closed(usize),
}

/// Writes a finding's module and reason to `out`.
pub fn save_failure(out: &Path, target: Target, seed: u64, class: &str, detail: &str) -> PathBuf {
    let _ = std::fs::create_dir_all(out);
    let stem = out.join(format!("{}-{seed}", target.name()));
    match Input::for_target(target, seed) {
        Ok(input) => {
            let _ = std::fs::write(stem.with_extension("wasm"), &input.wasm);
            if let Ok(text) = wasmprinter::print_bytes(&input.wasm) {
                let _ = std::fs::write(stem.with_extension("wat"), text);
            }
            let calls: Vec<String> = input.calls.iter().map(|c| c.to_string()).collect();
            let _ = std::fs::write(
                stem.with_extension("txt"),
                format!(
                    "seed {seed} target {} class {class}: {detail}\ncalls: {}\n",
                    target.name(),
                    calls.join(" ")
                ),
            );
        }
        Err(e) => {
            let _ = std::fs::write(
                stem.with_extension("txt"),
                format!(
                    "seed {seed} target {} class {class}: {detail} (generator: {e})\n",
                    target.name()
                ),
            );
        }
    }
    stem
}

fn spawn(
    exe: &Path,
    config: &RunConfig,
    index: usize,
    start: u64,
    remaining: Option<u64>,
    deadline: Option<u64>,
    events: &mpsc::Sender<Event>,
) -> std::io::Result<Worker> {
    let targets: Vec<&str> = config.targets.iter().map(|t| t.name()).collect();
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .arg("--targets")
        .arg(targets.join(","))
        .arg("--start")
        .arg(start.to_string())
        .arg("--stride")
        .arg(config.jobs.to_string());
    if let Some(r) = remaining {
        cmd.arg("--count").arg(r.to_string());
    }
    if let Some(d) = deadline {
        cmd.arg("--deadline").arg(d.to_string());
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let tx = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(Event::Line(index, l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Event::Closed(index));
    });
    Ok(Worker {
        child,
        current: None,
        remaining,
        last_heard: Instant::now(),
        finished: false,
        hung: false,
    })
}

/// Runs the driver loop; returns the per-target stats and the number of findings.
pub fn run(config: &RunConfig) -> std::io::Result<(BTreeMap<&'static str, Stats>, u64)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let epoch_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let deadline = config.seconds.map(|s| epoch_now + s);
    let per_worker = config
        .modules
        .map(|m| (0..config.jobs).map(move |i| m / config.jobs + u64::from(i < m % config.jobs)));
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    for i in 0..config.jobs {
        let remaining = per_worker
            .clone()
            .map(|mut it| it.nth(i as usize).unwrap_or(0));
        workers.push(spawn(
            &exe,
            config,
            i as usize,
            config.seed + i,
            remaining,
            deadline,
            &tx,
        )?);
    }
    let mut stats: BTreeMap<&'static str, Stats> = config
        .targets
        .iter()
        .map(|t| (t.name(), Stats::default()))
        .collect();
    let mut findings = 0u64;
    let mut saved = 0u64;
    let mut last_progress = Instant::now();
    let mut report = |target: Target,
                      seed: u64,
                      class: &str,
                      detail: &str,
                      stats: &mut BTreeMap<&'static str, Stats>| {
        findings += 1;
        *stats
            .get_mut(target.name())
            .expect("target stats")
            .findings
            .entry(class.to_string())
            .or_default() += 1;
        let path = if saved < 500 {
            saved += 1;
            save_failure(&config.out, target, seed, class, detail)
                .display()
                .to_string()
        } else {
            "(not saved: 500 already)".into()
        };
        println!(
            "FINDING {} seed {seed} [{class}] {detail} -> {path}",
            target.name()
        );
    };
    while workers.iter().any(|w| !w.finished) {
        let event = rx.recv_timeout(Duration::from_millis(500));
        match event {
            Ok(Event::Line(i, line)) => {
                let w = &mut workers[i];
                w.last_heard = Instant::now();
                match parse_line(&line) {
                    Some(Line::Begin(target, seed)) => w.current = Some((target, seed)),
                    Some(Line::Result {
                        target,
                        seed,
                        kind,
                        class,
                        calls,
                        micros,
                        detail,
                    }) => {
                        w.current = None;
                        let s = stats.get_mut(target.name()).expect("target stats");
                        s.modules += 1;
                        s.calls += calls;
                        s.busy += micros as f64 / 1e6;
                        if calls == 0 && kind != "skip" {
                            s.no_calls += 1;
                        }
                        match kind.as_str() {
                            "doc" => *s.documented.entry(class).or_default() += 1,
                            "skip" => *s.skipped.entry(skip_reason(&detail)).or_default() += 1,
                            "find" => report(target, seed, &class, &detail, &mut stats),
                            _ => {}
                        }
                        if config.targets.last() == Some(&target)
                            && let Some(r) = &mut w.remaining
                        {
                            *r = r.saturating_sub(1);
                        }
                    }
                    Some(Line::Finished) => {}
                    None => {}
                }
            }
            Ok(Event::Closed(i)) => {
                let w = &mut workers[i];
                let status = w.child.wait().ok();
                if let Some((target, seed)) = w.current.take() {
                    let why = match status {
                        Some(s) => describe_exit(s),
                        None => "unknown status".into(),
                    };
                    let (class, why) = match w.hung {
                        true => (
                            "hang",
                            format!("no answer for {} s", config.hang_after.as_secs()),
                        ),
                        false => ("abort", format!("worker died: {why}")),
                    };
                    let s = stats.get_mut(target.name()).expect("target stats");
                    s.modules += 1;
                    report(target, seed, class, &why, &mut stats);
                    let next = seed + config.jobs;
                    let remaining = w.remaining.map(|r| r.saturating_sub(1));
                    if remaining != Some(0) {
                        workers[i] = spawn(&exe, config, i, next, remaining, deadline, &tx)?;
                        continue;
                    }
                }
                workers[i].finished = true;
            }
            Err(_) => {}
        }
        for w in workers.iter_mut() {
            if !w.finished && !w.hung && w.last_heard.elapsed() > config.hang_after {
                // The reader thread sees the pipe close and reports the seed as a hang.
                w.hung = true;
                let _ = w.child.kill();
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            print_progress(&stats, started.elapsed());
        }
    }
    print_progress(&stats, started.elapsed());
    Ok((stats, findings))
}

/// The first words of a skip reason (up to the second `:`), for the summary.
fn skip_reason(detail: &str) -> String {
    let cut: String = detail.split(':').take(2).collect::<Vec<_>>().join(":");
    let cut = cut.split(" with type ").next().unwrap_or("").to_string();
    one_line(&cut).chars().take(80).collect()
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return format!("killed by signal {sig}{name}");
        }
    }
    format!("{status}")
}

fn print_progress(stats: &BTreeMap<&'static str, Stats>, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let line: Vec<String> = stats
        .iter()
        .map(|(name, s)| {
            let f: u64 = s.findings.values().sum();
            let d: u64 = s.documented.values().sum();
            format!(
                "{name}: {} modules ({:.0}/s), {} calls, {f} findings, {d} documented",
                s.modules,
                s.modules as f64 / secs,
                s.calls
            )
        })
        .collect();
    println!("[{:.0}s] {}", secs, line.join("; "));
}

/// Prints the final summary.
pub fn print_summary(stats: &BTreeMap<&'static str, Stats>, elapsed: Duration, jobs: u64) {
    println!(
        "summary ({:.1} s wall, {jobs} jobs):",
        elapsed.as_secs_f64()
    );
    for (name, s) in stats {
        let busy = s.busy.max(1e-9);
        let skipped: u64 = s.skipped.values().sum();
        println!(
            "  {name}: {} modules, {} calls, {skipped} skipped, {} without calls; {:.1} modules/s \
             and {:.0} calls/s per core",
            s.modules,
            s.calls,
            s.no_calls,
            s.modules as f64 / busy,
            s.calls as f64 / busy
        );
        println!("    mismatches by class: {:?}", s.findings);
        println!("    documented differences: {:?}", s.documented);
        if skipped > 0 {
            println!("    skipped: {:?}", s.skipped);
        }
    }
}
