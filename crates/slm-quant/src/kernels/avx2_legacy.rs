//! AVX2 dot products of the 32-element formats: Q4_0, Q5_0, Q8_0, IQ4_NL (with Q8_0) and Q4_1,
//! Q5_1 (with Q8_1). Each matches the scalar reference of the same name in `scalar.rs` (exact
//! integer block sums; only the float accumulation order differs). Technique as in llama.cpp's
//! `ggml-cpu/arch/x86/quants.c`: unpack to 32 bytes, `vpmaddubsw` (u8 x i8 -> i16 pairs),
//! `vpmaddwd` with ones (-> i32), convert and FMA with the block scale product.
//!
//! The Q8_0-paired types (Q4_0, Q5_0, Q8_0, IQ4_NL) go one group of four blocks per step
//! (`dot_4blocks`) and read the activation row's per-group extras (`layout`): the four blocks'
//! lanes are reduced with unpacks, the activation scales come as f32 (one `vcvtph2ps` for the
//! weight scales, one multiply), one FMA per group. Q4_0 and Q5_0 dot their quants as UNSIGNED
//! bytes (value + 8 / + 16: no `vpsignb` pair, and Q5_0's fifth bit is one AND + OR) and
//! subtract `offset * sum(y)` per group from the activation sums, exactly; their i16 pair sums
//! are reduced in i16 before one `vpmaddwd` (`reduce4_epi16`). In-cache, one thread, 2048-wide
//! rows (`benches/kernels.rs`, this Zen 4 VM), against the sign-trick kernels of commit 6cfd264:
//! Q5_0 12.4 -> 10.05 ns per 256 weights, its four-token form 33 -> 50 GMAC/s. (Without the
//! activation sums, the best Q5_0 form is `nibble . y - 16 * sum(y where the bit is clear)`:
//! 12.4 -> 11.6. Gathering the f16 scales with `vpinsrw` from memory was slower than the scalar
//! gather.)
//!
//! Safety: the public functions are safe wrappers; they are only placed in the AVX2 dispatch
//! table, which exists only when the CPU reports AVX2+FMA+F16C, and they check the row lengths
//! before any raw-pointer read.

use super::check_rows;
use super::layout::*;
use std::arch::x86_64::*;

/// f16 at `p` (unaligned) -> f32, in integer registers for normal numbers. Not F16C: LLVM
/// lowers a one-lane `vcvtph2ps` to `vpinsrw` merging into whatever register it likes (it picked
/// the accumulator), which chained every block on the previous FMA (3x slower loops).
#[inline(always)]
pub(super) unsafe fn ld_f16(p: *const u8) -> f32 {
    let h = (p as *const u16).read_unaligned();
    let e = h & 0x7c00;
    if e != 0 && e != 0x7c00 {
        let bits = (((h & 0x8000) as u32) << 16) | ((((h & 0x7fff) as u32) + 0x1_c000) << 13);
        f32::from_bits(bits)
    } else {
        super::half::f16_to_f32(h)
    }
}

/// f16 at `p` (unaligned) broadcast to 8 f32 lanes (`vpbroadcastw` + `vcvtph2ps`: full-width
/// writes, so no false dependency on an older register).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn ld_f16x8(p: *const u8) -> __m256 {
    let h = (p as *const u16).read_unaligned();
    _mm256_cvtph_ps(_mm_set1_epi16(h as i16))
}

/// Product of the f16 scales at `x` and `y`, broadcast (one-lane converts are done on
/// broadcast words, so every register write is full-width).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dd(x: *const u8, y: *const u8) -> __m256 {
    let hx = _mm_set1_epi16((x as *const u16).read_unaligned() as i16);
    let hy = _mm_set1_epi16((y as *const u16).read_unaligned() as i16);
    _mm256_broadcastss_ps(_mm_mul_ps(_mm_cvtph_ps(hx), _mm_cvtph_ps(hy)))
}

/// For Q4_1/Q5_1 x Q8_1: the f16 pairs (d, m) at `x` and (d, s) at `y` converted at once:
/// returns `[dx*dy, mx*sy, dx*dy, mx*sy]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dm_ds(x: *const u8, y: *const u8) -> __m128 {
    let px = _mm_set1_epi32((x as *const u32).read_unaligned() as i32);
    let py = _mm_set1_epi32((y as *const u32).read_unaligned() as i32);
    _mm_mul_ps(_mm_cvtph_ps(px), _mm_cvtph_ps(py))
}

