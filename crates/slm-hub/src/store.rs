//! The local model store under `SLM_HOME` (default `~/.slm`):
//!
//! ```text
//! blobs/sha256-<hex>          content-addressed files, named only from a `Digest`, stored once
//! manifests/<part>/.../<tag>  one JSON manifest per name:tag, listing its blobs
//! tmp/                        partial downloads (<hex>.part), per-digest locks, temp files
//! locks/                      the store-wide mutation lock and blob pins (see `lock.rs`)
//! ```
//!
//! A blob becomes visible only once complete and verified (written in `tmp/`, fsync, rename, fsync
//! dir); a manifest is written last, only when every blob it names is present. Nothing under the
//! store is opened through a symlink.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{HubError, Result};
use crate::fsutil::{ensure_dir, lstat, open_no_follow, publish, unique_temp, write_atomic};
pub use crate::lock::BlobPin;
use crate::lock::{is_not_found, StoreLock};
use crate::manifest::Manifest;
use crate::name::{ModelName, MAX_COMPONENTS};

/// Copy buffer size for hashing and copying.
const BUF: usize = 1 << 20;

/// How often a step that lost a race with a concurrent writer is tried again (creating a manifest
/// directory that vanished, opening a manifest that was replaced).
const RACE_ATTEMPTS: u32 = 5;

/// A model store rooted at one directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// One row of `slm list`.
#[derive(Clone, Debug)]
pub struct ListEntry {
    pub name: ModelName,
    pub manifest: Manifest,
    pub modified: Option<std::time::SystemTime>,
}

/// What `gc` did.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    pub removed: Vec<Digest>,
    pub freed_bytes: u64,
    pub partials_removed: usize,
    pub kept: usize,
    /// Unreferenced blobs left in place because someone pinned them (or is downloading them).
    pub pinned: usize,
}

/// An advisory lock on one digest, held while it is downloaded; released on drop.
pub struct BlobLock {
    _file: File,
}

