//! Hugging Face Hub: `hf.co/ORG/REPO[:QUANT]` and `hf.co/ORG/REPO/FILE.gguf`. The model-info API
//! (`/api/models/ORG/REPO?blobs=true`) lists the files with their LFS sha256 and size; the file
//! comes from `/ORG/REPO/resolve/main/FILE` (redirected to a CDN: the token stays behind), checked
//! against the listing's sha256 and any `X-Linked-Etag`. `HF_ENDPOINT` selects a mirror,
//! `HF_TOKEN` authenticates (sent to the endpoint's host only).

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{HubError, Result};
use crate::http::{host_of, Auth, Http};
use crate::name::{validate_remote_file_name, ModelName};

/// Largest model-info document read.
const MAX_INFO_BYTES: u64 = 16 << 20;

/// A parsed `hf.co/...` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfRef {
    pub repo: String,
    pub quant: Option<String>,
    pub file: Option<String>,
}

/// Parse `hf.co/ORG/REPO[:QUANT]`, `hf.co/ORG/REPO/FILE.gguf` (also `huggingface.co/`); `None`
/// when the input is not a Hugging Face reference.
pub fn parse_ref(input: &str) -> Option<Result<HfRef>> {
    let rest = input
        .strip_prefix("hf.co/")
        .or_else(|| input.strip_prefix("huggingface.co/"))
        .or_else(|| input.strip_prefix("https://huggingface.co/"))?;
    Some(parse_rest(input, rest))
}

fn parse_rest(input: &str, rest: &str) -> Result<HfRef> {
    let bad = |reason: &str| HubError::InvalidName {
        input: input.chars().take(100).collect(),
        reason: reason.to_string(),
    };
    let mut it = rest.splitn(3, '/');
    let org = it.next().unwrap_or("");
    let repo_tag = it.next().ok_or_else(|| bad("want hf.co/ORG/REPO"))?;
    let file = it.next();
    let (repo, quant) = match (file, repo_tag.split_once(':')) {
        (None, Some((r, q))) => (r, Some(q)),
        (_, _) => (repo_tag, None),
    };
    // Reuse the model-name rules for ORG, REPO and QUANT.
    let name = ModelName::parse(&format!("hf.co/{org}/{repo}:{}", quant.unwrap_or("latest")))?;
    let file = match file {
        Some(f) => {
            validate_remote_file_name(f)?;
            if !f.to_ascii_lowercase().ends_with(".gguf") {
                return Err(bad("the file must be a .gguf"));
            }
            Some(f.to_string())
        }
        None => None,
    };
    Ok(HfRef {
        repo: name
            .parts()
            .get(1..)
            .map(|p| p.join("/"))
            .unwrap_or_default(),
        quant: quant.map(str::to_string),
        file,
    })
}

/// The endpoint (`HF_ENDPOINT` or https://huggingface.co).
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`) scoped to the endpoint's host.
pub fn auth(endpoint: &str) -> Option<Auth> {
    let token = std::env::var("HF_TOKEN")
        .or_else(|_| std::env::var("HUGGING_FACE_HUB_TOKEN"))
        .ok()
        .filter(|t| !t.is_empty())?;
    let u = url::Url::parse(endpoint).ok()?;
    Some(Auth {
        host: host_of(&u),
        token,
    })
}

#[derive(Deserialize)]
struct ModelInfo {
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: String,
    size: u64,
}

/// A file chosen for download.
#[derive(Clone, Debug)]
pub struct HfFile {
    pub file: String,
    pub url: String,
    pub digest: Digest,
    pub size: u64,
    /// The quant found in the file name (the store tag).
    pub quant: Option<String>,
}

/// The quant named in a GGUF file name (`...-Q4_K_M.gguf` -> `Q4_K_M`).
pub fn quant_of_file(file: &str) -> Option<String> {
    let stem = file
        .rsplit('/')
        .next()?
        .strip_suffix(".gguf")
        .or_else(|| file.strip_suffix(".GGUF"))?;
    let last = stem.rsplit(['-', '.']).next()?;
    let up = last.to_ascii_uppercase();
    let known = up.starts_with('Q')
        || up.starts_with("IQ")
        || up.starts_with("TQ")
        || matches!(up.as_str(), "F16" | "BF16" | "F32" | "I2_S");
    (known && up.len() <= 8).then_some(up)
}

/// Endpoint and token of a Hugging Face hub.
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub endpoint: String,
    pub auth: Option<Auth>,
}

impl HfConfig {
    /// `HF_ENDPOINT` and `HF_TOKEN` from the environment.
    pub fn from_env() -> HfConfig {
        let endpoint = endpoint();
        HfConfig {
            auth: auth(&endpoint),
            endpoint,
        }
    }
}

/// List the repo and pick the file (the named one, the one with the quant, or Q4_K_M).
pub fn resolve(http: &Http, cfg: &HfConfig, r: &HfRef) -> Result<HfFile> {
    let ep = cfg.endpoint.trim_end_matches('/');
    let a = cfg.auth.clone();
    let url = format!("{ep}/api/models/{}?blobs=true", r.repo);
    let info: ModelInfo = http.get_json(&url, &[], a.as_ref(), MAX_INFO_BYTES)?;
    let mut ggufs = Vec::new();
    for s in info.siblings {
        validate_remote_file_name(&s.rfilename)?;
        if s.rfilename.to_ascii_lowercase().ends_with(".gguf") && !s.rfilename.contains("mmproj") {
            ggufs.push(s);
        }
    }
    let want = r
        .quant
        .as_deref()
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| "Q4_K_M".into());
    let pick = match &r.file {
        Some(f) => ggufs.iter().find(|s| &s.rfilename == f),
        None => ggufs
            .iter()
            .find(|s| quant_of_file(&s.rfilename).as_deref() == Some(want.as_str()))
            .or_else(|| {
                if r.quant.is_none() {
                    ggufs.first()
                } else {
                    None
                }
            }),
    };
    let s = pick.ok_or_else(|| HubError::NoSource {
        name: format!("hf.co/{}", r.repo),
        what: match &r.file {
            Some(f) => format!("file {f}"),
            None => format!("GGUF file with quant {want}"),
        },
    })?;
    if s.rfilename.contains("-of-0") {
        return Err(HubError::Other(format!(
            "{} is a split GGUF; split files are not supported yet",
            s.rfilename
        )));
    }
    let lfs = s.lfs.as_ref().ok_or_else(|| HubError::NoSource {
        name: s.rfilename.clone(),
        what: "LFS sha256 in the listing".into(),
    })?;
    if s.size.is_some_and(|n| n != lfs.size) {
        return Err(HubError::InvalidManifest {
            what: s.rfilename.clone(),
            reason: "size and LFS size disagree".into(),
        });
    }
    Ok(HfFile {
        file: s.rfilename.clone(),
        url: format!("{ep}/{}/resolve/main/{}", r.repo, s.rfilename),
        digest: Digest::from_hex(&lfs.sha256)?,
        size: lfs.size,
        quant: quant_of_file(&s.rfilename),
    })
}
