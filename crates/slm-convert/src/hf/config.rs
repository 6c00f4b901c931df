//! `config.json` of a Hugging Face model folder: which architecture it is, typed look-ups of
//! its hyperparameters (llama.cpp's `find_hparam`), and the RoPE parameters merged the way
//! llama.cpp's `TextModel.__init__` merges them (`rope_scaling`/`rope_parameters` plus the
//! top-level `rope_theta`, `partial_rotary_factor`, `original_max_position_embeddings`).

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Largest JSON file read from a model folder (config, tokenizer config, tokenizer.json).
pub const MAX_JSON: u64 = 256 << 20;

/// The architectures `slm convert` knows, with their llama.cpp `general.architecture` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma3,
    /// EmbeddingGemma (`Gemma3TextModel`), llama.cpp's `gemma-embedding`.
    GemmaEmbedding,
}

/// HF `architectures[0]` -> our architecture.
pub const HF_ARCHS: &[(&str, Arch)] = &[
    ("LlamaForCausalLM", Arch::Llama),
    ("Qwen2ForCausalLM", Arch::Qwen2),
    ("Qwen3ForCausalLM", Arch::Qwen3),
    ("Phi3ForCausalLM", Arch::Phi3),
    ("Gemma3ForCausalLM", Arch::Gemma3),
    ("Gemma3TextModel", Arch::GemmaEmbedding),
];

impl Arch {
    /// `general.architecture` as llama.cpp writes it.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Phi3 => "phi3",
            Arch::Gemma3 => "gemma3",
            Arch::GemmaEmbedding => "gemma-embedding",
        }
    }
}

/// Read a JSON file of at most [`MAX_JSON`] bytes.
pub fn read_json(path: &Path) -> Result<Value> {
    let p = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?
        .len();
    if len > MAX_JSON {
        return Err(Error::HfConfig {
            file: p,
            why: format!("{len} bytes, above the {MAX_JSON}-byte cap"),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: p.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::HfConfig {
        file: p,
        why: format!("not valid JSON: {e}"),
    })
}

/// A parsed `config.json`.
pub struct HfConfig {
    pub arch: Arch,
    /// `architectures[0]` as written.
    pub hf_arch: String,
    pub params: Map<String, Value>,
    /// Merged RoPE parameters (see the module header).
    pub rope: Map<String, Value>,
}

impl HfConfig {
    pub fn load(dir: &Path) -> Result<HfConfig> {
        let path = dir.join("config.json");
        if !path.is_file() {
            return Err(Error::MissingFile {
                path: path.display().to_string(),
                what: "config.json".into(),
            });
        }
        let Value::Object(params) = read_json(&path)? else {
            return Err(Error::HfConfig {
                file: path.display().to_string(),
                why: "not a JSON object".into(),
            });
        };
        Self::from_params(params)
    }

    pub fn from_params(mut params: Map<String, Value>) -> Result<HfConfig> {
        let hf_arch = params
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::HfConfig {
                file: "config.json".into(),
                why: "no \"architectures\" list".into(),
            })?
            .to_string();
        let arch = HF_ARCHS
            .iter()
            .find(|(n, _)| *n == hf_arch)
            .map(|(_, a)| *a)
            .ok_or_else(|| Error::UnsupportedArch {
                arch: hf_arch.clone(),
                known: HF_ARCHS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        // Multimodal configs keep the text model's parameters under text_config.
        if let Some(Value::Object(text)) = params.get("text_config").cloned() {
            for (k, v) in text {
                params.entry(k).or_insert(v);
            }
        }
        let mut rope = match params
            .get("rope_parameters")
            .or_else(|| params.get("rope_scaling"))
        {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if !rope.contains_key("full_attention") && !rope.contains_key("sliding_attention") {
            let find = |keys: &[&str]| keys.iter().find_map(|k| params.get(*k).cloned());
            let theta = find(&[
                "global_rope_theta",
                "rope_global_theta",
                "rope_theta_global",
                "rope_theta",
                "rotary_emb_base",
            ]);
            let local = find(&[
                "local_rope_theta",
                "rope_local_theta",
                "rope_theta_local",
                "swa_rope_theta",
                "rope_local_base_freq",
            ]);
            if let Some(l) = local {
                let mut m = Map::new();
                m.insert("rope_theta".into(), l);
                rope.insert("sliding_attention".into(), Value::Object(m));
            }
            if let Some(t) = theta {
                rope.entry("rope_theta").or_insert(t);
            }
            if let Some(t) = rope.get("type").cloned() {
                rope.entry("rope_type").or_insert(t);
            }
            if let Some(p) = find(&["partial_rotary_factor", "rope_pct", "rope_percent"]) {
                rope.entry("partial_rotary_factor").or_insert(p);
            }
            if let Some(o) = find(&["original_max_position_embeddings"]) {
                rope.entry("original_max_position_embeddings").or_insert(o);
            }
        }
        Ok(HfConfig {
            arch,
            hf_arch,
            params,
            rope,
        })
    }

    /// The first of `keys` that is present (llama.cpp's `find_hparam(optional=True)`).
    pub fn find(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter()
            .find_map(|k| self.params.get(*k).filter(|v| !v.is_null()))
    }

    /// The first of `keys` as a non-negative integer that fits u32.
    pub fn find_u32(&self, keys: &[&str]) -> Result<Option<u32>> {
        match self.find(keys) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad(keys, v, "a non-negative 32-bit integer")),
        }
    }

    /// Like [`find_u32`](Self::find_u32) but required.
    pub fn need_u32(&self, keys: &[&str]) -> Result<u32> {
        self.find_u32(keys)?.ok_or_else(|| Error::HfConfig {
            file: "config.json".into(),
            why: format!("missing {}", keys.join(" / ")),
        })
    }

    pub fn find_f64(&self, keys: &[&str]) -> Result<Option<f64>> {
        match self.find(keys) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| bad(keys, v, "a number")),
        }
    }

    /// The RoPE parameters of full-attention layers.
    pub fn rope_full(&self) -> &Map<String, Value> {
        match self.rope.get("full_attention") {
            Some(Value::Object(m)) => m,
            _ => &self.rope,
        }
    }

    /// `rope_type` of the full-attention RoPE, lower-case.
    pub fn rope_type(&self) -> Option<String> {
        self.rope_full()
            .get("rope_type")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    }

    pub fn rope_f64(&self, key: &str) -> Option<f64> {
        self.rope_full().get(key).and_then(Value::as_f64)
    }

    /// `num_hidden_layers` (llama.cpp's block count keys).
    pub fn block_count(&self) -> Result<u32> {
        self.need_u32(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])
    }
}

fn bad(keys: &[&str], v: &Value, want: &str) -> Error {
    Error::HfConfig {
        file: "config.json".into(),
        why: format!("{} is {v}, expected {want}", keys.join(" / ")),
    }
}