/// Horizontal sum of 8 floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum_ps(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    let h = _mm_add_ss(h, _mm_movehdup_ps(h));
    _mm_cvtss_f32(h)
}

/// Horizontal sum of 8 i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b0100_1110));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b1011_0001));
    _mm_cvtsi128_si32(s)
}

/// 16 bytes at `p` -> 32 nibbles: low nibbles in the low 128-bit lane (elements 0..16), high
/// nibbles in the high lane (elements 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles32(p: *const u8) -> __m256i {
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
pub(super) unsafe fn dot_u8_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// Sum of products of 32 i8 and 32 i8 (neither -128 in `y`) as 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256i {
    dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

macro_rules! safe_wrapper {
    ($name:ident, $inner:ident, $bs:expr, $wb:expr, $ab:expr) => {
        /// See the module header; matches `scalar::` function of the same name.
        pub fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = check_rows(n, w, a, $bs, $wb, $ab);
            // SAFETY: only reachable through the AVX2 table (CPU features checked at table
            // construction); `check_rows` proved `w`/`a` hold `nb` whole blocks.
            unsafe { $inner(nb, w.as_ptr(), a.as_ptr()) }
        }
    };
}
pub(super) use safe_wrapper;

/// A safe wrapper for a kernel with Q8_0 activations in the compute layout (checks the
/// per-group extras too).
macro_rules! safe_wrapper_q8_0 {
    ($name:ident, $inner:ident, $wb:expr) => {
        /// See the module header; matches `scalar::` function of the same name.
        pub fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = super::check_rows_act(n, w, a, QK, $wb, super::ActType::Q8_0);
            // SAFETY: only reachable through a SIMD table (CPU features checked at table
            // construction); `check_rows_act` proved `w` holds `nb` whole blocks and `a` the
            // `nb` Q8_0 blocks and their group extras.
            unsafe { $inner(nb, w.as_ptr(), a.as_ptr()) }
        }
    };
}
pub(super) use safe_wrapper_q8_0;

/// The body of a dot over `$nb` 32-element blocks of `$wb` bytes (f16 scale first) with a Q8_0
/// activation row in the compute layout, one group of four blocks per step:
/// `$dot($unpack(x), y)` gives a block's lanes, which `$reduce` turns into the four blocks'
/// half-block totals with unpacks (`reduce4_epi32` from i32 lanes, `reduce4_epi16` from i16
/// pair sums; `vphaddd` issues at 1 per 2 cycles); unsigned weights with offset
/// `1 << $shift` (`$shift` > 0) get `offset * sum(y)` removed per group from the activation
/// sums; one FMA applies the four scale products ([`group_scales`]). Blocks past the last
/// whole group: `$block(x, y)` (self-contained) and [`dd`].
macro_rules! dot_4blocks {
    ($nb:expr, $w:expr, $a:expr, $wb:expr, $unpack:ident, $dot:ident, $reduce:ident, $shift:expr, $block:ident) => {{
        let (nb, w, a) = ($nb, $w, $a);
        let ext = a.add(nb * Q8_0_BYTES);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i + 4 <= nb {
            let x = w.add(i * $wb);
            let y = a.add(i * Q8_0_BYTES);
            let g = ext.add(i / 4 * Q8_0_GROUP_EXTRA);
            let p = $reduce(
                $dot($unpack(x), y),
                $dot($unpack(x.add($wb)), y.add(Q8_0_BYTES)),
                $dot($unpack(x.add(2 * $wb)), y.add(2 * Q8_0_BYTES)),
                $dot($unpack(x.add(3 * $wb)), y.add(3 * Q8_0_BYTES)),
            );
            let p = remove_offset(p, g, $shift);
            acc = _mm256_fmadd_ps(group_scales(x, $wb, g), _mm256_cvtepi32_ps(p), acc);
            i += 4;
        }
        while i < nb {
            let x = w.add(i * $wb);
            let y = a.add(i * Q8_0_BYTES);
            acc = _mm256_fmadd_ps(dd(x, y), _mm256_cvtepi32_ps($block(x, y)), acc);
            i += 1;
        }
        hsum_ps(acc)
    }};
}
pub(super) use dot_4blocks;

