//! HF folder -> GGUF: [`plan`] reads config.json, the tokenizer files and the safetensors
//! headers and decides every metadata entry and tensor (name, ggml dims, type, source);
//! [`Plan::write`] streams the tensors through the GGUF writer one at a time.
//!
//! Tensor types follow llama.cpp's `prepare_tensors`: 1-D tensors and `*_norm.weight` stay F32,
//! everything else takes the output type; a quantized type whose block does not divide a row
//! falls back to F16, as gguf-py's quantizer does.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};
use slm_gguf::{GgmlType, GgufBuilder, Value};

use crate::error::{Error, Result};
use crate::hf::arch::{self, permute, Transform};
use crate::hf::config::{Arch, HfConfig};
use crate::hf::meta::{id_to_title, size_label, Meta};
use crate::hf::safetensors::{to_f32, HfTensors};
use crate::hf::vocab;

/// What `slm convert` was asked for.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Type of the 2-D weights (F32, F16, BF16, Q8_0, or any type slm-quant quantizes without
    /// an importance matrix).
    pub outtype: GgmlType,
    /// BPE pre-tokenizer name, overriding detection.
    pub pre: Option<String>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            outtype: GgmlType::F16,
            pre: None,
        }
    }
}

/// Where a tensor's values come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An HF tensor, changed by `transform`; `rows` keeps only that many leading rows.
    Hf {
        name: String,
        transform: Transform,
        rows: Option<u64>,
    },
    /// Values llama.cpp generates (RoPE factors).
    Generated(Vec<f32>),
}

/// One tensor to write.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    pub name: String,
    /// ggml order: dims[0] is the contiguous one.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub source: Source,
}

/// Everything a conversion will write.
pub struct Plan {
    pub dir: PathBuf,
    pub arch: Arch,
    pub meta: Meta,
    pub tensors: Vec<PlannedTensor>,
    st: HfTensors,
}

/// llama.cpp's `general.file_type` for an output type.
pub fn file_type(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q2_K => 10,
        GgmlType::Q3_K => 12,
        GgmlType::Q4_K => 15,
        GgmlType::Q5_K => 17,
        GgmlType::Q6_K => 18,
        GgmlType::IQ4_NL => 25,
        GgmlType::BF16 => 32,
        GgmlType::TQ1_0 => 36,
        GgmlType::TQ2_0 => 37,
        _ => return None,
    })
}

/// Plan the conversion of the HF model folder `dir`.
pub fn plan(dir: &Path, opts: &ConvertOptions) -> Result<Plan> {
    if !dir.is_dir() {
        return Err(Error::MissingFile {
            path: dir.display().to_string(),
            what: "to be a folder".into(),
        });
    }
    let ft = file_type(opts.outtype)
        .filter(|_| {
            slm_quant::can_quantize(opts.outtype) && !slm_quant::requires_imatrix(opts.outtype)
        })
        .ok_or_else(|| Error::HfConfig {
            file: "--outtype".into(),
            why: format!(
                "{} is not an output type slm convert writes",
                opts.outtype.name()
            ),
        })?;
    let cfg = HfConfig::load(dir)?;
    let st = HfTensors::open(dir)?;
    let mut m = Meta::default();
    m.str("general.architecture", cfg.arch.gguf_name());
    m.str("general.type", "model");
    m.str("general.name", &model_name(dir, &cfg));
    m.str("general.size_label", "");
    let extra = arch::extra_tensors(&cfg, &mut m)?;
    arch::set_params(dir, &cfg, &mut m, ft)?;
    m.u32("general.quantization_version", 2);
    let n_tokens = vocab::set_vocab(dir, &cfg, &mut m, opts.pre.as_deref())?;

    let mut tensors = Vec::new();
    for (name, vals) in extra {
        tensors.push(PlannedTensor {
            name,
            dims: vec![vals.len() as u64],
            ty: GgmlType::F32,
            source: Source::Generated(vals),
        });
    }
    for (t, _) in st.iter() {
        let Some((name, transform)) = arch::map_tensor(&cfg, &t.name)? else {
            continue;
        };
        if !matches!(t.dtype.name(), "F32" | "F16" | "BF16") {
            return Err(Error::HfTensor {
                tensor: t.name.clone(),
                why: format!("dtype {} (slm convert reads F32, F16, BF16)", t.dtype),
            });
        }
        let mut dims: Vec<u64> = t.shape.iter().rev().copied().collect();
        if dims.is_empty() {
            dims.push(1);
        }
        if dims.len() > 4 {
            return Err(Error::HfTensor {
                tensor: t.name.clone(),
                why: format!("{} dimensions", dims.len()),
            });
        }
        // Gemma: the embedding keeps only the rows of real tokens.
        let mut rows = None;
        if matches!(cfg.arch, Arch::Gemma3 | Arch::GemmaEmbedding) && name == "token_embd.weight" {
            if let Some(last) = dims.last_mut() {
                if *last > n_tokens as u64 {
                    *last = n_tokens as u64;
                    rows = Some(*last);
                }
            }
        }
        let ty = tensor_type(&name, &dims, opts.outtype);
        tensors.push(PlannedTensor {
            name,
            dims,
            ty,
            source: Source::Hf {
                name: t.name.clone(),
                transform,
                rows,
            },
        });
    }
    let total: u64 = tensors.iter().map(|t| t.dims.iter().product::<u64>()).sum();
    m.str("general.size_label", &size_label(total));
    Ok(Plan {
        dir: dir.to_path_buf(),
        arch: cfg.arch,
        meta: m,
        tensors,
        st,
    })
}

