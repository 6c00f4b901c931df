//! Tokenizers built from GGUF metadata (SentencePiece and byte-level BPE), special tokens, the
//! streaming detokenizer, and sandboxed chat-template rendering (`template`).
//!
//! Behaviour follows llama.cpp's `src/llama-vocab.cpp` and `src/unicode.cpp` (as vendored in
//! llama-cpp-python 0.3.36) and is checked against its `ggml-vocab-*.gguf` test pairs and against
//! Hugging Face `tokenizers` on the real model files (see `tests/`).
//!
//! - [`Tokenizer::from_gguf`] reads `tokenizer.ggml.*`: `model` = `llama` (SPM: merges by score,
//!   `▁` spaces, space prefix, `<0xHH>` byte fallback), `gpt2` (byte-level BPE: merges by rank after
//!   the pre-tokenizer named by `tokenizer.ggml.pre`) or `gemma4` (BPE over raw UTF-8 with `▁`).
//!   Malformed metadata is a [`TokenizerError`], never a panic.
//! - [`Tokenizer::encode`]: BOS/EOS per `add_bos_token`/`add_eos_token`; special tokens in the text
//!   are split out first (control tokens only with `parse_special`, user-defined ones always).
//! - [`Tokenizer::decode`], [`Tokenizer::token_to_piece`], [`Tokenizer::piece`]: llama.cpp's
//!   rendering; [`StreamDecoder`] hands out only whole UTF-8 characters.
//! - [`Tokenizer::is_eog`]: llama.cpp's end-of-generation set (EOS, EOT, `<end_of_turn>`,
//!   `<|im_end|>`, FIM pad/repo/sep ...).

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
pub use tokenizer::{Tokenizer, MAX_TEXT_BYTES};
pub use vocab::{attr, SpecialIds, VocabKind};
