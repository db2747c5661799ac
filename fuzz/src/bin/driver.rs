//! `fuzz-driver`: the seed loop of `cargo xtask fuzz` (see `canister_vm_fuzz::driver`), and
//! `check`, which runs one module file through a check (in a child process, so an abort is
//! reported too).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use canister_vm_fuzz::checks::{Prepared, Target, Verdict, check_prepared};
use canister_vm_fuzz::driver::{RunConfig, print_summary, run, worker};
use canister_vm_fuzz::exec::{Call, Value};
use canister_vm_fuzz::module::Layout;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Differential fuzzing of canister-vm")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Checks generated modules in worker processes until a limit is reached.
    Run {
        /// Targets, comma-separated, or `all` (every target this build has).
        #[arg(long, default_value = "all")]
        target: String,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
        /// Stop after this many modules.
        #[arg(long)]
        modules: Option<u64>,
        /// The first seed (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// Worker processes.
        #[arg(long, default_value_t = 1)]
        jobs: u64,
        /// Where findings are written.
        #[arg(long, default_value = "target/fuzz-failures")]
        out: PathBuf,
    },
    /// (internal) One worker of `run`.
    Worker {
        #[arg(long)]
        targets: String,
        #[arg(long)]
        start: u64,
        #[arg(long)]
        stride: u64,
        #[arg(long)]
        count: Option<u64>,
        #[arg(long)]
        deadline: Option<u64>,
    },
    /// Runs a module file (.wat or .wasm) through a check; exit status 1 on a finding.
    Check {
        /// The target.
        #[arg(long)]
        target: String,
        /// A call `name(arg, ...)`; repeatable. Default: every export, with zero arguments.
        #[arg(long = "call")]
        calls: Vec<String>,
        /// Run in this process (otherwise a child runs it, so an abort is reported).
        #[arg(long)]
        in_process: bool,
        /// The module.
        file: PathBuf,
    },
}

fn targets(list: &str) -> anyhow::Result<Vec<Target>> {
    if list == "all" {
        return Ok(Target::ALL
            .into_iter()
            .filter(|t| t.is_available())
            .collect());
    }
    list.split(',')
        .map(|name| {
            let t = Target::from_name(name.trim()).with_context(|| {
                let all: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
                format!("unknown target `{name}` (one of: all, {})", all.join(", "))
            })?;
            if !t.is_available() {
                bail!("target `{name}` needs the `wasmtime` feature of canister-vm-fuzz");
            }
            Ok(t)
        })
        .collect()
}

/// Parses `name(a, b)` against the module's exports.
fn parse_call(text: &str, layout: &Layout) -> anyhow::Result<Call> {
    let (name, rest) = text.split_once('(').unwrap_or((text, ")"));
    let args_text = rest.strip_suffix(')').context("a call ends with `)`")?;
    let f = layout
        .funcs
        .iter()
        .find(|f| f.name == name.trim())
        .with_context(|| format!("no exported function `{name}`"))?;
    let words: Vec<&str> = args_text
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() != f.params.len() {
        bail!("`{}` takes {} arguments", f.name, f.params.len());
    }
    use wasmparser::ValType as T;
    let args = words
        .iter()
        .zip(&f.params)
        .map(|(w, t)| {
            Ok(match t {
                T::I32 => Value::I32(w.parse::<i64>()? as i32),
                T::I64 => Value::I64(w.parse::<i128>()? as i64),
                T::F32 => Value::F32(w.parse::<f32>()?.to_bits()),
                T::F64 => Value::F64(w.parse::<f64>()?.to_bits()),
                T::V128 => Value::V128(w.parse::<u128>()?),
                T::Ref(_) => Value::Ref { null: true },
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Call {
        export: f.name.clone(),
        args,
    })
}

fn check_file(target: Target, file: &PathBuf, calls: &[String]) -> anyhow::Result<ExitCode> {
    let wasm = wat::parse_file(file).with_context(|| format!("reading {}", file.display()))?;
    let layout = Layout::of(&wasm)?;
    let calls: Vec<Call> = if calls.is_empty() {
        layout
            .funcs
            .iter()
            .map(|f| Call {
                export: f.name.clone(),
                args: f.params.iter().map(|t| Value::zero(*t)).collect(),
            })
            .collect()
    } else {
        calls
            .iter()
            .map(|c| parse_call(c, &layout))
            .collect::<anyhow::Result<_>>()?
    };
    let prepared = match Prepared::from_parts(&wasm, calls, None) {
        Ok(p) => p,
        Err(v) => {
            println!("{}: {v:?}", target.name());
            return Ok(ExitCode::from(u8::from(matches!(v, Verdict::Finding(_)))));
        }
    };
    let outcome = check_prepared(target, &prepared);
    println!(
        "{}: {:?} ({} calls)",
        target.name(),
        outcome.verdict,
        outcome.calls
    );
    Ok(ExitCode::from(u8::from(outcome.finding().is_some())))
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Cmd::Run {
            target,
            seconds,
            modules,
            seed,
            jobs,
            out,
        } => {
            if seconds.is_none() && modules.is_none() {
                bail!("give --seconds or --modules");
            }
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() * 1_000_000)
                    .unwrap_or(0)
            });
            let config = RunConfig {
                targets: targets(&target)?,
                seconds,
                modules,
                seed,
                jobs: jobs.max(1),
                out,
                hang_after: Duration::from_secs(120),
            };
            let names: Vec<_> = config.targets.iter().map(|t| t.name()).collect();
            println!(
                "fuzzing {} from seed {seed} with {} jobs (findings go to {})",
                names.join(", "),
                config.jobs,
                config.out.display()
            );
            let started = Instant::now();
            let (stats, findings) = run(&config)?;
            print_summary(&stats, started.elapsed(), config.jobs);
            if findings > 0 {
                println!(
                    "{findings} findings; modules and reasons in {}",
                    config.out.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Worker {
            targets: list,
            start,
            stride,
            count,
            deadline,
        } => {
            worker(&targets(&list)?, start, stride, count, deadline);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check {
            target,
            calls,
            in_process,
            file,
        } => {
            let target = *targets(&target)?.first().context("one target")?;
            if in_process {
                return check_file(target, &file, &calls);
            }
            let mut cmd = std::process::Command::new(std::env::current_exe()?);
            cmd.args(["check", "--in-process", "--target", target.name()]);
            for c in &calls {
                cmd.arg("--call").arg(c);
            }
            let status = cmd.arg(&file).status()?;
            if status.code().is_none() || status.code() == Some(101) {
                println!(
                    "{}: Finding(abort): the check process died ({status}) on {}",
                    target.name(),
                    file.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
        }
    }
}
