//! GGUF -> Hugging Face folder (`slm export-hf`): every tensor dequantized to F32 safetensors
//! with llama.cpp's layout changes undone (Llama's Q/K RoPE permutation, Gemma's norm `+1`),
//! a `config.json` rebuilt from the `{arch}.*` keys, and the tokenizer: `tokenizer.model`
//! (SentencePiece pieces, scores, types) for `tokenizer.ggml.model = llama`, or `tokenizer.json`
//! (byte-level BPE: vocab, merges, added tokens, the pre-tokenizer of [`vocab::pre_tokenizers`])
//! for `gpt2`; `tokenizer_config.json` carries add_bos/add_eos and the chat template, and the
//! special ids go to config.json. Converting the folder back with [`crate::hf::plan`] gives the
//! same tensors and tokenizer metadata.
//!
//! Not exportable: Llama 3 `rope_freqs` (the HF parameters cannot be recovered from the
//! factors) and architectures other than llama, qwen2, qwen3, phi3 and gemma3.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{json, Map, Value as Json};
use slm_gguf::{Array, GgufFile, TensorInfo};

use crate::error::{Error, Result};
use crate::hf::arch::permute;
use crate::hf::spm::{self, Piece};
use crate::hf::vocab;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub arch: String,
    pub n_tensors: usize,
    pub n_params: u64,
}

fn fail(why: impl Into<String>) -> Error {
    Error::HfConfig {
        file: "GGUF".into(),
        why: why.into(),
    }
}

/// HF name of a GGUF tensor (None: a tensor llama.cpp generates, not exported).
fn hf_name(arch: &str, gguf: &str) -> Result<Option<String>> {
    if gguf.starts_with("rope_factors_") {
        return Ok(None);
    }
    let gemma = arch == "gemma3";
    let (stem, suffix) = gguf
        .rsplit_once('.')
        .ok_or_else(|| fail(format!("tensor {gguf}: no suffix")))?;
    let base = match stem {
        "token_embd" => "model.embed_tokens".to_string(),
        "output_norm" => "model.norm".to_string(),
        "output" => "lm_head".to_string(),
        "rope_freqs" => {
            return Err(fail(
                "rope_freqs (Llama 3 RoPE scaling) has no Hugging Face equivalent to export",
            ))
        }
        _ => {
            let rest = stem
                .strip_prefix("blk.")
                .ok_or_else(|| fail(format!("tensor {gguf} has no HF name")))?;
            let (bid, part) = rest
                .split_once('.')
                .ok_or_else(|| fail(format!("tensor {gguf} has no HF name")))?;
            let hf = match part {
                "attn_norm" => "input_layernorm",
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "attn_qkv" => "self_attn.qkv_proj",
                "attn_q_norm" => "self_attn.q_norm",
                "attn_k_norm" => "self_attn.k_norm",
                "post_attention_norm" => "post_attention_layernorm",
                "ffn_norm" if gemma => "pre_feedforward_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "post_ffw_norm" => "post_feedforward_layernorm",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" if arch == "phi3" => "mlp.gate_up_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                _ => return Err(fail(format!("tensor {gguf} has no HF name"))),
            };
            format!("model.layers.{bid}.{hf}")
        }
    };
    Ok(Some(format!("{base}.{suffix}")))
}

/// Dequantize a tensor to f32 values.
fn dequantize(file: &GgufFile, t: &TensorInfo) -> Result<Vec<f32>> {
    let data = file.tensor_data(t);
    let ne0 = t.dims.first().copied().unwrap_or(1) as usize;
    let n = t.n_elements as usize;
    let row_bytes =
        t.ty.row_bytes(ne0 as u64)
            .ok_or_else(|| fail(format!("tensor {}: bad row size", t.name)))? as usize;
    let mut out = vec![0.0f32; n];
    for (dst, src) in out
        .chunks_mut(ne0.max(1))
        .zip(data.chunks(row_bytes.max(1)))
    {
        slm_quant::dequantize_row(t.ty, src, dst).map_err(|source| Error::Quant {
            tensor: t.name.clone(),
            source,
        })?;
    }
    Ok(out)
}

fn u(file: &GgufFile, key: &str) -> Option<u64> {
    file.get_u64(key)
}

