//! Compute kernels for the CPU: dot products of each weight type with the activation format
//! llama.cpp pairs it with, activation quantizers, and the run-time dispatch table.
//!
//! | weight type                                      | activation ([`ActType`]) |
//! |--------------------------------------------------|--------------------------|
//! | Q4_0, Q5_0, Q8_0, IQ4_NL                         | Q8_0                     |
//! | Q4_1, Q5_1                                       | Q8_1                     |
//! | Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0 | Q8_K                   |
//! | F32, F16, BF16                                   | F32                      |
//!
//! Levels ([`SimdLevel`]): `scalar` (the reference, `scalar.rs`, any CPU), `avx2`
//! (AVX2 + FMA + F16C, `avx2_*.rs`, `#[target_feature]` functions) and `avx512` (the AVX2
//! kernels plus AVX-512 F/BW/VL/VNNI ones where they are much faster, `avx512.rs`: Q5_0). The
//! level is chosen ONCE per process from `is_x86_feature_detected!`; the environment variable
//! `SLM_SIMD=scalar|avx2|avx512` forces a level (a level the CPU lacks, or an unknown value,
//! falls back to the detected best, so a forced level can never SIGILL). No
//! `target-cpu=native`: one binary runs on any x86-64.
//!
//! [`Kernels`] is the dispatch table of one level (a function pointer per type); other backends
//! (NEON, GPU) add a level/table here and a compute layout in [`repack`]. Types without an AVX2
//! kernel use the scalar one in the AVX2 table.
//!
//! Every function takes whole rows: `n` elements, `w` = the weight row in its ggml block layout,
//! `a` = the activation row in [`ActType`] compute layout ([`ActType::compute_bytes`] long, as
//! produced by [`Kernels::quantize`]: the ggml row, plus per-group sums and scales for Q8_0,
//! see `layout`; the scalar kernels read only the ggml part). For
//! prefill, [`Kernels::vec_dot4`] dots one weight row with four activation rows, unpacking the
//! weights once (AVX2: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
//! IQ4_XS).
//!
//! Activation quantizers produce the same bytes on every level as llama.cpp's reference
//! quantizers (`quantize.rs` explains how); the dots agree with the scalar reference up to float
//! summation order (integer block sums are exact). Rows may start at any byte offset.

pub mod half;
pub mod layout;
pub mod quantize;
pub mod repack;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2_float;
#[cfg(target_arch = "x86_64")]
mod avx2_kquants;
#[cfg(target_arch = "x86_64")]
mod avx2_legacy;
#[cfg(target_arch = "x86_64")]
mod avx2_multi;
#[cfg(target_arch = "x86_64")]
mod avx512;

use slm_gguf::GgmlType;
use std::sync::OnceLock;

/// An instruction-set level with its own kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimdLevel {
    /// Portable scalar reference code.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// `Avx2` plus AVX-512 F + BW + VL + VNNI (used on 256-bit vectors).
    Avx512,
}

impl SimdLevel {
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    pub fn from_name(s: &str) -> Option<SimdLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(SimdLevel::Scalar),
            "avx2" => Some(SimdLevel::Avx2),
            "avx512" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            SimdLevel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                SimdLevel::Avx2.is_supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            SimdLevel::Avx2 | SimdLevel::Avx512 => false,
        }
    }

    /// The best level this CPU supports.
    pub fn detect() -> SimdLevel {
        if SimdLevel::Avx512.is_supported() {
            SimdLevel::Avx512
        } else if SimdLevel::Avx2.is_supported() {
            SimdLevel::Avx2
        } else {
            SimdLevel::Scalar
        }
    }

    /// Every level this CPU supports (what the tests run).
    pub fn available() -> Vec<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|l| l.is_supported())
            .collect()
    }
}

/// The process-wide level: `SLM_SIMD` if set to a supported level, else [`SimdLevel::detect`].
pub fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        std::env::var("SLM_SIMD")
            .ok()
            .and_then(|s| SimdLevel::from_name(&s))
            .filter(|l| l.is_supported())
            .unwrap_or_else(SimdLevel::detect)
    })
}

/// The activation format a weight type is dotted with (ggml type names kept verbatim).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActType {
    Q8_0,
    Q8_1,
    Q8_K,
    F32,
}