/// `general.name`: the model id of `_name_or_path` when it is one, else the folder name.
fn model_name(dir: &Path, cfg: &HfConfig) -> String {
    let from_cfg = cfg
        .params
        .get("_name_or_path")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty() && !s.starts_with(['/', '.']) && s.split('/').count() <= 2)
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_string());
    let base = from_cfg.unwrap_or_else(|| {
        dir.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into())
    });
    id_to_title(&base)
}

/// llama.cpp's per-tensor type choice.
fn tensor_type(name: &str, dims: &[u64], out: GgmlType) -> GgmlType {
    if dims.len() <= 1 || name.ends_with("_norm.weight") || !name.ends_with(".weight") {
        return GgmlType::F32;
    }
    let ne0 = dims.first().copied().unwrap_or(0);
    if out.is_quantized() && ne0 % out.block_size() != 0 {
        return GgmlType::F16;
    }
    out
}

impl Plan {
    /// The values of `t` after its transform, as f32 (row-major HF order).
    pub fn values(&self, t: &PlannedTensor) -> Result<Vec<f32>> {
        match &t.source {
            Source::Generated(v) => Ok(v.clone()),
            Source::Hf {
                name,
                transform,
                rows,
            } => {
                let (info, bytes) = self.st.get(name).ok_or_else(|| Error::HfTensor {
                    tensor: name.clone(),
                    why: "vanished from the safetensors files".into(),
                })?;
                let mut v = to_f32(info, bytes)?;
                let n_rows = info.shape.first().copied().unwrap_or(1) as usize;
                let cols = v.len().checked_div(n_rows).unwrap_or(0);
                if let Some(r) = rows {
                    v.truncate(*r as usize * cols);
                }
                match *transform {
                    Transform::None => {}
                    Transform::Shift(s) => v.iter_mut().for_each(|x| *x += s),
                    Transform::Permute { n_head } => {
                        let cols = if info.shape.len() >= 2 { cols } else { 1 };
                        v = permute(&v, v.len() / cols, cols, n_head, false);
                    }
                }
                Ok(v)
            }
        }
    }

    /// Encode `t` in its GGUF type.
    pub fn encode(&self, t: &PlannedTensor) -> Result<Vec<u8>> {
        let v = self.values(t)?;
        encode(
            &t.name,
            &v,
            t.dims.first().copied().unwrap_or(1) as usize,
            t.ty,
        )
    }

    /// Write the GGUF file to `out` (through `out.tmp`, renamed at the end). `progress(i, n,
    /// name)` is called before each tensor.
    pub fn write(&self, out: &Path, progress: &mut dyn FnMut(usize, usize, &str)) -> Result<()> {
        let mut b = GgufBuilder::new();
        for (k, v) in &self.meta.kv {
            b.kv(k, v.clone())?;
        }
        for t in &self.tensors {
            b.tensor(&t.name, &t.dims, t.ty)?;
        }
        let tmp = out.with_extension("gguf.tmp");
        let io = |source| Error::Io {
            path: tmp.display().to_string(),
            source,
        };
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut w = b.write_header(BufWriter::new(file))?;
        let n = self.tensors.len();
        for (i, t) in self.tensors.iter().enumerate() {
            progress(i, n, &t.name);
            w.write_tensor(&self.encode(t)?)?;
        }
        progress(n, n, "");
        let mut inner = w.finish()?;
        inner.flush().map_err(io)?;
        inner.get_ref().sync_all().map_err(io)?;
        drop(inner);
        std::fs::rename(&tmp, out).map_err(|source| Error::Io {
            path: out.display().to_string(),
            source,
        })
    }

    /// What would be written, for `--dry-run --json`.
    pub fn to_json(&self) -> Json {
        let meta: serde_json::Map<String, Json> = self
            .meta
            .kv
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        let tensors: Vec<Json> = self
            .tensors
            .iter()
            .map(|t| {
                let src = match &t.source {
                    Source::Hf {
                        name, transform, ..
                    } => {
                        json!({"hf": name, "transform": format!("{transform:?}")})
                    }
                    Source::Generated(_) => json!("generated"),
                };
                json!({"name": t.name, "type": t.ty.name(), "dims": t.dims, "source": src})
            })
            .collect();
        json!({"architecture": self.arch.gguf_name(), "metadata": meta, "tensors": tensors})
    }
}

/// Metadata as JSON, arrays longer than 8 summarized.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Array(a) if a.len() > 8 => {
            json!(format!("[{} x {}]", a.len(), a.elem_type().name()))
        }
        Value::Array(slm_gguf::Array::String(s)) => json!(s),
        Value::Array(a) => match a.to_i64s() {
            Some(i) => json!(i),
            None => json!(a.as_f32s()),
        },
        Value::String(s) if s.len() > 200 => json!(format!(
            "{}... ({} bytes)",
            &s[..s.floor_char_boundary(200)],
            s.len()
        )),
        Value::String(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        other => match other.as_i64() {
            Some(i) => json!(i),
            None => json!(format!("{other:?}")),
        },
    }
}

/// f32 values -> bytes of `ty` (rows of `ne0`).
pub fn encode(name: &str, v: &[f32], ne0: usize, ty: GgmlType) -> Result<Vec<u8>> {
    if ty == GgmlType::F32 {
        let mut out = Vec::with_capacity(v.len() * 4);
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
        return Ok(out);
    }
    let n = ty
        .row_bytes(v.len() as u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| Error::HfTensor {
            tensor: name.to_string(),
            why: format!("{} values do not fill {} blocks", v.len(), ty.name()),
        })?;
    let mut out = vec![0u8; n];
    slm_quant::quantize_rows(ty, v, ne0.max(1), &mut out, None).map_err(|source| Error::Quant {
        tensor: name.to_string(),
        source,
    })?;
    Ok(out)
}
