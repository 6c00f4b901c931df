//! The crate's one error type: every failure of loading a model or running a batch, with the
//! key, tensor, sequence or position it concerns.

use slm_gguf::GgmlType;

pub type Result<T> = std::result::Result<T, ModelError>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] slm_gguf::GgufError),
    #[error("architecture `{0}` is not supported (known: {1})")]
    UnknownArchitecture(String, String),
    #[error("the file has no general.architecture key")]
    NoArchitecture,
    #[error("metadata key `{0}` is missing")]
    MissingKey(String),
    #[error("metadata key `{key}` = {value}: {why}")]
    BadHparam {
        key: String,
        value: String,
        why: &'static str,
    },
    #[error("tensor `{0}` is missing")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {actual:?}, the hyperparameters need {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<u64>,
        actual: Vec<u64>,
    },
    #[error("tensor `{name}` has type {ty}, which {why}")]
    TensorType {
        name: String,
        ty: GgmlType,
        why: &'static str,
    },
    #[error(transparent)]
    Quant(#[from] slm_quant::QuantError),
    #[error(transparent)]
    Matmul(#[from] slm_tensor::matmul::MatmulError),
    #[error("batch is empty")]
    EmptyBatch,
    #[error("batch token {index}: token id {token} is not below the vocabulary size {n_vocab}")]
    TokenOutOfRange {
        index: usize,
        token: u32,
        n_vocab: usize,
    },
    #[error("batch token {index}: sequence {seq} expects position {expected}, got {got}")]
    PositionGap {
        index: usize,
        seq: u32,
        expected: u32,
        got: u32,
    },
    #[error("sequence {seq}: position {pos} is past the context limit {n_ctx}")]
    ContextFull { seq: u32, pos: u32, n_ctx: u32 },
    #[error(
        "sequence {seq}: cannot go back to position {pos}, a sliding-window layer kept only \
         positions from {first_kept} (clear the sequence and prefill again)"
    )]
    WindowHistoryLost { seq: u32, pos: u32, first_kept: u32 },
    #[error("perplexity: {0}")]
    Perplexity(String),
    #[error("imatrix: {0}")]
    Imatrix(String),
    #[error("KL divergence: {0}")]
    Kld(String),
    #[error("logits file {path}: {reason}")]
    LogitsFile { path: String, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
