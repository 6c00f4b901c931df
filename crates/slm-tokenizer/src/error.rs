//! The crate's one error type: every way untrusted vocabulary metadata or an encode call can fail.

use thiserror::Error;

/// Errors from building a tokenizer out of GGUF metadata, or from encoding.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TokenizerError {
    #[error("missing metadata key `{0}`")]
    MissingKey(&'static str),
    #[error("metadata key `{key}` has the wrong type: expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("unsupported tokenizer model `{0}` (supported: llama, gpt2)")]
    UnsupportedModel(String),
    #[error("unsupported BPE pre-tokenizer `{0}`")]
    UnsupportedPreTokenizer(String),
    #[error("the vocabulary is empty")]
    EmptyVocab,
    #[error("vocabulary of {0} tokens is larger than the supported maximum")]
    VocabTooLarge(usize),
    #[error("`{key}` has {actual} entries but the vocabulary has {expected} tokens")]
    LengthMismatch {
        key: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("token {id} has token type {ty}, outside the enum 0..=6")]
    InvalidTokenType { id: u32, ty: i64 },
    #[error("byte token {id} has text {text:?}, not of the form <0xHH>")]
    InvalidByteToken { id: u32, text: String },
    #[error("token text {text:?} appears twice (ids {first} and {second})")]
    DuplicateToken {
        text: String,
        first: u32,
        second: u32,
    },
    #[error("special token `{key}` = {id} is outside the vocabulary of {n_vocab} tokens")]
    SpecialTokenOutOfRange {
        key: &'static str,
        id: i64,
        n_vocab: usize,
    },
    #[error("merge {index} ({merge:?}) is not of the form `left right`")]
    MalformedMerge { index: usize, merge: String },
    #[error("merge {index} ({merge:?}) references a token that is not in the vocabulary")]
    MergeUnknownToken { index: usize, merge: String },
    #[error("the tokenizer needs a {0} token, but the vocabulary defines none")]
    MissingSpecialToken(&'static str),
    #[error("text of {len} bytes is longer than the {max} bytes one encode call accepts")]
    TextTooLong { len: usize, max: usize },
    #[error("no token for byte 0x{0:02X} (no byte-fallback token and no unknown token)")]
    NoByteToken(u8),
}
