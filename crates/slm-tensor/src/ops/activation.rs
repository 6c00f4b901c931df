//! Activations and gated products of the feed-forward block: GELU (tanh approximation, ggml's
//! `ggml_gelu_f32` constants), SiLU, GeGLU `gelu(gate) * up` (Gemma) and SwiGLU
//! `silu(gate) * up` (Llama, Qwen, Phi-3).
//!
//! [`geglu`] follows ggml's CPU path (`GGML_GELU_FP16`, always on in `vec.h`): the gate is
//! rounded to f16 and GELU is read from a 65536-entry table whose values are themselves rounded
//! to f16; inputs at or below -10 give 0 and at or above 10 pass through. [`geglu_exact`]
//! evaluates the formula in f32.

use std::sync::OnceLock;

const GELU_COEF_A: f32 = 0.044_715;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// `0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))`.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)).tanh())
}

/// `x * sigmoid(x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// IEEE binary16 bits of `x`, rounded to nearest even (as F16C / ggml's FP32_TO_FP16).
pub fn f32_to_f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x007f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x0200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let mut r = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        if rem > halfway || (rem == halfway && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1; // a carry into the exponent is the correct rounding (up to infinity)
    }
    sign | r as u16
}

/// The f32 value of IEEE binary16 bits.
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: man * 2^-24, exact in f32.
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// `gelu` of every f16 value, rounded to f16 (ggml's `ggml_table_gelu_f16`), as f32.
fn gelu_table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|h| f16_bits_to_f32(f32_to_f16_bits(gelu_tanh(f16_bits_to_f32(h)))))
            .collect()
    })
}

/// In place `gate[i] = gelu(gate[i]) * up[i]` the way ggml's CPU backend computes it (f16
/// table, see the module header); `gate`, `up`: (n,).
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    let table = gelu_table();
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            table[usize::from(f32_to_f16_bits(x))] * u
        };
    }
}

/// In place `gate[i] = gelu(gate[i]) * up[i]` evaluated in f32; `gate`, `up`: (n,).
pub fn geglu_exact(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = gelu_tanh(*g) * u;
    }
}

/// In place `gate[i] = silu(gate[i]) * up[i]`; `gate`, `up`: (n,).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}
