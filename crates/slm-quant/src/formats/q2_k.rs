//! Q2_K: super-block of 256 values = 16 sub-blocks of 16, each with a 4-bit scale and a 4-bit
//! min, scaled by f16 `d` / `dmin`; 2-bit levels, 2.625 bits per weight.
//!
//! ```text
//! byte   0..16  scales[16]  low nibble = scale of sub-block j, high nibble = its min
//! byte  16..80  qs[64]      per half h (128 values): qs[32h + l] bits 2s..2s+2 = value
//!                           32s + l of the half (s in 0..4, l in 0..32)
//! byte  80..82  d           f16
//! byte  82..84  dmin        f16
//! value = d * (scales[j] & 0xF) * level - dmin * (scales[j] >> 4)
//! ```
//! Quantizer: `quantize_row_q2_K_ref` (`make_qkx2_quants`, mean absolute error) or, with an
//! imatrix, `quantize_row_q2_K_impl` (`make_qkx3_quants` + `make_qp_quants`).

use half::f16;
use slm_gguf::GgmlType;

use super::search::{make_qkx_quants, make_qp_quants, nearest_int, MinSearch};
use super::{QuantBlock, Quantize, QK_K};

/// ggml's `block_q2_K`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2_K {
    pub scales: [u8; 16],
    pub qs: [u8; 64],
    pub d: f16,
    pub dmin: f16,
}

impl QuantBlock for BlockQ2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        let mut is = 0;
        let mut y = out.iter_mut();
        for q in self.qs.chunks_exact(32) {
            for shift in [0u32, 2, 4, 6] {
                for half in 0..2 {
                    let sc = self.scales[is];
                    is += 1;
                    let dl = d * f32::from(sc & 0xF);
                    let ml = min * f32::from(sc >> 4);
                    for &qv in &q[16 * half..16 * half + 16] {
                        if let Some(o) = y.next() {
                            *o = dl * f32::from((qv >> shift) & 3) - ml;
                        }
                    }
                }
            }
        }
    }
}

/// Packs 256 two-bit levels: 4 levels 32 apart per byte.
pub(crate) fn pack2(l: &[u8; QK_K], qs: &mut [u8; 64]) {
    for h in 0..2 {
        let j = 128 * h;
        for k in 0..32 {
            qs[32 * h + k] =
                l[j + k] | (l[j + k + 32] << 2) | (l[j + k + 64] << 4) | (l[j + k + 96] << 6);
        }
    }
}

/// `quantize_row_q2_K_ref` / `quantize_row_q2_K_impl` for one super-block.
pub fn quantize_block(x: &[f32], qw: Option<&[f32]>) -> BlockQ2_K {
    let mut l = [0u8; QK_K];
    let mut mins = [0.0f32; 16];
    let mut scales = [0.0f32; 16];
    let mut weights = [0.0f32; 16];
    let mut b = BlockQ2_K {
        scales: [0; 16],
        qs: [0; 64],
        d: f16::ZERO,
        dmin: f16::ZERO,
    };
    if let Some(qw) = qw {
        let mut sw = [0.0f32; 16];
        let mut sumx2 = 0.0f32;
        for &v in &x[..QK_K] {
            sumx2 += v * v;
        }
        let sigma2 = sumx2 / QK_K as f32;
        let p = MinSearch {
            rmin: -0.9,
            rdelta: 0.05,
            nstep: 36,
            use_mad: false,
        };
        for j in 0..16 {
            let xb = &x[16 * j..16 * j + 16];
            for (w, (&v, &q)) in weights.iter_mut().zip(xb.iter().zip(&qw[16 * j..])) {
                *w = q * (sigma2 + v * v).sqrt();
            }
            for &w in &weights {
                sw[j] += w;
            }
            let lj = &mut l[16 * j..16 * j + 16];
            (scales[j], mins[j]) = make_qkx_quants(3, xb, Some(&weights), lj, p, true);
        }
        let mut ls = [0u8; 16];
        let mut lm = [0u8; 16];
        let dm = make_qp_quants(15, &scales, &mut ls, &sw);
        let mm = make_qp_quants(15, &mins, &mut lm, &sw);
        b.d = f16::from_f32(dm);
        b.dmin = f16::from_f32(mm);
        for j in 0..16 {
            b.scales[j] = ls[j] | (lm[j] << 4);
        }
    } else {
        let q4scale = 15.0f32;
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        let p = MinSearch {
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: true,
        };
        for j in 0..16 {
            let xb = &x[16 * j..16 * j + 16];
            for (w, &v) in weights.iter_mut().zip(xb) {
                *w = v.abs();
            }
            let lj = &mut l[16 * j..16 * j + 16];
            (scales[j], mins[j]) = make_qkx_quants(3, xb, Some(&weights), lj, p, false);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        if max_scale > 0.0 {
            let iscale = q4scale / max_scale;
            for j in 0..16 {
                b.scales[j] = nearest_int(iscale * scales[j]) as u8;
            }
            b.d = f16::from_f32(max_scale / q4scale);
        }
        if max_min > 0.0 {
            let iscale = q4scale / max_min;
            for j in 0..16 {
                let lv = nearest_int(iscale * mins[j]);
                b.scales[j] |= (lv << 4) as u8;
            }
            b.dmin = f16::from_f32(max_min / q4scale);
        }
    }
    let (df, dminf) = (b.d.to_f32(), b.dmin.to_f32());
    for j in 0..16 {
        let d = df * f32::from(b.scales[j] & 0xF);
        if d == 0.0 {
            continue;
        }
        let dm = dminf * f32::from(b.scales[j] >> 4);
        for ii in 0..16 {
            let v = nearest_int((x[16 * j + ii] + dm) / d);
            l[16 * j + ii] = v.clamp(0, 3) as u8;
        }
    }
    pack2(&l, &mut b.qs);
    b
}

impl Quantize for BlockQ2_K {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_block(xb, qw);
        }
    }
}
