//! File-system steps the store is built from: atomic publish (temp file, fsync, rename, fsync
//! dir), directories walked without following symlinks, and no-follow opens that check the
//! opened file is the one that was inspected.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{HubError, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temp file name in `dir` that no other process or thread uses.
pub fn unique_temp(dir: &Path, what: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!("{what}-{}-{n}-{nanos}.tmp", std::process::id()))
}

/// fsync a directory so a rename inside it is durable (a no-op where directories cannot be opened).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| HubError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Publish `tmp` (complete and verified) under `dest`: fsync the file, rename, fsync the directory.
pub fn publish(tmp: &Path, dest: &Path) -> Result<()> {
    OpenOptions::new()
        .read(true)
        .open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| HubError::io(tmp, e))?;
    fs::rename(tmp, dest).map_err(|e| HubError::io(dest, e))?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Write `data` to `dest` atomically through a temp file in `tmp_dir` (same file system).
pub fn write_atomic(tmp_dir: &Path, dest: &Path, data: &[u8]) -> Result<()> {
    let tmp = unique_temp(tmp_dir, "write");
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| HubError::io(&tmp, e))?;
        f.write_all(data).map_err(|e| HubError::io(&tmp, e))?;
        f.sync_all().map_err(|e| HubError::io(&tmp, e))?;
        drop(f);
        publish(&tmp, dest)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// `path`'s metadata without following a final symlink; `None` when it does not exist.
pub fn lstat(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HubError::io(path, e)),
    }
}

/// Ensure `path` is a real directory (creating it if `create`), never a symlink.
pub fn ensure_dir(path: &Path, create: bool) -> Result<bool> {
    match lstat(path)? {
        Some(m) if m.file_type().is_symlink() => Err(HubError::Symlink {
            path: path.to_path_buf(),
        }),
        Some(m) if m.is_dir() => Ok(true),
        Some(_) => Err(HubError::io(
            path,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            ),
        )),
        None if create => {
            match fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(HubError::io(path, e)),
            }
            // Re-check: someone may have raced a symlink in.
            ensure_dir(path, false)
        }
        None => Ok(false),
    }
}

/// Open a regular file for reading without following a symlink: the file must not be a symlink
/// when inspected, and the opened handle must be that same file.
pub fn open_no_follow(path: &Path) -> Result<File> {
    let before = match lstat(path)? {
        Some(m) => m,
        None => {
            return Err(HubError::io(
                path,
                io::Error::new(io::ErrorKind::NotFound, "not found"),
            ))
        }
    };
    if before.file_type().is_symlink() || !before.is_file() {
        return Err(HubError::Symlink {
            path: path.to_path_buf(),
        });
    }
    let f = File::open(path).map_err(|e| HubError::io(path, e))?;
    let after = f.metadata().map_err(|e| HubError::io(path, e))?;
    if !same_file(&before, &after) {
        return Err(HubError::Symlink {
            path: path.to_path_buf(),
        });
    }
    Ok(f)
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && b.is_file()
}
