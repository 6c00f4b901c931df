//! Quantization formats, bit-exact with llama.cpp's ggml (`ggml-quants.c`, `ggml-common.h`).
//!
//! One file per format: a `#[repr(C)]` block struct (`bytemuck::Pod`) with its bit-layout
//! diagram, the reference dequantization and, where implemented, llama.cpp's quantizer with the
//! same float operation order so that output bytes are identical. Shared scale searches of the
//! K-quants are in [`search`]. The dynamic entry points [`dequantize_row`], [`quantize_row`] and
//! [`quantize_rows`] dispatch on a [`GgmlType`].
//!
//! The quantizers keep ggml's indexed loops so that they can be compared line by line with the
//! C code they must match bit for bit; hence `needless_range_loop` is allowed here.
#![allow(clippy::needless_range_loop)]

use bytemuck::Pod;
use slm_gguf::GgmlType;

use crate::QuantError;

pub mod float;
pub mod iq1;
pub mod iq1_quant;
pub mod iq2;
pub mod iq2_quant;
pub mod iq3;
pub mod iq3_quant;
pub mod iq4;
#[rustfmt::skip]
pub mod iq_grids;
mod lattice;
pub mod mxfp4;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_1;
pub mod q8_k;
pub mod search;
pub mod tq;

pub use iq1::{BlockIQ1_M, BlockIQ1_S};
pub use iq2::{BlockIQ2_S, BlockIQ2_XS, BlockIQ2_XXS};
pub use iq3::{BlockIQ3_S, BlockIQ3_XXS};
pub use iq4::{BlockIQ4_NL, BlockIQ4_XS};
pub use mxfp4::BlockMXFP4;
pub use q2_k::BlockQ2_K;
pub use q3_k::BlockQ3_K;
pub use q4_0::BlockQ4_0;
pub use q4_1::BlockQ4_1;
pub use q4_k::BlockQ4_K;
pub use q5_0::BlockQ5_0;
pub use q5_1::BlockQ5_1;
pub use q5_k::BlockQ5_K;
pub use q6_k::BlockQ6_K;
pub use q8_0::BlockQ8_0;
pub use q8_1::BlockQ8_1;
pub use q8_k::BlockQ8_K;
pub use tq::{BlockTQ1_0, BlockTQ2_0};

/// Elements in a K-quant super-block (ggml's `QK_K`).
pub const QK_K: usize = 256;

/// One block of a ggml tensor type: `BLOCK_SIZE` values stored in `size_of::<Self>()` bytes.
pub trait QuantBlock: Pod {
    /// The ggml type this block stores.
    const TYPE: GgmlType;
    /// Values per block (ggml's `blck_size`).
    const BLOCK_SIZE: usize;
    /// Writes this block's values to `out[..Self::BLOCK_SIZE]` (ggml's `dequantize_row_*`).
    fn dequantize(&self, out: &mut [f32]);
}

/// A block type that llama.cpp can quantize to.
pub trait Quantize: QuantBlock {
    /// Quantizes one row `x` (a whole number of blocks) into `out` (`x.len() / BLOCK_SIZE`
    /// blocks) exactly as llama.cpp's `quantize_<type>(src, dst, 1, n_per_row, imatrix)`:
    /// without `imatrix` that is `quantize_row_<type>_ref`; with it the weighted search, if the
    /// type has one (an imatrix covers one row: `imatrix.len() == x.len()`).
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>);
}

/// Dequantizes whole typed blocks into `dst` (`blocks.len() * B::BLOCK_SIZE` values).
pub fn dequantize_blocks<B: QuantBlock>(blocks: &[B], dst: &mut [f32]) {
    for (b, out) in blocks.iter().zip(dst.chunks_exact_mut(B::BLOCK_SIZE)) {
        b.dequantize(out);
    }
}

