//! AVX2 "one weight row x 4 activation rows" dot products for prefill: the weight blocks are
//! loaded and unpacked once and dotted with four activation rows, which saves most of the
//! unpacking work of Q5_0/Q6_K/Q4_K. Same integer sums and scale products as the single-row
//! kernels (`avx2_legacy`, `avx2_kquants`), so results match `scalar.rs` within float order;
//! every kernel here is bit-identical to its single-row kernel (same float operations).
//! In-cache four-token GMAC/s on the Zen 4 dev VM (2048-wide rows), commit 6cfd264 -> now:
//! Q5_0 32 -> 50, Q4_0 38 -> 60, IQ4_NL 37 -> 43 (group extras, `avx2_legacy`); Q4_K 50-56
//! both (it varies from run to run with the buffers' placement).
//! Safety: as in `avx2_legacy` (AVX2 table only; lengths checked before any pointer read).

use super::avx2_kquants::{
    bsums, k4_accumulate, k4_dot_pair, k4_finish, k4_pick, k4_xdm, k6_scales_half, pick_scale_pair,
    K4Scales,
};
use super::avx2_legacy::{
    dot_u8_i8, hsum_ps, iq4_nl_x4, kvalues_table, ld_f16x8, nibbles32, q4_0_x4, q5_0_x4,
};
use super::layout::*;
use super::ActType;
use std::arch::x86_64::*;

/// Checks `n`, `w` and the four activation rows (compute layout of `act`) at `a + k * stride`;
/// returns the block count.
fn check4(
    n: usize,
    w: &[u8],
    a: &[u8],
    stride: usize,
    bs: usize,
    wb: usize,
    act: ActType,
) -> usize {
    assert!(
        n.is_multiple_of(bs),
        "row length {n} is not a multiple of {bs}"
    );
    let nb = n / bs;
    assert!(w.len() >= nb * wb, "weight row too short");
    let row = act.compute_bytes(n);
    assert!(
        stride >= row && a.len() >= 3 * stride + row,
        "activation rows too short"
    );
    nb
}

macro_rules! safe_wrapper4 {
    ($name:ident, $inner:ident, $bs:expr, $wb:expr, $act:ident) => {
        /// Four dots of one weight row; see the module header.
        pub fn $name(n: usize, w: &[u8], a: &[u8], stride: usize, out: &mut [f32; 4]) {
            let nb = check4(n, w, a, stride, $bs, $wb, ActType::$act);
            // SAFETY: only reachable through the AVX2 table (CPU features checked at table
            // construction); `check4` proved the weight row and the four activation rows hold
            // `nb` whole blocks (and, for Q8_0, their group extras).
            *out = unsafe { $inner(nb, w.as_ptr(), a.as_ptr(), stride) };
        }
    };
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld256(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn finish(acc: [__m256; 4]) -> [f32; 4] {
    [
        hsum_ps(acc[0]),
        hsum_ps(acc[1]),
        hsum_ps(acc[2]),
        hsum_ps(acc[3]),
    ]
}

safe_wrapper4!(vec_dot4_q4_0_q8_0, q4_0_x4, QK, Q4_0_BYTES, Q8_0);

safe_wrapper4!(vec_dot4_q4_1_q8_1, q4_1, QK, Q4_1_BYTES, Q8_1);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut summs = [_mm_setzero_ps(); 4];
    for i in 0..nb {
        let x = w.add(i * Q4_1_BYTES);
        let qx = nibbles32(x.add(4));
        // (d, m) of the weights and (d, s) of each activation block, converted as pairs.
        let xdm = _mm_cvtph_ps(_mm_set1_epi32((x as *const u32).read_unaligned() as i32));
        for k in 0..4 {
            let y = a.add(k * stride + i * Q8_1_BYTES);
            let yds = _mm_cvtph_ps(_mm_set1_epi32((y as *const u32).read_unaligned() as i32));
            let pr = _mm_mul_ps(xdm, yds);
            summs[k] = _mm_add_ps(summs[k], pr);
            let p = dot_u8_i8(qx, ld256(y.add(4)));
            acc[k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(pr), _mm256_cvtepi32_ps(p), acc[k]);
        }
    }
    let r = finish(acc);
    // Lane 1 of `summs[k]` holds sum(m * s).
    std::array::from_fn(|k| r[k] + _mm_cvtss_f32(_mm_movehdup_ps(summs[k])))
}

safe_wrapper4!(vec_dot4_q5_0_q8_0, q5_0_x4, QK, Q5_0_BYTES, Q8_0);

safe_wrapper4!(vec_dot4_q4_k_q8_k, q4_k, QK_K, Q4_K_BYTES, Q8_K);
/// Q4_K x Q8_K for four tokens, bit-identical to `avx2_kquants::q4_k` per token (same exact
/// i32 sums, same [`k4_accumulate`]).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    let m4 = _mm256_set1_epi8(0x0f);
    let pick = k4_pick();
    let mut acc = [[_mm256_setzero_ps(); 2]; 4];
    for i in 0..nb {
        let x = w.add(i * Q4_K_BYTES);
        let (sc, mins) = K4Scales::unpack(x.add(4));
        let mut sumi = [_mm256_setzero_si256(); 4];
        for j in 0..4 {
            let q4 = ld256(x.add(16 + 32 * j));
            let lo = _mm256_and_si256(q4, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            let s = sc.pair(pick, j);
            for (k, si) in sumi.iter_mut().enumerate() {
                let yq = a.add(k * stride + i * Q8_K_BYTES + Q8K_QS + 64 * j);
                *si = _mm256_add_epi32(*si, k4_dot_pair(lo, hi, s, yq));
            }
        }
        let xdm = k4_xdm(x);
        for (k, acc_k) in acc.iter_mut().enumerate() {
            let y = a.add(k * stride + i * Q8_K_BYTES);
            k4_accumulate(acc_k, xdm, y, sumi[k], mins);
        }
    }
    acc.map(|a| k4_finish(a))
}

safe_wrapper4!(vec_dot4_q6_k_q8_k, q6_k, QK_K, Q6_K_BYTES, Q8_K);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); 4];
    for i in 0..nb {
        let x = w.add(i * Q6_K_BYTES);
        let sc = x.add(192);
        let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc as *const __m128i));
        let mut sumi = [_mm256_setzero_si256(); 4];
        for h in 0..2 {
            let sh = k6_scales_half(sc.add(8 * h));
            let ql0 = ld256(x.add(64 * h));
            let ql1 = ld256(x.add(64 * h + 32));
            let qh = ld256(x.add(128 + 32 * h));
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c)), 2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                    _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                    _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0xc0u8 as i8)), 2),
                ),
            ];
            for (j, qj) in q.iter().enumerate() {
                let s = pick_scale_pair(sh, j);
                for (k, si) in sumi.iter_mut().enumerate() {
                    let y = a.add(k * stride + i * Q8_K_BYTES + Q8K_QS + 128 * h + 32 * j);
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(*qj, ld256(y)), s);
                    *si = _mm256_add_epi32(*si, p);
                }
            }
        }
        let d = ld_f16x8(x.add(208));
        for k in 0..4 {
            let y = a.add(k * stride + i * Q8_K_BYTES);
            // Unsigned quants: remove 32 * scales . bsums.
            let offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums(y)), 5);
            let dv = _mm256_mul_ps(d, _mm256_set1_ps((y as *const f32).read_unaligned()));
            let sumk = _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[k], offset));
            acc[k] = _mm256_fmadd_ps(dv, sumk, acc[k]);
        }
    }
    finish(acc)
}