/// config.json for the file's architecture.
fn config(file: &GgufFile, arch: &str) -> Result<Map<String, Json>> {
    let k = |s: &str| format!("{arch}.{s}");
    let need = |s: &str| u(file, &k(s)).ok_or_else(|| fail(format!("missing {}", k(s))));
    let (hf_arch, model_type) = match arch {
        "llama" => ("LlamaForCausalLM", "llama"),
        "qwen2" => ("Qwen2ForCausalLM", "qwen2"),
        "qwen3" => ("Qwen3ForCausalLM", "qwen3"),
        "phi3" => ("Phi3ForCausalLM", "phi3"),
        "gemma3" => ("Gemma3ForCausalLM", "gemma3_text"),
        other => {
            return Err(Error::UnsupportedArch {
                arch: other.to_string(),
                known: "llama, qwen2, qwen3, phi3, gemma3".into(),
            })
        }
    };
    let n_embd = need("embedding_length")?;
    let n_head = need("attention.head_count")?;
    let n_vocab = file
        .tensor_info("token_embd.weight")
        .and_then(|t| t.dims.get(1).copied())
        .ok_or_else(|| fail("no token_embd.weight"))?;
    let mut c = Map::new();
    c.insert("architectures".into(), json!([hf_arch]));
    c.insert("model_type".into(), json!(model_type));
    c.insert("hidden_size".into(), json!(n_embd));
    c.insert(
        "intermediate_size".into(),
        json!(need("feed_forward_length")?),
    );
    c.insert("num_hidden_layers".into(), json!(need("block_count")?));
    c.insert("num_attention_heads".into(), json!(n_head));
    c.insert(
        "num_key_value_heads".into(),
        json!(u(file, &k("attention.head_count_kv")).unwrap_or(n_head)),
    );
    if let Some(ctx) = u(file, &k("context_length")) {
        c.insert("max_position_embeddings".into(), json!(ctx));
    }
    if let Some(eps) = file.get_f64(&k("attention.layer_norm_rms_epsilon")) {
        // The shortest decimal that reads back as the stored f32 (1e-05, not 9.99999974e-06).
        let short: f64 = format!("{}", eps as f32).parse().unwrap_or(eps);
        c.insert("rms_norm_eps".into(), json!(short));
    }
    if let Some(theta) = file.get_f64(&k("rope.freq_base")) {
        c.insert("rope_theta".into(), json!(theta));
    }
    c.insert("vocab_size".into(), json!(n_vocab));
    c.insert(
        "tie_word_embeddings".into(),
        json!(file.tensor_info("output.weight").is_none()),
    );
    c.insert("torch_dtype".into(), json!("float32"));
    if let Some(hd) = u(file, &k("attention.key_length")) {
        if arch != "llama" || hd != n_embd / n_head.max(1) {
            c.insert("head_dim".into(), json!(hd));
        }
    }
    if file.get_str(&k("rope.scaling.type")) == Some("linear") {
        let f = file.get_f64(&k("rope.scaling.factor")).unwrap_or(1.0);
        c.insert(
            "rope_scaling".into(),
            json!({"rope_type": "linear", "factor": f}),
        );
    }
    if arch == "qwen2" || arch == "qwen3" {
        c.insert("use_sliding_window".into(), json!(false));
    }
    if arch == "phi3" {
        let n_rot = u(file, &k("rope.dimension_count")).unwrap_or(n_embd / n_head.max(1));
        c.insert(
            "partial_rotary_factor".into(),
            json!((n_rot * n_head) as f64 / n_embd as f64),
        );
        if let Some(o) = u(file, &k("rope.scaling.original_context_length")) {
            c.insert("original_max_position_embeddings".into(), json!(o));
        }
        let factors = |name: &str| -> Result<Option<Vec<f32>>> {
            match file.tensor_info(name) {
                Some(t) => dequantize(file, t).map(Some),
                None => Ok(None),
            }
        };
        if let (Some(long), Some(short)) = (
            factors("rope_factors_long.weight")?,
            factors("rope_factors_short.weight")?,
        ) {
            c.insert(
                "rope_scaling".into(),
                json!({"type": "longrope", "long_factor": long, "short_factor": short}),
            );
        }
        let w = u(file, &k("attention.sliding_window")).unwrap_or(0);
        c.insert(
            "sliding_window".into(),
            if w == 0 { Json::Null } else { json!(w) },
        );
    }
    if arch == "gemma3" {
        if let Some(w) = u(file, &k("attention.sliding_window")) {
            c.insert("sliding_window".into(), json!(w));
        }
        let pattern = u(file, &k("attention.sliding_window_pattern")).unwrap_or(6);
        c.insert("sliding_window_pattern".into(), json!(pattern));
        if let Some(b) = file.get_f64(&k("rope.freq_base_swa")) {
            c.insert("rope_local_base_freq".into(), json!(b));
        } else {
            c.insert("rope_local_base_freq".into(), json!(10000.0));
        }
        if let Some(cap) = file.get_f64(&k("final_logit_softcapping")) {
            c.insert("final_logit_softcapping".into(), json!(cap));
        }
        if let Some(hd) = u(file, &k("attention.key_length")) {
            c.insert("query_pre_attn_scalar".into(), json!(hd));
        }
        c.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
    }
    for (typ, key) in [
        ("bos", "bos_token_id"),
        ("eos", "eos_token_id"),
        ("unk", "unknown_token_id"),
        ("sep", "seperator_token_id"),
        ("pad", "padding_token_id"),
        ("cls", "cls_token_id"),
        ("mask", "mask_token_id"),
    ] {
        if let Some(id) = u(file, &format!("tokenizer.ggml.{key}")) {
            c.insert(format!("{typ}_token_id"), json!(id));
        }
    }
    Ok(c)
}

