//! Qwen3 dense models (`general.architecture = qwen3`: 0.6B ... 32B), a Llama variant.
//!
//! Deviations from Llama, as llama.cpp implements them (`src/models/qwen3.cpp`) and HF
//! `modeling_qwen3.py` defines them:
//! - QK-norm: RMSNorm over each head of Q and of K (`attn_q_norm`/`attn_k_norm`, head_dim
//!   weights) after the projections, before RoPE.
//! - No q/k/v biases (unlike Qwen2).
//! - NEOX RoPE; `head_dim` (`attention.key_length`, 128) need not be `n_embd / n_head`.

use slm_gguf::GgufFile;
use slm_tensor::ops::RopeStyle;

use crate::arch::Architecture;
use crate::config::HParams;
use crate::error::Result;
use crate::llama::{Decoder, Variant, LLAMA};

/// Qwen3's deviations.
pub const QWEN3: Variant = Variant {
    rope_style: RopeStyle::Neox,
    qk_norm: true,
    ..LLAMA
};

/// The registry's loader for `qwen3`.
pub fn load(file: &GgufFile, hp: HParams) -> Result<Box<dyn Architecture>> {
    Ok(Box::new(Decoder::load(file, hp, QWEN3)?))
}
