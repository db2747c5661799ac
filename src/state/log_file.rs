//! The byte-level side of a state directory's message log, `<dir>/messages.jsonl` (the records
//! themselves are the replay module's): what a checkpoint records about it, and the check and
//! repair on open.
//!
//! Every checkpoint (format 3) holds its message's log record and where the log stands after
//! it (`LogRef`): the number of lines, the length in bytes and a hash chain over the lines.
//! The record is written into the checkpoint *before* the commit point and appended to the log
//! after it, so a crash between the two leaves a checkpoint whose record is missing from the log
//! (or torn): opening appends it again. Opening also checks, at O(one record) cost, that the
//! log ends with the checkpoint's record where the checkpoint says; a deleted, truncated or
//! replaced log is an error naming the file, never silently appended to. Replaying a directory
//! reads the whole log anyway and checks the line count and the hash chain too
//! ([`verify_prefix`]), which catches an edit anywhere before the live checkpoint's record.
//! Query records appended after the live checkpoint are covered by the next checkpoint.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hash::Hash;
use crate::error::{Error, StateError};

/// The log's file name inside a state directory.
pub const LOG_FILE: &str = "messages.jsonl";

/// What a checkpoint records about the message log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogRef {
    /// Lines in the log up to and including this checkpoint's record.
    pub records: u64,
    /// Bytes of the log up to and including this checkpoint's record.
    pub bytes: u64,
    /// The hash chain over those lines ([`chain_step`]), hex.
    pub chain: String,
    /// This checkpoint's record: one JSON line with its newline (empty when the checkpoint
    /// added none, as [`StateDir::save`](super::StateDir::save) writes it).
    pub record: String,
}

/// Where the message log stood at the live checkpoint (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    /// Lines up to and including the checkpoint's record.
    pub records: u64,
    /// Bytes up to and including the checkpoint's record.
    pub bytes: u64,
    /// The hash chain over those lines.
    pub chain: Hash,
}

impl LogRef {
    pub(super) fn position(&self, manifest: &Path) -> Result<LogPosition, Error> {
        let mut chain = [0u8; 32];
        hex::decode_to_slice(&self.chain, &mut chain)
            .map_err(|e| corrupt(manifest, format!("log.chain: {e}")))?;
        Ok(LogPosition {
            records: self.records,
            bytes: self.bytes,
            chain,
        })
    }
}

fn corrupt(path: &Path, why: impl Into<String>) -> Error {
    Error::State(StateError::Corrupt {
        path: path.to_path_buf(),
        why: why.into(),
    })
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The complete records (newline-terminated lines) of the log at `path`, read in one pass
/// without parsing them: the number `replay` re-executes. A missing log has none.
pub fn count_records(path: &Path) -> Result<u64, Error> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

/// The hash chain after `line` (its newline included) follows a chain at `prev`.
pub fn chain_step(prev: &Hash, line: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"canister-vm log\0");
    h.update(prev);
    h.update((line.len() as u64).to_le_bytes());
    h.update(line);
    h.finalize().into()
}

/// The complete lines of `bytes` (each with its newline) and the rest.
fn lines(bytes: &[u8]) -> (impl Iterator<Item = &[u8]>, &[u8]) {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (
        bytes[..complete].split_inclusive(|&b| b == b'\n'),
        &bytes[complete..],
    )
}

/// Checks the first `pos.bytes` of a log (the whole file's `bytes`) against the live
/// checkpoint's [`LogPosition`]: its length, line count and hash chain. Returns what is wrong.
pub fn verify_prefix(bytes: &[u8], pos: &LogPosition) -> Result<(), String> {
    let Some(prefix) = bytes.get(..pos.bytes as usize) else {
        return Err(format!(
            "the log is {} bytes, the live checkpoint recorded {} bytes up to its record",
            bytes.len(),
            pos.bytes
        ));
    };
    let (lines, rest) = lines(prefix);
    if !rest.is_empty() {
        return Err(format!(
            "byte {} (the end of the live checkpoint's record) is not the end of a line",
            pos.bytes
        ));
    }
    let (mut count, mut chain) = (0u64, [0u8; 32]);
    for line in lines {
        count += 1;
        chain = chain_step(&chain, line);
    }
    if count != pos.records {
        return Err(format!(
            "its first {} bytes hold {count} lines, the live checkpoint recorded {}: lines were \
             added or removed",
            pos.bytes, pos.records
        ));
    }
    if chain != pos.chain {
        return Err(format!(
            "its first {count} lines differ from what the live checkpoint recorded (hash chain \
             {} expected, {} found): the log was edited",
            hex::encode(pos.chain),
            hex::encode(chain)
        ));
    }
    Ok(())
}

/// Where a new record goes: the log's length, line count and chain once its tail is clean.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prepared {
    pub records: u64,
    pub bytes: u64,
    pub chain: Hash,
}

impl Prepared {
    /// Where the log stands once `record` (one JSON line with its newline; empty for none) is
    /// appended here.
    pub(super) fn with_record(&self, record: &str) -> LogRef {
        LogRef {
            records: self.records + u64::from(!record.is_empty()),
            bytes: self.bytes + record.len() as u64,
            chain: hex::encode(if record.is_empty() {
                self.chain
            } else {
                chain_step(&self.chain, record.as_bytes())
            }),
            record: record.to_string(),
        }
    }
}

