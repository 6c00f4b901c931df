//! AVX2 dot products of the 256-element super-block formats with Q8_K activations: Q2_K, Q3_K,
//! Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0. Each matches the scalar reference of the same name in
//! `scalar.rs` (exact integer sums per super-block; float accumulation order differs).
//!
//! Common technique: quants are unpacked to UNSIGNED bytes so `vpmaddubsw` (u8 x i8) applies;
//! a constant offset (Q3_K: 4, Q6_K: 32, TQ2_0: 1) is removed afterwards with the Q8_K block
//! sums (`bsums`, one per 16 activations): sum((q - o) * y) = sum(q * y) - o * sum(y).
//! Per-16 or per-32 scales are applied with `vpmaddwd` on the i16 pair sums.
//! Safety: as in `avx2_legacy` (AVX2 table only, lengths checked before pointer reads).

use super::avx2_legacy::{
    dot_i8_i8, hsum_epi32, hsum_ps, kvalues_table, ld_f16, ld_f16x8, nibbles32, safe_wrapper,
};
use super::check_rows;
use super::layout::*;
use std::arch::x86_64::*;

#[inline]
unsafe fn ld_f32(p: *const u8) -> f32 {
    (p as *const f32).read_unaligned()
}

/// Logical right shift of each u16 lane by a run-time count.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn srl16(v: __m256i, n: usize) -> __m256i {
    _mm256_srl_epi16(v, _mm_cvtsi32_si128(n as i32))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld256(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// i16 vector: `lo` in the low 128-bit lane, `hi` in the high one (scales of two 16-groups).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_pair(lo: i32, hi: i32) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16))
}

/// The 16 Q8_K block sums as i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bsums(y: *const u8) -> __m256i {
    ld256(y.add(Q8K_BSUMS))
}

/// Q4_K/Q5_K packed scales -> (8 scales, 8 mins), each as 8 little-endian bytes in a u64
/// (ggml's `utmp` unpacking, equivalent to `scale_min_k4`).
#[inline]
unsafe fn k4_scales(p: *const u8) -> (u64, u64) {
    const KM1: u32 = 0x3f3f_3f3f;
    const KM2: u32 = 0x0f0f_0f0f;
    const KM3: u32 = 0x0303_0303;
    let u0 = (p as *const u32).read_unaligned();
    let u1 = (p.add(4) as *const u32).read_unaligned();
    let u2 = (p.add(8) as *const u32).read_unaligned();
    let s0 = u0 & KM1;
    let s1 = (u2 & KM2) | (((u0 >> 6) & KM3) << 4);
    let m0 = u1 & KM1;
    let m1 = ((u2 >> 4) & KM2) | (((u1 >> 6) & KM3) << 4);
    (
        s0 as u64 | ((s1 as u64) << 32),
        m0 as u64 | ((m1 as u64) << 32),
    )
}

/// sum_j mins[j] * (bsums[2j] + bsums[2j+1]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mins_dot_bsums(mins: u64, y: *const u8) -> i32 {
    let m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mins as i64));
    let m2 = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
    hsum_epi32(_mm256_madd_epi16(m2, bsums(y)))
}

safe_wrapper!(vec_dot_q4_k_q8_k, q4_k, QK_K, Q4_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    let mut summ = 0.0f32;
    for i in 0..nb {
        let x = w.add(i * Q4_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let yd = ld_f32(y);
        let (sc, mins) = k4_scales(x.add(4));
        summ += ld_f16(x.add(2)) * yd * mins_dot_bsums(mins, y) as f32;
        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let q4 = ld256(x.add(16 + 32 * j));
            let lo = _mm256_and_si256(q4, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            let yl = ld256(y.add(Q8K_QS + 64 * j));
            let yh = ld256(y.add(Q8K_QS + 64 * j + 32));
            let s_lo = _mm256_set1_epi16(((sc >> (16 * j)) & 0xff) as i16);
            let s_hi = _mm256_set1_epi16(((sc >> (16 * j + 8)) & 0xff) as i16);
            let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, yl), s_lo);
            let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, yh), s_hi);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        let d = _mm256_mul_ps(ld_f16x8(x), _mm256_set1_ps(yd));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc) - summ
}