safe_wrapper_q8_0!(vec_dot_q4_0_q8_0, q4_0, Q4_0_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    dot_4blocks!(
        nb,
        w,
        a,
        Q4_0_BYTES,
        q4_0_unpack,
        maddubs_at,
        reduce4_epi16,
        3,
        q4_0_block
    )
}

/// The 32 Q4_0 quants of the block at `x` as unsigned bytes (value + 8).
#[inline(always)]
unsafe fn q4_0_unpack(x: *const u8) -> __m256i {
    nibbles32_bcast(x.add(2))
}

/// Integer dot of one Q4_0 block at `x` with one Q8_0 block at `y` (8 i32 lanes).
#[inline(always)]
unsafe fn q4_0_block(x: *const u8, y: *const u8) -> __m256i {
    let qx = _mm256_sub_epi8(nibbles32_bcast(x.add(2)), _mm256_set1_epi8(8));
    dot_i8_i8(qx, _mm256_loadu_si256(y.add(2) as *const __m256i))
}

safe_wrapper!(vec_dot_q4_1_q8_1, q4_1, QK, Q4_1_BYTES, Q8_1_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = _mm_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q4_1_BYTES);
        let y = a.add(i * Q8_1_BYTES);
        let p = dm_ds(x, y);
        summs = _mm_add_ps(summs, p);
        let d = _mm256_broadcastss_ps(p);
        let qx = nibbles32(x.add(4));
        let qy = _mm256_loadu_si256(y.add(4) as *const __m256i);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(qx, qy)), acc);
    }
    // Lane 1 of `summs` holds sum(m * s).
    hsum_ps(acc) + _mm_cvtss_f32(_mm_movehdup_ps(summs))
}

safe_wrapper_q8_0!(vec_dot_q5_0_q8_0, q5_0, Q5_0_BYTES);
/// Q5_0 x Q8_0: the 5-bit quants as unsigned bytes (value + 16, no sign trick), the offset
/// removed per group from the activation sums (`dot_4blocks`).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    dot_4blocks!(
        nb,
        w,
        a,
        Q5_0_BYTES,
        q5_0_unpack,
        maddubs_at,
        reduce4_epi16,
        4,
        q5_0_block
    )
}

/// The 32 Q5_0 quants of the block at `x` as unsigned bytes `nibble | bit << 4` (value + 16).
#[inline(always)]
unsafe fn q5_0_unpack(x: *const u8) -> __m256i {
    let qh = (x.add(2) as *const u32).read_unaligned();
    let hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
    _mm256_or_si256(nibbles32_bcast(x.add(6)), hi)
}

/// `vpmaddubsw` of unsigned weight bytes (< 32) with the Q8_0 block at `y`: 16 i16 pair sums,
/// each |.| <= 2 * 31 * 128 (reduced by [`reduce4_epi16`]).
#[inline(always)]
unsafe fn maddubs_at(q: __m256i, y: *const u8) -> __m256i {
    _mm256_maddubs_epi16(q, _mm256_loadu_si256(y.add(2) as *const __m256i))
}

/// [`reduce4_epi32`] for four blocks' i16 pair sums from [`maddubs_at`]: two unpack-and-add
/// levels in i16 (each result sums four pair sums: |.| <= 31744, no overflow), then one
/// `vpmaddwd`: 10 ops instead of 4 `vpmaddwd` + 9.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn reduce4_epi16(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    // Dwords hold two i16 of one block: [A B A B] per lane, then [A B C D].
    let ab = _mm256_add_epi16(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    let cd = _mm256_add_epi16(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    let abcd = _mm256_add_epi16(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
    _mm256_madd_epi16(abcd, _mm256_set1_epi16(1))
}

/// [`dot_i8_i8`] of signed weight bytes with the Q8_0 block at `y`.
#[inline(always)]
unsafe fn dot_i8_at(q: __m256i, y: *const u8) -> __m256i {
    dot_i8_i8(q, _mm256_loadu_si256(y.add(2) as *const __m256i))
}

/// `p - (sums << shift)` with the group sums at `g` (`shift` 0: `p`): removes the offset
/// `1 << shift` of unsigned quants, exactly (the lanes equal a signed dot's).
#[inline(always)]
pub(super) unsafe fn remove_offset(p: __m256i, g: *const u8, shift: i32) -> __m256i {
    if shift == 0 {
        return p;
    }
    let sums = _mm256_loadu_si256(g as *const __m256i);
    _mm256_sub_epi32(p, _mm256_sll_epi32(sums, _mm_cvtsi32_si128(shift)))
}

/// The scale products `dx_k * dy_k` of the group of four blocks at `x` (stride `sx`, f16 scale
/// first), `dy` from the activation group extras at `g`, in lanes k and k + 4.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn group_scales(x: *const u8, sx: usize, g: *const u8) -> __m256 {
    let dx = _mm256_cvtph_ps(_mm_set1_epi64x(gather4_u16(x, sx) as i64));
    _mm256_mul_ps(dx, _mm256_loadu_ps(g.add(32) as *const f32))
}

/// Integer dot of one Q5_0 block at `x` with one Q8_0 block at `y` (8 i32 lanes).
#[inline(always)]
unsafe fn q5_0_block(x: *const u8, y: *const u8) -> __m256i {
    let qh = (x.add(2) as *const u32).read_unaligned();
    // value - 16 = nibble | 0xf0 where the 5th bit is clear (as i8), nibble where set.
    let hi = _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(0xf0u8 as i8));
    let qx = _mm256_or_si256(nibbles32_bcast(x.add(6)), hi);
    let qy = _mm256_loadu_si256(y.add(2) as *const __m256i);
    dot_i8_i8(qx, qy)
}