fn strings<'a>(file: &'a GgufFile, key: &str) -> Option<&'a [String]> {
    file.get_array(key).and_then(Array::as_strings)
}

/// tokenizer files for the file's vocabulary.
fn tokenizer(file: &GgufFile, out: &Path) -> Result<()> {
    let tokens =
        strings(file, "tokenizer.ggml.tokens").ok_or_else(|| fail("no tokenizer.ggml.tokens"))?;
    let types: Vec<i64> = file
        .get_array("tokenizer.ggml.token_type")
        .and_then(Array::to_i64s)
        .unwrap_or_else(|| vec![1; tokens.len()]);
    let model = file.get_str("tokenizer.ggml.model").unwrap_or("llama");
    let mut tc = Map::new();
    for typ in ["bos", "eos", "sep"] {
        if let Some(b) = file.get_bool(&format!("tokenizer.ggml.add_{typ}_token")) {
            tc.insert(format!("add_{typ}_token"), json!(b));
        }
    }
    if let Some(b) = file.get_bool("tokenizer.ggml.add_space_prefix") {
        tc.insert("add_prefix_space".into(), json!(b));
    }
    if let Some(t) = file.get_str("tokenizer.chat_template") {
        tc.insert("chat_template".into(), json!(t));
    }
    let mut decoder = Map::new();
    match model {
        "llama" => {
            let scores = file
                .get_array("tokenizer.ggml.scores")
                .and_then(Array::as_f32s)
                .map(<[f32]>::to_vec)
                .unwrap_or_else(|| vec![0.0; tokens.len()]);
            let mut pieces = Vec::with_capacity(tokens.len());
            for (i, t) in tokens.iter().enumerate() {
                let ty = types.get(i).copied().unwrap_or(1) as i32;
                let kind = if ty == spm::USER_DEFINED {
                    // llama.cpp reads SentencePiece user-defined pieces as normal tokens and
                    // takes user-defined types from tokenizer_config's added tokens.
                    decoder.insert(i.to_string(), json!({"content": t, "special": false}));
                    spm::NORMAL
                } else {
                    ty
                };
                pieces.push(Piece {
                    piece: t.clone(),
                    score: scores.get(i).copied().unwrap_or(0.0),
                    kind,
                });
            }
            let add_dummy = file
                .get_bool("tokenizer.ggml.add_space_prefix")
                .unwrap_or(true);
            write_file(
                &out.join("tokenizer.model"),
                &spm::write_model(&pieces, 2, add_dummy),
            )?;
            tc.insert("tokenizer_class".into(), json!("LlamaTokenizer"));
        }
        "gpt2" => {
            let pre = file.get_str("tokenizer.ggml.pre").unwrap_or("gpt-2");
            let pre_def = vocab::pre_tokenizers()
                .into_iter()
                .find(|(n, _)| *n == pre)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    fail(format!(
                        "BPE pre-tokenizer {pre:?} cannot be written as tokenizer.json"
                    ))
                })?;
            let mut vocab_map = Map::new();
            let mut added = Vec::new();
            for (i, t) in tokens.iter().enumerate() {
                let ty = types.get(i).copied().unwrap_or(1);
                if ty == 5 && t == &format!("[PAD{i}]") {
                    continue;
                }
                vocab_map.insert(t.clone(), json!(i));
                if ty == 3 || ty == 4 {
                    added.push(
                        json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": ty == 4, "special": ty == 3}),
                    );
                }
            }
            let merges = strings(file, "tokenizer.ggml.merges").unwrap_or(&[]);
            let tj = json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added,
                "normalizer": null,
                "pre_tokenizer": pre_def,
                "post_processor": null,
                "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
                "model": {"type": "BPE", "dropout": null, "unk_token": null,
                    "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
                    "byte_fallback": false, "ignore_merges": false, "vocab": vocab_map, "merges": merges},
            });
            write_json(&out.join("tokenizer.json"), &tj)?;
            tc.insert("tokenizer_class".into(), json!("GPT2Tokenizer"));
        }
        other => {
            return Err(fail(format!(
                "tokenizer model {other:?} cannot be exported"
            )))
        }
    }
    if !decoder.is_empty() {
        tc.insert("added_tokens_decoder".into(), Json::Object(decoder));
    }
    write_json(&out.join("tokenizer_config.json"), &Json::Object(tc))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write_json(path: &Path, v: &Json) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| fail(e.to_string()))?;
    write_file(path, text.as_bytes())
}

