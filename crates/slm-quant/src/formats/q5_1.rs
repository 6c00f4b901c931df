//! Q5_1: 32 values, f16 scale and f16 minimum, 5-bit unsigned levels, 6 bits per weight.
//!
//! ```text
//! byte  0..2   d        f16 scale
//! byte  2..4   m        f16 minimum
//! byte  4..8   qh       u32 (little endian): bit j = 5th bit of the level of value j
//! byte  8..24  qs[16]   qs[j] low nibble = low 4 bits of value j, high nibble = value j + 16
//! value = (nibble | qh_bit << 4) * d + m
//! ```
//! Quantizer: `quantize_row_q5_1_ref` (min/max range / 31) or, with an imatrix,
//! `quantize_row_q5_1_impl` (weighted `make_qkx3_quants`).

use half::f16;
use slm_gguf::GgmlType;

use super::q4_0::{block_weights, row_sigma2};
use super::q4_1::QKX3_SEARCH;
use super::q5_0::pack5;
use super::search::make_qkx_quants;
use super::{QuantBlock, Quantize};

/// ggml's `block_q5_1`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_1 {
    pub d: f16,
    pub m: f16,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

impl QuantBlock for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for (j, &q) in self.qs.iter().enumerate() {
            let xh0 = ((qh >> j) << 4) & 0x10;
            let xh1 = (qh >> (j + 12)) & 0x10;
            let x0 = u32::from(q & 0x0F) | xh0;
            let x1 = u32::from(q >> 4) | xh1;
            out[j] = x0 as f32 * d + m;
            out[j + 16] = x1 as f32 * d + m;
        }
    }
}

/// `quantize_row_q5_1_ref` for one block.
pub fn quantize_block_ref(x: &[f32]) -> BlockQ5_1 {
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
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut l = [0u8; 32];
    for (j, lj) in l.iter_mut().enumerate() {
        *lj = ((x[j] - min) * id + 0.5) as u8;
    }
    let (qs, qh) = pack5(&l);
    BlockQ5_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qh,
        qs,
    }
}

impl Quantize for BlockQ5_1 {
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
            let (d, min) = make_qkx_quants(31, xb, Some(&weight), &mut l, QKX3_SEARCH, true);
            let (qs, qh) = pack5(&l);
            *b = BlockQ5_1 {
                d: f16::from_f32(d),
                m: f16::from_f32(-min),
                qh,
                qs,
            };
        }
    }
}
