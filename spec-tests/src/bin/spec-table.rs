//! `cargo xtask spec [--mode plain|instrumented|soundness|all] [--all-files] [FILTER]`: runs the
//! WebAssembly spec suite and prints a table per file and mode (passed / failed / expected
//! failures / skipped checks) with totals; exits non-zero if anything in scope failed.
//!
//! `--all-files` runs the out-of-scope files and directives too (to see why they are out of
//! scope); FILTER keeps the files whose path contains it.
//!
//! This binary (`cargo run -p spec-tests --bin spec-table -- [ARGS]`) is what `cargo xtask spec`
//! runs: the xtask itself does not link canister-vm or wasmi, so its other commands build quickly.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use spec_tests::{FileReport, Mode, Options, Totals, run_file_with, suite, table};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// Runs the spec suite.
fn run(args: &[String]) -> Result<()> {
    let mut modes = Mode::ALL.to_vec();
    let mut filter: Option<&str> = None;
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mode" => {
                let name = args.next().context("--mode needs a value")?;
                modes = match name.as_str() {
                    "all" => Mode::ALL.to_vec(),
                    other => vec![Mode::from_name(other).with_context(|| {
                        format!("unknown mode {other:?} (plain, instrumented, soundness, all)")
                    })?],
                };
            }
            "--all-files" => options.ignore_scope = true,
            "-h" | "--help" => {
                println!(
                    "cargo xtask spec [--mode plain|instrumented|soundness|all] [--all-files] \
                     [FILTER]"
                );
                return Ok(());
            }
            flag if flag.starts_with('-') => bail!("unknown flag {flag:?}"),
            other if filter.is_none() => filter = Some(other),
            other => bail!("unexpected argument {other:?}"),
        }
    }

    let Some(root) = suite::root() else {
        eprintln!("{}", suite::HOW_TO_GET);
        println!("spec suite missing: all files skipped");
        return Ok(());
    };
    let files: Vec<String> = suite::files(&root)
        .with_context(|| format!("listing {}", root.display()))?
        .into_iter()
        .filter(|f| filter.is_none_or(|pat| f.contains(pat)))
        .collect();
    if files.is_empty() {
        bail!("no .wast file matches {filter:?}");
    }
    let version = suite::version(&root).unwrap_or_else(|| "unknown version".into());
    println!("suite: {} ({version})", root.display());

    let started = Instant::now();
    let jobs: Vec<(Mode, &String)> = modes
        .iter()
        .flat_map(|&mode| files.iter().map(move |file| (mode, file)))
        .collect();
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().expect("job counter");
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(&(mode, file)) = jobs.get(index) else {
                        break;
                    };
                    let report = run_file_with(&root.join(file), mode, &options);
                    results.lock().expect("results").push((index, report));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(index, _)| *index);
    let reports: Vec<FileReport> = results.into_iter().map(|(_, report)| report).collect();

    print!("{}", table(&reports));
    println!("took {:.1}s", started.elapsed().as_secs_f64());
    let totals = Totals::of(&reports);
    if totals.failed > 0 {
        bail!(
            "{} checks failed in {} files",
            totals.failed,
            totals.files_failed
        );
    }
    Ok(())
}
