//! Models that other tools already downloaded, used in place without copying: Ollama's model
//! directory (`$OLLAMA_MODELS` or `~/.ollama/models`: `manifests/HOST/NS/NAME/TAG` JSON naming
//! `blobs/sha256-<hex>`) and the Hugging Face cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or
//! `~/.cache/huggingface/hub`: `models--ORG--REPO/snapshots/REV/FILE.gguf`, symlinks into the
//! repo's `blobs/`). Names: `ollama:NAME:TAG` (library models) or `ollama:HOST/NS/NAME:TAG`, and
//! `hf-cache:ORG/REPO/FILE`. Digests go through `Digest::parse`; a cache symlink that resolves
//! outside its repo's `blobs/` is skipped.

use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::fsutil::lstat;
use crate::manifest::{Manifest, MEDIA_MODEL};

/// A model file found in another tool's directory.
#[derive(Clone, Debug)]
pub struct ExternalModel {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
}

/// Ollama's model directory.
pub fn ollama_dir() -> Option<PathBuf> {
    std::env::var_os("OLLAMA_MODELS")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".ollama/models")))
}

/// The Hugging Face hub cache.
pub fn hf_cache_dir() -> Option<PathBuf> {
    std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| home().map(|h| h.join(".cache/huggingface/hub")))
}

/// Real (non-symlink) subdirectories and files of `dir`, by name.
fn entries(dir: &Path) -> Vec<(String, PathBuf, bool)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let ft = e.file_type().ok()?;
            if ft.is_symlink() {
                return None;
            }
            Some((
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                ft.is_dir(),
            ))
        })
        .collect();
    v.sort();
    v
}

/// Every model of an Ollama models directory.
pub fn scan_ollama(dir: &Path) -> Vec<ExternalModel> {
    let mut out = Vec::new();
    for (host, hp, hd) in entries(&dir.join("manifests")) {
        for (ns, np, nd) in entries(&hp).into_iter().filter(|_| hd) {
            for (name, mp, md) in entries(&np).into_iter().filter(|_| nd) {
                for (tag, tp, td) in entries(&mp).into_iter().filter(|_| md) {
                    if td {
                        continue;
                    }
                    let Ok(bytes) = fs::read(&tp) else { continue };
                    let Ok(m) =
                        Manifest::from_json(&bytes, &tag).or_else(|_| ollama_manifest(&bytes))
                    else {
                        continue;
                    };
                    let Some(layer) = m.model_layer() else {
                        continue;
                    };
                    let blob = dir.join("blobs").join(layer.digest.file_name());
                    match lstat(&blob) {
                        Ok(Some(md)) if md.is_file() => {
                            let short = if host == "registry.ollama.ai" && ns == "library" {
                                format!("ollama:{name}:{tag}")
                            } else {
                                format!("ollama:{host}/{ns}/{name}:{tag}")
                            };
                            out.push(ExternalModel {
                                name: short,
                                path: blob,
                                size: md.len(),
                            });
                        }
                        _ => continue,
                    }
                }
            }
        }
    }
    out
}

/// Ollama's manifests carry `config` and no `source`: read just the layers.
fn ollama_manifest(bytes: &[u8]) -> crate::error::Result<Manifest> {
    #[derive(serde::Deserialize)]
    struct L {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: Digest,
        size: u64,
    }
    #[derive(serde::Deserialize)]
    struct M {
        layers: Vec<L>,
    }
    let m: M =
        serde_json::from_slice(bytes).map_err(|e| crate::error::HubError::Other(e.to_string()))?;
    let l = m
        .layers
        .into_iter()
        .find(|l| l.media_type == MEDIA_MODEL)
        .ok_or_else(|| crate::error::HubError::Other("no model layer".into()))?;
    Ok(Manifest::single_model(
        l.digest,
        l.size,
        None,
        "ollama".into(),
    ))
}

/// Every GGUF file of a Hugging Face hub cache (snapshot links that stay inside their repo).
pub fn scan_hf_cache(dir: &Path) -> Vec<ExternalModel> {
    let mut out = Vec::new();
    for (repo_dir, rp, rd) in entries(dir) {
        let Some(repo) = repo_dir.strip_prefix("models--").filter(|_| rd) else {
            continue;
        };
        let repo = repo.replacen("--", "/", 1);
        let Ok(blobs) = fs::canonicalize(rp.join("blobs")) else {
            continue;
        };
        for (_rev, sp, sd) in entries(&rp.join("snapshots")) {
            if !sd {
                continue;
            }
            let mut stack = vec![(sp.clone(), 0usize)];
            while let Some((d, depth)) = stack.pop() {
                let Ok(rd) = fs::read_dir(&d) else { continue };
                for e in rd.flatten() {
                    let p = e.path();
                    let Ok(ft) = e.file_type() else { continue };
                    if ft.is_dir() && depth < 3 {
                        stack.push((p, depth + 1));
                        continue;
                    }
                    if !p.to_string_lossy().to_ascii_lowercase().ends_with(".gguf") {
                        continue;
                    }
                    // Snapshot entries are symlinks into ../../blobs: follow, then check containment.
                    let Ok(real) = fs::canonicalize(&p) else {
                        continue;
                    };
                    if !real.starts_with(&blobs)
                        && !real.starts_with(fs::canonicalize(&sp).unwrap_or_default())
                    {
                        continue;
                    }
                    let Ok(md) = fs::metadata(&real) else {
                        continue;
                    };
                    let rel = p
                        .strip_prefix(&sp)
                        .map(|r| r.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    out.push(ExternalModel {
                        name: format!("hf-cache:{repo}/{rel}"),
                        path: real,
                        size: md.len(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// Both scans over the default directories.
pub fn scan_all() -> Vec<ExternalModel> {
    let mut v = ollama_dir().map(|d| scan_ollama(&d)).unwrap_or_default();
    v.extend(
        hf_cache_dir()
            .map(|d| scan_hf_cache(&d))
            .unwrap_or_default(),
    );
    v
}

/// The file behind an `ollama:...` or `hf-cache:...` name.
pub fn find_external(name: &str) -> Option<PathBuf> {
    if !(name.starts_with("ollama:") || name.starts_with("hf-cache:")) {
        return None;
    }
    let with_latest = format!("{name}:latest");
    scan_all()
        .into_iter()
        .find(|m| m.name == name || m.name == with_latest)
        .map(|m| m.path)
}
