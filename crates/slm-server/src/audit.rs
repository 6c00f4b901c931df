//! The audit log: JSON lines, one record per auth failure and per state-changing request,
//! hash-chained (each record carries the sha256 of the previous line), so editing or removing a
//! record breaks verification at that record. Records hold no key and no prompt. With rotation
//! the live file is renamed `NAME.000001`, `NAME.000002`, ... when it reaches its size limit and
//! the chain continues into the new file; [`verify`] follows the rotated files in order.
//!
//! Crash policy. Each record is written with one `write` of the line and its newline, then
//! `fdatasync`ed before the request is answered, so a request whose response was seen always has
//! its record on disk; a crash (SIGKILL, power loss) loses at most the records of requests still
//! in flight. A crash can still leave the live file ending in a *torn* line: bytes after the last
//! newline that are not a JSON record (a write cut short). [`verify_log`] ignores such a final
//! line and reports its size ([`Verified::torn_bytes`]); a final line that IS a complete record
//! but lacks its newline counts as a record like any other. Anything else fails verification: an
//! edited, inserted or removed record, an invalid line followed by a newline or by more lines, a
//! torn line in a rotated file. [`AuditLog::open`] (server start) repairs the tail before
//! appending: it truncates a torn line away (a `tracing` warning and
//! [`AuditLog::dropped_torn_bytes`] report its size) and completes an unterminated record with
//! its newline, so the chain continues from the last complete record and verification after new
//! records agrees with verification before them. (As with any hash chain without an external
//! anchor, the content of the very last record and a truncation at a line boundary cannot be
//! detected by the log alone.)

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::keys::sha256_hex;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Serialize)]
pub struct AuditRecord<'a> {
    pub time: u64,
    pub key_id: Option<&'a str>,
    pub role: Option<&'a str>,
    pub method: &'a str,
    pub route: &'a str,
    pub decision: &'a str,
    pub status: u16,
    /// The model a state-changing request concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
}

pub struct AuditLog {
    path: PathBuf,
    /// Rotate when the live file would pass this many bytes (0 = never).
    max_bytes: u64,
    /// Bytes of a torn last line cut away by [`AuditLog::open`] (0 = none).
    dropped: u64,
    inner: Mutex<Live>,
}

struct Live {
    file: File,
    /// sha256 of the last line written.
    last: String,
    /// Bytes in the live file.
    size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot use the audit log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log broken at line {line}: {why}")]
    Broken { line: usize, why: String },
}

impl AuditLog {
    /// Open (or create) the log at `path`, continuing its chain. A torn last line left by a
    /// crash is truncated away and an unterminated last record gets its newline (see the module
    /// header); an edited or otherwise broken log is an error.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let found = match verify_log(path) {
            Ok(v) => v,
            Err(AuditError::Io { .. }) => Verified::empty(),
            Err(e) => return Err(e),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if found.torn_bytes > 0 {
            file.set_len(found.end).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::warn!(
                "audit log {}: dropped an incomplete last line ({} bytes) left by a crash; \
                 the chain continues after record {}",
                path.display(),
                found.torn_bytes,
                found.records
            );
        } else if found.unterminated {
            file.write_all(b"\n").map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        let size = file.metadata().map_err(io)?.len();
        Ok(AuditLog {
            path: path.to_path_buf(),
            max_bytes: 0,
            dropped: found.torn_bytes,
            inner: Mutex::new(Live {
                file,
                last: found.last,
                size,
            }),
        })
    }

    /// Rotate the live file when it reaches `max_bytes` (0 = never).
    pub fn with_rotation(mut self, max_bytes: u64) -> AuditLog {
        self.max_bytes = max_bytes;
        self
    }

