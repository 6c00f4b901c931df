//! IQ4_NL and IQ4_XS: 4-bit indices into the fixed non-linear grid [`KVALUES_IQ4NL`].
//!
//! ```text
//! IQ4_NL (18 bytes, 32 values, 4.5 bpw):
//! byte  0..2   d         f16 scale
//! byte  2..18  qs[16]    qs[j] low nibble = index of value j, high nibble = value j + 16
//! value = d * KVALUES_IQ4NL[index]
//!
//! IQ4_XS (136 bytes, 256 values = 8 sub-blocks of 32, 4.25 bpw):
//! byte   0..2    d         f16 super-block scale
//! byte   2..4    scales_h  u16: bits 2ib..2ib+2 = high 2 bits of sub-block ib's scale
//! byte   4..8    scales_l  low nibble of scales_l[ib/2] (ib even) / high nibble (ib odd)
//! byte   8..136  qs[128]   16 bytes per sub-block, nibbles as IQ4_NL
//! value = d * (scale - 32) * KVALUES_IQ4NL[index]
//! ```
//! Quantizer: llama.cpp's `quantize_iq4_nl` / `quantize_iq4_xs` (both `quantize_row_iq4_nl_impl`
//! with `ntry = 7`; this is what `llama-quantize` and `ggml_quantize_chunk` run, with or
//! without imatrix). `quantize_row_iq4_nl_ref` (ntry = -1) is [`quantize_iq4_nl_ref_block`].

use half::f16;
use slm_gguf::GgmlType;

use super::search::{nearest_int, GROUP_MAX_EPS};
use super::{QuantBlock, Quantize, QK_K};

/// ggml's `kvalues_iq4nl`.
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// ggml's `block_iq4_nl`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_NL {
    pub d: f16,
    pub qs: [u8; 16],
}

/// ggml's `block_iq4_xs`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_XS {
    pub d: f16,
    pub scales_h: u16,
    pub scales_l: [u8; 4],
    pub qs: [u8; 128],
}

fn dequant_32(d: f32, qs: &[u8], y: &mut [f32]) {
    for (j, &q) in qs.iter().enumerate().take(16) {
        y[j] = d * f32::from(KVALUES_IQ4NL[usize::from(q & 0xF)]);
        y[j + 16] = d * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
    }
}

impl QuantBlock for BlockIQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        dequant_32(self.d.to_f32(), &self.qs, out);
    }
}

impl QuantBlock for BlockIQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let scales_h = self.scales_h;
        for (ib, (qs, y)) in self
            .qs
            .chunks_exact(16)
            .zip(out.chunks_exact_mut(32))
            .enumerate()
        {
            let ls = i32::from((self.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF)
                | (i32::from((scales_h >> (2 * ib)) & 3) << 4);
            dequant_32(d * (ls - 32) as f32, qs, y);
        }
    }
}

/// ggml's `best_index_int8`: index of the grid value nearest `x` (ties to the upper one).
fn best_index_int8(val: &[i8; 16], x: f32) -> u8 {
    if x <= f32::from(val[0]) {
        return 0;
    }
    if x >= f32::from(val[15]) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < f32::from(val[mav]) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    let idx = if x - f32::from(val[mu - 1]) < f32::from(val[mu]) - x {
        mu - 1
    } else {
        mu
    };
    idx as u8
}

/// Output of `quantize_row_iq4_nl_impl` for one super-block.
struct Iq4Out {
    d: f16,
    scales_h: u16,
    scales_l: [u8; 4],
}

