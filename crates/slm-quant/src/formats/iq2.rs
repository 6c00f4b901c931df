//! IQ2_XXS, IQ2_XS and IQ2_S: 2-bit "i-quants". Groups of 8 magnitudes are indices into an E8
//! lattice grid ([`IQ2XXS_GRID`], [`IQ2XS_GRID`], [`IQ2S_GRID`], values 8, 25, 43) with a sign
//! per value, and a 4-bit scale per 32 (or 16) values. Dequantization only: llama.cpp's IQ2
//! quantizers need a lattice neighbour search and an imatrix; they are not ported yet.
//!
//! ```text
//! IQ2_XXS (66 bytes, 2.0625 bpw): d f16 | qs u16[32]
//!   per 32 values ib: u32 a0 = qs[4ib..4ib+2], a1 = qs[4ib+2..4ib+4];
//!   byte l of a0 = grid index of values 8l..8l+8; bits 7l..7l+7 of a1 = sign index (KSIGNS);
//!   a1 >> 28 = scale s; value = d * (0.5 + s) * 0.25 * grid * sign
//! IQ2_XS (74 bytes, 2.3125 bpw): d f16 | qs u16[32] | scales u8[8]
//!   qs[4ib + l]: bits 0..9 grid index, bits 9..16 sign index; scale nibble l/2 of scales[ib]
//! IQ2_S (82 bytes, 2.5625 bpw): d f16 | qs u8[64] | qh u8[8] | scales u8[8]
//!   qs[0..32]: low 8 bits of the grid indices, bits 2l..2l+2 of qh[ib] the top 2;
//!   qs[32..64]: one sign byte per 8 values; scale nibbles as IQ2_XS
//! ```

use half::f16;
use slm_gguf::GgmlType;

use super::iq_grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID};
use super::{QuantBlock, QK_K};

/// ggml's `ksigns_iq2xs`: 7 sign bits plus an 8th that makes the count of negatives even.
pub const fn ksign(i: u32) -> u8 {
    let i = i & 127;
    (i | ((i.count_ones() & 1) << 7)) as u8
}

/// Writes 8 values `db * grid byte j * (±1 by bit j of signs)`.
#[inline]
pub(crate) fn put8(y: &mut [f32], db: f32, grid: u64, signs: u8) {
    for (j, o) in y.iter_mut().enumerate().take(8) {
        let g = f32::from(((grid >> (8 * j)) & 0xFF) as u8);
        let s = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
        *o = db * g * s;
    }
}

/// ggml's `block_iq2_xxs`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ2_XXS {
    pub d: f16,
    pub qs: [u16; 32],
}

impl QuantBlock for BlockIQ2_XXS {
    const TYPE: GgmlType = GgmlType::IQ2_XXS;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let q = &self.qs[4 * ib..4 * ib + 4];
            let a0 = u32::from(q[0]) | (u32::from(q[1]) << 16);
            let a1 = u32::from(q[2]) | (u32::from(q[3]) << 16);
            let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let idx = ((a0 >> (8 * l)) & 0xFF) as usize;
                put8(y8, db, IQ2XXS_GRID[idx], ksign(a1 >> (7 * l)));
            }
        }
    }
}

/// ggml's `block_iq2_xs`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ2_XS {
    pub d: f16,
    pub qs: [u16; 32],
    pub scales: [u8; 8],
}

impl QuantBlock for BlockIQ2_XS {
    const TYPE: GgmlType = GgmlType::IQ2_XS;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let sc = self.scales[ib];
            let db = [
                d * (0.5 + f32::from(sc & 0xF)) * 0.25,
                d * (0.5 + f32::from(sc >> 4)) * 0.25,
            ];
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let q = self.qs[4 * ib + l];
                put8(
                    y8,
                    db[l / 2],
                    IQ2XS_GRID[usize::from(q & 511)],
                    ksign(u32::from(q >> 9)),
                );
            }
        }
    }
}

/// ggml's `block_iq2_s`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ2_S {
    pub d: f16,
    pub qs: [u8; 64],
    pub qh: [u8; 8],
    pub scales: [u8; 8],
}

impl QuantBlock for BlockIQ2_S {
    const TYPE: GgmlType = GgmlType::IQ2_S;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let (qs, signs) = self.qs.split_at(32);
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let sc = self.scales[ib];
            let db = [
                d * (0.5 + f32::from(sc & 0xF)) * 0.25,
                d * (0.5 + f32::from(sc >> 4)) * 0.25,
            ];
            let qh = u32::from(self.qh[ib]);
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let idx = u32::from(qs[4 * ib + l]) | ((qh << (8 - 2 * l)) & 0x300);
                put8(y8, db[l / 2], IQ2S_GRID[idx as usize], signs[4 * ib + l]);
            }
        }
    }
}
