//! Scalar reference dot products: one weight row (ggml block layout, bytes) with one activation
//! row in the format llama.cpp pairs it with. Each function follows the matching
//! `ggml_vec_dot_*_generic` of llama.cpp's `ggml/src/ggml-cpu/quants.c` (same integer sums per
//! block, same float products), so results agree with ggml up to float summation order.
//! These are the ground truth every SIMD level is tested against.
//!
//! Block byte layouts (little-endian) are summarised in `layout.rs`.

use super::check_rows as check;
use super::half::{bf16_to_f32, rd_f16};
use super::layout::*;

#[inline]
fn q8k_d(a: &[u8]) -> f32 {
    f32::from_le_bytes([a[0], a[1], a[2], a[3]])
}

#[inline]
fn q8k_qs(a: &[u8]) -> &[u8] {
    &a[Q8K_QS..Q8K_QS + QK_K]
}

#[inline]
fn q8k_bsum(a: &[u8], j: usize) -> i32 {
    i16::from_le_bytes([a[Q8K_BSUMS + 2 * j], a[Q8K_BSUMS + 2 * j + 1]]) as i32
}

/// Q4_0 x Q8_0 (`ggml_vec_dot_q4_0_q8_0_generic`).
pub fn vec_dot_q4_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK, Q4_0_BYTES, Q8_0_BYTES);
    let mut sumf = 0.0f32;
    for ib in 0..nb {
        let x = &w[ib * Q4_0_BYTES..(ib + 1) * Q4_0_BYTES];
        let y = &a[ib * Q8_0_BYTES..(ib + 1) * Q8_0_BYTES];
        let mut sumi = 0i32;
        for j in 0..16 {
            let v0 = (x[2 + j] & 0x0f) as i32 - 8;
            let v1 = (x[2 + j] >> 4) as i32 - 8;
            sumi += v0 * (y[2 + j] as i8) as i32 + v1 * (y[2 + j + 16] as i8) as i32;
        }
        sumf += sumi as f32 * (rd_f16(x, 0) * rd_f16(y, 0));
    }
    sumf
}

/// Q4_1 x Q8_1 (`ggml_vec_dot_q4_1_q8_1_generic`).
pub fn vec_dot_q4_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK, Q4_1_BYTES, Q8_1_BYTES);
    let mut sumf = 0.0f32;
    for ib in 0..nb {
        let x = &w[ib * Q4_1_BYTES..(ib + 1) * Q4_1_BYTES];
        let y = &a[ib * Q8_1_BYTES..(ib + 1) * Q8_1_BYTES];
        let mut sumi = 0i32;
        for j in 0..16 {
            let v0 = (x[4 + j] & 0x0f) as i32;
            let v1 = (x[4 + j] >> 4) as i32;
            sumi += v0 * (y[4 + j] as i8) as i32 + v1 * (y[4 + j + 16] as i8) as i32;
        }
        sumf += (rd_f16(x, 0) * rd_f16(y, 0)) * sumi as f32 + rd_f16(x, 2) * rd_f16(y, 2);
    }
    sumf
}

/// Q5_0 x Q8_0 (`ggml_vec_dot_q5_0_q8_0_generic`).
pub fn vec_dot_q5_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK, Q5_0_BYTES, Q8_0_BYTES);
    let mut sumf = 0.0f32;
    for ib in 0..nb {
        let x = &w[ib * Q5_0_BYTES..(ib + 1) * Q5_0_BYTES];
        let y = &a[ib * Q8_0_BYTES..(ib + 1) * Q8_0_BYTES];
        let qh = u32::from_le_bytes([x[2], x[3], x[4], x[5]]);
        let mut sumi = 0i32;
        for j in 0..16 {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            let v0 = ((x[6 + j] & 0x0f) as u32 | h0) as i32 - 16;
            let v1 = ((x[6 + j] >> 4) as u32 | h1) as i32 - 16;
            sumi += v0 * (y[2 + j] as i8) as i32 + v1 * (y[2 + j + 16] as i8) as i32;
        }
        sumf += (rd_f16(x, 0) * rd_f16(y, 0)) * sumi as f32;
    }
    sumf
}

