//! AVX2 dot products of the 256-element super-block formats with Q8_K activations: Q2_K, Q3_K,
//! Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0. Each matches the scalar reference of the same name in
//! `scalar.rs` (exact integer sums per super-block; float accumulation order differs).
//!
//! Common technique: quants are unpacked to UNSIGNED bytes so `vpmaddubsw` (u8 x i8) applies;
//! a constant offset (Q3_K: 4, Q6_K: 32, TQ2_0: 1) is removed afterwards with the Q8_K block
//! sums (`bsums`, one per 16 activations): sum((q - o) * y) = sum(q * y) - o * sum(y).
//! Per-16 or per-32 scales are applied with `vpmaddwd` on the i16 pair sums.
//! Q4_K and Q5_K (and the four-token Q4_K in `avx2_multi`) share the scale/min unpacking
//! ([`K4Scales`]: one `vpshufb` per scale use, the mins as i16 pairs for one `vpmaddwd` with the
//! bsums), the scaled group dot ([`k4_dot_pair`]) and the float update ([`k4_accumulate`]), so
//! the four-token Q4_K kernel is bit-identical to the single-row one (and both to commit
//! 6cfd264's). Tried and dropped on the Zen 4 dev VM: scales stored per super-block to a stack
//! buffer and broadcast from memory (no shuffle per use) ran 10-20% slower, even with the
//! stores two super-blocks ahead.
//! Safety: as in `avx2_legacy` (AVX2 table only, lengths checked before pointer reads).

use super::avx2_legacy::{
    hsum_epi32, hsum_ps, kvalues_table, ld_f16, ld_f16x8, nibbles32, safe_wrapper,
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

/// The 16 Q8_K block sums as i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bsums(y: *const u8) -> __m256i {
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

/// The 8 scales and 8 mins of a Q4_K/Q5_K super-block, unpacked for the vector units.
pub(super) struct K4Scales {
    /// The 8 scales as i16, in both 128-bit lanes.
    s: __m256i,
}

/// `vpshufb` masks picking i16 scale `j` of [`K4Scales`] into every lane.
static K4_PICK: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut j = 0;
    while j < 8 {
        let mut k = 0;
        while k < 32 {
            t[j][k] = (2 * j + k % 2) as u8;
            k += 1;
        }
        j += 1;
    }
    t
};

/// [`K4_PICK`] behind an opaque pointer: with the masks visible, LLVM rewrites each `vpshufb`
/// into a shift + `vpbroadcastw` pair (twice the shuffle-port work).
#[inline(always)]
pub(super) fn k4_pick() -> *const [u8; 32] {
    std::hint::black_box(K4_PICK.as_ptr())
}

impl K4Scales {
    /// Unpacks the 12 scale bytes at `p`; returns the scales and the 8 mins as i16 pairs
    /// `(m_j, m_j)` (16 lanes, for `vpmaddwd` with the 16 Q8_K block sums).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn unpack(p: *const u8) -> (K4Scales, __m256i) {
        const Z: i8 = -128;
        let (sc, mins) = k4_scales(p);
        let v = _mm_set_epi64x(mins as i64, sc as i64);
        // Scales: bytes 0..8 widened, in both lanes; mins: bytes 8..16 as u16 pairs.
        let s = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(v, v));
        let midx = _mm256_setr_epi8(
            8, Z, 8, Z, 9, Z, 9, Z, 10, Z, 10, Z, 11, Z, 11, Z, 12, Z, 12, Z, 13, Z, 13, Z, 14, Z,
            14, Z, 15, Z, 15, Z,
        );
        (
            K4Scales { s },
            _mm256_shuffle_epi8(_mm256_set_m128i(v, v), midx),
        )
    }

    /// Scales `2j` and `2j + 1`, each in every i16 lane (for [`k4_dot_pair`]).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn pair(&self, pick: *const [u8; 32], j: usize) -> (__m256i, __m256i) {
        (self.get(pick, 2 * j), self.get(pick, 2 * j + 1))
    }

    /// Scale `j` (0..8) in every i16 lane (one `vpshufb`; `pick` from [`k4_pick`]).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, pick: *const [u8; 32], j: usize) -> __m256i {
        _mm256_shuffle_epi8(self.s, _mm256_loadu_si256(pick.add(j) as *const __m256i))
    }
}

