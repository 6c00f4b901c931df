//! The crate's one error type.

use thiserror::Error;

/// Errors of conversion and quantization.
#[derive(Debug, Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Gguf(#[from] slm_gguf::GgufError),
}

/// Result with the crate's error.
pub type Result<T> = std::result::Result<T, Error>;
