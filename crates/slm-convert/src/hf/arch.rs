//! Per-architecture conversion rules, as llama.cpp's `convert_hf_to_gguf.py` has them
//! (`conversion/{base,llama,qwen,phi,gemma}.py`): the `{arch}.*` hyperparameter keys, the HF ->
//! GGUF tensor names, the layout changes, and generated tensors.
//!
//! Layout changes: Llama's `q_proj`/`k_proj` rows are permuted so that HF's half-split RoPE
//! becomes ggml's adjacent-pair RoPE ([`permute`]); Gemma 3 stores `weight + 1` for every
//! RMSNorm weight (HF's Gemma3RMSNorm multiplies by `1 + w`). Generated tensors: Llama 3's
//! `rope_freqs` and Phi-3's LongRoPE `rope_factors_{long,short}`.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::hf::config::{read_json, Arch, HfConfig};
use crate::hf::meta::Meta;

/// What to do to a tensor's values on the way to GGUF (and undo on the way back).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    None,
    /// Llama's RoPE row permutation with this many heads.
    Permute {
        n_head: usize,
    },
    /// Add this to every value (Gemma's norm weights: +1).
    Shift(f32),
}

/// Set the `{arch}.*` keys and `general.file_type` the way llama.cpp's `set_gguf_parameters`
/// does for `cfg.arch`.
pub fn set_params(dir: &Path, cfg: &HfConfig, m: &mut Meta, file_type: u32) -> Result<()> {
    let a = cfg.arch.gguf_name();
    let k = |s: &str| format!("{a}.{s}");
    match cfg.arch {
        Arch::Phi3 => phi3_params(cfg, m, file_type)?,
        _ => base_params(cfg, m, file_type)?,
    }
    match cfg.arch {
        Arch::Llama => {
            let vocab = cfg.need_u32(&["vocab_size"])?;
            m.u32(&k("vocab_size"), vocab);
            let rope_dim = match cfg.find_u32(&["head_dim"])? {
                Some(d) => d,
                None => {
                    cfg.need_u32(&["hidden_size"])? / cfg.need_u32(&["num_attention_heads"])?.max(1)
                }
            };
            m.u32(&k("rope.dimension_count"), rope_dim);
        }
        Arch::Gemma3 | Arch::GemmaEmbedding => {
            let p = &cfg.params;
            let num = |key: &str, d: f64| p.get(key).and_then(Value::as_f64).unwrap_or(d);
            m.u32(
                &k("context_length"),
                num("max_position_embeddings", 131072.0) as u32,
            );
            m.u32(
                &k("attention.head_count"),
                num("num_attention_heads", 8.0) as u32,
            );
            m.f32(
                &k("attention.layer_norm_rms_epsilon"),
                num("rms_norm_eps", 1e-6),
            );
            m.u32(&k("attention.key_length"), num("head_dim", 256.0) as u32);
            m.u32(&k("attention.value_length"), num("head_dim", 256.0) as u32);
            m.f32(
                &k("rope.freq_base"),
                cfg.rope_f64("rope_theta").unwrap_or(1_000_000.0),
            );
            if let Some(cap) = cfg.find_f64(&["final_logit_softcapping"])? {
                if cap != 0.0 {
                    m.f32(&k("final_logit_softcapping"), cap);
                }
            }
            if p.get("sliding_window_pattern").and_then(Value::as_u64) != Some(1) {
                m.u32(
                    &k("attention.sliding_window"),
                    cfg.need_u32(&["sliding_window"])?,
                );
            }
            m.u32(
                &k("attention.head_count_kv"),
                num("num_key_value_heads", 4.0) as u32,
            );
            if cfg.arch == Arch::GemmaEmbedding {
                pooling_type(dir, m, a)?;
            }
        }
        Arch::Qwen2 | Arch::Qwen3 => pooling_type(dir, m, a)?,
        _ => {}
    }
    Ok(())
}