/// Q5_1 x Q8_1 (`ggml_vec_dot_q5_1_q8_1_generic`).
pub fn vec_dot_q5_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK, Q5_1_BYTES, Q8_1_BYTES);
    let mut sumf = 0.0f32;
    for ib in 0..nb {
        let x = &w[ib * Q5_1_BYTES..(ib + 1) * Q5_1_BYTES];
        let y = &a[ib * Q8_1_BYTES..(ib + 1) * Q8_1_BYTES];
        let qh = u32::from_le_bytes([x[4], x[5], x[6], x[7]]);
        let mut sumi = 0i32;
        for j in 0..16 {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            let v0 = ((x[8 + j] & 0x0f) as u32 | h0) as i32;
            let v1 = ((x[8 + j] >> 4) as u32 | h1) as i32;
            sumi += v0 * (y[4 + j] as i8) as i32 + v1 * (y[4 + j + 16] as i8) as i32;
        }
        sumf += (rd_f16(x, 0) * rd_f16(y, 0)) * sumi as f32 + rd_f16(x, 2) * rd_f16(y, 2);
    }
    sumf
}

/// Q8_0 x Q8_0 (`ggml_vec_dot_q8_0_q8_0_generic`).
pub fn vec_dot_q8_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK, Q8_0_BYTES, Q8_0_BYTES);
    let mut sumf = 0.0f32;
    for ib in 0..nb {
        let x = &w[ib * Q8_0_BYTES..(ib + 1) * Q8_0_BYTES];
        let y = &a[ib * Q8_0_BYTES..(ib + 1) * Q8_0_BYTES];
        let mut sumi = 0i32;
        for j in 0..32 {
            sumi += (x[2 + j] as i8) as i32 * (y[2 + j] as i8) as i32;
        }
        sumf += sumi as f32 * (rd_f16(x, 0) * rd_f16(y, 0));
    }
    sumf
}

/// IQ4_NL x Q8_0 (`ggml_vec_dot_iq4_nl_q8_0_generic`).
pub fn vec_dot_iq4_nl_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK, IQ4_NL_BYTES, Q8_0_BYTES);
    let mut sumf = 0.0f32;
    for ib in 0..nb {
        let x = &w[ib * IQ4_NL_BYTES..(ib + 1) * IQ4_NL_BYTES];
        let y = &a[ib * Q8_0_BYTES..(ib + 1) * Q8_0_BYTES];
        let d = rd_f16(y, 0) * rd_f16(x, 0);
        let mut sumi = 0i32;
        for j in 0..16 {
            sumi += (y[2 + j] as i8) as i32 * KVALUES_IQ4NL[(x[2 + j] & 0xf) as usize] as i32;
            sumi += (y[2 + j + 16] as i8) as i32 * KVALUES_IQ4NL[(x[2 + j] >> 4) as usize] as i32;
        }
        sumf += d * sumi as f32;
    }
    sumf
}

/// Q2_K x Q8_K (`ggml_vec_dot_q2_K_q8_K_generic`).
pub fn vec_dot_q2_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, Q2_K_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * Q2_K_BYTES..(i + 1) * Q2_K_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let sc = &x[0..16];
        let qs = &x[16..80];
        let q8 = q8k_qs(y);
        let mut summs = 0i32;
        for (j, &s) in sc.iter().enumerate() {
            summs += q8k_bsum(y, j) * (s >> 4) as i32;
        }
        let dall = q8k_d(y) * rd_f16(x, 80);
        let dmin = q8k_d(y) * rd_f16(x, 82);
        let mut isum = 0i32;
        for half in 0..2 {
            for j in 0..4 {
                for part in 0..2 {
                    let is = half * 8 + j * 2 + part;
                    let d = (sc[is] & 0xf) as i32;
                    let mut isuml = 0i32;
                    for l in part * 16..part * 16 + 16 {
                        let q = ((qs[half * 32 + l] >> (2 * j)) & 3) as i32;
                        isuml += (q8[half * 128 + j * 32 + l] as i8) as i32 * q;
                    }
                    isum += d * isuml;
                }
            }
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// The 16 signed 6-bit scales of a Q3_K block (`scales - 32` of ggml's unpacking).
pub fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for j in 0..16 {
        let low = if j < 8 { s[j] & 0xf } else { s[j - 8] >> 4 };
        let high = (s[8 + (j % 4)] >> (2 * (j / 4))) & 3;
        out[j] = (low | (high << 4)) as i8 - 32;
    }
    out
}

/// Q3_K x Q8_K (`ggml_vec_dot_q3_K_q8_K_generic`).
pub fn vec_dot_q3_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, Q3_K_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * Q3_K_BYTES..(i + 1) * Q3_K_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let hm = &x[0..32];
        let qs = &x[32..96];
        let scales = q3_k_scales(&x[96..108]);
        let q8 = q8k_qs(y);
        let mut isum = 0i32;
        for half in 0..2 {
            for shift in 0..4 {
                let m = 1u8 << (half * 4 + shift);
                for l in 0..32 {
                    let idx = half * 128 + shift * 32 + l;
                    let mut q = ((qs[half * 32 + l] >> (2 * shift)) & 3) as i32;
                    if hm[l] & m == 0 {
                        q -= 4;
                    }
                    isum += scales[idx / 16] as i32 * q * (q8[idx] as i8) as i32;
                }
            }
        }
        sumf += rd_f16(x, 108) * q8k_d(y) * isum as f32;
    }
    sumf
}

