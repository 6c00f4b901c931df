//! The audit log: JSON lines, one record per auth failure and per state-changing request,
//! hash-chained (each record carries the sha256 of the previous line), so editing or removing a
//! record breaks verification at that record. Records hold no key and no prompt. With rotation
//! the live file is renamed `NAME.000001`, `NAME.000002`, ... when it reaches its size limit and
//! the chain continues into the new file; [`verify`] follows the rotated files in order.

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
    /// Open (or create) the log at `path`, continuing its chain.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let last = match verify(path) {
            Ok((_, last)) => last,
            Err(AuditError::Io { .. }) => GENESIS.to_string(),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(AuditLog {
            path: path.to_path_buf(),
            max_bytes: 0,
            inner: Mutex::new(Live { file, last, size }),
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
        guard.file.write_all(line.as_bytes()).map_err(io)?;
        guard.file.write_all(b"\n").map_err(io)?;
        guard.file.sync_data().map_err(io)?;
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

/// Check the chain of the log at `path`, starting with its rotated files; returns the number of
/// records and the last hash.
pub fn verify(path: &Path) -> Result<(usize, String), AuditError> {
    let rotated = rotated_files(path);
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (_, p) in &rotated {
        n += verify_file(p, &mut prev, n)?;
    }
    if rotated.is_empty() || path.exists() {
        n += verify_file(path, &mut prev, n)?;
    }
    Ok((n, prev))
}

/// Verify one file continuing the chain from `prev`; line numbers in errors count from
/// `before` records (over all files).
fn verify_file(path: &Path, prev: &mut String, before: usize) -> Result<usize, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut n = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|_| AuditError::Broken {
            line: before + i + 1,
            why: "not a JSON record".into(),
        })?;
        if v.get("prev").and_then(|p| p.as_str()) != Some(prev.as_str()) {
            return Err(AuditError::Broken {
                line: before + i + 1,
                why: "hash chain does not match the previous record".into(),
            });
        }
        *prev = sha256_hex(line.as_bytes());
        n += 1;
    }
    Ok(n)
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
}
