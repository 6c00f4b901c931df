//! Building blocks shared by every architecture: threads (`par`), matrix-vector products with
//! quantized weights (`linear`), batched multi-sequence attention over the KV cache
//! (`attention`), the gated feed-forward block (`ffn`), row-parallel RMSNorm (`norm`). The float kernels themselves live in
//! `slm_tensor::ops`.

pub mod attention;
pub mod ffn;
pub mod linear;
pub mod norm;
pub mod par;
