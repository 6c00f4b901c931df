//! Building blocks shared by every architecture: threads (`par`), matrix-vector products with
//! quantized weights (`linear`), batched multi-sequence attention over the KV cache
//! (`attention`), the gated feed-forward block (`ffn`), row-parallel RMSNorm (`norm`). The float kernels themselves live in
//! `slm_tensor::ops`.

pub mod attention;
pub mod ffn;
pub mod linear;
pub mod norm;
pub mod par;

/// Keep only rows `rows` of `x` (n, row_len): after the last layer's attention, only the
/// tokens that want logits go on.
pub fn select_rows(x: &[f32], row_len: usize, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * row_len);
    for &r in rows {
        out.extend_from_slice(&x[r * row_len..(r + 1) * row_len]);
    }
    out
}
