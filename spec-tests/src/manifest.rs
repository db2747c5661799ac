//! The checked-in scope decisions: what in the suite is out of scope, and which in-scope checks
//! are known to fail (so that a fix is noticed, like wasmtime's `should_fail`).
//!
//! Both files are plain text, one entry per line, `#` starts a comment.
//!
//! `spec-tests/out-of-scope.txt`:
//!
//! * `<path> <reason>`: a whole file; a path ending in `/` covers a folder.
//! * `<path> needs=<feature>[,<feature>...] <reason>`: only the modules of an otherwise in-scope
//!   file that the engine rejects *because* they use one of those features, which the runner
//!   proves with `wasmparser` (the module validates with every feature on, and fails without the
//!   listed ones). Every directive that uses such a module (actions on it, modules importing
//!   what it registered) is skipped with it. Feature names are `wasmparser::WasmFeatures` flags
//!   in kebab case (`gc`, `function-references`, `exceptions`). An entry that skips nothing
//!   fails, so stale entries are noticed.
//!
//! `spec-tests/expected-failures.txt`: `<path>:<line> <modes> <kind> <reason>`, where `<line>` is
//! the directive's line, `<modes>` is `all` or a comma list (`plain,instrumented,soundness`), and
//! `<kind>` is `fails` (it runs and must fail: a pass is reported, so the entry gets removed) or
//! `crashes` (it is not run, because it would take the whole process down; it counts as an
//! expected failure). Its `suite <version>` line names the suite version (the first line of the
//! suite's `SOURCE` file) the line numbers refer to: with another version, files that have
//! `crashes` entries fail without running, since the lines may have moved.
//!
//! Paths are relative to the suite root, with `/` separators.

use wasmparser::WasmFeatures;

use crate::mode::Mode;

/// The checked-in out-of-scope list.
pub const OUT_OF_SCOPE: &str = include_str!("../out-of-scope.txt");
/// The checked-in expected-failure list.
pub const EXPECTED_FAILURES: &str = include_str!("../expected-failures.txt");

/// One out-of-scope entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeEntry {
    /// A file, or a folder ending in `/`.
    pub path: String,
    /// Empty: the whole file. Otherwise only modules needing one of these features.
    pub needs: WasmFeatures,
    /// Why.
    pub reason: String,
}

/// One in-scope check known to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFailure {
    /// The file.
    pub path: String,
    /// The directive's line.
    pub line: usize,
    /// The modes it fails in.
    pub modes: Vec<Mode>,
    /// Whether running it would crash the process (it is then not run).
    pub crashes: bool,
    /// Why.
    pub reason: String,
}

/// Parsed scope decisions.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// The out-of-scope entries.
    pub out_of_scope: Vec<ScopeEntry>,
    /// The expected failures.
    pub expected_failures: Vec<ExpectedFailure>,
    /// The suite version the expected failures' line numbers refer to.
    pub suite_version: Option<String>,
}

impl Manifest {
    /// The lists checked in beside this crate.
    pub fn checked_in() -> Manifest {
        Manifest::parse(OUT_OF_SCOPE, EXPECTED_FAILURES).expect("checked-in manifests parse")
    }

    /// Parses the two lists (formats in the module docs).
    pub fn parse(out_of_scope: &str, expected_failures: &str) -> Result<Manifest, String> {
        let mut manifest = Manifest::default();
        for (n, path, rest) in entries(out_of_scope) {
            let (needs, reason) = match rest.strip_prefix("needs=") {
                Some(rest) => {
                    let (list, reason) = split_word(rest);
                    let needs =
                        features(list).map_err(|e| format!("out-of-scope line {n}: {e}"))?;
                    (needs, reason)
                }
                None => (WasmFeatures::empty(), rest),
            };
            if reason.is_empty() {
                return Err(format!("out-of-scope line {n}: {path} has no reason"));
            }
            let entry = ScopeEntry {
                path: path.to_owned(),
                needs,
                reason: reason.to_owned(),
            };
            manifest.out_of_scope.push(entry);
        }
        for (n, text, rest) in entries(expected_failures) {
            if text == "suite" {
                manifest.suite_version = Some(rest.to_owned());
                continue;
            }
            let err = |what: &str| format!("expected-failures line {n}: {what}");
            let (path, line) = location(text).ok_or_else(|| err("not <path>:<line>"))?;
            let (modes, rest) = split_word(rest);
            let modes = match modes {
                "all" => Mode::ALL.to_vec(),
                list => list
                    .split(',')
                    .map(|m| Mode::from_name(m).ok_or_else(|| err(&format!("unknown mode {m:?}"))))
                    .collect::<Result<_, _>>()?,
            };
            let (kind, reason) = split_word(rest);
            let crashes = match kind {
                "fails" => false,
                "crashes" => true,
                other => return Err(err(&format!("kind {other:?} is not fails or crashes"))),
            };
            if reason.is_empty() {
                return Err(err("no reason"));
            }
            manifest.expected_failures.push(ExpectedFailure {
                path: path.to_owned(),
                line,
                modes,
                crashes,
                reason: reason.to_owned(),
            });
        }
        Ok(manifest)
    }

