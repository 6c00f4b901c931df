//! Attention for one query head over a contiguous run of cached keys/values: the scores
//! `scale * q.k_j` (optionally soft-capped), their softmax, and the weighted sum of values.
//! Masking (causal, sliding window, other sequences) is the caller's choice of the run.

use super::simd::weighted_rows;
use super::{dot, softcap, softmax};

/// Cached keys or values of one KV head: row `j` is `data[j * stride .. j * stride + dim]`.
#[derive(Clone, Copy, Debug)]
pub struct KvRows<'a> {
    /// (n_keys, stride), starting at this head's offset within the row.
    pub data: &'a [f32],
    pub stride: usize,
    pub dim: usize,
    pub n: usize,
}

impl KvRows<'_> {
    #[inline]
    fn row(&self, j: usize) -> &[f32] {
        let s = j * self.stride;
        &self.data[s..s + self.dim]
    }
}

/// `out = softmax(cap(scale * q K^T)) V` for one query head.
/// `q`: (d_k,), `keys`/`values`: n rows, `scores`: scratch of at least n, `out`: (d_v,).
pub fn attend(
    q: &[f32],
    keys: KvRows<'_>,
    values: KvRows<'_>,
    scale: f32,
    soft_cap: Option<f32>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    debug_assert_eq!(keys.n, values.n);
    let n = keys.n;
    let scores = &mut scores[..n];
    for (j, s) in scores.iter_mut().enumerate() {
        *s = dot(q, keys.row(j)) * scale;
    }
    if let Some(cap) = soft_cap {
        softcap(scores, cap);
    }
    softmax(scores);
    let d = values.dim.min(out.len());
    out[d..].fill(0.0);
    weighted_rows(scores, values.data, values.stride, &mut out[..d]);
}
