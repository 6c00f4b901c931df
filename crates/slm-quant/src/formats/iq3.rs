//! IQ3_XXS and IQ3_S: 3-bit "i-quants". Groups of 4 magnitudes are indices into a grid
//! ([`IQ3XXS_GRID`]: 256 entries, [`IQ3S_GRID`]: 512), with per-value signs and per-32 scales.
//! Dequantization only (llama.cpp's IQ3 quantizers are not ported yet).
//!
//! ```text
//! IQ3_XXS (98 bytes, 3.0625 bpw): d f16 | qs u8[96]
//!   qs[0..64]: one grid index per 4 values; qs[64..96]: per 32 values ib a u32 whose bits
//!   7l..7l+7 are the sign index (KSIGNS) of values 8l..8l+8 and whose top 4 bits are the
//!   scale s; value = d * (0.5 + s) * 0.5 * grid * sign
//! IQ3_S (110 bytes, 3.4375 bpw): d f16 | qs u8[64] | qh u8[8] | signs u8[32] | scales u8[4]
//!   grid index = qs[k] | 9th bit from qh; one sign byte per 8 values;
//!   scale nibble per 32 values; value = d * (1 + 2 * nibble) * grid * sign
//! ```

use half::f16;
use slm_gguf::GgmlType;

use super::iq2::ksign;
use super::iq_grids::{IQ3S_GRID, IQ3XXS_GRID};
use super::{QuantBlock, QK_K};

/// Writes 8 values from two 4-entry grid rows.
#[inline]
fn put4x2(y: &mut [f32], db: f32, g1: u32, g2: u32, signs: u8) {
    for j in 0..4 {
        let s1 = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
        let s2 = if signs & (1 << (j + 4)) != 0 {
            -1.0
        } else {
            1.0
        };
        y[j] = db * f32::from(((g1 >> (8 * j)) & 0xFF) as u8) * s1;
        y[j + 4] = db * f32::from(((g2 >> (8 * j)) & 0xFF) as u8) * s2;
    }
}

/// ggml's `block_iq3_xxs`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ3_XXS {
    pub d: f16,
    pub qs: [u8; 96],
}

impl QuantBlock for BlockIQ3_XXS {
    const TYPE: GgmlType = GgmlType::IQ3_XXS;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let (qs, sas) = self.qs.split_at(64);
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let s = &sas[4 * ib..4 * ib + 4];
            let aux = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
            let q = &qs[8 * ib..8 * ib + 8];
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let g1 = IQ3XXS_GRID[usize::from(q[2 * l])];
                let g2 = IQ3XXS_GRID[usize::from(q[2 * l + 1])];
                put4x2(y8, db, g1, g2, ksign(aux >> (7 * l)));
            }
        }
    }
}

/// ggml's `block_iq3_s`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ3_S {
    pub d: f16,
    pub qs: [u8; 64],
    pub qh: [u8; 8],
    pub signs: [u8; 32],
    pub scales: [u8; 4],
}

impl QuantBlock for BlockIQ3_S {
    const TYPE: GgmlType = GgmlType::IQ3_S;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (ib, y) in out.chunks_exact_mut(32).enumerate() {
            let sc = self.scales[ib / 2];
            let nib = if ib % 2 == 0 { sc & 0xF } else { sc >> 4 };
            let db = d * (1 + 2 * i32::from(nib)) as f32;
            let qh = u32::from(self.qh[ib]);
            let q = &self.qs[8 * ib..8 * ib + 8];
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let i1 = u32::from(q[2 * l]) | ((qh << (8 - 2 * l)) & 256);
                let i2 = u32::from(q[2 * l + 1]) | ((qh << (7 - 2 * l)) & 256);
                let g1 = IQ3S_GRID[i1 as usize];
                let g2 = IQ3S_GRID[i2 as usize];
                put4x2(y8, db, g1, g2, self.signs[4 * ib + l]);
            }
        }
    }
}
