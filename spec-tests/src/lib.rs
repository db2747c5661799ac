//! The WebAssembly spec-suite runner for canister-vm.
//!
//! Runs the official suite's `.wast` files (located by [`suite::root`]) on wasmi with the engine
//! configuration the runtime uses ([`canister_vm::runtime::engine::engine_config`]), in three
//! [`Mode`]s: plain, instrumented (every module through the instrumentation pass first) and
//! soundness (instrumented, plus a dirty-page check after every invoke).
//!
//! ```no_run
//! use spec_tests::{Mode, run_file, suite};
//!
//! let root = suite::root().expect("the spec suite is checked out");
//! let report = run_file(&root.join("i32.wast"), Mode::Plain);
//! assert!(report.ok(), "{:?}", report.failures);
//! println!("{} checks passed", report.passed);
//! ```
//!
//! Scope lives in two checked-in lists ([`manifest`]): files out of scope (features the engine
//! configuration has off) and in-scope checks known to fail.
#![deny(missing_docs)]

pub mod manifest;
pub mod mode;
pub mod report;
mod runner;
pub mod soundness;
pub mod spectest_host;
pub mod suite;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use runner::Outcome;

pub use manifest::Manifest;
pub use mode::{DirtyByte, Hooks, Mode, Transform, TransformError};
pub use report::{FileReport, Totals, table};

/// How files are run: the hooks for the instrumented modes and the scope decisions.
#[derive(Debug, Clone)]
pub struct Options {
    /// The instrumentation and byte-map hooks.
    pub hooks: Hooks,
    /// The out-of-scope and expected-failure lists.
    pub manifest: Manifest,
    /// Run out-of-scope files too (to see why they are out of scope).
    pub ignore_scope: bool,
    /// The suite's version ([`suite::version`]), checked against the manifest's.
    pub suite_version: Option<String>,
}

impl Default for Options {
    /// canister-vm's hooks ([`Hooks::canister_vm`]) and the checked-in manifest.
    fn default() -> Self {
        Options {
            hooks: Hooks::canister_vm(),
            manifest: Manifest::checked_in(),
            ignore_scope: false,
            suite_version: suite::root().and_then(|root| suite::version(&root)),
        }
    }
}

/// Runs the `.wast` file at `path` in `mode` with the default [`Options`].
pub fn run_file(path: &Path, mode: Mode) -> FileReport {
    run_file_with(path, mode, &Options::default())
}

/// Runs the `.wast` file at `path` in `mode`.
///
/// The report names the file relative to the suite root when it lies inside it.
pub fn run_file_with(path: &Path, mode: Mode, options: &Options) -> FileReport {
    let name = suite::root()
        .and_then(|root| {
            path.canonicalize()
                .ok()?
                .strip_prefix(root)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf())
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    match std::fs::read_to_string(path) {
        Ok(text) => run_source(&name, &text, mode, options),
        Err(e) => {
            let mut report = FileReport::new(name, mode);
            report.fail(0, format!("reading {}: {e}", path.display()));
            report
        }
    }
}

/// Runs `text`, the contents of the `.wast` file called `name` (relative to the suite root).
pub fn run_source(name: &str, text: &str, mode: Mode, options: &Options) -> FileReport {
    let mut report = FileReport::new(name, mode);
    let skip = match (
        options.manifest.out_of_scope(name),
        mode.availability(&options.hooks),
    ) {
        (Some(reason), _) if !options.ignore_scope => Some(format!("out of scope: {reason}")),
        (_, Err(reason)) => Some(reason.to_owned()),
        _ => None,
    };
    // A file that is skipped anyway may use syntax the parser no longer knows (legacy/).
    let unparsable = |mut report: FileReport, message: String| {
        match skip.clone() {
            Some(reason) => report.skip_reason = Some(reason),
            None => report.fail(0, message),
        }
        report
    };
    // names.wast deliberately uses bidirectional-override characters in names.
    let mut lexer = wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match wast::parser::ParseBuffer::new_with_lexer(lexer) {
        Ok(buf) => buf,
        Err(e) => return unparsable(report, format!("lexing: {e}")),
    };
    let wast = match runner::parse(&buf) {
        Ok(wast) => wast,
        Err(mut e) => {
            e.set_text(text);
            return unparsable(report, format!("parsing: {e}"));
        }
    };
    if let Some(reason) = skip {
        report.skipped = wast.directives.len();
        report.skip_reason = Some(reason);
        return report;
    }

    let versions = (&options.manifest.suite_version, &options.suite_version);
    if let (Some(expected), Some(actual)) = versions
        && expected != actual
        && options.manifest.has_crashes(name, mode)
    {
        let message = format!(
            "not run: expected-failures.txt has `crashes` entries for this file, written for \
             suite {expected}, but this is {actual}; re-check their line numbers"
        );
        report.fail(0, message);
        return report;
    }

    let partial_scope = match options.ignore_scope {
        true => None,
        false => options.manifest.partly_out_of_scope(name),
    };
    let mut runner = match runner::Runner::new(mode, &options.hooks, partial_scope) {
        Ok(runner) => runner,
        Err(e) => {
            report.fail(0, e);
            return report;
        }
    };
    for directive in wast.directives {
        let line = runner::line_of(directive.span(), text);
        let expected = options.manifest.expected_failure(name, line, mode);
        if expected.is_some_and(|e| e.crashes) {
            report.expected_failures += 1;
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| runner.run(directive)))
            .unwrap_or_else(|panic| Outcome::Fail(format!("panicked: {}", panic_message(&panic))));
        match (outcome, expected) {
            (Outcome::Skip(_), _) => report.skipped += 1,
            (Outcome::Pass, None) => report.passed += 1,
            (Outcome::Fail(_), Some(_)) => report.expected_failures += 1,
            (Outcome::Fail(message), None) => report.fail(line, message),
            (Outcome::Pass, Some(e)) => report.fail(
                line,
                format!(
                    "passed but expected-failures.txt says it fails ({}): remove it",
                    e.reason
                ),
            ),
        }
    }
    if let Some(scope) = partial_scope.filter(|_| runner.feature_skips == 0) {
        let message = format!(
            "out-of-scope.txt lists this file with needs={:?}, but no module needed it: remove it",
            scope.needs
        );
        report.fail(0, message);
    }
    report
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