safe_wrapper4!(vec_dot4_iq4_nl_q8_0, iq4_nl_x4, QK, IQ4_NL_BYTES, Q8_0);

safe_wrapper4!(vec_dot4_q5_1_q8_1, q5_1, QK, Q5_1_BYTES, Q8_1);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bitm = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut summs = [_mm_setzero_ps(); 4];
    for i in 0..nb {
        let x = w.add(i * Q5_1_BYTES);
        let qh = (x.add(4) as *const u32).read_unaligned();
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), shuf);
        let set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bitm), bitm);
        let qx = _mm256_or_si256(
            nibbles32(x.add(8)),
            _mm256_and_si256(set, _mm256_set1_epi8(0x10)),
        );
        let xdm = _mm_cvtph_ps(_mm_set1_epi32((x as *const u32).read_unaligned() as i32));
        for k in 0..4 {
            let y = a.add(k * stride + i * Q8_1_BYTES);
            let yds = _mm_cvtph_ps(_mm_set1_epi32((y as *const u32).read_unaligned() as i32));
            let pr = _mm_mul_ps(xdm, yds);
            summs[k] = _mm_add_ps(summs[k], pr);
            let p = dot_u8_i8(qx, ld256(y.add(4)));
            acc[k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(pr), _mm256_cvtepi32_ps(p), acc[k]);
        }
    }
    let r = finish(acc);
    std::array::from_fn(|k| r[k] + _mm_cvtss_f32(_mm_movehdup_ps(summs[k])))
}

safe_wrapper4!(vec_dot4_iq4_xs_q8_k, iq4_xs, QK_K, IQ4_XS_BYTES, Q8_K);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn iq4_xs(nb: usize, w: *const u8, a: *const u8, stride: usize) -> [f32; 4] {
    let table = kvalues_table();
    let mut acc = [_mm256_setzero_ps(); 4];
    for i in 0..nb {
        let x = w.add(i * IQ4_XS_BYTES);
        let blk = std::slice::from_raw_parts(x, IQ4_XS_BYTES);
        let mut sumi = [_mm256_setzero_si256(); 4];
        for ib in 0..8 {
            let qx = _mm256_shuffle_epi8(table, nibbles32(x.add(8 + 16 * ib)));
            let ax = _mm256_sign_epi8(qx, qx);
            let ls = _mm256_set1_epi16((super::scalar::iq4_xs_scale(blk, ib) - 32) as i16);
            for (k, si) in sumi.iter_mut().enumerate() {
                let y = a.add(k * stride + i * Q8_K_BYTES + Q8K_QS + 32 * ib);
                let p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(ld256(y), qx));
                *si = _mm256_add_epi32(*si, _mm256_madd_epi16(p16, ls));
            }
        }
        let d = ld_f16x8(x);
        for (k, s) in acc.iter_mut().enumerate() {
            let y = a.add(k * stride + i * Q8_K_BYTES);
            let dv = _mm256_mul_ps(d, _mm256_set1_ps((y as *const f32).read_unaligned()));
            *s = _mm256_fmadd_ps(dv, _mm256_cvtepi32_ps(sumi[k]), *s);
        }
    }
    finish(acc)
}