/// Makes the log ready for a new checkpoint's record and says where it goes. `fresh` (an
/// install) starts a new, empty log; otherwise the lines after the previous checkpoint's record
/// (`prev`; `None` for a format-2 checkpoint: the whole log) are counted and chained, and a torn
/// last line (a crash during a query's append) is cut off, or given its newline if it is a
/// complete record that only lacks it. The file exists and is synced afterwards, so from the
/// next commit point on a missing log means a deleted one.
pub(super) fn prepare(dir: &Path, fresh: bool, prev: Option<&LogRef>) -> Result<Prepared, Error> {
    let path = dir.join(LOG_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(fresh)
        .truncate(fresh)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => corrupt(&path, "the message log is missing"),
            _ => io_err(&path, e),
        })?;
    let (mut records, from, mut chain) = match prev {
        Some(r) if !fresh => {
            let pos = r.position(&path)?;
            (pos.records, pos.bytes, pos.chain)
        }
        _ => (0, 0, [0u8; 32]),
    };
    let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
    if len < from {
        return Err(corrupt(
            &path,
            format!(
                "the message log is {len} bytes, the live checkpoint's record ends at byte {from}"
            ),
        ));
    }
    let mut after = Vec::new();
    file.seek(SeekFrom::Start(from))
        .and_then(|_| file.read_to_end(&mut after))
        .map_err(|e| io_err(&path, e))?;
    let (complete, rest) = lines(&after);
    for line in complete {
        records += 1;
        chain = chain_step(&chain, line);
    }
    let mut bytes = from + (after.len() - rest.len()) as u64;
    if !rest.is_empty() {
        if serde_json::from_slice::<serde_json::Value>(rest).is_ok() {
            let mut line = rest.to_vec();
            line.push(b'\n');
            file.seek(SeekFrom::Start(bytes))
                .and_then(|_| file.write_all(&line))
                .map_err(|e| io_err(&path, e))?;
            records += 1;
            chain = chain_step(&chain, &line);
            bytes += line.len() as u64;
        } else {
            file.set_len(bytes).map_err(|e| io_err(&path, e))?;
        }
    }
    file.sync_all().map_err(|e| io_err(&path, e))?;
    if fresh && let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Prepared {
        records,
        bytes,
        chain,
    })
}

/// Writes `record` at byte `at` of the log (cutting anything after it) and syncs it.
pub(super) fn append_at(dir: &Path, at: u64, record: &[u8]) -> Result<(), Error> {
    let path = dir.join(LOG_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    file.set_len(at).map_err(|e| io_err(&path, e))?;
    // Two writes, so that a crash test can stop between them (a torn record).
    let (first, second) = record.split_at(record.len() / 2);
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.write_all(first))
        .map_err(|e| io_err(&path, e))?;
    super::checkpoint_step("record-half");
    file.write_all(second)
        .and_then(|_| file.sync_data())
        .map_err(|e| io_err(&path, e))
}

/// Checks that the log ends with the live checkpoint's record where it says (queries may have
/// appended more after it), appending the record again if a crash cut it off after the commit.
/// O(one record).
pub(super) fn repair(dir: &Path, r: &LogRef, checkpoint: &str) -> Result<(), Error> {
    let path = dir.join(LOG_FILE);
    let record = r.record.as_bytes();
    let start = r.bytes.checked_sub(record.len() as u64).ok_or_else(|| {
        corrupt(
            &dir.join(checkpoint),
            "log.bytes is smaller than the record it ends with",
        )
    })?;
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(corrupt(
                &path,
                format!(
                    "the message log is missing: {checkpoint} records {} lines ({} bytes) in it; \
                     it was deleted (restore it, or the directory cannot be replayed)",
                    r.records, r.bytes
                ),
            ));
        }
        Err(e) => return Err(io_err(&path, e)),
    };
    let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
    if len < start {
        return Err(corrupt(
            &path,
            format!(
                "the message log is {len} bytes, but {checkpoint}'s record (line {}) starts at \
                 byte {start}: it was truncated",
                r.records
            ),
        ));
    }
    let read_from = start.saturating_sub(1);
    let want = (r.bytes.min(len) - read_from) as usize;
    let mut got = vec![0u8; want];
    file.seek(SeekFrom::Start(read_from))
        .and_then(|_| file.read_exact(&mut got))
        .map_err(|e| io_err(&path, e))?;
    let (before, here) = if start == 0 {
        (None, &got[..])
    } else {
        (Some(got[0]), &got[1..])
    };
    if before.is_some_and(|b| b != b'\n') {
        return Err(corrupt(
            &path,
            format!(
                "byte {start}, where {checkpoint}'s record (line {}) starts, does not follow a \
                 newline: the log was edited",
                r.records
            ),
        ));
    }
    if len >= r.bytes {
        if here != record {
            return Err(corrupt(
                &path,
                format!(
                    "line {} (bytes {start}..{}) is not the record {checkpoint} holds: the log \
                     was edited or replaced",
                    r.records, r.bytes
                ),
            ));
        }
        return Ok(());
    }
    // Shorter than the record: a crash between the commit and the append (nothing or a prefix
    // of the record was written). Anything else is damage.
    if !record.starts_with(here) {
        return Err(corrupt(
            &path,
            format!(
                "the message log ends at byte {len} inside line {}, which is not the record \
                 {checkpoint} holds: the log was truncated or edited",
                r.records
            ),
        ));
    }
    drop(file);
    append_at(dir, start, record)
}
