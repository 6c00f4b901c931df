//! The seam between the on-disk block layout and a backend's compute layout.
//!
//! Weights stay in GGUF (ggml) block layout on disk and in the mmap. A backend that wants a
//! different layout (interleaved rows for a NEON/AVX-512 GEMM, a GPU-friendly split of scales
//! and quants) converts once at load time through [`repack`]; kernels then declare which
//! [`Layout`] they read. Today every CPU level computes on the ggml layout, so repacking is the
//! identity and borrows the data (no copy).

use super::SimdLevel;
use slm_gguf::GgmlType;
use std::borrow::Cow;

/// A compute layout of a weight matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// ggml's block layout, each row contiguous (what GGUF stores).
    Ggml,
}

/// The layout `level`'s kernels read for weight type `ty`.
pub fn layout_for(_level: SimdLevel, _ty: GgmlType) -> Layout {
    Layout::Ggml
}

/// Converts a `(rows, row_bytes)` ggml-layout matrix into the layout `level` computes on.
/// Borrowed when that layout is the ggml one.
pub fn repack<'a>(level: SimdLevel, ty: GgmlType, data: &'a [u8]) -> (Layout, Cow<'a, [u8]>) {
    match layout_for(level, ty) {
        Layout::Ggml => (Layout::Ggml, Cow::Borrowed(data)),
    }
}