/// Export `gguf` to the HF folder `out` (created if missing). `progress(i, n, name)` is called
/// before each tensor.
pub fn export_hf(
    gguf: &Path,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<ExportSummary> {
    let file = GgufFile::open(gguf)?;
    let arch = file
        .architecture()
        .ok_or_else(|| fail("no general.architecture"))?
        .to_string();
    let cfg = config(&file, &arch)?;
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.display().to_string(),
        source,
    })?;
    let n_head = u(&file, &format!("{arch}.attention.head_count")).unwrap_or(1) as usize;
    let n_head_kv =
        u(&file, &format!("{arch}.attention.head_count_kv")).unwrap_or(n_head as u64) as usize;

    // (HF name, HF shape, GGUF tensor), sorted by HF name like transformers' save.
    let mut entries: Vec<(String, Vec<u64>, &TensorInfo)> = Vec::new();
    for t in file.tensors() {
        if let Some(name) = hf_name(&arch, &t.name)? {
            entries.push((name, t.dims.iter().rev().copied().collect(), t));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let n = entries.len();
    let n_params: u64 = entries.iter().map(|e| e.2.n_elements).sum();
    let header: Vec<(String, Vec<u64>)> = entries
        .iter()
        .map(|(n, s, _)| (n.clone(), s.clone()))
        .collect();
    let path = out.join("model.safetensors");
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut w = BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    crate::hf::safetensors::write_f32_header(&mut w, &header, &[("format", "pt")]).map_err(io)?;
    for (i, (name, shape, t)) in entries.iter().enumerate() {
        progress(i, n, name);
        let mut v = dequantize(&file, t)?;
        let rows = shape.first().copied().unwrap_or(1) as usize;
        let cols = if shape.len() >= 2 {
            v.len() / rows.max(1)
        } else {
            1
        };
        if arch == "llama" && (t.name.contains(".attn_q.") || t.name.contains(".attn_k.")) {
            let heads = if t.name.contains(".attn_k.") {
                n_head_kv
            } else {
                n_head
            };
            v = permute(&v, v.len() / cols, cols, heads, true);
        }
        if arch == "gemma3" && t.name.ends_with("norm.weight") {
            v.iter_mut().for_each(|x| *x -= 1.0);
        }
        let mut buf = Vec::with_capacity(v.len() * 4);
        for x in &v {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf).map_err(io)?;
    }
    progress(n, n, "");
    w.flush().map_err(io)?;
    write_json(&out.join("config.json"), &Json::Object(cfg))?;
    tokenizer(&file, out)?;
    Ok(ExportSummary {
        arch,
        n_tensors: n,
        n_params,
    })
}