/// Dequantizes raw block bytes; `src` may be unaligned (it then reads block by block).
fn dequantize_bytes<B: QuantBlock>(src: &[u8], dst: &mut [f32]) {
    match bytemuck::try_cast_slice::<u8, B>(src) {
        Ok(blocks) => dequantize_blocks(blocks, dst),
        Err(_) => {
            let size = std::mem::size_of::<B>();
            for (chunk, out) in src
                .chunks_exact(size)
                .zip(dst.chunks_exact_mut(B::BLOCK_SIZE))
            {
                let b: B = bytemuck::pod_read_unaligned(chunk);
                b.dequantize(out);
            }
        }
    }
}

/// Quantizes rows of `n_per_row` values into raw bytes; `dst` may be unaligned.
fn quantize_bytes<B: Quantize>(
    src: &[f32],
    n_per_row: usize,
    dst: &mut [u8],
    imatrix: Option<&[f32]>,
) {
    let blocks_per_row = n_per_row / B::BLOCK_SIZE;
    let row_bytes = blocks_per_row * std::mem::size_of::<B>();
    let mut tmp: Vec<B> = Vec::new();
    for (x, out) in src
        .chunks_exact(n_per_row)
        .zip(dst.chunks_exact_mut(row_bytes))
    {
        match bytemuck::try_cast_slice_mut::<u8, B>(out) {
            Ok(blocks) => B::quantize_row(x, blocks, imatrix),
            Err(_) => {
                tmp.clear();
                tmp.resize(blocks_per_row, B::zeroed());
                B::quantize_row(x, &mut tmp, imatrix);
                out.copy_from_slice(bytemuck::cast_slice(&tmp));
            }
        }
    }
}

type DequantFn = fn(&[u8], &mut [f32]);
type QuantFn = fn(&[f32], usize, &mut [u8], Option<&[f32]>);

fn dequant_fn(ty: GgmlType) -> Option<DequantFn> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => dequantize_bytes::<f32>,
        T::F16 => dequantize_bytes::<half::f16>,
        T::BF16 => dequantize_bytes::<half::bf16>,
        T::Q4_0 => dequantize_bytes::<BlockQ4_0>,
        T::Q4_1 => dequantize_bytes::<BlockQ4_1>,
        T::Q5_0 => dequantize_bytes::<BlockQ5_0>,
        T::Q5_1 => dequantize_bytes::<BlockQ5_1>,
        T::Q8_0 => dequantize_bytes::<BlockQ8_0>,
        T::Q8_1 => dequantize_bytes::<BlockQ8_1>,
        T::Q2_K => dequantize_bytes::<BlockQ2_K>,
        T::Q3_K => dequantize_bytes::<BlockQ3_K>,
        T::Q4_K => dequantize_bytes::<BlockQ4_K>,
        T::Q5_K => dequantize_bytes::<BlockQ5_K>,
        T::Q6_K => dequantize_bytes::<BlockQ6_K>,
        T::Q8_K => dequantize_bytes::<BlockQ8_K>,
        T::IQ4_NL => dequantize_bytes::<BlockIQ4_NL>,
        T::IQ4_XS => dequantize_bytes::<BlockIQ4_XS>,
        T::TQ1_0 => dequantize_bytes::<BlockTQ1_0>,
        T::TQ2_0 => dequantize_bytes::<BlockTQ2_0>,
        T::MXFP4 => dequantize_bytes::<BlockMXFP4>,
        T::IQ2_XXS => dequantize_bytes::<BlockIQ2_XXS>,
        T::IQ2_XS => dequantize_bytes::<BlockIQ2_XS>,
        T::IQ2_S => dequantize_bytes::<BlockIQ2_S>,
        T::IQ3_XXS => dequantize_bytes::<BlockIQ3_XXS>,
        T::IQ3_S => dequantize_bytes::<BlockIQ3_S>,
        T::IQ1_S => dequantize_bytes::<BlockIQ1_S>,
        T::IQ1_M => dequantize_bytes::<BlockIQ1_M>,
        _ => return None,
    })
}

