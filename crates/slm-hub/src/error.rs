//! The one error type of `slm-hub`: every variant carries the name, digest, URL or path involved.

use std::path::PathBuf;

/// Everything that can go wrong between a model name and a verified file in the store.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: &'static str },
    #[error("invalid model name {input:?}: {reason}")]
    InvalidName { input: String, reason: String },
    #[error("invalid file name {input:?}: {reason}")]
    InvalidFileName { input: String, reason: &'static str },
    #[error("model {name} is not in the store")]
    NotFound { name: String },
    #[error("model {name} is not in the catalog (see `slm catalog`)")]
    NotInCatalog { name: String },
    #[error("blob {digest} is missing from the store")]
    MissingBlob { digest: String },
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid manifest {what}: {reason}")]
    InvalidManifest { what: String, reason: String },
    #[error("{path}: refusing to follow a symlink or leave the store")]
    Symlink { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("offline (SLM_OFFLINE=1 or --offline): {name} needs {missing}, not in the store")]
    Offline { name: String, missing: String },
    #[error("HTTP {status} from {url}")]
    HttpStatus { url: String, status: u16 },
    #[error("401 unauthorized from {url} (set HF_TOKEN for gated Hugging Face repos)")]
    Unauthorized {
        url: String,
        challenge: Option<String>,
    },
    #[error("network error for {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("refused URL {url}: {reason}")]
    RefusedUrl { url: String, reason: &'static str },
    #[error("response from {url} is too large (over {limit} bytes)")]
    BodyTooLarge { url: String, limit: u64 },
    #[error("bad JSON from {url}: {reason}")]
    BadJson { url: String, reason: String },
    #[error("no {what} found for {name}")]
    NoSource { name: String, what: String },
    #[error("wheel {wheel}: {reason}")]
    BadArchive { wheel: String, reason: String },
    #[error("{0}")]
    Other(String),
}

impl HubError {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HubError {
        HubError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether a retry may help (network trouble, 5xx, 429), as opposed to a verdict.
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Network { .. } => true,
            HubError::HttpStatus { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, HubError>;
