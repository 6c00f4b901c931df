//! Q8_1: 32 values, f16 scale and f16 `s = d * sum(qs)`, 8-bit signed levels, 9 bits per
//! weight. The activation format that Q4_1/Q5_1 weights are dotted with (`s` folds their min).
//!
//! ```text
//! byte  0..2   d        f16 scale = max|x| / 127
//! byte  2..4   s        f16 d * sum of the 32 levels
//! byte  4..36  qs[32]   i8 levels, value j = qs[j] * d
//! ```
//! Quantizer: `quantize_row_q8_1_ref`.

use half::f16;
use slm_gguf::GgmlType;

use super::{QuantBlock, Quantize};

/// ggml's `block_q8_1`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; 32],
}

impl QuantBlock for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = f32::from(q) * d;
        }
    }
}

/// `quantize_row_q8_1_ref` for one block.
pub fn quantize_block_ref(x: &[f32]) -> BlockQ8_1 {
    let mut amax = 0.0f32;
    for &v in &x[..32] {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; 32];
    let mut sum = 0i32;
    for j in 0..16 {
        qs[j] = (x[j] * id).round() as i8;
        qs[j + 16] = (x[j + 16] * id).round() as i8;
        sum += i32::from(qs[j]) + i32::from(qs[j + 16]);
    }
    BlockQ8_1 {
        d: f16::from_f32(d),
        s: f16::from_f32(sum as f32 * d),
        qs,
    }
}

impl Quantize for BlockQ8_1 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
            *b = quantize_block_ref(xb);
        }
    }
}
