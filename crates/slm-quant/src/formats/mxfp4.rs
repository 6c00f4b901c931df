//! MXFP4 (OCP microscaling FP4, as used by gpt-oss): 32 values, a shared E8M0 power-of-two
//! scale and 4-bit E2M1 codes; 4.25 bits per weight.
//!
//! ```text
//! byte  0      e        E8M0 exponent: scale = 2^(e - 127); ggml keeps half of it, 2^(e - 128)
//! byte  1..17  qs[16]   qs[j] low nibble = code of value j, high nibble = value j + 16
//! value = KVALUES_MXFP4[code] * 2^(e - 128)   (the table holds twice the E2M1 values)
//! ```
//! Quantizer: `quantize_row_mxfp4_ref` (no imatrix).

use slm_gguf::GgmlType;

use super::{QuantBlock, Quantize};

/// ggml's `kvalues_mxfp4`: E2M1 values times two.
pub const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// ggml's `block_mxfp4`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockMXFP4 {
    pub e: u8,
    pub qs: [u8; 16],
}

/// ggml's `ggml_e8m0_to_fp32_half`: 2^(x - 128) (denormal for x < 2).
pub fn e8m0_to_fp32_half(x: u8) -> f32 {
    let bits = if x < 2 {
        0x0020_0000u32 << x
    } else {
        (u32::from(x) - 1) << 23
    };
    f32::from_bits(bits)
}

impl QuantBlock for BlockMXFP4 {
    const TYPE: GgmlType = GgmlType::MXFP4;
    const BLOCK_SIZE: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = e8m0_to_fp32_half(self.e);
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = f32::from(KVALUES_MXFP4[usize::from(q & 0xF)]) * d;
            out[j + 16] = f32::from(KVALUES_MXFP4[usize::from(q >> 4)]) * d;
        }
    }
}

fn best_index(x: f32, e: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = (f32::from(KVALUES_MXFP4[0]) * e - x).abs();
    for (i, &k) in KVALUES_MXFP4.iter().enumerate().skip(1) {
        let err = (f32::from(k) * e - x).abs();
        if err < best_err {
            best = i as u8;
            best_err = err;
        }
    }
    best
}

/// `quantize_row_mxfp4_ref` for one block.
pub fn quantize_block(x: &[f32]) -> BlockMXFP4 {
    let mut amax = 0.0f32;
    for &v in &x[..32] {
        if amax < v.abs() {
            amax = v.abs();
        }
    }
    let e = if amax > 0.0 {
        (amax.log2().floor() - 2.0 + 127.0) as u8
    } else {
        0
    };
    let d = e8m0_to_fp32_half(e);
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = best_index(x[j], d) | (best_index(x[j + 16], d) << 4);
    }
    BlockMXFP4 { e, qs }
}

impl Quantize for BlockMXFP4 {
    fn quantize_row(x: &[f32], out: &mut [Self], _imatrix: Option<&[f32]>) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
            *b = quantize_block(xb);
        }
    }
}