impl ActType {
    /// The activation format for weight type `ty`, or `None` if there is no kernel for `ty`.
    pub fn for_weight(ty: GgmlType) -> Option<ActType> {
        use GgmlType as T;
        Some(match ty {
            T::Q4_0 | T::Q5_0 | T::Q8_0 | T::IQ4_NL => ActType::Q8_0,
            T::Q4_1 | T::Q5_1 => ActType::Q8_1,
            T::Q2_K | T::Q3_K | T::Q4_K | T::Q5_K | T::Q6_K | T::IQ4_XS | T::TQ1_0 | T::TQ2_0 => {
                ActType::Q8_K
            }
            T::F32 | T::F16 | T::BF16 => ActType::F32,
            _ => return None,
        })
    }

    /// The same format as a ggml type (Q8_0, Q8_1, Q8_K, F32).
    pub fn ggml_type(self) -> GgmlType {
        match self {
            ActType::Q8_0 => GgmlType::Q8_0,
            ActType::Q8_1 => GgmlType::Q8_1,
            ActType::Q8_K => GgmlType::Q8_K,
            ActType::F32 => GgmlType::F32,
        }
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        self.ggml_type().block_size() as usize
    }

    /// Bytes of a row of `n` elements in the ggml format (`n` a multiple of
    /// [`ActType::block_size`]).
    pub fn row_bytes(self, n: usize) -> usize {
        n / self.block_size() * self.ggml_type().type_size() as usize
    }

    /// Bytes of a row of `n` elements as the kernels read it and [`Kernels::quantize`] writes
    /// it: the ggml row, then for Q8_0 per-group block sums and f32 scales (`layout`), the same
    /// on every level. Size activation buffers with this, not [`ActType::row_bytes`].
    pub fn compute_bytes(self, n: usize) -> usize {
        match self {
            ActType::Q8_0 => layout::q8_0_act_bytes(n / layout::QK),
            _ => self.row_bytes(n),
        }
    }
}

/// `dot(n, weight_row, activation_row)`.
pub type VecDotFn = fn(usize, &[u8], &[u8]) -> f32;
/// `dot4(n, weight_row, acts, stride, out)`: `out[k]` = dot of the weight row with the
/// activation row at `acts[k * stride..]`, k < 4 (prefill: one weight row, four tokens).
pub type VecDot4Fn = fn(usize, &[u8], &[u8], usize, &mut [f32; 4]);
/// `quantize(x_row, dst)`: f32 row -> activation bytes.
pub type QuantizeFn = fn(&[f32], &mut [u8]);

/// The dispatch table of one [`SimdLevel`].
#[derive(Debug)]
pub struct Kernels {
    level: SimdLevel,
}

static SCALAR: Kernels = Kernels {
    level: SimdLevel::Scalar,
};
static AVX2: Kernels = Kernels {
    level: SimdLevel::Avx2,
};
static AVX512: Kernels = Kernels {
    level: SimdLevel::Avx512,
};

