//! Deleting from the store: `slm rm` and `slm gc`. Both run under the store lock (see
//! [`crate::lock`]), so no manifest is written while they decide which blobs are unreferenced and
//! delete them, and no manifest directory they prune is being written into. A blob that is pinned
//! ([`Store::pin`]) or being downloaded is never deleted: it is left for a later `gc`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::digest::Digest;
use crate::error::{HubError, Result};
use crate::lock::{try_exclusive, StoreLock};
use crate::name::ModelName;
use crate::store::{GcReport, Store};

impl Store {
    /// `slm rm NAME`: remove the manifest, then the blobs no other manifest references (unless
    /// pinned or being downloaded). Returns the bytes freed. A name that is not there (or that a
    /// concurrent `rm` removed first) is [`HubError::NotFound`].
    pub fn remove(&self, name: &ModelName) -> Result<u64> {
        let lock = self.lock()?;
        let not_found = || HubError::NotFound {
            name: name.to_string(),
        };
        let m = self.read_manifest(name)?;
        let path = self.manifest_path(name, false)?.ok_or_else(not_found)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(HubError::io(&path, e)),
        }
        // Prune now-empty directories up to manifests/ (writers create them under the lock).
        let top = self.manifests_dir();
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == top || fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        let referenced = self.referenced()?;
        let mut freed = 0u64;
        let unreferenced: BTreeSet<&Digest> = m
            .layers
            .iter()
            .map(|l| &l.digest)
            .filter(|d| !referenced.contains(*d))
            .collect();
        for d in unreferenced {
            if let Some(len) = self.delete_unpinned(&lock, d)? {
                freed = freed.saturating_add(len);
            }
        }
        Ok(freed)
    }

    /// Every digest some manifest references. The caller holds the store lock, so the answer
    /// stays true until it is released.
    fn referenced(&self) -> Result<BTreeSet<Digest>> {
        Ok(self
            .list()?
            .into_iter()
            .flat_map(|e| e.manifest.layers.into_iter().map(|l| l.digest))
            .collect())
    }

    /// Delete unreferenced blob `d` unless someone pins or downloads it: `Some(bytes freed)`
    /// (0 if it was already gone), or `None` when it was left in place.
    fn delete_unpinned(&self, _lock: &StoreLock, d: &Digest) -> Result<Option<u64>> {
        let pin_path = self.pin_path(d);
        let Some(_pin) = try_exclusive(&pin_path)? else {
            return Ok(None);
        };
        let Some(_download) = try_exclusive(&self.tmp_dir().join(format!("{}.lock", d.hex())))?
        else {
            return Ok(None);
        };
        let p = self.blob_path(d);
        let len = match crate::fsutil::lstat(&p)? {
            Some(m) if m.file_type().is_symlink() => return Err(HubError::Symlink { path: p }),
            Some(m) => m.len(),
            None => 0,
        };
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(HubError::io(&p, e)),
        }
        // Nobody holds the pin file and pins are only taken under the store lock: safe to unlink.
        let _ = fs::remove_file(&pin_path);
        Ok(Some(len))
    }

    /// `slm gc`: remove blobs no manifest references (and nobody pins or downloads); with
    /// `partials`, also partial downloads nobody holds a lock on, and temp files when no put or
    /// import is writing one. Unused pin files
    /// are removed either way.
    pub fn gc(&self, partials: bool) -> Result<GcReport> {
        let lock = self.lock()?;
        let referenced = self.referenced()?;
        let mut report = GcReport::default();
        let blobs = self.blobs_dir();
        for entry in fs::read_dir(&blobs).map_err(|e| HubError::io(&blobs, e))? {
            let entry = entry.map_err(|e| HubError::io(&blobs, e))?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            let Some(d) = Digest::from_file_name(&fname) else {
                continue; // not ours: leave it
            };
            if referenced.contains(&d) {
                report.kept += 1;
                continue;
            }
            match self.delete_unpinned(&lock, &d)? {
                Some(len) => {
                    report.removed.push(d);
                    report.freed_bytes = report.freed_bytes.saturating_add(len);
                }
                None => report.pinned += 1,
            }
        }
        let locks = self.locks_dir();
        for entry in fs::read_dir(&locks).map_err(|e| HubError::io(&locks, e))? {
            let entry = entry.map_err(|e| HubError::io(&locks, e))?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            let unused_pin = match fname.strip_suffix(".pin") {
                Some(hex) if Digest::from_hex(hex).is_ok() => try_exclusive(&entry.path())?,
                _ => None,
            };
            if unused_pin.is_some() {
                let _ = fs::remove_file(entry.path());
            }
        }
        if !partials {
            return Ok(report);
        }
        // Temp files are removed only while no put or import is writing one (they would fail).
        let no_writers = try_exclusive(&locks.join("tmp.lock"))?;
        let tmp = self.tmp_dir();
        for entry in fs::read_dir(&tmp).map_err(|e| HubError::io(&tmp, e))? {
            let entry = entry.map_err(|e| HubError::io(&tmp, e))?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            if let Some(hex) = fname.strip_suffix(".part") {
                if Digest::from_hex(hex).is_err() {
                    continue;
                }
                // Held (not just tested) while the partial is removed.
                let held = try_exclusive(&tmp.join(format!("{hex}.lock")))?;
                if held.is_some() && fs::remove_file(entry.path()).is_ok() {
                    report.partials_removed += 1;
                }
            } else if fname.ends_with(".tmp") && no_writers.is_some() {
                let _ = fs::remove_file(entry.path());
                report.partials_removed += 1;
            }
        }
        Ok(report)
    }
}
