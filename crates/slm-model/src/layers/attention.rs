//! Batched self-attention over the multi-sequence KV cache, with grouped-query heads, the
//! causal mask, an optional sliding window and optional logit soft-capping.
//!
//! The mask is a key range per token: token at position `p` of sequence `s` sees the cached
//! rows of `s` at positions `max(p + 1 - window, first kept) ..= p`. The new K/V rows of the
//! whole batch are in the cache before this runs; rows past `p` (later tokens of the same
//! batch) fall outside the range.

use slm_tensor::ops::{attend, KvRows};

use super::par::Threads;
use crate::batch::BatchToken;
use crate::kv_cache::KvCache;

/// Shape and masking of one layer's attention.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim_k: usize,
    pub head_dim_v: usize,
    /// Multiplies q.k before the softmax.
    pub scale: f32,
    pub soft_cap: Option<f32>,
    /// Sliding window (keys per query, the query's own position included), `None` = global.
    pub window: Option<u32>,
}

/// out (n_tokens, n_head * head_dim_v) = attention of q (n_tokens, n_head * head_dim_k) over
/// the cached keys/values of `layer`.
pub fn attention(
    threads: &Threads,
    shape: &AttnShape,
    kv: &KvCache,
    layer: usize,
    tokens: &[BatchToken],
    q: &[f32],
    out: &mut [f32],
) {
    let spec = kv.spec();
    let (k_row, v_row) = (spec.k_row, spec.v_row);
    let (dk, dv) = (shape.head_dim_k, shape.head_dim_v);
    let group = (shape.n_head / shape.n_head_kv.max(1)).max(1);
    // Per token: its layer rows, first row index in range, and number of keys.
    let views: Vec<Option<(&crate::kv_cache::LayerKv, usize, usize)>> = tokens
        .iter()
        .map(|t| {
            let l = kv.layer(layer, t.seq)?;
            let lo_pos = match shape.window {
                Some(w) => (t.pos + 1).saturating_sub(w),
                None => 0,
            }
            .max(l.first_pos);
            let lo = (lo_pos - l.first_pos) as usize;
            let n = (t.pos + 1 - lo_pos) as usize;
            Some((l, lo, n))
        })
        .collect();
    let max_keys = views.iter().flatten().map(|v| v.2).max().unwrap_or(0);
    // Cost of each (token, head) unit: its number of keys.
    let cost: Vec<usize> = views
        .iter()
        .flat_map(|v| std::iter::repeat_n(v.map_or(1, |v| v.2), shape.n_head))
        .collect();
    threads.for_units_weighted(out, dv, &cost, |first, chunk| {
        let mut scores = vec![0.0f32; max_keys]; // (n_keys,)
        for (i, o) in chunk.chunks_exact_mut(dv).enumerate() {
            let u = first + i;
            let (t, h) = (u / shape.n_head, u % shape.n_head);
            let Some(Some((l, lo, n))) = views.get(t).copied() else {
                o.fill(0.0);
                continue;
            };
            let kvh = h / group;
            let keys = KvRows {
                data: &l.k[lo * k_row + kvh * dk..],
                stride: k_row,
                dim: dk,
                n,
            };
            let values = KvRows {
                data: &l.v[lo * v_row + kvh * dv..],
                stride: v_row,
                dim: dv,
                n,
            };
            let qh = &q[(t * shape.n_head + h) * dk..(t * shape.n_head + h + 1) * dk];
            attend(
                qh,
                keys,
                values,
                shape.scale,
                shape.soft_cap,
                &mut scores,
                o,
            );
        }
    });
}