/// `_try_set_pooling_type`: a sentence-transformers folder (modules.json with a Pooling module)
/// gets `{arch}.pooling_type` (1 mean, 2 cls, 3 last token).
fn pooling_type(dir: &Path, m: &mut Meta, arch: &str) -> Result<()> {
    let modules = dir.join("modules.json");
    if !modules.is_file() {
        return Ok(());
    }
    let list = read_json(&modules)?;
    let path = list.as_array().into_iter().flatten().find_map(|md| {
        let ty = md.get("type")?.as_str()?;
        ty.ends_with("Pooling")
            .then(|| md.get("path")?.as_str().map(str::to_string))
            .flatten()
    });
    let Some(path) = path else {
        return Ok(());
    };
    if path.contains("..") || path.starts_with('/') {
        return Err(Error::HfConfig {
            file: modules.display().to_string(),
            why: format!("pooling module path {path:?} leaves the folder"),
        });
    }
    let p = read_json(&dir.join(&path).join("config.json"))?;
    let flag = |k: &str| p.get(k).and_then(Value::as_bool) == Some(true);
    let ty = if flag("pooling_mode_mean_tokens") {
        1
    } else if flag("pooling_mode_cls_token") {
        2
    } else if flag("pooling_mode_lasttoken") {
        3
    } else {
        match p.get("pooling_mode").and_then(Value::as_str) {
            Some("mean") => 1,
            Some("cls") => 2,
            Some("lasttoken") => 3,
            other => {
                return Err(Error::HfConfig {
                    file: format!("{path}/config.json"),
                    why: format!("unsupported pooling mode {other:?}"),
                })
            }
        }
    };
    m.u32(&format!("{arch}.pooling_type"), ty);
    Ok(())
}

/// `TextModel.set_gguf_parameters` (the keys every text model gets).
fn base_params(cfg: &HfConfig, m: &mut Meta, file_type: u32) -> Result<()> {
    let a = cfg.arch.gguf_name();
    let k = |s: &str| format!("{a}.{s}");
    m.u32(&k("block_count"), cfg.block_count()?);
    let opt = |m: &mut Meta, key: &str, keys: &[&str]| -> Result<()> {
        if let Some(v) = cfg.find_u32(keys)? {
            m.u32(&k(key), v);
        }
        Ok(())
    };
    opt(
        m,
        "context_length",
        &[
            "max_position_embeddings",
            "n_ctx",
            "n_positions",
            "max_length",
            "max_sequence_length",
            "model_max_length",
        ],
    )?;
    opt(m, "embedding_length", &["hidden_size", "n_embd", "dim"])?;
    opt(
        m,
        "feed_forward_length",
        &[
            "prefix_dense_intermediate_size",
            "dense_intermediate_size",
            "intermediate_size",
            "n_inner",
            "hidden_dim",
        ],
    )?;
    opt(
        m,
        "attention.head_count",
        &["num_attention_heads", "n_head", "n_heads"],
    )?;
    opt(
        m,
        "attention.head_count_kv",
        &["num_key_value_heads", "n_kv_heads"],
    )?;
    if cfg.params.get("is_causal") == Some(&Value::Bool(false)) {
        m.bool(&k("attention.causal"), false);
    }
    let factor = cfg.rope_f64("factor");
    match (cfg.rope_type().as_deref(), factor) {
        (Some("linear"), Some(f)) => {
            m.str(&k("rope.scaling.type"), "linear");
            m.f32(&k("rope.scaling.factor"), f);
        }
        (Some("yarn"), Some(f)) => {
            m.str(&k("rope.scaling.type"), "yarn");
            m.f32(&k("rope.scaling.factor"), f);
            let orig = cfg
                .rope_f64("original_max_position_embeddings")
                .ok_or_else(|| Error::HfConfig {
                    file: "config.json".into(),
                    why: "yarn RoPE scaling without original_max_position_embeddings".into(),
                })?;
            m.u32(&k("rope.scaling.original_context_length"), orig as u32);
            for (src, dst) in [
                ("extrapolation_factor", "rope.scaling.yarn_ext_factor"),
                ("attention_factor", "rope.scaling.yarn_attn_factor"),
                ("beta_fast", "rope.scaling.yarn_beta_fast"),
                ("beta_slow", "rope.scaling.yarn_beta_slow"),
            ] {
                if let Some(v) = cfg.rope_f64(src) {
                    m.f32(&k(dst), v);
                }
            }
        }
        (Some("su" | "longrope"), _) => m.str(&k("rope.scaling.type"), "longrope"),
        _ => {}
    }
    if let Some(theta) = cfg.rope_f64("rope_theta") {
        m.f32(&k("rope.freq_base"), theta);
    }
    if let Some(local) = cfg
        .rope
        .get("sliding_attention")
        .and_then(|s| s.get("rope_theta"))
        .and_then(Value::as_f64)
    {
        m.f32(&k("rope.freq_base_swa"), local);
    }
    if let Some(eps) = cfg.find_f64(&["rms_norm_eps", "norm_eps"])? {
        m.f32(&k("attention.layer_norm_rms_epsilon"), eps);
    }
    if let Some(eps) = cfg.find_f64(&["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"])? {
        m.f32(&k("attention.layer_norm_epsilon"), eps);
    }
    if let Some(hd) = cfg.find_u32(&["head_dim"])? {
        m.u32(&k("attention.key_length"), hd);
        m.u32(&k("attention.value_length"), hd);
    }
    m.u32("general.file_type", file_type);
    Ok(())
}