/// ggml's `quantize_row_iq4_nl_impl(super_block_size = x.len(), block_size = 32, ...)`.
/// Writes the packed nibbles to `q4` (`x.len() / 2` bytes).
fn iq4_impl(x: &[f32], q4: &mut [u8], qw: Option<&[f32]>, ntry: i32) -> Iq4Out {
    let sbs = x.len();
    let nb = sbs / 32;
    let values = &KVALUES_IQ4NL;
    let v0 = f32::from(values[0]);
    let mut sigma2 = 0.0f32;
    for &v in x {
        sigma2 += v * v;
    }
    sigma2 *= 2.0 / sbs as f32;
    q4.fill(0);
    let mut out = Iq4Out {
        d: f16::ZERO,
        scales_h: 0,
        scales_l: [0; 4],
    };
    let mut l = [0u8; QK_K];
    let mut scales = [0.0f32; QK_K / 32];
    let mut weight = [0.0f32; 32];
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for ib in 0..nb {
        let xb = &x[32 * ib..32 * ib + 32];
        let lb = &mut l[32 * ib..32 * ib + 32];
        match qw {
            Some(qw) => {
                for (w, (&v, &q)) in weight.iter_mut().zip(xb.iter().zip(&qw[32 * ib..])) {
                    *w = q * (sigma2 + v * v).sqrt();
                }
            }
            None => {
                for (w, &v) in weight.iter_mut().zip(xb) {
                    *w = v * v;
                }
            }
        }
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xb {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut d = if ntry > 0 { -max / v0 } else { max / v0 };
        let mut id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for j in 0..32 {
            let li = best_index_int8(values, id * xb[j]);
            lb[j] = li;
            let q = f32::from(values[usize::from(li)]);
            let w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -ntry..=ntry {
            id = (itry + i32::from(values[0])) as f32 / max;
            sumqx = 0.0;
            sumq2 = 0.0;
            for j in 0..32 {
                let li = best_index_int8(values, id * xb[j]);
                let q = f32::from(values[usize::from(li)]);
                let w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        let abs_d = d.abs();
        if abs_d > amax_scale {
            amax_scale = abs_d;
            max_scale = d;
        }
    }
    if nb > 1 {
        let d = -max_scale / 32.0;
        out.d = f16::from_f32(d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for ib in 0..nb {
            let mut lv = nearest_int(id * scales[ib]).clamp(-32, 31);
            let dl = d * lv as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            for j in 0..32 {
                l[32 * ib + j] = best_index_int8(values, idl * x[32 * ib + j]);
            }
            lv += 32;
            let l_l = (lv & 0xf) as u8;
            let l_h = (lv >> 4) as u16;
            if ib % 2 == 0 {
                out.scales_l[ib / 2] = l_l;
            } else {
                out.scales_l[ib / 2] |= l_l << 4;
            }
            out.scales_h |= l_h << (2 * (ib % 8));
        }
    } else {
        out.d = f16::from_f32(scales[0]);
        if ntry > 0 {
            let id = if scales[0] != 0.0 {
                1.0 / scales[0]
            } else {
                0.0
            };
            for j in 0..sbs {
                l[j] = best_index_int8(values, id * x[j]);
            }
        }
    }
    for i in 0..sbs / 32 {
        for j in 0..16 {
            q4[16 * i + j] = l[32 * i + j] | (l[32 * i + 16 + j] << 4);
        }
    }
    out
}

/// `quantize_row_iq4_nl_ref` for one block (ntry = -1: a single least-squares fit).
pub fn quantize_iq4_nl_ref_block(x: &[f32]) -> BlockIQ4_NL {
    let mut qs = [0u8; 16];
    let o = iq4_impl(&x[..32], &mut qs, None, -1);
    BlockIQ4_NL { d: o.d, qs }
}

impl Quantize for BlockIQ4_NL {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(32)).enumerate() {
            let qw = imatrix.map(|w| &w[32 * i..32 * (i + 1)]);
            let o = iq4_impl(xb, &mut b.qs, qw, 7);
            b.d = o.d;
        }
    }
}

impl Quantize for BlockIQ4_XS {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            let o = iq4_impl(xb, &mut b.qs, qw, 7);
            b.d = o.d;
            b.scales_h = o.scales_h;
            b.scales_l = o.scales_l;
        }
    }
}