/// Integer dot of 32-element groups `2j` (unsigned quants `lo`) and `2j + 1` (`hi`) with the
/// 64 Q8_K quants at `yq`, times their scales `(s_lo, s_hi)` from [`K4Scales::pair`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn k4_dot_pair(
    lo: __m256i,
    hi: __m256i,
    (s_lo, s_hi): (__m256i, __m256i),
    yq: *const u8,
) -> __m256i {
    let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(yq)), s_lo);
    let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(yq.add(32))), s_hi);
    _mm256_add_epi32(pl, ph)
}

/// `[d, dmin] x 4` of the Q4_K/Q5_K super-block at `x`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn k4_xdm(x: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi32((x as *const u32).read_unaligned() as i32))
}

/// The float update of a Q4_K/Q5_K super-block: `acc[0] += d * sumi`, `acc[1] += dmin *
/// (mins . bsums)` (two independent chains); the row's dot is `hsum(acc[0] - acc[1])`
/// ([`k4_finish`]), the order of commit 6cfd264. The single-row and four-token kernels both
/// use these, so they do the same float operations.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn k4_accumulate(
    acc: &mut [__m256; 2],
    xdm: __m256,
    y: *const u8,
    sumi: __m256i,
    mins: __m256i,
) {
    // (d * yd, dmin * yd), each in all 8 lanes (`vmovsldup` / `vmovshdup`, no broadcasts).
    let dm = _mm256_mul_ps(xdm, _mm256_set1_ps(ld_f32(y)));
    let (d, dmin) = (_mm256_moveldup_ps(dm), _mm256_movehdup_ps(dm));
    let mb = _mm256_madd_epi16(mins, bsums(y));
    acc[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[0]);
    acc[1] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(mb), acc[1]);
}

/// The dot of a row from its [`k4_accumulate`] accumulators.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn k4_finish(acc: [__m256; 2]) -> f32 {
    hsum_ps(_mm256_sub_ps(acc[0], acc[1]))
}

/// Sum of four i32 vectors as a balanced tree.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn add4(p: [__m256i; 4]) -> __m256i {
    _mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3]))
}

safe_wrapper!(vec_dot_q4_k_q8_k, q4_k, QK_K, Q4_K_BYTES, Q8_K_BYTES);
/// Q4_K x Q8_K. Per super-block: nibbles dotted per 32 with `vpmaddubsw`, scaled with
/// `vpmaddwd` by scales picked with one `vpshufb` each ([`K4Scales`]); the mins term
/// `mins . bsums` stays in vector registers; one float update per super-block
/// ([`k4_accumulate`]), one horizontal sum per row.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let pick = k4_pick();
    let mut acc = [_mm256_setzero_ps(); 2];
    for i in 0..nb {
        let x = w.add(i * Q4_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let (sc, mins) = K4Scales::unpack(x.add(4));
        let mut p = [_mm256_setzero_si256(); 4];
        for (j, pj) in p.iter_mut().enumerate() {
            let q4 = ld256(x.add(16 + 32 * j));
            let lo = _mm256_and_si256(q4, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            let yq = y.add(Q8K_QS + 64 * j);
            *pj = k4_dot_pair(lo, hi, sc.pair(pick, j), yq);
        }
        k4_accumulate(&mut acc, k4_xdm(x), y, add4(p), mins);
    }
    k4_finish(acc)
}

safe_wrapper!(vec_dot_q5_k_q8_k, q5_k, QK_K, Q5_K_BYTES, Q8_K_BYTES);
/// Q5_K x Q8_K: as [`q4_k`], with the fifth bits of `qh` ORed in as 16.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let bit = _mm256_set1_epi8(0x10);
    let pick = k4_pick();
    let mut acc = [_mm256_setzero_ps(); 2];
    for i in 0..nb {
        let x = w.add(i * Q5_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let (sc, mins) = K4Scales::unpack(x.add(4));
        let qh = ld256(x.add(16));
        let mut p = [_mm256_setzero_si256(); 4];
        for (j, pj) in p.iter_mut().enumerate() {
            let q4 = ld256(x.add(48 + 32 * j));
            // Bit 2j of qh -> 0x10 for the low nibbles, bit 2j + 1 for the high ones.
            let hl = _mm256_and_si256(sll16(qh, 4usize.wrapping_sub(2 * j) as i32), bit);
            let hh = _mm256_and_si256(sll16(qh, 3usize.wrapping_sub(2 * j) as i32), bit);
            let lo = _mm256_or_si256(_mm256_and_si256(q4, m4), hl);
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), hh);
            let yq = y.add(Q8K_QS + 64 * j);
            *pj = k4_dot_pair(lo, hi, sc.pair(pick, j), yq);
        }
        k4_accumulate(&mut acc, k4_xdm(x), y, add4(p), mins);
    }
    k4_finish(acc)
}

