//! Q6_K: super-block of 256 values = 16 sub-blocks of 16 with signed 8-bit scales and an f16
//! super-block scale; 6-bit signed levels (`q - 32`), 6.5625 bits per weight.
//!
//! ```text
//! byte    0..128  ql[128]    low 4 bits; per half h (128 values): ql[64h + l] low nibble =
//!                            value l, high nibble = value l+64; ql[64h + 32 + l] low = l+32,
//!                            high = l+96  (l in 0..32)
//! byte  128..192  qh[64]     high 2 bits; qh[32h + l] bits 0-1: value l, 2-3: l+32,
//!                            4-5: l+64, 6-7: l+96
//! byte  192..208  scales[16] i8 sub-block scales
//! byte  208..210  d          f16 super-block scale
//! value = d * scales[sub] * (q - 32)
//! ```
//! Quantizer: `quantize_row_q6_K_ref` (`make_qx_quants` with x*x weights) or, with an imatrix,
//! `quantize_row_q6_K_impl` (the imatrix itself as weights).

use half::f16;
use slm_gguf::GgmlType;

use super::search::{make_qx_quants, nearest_int, GROUP_MAX_EPS};
use super::{QuantBlock, Quantize, QK_K};

/// ggml's `block_q6_K`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6_K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: f16,
}

impl QuantBlock for BlockQ6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (h, y) in out.chunks_exact_mut(128).enumerate() {
            let ql = &self.ql[64 * h..64 * h + 64];
            let qh = &self.qh[32 * h..32 * h + 32];
            let sc = &self.scales[8 * h..8 * h + 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                y[l] = d * f32::from(sc[is]) * f32::from(q1);
                y[l + 32] = d * f32::from(sc[is + 2]) * f32::from(q2);
                y[l + 64] = d * f32::from(sc[is + 4]) * f32::from(q3);
                y[l + 96] = d * f32::from(sc[is + 6]) * f32::from(q4);
            }
        }
    }
}

/// `quantize_row_q6_K_ref` / `_impl` for one super-block (`qw`: its imatrix slice).
pub fn quantize_block(x: &[f32], qw: Option<&[f32]>) -> BlockQ6_K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for ib in 0..16 {
        let w = qw.map(|w| &w[16 * ib..16 * ib + 16]);
        let scale = make_qx_quants(
            32,
            &x[16 * ib..16 * ib + 16],
            &mut l[16 * ib..16 * ib + 16],
            w,
        );
        scales[ib] = scale;
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    let mut b = BlockQ6_K {
        ql: [0; 128],
        qh: [0; 64],
        scales: [0; 16],
        d: f16::ZERO,
    };
    if max_abs_scale < GROUP_MAX_EPS {
        return b;
    }
    let iscale = -128.0 / max_scale;
    b.d = f16::from_f32(1.0 / iscale);
    for ib in 0..16 {
        b.scales[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
    }
    let df = b.d.to_f32();
    for j in 0..16 {
        let d = df * f32::from(b.scales[j]);
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let v = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
            l[16 * j + ii] = (v + 32) as i8;
        }
    }
    for h in 0..2 {
        let lh = &l[128 * h..128 * h + 128];
        for k in 0..32 {
            let q = |o: usize| lh[k + o] as u8;
            b.ql[64 * h + k] = (q(0) & 0xF) | ((q(64) & 0xF) << 4);
            b.ql[64 * h + k + 32] = (q(32) & 0xF) | ((q(96) & 0xF) << 4);
            b.qh[32 * h + k] =
                (q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6);
        }
    }
    b
}

impl Quantize for BlockQ6_K {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_block(xb, qw);
        }
    }
}