/// 6-bit scale and min `j` (0..8) of a Q4_K/Q5_K block (ggml's `get_scale_min_k4`).
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K x Q8_K (`ggml_vec_dot_q4_K_q8_K_generic`).
pub fn vec_dot_q4_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, Q4_K_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * Q4_K_BYTES..(i + 1) * Q4_K_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let sc = &x[4..16];
        let qs = &x[16..144];
        let q8 = q8k_qs(y);
        let (mut isum, mut msum) = (0i32, 0i32);
        for sub in 0..8 {
            let (s, m) = scale_min_k4(sub, sc);
            msum += m as i32 * (q8k_bsum(y, 2 * sub) + q8k_bsum(y, 2 * sub + 1));
            let shift = 4 * (sub % 2);
            let mut s32 = 0i32;
            for l in 0..32 {
                let q = ((qs[(sub / 2) * 32 + l] >> shift) & 0xf) as i32;
                s32 += q * (q8[sub * 32 + l] as i8) as i32;
            }
            isum += s as i32 * s32;
        }
        let d = rd_f16(x, 0) * q8k_d(y);
        let dmin = rd_f16(x, 2) * q8k_d(y);
        sumf += d * isum as f32 - dmin * msum as f32;
    }
    sumf
}

/// Q5_K x Q8_K (`ggml_vec_dot_q5_K_q8_K_generic`).
pub fn vec_dot_q5_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, Q5_K_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * Q5_K_BYTES..(i + 1) * Q5_K_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let sc = &x[4..16];
        let qh = &x[16..48];
        let qs = &x[48..176];
        let q8 = q8k_qs(y);
        let (mut isum, mut msum) = (0i32, 0i32);
        for sub in 0..8 {
            let (s, m) = scale_min_k4(sub, sc);
            msum += m as i32 * (q8k_bsum(y, 2 * sub) + q8k_bsum(y, 2 * sub + 1));
            let shift = 4 * (sub % 2);
            let mut s32 = 0i32;
            for l in 0..32 {
                let mut q = ((qs[(sub / 2) * 32 + l] >> shift) & 0xf) as i32;
                if qh[l] & (1 << sub) != 0 {
                    q += 16;
                }
                s32 += q * (q8[sub * 32 + l] as i8) as i32;
            }
            isum += s as i32 * s32;
        }
        let d = rd_f16(x, 0) * q8k_d(y);
        let dmin = rd_f16(x, 2) * q8k_d(y);
        sumf += d * isum as f32 - dmin * msum as f32;
    }
    sumf
}

/// Q6_K x Q8_K (`ggml_vec_dot_q6_K_q8_K_generic`).
pub fn vec_dot_q6_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, Q6_K_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * Q6_K_BYTES..(i + 1) * Q6_K_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let q8 = q8k_qs(y);
        let mut isum = 0i32;
        for half in 0..2 {
            let ql = &x[half * 64..half * 64 + 64];
            let qh = &x[128 + half * 32..128 + half * 32 + 32];
            let sc = &x[192 + half * 8..192 + half * 8 + 8];
            let q8 = &q8[half * 128..half * 128 + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                isum += (sc[is] as i8) as i32 * q1 * (q8[l] as i8) as i32;
                isum += (sc[is + 2] as i8) as i32 * q2 * (q8[l + 32] as i8) as i32;
                isum += (sc[is + 4] as i8) as i32 * q3 * (q8[l + 64] as i8) as i32;
                isum += (sc[is + 6] as i8) as i32 * q4 * (q8[l + 96] as i8) as i32;
            }
        }
        sumf += rd_f16(x, 208) * q8k_d(y) * isum as f32;
    }
    sumf
}

/// The 6-bit scale (0..64) of sub-block `ib` (0..8) of an IQ4_XS block.
#[inline]
pub fn iq4_xs_scale(x: &[u8], ib: usize) -> i32 {
    let h = u16::from_le_bytes([x[2], x[3]]);
    let lo = (x[4 + ib / 2] >> (4 * (ib % 2))) & 0xf;
    let hi = ((h >> (2 * ib)) & 3) as u8;
    (lo | (hi << 4)) as i32
}

