//! Q3_K: super-block of 256 values = 16 sub-blocks of 16 with signed 6-bit scales and an f16
//! super-block scale; 3-bit signed levels (2 low bits + 1 high bit), 3.4375 bits per weight.
//!
//! ```text
//! byte    0..32   hmask[32]  bit s of hmask[l] = high bit of value 32s + l (s in 0..8)
//! byte   32..96   qs[64]     low 2 bits, packed as Q2_K (4 levels 32 apart per byte)
//! byte   96..108  scales[12] 16 x 6-bit scale (stored + 32): j < 8: low nibble of
//!                            scales[j]; j >= 8: high nibble of scales[j-8]; the top 2 bits
//!                            at bits 2*(j/4) of scales[8 + j%4]
//! byte  108..110  d          f16
//! value = d * (scale - 32) * (low2 - (high bit ? 0 : 4))
//! ```
//! Quantizer: `quantize_row_q3_K_ref` (`make_q3_quants` with rmse refinement) or, with an
//! imatrix, `quantize_row_q3_K_impl` (weighted `make_qx_quants` on values and on scales).

use half::f16;
use slm_gguf::GgmlType;

use super::q2_k::pack2;
use super::search::{make_q3_quants, make_qx_quants, nearest_int};
use super::{QuantBlock, Quantize, QK_K};

/// ggml's `block_q3_K`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ3_K {
    pub hmask: [u8; 32],
    pub qs: [u8; 64],
    pub scales: [u8; 12],
    pub d: f16,
}

/// The 16 signed 6-bit scales (still offset by 32) of a Q3_K `scales[12]` array.
pub fn unpack_scales(s: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = (low | (high << 4)) as i8;
    }
    out
}

impl QuantBlock for BlockQ3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d_all = self.d.to_f32();
        let scales = unpack_scales(&self.scales);
        let mut is = 0;
        let mut m = 1u8;
        let mut y = out.iter_mut();
        for q in self.qs.chunks_exact(32) {
            for shift in [0u32, 2, 4, 6] {
                for half in 0..2 {
                    let dl = d_all * f32::from(scales[is] - 32);
                    is += 1;
                    for l in 16 * half..16 * half + 16 {
                        let low = i32::from((q[l] >> shift) & 3);
                        let sub = if self.hmask[l] & m != 0 { 0 } else { 4 };
                        if let Some(o) = y.next() {
                            *o = dl * (low - sub) as f32;
                        }
                    }
                }
                m <<= 1;
            }
        }
    }
}

/// Packs 16 six-bit scale codes (0..64) into `scales[12]`.
fn pack_scales(ls: &[i32; 16]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for (j, &l) in ls.iter().enumerate() {
        if j < 8 {
            s[j] = (l & 0xF) as u8;
        } else {
            s[j - 8] |= ((l & 0xF) << 4) as u8;
        }
        let hi = l >> 4;
        s[j % 4 + 8] |= (hi << (2 * (j / 4))) as u8;
    }
    s
}

/// `quantize_row_q3_K_ref` / `quantize_row_q3_K_impl` for one super-block.
pub fn quantize_block(x: &[f32], qw: Option<&[f32]>) -> BlockQ3_K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut b = BlockQ3_K {
        hmask: [0; 32],
        qs: [0; 64],
        scales: [0; 12],
        d: f16::ZERO,
    };
    if let Some(qw) = qw {
        let mut sumx2 = 0.0f32;
        for &v in &x[..QK_K] {
            sumx2 += v * v;
        }
        let sigma2 = 2.0 * sumx2 / QK_K as f32;
        let mut weight = [0.0f32; 16];
        let mut sw = [0.0f32; 16];
        for j in 0..16 {
            let xb = &x[16 * j..16 * j + 16];
            for (w, (&v, &q)) in weight.iter_mut().zip(xb.iter().zip(&qw[16 * j..])) {
                *w = q * (sigma2 + v * v).sqrt();
            }
            let mut sumw = 0.0f32;
            for &w in &weight {
                sumw += w;
            }
            sw[j] = sumw;
            scales[j] = make_qx_quants(4, xb, &mut l[16 * j..16 * j + 16], Some(&weight));
        }
        let mut ls = [0i8; 16];
        let d_block = make_qx_quants(32, &scales, &mut ls, Some(&sw));
        b.scales = pack_scales(&ls.map(i32::from));
        b.d = f16::from_f32(d_block);
    } else {
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for j in 0..16 {
            scales[j] = make_q3_quants(
                4,
                &x[16 * j..16 * j + 16],
                &mut l[16 * j..16 * j + 16],
                true,
            );
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            let mut ls = [0i32; 16];
            for j in 0..16 {
                // C stores nearest_int into an int8_t before clamping.
                let v = i32::from(nearest_int(iscale * scales[j]) as i8);
                ls[j] = v.clamp(-32, 31) + 32;
            }
            b.scales = pack_scales(&ls);
            b.d = f16::from_f32(1.0 / iscale);
        }
    }
    let sc = unpack_scales(&b.scales);
    let df = b.d.to_f32();
    for j in 0..16 {
        let d = df * f32::from(sc[j] - 32);
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let v = nearest_int(x[16 * j + ii] / d).clamp(-4, 3);
            l[16 * j + ii] = (v + 4) as i8;
        }
    }
    let mut lu = [0u8; QK_K];
    let (mut m, mut hm) = (0usize, 1u8);
    for j in 0..QK_K {
        let mut v = l[j] as u8;
        if v > 3 {
            b.hmask[m] |= hm;
            v -= 4;
        }
        lu[j] = v;
        m += 1;
        if m == QK_K / 8 {
            m = 0;
            hm <<= 1;
        }
    }
    pack2(&lu, &mut b.qs);
    b
}

impl Quantize for BlockQ3_K {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_block(xb, qw);
        }
    }
}
