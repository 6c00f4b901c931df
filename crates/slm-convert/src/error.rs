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
    /// A safetensors file that breaks the format (see `hf::safetensors::StProblem`).
    #[error("safetensors {file}: {problem}")]
    Safetensors {
        file: String,
        problem: crate::hf::safetensors::StProblem,
    },
    /// A file of a Hugging Face model folder that is missing.
    #[error("{path} not found (a Hugging Face model folder needs {what})")]
    MissingFile { path: String, what: String },
    /// A JSON file that does not parse or lacks what conversion needs.
    #[error("{file}: {why}")]
    HfConfig { file: String, why: String },
    /// An architecture the converter has no mapping for.
    #[error("unsupported architecture {arch:?} (slm convert knows: {known})")]
    UnsupportedArch { arch: String, known: String },
    /// A tensor that cannot be converted (unknown name, bad shape, unsupported dtype).
    #[error("tensor {tensor}: {why}")]
    HfTensor { tensor: String, why: String },
    #[error("imatrix file {path}: {reason}")]
    Imatrix { path: String, reason: String },
    /// A quantization that cannot or must not be done (the reason says which and why).
    #[error("{0}")]
    Quantize(String),
    /// A tensor the quantizer rejected.
    #[error("tensor {tensor}: {source}")]
    Quant {
        tensor: String,
        #[source]
        source: slm_quant::QuantError,
    },
}

/// Result with the crate's error.
pub type Result<T> = std::result::Result<T, Error>;
