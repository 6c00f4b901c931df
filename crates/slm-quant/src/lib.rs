//! Quantization formats (one file per format under `formats/`: block struct, bit-layout doc,
//! reference quantize/dequantize) and the compute kernels (`kernels/`: dot products of each
//! weight type with its activation format, scalar reference plus per-ISA versions chosen once at
//! run time).
//!
//! The dynamic entry points [`dequantize_row`], [`quantize_row`], [`quantize_rows`] and
//! [`can_quantize`] dispatch on a [`GgmlType`]; the typed block structs and the
//! [`QuantBlock`]/[`Quantize`] traits live in [`formats`].

pub mod formats;
pub mod kernels;

pub use formats::{
    can_dequantize, can_quantize, dequantize_row, quantize_row, quantize_rows, requires_imatrix,
    QuantBlock, Quantize,
};
pub use slm_gguf::GgmlType;

/// Errors of the quantization crate: a buffer that does not fit its type, or a type without an
/// implementation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    #[error("{ty}: {n} elements are not a whole number of {block}-element blocks")]
    NotBlockMultiple {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    #[error("{ty}: {n} elements take {expected} bytes, the buffer has {actual}")]
    ByteLength {
        ty: GgmlType,
        n: usize,
        expected: usize,
        actual: usize,
    },
    #[error("{ty}: the importance matrix has {actual} values, a row has {expected}")]
    ImatrixLength {
        ty: GgmlType,
        expected: usize,
        actual: usize,
    },
    #[error("{ty}: {n} source values do not fill rows of {n_per_row}")]
    RowLength {
        ty: GgmlType,
        n: usize,
        n_per_row: usize,
    },
    #[error("quantizing to {0} needs an importance matrix")]
    ImatrixRequired(GgmlType),
    #[error("dequantizing {0} is not implemented")]
    DequantizeUnsupported(GgmlType),
    #[error("quantizing to {0} is not implemented")]
    QuantizeUnsupported(GgmlType),
}
