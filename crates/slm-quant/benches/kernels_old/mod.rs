//! The AVX2 kernels of Q4_K, Q5_K, Q5_0 and Q6_K as they were before the 2026-11 rewrite, kept only
//! for `kernels --compare` (old vs new in the same run). Not part of the library.
#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

const Q5_0_BYTES: usize = 22;
const Q8_0_BYTES: usize = 34;
const Q4_K_BYTES: usize = 144;
const Q5_K_BYTES: usize = 176;
const Q6_K_BYTES: usize = 210;
const Q8_K_BYTES: usize = 292;
const Q8K_QS: usize = 4;
const Q8K_BSUMS: usize = 4 + 256;

fn half_to_f32(h: u16) -> f32 {
    slm_quant::kernels::half::f16_to_f32(h)
}

/// f16 at `p` (unaligned) -> f32, in integer registers for normal numbers. Not F16C: LLVM
/// lowers a one-lane `vcvtph2ps` to `vpinsrw` merging into whatever register it likes (it picked
/// the accumulator), which chained every block on the previous FMA (3x slower loops).
#[inline(always)]
unsafe fn ld_f16(p: *const u8) -> f32 {
    let h = (p as *const u16).read_unaligned();
    let e = h & 0x7c00;
    if e != 0 && e != 0x7c00 {
        let bits = (((h & 0x8000) as u32) << 16) | ((((h & 0x7fff) as u32) + 0x1_c000) << 13);
        f32::from_bits(bits)
    } else {
        half_to_f32(h)
    }
}

/// f16 at `p` (unaligned) broadcast to 8 f32 lanes (`vpbroadcastw` + `vcvtph2ps`: full-width
/// writes, so no false dependency on an older register).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld_f16x8(p: *const u8) -> __m256 {
    let h = (p as *const u16).read_unaligned();
    _mm256_cvtph_ps(_mm_set1_epi16(h as i16))
}

/// Product of the f16 scales at `x` and `y`, broadcast (one-lane converts are done on
/// broadcast words, so every register write is full-width).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dd(x: *const u8, y: *const u8) -> __m256 {
    let hx = _mm_set1_epi16((x as *const u16).read_unaligned() as i16);
    let hy = _mm_set1_epi16((y as *const u16).read_unaligned() as i16);
    _mm256_broadcastss_ps(_mm_mul_ps(_mm_cvtph_ps(hx), _mm_cvtph_ps(hy)))
}

/// Horizontal sum of 8 floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_ps(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    let h = _mm_add_ss(h, _mm_movehdup_ps(h));
    _mm_cvtss_f32(h)
}

/// Horizontal sum of 8 i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b0100_1110));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b1011_0001));
    _mm_cvtsi128_si32(s)
}

/// 16 bytes at `p` -> 32 nibbles: low nibbles in the low 128-bit lane (elements 0..16), high
/// nibbles in the high lane (elements 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles32(p: *const u8) -> __m256i {
    let t = _mm_loadu_si128(p as *const __m128i);
    let b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    _mm256_and_si256(b, _mm256_set1_epi8(0x0f))
}

/// 32 bits -> 32 bytes, 0xff where the bit is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bits_to_bytes(x: u32) -> __m256i {
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
    let m = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(bytes, m), m)
}

/// Sum of products of 32 u8 (`x`, < 128) and 32 i8 (`y`) as 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_u8_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// Sum of products of 32 i8 and 32 i8 (neither -128 in `y`) as 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256i {
    dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q5_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q5_0_BYTES);
        let y = a.add(i * Q8_0_BYTES);
        let d = dd(x, y);
        let qh = (x.add(2) as *const u32).read_unaligned();
        // value - 16 = nibble | 0xf0 where the 5th bit is clear (as i8), nibble where set.
        let hi = _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(0xf0u8 as i8));
        let qx = _mm256_or_si256(nibbles32(x.add(6)), hi);
        let qy = _mm256_loadu_si256(y.add(2) as *const __m256i);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
    }
    hsum_ps(acc)
}

#[inline]
unsafe fn ld_f32(p: *const u8) -> f32 {
    (p as *const f32).read_unaligned()
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

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q4_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
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

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q6_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
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

/// Logical right shift of each u16 lane by a run-time count.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn srl16(v: __m256i, n: usize) -> __m256i {
    _mm256_srl_epi16(v, _mm_cvtsi32_si128(n as i32))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q5_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
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
