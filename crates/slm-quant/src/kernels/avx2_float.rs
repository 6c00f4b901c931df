//! AVX2 dot products of float weight rows (F32, F16 via F16C, BF16) with F32 activations.
//! They match `scalar::vec_dot_{f32_f32,f16_f32,bf16_f32}` up to float summation order.
//! Safety: as in `avx2_legacy` (AVX2 table only, lengths checked before pointer reads).

use super::avx2_legacy::{hsum_ps, safe_wrapper};
use super::check_rows;
use std::arch::x86_64::*;

safe_wrapper!(vec_dot_f32_f32, f32_f32, 1, 4, 4);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f32_f32(n: usize, w: *const u8, a: *const u8) -> f32 {
    let (w, a) = (w as *const f32, a as *const f32);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut k = 0;
    while k + 32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(w.add(k + 8 * j));
            *s = _mm256_fmadd_ps(x, _mm256_loadu_ps(a.add(k + 8 * j)), *s);
        }
        k += 32;
    }
    while k + 8 <= n {
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(k)), _mm256_loadu_ps(a.add(k)), acc[0]);
        k += 8;
    }
    let mut s = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    while k < n {
        s += w.add(k).read_unaligned() * a.add(k).read_unaligned();
        k += 1;
    }
    s
}

safe_wrapper!(vec_dot_f16_f32, f16_f32, 1, 2, 4);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_f32(n: usize, w: *const u8, a: *const u8) -> f32 {
    let a = a as *const f32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut k = 0;
    while k + 32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(w.add(2 * (k + 8 * j)) as *const __m128i));
            *s = _mm256_fmadd_ps(x, _mm256_loadu_ps(a.add(k + 8 * j)), *s);
        }
        k += 32;
    }
    while k + 8 <= n {
        let x = _mm256_cvtph_ps(_mm_loadu_si128(w.add(2 * k) as *const __m128i));
        acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(a.add(k)), acc[0]);
        k += 8;
    }
    let mut s = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    while k < n {
        let h = (w.add(2 * k) as *const u16).read_unaligned();
        s += super::half::f16_to_f32(h) * a.add(k).read_unaligned();
        k += 1;
    }
    s
}

safe_wrapper!(vec_dot_bf16_f32, bf16_f32, 1, 2, 4);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16_f32(n: usize, w: *const u8, a: *const u8) -> f32 {
    let a = a as *const f32;
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut k = 0;
    while k + 16 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let h = _mm_loadu_si128(w.add(2 * (k + 8 * j)) as *const __m128i);
            let x = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
            *s = _mm256_fmadd_ps(x, _mm256_loadu_ps(a.add(k + 8 * j)), *s);
        }
        k += 16;
    }
    let mut s = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
    while k < n {
        let h = (w.add(2 * k) as *const u16).read_unaligned();
        s += super::half::bf16_to_f32(h) * a.add(k).read_unaligned();
        k += 1;
    }
    s
}
