//! IQ1_S and IQ1_M: 1.5/1.75-bit "i-quants". Groups of 8 values are indices into the 2048-entry
//! ternary grid [`IQ1S_GRID`] (-1, 0, 1) shifted by ±[`IQ1S_DELTA`], with a 3-bit odd scale per
//! 32 (IQ1_S) or 16 (IQ1_M) values. Dequantization only (quantizers not ported yet).
//!
//! ```text
//! IQ1_S (50 bytes, 1.5625 bpw): d f16 | qs u8[32] | qh u16[8]
//!   per 32 values ib: grid index of values 8l.. = qs[4ib + l] | ((qh[ib] >> 3l) & 7) << 8;
//!   (qh[ib] >> 12) & 7 = scale s; bit 15 = sign of delta;
//!   value = d * (2s + 1) * (grid + delta)
//! IQ1_M (56 bytes, 1.75 bpw): qs u8[32] | qh u8[16] | scales u8[8]
//!   scales = 4 u16; the f16 super-block scale is their top nibbles; 3-bit scale per 16 values;
//!   qh[2ib + h]: bits 0..3 / 4..7 = high 3 index bits of groups 2h / 2h+1, bit 3 / 7 = delta sign
//! ```

use half::f16;
use slm_gguf::GgmlType;

use super::iq_grids::IQ1S_GRID;
use super::{QuantBlock, QK_K};

/// ggml's `IQ1S_DELTA`.
pub const IQ1S_DELTA: f32 = 0.125;

#[inline]
fn put8(y: &mut [f32], dl: f32, grid: u64, delta: f32) {
    for (j, o) in y.iter_mut().enumerate().take(8) {
        let g = ((grid >> (8 * j)) & 0xFF) as u8 as i8;
        *o = dl * (f32::from(g) + delta);
    }
}

/// ggml's `block_iq1_s`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ1_S {
    pub d: f16,
    pub qs: [u8; 32],
    pub qh: [u16; 8],
}

impl QuantBlock for BlockIQ1_S {
    const TYPE: GgmlType = GgmlType::IQ1_S;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let qh = self.qh[ib];
            let dl = d * (2 * i32::from((qh >> 12) & 7) + 1) as f32;
            let delta = if qh & 0x8000 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            };
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let idx =
                    usize::from(self.qs[4 * ib + l]) | (usize::from((qh >> (3 * l)) & 7) << 8);
                put8(y8, dl, IQ1S_GRID[idx], delta);
            }
        }
    }
}

/// ggml's `block_iq1_m`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ1_M {
    pub qs: [u8; 32],
    pub qh: [u8; 16],
    pub scales: [u8; 8],
}

impl QuantBlock for BlockIQ1_M {
    const TYPE: GgmlType = GgmlType::IQ1_M;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let s = &self.scales;
        let sc = [0, 2, 4, 6].map(|k| u16::from_le_bytes([s[k], s[k + 1]]));
        let bits =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        let d = f16::from_bits(bits).to_f32();
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let s = sc[ib / 2];
            let shift = 6 * (ib % 2);
            let dl1 = d * (2 * i32::from((s >> shift) & 7) + 1) as f32;
            let dl2 = d * (2 * i32::from((s >> (shift + 3)) & 7) + 1) as f32;
            let qs = &self.qs[4 * ib..4 * ib + 4];
            let (h0, h1) = (u16::from(self.qh[2 * ib]), u16::from(self.qh[2 * ib + 1]));
            let idx = [
                u16::from(qs[0]) | ((h0 << 8) & 0x700),
                u16::from(qs[1]) | ((h0 << 4) & 0x700),
                u16::from(qs[2]) | ((h1 << 8) & 0x700),
                u16::from(qs[3]) | ((h1 << 4) & 0x700),
            ];
            let sign = |h: u16, bit: u16| {
                if h & bit != 0 {
                    -IQ1S_DELTA
                } else {
                    IQ1S_DELTA
                }
            };
            let delta = [
                sign(h0, 0x08),
                sign(h0, 0x80),
                sign(h1, 0x08),
                sign(h1, 0x80),
            ];
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let dl = if l < 2 { dl1 } else { dl2 };
                put8(y8, dl, IQ1S_GRID[usize::from(idx[l])], delta[l]);
            }
        }
    }
}