    /// Rename the live file to the next `NAME.NNNNNN` and start a new one.
    fn rotate(&self, live: &mut Live) -> std::io::Result<()> {
        let next = rotated_files(&self.path).last().map_or(1, |(n, _)| n + 1);
        let name = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = self.path.with_file_name(format!("{name}.{next:06}"));
        live.file.sync_all()?;
        std::fs::rename(&self.path, &dest)?;
        live.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        live.size = 0;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a torn last line (left by a crash) that [`AuditLog::open`] cut away; 0 when the
    /// log ended with a complete record. For the server to report at startup.
    pub fn dropped_torn_bytes(&self) -> u64 {
        self.dropped
    }

    /// Append one record (flushed and synced before returning).
    pub fn append(&self, rec: &AuditRecord<'_>) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| io(std::io::Error::other("audit log lock poisoned")))?;
        let mut v = serde_json::to_value(rec).map_err(|e| io(std::io::Error::other(e)))?;
        v["prev"] = serde_json::Value::String(guard.last.clone());
        let line = v.to_string();
        let n = line.len() as u64 + 1;
        if self.max_bytes > 0 && guard.size > 0 && guard.size + n > self.max_bytes {
            self.rotate(&mut guard).map_err(io)?;
        }
        // The line and its newline in one buffer: a crash leaves a whole line or a torn one,
        // never a complete record that the next one is glued onto.
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let written = guard
            .file
            .write_all(&buf)
            .and_then(|()| guard.file.sync_data());
        if let Err(e) = written {
            // A failed (e.g. short, ENOSPC) write must not leave a partial line for the next
            // record to follow: cut the file back to its last complete record.
            let _ = guard.file.set_len(guard.size);
            return Err(io(e));
        }
        guard.size += n;
        guard.last = sha256_hex(line.as_bytes());
        Ok(())
    }
}

/// The rotated files of the log at `path` (`NAME.NNNNNN`), oldest first.
fn rotated_files(path: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let f = e.file_name().to_string_lossy().into_owned();
                    let n = f.strip_prefix(&prefix)?;
                    (n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| n.parse().ok())
                        .flatten()
                        .map(|n| (n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// What [`verify_log`] found: the chain is intact up to `records` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Complete records whose chain verified, over all files.
    pub records: usize,
    /// sha256 of the last verified record's line (the genesis hash when there is none).
    pub last: String,
    /// Size of an incomplete final line of the live file (a write cut short by a crash), which
    /// was ignored; 0 when the log ends with a complete record.
    pub torn_bytes: u64,
    /// Whether the last record lacks its newline (a complete, valid record otherwise).
    pub unterminated: bool,
    /// Bytes of the live file up to the end of its last complete record.
    pub end: u64,
}

impl Verified {
    fn empty() -> Verified {
        Verified {
            records: 0,
            last: GENESIS.to_string(),
            torn_bytes: 0,
            unterminated: false,
            end: 0,
        }
    }
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} records, chain intact", self.records)?;
        if self.torn_bytes > 0 {
            write!(
                f,
                "; last line incomplete ({} bytes, ignored)",
                self.torn_bytes
            )?;
        }
        Ok(())
    }
}

/// Check the chain of the log at `path`, starting with its rotated files; returns the number of
/// records and the last hash. A torn final line is ignored, as in [`verify_log`].
pub fn verify(path: &Path) -> Result<(usize, String), AuditError> {
    verify_log(path).map(|v| (v.records, v.last))
}

/// Check the chain of the log at `path`, starting with its rotated files. Fails at the first
/// edited, inserted, removed or invalid record; only an incomplete final line of the live file
/// (a crash in the middle of a write) is tolerated, and reported in [`Verified::torn_bytes`].
pub fn verify_log(path: &Path) -> Result<Verified, AuditError> {
    let rotated = rotated_files(path);
    let mut v = Verified::empty();
    for (_, p) in &rotated {
        let scan = verify_file(p, &mut v.last, v.records, false)?;
        v.records += scan.records;
    }
    if rotated.is_empty() || path.exists() {
        let scan = verify_file(path, &mut v.last, v.records, true)?;
        v.records += scan.records;
        v.unterminated = scan.unterminated;
        v.torn_bytes = scan.torn_bytes;
        v.end = scan.end;
    }
    Ok(v)
}

/// What one file held.
struct Scan {
    records: usize,
    unterminated: bool,
    torn_bytes: u64,
    end: u64,
}

/// Verify one file continuing the chain from `prev`; line numbers in errors count from
/// `before` records (over all files). `live`: the file being written, where a torn final line
/// is tolerated.
fn verify_file(
    path: &Path,
    prev: &mut String,
    before: usize,
    live: bool,
) -> Result<Scan, AuditError> {
    let io = |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut scan = Scan {
        records: 0,
        unterminated: false,
        torn_bytes: 0,
        end: 0,
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        let line_no = before + scan.records + 1;
        let (line, terminated) = match buf.strip_suffix(b"\n") {
            Some(l) => (l, true),
            None => (buf.as_slice(), false),
        };
        let v: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            // No newline means end of file: a write cut short. Any proper prefix of a JSON
            // object is invalid JSON, so a complete record is never taken for a torn one.
            Err(_) if live && !terminated => {
                scan.torn_bytes = n as u64;
                break;
            }
            Err(_) => {
                return Err(AuditError::Broken {
                    line: line_no,
                    why: "not a JSON record".into(),
                })
            }
        };
        if v.get("prev").and_then(|p| p.as_str()) != Some(prev.as_str()) {
            return Err(AuditError::Broken {
                line: line_no,
                why: "hash chain does not match the previous record".into(),
            });
        }
        *prev = sha256_hex(line);
        scan.records += 1;
        scan.unterminated = !terminated;
        scan.end += n as u64;
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: u16) -> AuditRecord<'static> {
        AuditRecord {
            time: 1,
            key_id: Some("kabc"),
            role: Some("user"),
            method: "POST",
            route: "/api/generate\n\u{1b}[31m",
            decision: "deny",
            status,
            model: None,
        }
    }

    #[test]
    fn chain_verifies_and_detects_edits() {
        let dir = std::env::temp_dir().join(format!("slm-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for s in [401, 403, 200] {
            log.append(&rec(s)).unwrap();
        }
        drop(log);
        // Reopening continues the chain.
        AuditLog::open(&path).unwrap().append(&rec(401)).unwrap();
        assert_eq!(verify(&path).unwrap().0, 4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count(),
            4,
            "control characters stay escaped on one line"
        );
        let edited = text.replacen("\"status\":403", "\"status\":200", 1);
        std::fs::write(&path, edited).unwrap();
        match verify(&path) {
            Err(AuditError::Broken { line, .. }) => assert_eq!(line, 3),
            other => panic!("edit not detected: {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_continues_the_chain() {
        let dir = std::env::temp_dir().join(format!("slm-audit-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap().with_rotation(600);
        for s in 0..20 {
            log.append(&rec(400 + s)).unwrap();
        }
        drop(log);
        let rotated = rotated_files(&path);
        assert!(rotated.len() >= 3, "{rotated:?}");
        for (_, p) in &rotated {
            assert!(std::fs::metadata(p).unwrap().len() <= 600);
        }
        assert_eq!(
            verify(&path).unwrap().0,
            20,
            "no record lost across rotation"
        );
        // Reopening continues the chain over the rotated files.
        let log = AuditLog::open(&path).unwrap().with_rotation(600);
        log.append(&rec(200)).unwrap();
        drop(log);
        assert_eq!(verify(&path).unwrap().0, 21);
        // Removing a middle file breaks the chain where the next file starts.
        std::fs::remove_file(&rotated[1].1).unwrap();
        assert!(matches!(verify(&path), Err(AuditError::Broken { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn fresh(tag: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("slm-audit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.jsonl");
        (dir, path)
    }

    fn write_records(path: &Path, n: u16) {
        let log = AuditLog::open(path).unwrap();
        for s in 0..n {
            log.append(&rec(400 + s)).unwrap();
        }
    }

    #[test]
    fn a_torn_last_line_is_ignored_then_cut_away_at_open() {
        let (dir, path) = fresh("torn");
        write_records(&path, 3);
        let full = std::fs::read(&path).unwrap();
        let first_line = full.split(|&b| b == b'\n').next().unwrap().to_vec();
        // A write cut short: the first 40 bytes of a record, no newline.
        let mut torn = full.clone();
        torn.extend_from_slice(&first_line[..40]);
        std::fs::write(&path, &torn).unwrap();
        let v = verify_log(&path).unwrap();
        assert_eq!((v.records, v.torn_bytes, v.end), (3, 40, full.len() as u64));
        assert_eq!(
            v.to_string(),
            "3 records, chain intact; last line incomplete (40 bytes, ignored)"
        );
        assert_eq!(verify(&path).unwrap().0, 3);
        // The server restarts: the torn bytes go, the chain continues after record 3.
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.dropped_torn_bytes(), 40);
        assert_eq!(std::fs::read(&path).unwrap(), full);
        log.append(&rec(200)).unwrap();
        drop(log);
        let v = verify_log(&path).unwrap();
        assert_eq!((v.records, v.torn_bytes), (4, 0));
        assert_eq!(v.to_string(), "4 records, chain intact");
        // Only torn: the first record never made it.
        std::fs::write(&path, &first_line[..10]).unwrap();
        let v = verify_log(&path).unwrap();
        assert_eq!((v.records, v.torn_bytes, v.end), (0, 10, 0));
        AuditLog::open(&path).unwrap().append(&rec(200)).unwrap();
        assert_eq!(verify_log(&path).unwrap().records, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_complete_record_without_its_newline_counts_and_gets_completed() {
        let (dir, path) = fresh("unterm");
        write_records(&path, 2);
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.pop(), Some(b'\n'));
        std::fs::write(&path, &bytes).unwrap();
        let v = verify_log(&path).unwrap();
        assert_eq!((v.records, v.torn_bytes, v.unterminated), (2, 0, true));
        AuditLog::open(&path).unwrap().append(&rec(200)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(verify_log(&path).unwrap().records, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tolerating_a_torn_tail_tolerates_nothing_else() {
        let (dir, path) = fresh("strict");
        write_records(&path, 4);
        let good = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let broken_at = |text: String| {
            std::fs::write(&path, text).unwrap();
            match verify_log(&path) {
                Err(AuditError::Broken { line, .. }) => {
                    // The server refuses such a log too.
                    assert!(AuditLog::open(&path).is_err());
                    line
                }
                other => panic!("not detected: {other:?}"),
            }
        };
        // An edited record, with or without a torn tail after the log.
        let edited = good.replacen("\"status\":401", "\"status\":200", 1);
        assert_eq!(broken_at(edited.clone()), 3);
        assert_eq!(broken_at(format!("{edited}{{\"time\":")), 3);
        // An invalid line that ends in a newline is not a torn write.
        assert_eq!(broken_at(format!("{good}{{\"time\":\n")), 5);
        // Nor is an invalid line followed by more records.
        let cut = format!(
            "{}\n{}\n{}",
            lines[0],
            &lines[1][..30],
            &good[lines[0].len() + lines[1].len() + 2..]
        );
        assert_eq!(broken_at(cut), 2);
        // A complete record without newline must still chain.
        let forged = lines[1].replacen("\"status\":401", "\"status\":200", 1);
        assert_eq!(broken_at(format!("{good}{forged}")), 5);
        // A removed record.
        let removed = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        assert_eq!(broken_at(removed), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_line_in_a_rotated_file_is_broken() {
        let (dir, path) = fresh("rot-torn");
        let log = AuditLog::open(&path).unwrap().with_rotation(600);
        for s in 0..8 {
            log.append(&rec(400 + s)).unwrap();
        }
        drop(log);
        let rotated = rotated_files(&path);
        assert!(!rotated.is_empty());
        let first = &rotated[0].1;
        let mut bytes = std::fs::read(first).unwrap();
        bytes.truncate(bytes.len() - 20);
        std::fs::write(first, &bytes).unwrap();
        assert!(matches!(verify_log(&path), Err(AuditError::Broken { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
