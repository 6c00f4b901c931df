//! Hyperparameters shared by the decoder-only architectures, read from the `{arch}.*` GGUF
//! keys with sanity checks (typed errors, never a panic or a huge allocation from a hostile
//! file). Architecture files read their own extra keys with the same helpers.

use slm_gguf::Gguf;

use crate::error::{ModelError, Result};

/// Largest values accepted from a file; beyond them the file is rejected, not trusted.
const MAX_LAYERS: u64 = 1024;
const MAX_EMBD: u64 = 1 << 16;
const MAX_HEADS: u64 = 1024;
const MAX_HEAD_DIM: u64 = 4096;
const MAX_FF: u64 = 1 << 20;
const MAX_CTX: u64 = 1 << 24;

/// Model hyperparameters (llama.cpp's `llama_hparams` subset that dense decoders use).
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    pub arch: String,
    pub n_vocab: usize,
    pub n_ctx_train: u32,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim_k: usize,
    pub head_dim_v: usize,
    /// Rotated dimensions per head.
    pub n_rot: usize,
    pub rms_eps: f32,
    pub rope_freq_base: f32,
    /// `1 / factor` for linear RoPE scaling, 1.0 without scaling.
    pub rope_freq_scale: f32,
    pub sliding_window: Option<u32>,
    pub attn_soft_cap: Option<f32>,
    pub final_soft_cap: Option<f32>,
}

/// `{arch}.{suffix}` as an integer in `1..=max`, or `default` when absent.
pub fn key_u64(g: &Gguf, arch: &str, suffix: &str, default: Option<u64>, max: u64) -> Result<u64> {
    let key = format!("{arch}.{suffix}");
    let v = match g.get(&key) {
        None => return default.ok_or(ModelError::MissingKey(key)),
        Some(v) => v,
    };
    let n = v.as_u64().ok_or_else(|| ModelError::BadHparam {
        key: key.clone(),
        value: format!("{v:?}"),
        why: "is not a non-negative integer",
    })?;
    if n == 0 || n > max {
        return Err(ModelError::BadHparam {
            key,
            value: n.to_string(),
            why: "is zero or implausibly large",
        });
    }
    Ok(n)
}

/// `{arch}.{suffix}` as a finite positive float, or `default` when absent (`None` when absent
/// and no default).
pub fn key_f32(g: &Gguf, arch: &str, suffix: &str, default: Option<f32>) -> Result<Option<f32>> {
    let key = format!("{arch}.{suffix}");
    let Some(v) = g.get(&key) else {
        return Ok(default);
    };
    let x = v.as_f64().ok_or_else(|| ModelError::BadHparam {
        key: key.clone(),
        value: format!("{v:?}"),
        why: "is not a number",
    })?;
    if !(x.is_finite() && x > 0.0) {
        return Err(ModelError::BadHparam {
            key,
            value: x.to_string(),
            why: "must be finite and positive",
        });
    }
    Ok(Some(x as f32))
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl HParams {
    /// Read the common keys of `arch`; `n_vocab` comes from the token embedding's shape.
    pub fn from_gguf(g: &Gguf, arch: &str) -> Result<HParams> {
        let n_layer = key_u64(g, arch, "block_count", None, MAX_LAYERS)?;
        let n_embd = key_u64(g, arch, "embedding_length", None, MAX_EMBD)?;
        let n_ff = key_u64(g, arch, "feed_forward_length", None, MAX_FF)?;
        let n_head = key_u64(g, arch, "attention.head_count", None, MAX_HEADS)?;
        let n_head_kv = key_u64(g, arch, "attention.head_count_kv", Some(n_head), MAX_HEADS)?;
        if n_head % n_head_kv != 0 {
            return Err(ModelError::BadHparam {
                key: format!("{arch}.attention.head_count_kv"),
                value: n_head_kv.to_string(),
                why: "does not divide attention.head_count",
            });
        }
        let default_dim = (n_embd / n_head).max(1);
        let head_dim_k = key_u64(
            g,
            arch,
            "attention.key_length",
            Some(default_dim),
            MAX_HEAD_DIM,
        )?;
        let head_dim_v = key_u64(
            g,
            arch,
            "attention.value_length",
            Some(default_dim),
            MAX_HEAD_DIM,
        )?;
        let n_rot = key_u64(
            g,
            arch,
            "rope.dimension_count",
            Some(head_dim_k),
            MAX_HEAD_DIM,
        )?;
        if n_rot > head_dim_k || n_rot % 2 != 0 {
            return Err(ModelError::BadHparam {
                key: format!("{arch}.rope.dimension_count"),
                value: n_rot.to_string(),
                why: "must be even and at most attention.key_length",
            });
        }
        let n_ctx_train = key_u64(g, arch, "context_length", Some(4096), MAX_CTX)?;
        let rms_eps =
            key_f32(g, arch, "attention.layer_norm_rms_epsilon", None)?.ok_or_else(|| {
                ModelError::MissingKey(format!("{arch}.attention.layer_norm_rms_epsilon"))
            })?;
        let rope_freq_base =
            key_f32(g, arch, "rope.freq_base", Some(10_000.0))?.unwrap_or(10_000.0);
        let rope_freq_scale = rope_scale(g, arch)?;
        // A window of 0 (as Phi-4-mini GGUFs carry) means no sliding window.
        let sliding_window = match g.get(&format!("{arch}.attention.sliding_window")) {
            None => None,
            Some(v) if v.as_u64() == Some(0) => None,
            Some(_) => Some(key_u64(g, arch, "attention.sliding_window", None, MAX_CTX)? as u32),
        };
        let n_vocab = g
            .tensor_info("token_embd.weight")
            .and_then(|t| t.dims.get(1).copied())
            .ok_or_else(|| ModelError::MissingTensor("token_embd.weight".into()))?;
        Ok(HParams {
            arch: arch.to_string(),
            n_vocab: usize_of(n_vocab),
            n_ctx_train: n_ctx_train as u32,
            n_embd: usize_of(n_embd),
            n_layer: usize_of(n_layer),
            n_ff: usize_of(n_ff),
            n_head: usize_of(n_head),
            n_head_kv: usize_of(n_head_kv),
            head_dim_k: usize_of(head_dim_k),
            head_dim_v: usize_of(head_dim_v),
            n_rot: usize_of(n_rot),
            rms_eps,
            rope_freq_base,
            rope_freq_scale,
            sliding_window,
            attn_soft_cap: key_f32(g, arch, "attn_logit_softcapping", None)?,
            final_soft_cap: key_f32(g, arch, "final_logit_softcapping", None)?,
        })
    }
}

/// `rope.scaling.type`: none -> 1.0; linear -> 1 / `rope.scaling.factor`; others unsupported.
fn rope_scale(g: &Gguf, arch: &str) -> Result<f32> {
    let key = format!("{arch}.rope.scaling.type");
    match g.get_str(&key) {
        None | Some("none") => {}
        Some("linear") => {
            let f = key_f32(g, arch, "rope.scaling.factor", Some(1.0))?.unwrap_or(1.0);
            return Ok(1.0 / f);
        }
        Some(other) => {
            return Err(ModelError::BadHparam {
                key,
                value: other.to_string(),
                why: "is not a supported RoPE scaling (none, linear)",
            })
        }
    }
    // Older files carry only the factor.
    let f = key_f32(g, arch, "rope.scale_linear", Some(1.0))?.unwrap_or(1.0);
    Ok(1.0 / f)
}
