//! Model conversion, the layer between the file formats and the CLI:
//!
//! - [`hf`]: Hugging Face safetensors + config.json + tokenizer.json -> GGUF, with the same
//!   metadata keys, tensor names and layouts as llama.cpp's `convert_hf_to_gguf.py`.
//! - [`imatrix`]: importance-matrix files (llama.cpp's GGUF imatrix format).
//! - [`quantize`]: GGUF -> GGUF re-quantization with llama.cpp's per-tensor type policies
//!   (file-type mixes, row-size fallbacks, imatrix, overrides).

#![forbid(unsafe_code)]

mod error;
pub mod hf;
pub mod imatrix;
pub mod quantize;

pub use error::{Error, Result};
