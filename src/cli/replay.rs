//! `canister-vm replay`: re-executes a message log and compares every outcome.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::replay::{
    DirState, Engine, FILE_NAME, Log, MODULES_DIR, Modules, Options, ReplayError, Replayer, Summary,
};
use crate::runtime::CanisterConfig;
use crate::runtime::persistent::PersistentSubnet;

/// The engines `replay` can run on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReplayEngine {
    /// The wasmi interpreter.
    Wasmi,
    /// The wasmtime JIT (builds with the `wasmtime` cargo feature only).
    Wasmtime,
}

impl From<ReplayEngine> for Engine {
    fn from(e: ReplayEngine) -> Self {
        match e {
            ReplayEngine::Wasmi => Engine::Wasmi,
            ReplayEngine::Wasmtime => Engine::Wasmtime,
        }
    }
}

/// Arguments of `canister-vm replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A state directory (its own `messages.jsonl` and `modules/`), or a log file (modules by
    /// hash in a `modules/` directory next to it).
    path: PathBuf,
    /// The engine to replay on.
    #[arg(long, value_enum, default_value = "wasmi")]
    engine: ReplayEngine,
    /// Print statistics on stderr: dirty pages, messages and instructions per second.
    #[arg(long)]
    stats: bool,
    /// Fill in missing outcomes (a hand-written log file) and write the completed log: in
    /// place (atomically), or to --out.
    #[arg(long)]
    record: bool,
    /// With --record: write the completed log here instead of replacing the input (its modules
    /// are copied into a `modules/` directory next to it).
    #[arg(long, value_name = "FILE", requires = "record")]
    out: Option<PathBuf>,
    /// Start from this checkpoint (a copy of the state directory taken earlier) and skip the
    /// records it already reflects.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Where stderr is not a terminal (CI logs, pipes): print a progress line on stderr every
    /// this many records (0: none). On a terminal a progress bar shows instead.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    progress_every: usize,
}

/// Runs `replay`: `Ok(true)` when every outcome matched, `Ok(false)` after printing a divergence
/// (exit 1).
pub fn run(args: ReplayArgs) -> anyhow::Result<bool> {
    if args.record && args.path.is_dir() {
        anyhow::bail!(
            "{}: --record fills in a log file; a state directory's log is complete already",
            args.path.display()
        );
    }
    match replay(&args) {
        Ok(()) => Ok(true),
        Err(e) if e.is_divergence() => {
            eprintln!("replay of {} diverged: {e}", args.path.display());
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn replay(args: &ReplayArgs) -> Result<(), ReplayError> {
    let is_dir = args.path.is_dir();
    let (log_path, base) = if is_dir {
        (args.path.join(FILE_NAME), args.path.clone())
    } else {
        let base = match args.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (args.path.clone(), base)
    };
    // A directory stays locked (and its log checked against its checkpoint) throughout.
    let (dir_state, log) = if is_dir {
        let (state, log) = DirState::read(&args.path)?;
        (Some(state), log)
    } else {
        (None, Log::read(&log_path)?)
    };
    if let Some(line) = log.torn_tail {
        eprintln!(
            "warning: {}:{line}: torn last line skipped (a crash during an append)",
            log_path.display()
        );
    }
    if let Some(state) = &dir_state {
        state.check_log(&log)?;
    }
    let options = Options {
        engine: args.engine.into(),
        record: args.record,
        base_dir: Some(base.clone()),
    };
    let modules = Modules::dir(base.join(MODULES_DIR));
    let mut replayer = match &args.from {
        Some(dir) => {
            let config = CanisterConfig::default().engine(args.engine.into());
            let checkpoint = PersistentSubnet::open(dir, config)?;
            let records = match checkpoint.log_position() {
                Some(pos) => pos.records as usize,
                // A format-2 directory: as many records as the canister's message counter
                // counts (install, updates, upgrades), and the queries between them.
                None => {
                    let wanted = checkpoint
                        .subnet()
                        .canister(crate::runtime::subnet::canister_id(0))
                        .map_or(0, |c| c.clock().messages);
                    let mut seen = 0;
                    log.records()
                        .take_while(|r| {
                            let take = seen < wanted;
                            seen += u64::from(r.kind.ticks());
                            take
                        })
                        .count()
                }
            };
            Replayer::from_checkpoint(log, modules, checkpoint.into_subnet(), records, options)?
        }
        None => Replayer::new(log, modules, options),
    };

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(replayer.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "replaying {bar:40} {pos}/{len} records ({per_sec}, eta {eta})",
            )
            .expect("the template is valid"),
        );
        bar.set_position(replayer.position() as u64);
        bar
    });
    let started = std::time::Instant::now();
    let (every, first) = (args.progress_every, replayer.position());
    let stepped = loop {
        match replayer.step() {
            Ok(true) => {
                if let Some(bar) = &bar {
                    bar.set_position(replayer.position() as u64);
                } else if every > 0 && replayer.position() % every == 0 {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "replayed {}/{} records ({:.0} per second)",
                        replayer.position(),
                        replayer.len(),
                        if secs > 0.0 {
                            (replayer.position() - first) as f64 / secs
                        } else {
                            0.0
                        }
                    );
                }
            }
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    stepped?;
    let loaded: Vec<(String, Vec<u8>)> = replayer
        .modules()
        .loaded()
        .map(|(sha, wasm)| (sha.to_string(), wasm.to_vec()))
        .collect();
    let mut summary = replayer.finish();
    if let Some(state) = &dir_state {
        state.check_summary(&summary)?;
    }
    print_summary(args, &summary);
    if let Some(log) = summary.log.take() {
        let out = args.out.clone().unwrap_or_else(|| log_path.clone());
        let out_modules = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join(MODULES_DIR),
            _ => PathBuf::from(MODULES_DIR),
        };
        for (_, wasm) in &loaded {
            crate::replay::store_module(&out_modules, wasm)?;
        }
        log.write_atomic(&out)?;
        println!(
            "filled {} outcomes; wrote {}",
            summary.filled,
            display(&out)
        );
    }
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

fn print_summary(args: &ReplayArgs, s: &Summary) {
    let secs = s.wall.as_secs_f64();
    let ticks = if s.ticks > 0 {
        format!(", {} ticks", s.ticks)
    } else {
        String::new()
    };
    let caused = if s.caused > 0 {
        format!(" and {} messages they caused", s.caused)
    } else {
        String::new()
    };
    println!(
        "replayed {} messages{caused} on {} in {secs:.3} s: {} install, {} updates, {} queries, \
         {} upgrades{ticks} ({} rejects); every outcome identical",
        s.messages,
        Engine::from(args.engine).name(),
        s.installs,
        s.updates,
        s.queries,
        s.upgrades,
        s.rejects
    );
    if !s.subnet_hash.is_empty() {
        println!("subnet hash: {}", s.subnet_hash);
    }
    if s.skipped > 0 {
        println!("skipped {} records the checkpoint reflects", s.skipped);
    }
    println!("instructions: {}", s.instructions);
    println!(
        "state hash: {}",
        s.state_hash.as_deref().unwrap_or("(none)")
    );
    if args.stats {
        let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        eprintln!("dirty heap pages: {}", s.dirty_heap_pages);
        eprintln!("dirty stable pages: {}", s.dirty_stable_pages);
        eprintln!("messages per second: {:.0}", per_sec(s.messages as f64));
        eprintln!(
            "instructions per second: {:.0}",
            per_sec(s.instructions as f64)
        );
    }
}
