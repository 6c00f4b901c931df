//! Activation quantizers: a row of f32 to Q8_0, Q8_1 or Q8_K (the formats the weight types are
//! dotted with). The scalar versions are transcriptions of llama.cpp's reference quantizers
//! (`quantize_row_q8_0_ref`, `quantize_row_q8_1_ref`, `quantize_row_q8_K_ref` in
//! `ggml/src/ggml-quants.c`); the AVX2 versions produce the SAME BYTES:
//!
//! - Q8_0/Q8_1 compute `d = amax / 127` and `id = 1 / d` in scalar f32 exactly as the reference
//!   does (ggml's own AVX2 quantizer uses `127 / amax` and round-half-even, which can differ by
//!   one in rare elements), multiply in f32 (the same IEEE product), and round half AWAY from zero
//!   like `roundf`: `t = trunc(v); t + (|v - t| >= 0.5 ? sign(v) : 0)`, which is exact.
//! - Q8_K rounds half to EVEN, like the reference's `nearest_int` (the 1.5 * 2^23 trick), which
//!   is what `vroundps` with round-to-nearest does; `max` is the first element of largest
//!   magnitude, as in the reference's strict `>` scan.

use super::half::f32_to_f16;
use super::layout::*;

fn check(x: &[f32], dst: &[u8], bs: usize, bb: usize) -> usize {
    assert!(
        x.len().is_multiple_of(bs),
        "row length {} is not a multiple of {bs}",
        x.len()
    );
    let nb = x.len() / bs;
    assert!(dst.len() >= nb * bb, "destination too short");
    nb
}

/// Writes the per-group extras of a Q8_0 activation row (block sums and f32 scales, see
/// `layout`) after its `nb` blocks, if `dst` has room for them (a plain Q8_0 row is left as is).
/// Integer sums and exact f16 -> f32 conversions: the same bytes on every level.
pub(super) fn write_q8_0_extras(nb: usize, dst: &mut [u8]) {
    if dst.len() < q8_0_act_bytes(nb) {
        return;
    }
    let (blocks, extra) = dst.split_at_mut(nb * Q8_0_BYTES);
    for (g, out) in extra
        .chunks_exact_mut(Q8_0_GROUP_EXTRA)
        .take(nb / 4)
        .enumerate()
    {
        for k in 0..4 {
            let b = &blocks[(4 * g + k) * Q8_0_BYTES..(4 * g + k + 1) * Q8_0_BYTES];
            let sum =
                |r: std::ops::Range<usize>| -> i32 { b[r].iter().map(|&q| q as i8 as i32).sum() };
            let d = super::half::f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            out[4 * k..4 * k + 4].copy_from_slice(&sum(2..18).to_le_bytes());
            out[16 + 4 * k..20 + 4 * k].copy_from_slice(&sum(18..34).to_le_bytes());
            out[32 + 4 * k..36 + 4 * k].copy_from_slice(&d.to_le_bytes());
            out[48 + 4 * k..52 + 4 * k].copy_from_slice(&d.to_le_bytes());
        }
    }
}

/// Reference f32 -> Q8_0 (`quantize_row_q8_0_ref`), plus the activation extras
/// ([`write_q8_0_extras`]) when `dst` is `ActType::compute_bytes` long.
pub fn quantize_row_q8_0(x: &[f32], dst: &mut [u8]) {
    let nb = check(x, dst, QK, Q8_0_BYTES);
    quantize_blocks_q8_0(nb, x, dst);
    write_q8_0_extras(nb, dst);
}

fn quantize_blocks_q8_0(nb: usize, x: &[f32], dst: &mut [u8]) {
    for i in 0..nb {
        let xb = &x[i * QK..(i + 1) * QK];
        let y = &mut dst[i * Q8_0_BYTES..(i + 1) * Q8_0_BYTES];
        let amax = xb
            .iter()
            .fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        for j in 0..QK {
            y[2 + j] = (xb[j] * id).round() as i8 as u8;
        }
    }
}

