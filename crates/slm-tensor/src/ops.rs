//! Float ops that models are built from, each a plain function over row-major `f32` slices:
//! RMSNorm (`norm`), RoPE in NEOX and normal styles (`rope`), softmax with optional soft-capping
//! (`softmax`), GELU/SiLU and the gated GeGLU/SwiGLU products (`activation`), single-query
//! attention over a run of cached keys (`attention`) and embedding-row lookup from quantized
//! tables (`embed`), and the f32 `dot`/`axpy` primitives with their AVX2 versions (`simd`).
//! Every op has a test against a naive f64 implementation in
//! `tests/ops.rs`. Threading is the caller's business: these run on one thread over the slices
//! they are given.

pub mod activation;
pub mod attention;
pub mod embed;
pub mod norm;
pub mod rope;
pub mod simd;
pub mod softmax;

pub use activation::{geglu, geglu_exact, gelu_tanh, silu, swiglu};
pub use attention::{attend, KvRows};
pub use embed::get_rows;
pub use norm::{rms_norm, rms_norm_rows};
pub use rope::{RopeParams, RopeStyle};
pub use simd::{axpy, dot};
pub use softmax::{softcap, softmax};

/// `x[i] *= s`.
#[inline]
pub fn scale(x: &mut [f32], s: f32) {
    for v in x {
        *v *= s;
    }
}

/// `y[i] += x[i]`.
#[inline]
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}