/// IQ4_XS x Q8_K (`ggml_vec_dot_iq4_xs_q8_K_generic`).
pub fn vec_dot_iq4_xs_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, IQ4_XS_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * IQ4_XS_BYTES..(i + 1) * IQ4_XS_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let d4d8 = rd_f16(x, 0) * q8k_d(y);
        let q8 = q8k_qs(y);
        for ib in 0..8 {
            let qs = &x[8 + 16 * ib..8 + 16 * ib + 16];
            let mut sumi = 0i32;
            for j in 0..16 {
                sumi +=
                    (q8[32 * ib + j] as i8) as i32 * KVALUES_IQ4NL[(qs[j] & 0xf) as usize] as i32;
                sumi += (q8[32 * ib + 16 + j] as i8) as i32
                    * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as i32;
            }
            sumf += d4d8 * (iq4_xs_scale(x, ib) - 32) as f32 * sumi as f32;
        }
    }
    sumf
}

/// TQ1_0 ternary digit `l` (0..5) of byte `q`, as -1/0/1 (ggml's multiply-by-3^l trick).
#[inline]
pub fn tq1_digit(q: u8, l: usize) -> i32 {
    const POW3: [u8; 6] = [1, 3, 9, 27, 81, 243];
    let q = q.wrapping_mul(POW3[l]);
    ((q as u16 * 3) >> 8) as i32 - 1
}

/// TQ1_0 x Q8_K (`ggml_vec_dot_tq1_0_q8_K_generic`).
pub fn vec_dot_tq1_0_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, TQ1_0_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * TQ1_0_BYTES..(i + 1) * TQ1_0_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let (qs, qh) = (&x[0..48], &x[48..52]);
        let q8 = q8k_qs(y);
        let mut sum = 0i32;
        for l in 0..5 {
            for m in 0..32 {
                sum += tq1_digit(qs[m], l) * (q8[l * 32 + m] as i8) as i32;
            }
            for m in 0..16 {
                sum += tq1_digit(qs[32 + m], l) * (q8[160 + l * 16 + m] as i8) as i32;
            }
        }
        for l in 0..4 {
            for (j, &h) in qh.iter().enumerate() {
                sum += tq1_digit(h, l) * (q8[240 + l * 4 + j] as i8) as i32;
            }
        }
        sumf += sum as f32 * (rd_f16(x, 52) * q8k_d(y));
    }
    sumf
}

/// TQ2_0 x Q8_K (`ggml_vec_dot_tq2_0_q8_K_generic`).
pub fn vec_dot_tq2_0_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check(n, w, a, QK_K, TQ2_0_BYTES, Q8_K_BYTES);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = &w[i * TQ2_0_BYTES..(i + 1) * TQ2_0_BYTES];
        let y = &a[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let q8 = q8k_qs(y);
        let mut sumi = 0i32;
        for j in [0usize, 32] {
            for l in 0..4 {
                for k in 0..32 {
                    let q = ((x[j + k] >> (2 * l)) & 3) as i32 - 1;
                    sumi += (q8[j * 4 + l * 32 + k] as i8) as i32 * q;
                }
            }
        }
        sumf += sumi as f32 * (q8k_d(y) * rd_f16(x, 64));
    }
    sumf
}

/// F32 weights x F32 activations.
pub fn vec_dot_f32_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, a, 1, 4, 4);
    let mut acc = [0.0f32; 8];
    for (k, (x, y)) in w[..4 * n]
        .chunks_exact(4)
        .zip(a[..4 * n].chunks_exact(4))
        .enumerate()
    {
        let x = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        let y = f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
        acc[k % 8] += x * y;
    }
    acc.iter().sum()
}

/// F16 weights x F32 activations.
pub fn vec_dot_f16_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, a, 1, 2, 4);
    let mut acc = [0.0f32; 8];
    for k in 0..n {
        let x = rd_f16(w, 2 * k);
        let y = f32::from_le_bytes([a[4 * k], a[4 * k + 1], a[4 * k + 2], a[4 * k + 3]]);
        acc[k % 8] += x * y;
    }
    acc.iter().sum()
}

/// BF16 weights x F32 activations.
pub fn vec_dot_bf16_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, a, 1, 2, 4);
    let mut acc = [0.0f32; 8];
    for k in 0..n {
        let x = bf16_to_f32(u16::from_le_bytes([w[2 * k], w[2 * k + 1]]));
        let y = f32::from_le_bytes([a[4 * k], a[4 * k + 1], a[4 * k + 2], a[4 * k + 3]]);
        acc[k % 8] += x * y;
    }
    acc.iter().sum()
}