impl Kernels {
    /// The table of the process-wide [`level`].
    pub fn get() -> &'static Kernels {
        Kernels::for_level(level()).unwrap_or(&SCALAR)
    }

    /// The table of `level`, or `None` if this CPU cannot run it.
    pub fn for_level(level: SimdLevel) -> Option<&'static Kernels> {
        if !level.is_supported() {
            return None;
        }
        Some(match level {
            SimdLevel::Scalar => &SCALAR,
            SimdLevel::Avx2 => &AVX2,
            SimdLevel::Avx512 => &AVX512,
        })
    }

    pub fn level(&self) -> SimdLevel {
        self.level
    }

    /// Whether this table may use the AVX2 kernels (the `avx2` and `avx512` levels).
    fn has_avx2(&self) -> bool {
        matches!(self.level, SimdLevel::Avx2 | SimdLevel::Avx512)
    }

    /// The dot-product kernel for weight type `ty` (with [`ActType::for_weight`] activations).
    pub fn vec_dot(&self, ty: GgmlType) -> Option<VecDotFn> {
        #[cfg(target_arch = "x86_64")]
        {
            if self.level == SimdLevel::Avx512 {
                if let Some(f) = avx512_vec_dot(ty) {
                    return Some(f);
                }
            }
            if self.has_avx2() {
                if let Some(f) = avx2_vec_dot(ty) {
                    return Some(f);
                }
            }
        }
        scalar_vec_dot(ty)
    }

    /// A kernel dotting one weight row with four activation rows at once (unpacking the
    /// weights once), where this level has one for `ty`; else use [`Kernels::vec_dot`] 4 times.
    ///
    /// Every four-token kernel is bit-identical per token to this level's [`Kernels::vec_dot`]
    /// (tested), so a token's result does not depend on the batch it is computed in; a type
    /// whose single-row kernel accumulates in another order has no four-token kernel here.
    pub fn vec_dot4(&self, ty: GgmlType) -> Option<VecDot4Fn> {
        #[cfg(target_arch = "x86_64")]
        if self.has_avx2() {
            use GgmlType as T;
            if self.level == SimdLevel::Avx512 && ty != T::Q5_0 && avx512_vec_dot(ty).is_some() {
                // An AVX-512 single-row kernel with its own summation order. (Q5_0's has the
                // AVX2 kernel's i32 lanes and float operations, so the AVX2 four-token kernel
                // is bit-identical to it.)
                return None;
            }
            // Q8_0: the four-token form of the 4-blocks-per-step kernel is not bit-identical
            // in matmul (slm-tensor's batch-invariance test finds last-bit differences that the
            // kernel-level test does not; not yet understood), so Q8_0 prefill uses the
            // single-row kernel four times.
            return Some(match ty {
                T::Q4_0 => avx2_multi::vec_dot4_q4_0_q8_0,
                T::Q5_0 => avx2_multi::vec_dot4_q5_0_q8_0,
                T::Q4_1 => avx2_multi::vec_dot4_q4_1_q8_1,
                T::Q4_K => avx2_multi::vec_dot4_q4_k_q8_k,
                T::Q6_K => avx2_multi::vec_dot4_q6_k_q8_k,
                T::Q5_1 => avx2_multi::vec_dot4_q5_1_q8_1,
                T::IQ4_NL => avx2_multi::vec_dot4_iq4_nl_q8_0,
                T::IQ4_XS => avx2_multi::vec_dot4_iq4_xs_q8_k,
                _ => return None,
            });
        }
        let _ = ty;
        None
    }

    /// The activation quantizer for `act` (writes [`ActType::compute_bytes`]; given a
    /// destination of only [`ActType::row_bytes`], the plain ggml row).
    pub fn quantize(&self, act: ActType) -> QuantizeFn {
        #[cfg(target_arch = "x86_64")]
        if self.has_avx2() {
            match act {
                ActType::Q8_0 => return quantize::avx2::quantize_row_q8_0,
                ActType::Q8_1 => return quantize::avx2::quantize_row_q8_1,
                ActType::Q8_K => return quantize::avx2::quantize_row_q8_k,
                ActType::F32 => {}
            }
        }
        match act {
            ActType::Q8_0 => quantize::quantize_row_q8_0,
            ActType::Q8_1 => quantize::quantize_row_q8_1,
            ActType::Q8_K => quantize::quantize_row_q8_k,
            ActType::F32 => quantize::quantize_row_f32,
        }
    }

    /// Whether `ty` has a dedicated kernel at this level (not the scalar fallback).
    pub fn is_native(&self, ty: GgmlType) -> bool {
        match self.level {
            SimdLevel::Scalar => scalar_vec_dot(ty).is_some(),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => avx2_vec_dot(ty).is_some(),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => avx512_vec_dot(ty).or_else(|| avx2_vec_dot(ty)).is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            SimdLevel::Avx2 | SimdLevel::Avx512 => false,
        }
    }
}