/// Reference f32 -> Q8_1 (`quantize_row_q8_1_ref`).
pub fn quantize_row_q8_1(x: &[f32], dst: &mut [u8]) {
    let nb = check(x, dst, QK, Q8_1_BYTES);
    for i in 0..nb {
        let xb = &x[i * QK..(i + 1) * QK];
        let y = &mut dst[i * Q8_1_BYTES..(i + 1) * Q8_1_BYTES];
        let amax = xb
            .iter()
            .fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        let mut sum = 0i32;
        for j in 0..QK {
            let q = (xb[j] * id).round() as i8;
            sum += q as i32;
            y[4 + j] = q as u8;
        }
        y[2..4].copy_from_slice(&f32_to_f16(sum as f32 * d).to_le_bytes());
    }
}

/// The reference's `nearest_int`: round half to even via the 1.5 * 2^23 trick.
#[inline]
fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Reference f32 -> Q8_K (`quantize_row_q8_K_ref`).
pub fn quantize_row_q8_k(x: &[f32], dst: &mut [u8]) {
    let nb = check(x, dst, QK_K, Q8_K_BYTES);
    for i in 0..nb {
        let xb = &x[i * QK_K..(i + 1) * QK_K];
        let y = &mut dst[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            y.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for j in 0..QK_K {
            y[Q8K_QS + j] = nearest_int(iscale * xb[j]).min(127) as i8 as u8;
        }
        finish_q8_k(y, 1.0 / iscale);
    }
}

/// Writes `d` and the 16 block sums of an already filled Q8_K `qs`.
#[inline]
fn finish_q8_k(y: &mut [u8], d: f32) {
    y[0..4].copy_from_slice(&d.to_le_bytes());
    for j in 0..QK_K / 16 {
        let s: i32 = y[Q8K_QS + 16 * j..Q8K_QS + 16 * j + 16]
            .iter()
            .map(|&b| b as i8 as i32)
            .sum();
        y[Q8K_BSUMS + 2 * j..Q8K_BSUMS + 2 * j + 2].copy_from_slice(&(s as i16).to_le_bytes());
    }
}

/// Copies an f32 row as little-endian bytes (the "activation format" of the float weight types).
pub fn quantize_row_f32(x: &[f32], dst: &mut [u8]) {
    assert!(dst.len() >= 4 * x.len(), "destination too short");
    for (d, v) in dst.chunks_exact_mut(4).zip(x) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    //! AVX2 activation quantizers, byte-identical to the scalar references above.
    use super::*;
    use std::arch::x86_64::*;

    /// |v| max over 32 floats at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn amax32(p: *const f32) -> f32 {
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_setzero_ps();
        for k in 0..4 {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * k))));
        }
        let h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_max_ss(h, _mm_movehdup_ps(h));
        _mm_cvtss_f32(h)
    }

    /// `roundf` (half away from zero) of 8 floats, as i32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn round_away(v: __m256) -> __m256i {
        let t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        let frac = _mm256_sub_ps(v, t);
        let sign = _mm256_set1_ps(-0.0);
        let ge = _mm256_cmp_ps(
            _mm256_andnot_ps(sign, frac),
            _mm256_set1_ps(0.5),
            _CMP_GE_OQ,
        );
        let one = _mm256_or_ps(_mm256_set1_ps(1.0), _mm256_and_ps(sign, v));
        _mm256_cvtps_epi32(_mm256_add_ps(t, _mm256_and_ps(ge, one)))
    }

    /// Packs 4 x 8 i32 (each in -128..=127) into 32 i8 in order.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pack32(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        let ab = _mm256_packs_epi32(a, b);
        let cd = _mm256_packs_epi32(c, d);
        let r = _mm256_packs_epi16(ab, cd);
        // packs interleave 128-bit lanes: restore element order.
        _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }

    /// 32 quants of `x * id` rounded like `roundf`, plus their sum.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn quant32(p: *const f32, id: f32, out: *mut u8) -> i32 {
        let idv = _mm256_set1_ps(id);
        let q0 = round_away(_mm256_mul_ps(_mm256_loadu_ps(p), idv));
        let q1 = round_away(_mm256_mul_ps(_mm256_loadu_ps(p.add(8)), idv));
        let q2 = round_away(_mm256_mul_ps(_mm256_loadu_ps(p.add(16)), idv));
        let q3 = round_away(_mm256_mul_ps(_mm256_loadu_ps(p.add(24)), idv));
        _mm256_storeu_si256(out as *mut __m256i, pack32(q0, q1, q2, q3));
        let s = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
        let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b0100_1110));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b1011_0001));
        _mm_cvtsi128_si32(s)
    }

    /// AVX2 f32 -> Q8_0, same bytes as [`super::quantize_row_q8_0`].
    pub fn quantize_row_q8_0(x: &[f32], dst: &mut [u8]) {
        let nb = check(x, dst, QK, Q8_0_BYTES);
        // SAFETY: only reachable through the AVX2 dispatch table (built after feature detection);
        // `check` proved `x` holds nb*32 floats and `dst` nb*34 bytes.
        unsafe { q8_0(nb, x.as_ptr(), dst.as_mut_ptr()) }
        write_q8_0_extras(nb, dst);
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0(nb: usize, x: *const f32, y: *mut u8) {
        for i in 0..nb {
            let p = x.add(i * QK);
            let o = y.add(i * Q8_0_BYTES);
            let amax = amax32(p);
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let h = f32_to_f16(d).to_le_bytes();
            *o = h[0];
            *o.add(1) = h[1];
            quant32(p, id, o.add(2));
        }
    }

    /// AVX2 f32 -> Q8_1, same bytes as [`super::quantize_row_q8_1`].
    pub fn quantize_row_q8_1(x: &[f32], dst: &mut [u8]) {
        let nb = check(x, dst, QK, Q8_1_BYTES);
        // SAFETY: as in `quantize_row_q8_0` (nb*36 destination bytes checked).
        unsafe { q8_1(nb, x.as_ptr(), dst.as_mut_ptr()) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_1(nb: usize, x: *const f32, y: *mut u8) {
        for i in 0..nb {
            let p = x.add(i * QK);
            let o = y.add(i * Q8_1_BYTES);
            let amax = amax32(p);
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let h = f32_to_f16(d).to_le_bytes();
            *o = h[0];
            *o.add(1) = h[1];
            let sum = quant32(p, id, o.add(4));
            let s = f32_to_f16(sum as f32 * d).to_le_bytes();
            *o.add(2) = s[0];
            *o.add(3) = s[1];
        }
    }

    /// AVX2 f32 -> Q8_K, same bytes as [`super::quantize_row_q8_k`].
    pub fn quantize_row_q8_k(x: &[f32], dst: &mut [u8]) {
        let nb = check(x, dst, QK_K, Q8_K_BYTES);
        for i in 0..nb {
            let xb = &x[i * QK_K..(i + 1) * QK_K];
            let y = &mut dst[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
            // SAFETY: as in `quantize_row_q8_0`; `xb` has 256 floats, `y` 292 bytes.
            let amax = unsafe {
                let mut m = 0.0f32;
                for k in 0..8 {
                    m = m.max(amax32(xb.as_ptr().add(32 * k)));
                }
                m
            };
            if amax == 0.0 {
                y.fill(0);
                continue;
            }
            // First element of largest magnitude (the reference's strict `>` scan).
            let max = xb.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
            let iscale = -127.0 / max;
            // SAFETY: as above.
            unsafe { q8_k_quants(xb.as_ptr(), iscale, y.as_mut_ptr().add(Q8K_QS)) };
            finish_q8_k(y, 1.0 / iscale);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_k_quants(p: *const f32, iscale: f32, out: *mut u8) {
        let s = _mm256_set1_ps(iscale);
        let lim = _mm256_set1_epi32(127);
        for k in 0..8 {
            let mut q = [_mm256_setzero_si256(); 4];
            for (j, qj) in q.iter_mut().enumerate() {
                let v = _mm256_mul_ps(_mm256_loadu_ps(p.add(32 * k + 8 * j)), s);
                let r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                *qj = _mm256_min_epi32(_mm256_cvtps_epi32(r), lim);
            }
            _mm256_storeu_si256(
                out.add(32 * k) as *mut __m256i,
                pack32(q[0], q[1], q[2], q[3]),
            );
        }
    }
}
