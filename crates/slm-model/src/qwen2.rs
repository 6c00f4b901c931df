//! Qwen2 / Qwen2.5 (`general.architecture = qwen2`), a Llama variant.
//!
//! Deviations from Llama, as llama.cpp implements them (`src/models/qwen2.cpp`) and HF
//! `modeling_qwen2.py` defines them:
//! - q/k/v projections carry biases (the output projection does not).
//! - NEOX RoPE (split halves; the converter does not permute Q/K rows).
//! - Otherwise Llama: RMSNorm pre-norm, SwiGLU, GQA, scale `1/sqrt(head_dim)`, output tied to
//!   `token_embd` where `output.weight` is absent. HF's `sliding_window` is off in the
//!   released Qwen2.5 models (`use_sliding_window = false`); llama.cpp ignores it too.

use slm_gguf::GgufFile;
use slm_tensor::ops::RopeStyle;

use crate::arch::Architecture;
use crate::config::HParams;
use crate::error::Result;
use crate::llama::{Decoder, Variant, LLAMA};

/// Qwen2's deviations.
pub const QWEN2: Variant = Variant {
    rope_style: RopeStyle::Neox,
    qkv_bias: true,
    ..LLAMA
};

/// The registry's loader for `qwen2`.
pub fn load(file: &GgufFile, hp: HParams) -> Result<Box<dyn Architecture>> {
    Ok(Box::new(Decoder::load(file, hp, QWEN2)?))
}
