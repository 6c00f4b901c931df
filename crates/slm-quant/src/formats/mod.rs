//! Quantization formats, bit-exact with llama.cpp's ggml (`ggml-quants.c`, `ggml-common.h`).
//!
//! One file per format: a `#[repr(C)]` block struct (`bytemuck::Pod`) with its bit-layout
//! diagram, the reference dequantization and, where implemented, llama.cpp's quantizer with the
//! same float operation order so that output bytes are identical. Shared scale searches of the
//! K-quants are in [`search`]. The dynamic entry points [`dequantize_row`], [`quantize_row`] and
//! [`quantize_rows`] dispatch on a [`GgmlType`].

use bytemuck::Pod;
use slm_gguf::GgmlType;

use crate::QuantError;

pub mod float;
pub mod iq4;
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
            for (chunk, out) in src.chunks_exact(size).zip(dst.chunks_exact_mut(B::BLOCK_SIZE)) {
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
    for (x, out) in src.chunks_exact(n_per_row).zip(dst.chunks_exact_mut(row_bytes)) {
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
/// weighted quantizer (Q8_0, Q8_1, Q8_K, TQ1_0, TQ2_0, floats) ignore it, like llama.cpp.
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