/// Rotated dimensions of Phi-3: `int(partial_rotary_factor * n_embd) // n_head`.
fn phi3_rope_dims(cfg: &HfConfig) -> Result<u32> {
    let n_embd = cfg.need_u32(&["hidden_size", "n_embd"])?;
    let n_head = cfg.need_u32(&["num_attention_heads", "n_head"])?.max(1);
    let pct = cfg.rope_f64("partial_rotary_factor").unwrap_or(1.0);
    Ok(((pct * f64::from(n_embd)) as u32) / n_head)
}

/// `Phi3MiniModel.set_gguf_parameters`.
fn phi3_params(cfg: &HfConfig, m: &mut Meta, file_type: u32) -> Result<()> {
    let k = |s: &str| format!("phi3.{s}");
    let orig = cfg
        .rope_f64("original_max_position_embeddings")
        .ok_or_else(|| Error::HfConfig {
            file: "config.json".into(),
            why: "Phi-3 needs original_max_position_embeddings".into(),
        })?;
    m.u32(
        &k("context_length"),
        cfg.need_u32(&["n_positions", "max_position_embeddings"])?,
    );
    m.u32(&k("rope.scaling.original_context_length"), orig as u32);
    m.u32(
        &k("embedding_length"),
        cfg.need_u32(&["hidden_size", "n_embd"])?,
    );
    m.u32(
        &k("feed_forward_length"),
        cfg.need_u32(&["intermediate_size"])?,
    );
    m.u32(&k("block_count"), cfg.block_count()?);
    m.u32(
        &k("attention.head_count"),
        cfg.need_u32(&["num_attention_heads", "n_head"])?,
    );
    m.u32(
        &k("attention.head_count_kv"),
        cfg.need_u32(&["num_key_value_heads", "n_head_kv"])?,
    );
    let eps = cfg
        .find_f64(&["rms_norm_eps"])?
        .ok_or_else(|| Error::HfConfig {
            file: "config.json".into(),
            why: "missing rms_norm_eps".into(),
        })?;
    m.f32(&k("attention.layer_norm_rms_epsilon"), eps);
    m.u32(&k("rope.dimension_count"), phi3_rope_dims(cfg)?);
    let theta = cfg.rope_f64("rope_theta").ok_or_else(|| Error::HfConfig {
        file: "config.json".into(),
        why: "missing rope_theta".into(),
    })?;
    m.f32(&k("rope.freq_base"), theta);
    m.u32("general.file_type", file_type);
    m.u32(
        &k("attention.sliding_window"),
        cfg.find_u32(&["sliding_window"])?.unwrap_or(0),
    );
    Ok(())
}