/// As [`nibbles32`], from a 128-bit broadcast load and one variable shift (fewer issued ops).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles32_bcast(p: *const u8) -> __m256i {
    let t = _mm256_broadcastsi128_si256(_mm_loadu_si128(p as *const __m128i));
    let b = _mm256_srlv_epi64(t, _mm256_setr_epi64x(0, 0, 4, 4));
    _mm256_and_si256(b, _mm256_set1_epi8(0x0f))
}

/// The f16 at `p`, `p + s`, `p + 2s`, `p + 3s` packed in one u64 (little-endian).
#[inline(always)]
unsafe fn gather4_u16(p: *const u8, s: usize) -> u64 {
    let h = |k: usize| (p.add(k * s) as *const u16).read_unaligned() as u64;
    h(0) | (h(1) << 16) | (h(2) << 32) | (h(3) << 48)
}

/// Four vectors of 8 i32 -> `[A_lo B_lo C_lo D_lo | A_hi B_hi C_hi D_hi]`, where `A_lo` is the
/// total of A's low 128-bit lane: lanes k and k + 4 together hold vector k's total.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn reduce4_epi32(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    let ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    let cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd))
}

safe_wrapper!(vec_dot_q5_1_q8_1, q5_1, QK, Q5_1_BYTES, Q8_1_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = _mm_setzero_ps();
    for i in 0..nb {
        let x = w.add(i * Q5_1_BYTES);
        let y = a.add(i * Q8_1_BYTES);
        let p = dm_ds(x, y);
        summs = _mm_add_ps(summs, p);
        let d = _mm256_broadcastss_ps(p);
        let qh = (x.add(4) as *const u32).read_unaligned();
        let hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
        let qx = _mm256_or_si256(nibbles32(x.add(8)), hi);
        let qy = _mm256_loadu_si256(y.add(4) as *const __m256i);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(qx, qy)), acc);
    }
    // Lane 1 of `summs` holds sum(m * s).
    hsum_ps(acc) + _mm_cvtss_f32(_mm_movehdup_ps(summs))
}

safe_wrapper_q8_0!(vec_dot_q8_0_q8_0, q8_0, Q8_0_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    dot_4blocks!(
        nb,
        w,
        a,
        Q8_0_BYTES,
        q8_0_unpack,
        dot_i8_at,
        reduce4_epi32,
        0,
        q8_0_block
    )
}

/// The 32 Q8_0 weights of the block at `x`.
#[inline(always)]
unsafe fn q8_0_unpack(x: *const u8) -> __m256i {
    _mm256_loadu_si256(x.add(2) as *const __m256i)
}

/// Integer dot of two Q8_0 blocks (weights `x`, activations `y`, never -128) as 8 i32 lanes.
#[inline(always)]
unsafe fn q8_0_block(x: *const u8, y: *const u8) -> __m256i {
    dot_i8_at(q8_0_unpack(x), y)
}

safe_wrapper_q8_0!(vec_dot_iq4_nl_q8_0, iq4_nl, IQ4_NL_BYTES);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn iq4_nl(nb: usize, w: *const u8, a: *const u8) -> f32 {
    dot_4blocks!(
        nb,
        w,
        a,
        IQ4_NL_BYTES,
        iq4_nl_unpack,
        dot_i8_at,
        reduce4_epi32,
        0,
        iq4_nl_block
    )
}

