//! Resumable, verified download of one blob into the store.
//!
//! The bytes go to `tmp/<hex>.part` while a sha256 is computed; a resumed download re-hashes the
//! prefix already on disk and asks for the rest with `Range`. A server that answers a Range
//! request with 200 (or a `Content-Range` that does not start where asked) restarts the file from
//! zero; one that sends more than the expected size is cut off. Only a file whose size and digest
//! match is published (fsync, rename, fsync dir); a per-digest lock serializes concurrent pulls of
//! one blob, so the second finds the blob present and transfers nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::digest::{Digest, Hasher};
use crate::error::{HubError, Result};
use crate::http::{Auth, Http};
use crate::progress::Progress;
use crate::store::{check, copy_hashing, Store};

/// One blob to fetch.
pub struct BlobRequest<'a> {
    pub url: &'a str,
    pub digest: Digest,
    /// Expected size, where the source states one.
    pub size: Option<u64>,
    pub auth: Option<&'a Auth>,
    pub headers: &'a [(&'a str, &'a str)],
    pub label: &'a str,
}

/// Open (or create) the partial file and hash what it already holds.
fn open_partial(part: &Path, max: Option<u64>) -> Result<(File, Hasher)> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)
        .map_err(|e| HubError::io(part, e))?;
    let len = f.metadata().map_err(|e| HubError::io(part, e))?.len();
    if max.is_some_and(|m| len > m) {
        truncate(&mut f, part)?;
        return Ok((f, Hasher::new()));
    }
    let mut h = Hasher::new();
    f.seek(SeekFrom::Start(0))
        .map_err(|e| HubError::io(part, e))?;
    copy_hashing(&mut (&f).take(len), &mut io::sink(), &mut h, part)?;
    f.seek(SeekFrom::End(0))
        .map_err(|e| HubError::io(part, e))?;
    Ok((f, h))
}

fn truncate(f: &mut File, part: &Path) -> Result<()> {
    f.set_len(0).map_err(|e| HubError::io(part, e))?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| HubError::io(part, e))?;
    Ok(())
}

/// Where a Content-Range header says the body starts.
fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Download `req` into the store unless it is already there. Returns the bytes received over
/// the network.
pub fn fetch_blob(
    http: &Http,
    store: &Store,
    req: &BlobRequest<'_>,
    progress: &mut dyn Progress,
) -> Result<u64> {
    progress.blob(&req.digest, req.size);
    let _lock = store.lock_blob(&req.digest)?;
    if store.has_blob(&req.digest, req.size)? {
        return Ok(0);
    }
    let part = store.partial_path(&req.digest);
    let mut received = 0u64;
    let mut restarted_clean = false;
    let mut delay = http.config.backoff;
    let mut attempt = 0u32;
    loop {
        match attempt_once(http, req, &part, &mut received, progress) {
            Ok(()) => {
                store.promote(&part, &req.digest)?;
                progress.finish(&format!("{} verified", req.label));
                return Ok(received);
            }
            Err(e @ (HubError::DigestMismatch { .. } | HubError::SizeMismatch { .. })) => {
                let _ = fs::remove_file(&part);
                // A resumed prefix may have come from a different file: one clean retry.
                if restarted_clean {
                    progress.finish(&format!("{} failed", req.label));
                    return Err(e);
                }
                restarted_clean = true;
                progress.note(&format!(
                    "{}: {e}; downloading again from the start",
                    req.label
                ));
            }
            Err(e) if e.is_transient() && attempt < http.config.retries => {
                attempt += 1;
                progress.note(&format!(
                    "{}: {e}; retry {attempt}/{} in {:?}",
                    req.label, http.config.retries, delay
                ));
                std::thread::sleep(delay);
                delay = delay
                    .saturating_mul(2)
                    .min(std::time::Duration::from_secs(30));
            }
            Err(e) => {
                progress.finish(&format!("{} failed", req.label));
                return Err(e);
            }
        }
    }
}

fn attempt_once(
    http: &Http,
    req: &BlobRequest<'_>,
    part: &Path,
    received: &mut u64,
    progress: &mut dyn Progress,
) -> Result<()> {
    let (mut file, mut hasher) = open_partial(part, req.size)?;
    let mut have = hasher.len();
    if req.size != Some(have) {
        let range = format!("bytes={have}-");
        let mut headers: Vec<(&str, &str)> = req.headers.to_vec();
        if have > 0 {
            headers.push(("Range", &range));
        }
        let resp = http.get(req.url, &headers, req.auth)?;
        if let Some(etag) = resp.linked_etag.as_deref() {
            // A 64-hex X-Linked-Etag is the file's sha256: refuse a mismatch before any byte.
            if etag.len() == 64 && etag != req.digest.hex() {
                return Err(HubError::DigestMismatch {
                    what: format!("{} (X-Linked-Etag)", req.label),
                    expected: req.digest.to_string(),
                    actual: format!("sha256:{etag}"),
                });
            }
        }
        match resp.status {
            206 => {
                let start = resp.header("content-range").and_then(content_range_start);
                if start != Some(have) {
                    // Not the range we asked for: start over.
                    truncate(&mut file, part)?;
                    return Err(HubError::Network {
                        url: req.url.to_string(),
                        reason: format!("Content-Range {start:?} does not start at {have}"),
                    });
                }
            }
            416 => {
                // Nothing past our prefix (or a confused server): verify what we have or start over.
                if req.size.is_some() {
                    truncate(&mut file, part)?;
                    return Err(HubError::Network {
                        url: req.url.to_string(),
                        reason: "416 to a Range request within the blob".into(),
                    });
                }
            }
            _ => {
                if have > 0 {
                    // A 200 answer to a Range request carries the whole file.
                    truncate(&mut file, part)?;
                    hasher = Hasher::new();
                    have = 0;
                }
            }
        }
        progress.start(req.label, req.size, have);
        if resp.status != 416 {
            let limit = req.size.map(|s| s - have);
            let mut body = resp.into_reader();
            stream(
                &mut body,
                &mut file,
                &mut hasher,
                (req.url, part),
                limit,
                received,
                progress,
            )?;
        }
    }
    file.sync_all().map_err(|e| HubError::io(part, e))?;
    let n = hasher.len();
    check(Some(&req.digest), req.size, &hasher.finish(), n, req.label)
}

/// Copy the body to the partial file, at most `limit` bytes (one more is an error).
fn stream(
    body: &mut dyn Read,
    file: &mut File,
    hasher: &mut Hasher,
    (url, part): (&str, &Path),
    limit: Option<u64>,
    received: &mut u64,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(HubError::Network {
                    url: url.to_string(),
                    reason: format!("transfer interrupted: {e}"),
                })
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        got = got.saturating_add(n as u64);
        if limit.is_some_and(|l| got > l) {
            let _ = file.set_len(0);
            return Err(HubError::SizeMismatch {
                what: format!("{url} (more bytes than expected)"),
                expected: limit.unwrap_or(0),
                actual: got,
            });
        }
        file.write_all(chunk).map_err(|e| HubError::io(part, e))?;
        hasher.update(chunk);
        *received = received.saturating_add(n as u64);
        progress.inc(n as u64);
    }
}