fn scalar_vec_dot(ty: GgmlType) -> Option<VecDotFn> {
    use GgmlType as T;
    Some(match ty {
        T::Q4_0 => scalar::vec_dot_q4_0_q8_0,
        T::Q4_1 => scalar::vec_dot_q4_1_q8_1,
        T::Q5_0 => scalar::vec_dot_q5_0_q8_0,
        T::Q5_1 => scalar::vec_dot_q5_1_q8_1,
        T::Q8_0 => scalar::vec_dot_q8_0_q8_0,
        T::IQ4_NL => scalar::vec_dot_iq4_nl_q8_0,
        T::Q2_K => scalar::vec_dot_q2_k_q8_k,
        T::Q3_K => scalar::vec_dot_q3_k_q8_k,
        T::Q4_K => scalar::vec_dot_q4_k_q8_k,
        T::Q5_K => scalar::vec_dot_q5_k_q8_k,
        T::Q6_K => scalar::vec_dot_q6_k_q8_k,
        T::IQ4_XS => scalar::vec_dot_iq4_xs_q8_k,
        T::TQ1_0 => scalar::vec_dot_tq1_0_q8_k,
        T::TQ2_0 => scalar::vec_dot_tq2_0_q8_k,
        T::F32 => scalar::vec_dot_f32_f32,
        T::F16 => scalar::vec_dot_f16_f32,
        T::BF16 => scalar::vec_dot_bf16_f32,
        _ => return None,
    })
}

#[cfg(target_arch = "x86_64")]
fn avx2_vec_dot(ty: GgmlType) -> Option<VecDotFn> {
    use GgmlType as T;
    Some(match ty {
        T::Q4_0 => avx2_legacy::vec_dot_q4_0_q8_0,
        T::Q4_1 => avx2_legacy::vec_dot_q4_1_q8_1,
        T::Q5_0 => avx2_legacy::vec_dot_q5_0_q8_0,
        T::Q5_1 => avx2_legacy::vec_dot_q5_1_q8_1,
        T::Q8_0 => avx2_legacy::vec_dot_q8_0_q8_0,
        T::IQ4_NL => avx2_legacy::vec_dot_iq4_nl_q8_0,
        T::Q2_K => avx2_kquants::vec_dot_q2_k_q8_k,
        T::Q3_K => avx2_kquants::vec_dot_q3_k_q8_k,
        T::Q4_K => avx2_kquants::vec_dot_q4_k_q8_k,
        T::Q5_K => avx2_kquants::vec_dot_q5_k_q8_k,
        T::Q6_K => avx2_kquants::vec_dot_q6_k_q8_k,
        T::IQ4_XS => avx2_kquants::vec_dot_iq4_xs_q8_k,
        T::TQ1_0 => avx2_kquants::vec_dot_tq1_0_q8_k,
        T::TQ2_0 => avx2_kquants::vec_dot_tq2_0_q8_k,
        T::F32 => avx2_float::vec_dot_f32_f32,
        T::F16 => avx2_float::vec_dot_f16_f32,
        T::BF16 => avx2_float::vec_dot_bf16_f32,
        _ => return None,
    })
}

/// The kernels of the `avx512` level that differ from its AVX2 ones.
#[cfg(target_arch = "x86_64")]
fn avx512_vec_dot(ty: GgmlType) -> Option<VecDotFn> {
    match ty {
        GgmlType::Q5_0 => Some(avx512::vec_dot_q5_0_q8_0),
        _ => None,
    }
}

/// Views an f32 slice as its little-endian bytes (the F32 activation format), zero-copy.
pub fn f32_as_bytes(x: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte is a valid u8; the length is exact and the
    // lifetime is tied to `x`. x86-64 and aarch64 are little-endian, as GGUF data is.
    unsafe { std::slice::from_raw_parts(x.as_ptr() as *const u8, std::mem::size_of_val(x)) }
}

/// Checks (always, not only in debug builds: the SIMD kernels read through raw pointers) that
/// `w` and `a` hold whole rows of `n` elements; returns the number of blocks.
#[inline]
pub(crate) fn check_rows(n: usize, w: &[u8], a: &[u8], bs: usize, wb: usize, ab: usize) -> usize {
    assert!(
        n.is_multiple_of(bs),
        "row length {n} is not a multiple of {bs}"
    );
    let nb = n / bs;
    assert!(
        w.len() >= nb * wb && a.len() >= nb * ab,
        "row buffers too short"
    );
    nb
}

/// [`check_rows`] for an activation row in [`ActType`] compute layout: `a` must hold
/// [`ActType::compute_bytes`]`(n)` bytes (Q8_0: the blocks and their group extras).
#[inline]
pub(crate) fn check_rows_act(
    n: usize,
    w: &[u8],
    a: &[u8],
    bs: usize,
    wb: usize,
    act: ActType,
) -> usize {
    let nb = check_rows(n, w, a, bs, wb, 0);
    assert!(a.len() >= act.compute_bytes(n), "activation row too short");
    nb
}
