//! Q8_0: 32 values, one f16 scale, 8-bit signed levels, 8.5 bits per weight. Also the
//! activation format that Q4_0/Q5_0/Q8_0/IQ4_NL weights are dotted with.
//!
//! ```text
//! byte  0..2   d        f16 scale = max|x| / 127
//! byte  2..34  qs[32]   i8 levels, value j = qs[j] * d
//! ```
//! Quantizer: `quantize_row_q8_0_ref` (`roundf`, half away from zero); llama.cpp ignores an
//! imatrix for Q8_0.

use half::f16;
use slm_gguf::GgmlType;

use super::{QuantBlock, Quantize};

/// ggml's `block_q8_0`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; 32],
}

impl QuantBlock for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = f32::from(q) * d;
        }
    }
}

/// `quantize_row_q8_0_ref` for one block.
pub fn quantize_block_ref(x: &[f32]) -> BlockQ8_0 {
    let mut amax = 0.0f32;
    for &v in &x[..32] {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; 32];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    BlockQ8_0 {
        d: f16::from_f32(d),
        qs,
    }
}

impl Quantize for BlockQ8_0 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
            *b = quantize_block_ref(xb);
        }
    }
}
