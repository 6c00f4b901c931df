//! Q4_K: super-block of 256 values = 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit
//! min, scaled by the f16 super-block `d` and `dmin`; 4-bit levels, 4.5 bits per weight.
//!
//! ```text
//! byte   0..2    d          f16 super-block scale of the sub-block scales
//! byte   2..4    dmin       f16 super-block scale of the sub-block mins
//! byte   4..16   scales[12] 8 x (6-bit scale sc, 6-bit min m), packed (get_scale_min_k4):
//!                           j < 4:  sc = scales[j] & 63,      m = scales[j+4] & 63
//!                           j >= 4: sc = scales[j+4] & 0xF | (scales[j-4] >> 6) << 4
//!                                   m  = scales[j+4] >> 4  | (scales[j]   >> 6) << 4
//! byte  16..144  qs[128]    4 chunks of 32 bytes; chunk c holds sub-block 2c in the low
//!                           nibbles and sub-block 2c+1 in the high nibbles
//! value = d * sc * level - dmin * m
//! ```
//! Quantizer: `quantize_row_q4_K_ref` (`make_qkx2_quants`, scales rounded to 63 steps of the
//! largest) or, with an imatrix, `quantize_row_q4_K_impl` (`make_qkx3_quants` weighted by the
//! imatrix, scales by `make_qp_quants`).

use half::f16;
use slm_gguf::GgmlType;

use super::search::{get_scale_min_k4, make_qkx_quants, make_qp_quants, nearest_int, MinSearch};
use super::{QuantBlock, Quantize, QK_K};
use crate::formats::q4_1::QKX3_SEARCH;

/// ggml's `block_q4_K`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

impl QuantBlock for BlockQ4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        for (c, (q, y)) in self
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
                y[l] = d1 * f32::from(q[l] & 0xF) - m1;
                y[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }
}

/// The scale/min layer shared by Q4_K and Q5_K: 8 sub-blocks of 32 with levels `0..=nmax`.
pub(crate) struct ScaleMinBlock {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; 12],
    /// Final level of each of the 256 values.
    pub l: [u8; QK_K],
}

/// Packs 8 (scale, min) 6-bit pairs like ggml.
fn pack_scales(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (ls[j], lm[j]);
        if j < 4 {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            s[j - 4] |= (ls >> 4) << 6;
            s[j] |= (lm >> 4) << 6;
        }
    }
    s
}

/// `quantize_row_q{4,5}_K_ref` (`qw == None`, search `p_ref`) or `quantize_row_q{4,5}_K_impl`
/// (`qw` = this super-block's imatrix slice) up to the final levels.
pub(crate) fn quantize_scale_min(
    x: &[f32],
    qw: Option<&[f32]>,
    nmax: i32,
    p_ref: MinSearch,
) -> ScaleMinBlock {
    let mut l = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let mut weights = [0.0f32; 32];
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    let (d, dmin);
    if let Some(qw) = qw {
        let mut sum_x2 = 0.0f32;
        for &v in &x[..QK_K] {
            sum_x2 += v * v;
        }
        let sigma2 = 2.0 * sum_x2 / QK_K as f32;
        let mut sw = [0.0f32; 8];
        for j in 0..8 {
            let xb = &x[32 * j..32 * j + 32];
            for (w, (&v, &q)) in weights.iter_mut().zip(xb.iter().zip(&qw[32 * j..])) {
                *w = q * (sigma2 + v * v).sqrt();
            }
            let mut sumw = 0.0f32;
            for &w in &weights {
                sumw += w;
            }
            sw[j] = sumw;
            let lj = &mut l[32 * j..32 * j + 32];
            (scales[j], mins[j]) = make_qkx_quants(nmax, xb, Some(&weights), lj, QKX3_SEARCH, true);
        }
        let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
        let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
        for j in 0..8 {
            ls[j] = ls[j].min(63);
            lm[j] = lm[j].min(63);
        }
        d = f16::from_f32(d_block);
        dmin = f16::from_f32(m_block);
    } else {
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..8 {
            let xb = &x[32 * j..32 * j + 32];
            let mut sum_x2 = 0.0f32;
            for &v in xb {
                sum_x2 += v * v;
            }
            let av_x = (sum_x2 / 32.0).sqrt();
            for (w, &v) in weights.iter_mut().zip(xb) {
                *w = av_x + v.abs();
            }
            let lj = &mut l[32 * j..32 * j + 32];
            (scales[j], mins[j]) = make_qkx_quants(nmax, xb, Some(&weights), lj, p_ref, false);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        let inv_scale = if max_scale > 0.0 {
            63.0 / max_scale
        } else {
            0.0
        };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        for j in 0..8 {
            ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
        }
        d = f16::from_f32(max_scale / 63.0);
        dmin = f16::from_f32(max_min / 63.0);
    }
    let packed = pack_scales(&ls, &lm);
    let (df, dminf) = (d.to_f32(), dmin.to_f32());
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, &packed);
        let dj = df * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = dminf * f32::from(m);
        for ii in 0..32 {
            let v = nearest_int((x[32 * j + ii] + dm) / dj);
            l[32 * j + ii] = v.clamp(0, nmax) as u8;
        }
    }
    ScaleMinBlock {
        d,
        dmin,
        scales: packed,
        l,
    }
}

const Q4_K_REF_SEARCH: MinSearch = MinSearch {
    rmin: -1.0,
    rdelta: 0.1,
    nstep: 20,
    use_mad: false,
};

impl Quantize for BlockQ4_K {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            let s = quantize_scale_min(xb, qw, 15, Q4_K_REF_SEARCH);
            b.d = s.d;
            b.dmin = s.dmin;
            b.scales = s.scales;
            for (c, q) in b.qs.chunks_exact_mut(32).enumerate() {
                for (k, qv) in q.iter_mut().enumerate() {
                    *qv = s.l[64 * c + k] | (s.l[64 * c + k + 32] << 4);
                }
            }
        }
    }
}