/// The 32 IQ4_NL values of the block at `x` (signed bytes).
#[inline(always)]
unsafe fn iq4_nl_unpack(x: *const u8) -> __m256i {
    _mm256_shuffle_epi8(kvalues_table(), nibbles32_bcast(x.add(2)))
}

/// Integer dot of one IQ4_NL block at `x` with one Q8_0 block at `y` (8 i32 lanes).
#[inline(always)]
unsafe fn iq4_nl_block(x: *const u8, y: *const u8) -> __m256i {
    dot_i8_at(iq4_nl_unpack(x), y)
}

/// `KVALUES_IQ4NL` in both 128-bit lanes, for `vpshufb` lookups.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn kvalues_table() -> __m256i {
    let t = _mm_loadu_si128(KVALUES_IQ4NL.as_ptr() as *const __m128i);
    _mm256_set_m128i(t, t)
}

/// The four-token form of [`dot_4blocks`]: one weight row, four activation rows at `a + k *
/// stride`. The weights of a group are unpacked once; each token then goes through exactly the
/// single-row kernel's operations in the same order, so every result is bit-identical to the
/// single-row kernel's: a token's logits do not depend on the batch it is in.
macro_rules! dot4_4blocks {
    ($nb:expr, $w:expr, $a:expr, $stride:expr, $wb:expr, $unpack:ident, $dot:ident, $reduce:ident, $shift:expr, $block:ident) => {{
        let (nb, w, a, stride) = ($nb, $w, $a, $stride);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 4 <= nb {
            let x = w.add(i * $wb);
            let q = [
                $unpack(x),
                $unpack(x.add($wb)),
                $unpack(x.add(2 * $wb)),
                $unpack(x.add(3 * $wb)),
            ];
            for (k, s) in acc.iter_mut().enumerate() {
                let y = a.add(k * stride + i * Q8_0_BYTES);
                let g = a.add(k * stride + nb * Q8_0_BYTES + i / 4 * Q8_0_GROUP_EXTRA);
                let p = $reduce(
                    $dot(q[0], y),
                    $dot(q[1], y.add(Q8_0_BYTES)),
                    $dot(q[2], y.add(2 * Q8_0_BYTES)),
                    $dot(q[3], y.add(3 * Q8_0_BYTES)),
                );
                let p = remove_offset(p, g, $shift);
                *s = _mm256_fmadd_ps(group_scales(x, $wb, g), _mm256_cvtepi32_ps(p), *s);
            }
            i += 4;
        }
        while i < nb {
            let x = w.add(i * $wb);
            for (k, s) in acc.iter_mut().enumerate() {
                let y = a.add(k * stride + i * Q8_0_BYTES);
                *s = _mm256_fmadd_ps(dd(x, y), _mm256_cvtepi32_ps($block(x, y)), *s);
            }
            i += 1;
        }
        [
            hsum_ps(acc[0]),
            hsum_ps(acc[1]),
            hsum_ps(acc[2]),
            hsum_ps(acc[3]),
        ]
    }};
}

/// Q4_0 x Q8_0 for four tokens, bit-identical to [`vec_dot_q4_0_q8_0`] per token.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_0_x4(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    dot4_4blocks!(
        nb,
        w,
        a,
        stride,
        Q4_0_BYTES,
        q4_0_unpack,
        maddubs_at,
        reduce4_epi16,
        3,
        q4_0_block
    )
}

/// Q5_0 x Q8_0 for four tokens, bit-identical to [`vec_dot_q5_0_q8_0`] per token.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q5_0_x4(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    dot4_4blocks!(
        nb,
        w,
        a,
        stride,
        Q5_0_BYTES,
        q5_0_unpack,
        maddubs_at,
        reduce4_epi16,
        4,
        q5_0_block
    )
}

/// IQ4_NL x Q8_0 for four tokens, bit-identical to [`vec_dot_iq4_nl_q8_0`] per token.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn iq4_nl_x4(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    dot4_4blocks!(
        nb,
        w,
        a,
        stride,
        IQ4_NL_BYTES,
        iq4_nl_unpack,
        dot_i8_at,
        reduce4_epi32,
        0,
        iq4_nl_block
    )
}