/// Shift of each u16 lane by `n` bits: left for `n >= 0`, right by `-n` otherwise.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn sll16(v: __m256i, n: i32) -> __m256i {
    if n >= 0 {
        _mm256_sll_epi16(v, _mm_cvtsi32_si128(n))
    } else {
        _mm256_srl_epi16(v, _mm_cvtsi32_si128(-n))
    }
}

safe_wrapper!(vec_dot_q6_k_q8_k, q6_k, QK_K, Q6_K_BYTES, Q8_K_BYTES);
/// Q6_K x Q8_K. Per super-block: 6-bit quants unpacked to unsigned bytes (0..63), dotted per
/// 32 with `vpmaddubsw`, scaled per 16 with `vpmaddwd`; the -32 offset is removed once, in the
/// vector domain, with `32 * scales . bsums`; one FMA per super-block.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q6_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let sc = x.add(192);
        // 32 * (scale . bsum) per i32 lane: the offset of the unsigned quants.
        let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc as *const __m128i));
        let offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums(y)), 5);
        let mut sum0 = _mm256_setzero_si256();
        let mut sum1 = _mm256_setzero_si256();
        for h in 0..2 {
            // Scales 8h..8h+8 as i16 in both 128-bit lanes.
            let sh = k6_scales_half(sc.add(8 * h));
            let ql0 = ld256(x.add(64 * h));
            let ql1 = ld256(x.add(64 * h + 32));
            let qh = ld256(x.add(128 + 32 * h));
            let q0 = _mm256_or_si256(
                _mm256_and_si256(ql0, m4),
                _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4),
            );
            let q1 = _mm256_or_si256(
                _mm256_and_si256(ql1, m4),
                _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c)), 2),
            );
            let q2 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
            );
            let q3 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0xc0u8 as i8)), 2),
            );
            let yq = y.add(Q8K_QS + 128 * h);
            let p0 = _mm256_maddubs_epi16(q0, ld256(yq));
            let p1 = _mm256_maddubs_epi16(q1, ld256(yq.add(32)));
            let p2 = _mm256_maddubs_epi16(q2, ld256(yq.add(64)));
            let p3 = _mm256_maddubs_epi16(q3, ld256(yq.add(96)));
            let p0 = _mm256_madd_epi16(p0, pick_scale_pair(sh, 0));
            let p1 = _mm256_madd_epi16(p1, pick_scale_pair(sh, 1));
            let p2 = _mm256_madd_epi16(p2, pick_scale_pair(sh, 2));
            let p3 = _mm256_madd_epi16(p3, pick_scale_pair(sh, 3));
            sum0 = _mm256_add_epi32(sum0, _mm256_add_epi32(p0, p1));
            sum1 = _mm256_add_epi32(sum1, _mm256_add_epi32(p2, p3));
        }
        let sumi = _mm256_sub_epi32(_mm256_add_epi32(sum0, sum1), offset);
        let d = _mm256_mul_ps(ld_f16x8(x.add(208)), _mm256_set1_ps(ld_f32(y)));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// 8 i8 scales at `p` widened to i16, in both 128-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn k6_scales_half(p: *const u8) -> __m256i {
    let b = _mm_set1_epi64x((p as *const i64).read_unaligned());
    _mm256_cvtepi8_epi16(b)
}

/// From 8 i16 scales in both lanes (`s`): scale `2k` in every i16 of the low lane and `2k + 1`
/// in the high lane (the scales of two consecutive 16-element groups), one `vpshufb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn pick_scale_pair(s: __m256i, k: usize) -> __m256i {
    let lo = (4 * k) as i8;
    let hi = (4 * k + 2) as i8;
    let pat = _mm256_setr_epi8(
        lo,
        lo + 1,
        lo,
        lo + 1,
        lo,
        lo + 1,
        lo,
        lo + 1,
        lo,
        lo + 1,
        lo,
        lo + 1,
        lo,
        lo + 1,
        lo,
        lo + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
        hi,
        hi + 1,
    );
    _mm256_shuffle_epi8(s, pat)
}

