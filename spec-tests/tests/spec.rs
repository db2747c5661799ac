//! `cargo test -p spec-tests`: one trial per (suite file, mode), named `<mode>::<file>`, plus the
//! runner's self-tests (`selftest::*`).
//!
//! Out-of-scope files, modes whose hook is not plugged in yet and a missing suite show up as
//! ignored, never as passed.

use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use spec_tests::{Hooks, Mode, Options, TransformError, run_file_with, run_source, suite};

fn main() {
    let args = Arguments::from_args();
    let options = Arc::new(Options::default());
    let mut trials = selftests();
    match suite::root() {
        None => {
            eprintln!("{}", suite::HOW_TO_GET);
            trials.push(Trial::test("spec-suite-missing", || Ok(())).with_ignored_flag(true));
        }
        Some(root) => {
            let files = suite::files(&root).expect("listing the spec suite");
            for mode in Mode::ALL {
                let available = mode.availability(&options.hooks).is_ok();
                for file in &files {
                    let in_scope = options.manifest.out_of_scope(file).is_none();
                    let path = root.join(file);
                    let options = Arc::clone(&options);
                    let trial = Trial::test(format!("{mode}::{file}"), move || {
                        let report = run_file_with(&path, mode, &options);
                        check(&report)
                    });
                    trials.push(trial.with_ignored_flag(!available || !in_scope));
                }
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn check(report: &spec_tests::FileReport) -> Result<(), Failed> {
    if let Some(reason) = &report.skip_reason {
        return Err(format!("{} was skipped ({reason}) but expected to run", report.file).into());
    }
    if report.ok() {
        return Ok(());
    }
    let mut message = format!(
        "{}: {} passed, {} failed\n",
        report.file, report.passed, report.failed
    );
    for (line, failure) in &report.failures {
        message.push_str(&format!("  {}:{line}: {failure}\n", report.file));
    }
    Err(message.into())
}

/// Soundness self-tests with a stand-in instrumentation: the identity transform over modules that
/// mark their own byte map (exported as the barrier's is, `canister_vm:dirty:0`, one byte per 4 KiB
/// page of memory 0).
fn selftests() -> Vec<Trial> {
    fn identity(wasm: &[u8]) -> Result<Vec<u8>, TransformError> {
        Ok(wasm.to_vec())
    }
    fn first_memory_only(memory: u32, page: u64, _pages: &[u64]) -> Option<u64> {
        (memory == 0).then_some(page)
    }
    let options = || Options {
        hooks: Hooks {
            instrument: Some(identity),
            dirty_byte: Some(first_memory_only),
            link_host: None,
        },
        ..Options::default()
    };
    const MODULE: &str = r#"
        (module
          (memory 2) (memory $map (export "canister_vm:dirty:0") 1)
          (func (export "marked")
            (i32.store (i32.const 4100) (i32.const 7))
            (i32.store8 $map (i32.const 1) (i32.const 1)))
          (func (export "unmarked")
            (i32.store (i32.const 8) (i32.const 7)))
          (func (export "unchanged")
            (i32.store (i32.const 0) (i32.const 0))))
    "#;
    vec![
        Trial::test("selftest::soundness_accepts_marked_pages", move || {
            let text =
                format!("{MODULE}\n(assert_return (invoke \"marked\"))\n(invoke \"unchanged\")");
            let report = run_source("selftest.wast", &text, Mode::Soundness, &options());
            check(&report)
        }),
        Trial::test("selftest::soundness_reports_unmarked_pages", move || {
            let text = format!("{MODULE}\n(invoke \"unmarked\")");
            let report = run_source("selftest.wast", &text, Mode::Soundness, &options());
            match report.failures.as_slice() {
                [(_, message)] if message.contains("page 0") => Ok(()),
                other => Err(format!("expected one unmarked-page failure, got {other:?}").into()),
            }
        }),
        Trial::test(
            "selftest::instrumented_mode_runs_the_transform",
            move || {
                fn reject(_: &[u8]) -> Result<Vec<u8>, TransformError> {
                    Err("rejected by the stand-in".into())
                }
                let options = Options {
                    hooks: Hooks {
                        instrument: Some(reject),
                        dirty_byte: None,
                        link_host: None,
                    },
                    ..Options::default()
                };
                let report = run_source("selftest.wast", "(module)", Mode::Instrumented, &options);
                match report.failures.as_slice() {
                    [(_, message)] if message.contains("rejected by the stand-in") => Ok(()),
                    other => Err(format!("expected the transform's error, got {other:?}").into()),
                }
            },
        ),
    ]
}
