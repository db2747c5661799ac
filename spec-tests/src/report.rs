//! Per-file results and the summary table.

use std::fmt::Write as _;

use crate::mode::Mode;

/// The result of running one file in one mode.
///
/// Every directive is one check: commands (`module`, `register`, `invoke`) and assertions alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file, relative to the suite root.
    pub file: String,
    /// The mode it ran in.
    pub mode: Mode,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed (expected failures that passed unexpectedly included).
    pub failed: usize,
    /// Checks that failed as listed in `expected-failures.txt`.
    pub expected_failures: usize,
    /// Checks not run (see [`FileReport::skip_reason`]).
    pub skipped: usize,
    /// `(line, message)` of every failed check.
    pub failures: Vec<(usize, String)>,
    /// Why the whole file was not run (out of scope, mode unavailable), if it was not.
    pub skip_reason: Option<String>,
}

impl FileReport {
    /// An empty report for `file` in `mode`.
    pub fn new(file: impl Into<String>, mode: Mode) -> FileReport {
        FileReport {
            file: file.into(),
            mode,
            passed: 0,
            failed: 0,
            expected_failures: 0,
            skipped: 0,
            failures: Vec::new(),
            skip_reason: None,
        }
    }

    /// Records a failed check.
    pub fn fail(&mut self, line: usize, message: impl Into<String>) {
        self.failed += 1;
        self.failures.push((line, message.into()));
    }

    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

/// Sums of several reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Files that ran.
    pub files_run: usize,
    /// Files skipped whole.
    pub files_skipped: usize,
    /// Files with at least one failure.
    pub files_failed: usize,
    /// Passed checks.
    pub passed: usize,
    /// Failed checks.
    pub failed: usize,
    /// Expected failures.
    pub expected_failures: usize,
    /// Skipped checks.
    pub skipped: usize,
}

impl Totals {
    /// Adds up `reports`.
    pub fn of<'a>(reports: impl IntoIterator<Item = &'a FileReport>) -> Totals {
        let mut t = Totals::default();
        for r in reports {
            if r.skip_reason.is_some() {
                t.files_skipped += 1;
            } else {
                t.files_run += 1;
            }
            t.files_failed += usize::from(!r.ok());
            t.passed += r.passed;
            t.failed += r.failed;
            t.expected_failures += r.expected_failures;
            t.skipped += r.skipped;
        }
        t
    }
}

/// A table with one row per report (failures listed under their row) and a totals line.
pub fn table(reports: &[FileReport]) -> String {
    let width = reports
        .iter()
        .map(|r| r.file.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<12}  {:>7}  {:>6}  {:>5}  {:>7}  note",
        "file", "mode", "passed", "failed", "xfail", "skipped"
    );
    for r in reports {
        let note = r.skip_reason.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "{:<width$}  {:<12}  {:>7}  {:>6}  {:>5}  {:>7}  {note}",
            r.file,
            r.mode.name(),
            r.passed,
            r.failed,
            r.expected_failures,
            r.skipped
        );
        for (line, message) in &r.failures {
            let _ = writeln!(out, "    {}:{line}: {message}", r.file);
        }
    }
    let t = Totals::of(reports);
    let _ = writeln!(
        out,
        "total: {} file runs, {} skipped whole, {} with failures; {} checks passed, {} failed, {} expected \
         failures, {} skipped",
        t.files_run,
        t.files_skipped,
        t.files_failed,
        t.passed,
        t.failed,
        t.expected_failures,
        t.skipped
    );
    out
}