impl Store {
    /// `SLM_HOME`, else `~/.slm` (`%USERPROFILE%\.slm` on Windows).
    pub fn default_root() -> Result<PathBuf> {
        if let Some(h) = std::env::var_os("SLM_HOME").filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(h));
        }
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| HubError::Other("neither SLM_HOME nor HOME is set".into()))?;
        Ok(PathBuf::from(home).join(".slm"))
    }

    /// Open (creating if needed) the store at `SLM_HOME` or its default.
    pub fn open_default() -> Result<Store> {
        Store::open(Store::default_root()?)
    }

    /// Open (creating if needed) a store rooted at `root`. The root and its four directories must
    /// be real directories, not symlinks.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        if lstat(&root)?.is_none() {
            fs::create_dir_all(&root).map_err(|e| HubError::io(&root, e))?;
        }
        // The root itself may be a symlink the user chose (~/.slm -> /data/slm); nothing inside it may.
        let root = fs::canonicalize(&root).map_err(|e| HubError::io(&root, e))?;
        for d in ["blobs", "manifests", "tmp", "locks"] {
            ensure_dir(&root.join(d), true)?;
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The store lock and blob pins (see [`crate::lock`]).
    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// The final path of a blob (it may not exist).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.file_name())
    }

    /// The partial-download path of a blob.
    pub fn partial_path(&self, d: &Digest) -> PathBuf {
        self.tmp_dir().join(format!("{}.part", d.hex()))
    }

    /// Whether the blob is present as a regular file (not a symlink) of the expected size.
    pub fn has_blob(&self, d: &Digest, size: Option<u64>) -> Result<bool> {
        let p = self.blob_path(d);
        match lstat(&p)? {
            Some(m) if m.file_type().is_symlink() => Err(HubError::Symlink { path: p }),
            Some(m) if m.is_file() => Ok(size.is_none_or(|s| s == m.len())),
            _ => Ok(false),
        }
    }

    /// Open a blob for reading (no symlinks).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        open_no_follow(&self.blob_path(d)).map_err(|e| match e {
            HubError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                HubError::MissingBlob {
                    digest: d.to_string(),
                }
            }
            other => other,
        })
    }

    /// Take the per-digest advisory lock (blocks until other pullers of this blob are done).
    pub fn lock_blob(&self, d: &Digest) -> Result<BlobLock> {
        let p = self.tmp_dir().join(format!("{}.lock", d.hex()));
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| HubError::io(&p, e))?;
        f.lock().map_err(|e| HubError::io(&p, e))?;
        Ok(BlobLock { _file: f })
    }

    /// Publish a verified partial file as blob `d` (fsync, rename, fsync dir). If the blob already
    /// exists the partial is dropped.
    pub fn promote(&self, tmp: &Path, d: &Digest) -> Result<()> {
        if self.has_blob(d, None)? {
            let _ = fs::remove_file(tmp);
            return Ok(());
        }
        publish(tmp, &self.blob_path(d))
    }

    /// Stream `reader` into the store, hashing as it goes; the blob appears only if the digest
    /// (and size) match what was expected. Returns the digest and size.
    pub fn put_blob<R: Read>(
        &self,
        reader: R,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        self.put_blob_pinned(reader, expected, expected_size)
            .map(|(d, n, _pin)| (d, n))
    }

    /// [`Store::put_blob`], returning a pin on the blob taken before it was published, so that
    /// `gc` or `remove` cannot delete it before the caller's manifest names it.
    pub fn put_blob_pinned<R: Read>(
        &self,
        mut reader: R,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64, BlobPin)> {
        let _writing = self.writing_tmp()?;
        let tmp = unique_temp(&self.tmp_dir(), "blob");
        let res = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| HubError::io(&tmp, e))?;
            let mut h = Hasher::new();
            copy_hashing(&mut reader, &mut f, &mut h, &tmp)?;
            f.sync_all().map_err(|e| HubError::io(&tmp, e))?;
            drop(f);
            let n = h.len();
            let d = h.finish();
            check(expected, expected_size, &d, n, "blob")?;
            let pin = self.pin(&d)?;
            self.promote(&tmp, &d)?;
            Ok((d, n, pin))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// `slm import FILE --name NAME:TAG`: add a local GGUF file. A hard link is used where the
    /// file system allows it (no copy), else the file is copied while hashing.
    pub fn import_file(&self, src: &Path, name: &ModelName) -> Result<Manifest> {
        let (layer, _pin) = self.import_blob_pinned(src)?;
        let m = Manifest {
            schema_version: 2,
            media_type: crate::manifest::MEDIA_MANIFEST.to_string(),
            layers: vec![layer],
            source: Some(format!("import:{}", src.display())),
        };
        self.write_manifest(name, &m)?;
        Ok(m)
    }

    /// Add a local GGUF file as a blob (hard link or hashed copy) and return its model layer.
    pub fn import_blob(&self, src: &Path) -> Result<crate::manifest::Layer> {
        self.import_blob_pinned(src).map(|(l, _pin)| l)
    }

    /// [`Store::import_blob`], returning a pin on the blob (see [`Store::put_blob_pinned`]).
    pub fn import_blob_pinned(&self, src: &Path) -> Result<(crate::manifest::Layer, BlobPin)> {
        let mut magic = [0u8; 4];
        File::open(src)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(|e| HubError::io(src, e))?;
        if &magic != b"GGUF" {
            return Err(HubError::Other(format!(
                "{} is not a GGUF file (no GGUF magic)",
                src.display()
            )));
        }
        let _writing = self.writing_tmp()?;
        let tmp = unique_temp(&self.tmp_dir(), "import");
        let res = (|| {
            let (d, n) = if fs::hard_link(src, &tmp).is_ok() {
                let mut f = open_no_follow(&tmp)?;
                let mut h = Hasher::new();
                copy_hashing(&mut f, &mut io::sink(), &mut h, &tmp)?;
                let n = h.len();
                (h.finish(), n)
            } else {
                let mut input = File::open(src).map_err(|e| HubError::io(src, e))?;
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(|e| HubError::io(&tmp, e))?;
                let mut h = Hasher::new();
                copy_hashing(&mut input, &mut out, &mut h, &tmp)?;
                out.sync_all().map_err(|e| HubError::io(&tmp, e))?;
                let n = h.len();
                (h.finish(), n)
            };
            let pin = self.pin(&d)?;
            self.promote(&tmp, &d)?;
            let filename = src
                .file_name()
                .map(|f| f.to_string_lossy().chars().take(200).collect());
            let layer = crate::manifest::Layer {
                media_type: crate::manifest::MEDIA_MODEL.to_string(),
                digest: d,
                size: n,
                filename,
            };
            Ok((layer, pin))
        })();
        if lstat(&tmp).ok().flatten().is_some() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// The manifest directory of `name`, each component checked to be a real directory.
    pub(crate) fn manifest_path(&self, name: &ModelName, create: bool) -> Result<Option<PathBuf>> {
        let rel = name.manifest_rel_path();
        let mut dir = self.manifests_dir();
        let comps: Vec<_> = rel.components().collect();
        let Some((file, dirs)) = comps.split_last() else {
            return Err(HubError::Other("empty manifest path".into()));
        };
        for c in dirs {
            dir.push(c);
            if !ensure_dir(&dir, create)? {
                return Ok(None);
            }
        }
        Ok(Some(dir.join(file)))
    }

    /// Write `name`'s manifest atomically, after checking that every blob it names is present
    /// with the right size. The check and the rename happen under the store lock, so `remove` and
    /// `gc` cannot delete a blob in between; to keep them from deleting one earlier (between
    /// fetching it and calling this), hold a [`Store::pin`] on it from before it is fetched.
    pub fn write_manifest(&self, name: &ModelName, m: &Manifest) -> Result<()> {
        let lock = self.lock()?;
        self.write_manifest_locked(&lock, name, m)
    }

    /// [`Store::write_manifest`] for a caller that holds the store lock.
    fn write_manifest_locked(
        &self,
        _lock: &StoreLock,
        name: &ModelName,
        m: &Manifest,
    ) -> Result<()> {
        for l in &m.layers {
            if !self.has_blob(&l.digest, Some(l.size))? {
                return Err(HubError::MissingBlob {
                    digest: l.digest.to_string(),
                });
            }
        }
        let data = m.to_json();
        // Directories are pruned only under the lock, but a process from before the lock existed
        // may still prune one between our mkdir and rename: create it again a few times.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = match self.manifest_path(name, true)? {
                Some(path) => {
                    if let Some(md) = lstat(&path)? {
                        if md.file_type().is_symlink() || !md.is_file() {
                            return Err(HubError::Symlink { path });
                        }
                    }
                    write_atomic(&self.tmp_dir(), &path, &data)
                }
                None => Err(HubError::io(
                    self.manifests_dir(),
                    io::Error::new(io::ErrorKind::NotFound, "manifest directory vanished"),
                )),
            };
            match res {
                Err(e) if attempt < RACE_ATTEMPTS && is_not_found(&e) => continue,
                other => return other,
            }
        }
    }

    /// Take the store-wide mutation lock (blocks while another thread or process mutates).
    pub(crate) fn lock(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.root)
    }

    /// Pin blob `d` (present or not yet): until the pin is dropped, `remove` and `gc` leave it in
    /// place even when no manifest references it. Take it before fetching or checking a blob a
    /// new manifest will name, and drop it after [`Store::write_manifest`].
    pub fn pin(&self, d: &Digest) -> Result<BlobPin> {
        let lock = self.lock()?;
        BlobPin::acquire(&self.pin_path(d), &lock)
    }

    /// [`Store::pin`] for several blobs under one lock acquisition.
    pub fn pin_all<'a>(&self, ds: impl IntoIterator<Item = &'a Digest>) -> Result<Vec<BlobPin>> {
        let lock = self.lock()?;
        ds.into_iter()
            .map(|d| BlobPin::acquire(&self.pin_path(d), &lock))
            .collect()
    }

    /// Held while a temp file of `put_blob`/`import_blob` exists, so `gc --partials` leaves it.
    fn writing_tmp(&self) -> Result<File> {
        crate::lock::shared(&self.locks_dir().join("tmp.lock"))
    }

    /// The pin file of blob `d`.
    pub(crate) fn pin_path(&self, d: &Digest) -> PathBuf {
        self.locks_dir().join(format!("{}.pin", d.hex()))
    }

    /// Read `name`'s manifest.
    pub fn read_manifest(&self, name: &ModelName) -> Result<Manifest> {
        let not_found = || HubError::NotFound {
            name: name.to_string(),
        };
        let path = self.manifest_path(name, false)?.ok_or_else(not_found)?;
        // Lock-free: a concurrent write may replace the file (rename) and a remove unlink it
        // between the no-follow check and the open. Look again while it is a regular file.
        let mut attempt = 0;
        let f = loop {
            attempt += 1;
            if lstat(&path)?.is_none() {
                return Err(not_found());
            }
            match open_no_follow(&path) {
                Ok(f) => break f,
                Err(e) if is_not_found(&e) => return Err(not_found()),
                Err(HubError::Symlink { .. })
                    if attempt < RACE_ATTEMPTS && lstat(&path)?.is_some_and(|m| m.is_file()) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        };
        let mut buf = Vec::new();
        f.take(crate::manifest::MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| HubError::io(&path, e))?;
        Manifest::from_json(&buf, &name.to_string())
    }

    /// Whether `name` has a manifest whose blobs are all present.
    pub fn is_complete(&self, name: &ModelName) -> Result<bool> {
        let m = match self.read_manifest(name) {
            Ok(m) => m,
            Err(HubError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        for l in &m.layers {
            if !self.has_blob(&l.digest, Some(l.size))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Path of `name`'s GGUF model blob, for running it.
    pub fn model_path(&self, name: &ModelName) -> Result<PathBuf> {
        let m = self.read_manifest(name)?;
        let l = m.model_layer().ok_or_else(|| HubError::InvalidManifest {
            what: name.to_string(),
            reason: "no model layer".into(),
        })?;
        if !self.has_blob(&l.digest, Some(l.size))? {
            return Err(HubError::MissingBlob {
                digest: l.digest.to_string(),
            });
        }
        Ok(self.blob_path(&l.digest))
    }

    /// Every manifest in the store, sorted by name. Symlinks are skipped; an unreadable or invalid
    /// manifest is an error (so `gc` never deletes what it might reference).
    pub fn list(&self) -> Result<Vec<ListEntry>> {
        let mut out = Vec::new();
        self.walk(&self.manifests_dir(), &mut Vec::new(), &mut out)?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Walk `dir` (at `rel` under manifests/). A concurrent `remove` may delete a manifest or
    /// prune its directory after it was listed: such an entry is skipped, never an error.
    fn walk(&self, dir: &Path, rel: &mut Vec<String>, out: &mut Vec<ListEntry>) -> Result<()> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.is_empty() => return Ok(()),
            Err(e) => return Err(HubError::io(dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| HubError::io(dir, e))?;
            let ft = entry
                .file_type()
                .map_err(|e| HubError::io(entry.path(), e))?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            if ft.is_symlink() {
                continue;
            }
            rel.push(fname);
            if ft.is_dir() && rel.len() <= MAX_COMPONENTS {
                self.walk(&entry.path(), rel, out)?;
            } else if ft.is_file() {
                if let Ok(name) = ModelName::from_rel_components(rel) {
                    match self.read_manifest(&name) {
                        Ok(manifest) => {
                            let modified = entry.metadata().ok().and_then(|m| m.modified().ok());
                            out.push(ListEntry {
                                name,
                                manifest,
                                modified,
                            });
                        }
                        Err(HubError::NotFound { .. }) => {}
                        Err(HubError::Io { source, .. })
                            if source.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            rel.pop();
        }
        Ok(())
    }

    /// `slm cp SRC DST`: a new name for the same blobs (no data is copied). Reading `SRC` and
    /// writing `DST` is one step under the store lock, so a concurrent `rm SRC` cannot take the
    /// blobs away in between.
    pub fn copy(&self, src: &ModelName, dst: &ModelName) -> Result<()> {
        let lock = self.lock()?;
        let m = self.read_manifest(src)?;
        self.write_manifest_locked(&lock, dst, &m)
    }

    /// Re-hash every blob of `name`; an error names the first one that does not match.
    pub fn verify(&self, name: &ModelName) -> Result<()> {
        let m = self.read_manifest(name)?;
        for l in &m.layers {
            let mut f = self.open_blob(&l.digest)?;
            let mut h = Hasher::new();
            let p = self.blob_path(&l.digest);
            copy_hashing(&mut f, &mut io::sink(), &mut h, &p)?;
            let n = h.len();
            check(
                Some(&l.digest),
                Some(l.size),
                &h.finish(),
                n,
                &p.display().to_string(),
            )?;
        }
        Ok(())
    }
}

/// Compare a computed digest and length with the expected ones.
pub fn check(
    expected: Option<&Digest>,
    expected_size: Option<u64>,
    got: &Digest,
    n: u64,
    what: &str,
) -> Result<()> {
    if let Some(s) = expected_size {
        if s != n {
            return Err(HubError::SizeMismatch {
                what: what.to_string(),
                expected: s,
                actual: n,
            });
        }
    }
    if let Some(e) = expected {
        if e != got {
            return Err(HubError::DigestMismatch {
                what: what.to_string(),
                expected: e.to_string(),
                actual: got.to_string(),
            });
        }
    }
    Ok(())
}

/// Copy `r` to `w`, feeding every byte to `h`.
pub fn copy_hashing<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    h: &mut Hasher,
    path: &Path,
) -> Result<u64> {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HubError::io(path, e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        h.update(chunk);
        w.write_all(chunk).map_err(|e| HubError::io(path, e))?;
        total = total.saturating_add(n as u64);
    }
}