/// Q3_K quants of 32-group `s` (0..4) of half `h` as unsigned bytes q + 4 * hbit (0..7) from
/// the low bits `qs` (32 bytes of the half) and the high-bit mask `hm`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q3_k_unpack(qs: __m256i, hm: __m256i, h: usize, s: usize) -> __m256i {
    let q = _mm256_and_si256(srl16(qs, 2 * s), _mm256_set1_epi8(0x03));
    let hb = _mm256_and_si256(
        _mm256_slli_epi16(srl16(hm, 4 * h + s), 2),
        _mm256_set1_epi8(0x04),
    );
    _mm256_or_si256(q, hb)
}

/// The 16 signed Q3_K scales (`scalar::q3_k_scales`) from the 12 packed bytes at `p`, as i8
/// lanes: 4 bits from bytes 0..8 (low nibbles first), 2 bits from bytes 8..12.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q3_k_scales(p: *const u8) -> __m128i {
    const K1: u32 = 0x0303_0303;
    const K2: u32 = 0x0f0f_0f0f;
    let a0 = (p as *const u32).read_unaligned();
    let a1 = (p.add(4) as *const u32).read_unaligned();
    let a2 = (p.add(8) as *const u32).read_unaligned();
    let v = _mm_setr_epi32(
        ((a0 & K2) | ((a2 & K1) << 4)) as i32,
        ((a1 & K2) | (((a2 >> 2) & K1) << 4)) as i32,
        (((a0 >> 4) & K2) | (((a2 >> 4) & K1) << 4)) as i32,
        (((a1 >> 4) & K2) | (((a2 >> 6) & K1) << 4)) as i32,
    );
    _mm_sub_epi8(v, _mm_set1_epi8(32))
}

/// 8 i8 lanes (half `h` of the 16 in `v`) widened to i16, in both 128-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn i8_half_to_i16x2(v: __m128i, h: usize) -> __m256i {
    let b = if h == 0 {
        _mm_unpacklo_epi64(v, v)
    } else {
        _mm_unpackhi_epi64(v, v)
    };
    _mm256_cvtepi8_epi16(b)
}

/// Q2_K: the 8 scales (low 4 bits of the scale bytes) of half `h` as i16 in both lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q2_k_scales_half(x: *const u8, h: usize) -> __m256i {
    let b = _mm_set1_epi64x((x.add(8 * h) as *const i64).read_unaligned());
    _mm256_cvtepu8_epi16(_mm_and_si128(b, _mm_set1_epi8(0x0f)))
}

safe_wrapper!(vec_dot_q3_k_q8_k, q3_k, QK_K, Q3_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q3_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let sc = q3_k_scales(x.add(96));
        let sc16 = _mm256_cvtepi8_epi16(sc);
        // Unsigned u = q + 4 * hbit (0..7), value = u - 4: remove 4 * scales . bsums.
        let offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums(y)), 2);
        let hm = ld256(x);
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let qs = ld256(x.add(32 + 32 * h));
            let sh = i8_half_to_i16x2(sc, h);
            for s in 0..4 {
                let u = q3_k_unpack(qs, hm, h, s);
                let yk = ld256(y.add(Q8K_QS + 128 * h + 32 * s));
                let scv = pick_scale_pair(sh, s);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(u, yk), scv));
            }
        }
        let d = _mm256_mul_ps(ld_f16x8(x.add(108)), _mm256_set1_ps(ld_f32(y)));
        let total = _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, offset));
        acc = _mm256_fmadd_ps(d, total, acc);
    }
    hsum_ps(acc)
}

