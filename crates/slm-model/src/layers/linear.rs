//! `y = x W^T` for a weight stored in any GGUF type with a dot kernel: x (n_tokens, cols),
//! W (rows, cols), y (n_tokens, rows). A thin wrapper over `slm_tensor::matmul` (activations
//! quantized to the weight's activation format, rows split over the pool).

use slm_gguf::GgufFile;
use slm_tensor::matmul::{matmul, QMatrix};

use super::par::Threads;
use crate::error::Result;
use crate::weights::Weight;

/// y (n_tokens, w.rows) = x (n_tokens, w.cols) · W^T.
pub fn linear(
    threads: &Threads,
    file: &GgufFile,
    w: &Weight,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let n_tokens = x.len() / w.cols.max(1);
    let m = QMatrix::new(w.ty(), w.rows, w.cols, w.data(file))?;
    matmul(threads.pool(), &m, x, y, n_tokens)?;
    Ok(())
}
