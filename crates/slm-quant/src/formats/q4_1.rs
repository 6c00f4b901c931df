//! Q4_1: 32 values, f16 scale and f16 minimum, 4-bit unsigned levels, 5 bits per weight.
//!
//! ```text
//! byte  0..2   d        f16 scale
//! byte  2..4   m        f16 minimum
//! byte  4..20  qs[16]   qs[j] low nibble = level of value j, high nibble = value j + 16
//! value = level * d + m
//! ```
//! Quantizer: `quantize_row_q4_1_ref` (min/max range / 15) or, with an imatrix,
//! `quantize_row_q4_1_impl` (weighted `make_qkx3_quants` search).

use half::f16;
use slm_gguf::GgmlType;

use super::q4_0::{block_weights, row_sigma2};
use super::search::{make_qkx_quants, MinSearch};
use super::{QuantBlock, Quantize};

/// ggml's `block_q4_1`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; 16],
}

impl QuantBlock for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = f32::from(q & 0x0F) * d + m;
            out[j + 16] = f32::from(q >> 4) * d + m;
        }
    }
}

/// The weighted search parameters llama.cpp uses for Q4_1/Q5_1 and the imatrix K-quants.
pub(crate) const QKX3_SEARCH: MinSearch = MinSearch {
    rmin: -0.9,
    rdelta: 0.05,
    nstep: 36,
    use_mad: false,
};

/// `quantize_row_q4_1_ref` for one block.
pub fn quantize_block_ref(x: &[f32]) -> BlockQ4_1 {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in &x[..32] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = (x[j] - min) * id;
        let x1 = (x[j + 16] - min) * id;
        let xi0 = ((x0 + 0.5) as i8).min(15) as u8;
        let xi1 = ((x1 + 0.5) as i8).min(15) as u8;
        *q = xi0 | (xi1 << 4);
    }
    BlockQ4_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qs,
    }
}

impl Quantize for BlockQ4_1 {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        let Some(qw) = imatrix else {
            for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
                *b = quantize_block_ref(xb);
            }
            return;
        };
        let sigma2 = row_sigma2(x);
        let mut weight = [0.0f32; 32];
        let mut l = [0u8; 32];
        for ((b, xb), qwb) in out
            .iter_mut()
            .zip(x.chunks_exact(32))
            .zip(qw.chunks_exact(32))
        {
            block_weights(xb, qwb, sigma2, &mut weight);
            let (d, min) = make_qkx_quants(15, xb, Some(&weight), &mut l, QKX3_SEARCH, true);
            b.d = f16::from_f32(d);
            b.m = f16::from_f32(-min);
            for j in 0..16 {
                b.qs[j] = l[j] | (l[j + 16] << 4);
            }
        }
    }
}