safe_wrapper!(vec_dot_q2_k_q8_k, q2_k, QK_K, Q2_K_BYTES, Q8_K_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q2_k(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let m3 = _mm256_set1_epi8(0x03);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q2_K_BYTES);
        let y = a.add(i * Q8_K_BYTES);
        let scb = _mm_loadu_si128(x as *const __m128i);
        let mins16 =
            _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(scb, 4), _mm_set1_epi8(0x0f)));
        let summs = _mm256_madd_epi16(mins16, bsums(y));
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let qs = ld256(x.add(16 + 32 * h));
            let sh = q2_k_scales_half(x, h);
            for j in 0..4 {
                let q = _mm256_and_si256(srl16(qs, 2 * j), m3);
                let yk = ld256(y.add(Q8K_QS + 128 * h + 32 * j));
                let scv = pick_scale_pair(sh, j);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, yk), scv));
            }
        }
        // [d, dmin] * yd, each broadcast.
        let dm = _mm_mul_ps(
            _mm_cvtph_ps(_mm_set1_epi32(
                (x.add(80) as *const u32).read_unaligned() as i32
            )),
            _mm_set1_ps(ld_f32(y)),
        );
        let d = _mm256_broadcastss_ps(dm);
        let dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        acc_m = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(summs), acc_m);
    }
    hsum_ps(_mm256_sub_ps(acc, acc_m))
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
/// TQ1_0 x Q8_K, all in vector registers. Trit `l` of a byte `q` is the top base-3 digit of
/// `t = q * 3^l mod 256` (ggml's packing): digit = (t >= 86) + (t >= 171), in 0..2 with value
/// digit - 1, so `sum(digit * y) - sum(y)` (the latter from the bsums) is the block dot.
/// `t` is advanced by 3 with two byte adds. Eight 32-digit vectors per block: five from
/// `qs[0..32]` (activations 32l..), then `qs[32..48]` as [l | l + 1] lane pairs (activations
/// 160 + 16l..), the last one with the `qh` trits (activations 240..256) in its high lane.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tq1_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * TQ1_0_BYTES);
        let y = a.add(i * Q8_K_BYTES).add(Q8K_QS);
        // i16 sums of digit * y: at most 8 vectors x 2 x 2 x 127 per lane, no overflow.
        let mut s16 = _mm256_setzero_si256();
        let mut t = ld256(x);
        for l in 0..5 {
            s16 = _mm256_add_epi16(
                s16,
                _mm256_maddubs_epi16(trit_digits(t), ld256(y.add(32 * l))),
            );
            t = times3(t);
        }
        let q = _mm_loadu_si128(x.add(32) as *const __m128i);
        let q3 = _mm_add_epi8(q, _mm_add_epi8(q, q));
        let t01 = _mm256_set_m128i(q3, q);
        let t23 = times3(times3(t01));
        let t45 = times3(times3(t23));
        let t4h = _mm256_inserti128_si256(t45, tq1_qh_trits(x.add(48)), 1);
        for (k, tk) in [t01, t23, t4h].into_iter().enumerate() {
            let yk = ld256(y.add(160 + 32 * k));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(trit_digits(tk), yk));
        }
        let ysum = _mm256_madd_epi16(bsums(y.sub(Q8K_QS)), ones);
        let sumi = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), ysum);
        let d = _mm256_mul_ps(ld_f16x8(x.add(52)), _mm256_set1_ps(ld_f32(y.sub(Q8K_QS))));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// Each byte times 3 (mod 256).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn times3(t: __m256i) -> __m256i {
    _mm256_add_epi8(t, _mm256_add_epi8(t, t))
}

/// Top base-3 digit (0..2) of each byte: (t >= 86) + (t >= 171), unsigned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn trit_digits(t: __m256i) -> __m256i {
    let ts = _mm256_xor_si256(t, _mm256_set1_epi8(0x80u8 as i8));
    // Signed compares on t - 128: t >= 86 <=> t - 128 > -43; t >= 171 <=> t - 128 > 42.
    let m1 = _mm256_cmpgt_epi8(ts, _mm256_set1_epi8(-43));
    let m2 = _mm256_cmpgt_epi8(ts, _mm256_set1_epi8(42));
    _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(m1, m2))
}

/// The `t` bytes of the 16 `qh` trits (4 bytes at `p`, trit l of byte j = activation
/// 240 + 4l + j): dword l holds the 4 bytes times 3^l (mod 256 per byte).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tq1_qh_trits(p: *const u8) -> __m128i {
    let v = _mm_set1_epi32((p as *const u32).read_unaligned() as i32);
    let c = _mm_setr_epi16(1, 1, 3, 3, 9, 9, 27, 27);
    // Byte products from 16-bit ones: even bytes from the low half, odd ones from the high.
    let even = _mm_and_si128(_mm_mullo_epi16(v, c), _mm_set1_epi16(0x00ff));
    let odd = _mm_mullo_epi16(_mm_and_si128(v, _mm_set1_epi16(0xff00u16 as i16)), c);
    _mm_or_si128(even, odd)
}
