//! Plain float element types: F32, F16 (IEEE binary16) and BF16 (bfloat16), as one-value
//! "blocks" so that they go through the same [`QuantBlock`] dispatch as the quantized types.
//!
//! Conversions match ggml: F16 rounds to nearest even (`half`, like F16C / `ggml_compute_fp32_to_fp16`),
//! BF16 rounds to nearest even and quiets NaNs (`ggml_compute_fp32_to_bf16`).

use half::{bf16, f16};
use slm_gguf::GgmlType;

use super::{QuantBlock, Quantize};

impl QuantBlock for f32 {
    const TYPE: GgmlType = GgmlType::F32;
    const BLOCK_SIZE: usize = 1;
    fn dequantize(&self, out: &mut [f32]) {
        out[0] = *self;
    }
}

impl Quantize for f32 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        out.copy_from_slice(x);
    }
}

impl QuantBlock for f16 {
    const TYPE: GgmlType = GgmlType::F16;
    const BLOCK_SIZE: usize = 1;
    fn dequantize(&self, out: &mut [f32]) {
        out[0] = self.to_f32();
    }
}

impl Quantize for f16 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f16::from_f32(v);
        }
    }
}

/// ggml's `ggml_compute_fp32_to_bf16`: round to nearest even, NaN forced quiet.
pub fn fp32_to_bf16(s: f32) -> bf16 {
    let u = s.to_bits();
    let bits = if (u & 0x7fff_ffff) > 0x7f80_0000 {
        (u >> 16) | 64
    } else {
        u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16
    };
    // The shifted value fits 16 bits.
    bf16::from_bits((bits & 0xffff) as u16)
}

impl QuantBlock for bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const BLOCK_SIZE: usize = 1;
    fn dequantize(&self, out: &mut [f32]) {
        out[0] = f32::from_bits(u32::from(self.to_bits()) << 16);
    }
}

impl Quantize for bf16 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = fp32_to_bf16(v);
        }
    }
}
