//! The store's mutation lock and blob pins, advisory file locks under `locks/` (`flock` on Unix,
//! `LockFileEx` on Windows, through `std::fs::File::lock`):
//!
//! ```text
//! locks/store.lock   exclusive while a manifest is written (blob check .. rename), removed, or gc runs
//! locks/<hex>.pin    shared while a caller is about to reference blob <hex> in a manifest it will write
//! locks/tmp.lock     shared while a blob is written to a `tmp/*.tmp` file (put, import); `gc
//!                    --partials` removes temp files only when it can take it exclusively
//! tmp/<hex>.lock     exclusive while blob <hex> is downloaded (see `Store::lock_blob`)
//! ```
//!
//! A lock is held by an open file, never by a file's existence: the kernel drops it when the
//! holder exits, SIGKILL included, so a crash can never leave the store locked. Threads of one
//! process are serialized by an in-process gate taken before the file lock (file locks from one
//! process do not exclude each other where they are emulated with per-process `fcntl` locks,
//! e.g. on NFS). Pins are taken and pin files removed only under the store lock, so a pin file is
//! never unlinked while someone is between opening and locking it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use crate::error::{HubError, Result};
use crate::fsutil::{ensure_dir, lstat};

/// Roots whose store lock some thread of this process holds.
struct Gate {
    held: Mutex<HashSet<PathBuf>>,
    freed: Condvar,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate {
        held: Mutex::new(HashSet::new()),
        freed: Condvar::new(),
    })
}

/// The store-wide mutation lock, held until dropped. Not re-entrant.
pub struct StoreLock {
    root: PathBuf,
    _file: Option<File>,
}

impl StoreLock {
    /// Block until this thread holds the mutation lock of the store at `root` (canonical).
    pub(crate) fn acquire(root: &Path) -> Result<StoreLock> {
        let g = gate();
        let mut held = g.held.lock().unwrap_or_else(|e| e.into_inner());
        while held.contains(root) {
            held = g.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.insert(root.to_path_buf());
        drop(held);
        // From here on the guard exists, so an error below still releases the gate.
        let mut guard = StoreLock {
            root: root.to_path_buf(),
            _file: None,
        };
        let path = root.join("locks").join("store.lock");
        let f = open_lock_file(&path)?;
        f.lock().map_err(|e| HubError::io(&path, e))?;
        guard._file = Some(f);
        Ok(guard)
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Release the file lock first, then let the next thread of this process through.
        drop(self._file.take());
        let g = gate();
        let mut held = g.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.root);
        g.freed.notify_all();
    }
}

/// A shared lock on one blob: while any pin is held, neither `remove` nor `gc` deletes that blob
/// (it stays until a later `gc` finds it unreferenced and unpinned). Released on drop.
#[derive(Debug)]
pub struct BlobPin {
    _file: File,
}

impl BlobPin {
    /// Take a shared pin on `path`. The caller holds the store lock.
    pub(crate) fn acquire(path: &Path, _store: &StoreLock) -> Result<BlobPin> {
        let f = open_lock_file(path)?;
        f.lock_shared().map_err(|e| HubError::io(path, e))?;
        Ok(BlobPin { _file: f })
    }
}

/// Take a shared lock on `path` (blocks only while someone holds it exclusively).
pub(crate) fn shared(path: &Path) -> Result<File> {
    let f = open_lock_file(path)?;
    f.lock_shared().map_err(|e| HubError::io(path, e))?;
    Ok(f)
}

/// Try to lock `path` exclusively without waiting: `Some(file)` (locked until dropped) when nobody
/// holds it, `None` when someone does.
pub(crate) fn try_exclusive(path: &Path) -> Result<Option<File>> {
    let f = open_lock_file(path)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(HubError::io(path, e)),
    }
}

/// Open (creating if needed) a lock file, refusing a symlink in its place; its directory is
/// created again if someone deleted it.
fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(m) = lstat(path)? {
        if m.file_type().is_symlink() || !m.is_file() {
            return Err(HubError::Symlink {
                path: path.to_path_buf(),
            });
        }
    }
    let open = || {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                ensure_dir(dir, true)?;
            }
            open()
        }
        other => other,
    }
    .map_err(|e| HubError::io(path, e))
}

/// Whether an I/O error says a path (or one of its directories) does not exist.
pub(crate) fn is_not_found(e: &HubError) -> bool {
    matches!(e, HubError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}
