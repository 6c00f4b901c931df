//! Softmax over one row (max-subtracted, sum in f64 like ggml) and logit soft-capping
//! `cap * tanh(x / cap)` (Gemma 2 attention/final logits).

/// In-place softmax of `x` (n,). An empty row is left as is.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return;
    }
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// In-place soft-capping `x = cap * tanh(x / cap)` of `x` (n,).
pub fn softcap(x: &mut [f32], cap: f32) {
    for v in x.iter_mut() {
        *v = cap * (*v / cap).tanh();
    }
}