/// Tensors llama.cpp generates (name, values), setting any keys that go with them.
pub fn extra_tensors(cfg: &HfConfig, m: &mut Meta) -> Result<Vec<(String, Vec<f32>)>> {
    match cfg.arch {
        Arch::Llama if cfg.rope_type().as_deref() == Some("llama3") => {
            Ok(vec![("rope_freqs.weight".into(), llama3_rope_freqs(cfg)?)])
        }
        Arch::Phi3 => phi3_rope_factors(cfg, m),
        _ => Ok(Vec::new()),
    }
}

/// Llama 3 frequency divisors, computed in f32 like llama.cpp's torch code.
fn llama3_rope_freqs(cfg: &HfConfig) -> Result<Vec<f32>> {
    let base = cfg.rope_f64("rope_theta").unwrap_or(10000.0) as f32;
    let dim = match cfg.find_u32(&["head_dim"])? {
        Some(d) => d,
        None => cfg.need_u32(&["hidden_size"])? / cfg.need_u32(&["num_attention_heads"])?.max(1),
    };
    let factor = cfg.rope_f64("factor").unwrap_or(8.0);
    let low = cfg.rope_f64("low_freq_factor").unwrap_or(1.0);
    let high = cfg.rope_f64("high_freq_factor").unwrap_or(4.0);
    let old_ctx = cfg
        .rope_f64("original_max_position_embeddings")
        .unwrap_or(8192.0);
    let low_wavelen = old_ctx / low;
    let high_wavelen = old_ctx / high;
    let mut out = Vec::new();
    for i in (0..dim).step_by(2) {
        let freq = 1.0f32 / base.powf(i as f32 / dim as f32);
        let wavelen = 2.0 * std::f32::consts::PI / freq;
        let w = f64::from(wavelen);
        if w < high_wavelen {
            out.push(1.0);
        } else if w > low_wavelen {
            out.push(factor as f32);
        } else {
            // torch: a 0-d f32 tensor mixed with Python floats stays f32.
            let smooth = (old_ctx as f32 / wavelen - low as f32) / (high as f32 - low as f32);
            out.push(1.0 / ((1.0 - smooth) / factor as f32 + smooth));
        }
    }
    Ok(out)
}

/// Phi-3 LongRoPE factors and attention factor (`Phi3MiniModel.generate_extra_tensors`).
fn phi3_rope_factors(cfg: &HfConfig, m: &mut Meta) -> Result<Vec<(String, Vec<f32>)>> {
    let list = |key: &str| -> Option<Vec<f32>> {
        cfg.rope_full()
            .get(key)?
            .as_array()?
            .iter()
            .map(|v| v.as_f64().map(|x| x as f32))
            .collect()
    };
    let Some(long) = list("long_factor").filter(|l| !l.is_empty()) else {
        return Ok(Vec::new());
    };
    let short = list("short_factor").unwrap_or_default();
    let max_pos = f64::from(cfg.need_u32(&["n_positions", "max_position_embeddings"])?);
    let orig = cfg
        .rope_f64("original_max_position_embeddings")
        .unwrap_or(max_pos);
    let scale = max_pos / orig;
    let attn_factor = match cfg.rope_type().as_deref() {
        Some("su" | "longrope") if scale > 1.0 => (1.0 + scale.ln() / orig.ln()).sqrt(),
        Some("yarn") if scale > 1.0 => 0.1 * scale.ln() + 1.0,
        Some("su" | "longrope" | "yarn") => 1.0,
        other => {
            return Err(Error::HfConfig {
                file: "config.json".into(),
                why: format!("Phi-3 RoPE scaling type {other:?} is not supported"),
            })
        }
    };
    m.f32("phi3.rope.scaling.attn_factor", attn_factor);
    let half = phi3_rope_dims(cfg)? as usize / 2;
    if long.len() != half || short.len() != half {
        return Err(Error::HfConfig {
            file: "config.json".into(),
            why: format!(
                "LongRoPE factors must have {half} values each (long {}, short {})",
                long.len(),
                short.len()
            ),
        });
    }
    Ok(vec![
        ("rope_factors_long.weight".into(), long),
        ("rope_factors_short.weight".into(), short),
    ])
}

