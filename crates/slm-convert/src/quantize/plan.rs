//! The whole output decided before a byte is written: llama.cpp's tensor order, the type of
//! every tensor (through [`super::policy`]), sizes, and the refusals llama.cpp makes
//! (requantizing without permission, a very low-bit type without an importance matrix, an
//! importance matrix of the wrong size) plus the ones slm needs (types it cannot convert).

use regex::Regex;
use slm_gguf::{GgmlType, Gguf};

use super::policy::{
    allows_quantization, choose_types, requires_imatrix, trim_dims, ModelParams, PolicyOptions,
    TensorDesc,
};
use super::QuantizeOptions;
use crate::error::{Error, Result};

/// One output tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorPlan {
    pub name: String,
    /// ggml dims without trailing 1s, as written.
    pub dims: Vec<u64>,
    pub src_type: GgmlType,
    pub dst_type: GgmlType,
    pub src_bytes: u64,
    pub dst_bytes: u64,
    /// Whether an importance matrix entry will be used for it.
    pub uses_imatrix: bool,
}

impl TensorPlan {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Whether the data must be converted (otherwise it is copied).
    pub fn converts(&self) -> bool {
        self.src_type != self.dst_type
    }
}

/// Every output tensor, in output order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub model: ModelParams,
    pub tensors: Vec<TensorPlan>,
    pub n_fallback: usize,
}

/// Decides the output of quantizing `g` with `opts` (llama.cpp's preliminary loop).
pub fn plan(g: &Gguf, opts: &QuantizeOptions) -> Result<Plan> {
    let model = ModelParams::from_gguf(g)?;
    let mut overrides = Vec::with_capacity(opts.tensor_types.len());
    for (pattern, ty) in &opts.tensor_types {
        let re = Regex::new(pattern).map_err(|e| {
            Error::Quantize(format!(
                "--tensor-type pattern {pattern:?} is not a regex: {e}"
            ))
        })?;
        overrides.push((re, *ty));
    }
    if let Some(im) = &opts.imatrix {
        if let Some((name, _)) = im.iter().find(|(_, v)| v.iter().any(|x| !x.is_finite())) {
            return Err(Error::Quantize(format!(
                "the importance matrix of {name} contains non-finite values"
            )));
        }
    }
    let popts = PolicyOptions {
        ftype: opts.ftype,
        pure: opts.pure,
        quantize_output: !opts.leave_output_tensor,
        output_tensor_type: opts.output_tensor_type,
        token_embedding_type: opts.token_embedding_type,
        overrides,
        has_imatrix: opts.imatrix.is_some(),
    };

    let descs: Vec<TensorDesc> = g
        .tensors()
        .iter()
        .map(|t| TensorDesc {
            name: t.name.clone(),
            dims: trim_dims(&t.dims),
            ty: t.ty,
        })
        .collect();
    let (chosen, n_fallback) = choose_types(&model, &popts, &descs)?;
    let mut tensors = Vec::with_capacity(chosen.len());
    for (desc, dst) in chosen {
        let src_bytes = g.tensor_info(&desc.name).map_or(0, |t| t.n_bytes);
        tensors.push(check(&desc, src_bytes, dst, &model, opts)?);
    }
    Ok(Plan {
        model,
        tensors,
        n_fallback,
    })
}

/// Sizes one tensor and refuses what llama.cpp (or slm) cannot or must not do.
fn check(
    t: &TensorDesc,
    src_bytes: u64,
    dst: GgmlType,
    model: &ModelParams,
    opts: &QuantizeOptions,
) -> Result<TensorPlan> {
    let name = &t.name;
    let ne0 = t.dims.first().copied().unwrap_or(1);
    let n_rows = t.dims.iter().skip(1).product::<u64>();
    let dst_bytes = dst
        .row_bytes(ne0)
        .and_then(|r| r.checked_mul(n_rows))
        .ok_or_else(|| {
            Error::Quantize(format!(
                "tensor {name}: rows of {ne0} are not a whole number of {dst} blocks ({})",
                dst.block_size()
            ))
        })?;
    let mut uses_imatrix = false;
    let needs = allows_quantization(name, &t.dims, &model.arch, !opts.leave_output_tensor)
        && requires_imatrix(name, dst, opts.ftype);
    if needs && opts.imatrix.is_none() {
        return Err(Error::Quantize(format!(
            "{} needs an importance matrix (tensor {name} becomes {dst}): without one the \
             result is garbage. Compute one with `slm imatrix` and pass --imatrix FILE",
            opts.ftype
        )));
    }
    if t.ty != dst {
        if t.ty.is_quantized() && !opts.allow_requantize {
            let why = if dst.is_quantized() {
                format!("quantizing it again to {dst} adds a second rounding error to the first and loses quality")
            } else {
                format!("converting it to {dst} cannot bring back the precision it lost")
            };
            return Err(Error::Quantize(format!(
                "tensor {name} is already quantized ({}): {why}. Quantize from the F32/F16/BF16 \
                 original, or pass --allow-requantize to do it anyway",
                t.ty
            )));
        }
        if !slm_quant::can_dequantize(t.ty) {
            return Err(Error::Quantize(format!(
                "tensor {name}: converting from {} is not supported",
                t.ty
            )));
        }
        if !slm_quant::can_quantize(dst) {
            return Err(Error::Quantize(format!(
                "tensor {name}: quantizing to {dst} is not supported"
            )));
        }
        let ne2 = t.dims.get(2).copied().unwrap_or(1);
        if let Some(im) = opts.imatrix.as_ref().and_then(|m| m.get(name)) {
            let want = ne0.saturating_mul(ne2);
            if im.len() as u64 == want {
                uses_imatrix = true;
            } else if !(name == "token_embd.weight" || name == "per_layer_token_embd.weight") {
                return Err(Error::Quantize(format!(
                    "imatrix size {} is different from tensor size {want} for {name}",
                    im.len()
                )));
            }
        }
        if needs && !uses_imatrix {
            return Err(Error::Quantize(format!(
                "the importance matrix has no entry for tensor {name}, which becomes {dst}: \
                 without one the result is garbage"
            )));
        }
    }
    Ok(TensorPlan {
        name: name.clone(),
        dims: t.dims.clone(),
        src_type: t.ty,
        dst_type: dst,
        src_bytes,
        dst_bytes,
        uses_imatrix,
    })
}
