//! The audit log: JSON lines, one record per auth failure and per state-changing request,
//! hash-chained (each record carries the sha256 of the previous line), so editing or removing a
//! record breaks verification at that record. Records hold no key and no prompt.

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
}

pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<(File, String)>,
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
        Ok(AuditLog {
            path: path.to_path_buf(),
            inner: Mutex::new((file, last)),
        })
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
        v["prev"] = serde_json::Value::String(guard.1.clone());
        let line = v.to_string();
        guard.0.write_all(line.as_bytes()).map_err(io)?;
        guard.0.write_all(b"\n").map_err(io)?;
        guard.0.sync_data().map_err(io)?;
        guard.1 = sha256_hex(line.as_bytes());
        Ok(())
    }
}

/// Check the chain of the log at `path`; returns the number of records and the last hash.
pub fn verify(path: &Path) -> Result<(usize, String), AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|_| AuditError::Broken {
            line: i + 1,
            why: "not a JSON record".into(),
        })?;
        if v.get("prev").and_then(|p| p.as_str()) != Some(prev.as_str()) {
            return Err(AuditError::Broken {
                line: i + 1,
                why: "hash chain does not match the previous record".into(),
            });
        }
        prev = sha256_hex(line.as_bytes());
        n += 1;
    }
    Ok((n, prev))
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
}
