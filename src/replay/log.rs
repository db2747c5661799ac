//! The message log file: reading (every line checked, errors name the line), appending
//! (crash-safe enough, see below) and rewriting atomically.
//!
//! **Appending.** A state directory's log is `<dir>/messages.jsonl`. [`append`] writes one
//! complete line with a single `write` and `fsync`s it, after the message's state was committed.
//! A crash can therefore leave
//! - a *torn last line* (the crash hit the write): it has no newline at the end and does not
//!   parse. [`Log::read`] skips it and reports it in [`Log::torn_tail`]; the next [`append`]
//!   cuts it off before writing, so the file is well-formed again;
//! - a *missing last record* (the crash hit between the commit and the append, or the record
//!   was torn): the state then reflects more messages than the log. Replaying the directory
//!   reports this up front (the log's last `messages` counter is below the state's).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::Record;
use crate::error::Error;

/// The log's file name inside a state directory.
pub const FILE_NAME: &str = "messages.jsonl";
/// The module directory's name, inside a state directory or next to a log file.
pub const MODULES_DIR: &str = "modules";

/// A log line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {why}", origin.display())]
pub struct LogError {
    /// The log file (or `<memory>`).
    pub origin: PathBuf,
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// One record with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The 1-based line number in the log file.
    pub line: usize,
    /// The record.
    pub record: Record,
}

/// A message log in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// The records, in order.
    pub entries: Vec<Entry>,
    /// The line number of a torn last line that was skipped (see the module docs).
    pub torn_tail: Option<usize>,
}

impl Log {
    /// A log of `records` (line numbers 1, 2, ...).
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Self {
        Log {
            entries: records
                .into_iter()
                .enumerate()
                .map(|(i, record)| Entry {
                    line: i + 1,
                    record,
                })
                .collect(),
            torn_tail: None,
        }
    }

