//! Q4_0: 32 values, one f16 scale, 4-bit signed levels (`q - 8`), 4.5 bits per weight.
//!
//! ```text
//! byte  0..2   d        f16 scale
//! byte  2..18  qs[16]   qs[j] low nibble  = level of value j      (j in 0..16)
//!                       qs[j] high nibble = level of value j + 16
//! value = (level - 8) * d
//! ```
//! Quantizer: `quantize_row_q4_0_ref` (d = max / -8 of the largest magnitude) or, with an
//! imatrix, `quantize_row_q4_0_impl` (weighted `make_qx_quants` search, sigma over the row).

use half::f16;
use slm_gguf::GgmlType;

use super::search::make_qx_quants;
use super::{QuantBlock, Quantize};

/// ggml's `block_q4_0`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; 16],
}

impl QuantBlock for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = (i32::from(q & 0x0F) - 8) as f32 * d;
            out[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }
}

/// `quantize_row_q4_0_ref` for one block.
pub fn quantize_block_ref(x: &[f32]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in &x[..32] {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = x[j] * id;
        let x1 = x[j + 16] * id;
        let xi0 = ((x0 + 8.5) as i8).min(15) as u8;
        let xi1 = ((x1 + 8.5) as i8).min(15) as u8;
        *q = xi0 | (xi1 << 4);
    }
    BlockQ4_0 {
        d: f16::from_f32(d),
        qs,
    }
}

/// Sum of squares over a row divided by its length: ggml's `sigma2` of the weighted legacy
/// quantizers.
pub(crate) fn row_sigma2(x: &[f32]) -> f32 {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    sum_x2 / x.len() as f32
}

/// `weight[j] = qw[j] * sqrt(sigma2 + x[j]^2)` for a block.
pub(crate) fn block_weights(x: &[f32], qw: &[f32], sigma2: f32, out: &mut [f32]) {
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(qw) {
        *o = w * (sigma2 + v * v).sqrt();
    }
}

impl Quantize for BlockQ4_0 {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        let Some(qw) = imatrix else {
            for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
                *b = quantize_block_ref(xb);
            }
            return;
        };
        let sigma2 = row_sigma2(x);
        let mut weight = [0.0f32; 32];
        let mut l = [0i8; 32];
        for ((b, xb), qwb) in out
            .iter_mut()
            .zip(x.chunks_exact(32))
            .zip(qw.chunks_exact(32))
        {
            block_weights(xb, qwb, sigma2, &mut weight);
            let d = make_qx_quants(8, xb, &mut l, Some(&weight));
            b.d = f16::from_f32(d);
            for j in 0..16 {
                b.qs[j] = (l[j] as u8) | ((l[j + 16] as u8) << 4);
            }
        }
    }
}
