//! The ternary formats of BitNet b1.58 / TriLMs: TQ1_0 (base-3 packing, 1.6875 bits per
//! weight) and TQ2_0 (2 bits per weight). Levels are -1, 0, +1 times an f16 scale `d = max|x|`.
//!
//! ```text
//! TQ1_0 (54 bytes):
//! byte   0..48  qs[48]  5 trits per byte, stored as ceil(t * 256 / 243) of the base-3 number
//!                       t = t0*81 + t1*27 + t2*9 + t3*3 + t4; trit n of byte m of a 32-byte
//!                       group g (qs[0..32]) is value 160g + 32n + m; of the 16-byte tail
//!                       (qs[32..48]) value 160 + 16n + m
//! byte  48..52  qh[4]   4 trits per byte (shifted up by one trit), trit n of qh[j] is value
//!                       240 + 4n + j
//! byte  52..54  d       f16
//! value = (trit - 1) * d; trit n of a byte q is ((q * 3^n) mod 256) * 3 >> 8
//!
//! TQ2_0 (66 bytes):
//! byte   0..64  qs[64]  bits 2n..2n+2 of qs[32c + m] = level of value 128c + 32n + m
//! byte  64..66  d       f16
//! value = (level - 1) * d
//! ```
//! Quantizers: `quantize_row_tq1_0_ref`, `quantize_row_tq2_0_ref` (`lroundf`); no imatrix.

use half::f16;
use slm_gguf::GgmlType;

use super::{QuantBlock, Quantize, QK_K};

/// ggml's `block_tq1_0`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockTQ1_0 {
    pub qs: [u8; 48],
    pub qh: [u8; 4],
    pub d: f16,
}

/// ggml's `block_tq2_0`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockTQ2_0 {
    pub qs: [u8; 64],
    pub d: f16,
}

const POW3: [u8; 6] = [1, 3, 9, 27, 81, 243];

/// Trit `n` (0..5) of a packed TQ1_0 byte, 0..=2.
#[inline]
fn trit(q: u8, n: usize) -> i32 {
    let q = q.wrapping_mul(POW3[n]);
    i32::from((u16::from(q) * 3) >> 8)
}

impl QuantBlock for BlockTQ1_0 {
    const TYPE: GgmlType = GgmlType::TQ1_0;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let mut y = out.iter_mut();
        let mut put = |v: i32| {
            if let Some(o) = y.next() {
                *o = (v - 1) as f32 * d;
            }
        };
        for group in self.qs[..32]
            .chunks_exact(32)
            .chain(self.qs[32..].chunks_exact(16))
        {
            for n in 0..5 {
                for &q in group {
                    put(trit(q, n));
                }
            }
        }
        for n in 0..4 {
            for &q in &self.qh {
                put(trit(q, n));
            }
        }
    }
}

/// `lroundf(x * id) + 1`: the trit 0..=2 of a value.
#[inline]
fn to_trit(v: f32, id: f32) -> u8 {
    ((v * id).round() as i32 + 1) as u8
}

fn absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    for &v in x {
        amax = amax.max(v.abs());
    }
    amax
}

/// `quantize_row_tq1_0_ref` for one block.
pub fn quantize_tq1_0_block(x: &[f32]) -> BlockTQ1_0 {
    let d = absmax(&x[..QK_K]);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut b = BlockTQ1_0 {
        qs: [0; 48],
        qh: [0; 4],
        d: f16::from_f32(d),
    };
    let pack = |vals: &mut dyn Iterator<Item = u8>, extra_shift: bool| -> u8 {
        let mut q = 0u8;
        for t in vals {
            q = q.wrapping_mul(3).wrapping_add(t);
        }
        if extra_shift {
            q = q.wrapping_mul(3);
        }
        // ceiling division by 243, result fits a byte
        (u16::from(q) * 256).div_ceil(243) as u8
    };
    for m in 0..32 {
        b.qs[m] = pack(&mut (0..5).map(|n| to_trit(x[m + 32 * n], id)), false);
    }
    for m in 0..16 {
        b.qs[32 + m] = pack(&mut (0..5).map(|n| to_trit(x[160 + m + 16 * n], id)), false);
    }
    for j in 0..4 {
        b.qh[j] = pack(&mut (0..4).map(|n| to_trit(x[240 + j + 4 * n], id)), true);
    }
    b
}

impl Quantize for BlockTQ1_0 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
            *b = quantize_tq1_0_block(xb);
        }
    }
}

impl QuantBlock for BlockTQ2_0 {
    const TYPE: GgmlType = GgmlType::TQ2_0;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (c, y) in self.qs.chunks_exact(32).zip(out.chunks_exact_mut(128)) {
            for n in 0..4 {
                for (m, &q) in c.iter().enumerate() {
                    let l = i32::from((q >> (2 * n)) & 3);
                    y[32 * n + m] = (l - 1) as f32 * d;
                }
            }
        }
    }
}

/// `quantize_row_tq2_0_ref` for one block.
pub fn quantize_tq2_0_block(x: &[f32]) -> BlockTQ2_0 {
    let d = absmax(&x[..QK_K]);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut b = BlockTQ2_0 {
        qs: [0; 64],
        d: f16::from_f32(d),
    };
    for (c, xc) in x.chunks_exact(128).enumerate() {
        for m in 0..32 {
            let mut q = 0u8;
            for n in 0..4 {
                q = q.wrapping_add((to_trit(xc[m + 32 * n], id) & 3) << (2 * n));
            }
            b.qs[32 * c + m] = q;
        }
    }
    b
}

impl Quantize for BlockTQ2_0 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
            *b = quantize_tq2_0_block(xb);
        }
    }
}
