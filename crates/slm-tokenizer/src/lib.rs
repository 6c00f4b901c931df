//! Tokenizers built from GGUF metadata (SentencePiece and byte-level BPE), special tokens, the
//! streaming detokenizer, and sandboxed chat-template rendering (`template`).

pub mod template;