/// The GGUF name of an HF tensor and its transform; `Ok(None)` for tensors llama.cpp drops.
pub fn map_tensor(cfg: &HfConfig, hf: &str) -> Result<Option<(String, Transform)>> {
    if hf.ends_with(".rotary_emb.inv_freq")
        || hf.ends_with(".attention.masked_bias")
        || hf.ends_with(".attention.bias")
    {
        return Ok(None);
    }
    let unknown = || Error::HfTensor {
        tensor: hf.to_string(),
        why: format!("no GGUF name for it in {}", cfg.arch.gguf_name()),
    };
    let name = hf.strip_prefix("model.").unwrap_or(hf);
    let gemma = matches!(cfg.arch, Arch::Gemma3 | Arch::GemmaEmbedding);
    let (stem, suffix) = name.rsplit_once('.').ok_or_else(unknown)?;
    if suffix != "weight" && suffix != "bias" {
        return Err(unknown());
    }
    let gguf_stem = match stem {
        "embed_tokens" => "token_embd".to_string(),
        "norm" => "output_norm".to_string(),
        "lm_head" => "output".to_string(),
        _ => {
            let rest = stem.strip_prefix("layers.").ok_or_else(unknown)?;
            let (bid, part) = rest.split_once('.').ok_or_else(unknown)?;
            let bid: u32 = bid.parse().map_err(|_| unknown())?;
            let g = match part {
                "input_layernorm" => "attn_norm",
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "self_attn.qkv_proj" => "attn_qkv",
                "self_attn.q_norm" => "attn_q_norm",
                "self_attn.k_norm" => "attn_k_norm",
                "post_attention_layernorm" if gemma => "post_attention_norm",
                "post_attention_layernorm" => "ffn_norm",
                "pre_feedforward_layernorm" => "ffn_norm",
                "post_feedforward_layernorm" => "post_ffw_norm",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" | "mlp.gate_up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                _ => return Err(unknown()),
            };
            format!("blk.{bid}.{g}")
        }
    };
    let gguf = format!("{gguf_stem}.{suffix}");
    let transform =
        if cfg.arch == Arch::Llama && (stem.ends_with("q_proj") || stem.ends_with("k_proj")) {
            let n_head = cfg.need_u32(&["n_heads", "num_attention_heads"])? as usize;
            let n_kv = cfg
                .find_u32(&["n_kv_heads", "num_key_value_heads"])?
                .map_or(n_head, |n| n as usize);
            Transform::Permute {
                n_head: if stem.ends_with("k_proj") {
                    n_kv
                } else {
                    n_head
                },
            }
        } else if gemma && hf.ends_with("norm.weight") {
            Transform::Shift(1.0)
        } else {
            Transform::None
        };
    Ok(Some((gguf, transform)))
}

/// llama.cpp's `LlamaModel.permute` on a row-major (rows, cols) matrix (or a bias, cols = 1):
/// rows are viewed as (n_head, 2, rows / n_head / 2) and the last two axes swapped.
/// `inverse` undoes it.
pub fn permute(data: &[f32], rows: usize, cols: usize, n_head: usize, inverse: bool) -> Vec<f32> {
    let half = rows / n_head.max(1) / 2;
    let mut out = vec![0.0f32; data.len()];
    if half == 0 || rows * cols != data.len() || n_head * 2 * half != rows {
        out.copy_from_slice(data);
        return out;
    }
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                // Source row (h, j, i) goes to destination row (h, i, j).
                let src = h * 2 * half + j * half + i;
                let dst = h * 2 * half + i * 2 + j;
                let (s, d) = if inverse { (dst, src) } else { (src, dst) };
                out[d * cols..(d + 1) * cols].copy_from_slice(&data[s * cols..(s + 1) * cols]);
            }
        }
    }
    out
}
