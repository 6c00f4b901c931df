//! Q5_0: 32 values, one f16 scale, 5-bit signed levels (`q - 16`), 5.5 bits per weight.
//!
//! ```text
//! byte  0..2   d        f16 scale
//! byte  2..6   qh       u32 (little endian): bit j = 5th bit of the level of value j
//! byte  6..22  qs[16]   qs[j] low nibble = low 4 bits of value j, high nibble = value j + 16
//! value = ((nibble | qh_bit << 4) - 16) * d
//! ```
//! Quantizer: `quantize_row_q5_0_ref` (d = max / -16) or, with an imatrix,
//! `quantize_row_q5_0_impl` (weighted `make_qx_quants`).

use half::f16;
use slm_gguf::GgmlType;

use super::q4_0::{block_weights, row_sigma2};
use super::search::make_qx_quants;
use super::{QuantBlock, Quantize};

/// ggml's `block_q5_0`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    pub d: f16,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

impl QuantBlock for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for (j, &q) in self.qs.iter().enumerate() {
            let xh0 = ((qh >> j) << 4) & 0x10;
            let xh1 = (qh >> (j + 12)) & 0x10;
            let x0 = (u32::from(q & 0x0F) | xh0) as i32 - 16;
            let x1 = (u32::from(q >> 4) | xh1) as i32 - 16;
            out[j] = x0 as f32 * d;
            out[j + 16] = x1 as f32 * d;
        }
    }
}

/// Packs 32 five-bit levels into `qs` and the `qh` bit field.
pub(crate) fn pack5(l: &[u8; 32]) -> ([u8; 16], [u8; 4]) {
    let mut qs = [0u8; 16];
    let mut qh = 0u32;
    for j in 0..16 {
        let (xi0, xi1) = (l[j], l[j + 16]);
        qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= ((u32::from(xi0) & 0x10) >> 4) << j;
        qh |= ((u32::from(xi1) & 0x10) >> 4) << (j + 16);
    }
    (qs, qh.to_le_bytes())
}

/// `quantize_row_q5_0_ref` for one block.
pub fn quantize_block_ref(x: &[f32]) -> BlockQ5_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in &x[..32] {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut l = [0u8; 32];
    for (j, lj) in l.iter_mut().enumerate() {
        *lj = ((x[j] * id + 16.5) as i8).min(31) as u8;
    }
    let (qs, qh) = pack5(&l);
    BlockQ5_0 {
        d: f16::from_f32(d),
        qh,
        qs,
    }
}

impl Quantize for BlockQ5_0 {
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
            let d = make_qx_quants(16, xb, &mut l, Some(&weight));
            let lu: [u8; 32] = l.map(|v| v as u8);
            let (qs, qh) = pack5(&lu);
            *b = BlockQ5_0 {
                d: f16::from_f32(d),
                qh,
                qs,
            };
        }
    }
}
