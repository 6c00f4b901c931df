//! Q8_K: 256 values with an f32 scale, 8-bit levels and 16 partial sums. The activation format
//! that K-quant and IQ weights are dotted with; never stored in model files.
//!
//! ```text
//! byte    0..4    d          f32 scale = max / -127 (signed: the largest magnitude maps to -127)
//! byte    4..260  qs[256]    i8 levels, value j = qs[j] * d
//! byte  260..292  bsums[16]  i16 sum of qs[16k..16k+16]
//! ```
//! Quantizer: `quantize_row_q8_K_ref` (round to nearest even via `nearest_int`).

use slm_gguf::GgmlType;

use super::search::nearest_int;
use super::{QuantBlock, Quantize, QK_K};

/// ggml's `block_q8_K`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; 16],
}

impl QuantBlock for BlockQ8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = self.d * f32::from(q);
        }
    }
}

/// `quantize_row_q8_K_ref` for one block.
pub fn quantize_block(x: &[f32]) -> BlockQ8_K {
    let mut b = BlockQ8_K {
        d: 0.0,
        qs: [0; QK_K],
        bsums: [0; 16],
    };
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in &x[..QK_K] {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax == 0.0 {
        return b;
    }
    let iscale = -127.0 / max;
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
        *s = q.iter().map(|&v| i16::from(v)).sum();
    }
    b.d = 1.0 / iscale;
    b
}

impl Quantize for BlockQ8_K {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
            *b = quantize_block(xb);
        }
    }
}