    /// Why `file` is out of scope as a whole, if it is.
    pub fn out_of_scope(&self, file: &str) -> Option<&str> {
        self.entry(file, true).map(|e| e.reason.as_str())
    }

    /// The `needs=` entry for `file`: its modules needing those features are out of scope.
    pub fn partly_out_of_scope(&self, file: &str) -> Option<&ScopeEntry> {
        self.entry(file, false)
    }

    fn entry(&self, file: &str, whole: bool) -> Option<&ScopeEntry> {
        self.out_of_scope.iter().find(|e| {
            let matches = match e.path.strip_suffix('/') {
                Some(folder) => file
                    .strip_prefix(folder)
                    .is_some_and(|r| r.starts_with('/')),
                None => e.path == file,
            };
            matches && e.needs.is_empty() == whole
        })
    }

    /// The entry for the directive at `file:line` in `mode`, if it is expected to fail.
    pub fn expected_failure(
        &self,
        file: &str,
        line: usize,
        mode: Mode,
    ) -> Option<&ExpectedFailure> {
        self.expected_failures
            .iter()
            .find(|e| e.path == file && e.line == line && e.modes.contains(&mode))
    }
}

impl Manifest {
    /// Whether `file` has a `crashes` entry for `mode`.
    pub fn has_crashes(&self, file: &str, mode: Mode) -> bool {
        let crash = |e: &&ExpectedFailure| e.crashes && e.path == file && e.modes.contains(&mode);
        self.expected_failures.iter().any(|e| crash(&e))
    }
}

/// Parses `gc,function-references` into wasmparser feature flags.
fn features(list: &str) -> Result<WasmFeatures, String> {
    let mut out = WasmFeatures::empty();
    for name in list.split(',') {
        let flag = WasmFeatures::from_name(&name.to_uppercase().replace('-', "_"))
            .ok_or_else(|| format!("unknown wasmparser feature {name:?}"))?;
        out |= flag;
    }
    Ok(out)
}

/// `path:line` split, if the text has that shape.
fn location(text: &str) -> Option<(&str, usize)> {
    let (path, line) = text.rsplit_once(':')?;
    Some((path, line.parse().ok()?))
}

/// The first whitespace-separated word and the trimmed rest.
fn split_word(text: &str) -> (&str, &str) {
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    (first, rest.trim())
}

/// `(line number, first word, rest)` of every non-empty, non-comment line.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line
            .split_once('#')
            .map_or(line, |(before, _)| before)
            .trim();
        if line.is_empty() {
            return None;
        }
        let (first, rest) = split_word(line);
        Some((i + 1, first, rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_files_features_and_lines() {
        let m = Manifest::parse(
            "# comment\nproposals/threads/  threads are off\ni31.wast GC # trailing\n\
             elem.wast needs=gc,function-references typed element segments\n",
            "suite abc 1\nsimd_lane.wast:12 all fails a wasmi bug\n\
             linking.wast:9 instrumented,soundness crashes boom\n",
        )
        .unwrap();
        assert_eq!(
            m.out_of_scope("proposals/threads/atomic.wast"),
            Some("threads are off")
        );
        assert_eq!(m.out_of_scope("proposals/threads-x/a.wast"), None);
        assert_eq!(m.out_of_scope("i31.wast"), Some("GC"));
        assert_eq!(m.out_of_scope("i32.wast"), None);
        assert_eq!(m.out_of_scope("elem.wast"), None);
        let elem = m.partly_out_of_scope("elem.wast").unwrap();
        assert_eq!(
            elem.needs,
            WasmFeatures::GC | WasmFeatures::FUNCTION_REFERENCES
        );
        assert_eq!(elem.reason, "typed element segments");
        assert!(m.partly_out_of_scope("i31.wast").is_none());
        let lane = m
            .expected_failure("simd_lane.wast", 12, Mode::Soundness)
            .unwrap();
        assert_eq!((lane.crashes, lane.reason.as_str()), (false, "a wasmi bug"));
        assert!(
            m.expected_failure("simd_lane.wast", 13, Mode::Plain)
                .is_none()
        );
        assert!(m.expected_failure("linking.wast", 9, Mode::Plain).is_none());
        assert!(
            m.expected_failure("linking.wast", 9, Mode::Instrumented)
                .unwrap()
                .crashes
        );
        assert!(Manifest::parse("", "x.wast:1 all maybe reason\n").is_err());
        assert!(Manifest::parse("", "x.wast:1 fast fails reason\n").is_err());
        assert!(Manifest::parse("x.wast\n", "").is_err());
        assert!(Manifest::parse("x.wast needs=gc\n", "").is_err());
        assert!(Manifest::parse("x.wast needs=nope reason\n", "").is_err());
        assert!(Manifest::parse("", "x.wast all fails reason\n").is_err());
    }

    #[test]
    fn checked_in_lists_parse() {
        Manifest::checked_in();
    }
}
