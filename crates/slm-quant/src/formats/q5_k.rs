//! Q5_K: super-block of 256 values = 8 sub-blocks of 32 with 6-bit scales and mins (packed as
//! in Q4_K), 5-bit levels split in a low nibble and a high bit; 5.5 bits per weight.
//!
//! ```text
//! byte   0..2    d          f16 super-block scale of the sub-block scales
//! byte   2..4    dmin       f16 super-block scale of the sub-block mins
//! byte   4..16   scales[12] 8 x (6-bit scale, 6-bit min), packed as Q4_K
//! byte  16..48   qh[32]     bit 2c of qh[l]   = 5th bit of value l      of sub-block 2c
//!                           bit 2c+1 of qh[l] = 5th bit of value l      of sub-block 2c+1
//! byte  48..176  qs[128]    4 chunks of 32: low nibbles sub-block 2c, high nibbles 2c+1
//! value = d * sc * (nibble + 16 * bit) - dmin * m
//! ```
//! Quantizer: `quantize_row_q5_K_ref` or, with an imatrix, `quantize_row_q5_K_impl` (see Q4_K).

use half::f16;
use slm_gguf::GgmlType;

use super::q4_k::quantize_scale_min;
use super::search::{get_scale_min_k4, MinSearch};
use super::{QuantBlock, Quantize, QK_K};

/// ggml's `block_q5_K`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}

impl QuantBlock for BlockQ5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        let mut u1 = 1u8;
        let mut u2 = 2u8;
        for (c, (ql, y)) in self
            .qs
            .chunks_exact(32)
            .zip(out.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc1, m1) = get_scale_min_k4(2 * c, &self.scales);
            let (sc2, m2) = get_scale_min_k4(2 * c + 1, &self.scales);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            for l in 0..32 {
                let h1 = if self.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if self.qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * f32::from((ql[l] & 0xF) + h1) - m1;
                y[l + 32] = d2 * f32::from((ql[l] >> 4) + h2) - m2;
            }
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

const Q5_K_REF_SEARCH: MinSearch = MinSearch {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: false,
};

impl Quantize for BlockQ5_K {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            let s = quantize_scale_min(xb, qw, 31, Q5_K_REF_SEARCH);
            b.d = s.d;
            b.dmin = s.dmin;
            b.scales = s.scales;
            b.qh = [0; 32];
            let (mut m1, mut m2) = (1u8, 2u8);
            for (c, ql) in b.qs.chunks_exact_mut(32).enumerate() {
                for j in 0..32 {
                    let mut l1 = s.l[64 * c + j];
                    if l1 > 15 {
                        l1 -= 16;
                        b.qh[j] |= m1;
                    }
                    let mut l2 = s.l[64 * c + j + 32];
                    if l2 > 15 {
                        l2 -= 16;
                        b.qh[j] |= m2;
                    }
                    ql[j] = l1 | (l2 << 4);
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }
}
