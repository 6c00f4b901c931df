//! Tokenizers built from GGUF metadata (SentencePiece and byte-level BPE), special tokens, the
//! streaming detokenizer, and sandboxed chat-template rendering (`template`).
//!
//! Behaviour follows llama.cpp's `src/llama-vocab.cpp` and `src/unicode.cpp` (as vendored in
//! llama-cpp-python 0.3.36) and is checked against its `ggml-vocab-*.gguf` test pairs.

#![forbid(unsafe_code)]

mod bpe;
mod error;
mod pretok;
mod spm;
mod stream;
mod tokenizer;
mod unicode;
mod vocab;

pub mod template;

pub use error::TokenizerError;
pub use stream::StreamDecoder;
pub use tokenizer::Tokenizer;
pub use vocab::{attr, SpecialIds, VocabKind};