safe_wrapper!(vec_dot_q5_k_q8_k, q5_k, QK_K, Q5_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let one = _mm256_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    let mut summ = 0.0f32;
    for i in 0..nb {
        let x = w.add(i * Q5_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let yd = ld_f32(y);
        let (sc, mins) = k4_scales(x.add(4));
        summ += ld_f16(x.add(2)) * yd * mins_dot_bsums(mins, y) as f32;
        let qh = ld256(x.add(16));
        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let q4 = ld256(x.add(48 + 32 * j));
            let hl = _mm256_and_si256(srl16(qh, 2 * j), one);
            let hh = _mm256_and_si256(srl16(qh, 2 * j + 1), one);
            let lo = _mm256_or_si256(_mm256_and_si256(q4, m4), _mm256_slli_epi16(hl, 4));
            let hi = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4),
                _mm256_slli_epi16(hh, 4),
            );
            let yl = ld256(y.add(Q8K_QS + 64 * j));
            let yh = ld256(y.add(Q8K_QS + 64 * j + 32));
            let s_lo = _mm256_set1_epi16(((sc >> (16 * j)) & 0xff) as i16);
            let s_hi = _mm256_set1_epi16(((sc >> (16 * j + 8)) & 0xff) as i16);
            let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, yl), s_lo);
            let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, yh), s_hi);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        let d = _mm256_mul_ps(ld_f16x8(x), _mm256_set1_ps(yd));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc) - summ
}

safe_wrapper!(vec_dot_q6_k_q8_k, q6_k, QK_K, Q6_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(0x03);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q6_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let sc = x.add(192) as *const i8;
        // Offset 32: sum(sc_g * 32 * bsum_g), with the 16 scales widened to i16.
        let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc as *const __m128i));
        let offset = 32 * hsum_epi32(_mm256_madd_epi16(sc16, bsums(y)));
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let ql0 = ld256(x.add(64 * h));
            let ql1 = ld256(x.add(64 * h + 32));
            let qh = ld256(x.add(128 + 32 * h));
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4),
                ),
            ];
            for (k, qk) in q.iter().enumerate() {
                let g = 8 * h + 2 * k;
                let yk = ld256(y.add(Q8K_QS + 128 * h + 32 * k));
                let s = scale_pair(*sc.add(g) as i32, *sc.add(g + 1) as i32);
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(*qk, yk), s);
                sumi = _mm256_add_epi32(sumi, p);
            }
        }
        let total = hsum_epi32(sumi) - offset;
        let d = _mm256_mul_ps(ld_f16x8(x.add(208)), _mm256_set1_ps(ld_f32(y)));
        acc = _mm256_fmadd_ps(
            d,
            _mm256_cvtepi32_ps(_mm256_setr_epi32(total, 0, 0, 0, 0, 0, 0, 0)),
            acc,
        );
    }
    hsum_ps(acc)
}

safe_wrapper!(vec_dot_q3_k_q8_k, q3_k, QK_K, Q3_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m3 = _mm256_set1_epi8(0x03);
    let m4 = _mm256_set1_epi8(0x04);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = w.add(i * Q3_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let sc = super::scalar::q3_k_scales(std::slice::from_raw_parts(x.add(96), 12));
        let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc.as_ptr() as *const __m128i));
        // Unsigned u = q + 4 * hbit (0..7), value = u - 4.
        let offset = 4 * hsum_epi32(_mm256_madd_epi16(sc16, bsums(y)));
        let hm = ld256(x);
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let qs = ld256(x.add(32 + 32 * h));
            for s in 0..4 {
                let bit = 4 * h + s;
                let q = _mm256_and_si256(srl16(qs, 2 * s), m3);
                let hb = _mm256_and_si256(_mm256_slli_epi16(srl16(hm, bit), 2), m4);
                let u = _mm256_or_si256(q, hb);
                let g = 8 * h + 2 * s;
                let yk = ld256(y.add(Q8K_QS + 128 * h + 32 * s));
                let scv = scale_pair(sc[g] as i32, sc[g + 1] as i32);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(u, yk), scv));
            }
        }
        let total = hsum_epi32(sumi) - offset;
        sumf += ld_f16(x.add(108)) * ld_f32(y) * total as f32;
    }
    sumf
}

