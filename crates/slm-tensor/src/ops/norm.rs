//! RMSNorm: `y = x / sqrt(mean(x^2) + eps) * w`, as ggml's `rms_norm` followed by a multiply
//! (sum of squares accumulated in f64 like ggml's `ggml_float`).
//!
//! Gemma's `(1 + w)` weight needs no special case here: llama.cpp's converter stores Gemma norm
//! weights with the 1 already added, so every architecture multiplies by the stored weight.

/// Normalize one row: `out = x / rms(x) * w`. `x`, `out`: (n,), `w`: (n,).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert_eq!(x.len(), w.len());
    debug_assert_eq!(x.len(), out.len());
    let n = x.len().max(1);
    let sum: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let mean = (sum / n as f64) as f32;
    let s = 1.0 / (mean + eps).sqrt();
    for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = xi * s * wi;
    }
}

/// Normalize every row of `x` (n_rows, n) in place with the same weight `w` (n,).
pub fn rms_norm_rows(x: &mut [f32], w: &[f32], eps: f32) {
    let n = w.len();
    if n == 0 {
        return;
    }
    for row in x.chunks_exact_mut(n) {
        let sum: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let mean = (sum / n as f64) as f32;
        let s = 1.0 / (mean + eps).sqrt();
        for (xi, &wi) in row.iter_mut().zip(w) {
            *xi = *xi * s * wi;
        }
    }
}
