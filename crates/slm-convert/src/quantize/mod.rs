//! GGUF -> GGUF quantization with llama.cpp's per-tensor type policies, byte-identical to
//! `llama_model_quantize` (llama.cpp as vendored by llama-cpp-python 0.3.36).
//!
//! - [`ftype`]: the file types (mixes) and their ids;
//! - [`tensor_kind`]: what a tensor's name and shape say (category, quantizable, order);
//! - [`policy`]: which tensors are quantized and to what (llama.cpp's rules);
//! - [`plan`]: the whole output decided before any byte is written (tensor order, types, sizes,
//!   the refusals: requantizing, missing imatrix);
//! - [`run`]: the multi-threaded conversion and the GGUF writing.
//!
//! Entry point: [`quantize_file`] (or [`quantize_file_with_progress`]).

pub mod ftype;
pub mod plan;
pub mod policy;
pub mod run;
pub mod tensor_kind;

use std::collections::BTreeMap;

pub use ftype::FileType;
pub use plan::{plan, Plan, TensorPlan};
pub use policy::ModelParams;
pub use run::{quantize_file, quantize_file_with_progress, Progress};
use slm_gguf::{GgmlType, Value};

/// ggml's `GGML_QNT_VERSION`, written as `general.quantization_version`.
pub const QUANTIZATION_VERSION: u32 = 2;

/// What to quantize to and how (`llama_model_quantize_params`).
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    /// The mix (`Q4_K_M`, `Q8_0`, `F16`, ...).
    pub ftype: FileType,
    /// Worker threads; 0 uses every core.
    pub threads: usize,
    /// Allow converting tensors that are already quantized (quality loss: the new rounding
    /// error adds to the old one).
    pub allow_requantize: bool,
    /// Every quantizable tensor gets the mix's default type (no per-tensor rules).
    pub pure: bool,
    /// Keep `output.weight` as it is (`--leave-output-tensor`).
    pub leave_output_tensor: bool,
    /// Type of `output.weight` (and of tied token embeddings).
    pub output_tensor_type: Option<GgmlType>,
    /// Type of `token_embd.weight`.
    pub token_embedding_type: Option<GgmlType>,
    /// `--tensor-type PATTERN=TYPE` overrides, in order (regex searched in tensor names; the
    /// first match wins).
    pub tensor_types: Vec<(String, GgmlType)>,
    /// Importance per weight name: `ne0 * n_expert` values (as [`crate::imatrix::read`]
    /// gives them).
    pub imatrix: Option<BTreeMap<String, Vec<f32>>>,
    /// Metadata set after the input's (llama.cpp's `kv_overrides`: an existing key is removed,
    /// then appended), e.g. [`imatrix_metadata`].
    pub kv_overrides: Vec<(String, Value)>,
}

impl QuantizeOptions {
    /// llama.cpp's defaults for a mix (`llama_model_quantize_default_params`).
    pub fn new(ftype: FileType) -> Self {
        QuantizeOptions {
            ftype,
            threads: 0,
            allow_requantize: false,
            pure: false,
            leave_output_tensor: false,
            output_tensor_type: None,
            token_embedding_type: None,
            tensor_types: Vec::new(),
            imatrix: None,
            kv_overrides: Vec::new(),
        }
    }
}

/// The metadata `llama-quantize --imatrix FILE` adds (`quantize.imatrix.*`): the file name as
/// given, the first dataset, the entry count and the chunk count (strings cut to 127 bytes like
/// its `strncpy`). Put it in [`QuantizeOptions::kv_overrides`] to match its files byte for byte.
pub fn imatrix_metadata(
    file_as_given: &str,
    imatrix: &crate::imatrix::Importance,
) -> Vec<(String, Value)> {
    fn cut(s: &str) -> String {
        let mut end = s.len().min(127);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    }
    let mut kv = vec![(
        "quantize.imatrix.file".to_string(),
        Value::String(cut(file_as_given)),
    )];
    if let Some(d) = imatrix.datasets.first() {
        kv.push((
            "quantize.imatrix.dataset".to_string(),
            Value::String(cut(d)),
        ));
    }
    let entries = u32::try_from(imatrix.tensors.len()).unwrap_or(u32::MAX);
    kv.push((
        "quantize.imatrix.entries_count".to_string(),
        Value::U32(entries),
    ));
    if imatrix.chunk_count > 0 {
        kv.push((
            "quantize.imatrix.chunks_count".to_string(),
            Value::U32(imatrix.chunk_count),
        ));
    }
    kv
}

/// The outcome of a quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeReport {
    pub ftype: FileType,
    pub n_tensors: usize,
    /// Tensors whose type changed.
    pub n_converted: usize,
    /// Tensors whose row size forced a fallback type.
    pub n_fallback: usize,
    pub n_elements: u64,
    pub input_file_bytes: u64,
    pub output_file_bytes: u64,
    /// Sum of tensor data sizes (without header and padding), before and after.
    pub input_tensor_bytes: u64,
    pub output_tensor_bytes: u64,
    pub seconds: f64,
    pub threads: usize,
    /// Output tensor count per type, in type-id order.
    pub type_counts: Vec<(GgmlType, usize)>,
    /// Every tensor in output order with its source and chosen type.
    pub tensors: Vec<TensorPlan>,
}

impl QuantizeReport {
    /// Bits per weight of the input tensors (llama.cpp's "BPW": tensor bytes * 8 / elements).
    pub fn bpw_before(&self) -> f64 {
        bits_per_weight(self.input_tensor_bytes, self.n_elements)
    }

    /// Bits per weight of the output tensors.
    pub fn bpw_after(&self) -> f64 {
        bits_per_weight(self.output_tensor_bytes, self.n_elements)
    }

    /// How much smaller the output file is, in % of the input file.
    pub fn reduction_percent(&self) -> f64 {
        if self.input_file_bytes == 0 {
            return 0.0;
        }
        100.0 * (1.0 - self.output_file_bytes as f64 / self.input_file_bytes as f64)
    }
}

fn bits_per_weight(bytes: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / n as f64
    }
}