fn quant_fn(ty: GgmlType) -> Option<QuantFn> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => quantize_bytes::<f32>,
        T::F16 => quantize_bytes::<half::f16>,
        T::BF16 => quantize_bytes::<half::bf16>,
        T::Q4_0 => quantize_bytes::<BlockQ4_0>,
        T::Q4_1 => quantize_bytes::<BlockQ4_1>,
        T::Q5_0 => quantize_bytes::<BlockQ5_0>,
        T::Q5_1 => quantize_bytes::<BlockQ5_1>,
        T::Q8_0 => quantize_bytes::<BlockQ8_0>,
        T::Q8_1 => quantize_bytes::<BlockQ8_1>,
        T::Q8_K => quantize_bytes::<BlockQ8_K>,
        T::Q2_K => quantize_bytes::<BlockQ2_K>,
        T::Q3_K => quantize_bytes::<BlockQ3_K>,
        T::Q4_K => quantize_bytes::<BlockQ4_K>,
        T::Q5_K => quantize_bytes::<BlockQ5_K>,
        T::Q6_K => quantize_bytes::<BlockQ6_K>,
        T::IQ4_NL => quantize_bytes::<BlockIQ4_NL>,
        T::IQ4_XS => quantize_bytes::<BlockIQ4_XS>,
        T::TQ1_0 => quantize_bytes::<BlockTQ1_0>,
        T::TQ2_0 => quantize_bytes::<BlockTQ2_0>,
        T::MXFP4 => quantize_bytes::<BlockMXFP4>,
        T::IQ2_XXS => quantize_bytes::<BlockIQ2_XXS>,
        T::IQ2_XS => quantize_bytes::<BlockIQ2_XS>,
        T::IQ2_S => quantize_bytes::<BlockIQ2_S>,
        T::IQ1_S => quantize_bytes::<BlockIQ1_S>,
        T::IQ1_M => quantize_bytes::<BlockIQ1_M>,
        T::IQ3_XXS => quantize_bytes::<BlockIQ3_XXS>,
        T::IQ3_S => quantize_bytes::<BlockIQ3_S>,
        _ => return None,
    })
}

/// Whether [`dequantize_row`] supports `ty`.
pub fn can_dequantize(ty: GgmlType) -> bool {
    dequant_fn(ty).is_some()
}

/// Whether [`quantize_row`] supports `ty`.
pub fn can_quantize(ty: GgmlType) -> bool {
    quant_fn(ty).is_some()
}

/// Whether quantizing to `ty` needs an importance matrix: ggml's
/// `ggml_quantize_requires_imatrix` (IQ2_XXS, IQ2_XS, IQ1_S); [`quantize_row`] refuses them
/// without one, like llama.cpp.
pub fn requires_imatrix(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::IQ2_XXS | GgmlType::IQ2_XS | GgmlType::IQ1_S)
}