safe_wrapper!(vec_dot_q2_k_q8_k, q2_k, QK_K, Q2_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q2_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m3 = _mm256_set1_epi8(0x03);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = w.add(i * Q2_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let scb = _mm_loadu_si128(x as *const __m128i);
        let mins16 =
            _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(scb, 4), _mm_set1_epi8(0x0f)));
        let summs = hsum_epi32(_mm256_madd_epi16(mins16, bsums(y)));
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let qs = ld256(x.add(16 + 32 * h));
            for j in 0..4 {
                let q = _mm256_and_si256(srl16(qs, 2 * j), m3);
                let g = 8 * h + 2 * j;
                let yk = ld256(y.add(Q8K_QS + 128 * h + 32 * j));
                let scv = scale_pair((*x.add(g) & 0xf) as i32, (*x.add(g + 1) & 0xf) as i32);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, yk), scv));
            }
        }
        let yd = ld_f32(y);
        let dall = yd * ld_f16(x.add(80));
        let dmin = yd * ld_f16(x.add(82));
        sumf += dall * hsum_epi32(sumi) as f32 - dmin * summs as f32;
    }
    sumf
}

safe_wrapper!(vec_dot_iq4_xs_q8_k, iq4_xs, QK_K, IQ4_XS_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn iq4_xs(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let table = kvalues_table();
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * IQ4_XS_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let blk = std::slice::from_raw_parts(x, IQ4_XS_BYTES);
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let qx = _mm256_shuffle_epi8(table, nibbles32(x.add(8 + 16 * ib)));
            let yk = ld256(y.add(Q8K_QS + 32 * ib));
            let p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(yk, qx));
            let ls = super::scalar::iq4_xs_scale(blk, ib) - 32;
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, _mm256_set1_epi16(ls as i16)));
        }
        let d = _mm256_mul_ps(ld_f16x8(x), _mm256_set1_ps(ld_f32(y)));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

safe_wrapper!(vec_dot_tq2_0_q8_k, tq2_0, QK_K, TQ2_0_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tq2_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m3 = _mm256_set1_epi8(0x03);
    let ones = _mm256_set1_epi16(1);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let x = w.add(i * TQ2_0_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let ysum = hsum_epi32(_mm256_madd_epi16(bsums(y), ones));
        let mut sumi = _mm256_setzero_si256();
        for j in [0usize, 32] {
            let qs = ld256(x.add(j));
            for l in 0..4 {
                let q = _mm256_and_si256(srl16(qs, 2 * l), m3);
                let yk = ld256(y.add(Q8K_QS + 4 * j + 32 * l));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, yk), ones));
            }
        }
        let total = hsum_epi32(sumi) - ysum;
        sumf += total as f32 * (ld_f32(y) * ld_f16(x.add(64)));
    }
    sumf
}

safe_wrapper!(vec_dot_tq1_0_q8_k, tq1_0, QK_K, TQ1_0_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tq1_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    use super::scalar::tq1_digit;
    let mut sumf = 0.0f32;
    let mut t = [0i8; QK_K];
    for i in 0..nb {
        let x = std::slice::from_raw_parts(w.add(i * TQ1_0_BYTES), TQ1_0_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        // Trits to i8 in activation order (the compiler vectorises this loop), then an i8 dot.
        for l in 0..5 {
            for m in 0..32 {
                t[l * 32 + m] = tq1_digit(x[m], l) as i8;
            }
            for m in 0..16 {
                t[160 + l * 16 + m] = tq1_digit(x[32 + m], l) as i8;
            }
        }
        for l in 0..4 {
            for j in 0..4 {
                t[240 + 4 * l + j] = tq1_digit(x[48 + j], l) as i8;
            }
        }
        let mut sumi = _mm256_setzero_si256();
        for k in 0..8 {
            let q = _mm256_loadu_si256(t.as_ptr().add(32 * k) as *const __m256i);
            sumi = _mm256_add_epi32(sumi, dot_i8_i8(q, ld256(y.add(Q8K_QS + 32 * k))));
        }
        sumf += hsum_epi32(sumi) as f32 * (ld_f16(x.as_ptr().add(52)) * ld_f32(y));
    }
    sumf
}
