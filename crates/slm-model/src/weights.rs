//! Weight handles: a tensor of the mapped GGUF file, checked once at load time against the
//! shape the hyperparameters call for, then read in place (never copied, never dequantized in
//! full) during the forward pass.

use slm_gguf::{GgmlType, GgufFile, TensorInfo};

use crate::error::{ModelError, Result};

/// A 2-D weight matrix (rows, cols) or a 1-D vector (1, cols) inside the model file.
#[derive(Clone, Debug)]
pub struct Weight {
    pub info: TensorInfo,
    /// Output features (ggml `ne[1]`).
    pub rows: usize,
    /// Input features, contiguous (ggml `ne[0]`).
    pub cols: usize,
    /// The GGUF tensor name under which an [`ActivationObserver`](crate::trace::ActivationObserver)
    /// sees this matmul's input: the tensor's own name, the fused tensor's name for the first
    /// slice of a fused `attn_qkv`/`ffn_up` (the input is shared), `None` for the other slices.
    pub observe_as: Option<String>,
}

impl Weight {
    /// The tensor's bytes in `file` (the file it was loaded from).
    pub fn data<'a>(&self, file: &'a GgufFile) -> &'a [u8] {
        file.tensor_data(&self.info)
    }

    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }
}

/// Find `name` and check its dims (ggml order, `dims[0]` contiguous) equal `dims`.
pub fn tensor(file: &GgufFile, name: &str, dims: &[u64]) -> Result<Weight> {
    let info = file
        .tensor_info(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    if info.dims != dims {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: dims.to_vec(),
            actual: info.dims.clone(),
        });
    }
    if !slm_quant::formats::can_dequantize(info.ty) {
        return Err(ModelError::TensorType {
            name: name.to_string(),
            ty: info.ty,
            why: "cannot be dequantized",
        });
    }
    let cols = usize::try_from(dims.first().copied().unwrap_or(1)).unwrap_or(usize::MAX);
    let rows = usize::try_from(dims.get(1).copied().unwrap_or(1)).unwrap_or(usize::MAX);
    let w = Weight {
        info: info.clone(),
        rows,
        cols,
        observe_as: Some(name.to_string()),
    };
    if dims.len() == 2 {
        // Matrices must have a matmul kernel: check once here, not in the forward pass.
        slm_tensor::matmul::QMatrix::new(w.ty(), rows, cols, w.data(file))?;
    }
    Ok(w)
}

/// An f32 vector (norm weights) of length `n`, copied out of the file.
pub fn vector(file: &GgufFile, name: &str, n: usize) -> Result<Vec<f32>> {
    let w = tensor(file, name, &[n as u64])?;
    let mut out = vec![0.0f32; n];
    slm_quant::formats::dequantize_row(w.ty(), w.data(file), &mut out)?;
    Ok(out)
}

/// Whether the file has a tensor `name`.
pub fn has(file: &GgufFile, name: &str) -> bool {
    file.tensor_info(name).is_some()
}
