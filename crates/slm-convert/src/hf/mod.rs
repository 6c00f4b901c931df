//! Hugging Face safetensors -> GGUF, with the metadata keys, tensor names and layouts of
//! llama.cpp's `convert_hf_to_gguf.py`, and back (GGUF -> F32 safetensors + config + tokenizer).
//!
//! - [`safetensors`]: the hardened safetensors reader and writer; [`shards`]: a folder's files.
//! - [`config`]: config.json, architecture detection, merged RoPE parameters.
//! - [`arch`]: per-architecture keys, tensor names, layout transforms, generated tensors.
//! - [`vocab`], [`spm`]: tokenizer metadata (SentencePiece protobuf, tokenizer.json BPE).
//! - [`convert`]: plan and write a conversion.
//! - [`export`]: GGUF -> F32 safetensors + config.json + tokenizer files.

pub mod arch;
pub mod config;
pub mod convert;
pub mod export;
pub mod meta;
pub mod safetensors;
pub mod shards;
pub mod spm;
pub mod vocab;

pub use convert::{plan, ConvertOptions, Plan};
pub use export::{export_hf, ExportSummary};
