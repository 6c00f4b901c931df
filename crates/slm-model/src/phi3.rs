//! Phi-3 / Phi-3.5 / Phi-4-mini (`general.architecture = phi3`), a Llama variant.
//!
//! Deviations from Llama, as llama.cpp implements them (`src/models/phi3.cpp`) and HF
//! `modeling_phi3.py` defines them:
//! - Fused projections: `attn_qkv` (q rows, then k, then v) and `ffn_up` of 2 * n_ff rows
//!   (gate rows first, then up: HF `gate, up = gate_up_proj(x).chunk(2)`); split here by row
//!   range without copying. Separate `attn_q/k/v` are accepted too.
//! - NEOX RoPE; Phi-4-mini rotates only part of each head (`rope.dimension_count` = 96 of 128,
//!   `partial_rotary_factor = 0.75`), the rest passes through.
//! - LongRoPE (128k models): per-frequency divisors `rope_factors_short`/`rope_factors_long`,
//!   the long ones used when the context exceeds `rope.scaling.original_context_length`
//!   (llama.cpp decides by the cache size, HF by the current length: equal below the original
//!   context), and cos/sin multiplied by `rope.scaling.attn_factor`.
//! - `attention.sliding_window` is ignored, as llama.cpp does (its Phi SWA is disabled).

use slm_gguf::GgufFile;
use slm_tensor::ops::RopeStyle;

use crate::arch::Architecture;
use crate::config::HParams;
use crate::error::Result;
use crate::llama::{Decoder, Variant, LLAMA};

/// Phi-3's deviations.
pub const PHI3: Variant = Variant {
    rope_style: RopeStyle::Neox,
    fused_gate_up: true,
    long_rope: true,
    ..LLAMA
};

/// The registry's loader for `phi3`.
pub fn load(file: &GgufFile, hp: HParams) -> Result<Box<dyn Architecture>> {
    let mut hp = hp;
    hp.sliding_window = None;
    Ok(Box::new(Decoder::load(file, hp, PHI3)?))
}