/// Checks that `n` values of `ty` are whole blocks taking `actual` bytes.
fn check_bytes(ty: GgmlType, n: usize, actual: usize) -> Result<(), QuantError> {
    let block = usize::try_from(ty.block_size()).unwrap_or(usize::MAX);
    let not_blocks = QuantError::NotBlockMultiple { ty, n, block };
    let expected = ty
        .row_bytes(n as u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(not_blocks)?;
    if expected != actual {
        return Err(QuantError::ByteLength {
            ty,
            n,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Dequantizes `dst.len()` values of type `ty` from `src`, which must be exactly
/// `ty.row_bytes(dst.len())` bytes (any alignment). Same values as ggml's `dequantize_row_*`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let f = dequant_fn(ty).ok_or(QuantError::DequantizeUnsupported(ty))?;
    check_bytes(ty, dst.len(), src.len())?;
    f(src, dst);
    Ok(())
}

/// Quantizes one row `src` to type `ty` into `dst` (exactly `ty.row_bytes(src.len())` bytes),
/// bytes identical to llama.cpp's `quantize_<type>(src, dst, 1, src.len(), imatrix)`.
/// `imatrix`, if given, holds one importance weight per value of the row; types without a
/// weighted quantizer (Q8_0, Q8_1, Q8_K, TQ1_0, TQ2_0, MXFP4, floats) ignore it, like
/// llama.cpp; IQ2_XXS, IQ2_XS and IQ1_S need it ([`requires_imatrix`]).
pub fn quantize_row(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    imatrix: Option<&[f32]>,
) -> Result<(), QuantError> {
    if src.is_empty() {
        quant_fn(ty).ok_or(QuantError::QuantizeUnsupported(ty))?;
        return check_bytes(ty, 0, dst.len());
    }
    quantize_rows(ty, src, src.len(), dst, imatrix)
}

/// Quantizes `src.len() / n_per_row` rows of `n_per_row` values each (one imatrix of
/// `n_per_row` weights applies to every row), like llama.cpp's `ggml_quantize_chunk`.
pub fn quantize_rows(
    ty: GgmlType,
    src: &[f32],
    n_per_row: usize,
    dst: &mut [u8],
    imatrix: Option<&[f32]>,
) -> Result<(), QuantError> {
    let f = quant_fn(ty).ok_or(QuantError::QuantizeUnsupported(ty))?;
    let block = usize::try_from(ty.block_size()).unwrap_or(usize::MAX);
    if n_per_row == 0 || !n_per_row.is_multiple_of(block) {
        return Err(QuantError::NotBlockMultiple {
            ty,
            n: n_per_row,
            block,
        });
    }
    if !src.len().is_multiple_of(n_per_row) {
        return Err(QuantError::RowLength {
            ty,
            n: src.len(),
            n_per_row,
        });
    }
    check_bytes(ty, src.len(), dst.len())?;
    if imatrix.is_none() && requires_imatrix(ty) {
        return Err(QuantError::ImatrixRequired(ty));
    }
    if let Some(w) = imatrix {
        if w.len() != n_per_row {
            return Err(QuantError::ImatrixLength {
                ty,
                expected: n_per_row,
                actual: w.len(),
            });
        }
    }
    f(src, n_per_row, dst, imatrix);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's `test-quantize-fns` synthetic data: `0.1 + 2 cos(i + offset)`.
    fn synth(n: usize, offset: f32) -> Vec<f32> {
        (0..n)
            .map(|i| 0.1 + 2.0 * (i as f32 + offset).cos())
            .collect()
    }

    fn row_bytes(ty: GgmlType, n: usize) -> usize {
        ty.row_bytes(n as u64)
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(0)
    }

    /// Round trip error bounds of llama.cpp's `test-quantize-fns`.
    #[test]
    fn round_trip_error_within_ggml_bounds() {
        let n = 4096;
        let x = synth(n, 0.0);
        for ty in GgmlType::all().filter(|&t| can_quantize(t)) {
            let max_err = match ty {
                GgmlType::IQ2_XXS | GgmlType::IQ2_XS | GgmlType::IQ2_S => 0.0075,
                GgmlType::IQ3_XXS | GgmlType::IQ3_S => 0.0050,
                GgmlType::IQ1_S | GgmlType::IQ1_M => 0.025,
                GgmlType::Q2_K => 0.0075,
                GgmlType::Q3_K => 0.0040,
                GgmlType::TQ1_0 | GgmlType::TQ2_0 => 0.01,
                _ => 0.002,
            };
            let mut q = vec![0u8; row_bytes(ty, n)];
            let ones = vec![1.0f32; n];
            let im = requires_imatrix(ty).then_some(&ones[..]);
            quantize_row(ty, &x, &mut q, im).unwrap();
            let mut y = vec![0f32; n];
            dequantize_row(ty, &q, &mut y).unwrap();
            // ggml's `array_rmse`: sqrt(sum of squared errors) / n.
            let sum: f64 = x
                .iter()
                .zip(&y)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum();
            let err = sum.sqrt() / n as f64;
            if matches!(ty, GgmlType::TQ1_0 | GgmlType::TQ2_0) {
                // Ternary formats only keep the sign pattern of this data; check they decode.
                assert!(y.iter().all(|v| v.is_finite()), "{ty}");
                continue;
            }
            assert!(err < max_err, "{ty}: mse {err} >= {max_err}");
        }
    }

    /// Non-finite input must not panic (overflow checks are on in test builds).
    #[test]
    fn non_finite_input_does_not_panic() {
        let n = 512;
        let mut x = synth(n, 0.7);
        x[3] = f32::NAN;
        x[300] = f32::INFINITY;
        x[301] = f32::NEG_INFINITY;
        x[400] = f32::MAX;
        let im = vec![1.0f32; n];
        for ty in GgmlType::all().filter(|&t| can_quantize(t)) {
            let mut q = vec![0u8; row_bytes(ty, n)];
            if !requires_imatrix(ty) {
                quantize_row(ty, &x, &mut q, None).unwrap();
            }
            quantize_row(ty, &x, &mut q, Some(&im)).unwrap();
            let mut y = vec![0f32; n];
            dequantize_row(ty, &q, &mut y).unwrap();
        }
    }

    #[test]
    fn unaligned_buffers_give_the_same_values_and_bytes() {
        let n = 512;
        let x = synth(n, 1.5);
        for ty in GgmlType::all().filter(|&t| can_quantize(t)) {
            let rb = row_bytes(ty, n);
            let ones = vec![1.0f32; n];
            let im = requires_imatrix(ty).then_some(&ones[..]);
            let mut aligned = vec![0u8; rb];
            quantize_row(ty, &x, &mut aligned, im).unwrap();
            let mut shifted = vec![0u8; rb + 1];
            quantize_row(ty, &x, &mut shifted[1..], im).unwrap();
            assert_eq!(aligned, shifted[1..], "{ty} quantize");
            let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
            dequantize_row(ty, &aligned, &mut a).unwrap();
            dequantize_row(ty, &shifted[1..], &mut b).unwrap();
            assert_eq!(a, b, "{ty} dequantize");
        }
    }

    #[test]
    fn bad_lengths_and_types_are_errors() {
        let mut y = vec![0f32; 64];
        assert!(matches!(
            dequantize_row(GgmlType::Q4_0, &[0u8; 35], &mut y),
            Err(QuantError::ByteLength {
                expected: 36,
                actual: 35,
                ..
            })
        ));
        let mut y40 = vec![0f32; 40];
        assert!(matches!(
            dequantize_row(GgmlType::Q4_0, &[0u8; 36], &mut y40),
            Err(QuantError::NotBlockMultiple {
                n: 40,
                block: 32,
                ..
            })
        ));
        assert_eq!(
            dequantize_row(GgmlType::I32, &[0u8; 256], &mut y),
            Err(QuantError::DequantizeUnsupported(GgmlType::I32))
        );
        let x = vec![1f32; 256];
        let mut q = vec![0u8; 144];
        assert_eq!(
            quantize_row(GgmlType::Q4_K, &x, &mut q, Some(&[1.0; 255])),
            Err(QuantError::ImatrixLength {
                ty: GgmlType::Q4_K,
                expected: 256,
                actual: 255
            })
        );
        assert!(quantize_row(GgmlType::Q4_K, &x, &mut q[..143], None).is_err());
        assert!(quantize_rows(GgmlType::Q4_K, &x, 128, &mut q, None).is_err());
        assert!(quantize_rows(GgmlType::Q8_0, &x, 96, &mut q, None).is_err());
        assert!(quantize_row(GgmlType::Q4_K, &[], &mut [], None).is_ok());
        assert!(dequantize_row(GgmlType::Q4_K, &[], &mut []).is_ok());
        assert_eq!(
            quantize_row(GgmlType::IQ2_XXS, &x, &mut [0u8; 66], None),
            Err(QuantError::ImatrixRequired(GgmlType::IQ2_XXS))
        );
        assert!(!can_quantize(GgmlType::I8) && !can_quantize(GgmlType::I32));
    }

    /// Q8_1 runs Q8_0's arithmetic (verified against llama.cpp by the golden tests) and adds
    /// `s = d * sum(qs)`.
    #[test]
    fn q8_1_matches_q8_0_plus_sum() {
        let x = synth(1024, 0.3);
        let mut a = vec![BlockQ8_0::default(); 32];
        let mut b = vec![BlockQ8_1::default(); 32];
        BlockQ8_0::quantize_row(&x, &mut a, None);
        BlockQ8_1::quantize_row(&x, &mut b, None);
        for ((a, b), xb) in a.iter().zip(&b).zip(x.chunks_exact(32)) {
            assert_eq!((a.d, a.qs), (b.d, b.qs));
            let sum: i32 = b.qs.iter().map(|&q| i32::from(q)).sum();
            // s uses the f32 scale, before its rounding to f16.
            let d = xb.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            assert_eq!(b.s, half::f16::from_f32(sum as f32 * d));
        }
    }

    /// Q8_K by hand: the value of largest magnitude maps to -127 exactly (d = max / -127), the
    /// rest round to nearest even, bsums are group sums.
    #[test]
    fn q8_k_layout() {
        let mut x = vec![0f32; 256];
        x[0] = 2.54; // largest magnitude: level -127, d = -0.02
        x[1] = -1.27; // level 63.5 -> 64 (ties to even)
        x[2] = 0.01; // -0.5 -> 0 (ties to even)
        x[17] = -0.03; // 1.5 -> 2
        let b = q8_k::quantize_block(&x);
        assert_eq!(b.d, 1.0 / (-127.0 / 2.54));
        assert_eq!(&b.qs[..3], &[-127, 64, 0]);
        assert_eq!(b.qs[17], 2);
        assert_eq!(b.bsums[0], -127 + 64);
        assert_eq!(b.bsums[1], 2);
        let z = q8_k::quantize_block(&[0.0; 256]);
        assert_eq!((z.d, z.qs, z.bsums), (0.0, [0; 256], [0; 16]));
    }

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        use search::nearest_int;
        assert_eq!(
            [0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, -7.6].map(nearest_int),
            [0, 2, 2, 0, -2, 2, -8]
        );
    }

    #[test]
    fn block_sizes_match_the_type_table() {
        fn check<B: QuantBlock>() {
            assert_eq!(
                std::mem::size_of::<B>() as u64,
                B::TYPE.type_size(),
                "{}",
                B::TYPE
            );
            assert_eq!(B::BLOCK_SIZE as u64, B::TYPE.block_size(), "{}", B::TYPE);
        }
        check::<f32>();
        check::<half::f16>();
        check::<half::bf16>();
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ8_0>();
        check::<BlockQ8_1>();
        check::<BlockQ2_K>();
        check::<BlockQ3_K>();
        check::<BlockQ4_K>();
        check::<BlockQ5_K>();
        check::<BlockQ6_K>();
        check::<BlockQ8_K>();
        check::<BlockIQ4_NL>();
        check::<BlockIQ4_XS>();
        check::<BlockTQ1_0>();
        check::<BlockTQ2_0>();
        check::<BlockMXFP4>();
        check::<BlockIQ2_XXS>();
        check::<BlockIQ2_XS>();
        check::<BlockIQ2_S>();
        check::<BlockIQ3_XXS>();
        check::<BlockIQ3_S>();
        check::<BlockIQ1_S>();
        check::<BlockIQ1_M>();
    }
}