    /// Reads and checks the log at `path`.
    pub fn read(path: &Path) -> Result<Log, super::ReplayError> {
        let bytes = fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Log::parse(&bytes, path)?)
    }

    /// Parses JSON Lines; `origin` names the log in errors. Blank lines are skipped; every other
    /// line must be a valid [`Record`], except a last line without a newline that does not
    /// parse, which is a torn append ([`Log::torn_tail`]).
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Log, LogError> {
        let mut log = Log::default();
        let ends_with_newline = bytes.last() == Some(&b'\n');
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        // `split` yields an empty piece after a final newline.
        let count = lines.len() - usize::from(ends_with_newline || bytes.is_empty());
        for (i, line) in lines.into_iter().take(count).enumerate() {
            let number = i + 1;
            let last = number == count;
            let err = |why: String| LogError {
                origin: origin.to_path_buf(),
                line: number,
                why,
            };
            let text = match std::str::from_utf8(line) {
                Ok(text) => text.trim(),
                Err(_) if last && !ends_with_newline => {
                    log.torn_tail = Some(number);
                    break;
                }
                Err(e) => return Err(err(format!("not UTF-8: {e}"))),
            };
            if text.is_empty() {
                continue;
            }
            let record: Record = match serde_json::from_str(text) {
                Ok(r) => r,
                Err(_) if last && !ends_with_newline => {
                    log.torn_tail = Some(number);
                    break;
                }
                Err(e) => return Err(err(format!("invalid record: {e}"))),
            };
            record.check().map_err(err)?;
            log.entries.push(Entry {
                line: number,
                record,
            });
        }
        Ok(log)
    }

    /// The records.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.entries.iter().map(|e| &e.record)
    }

    /// The log as JSON Lines.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for record in self.records() {
            out += &to_line(record);
        }
        out
    }

    /// Writes the log to `path` atomically (a temporary file, fsynced, renamed into place).
    pub fn write_atomic(&self, path: &Path) -> Result<(), Error> {
        let io = |p: &Path, source| Error::Io {
            path: p.to_path_buf(),
            source,
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        let mut file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        file.write_all(self.to_jsonl().as_bytes())
            .map_err(|e| io(&tmp, e))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        if let Some(parent) = path.parent()
            && let Ok(dir) = File::open(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// One record as a line of JSON, newline included.
pub fn to_line(record: &Record) -> String {
    let mut line = serde_json::to_string(record).expect("records serialize");
    line.push('\n');
    line
}

/// Appends `record` to `<dir>/messages.jsonl` and fsyncs it; an install record starts a new
/// log. A torn last line left by a crash is cut off first (a complete last line that only lacks
/// its newline, as a hand edit may leave it, gets the newline).
pub fn append(dir: &Path, record: &Record) -> Result<(), Error> {
    let path = dir.join(FILE_NAME);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(record.kind == super::Kind::Install)
        .open(&path)
        .map_err(io)?;
    let mut line = to_line(record);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len > 0 {
        let (keep, complete) = tail(&mut file, len).map_err(io)?;
        if keep < len {
            if complete {
                line.insert(0, '\n');
            } else {
                file.set_len(keep).map_err(io)?;
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
    }
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)
}

/// Where the file's last complete line ends, and whether the bytes after it (if any) are a
/// complete record that only lacks its newline.
fn tail(file: &mut File, len: u64) -> std::io::Result<(u64, bool)> {
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok((len, false));
    }
    // Scan back for the previous newline, 64 KiB at a time.
    let mut end = len;
    let mut keep = 0;
    'scan: while end > 0 {
        let start = end.saturating_sub(64 * 1024);
        let mut buf = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break 'scan;
        }
        end = start;
    }
    let mut rest = vec![0u8; (len - keep) as usize];
    file.seek(SeekFrom::Start(keep))?;
    file.read_exact(&mut rest)?;
    let complete = serde_json::from_slice::<Record>(&rest).is_ok();
    Ok((keep, complete))
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn record(method: &str) -> Record {
        let mut r = Record::new(Kind::Update);
        r.method = Some(method.into());
        r
    }

    #[test]
    fn parse_names_the_line_of_a_bad_record() {
        let text = format!(
            "{}\n\n{{\"kind\":\"update\"}}\n",
            to_line(&record("a")).trim()
        );
        let err = Log::parse(text.as_bytes(), Path::new("m.jsonl")).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("m.jsonl:3: "), "{err}");
        assert!(err.to_string().contains("method"), "{err}");
        let err = Log::parse(b"{\"kind\":\"update\",\n", Path::new("x")).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.to_string().contains("invalid record"), "{err}");
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_off_by_the_next_append() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(FILE_NAME);
        append(tmp.path(), &record("a")).unwrap();
        append(tmp.path(), &record("b")).unwrap();
        let whole = fs::read(&path).unwrap();
        // A crash in the middle of writing a third record.
        let torn = to_line(&record("c"));
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&torn.as_bytes()[..torn.len() / 2]);
        fs::write(&path, &bytes).unwrap();
        let log = Log::read(&path).unwrap();
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.torn_tail, Some(3));
        append(tmp.path(), &record("d")).unwrap();
        let log = Log::read(&path).unwrap();
        assert_eq!(log.torn_tail, None);
        let methods: Vec<_> = log.records().map(|r| r.method.clone().unwrap()).collect();
        assert_eq!(methods, ["a", "b", "d"]);
    }

    #[test]
    fn a_complete_line_without_newline_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(FILE_NAME);
        fs::write(&path, to_line(&record("a")).trim_end()).unwrap();
        assert_eq!(Log::read(&path).unwrap().entries.len(), 1);
        append(tmp.path(), &record("b")).unwrap();
        let log = Log::read(&path).unwrap();
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.entries[1].line, 2);
    }

    #[test]
    fn write_atomic_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.jsonl");
        let log = Log::from_records([record("a"), record("b")]);
        log.write_atomic(&path).unwrap();
        assert_eq!(Log::read(&path).unwrap(), log);
    }
}
