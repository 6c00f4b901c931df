//! f32 vector primitives of the attention and element-wise ops: a portable scalar version and
//! an AVX2+FMA version chosen at run time from `slm_quant::kernels::level()` (so `SLM_SIMD=scalar`
//! forces the reference path). The AVX2 versions match the scalar ones up to summation order;
//! `tests/ops.rs` checks both against f64.

use slm_quant::kernels::{level, SimdLevel};

/// Scalar reference: `sum(a[i] * b[i])`, 8 independent partial sums.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Scalar reference: `y[i] += a * x[i]`.
pub fn axpy_scalar(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Scalar reference of [`weighted_rows`]: `out[i] = sum_j w[j] * rows[j * stride + i]`, each
/// element accumulated over `j` in order (the same as `axpy` row after row into zeros).
pub fn weighted_rows_scalar(w: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    out.fill(0.0);
    for (j, &a) in w.iter().enumerate() {
        let s = j * stride;
        let Some(x) = rows.get(s..s + out.len()) else {
            break;
        };
        axpy_scalar(a, x, out);
    }
}

#[inline]
fn use_avx2() -> bool {
    // The avx512 level includes AVX2+FMA (its `is_supported` requires them).
    matches!(level(), SimdLevel::Avx2 | SimdLevel::Avx512)
}

/// `sum(a[i] * b[i])` over the common length.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: `level()` is Avx2 or Avx512 only when the CPU reports AVX2 and FMA.
        return unsafe { avx2::dot(a, b) };
    }
    dot_scalar(a, b)
}

/// `y[i] += a * x[i]` over the common length.
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: `level()` is Avx2 or Avx512 only when the CPU reports AVX2 and FMA.
        return unsafe { avx2::axpy(a, x, y) };
    }
    axpy_scalar(a, x, y)
}

/// `out[i] = sum_j w[j] * rows[j * stride + i]` for `i < out.len()`: the weighted sum of `w.len()`
/// rows (attention's probabilities times values). Bit for bit the same as zeroing `out` and
/// calling [`axpy`] once per row, but `out` stays in registers across rows instead of being
/// loaded and stored for every row. Rows past the end of `rows` are left out.
#[inline]
pub fn weighted_rows(w: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    // Only whole rows that lie inside `rows`.
    let fit = if out.is_empty() || rows.len() < out.len() {
        0
    } else {
        ((rows.len() - out.len()) / stride.max(1) + 1).min(w.len())
    };
    #[cfg(target_arch = "x86_64")]
    if use_avx2() && stride >= out.len() {
        // SAFETY: `level()` is Avx2 or Avx512 only when the CPU reports AVX2 and FMA; the first
        // `fit` rows of `out.len()` values at `stride` lie inside `rows`.
        return unsafe { avx2::weighted_rows(&w[..fit], rows, stride, out) };
    }
    weighted_rows_scalar(&w[..fit], rows, stride, out)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA. Reads stay within both slices.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut k = 0;
        // SAFETY (all loads below): k + 8 * (j + 1) <= n for every load, so each 8-float read
        // lies within both slices.
        while k + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm256_loadu_ps(pa.add(k + 8 * j)) };
                let y = unsafe { _mm256_loadu_ps(pb.add(k + 8 * j)) };
                *s = _mm256_fmadd_ps(x, y, *s);
            }
            k += 32;
        }
        while k + 8 <= n {
            let x = unsafe { _mm256_loadu_ps(pa.add(k)) };
            let y = unsafe { _mm256_loadu_ps(pb.add(k)) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            k += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        let mut r = _mm_cvtss_f32(h);
        for i in k..n {
            r += a[i] * b[i];
        }
        r
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA. Reads and writes stay within both slices.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let va = _mm256_set1_ps(a);
        let mut k = 0;
        // SAFETY: k + 8 <= n for every access, within both slices; `y` is borrowed mutably
        // and does not alias `x`.
        while k + 8 <= n {
            unsafe {
                let v = _mm256_fmadd_ps(va, _mm256_loadu_ps(px.add(k)), _mm256_loadu_ps(py.add(k)));
                _mm256_storeu_ps(py.add(k), v);
            }
            k += 8;
        }
        for i in k..n {
            y[i] += a * x[i];
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; rows `0..w.len()` of `out.len()` values at `stride`
    /// must lie inside `rows`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weighted_rows(w: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
        let d = out.len();
        let (pr, po) = (rows.as_ptr(), out.as_mut_ptr());
        let mut k = 0;
        // Columns in blocks of 64 (8 registers), then of 8: per element the same fused
        // multiply-adds in the same row order as `axpy` row by row from zero.
        while k + 64 <= d {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (j, &a) in w.iter().enumerate() {
                let va = _mm256_set1_ps(a);
                // SAFETY: row j's columns k..k + 64 are inside `rows` (caller's contract).
                let base = unsafe { pr.add(j * stride + k) };
                for (i, s) in acc.iter_mut().enumerate() {
                    *s = _mm256_fmadd_ps(va, unsafe { _mm256_loadu_ps(base.add(8 * i)) }, *s);
                }
            }
            for (i, s) in acc.iter().enumerate() {
                // SAFETY: k + 8 * i + 8 <= d = out.len().
                unsafe { _mm256_storeu_ps(po.add(k + 8 * i), *s) };
            }
            k += 64;
        }
        while k + 8 <= d {
            let mut acc = _mm256_setzero_ps();
            for (j, &a) in w.iter().enumerate() {
                // SAFETY: as above, columns k..k + 8 of row j.
                let x = unsafe { _mm256_loadu_ps(pr.add(j * stride + k)) };
                acc = _mm256_fmadd_ps(_mm256_set1_ps(a), x, acc);
            }
            // SAFETY: k + 8 <= d.
            unsafe { _mm256_storeu_ps(po.add(k), acc) };
            k += 8;
        }
        for (i, o) in out.iter_mut().enumerate().skip(k) {
            let mut s = 0.0f32;
            for (j, &a) in w.iter().enumerate() {
                s += a * rows[j * stride + i];
            }
            *o = s;
        }
    }
}
