//! What a model file is and what it needs: exact parameter count, size class, per-type tensor
//! statistics, context and vocabulary, and the memory plan (weights + KV cache) used by
//! `slm show` and, later, by the server's admission control.
//!
//! Memory formula (stated in `slm show --help` too):
//!   weights  = bytes of all tensors in the file (mapped as they are)
//!   KV(n)    = sum over layers of 2 (K and V) * n_ctx_layer * n_head_kv * head_dim * 2 bytes (f16 cache),
//!              with n_ctx_layer = min(n, sliding_window) on sliding-window layers, n elsewhere
//!   total(n) = weights + KV(n)

use std::collections::BTreeMap;

use serde::Serialize;
use slm_gguf::Gguf;

/// Size classes of our lesson, by parameter count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeClass {
    /// below 100M
    Tiny,
    /// 100M to 1.4B
    Micro,
    /// 1.5B to 13.9B
    Small,
    /// 14B to 30B
    Medium,
    /// above 30B
    Large,
}

impl SizeClass {
    /// The class of a model with `params` parameters; counts are rounded to 0.1B first, so
    /// 1.45B counts as 1.5B (small) and 30.04B as 30.0B (medium).
    pub fn of(params: u64) -> SizeClass {
        if params < 100_000_000 {
            return SizeClass::Tiny;
        }
        let tenths = (params + 50_000_000) / 100_000_000; // in units of 0.1B
        match tenths {
            0..=14 => SizeClass::Micro,
            15..=139 => SizeClass::Small,
            140..=300 => SizeClass::Medium,
            _ => SizeClass::Large,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SizeClass::Tiny => "tiny",
            SizeClass::Micro => "micro",
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Large => "large",
        }
    }

    pub fn range(self) -> &'static str {
        match self {
            SizeClass::Tiny => "< 100M",
            SizeClass::Micro => "100M-1.4B",
            SizeClass::Small => "1.5B-13.9B",
            SizeClass::Medium => "14B-30B",
            SizeClass::Large => "> 30B",
        }
    }
}

/// llama.cpp's `llama_ftype` names for `general.file_type`.
pub fn file_type_name(ftype: u64) -> Option<&'static str> {
    Some(match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct TypeStats {
    pub tensors: u64,
    pub elements: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryPlan {
    pub n_ctx: u64,
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    pub name: Option<String>,
    pub architecture: Option<String>,
    pub gguf_version: u32,
    pub parameters: u64,
    pub size_class: SizeClass,
    pub file_type: Option<String>,
    pub file_bytes: u64,
    pub tensor_count: usize,
    pub tensor_bytes: u64,
    pub bits_per_weight: f64,
    pub types: BTreeMap<String, TypeStats>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub block_count: Option<u64>,
    pub head_count: Option<u64>,
    pub head_count_kv: Option<u64>,
    pub sliding_window: Option<u64>,
    pub vocab_size: Option<u64>,
    pub tokenizer: Option<String>,
    pub chat_template: bool,
    pub memory: Vec<MemoryPlan>,
}

/// KV-cache geometry read from the architecture's keys.
struct KvGeometry {
    n_layer: u64,
    n_head_kv: u64,
    head_dim_k: u64,
    head_dim_v: u64,
    window: Option<u64>,
    /// Every `swa_period`-th layer (1-based) is global; the others use the window.
    swa_period: u64,
}

fn kv_geometry(g: &Gguf) -> Option<KvGeometry> {
    let n_layer = g.arch_u64("block_count")?;
    let n_embd = g.arch_u64("embedding_length")?;
    let n_head = g.arch_u64("attention.head_count")?;
    let n_head_kv = g.arch_u64("attention.head_count_kv").unwrap_or(n_head);
    let head_dim = n_embd.checked_div(n_head)?;
    let window = g.arch_u64("attention.sliding_window");
    let swa_period = match g.architecture() {
        // Gemma 3: five local (sliding-window) layers, then one global layer.
        Some("gemma3") => 6,
        // Gemma 2 alternates local and global.
        Some("gemma2") => 2,
        _ => 1,
    };
    Some(KvGeometry {
        n_layer,
        n_head_kv,
        head_dim_k: g.arch_u64("attention.key_length").unwrap_or(head_dim),
        head_dim_v: g.arch_u64("attention.value_length").unwrap_or(head_dim),
        window: if swa_period > 1 { window } else { None },
        swa_period,
    })
}

/// KV-cache bytes for `n_ctx` tokens of one sequence with an f16 cache.
fn kv_bytes(geo: &KvGeometry, n_ctx: u64) -> u64 {
    let per_token_layer = geo.n_head_kv * (geo.head_dim_k + geo.head_dim_v) * 2;
    (0..geo.n_layer)
        .map(|il| {
            let global = (il + 1) % geo.swa_period == 0;
            let ctx = match geo.window {
                Some(w) if !global => n_ctx.min(w),
                _ => n_ctx,
            };
            ctx * per_token_layer
        })
        .sum()
}

/// KV-cache bytes one sequence of `n_ctx` tokens needs (f16 cache), when the architecture's
/// keys give its geometry: what the server sizes its slots and memory budget with.
pub fn kv_bytes_per_seq(g: &Gguf, n_ctx: u64) -> Option<u64> {
    kv_geometry(g).map(|geo| kv_bytes(&geo, n_ctx))
}

/// Summarize a parsed GGUF file of `file_bytes` bytes.
pub fn summarize(g: &Gguf, file_bytes: u64) -> ModelSummary {
    let mut types: BTreeMap<String, TypeStats> = BTreeMap::new();
    let mut parameters = 0u64;
    let mut tensor_bytes = 0u64;
    for t in g.tensors() {
        parameters = parameters.saturating_add(t.n_elements);
        tensor_bytes = tensor_bytes.saturating_add(t.n_bytes);
        let e = types.entry(t.ty.name().to_string()).or_insert(TypeStats {
            tensors: 0,
            elements: 0,
            bytes: 0,
        });
        e.tensors += 1;
        e.elements = e.elements.saturating_add(t.n_elements);
        e.bytes = e.bytes.saturating_add(t.n_bytes);
    }
    let bits_per_weight = if parameters == 0 {
        0.0
    } else {
        tensor_bytes as f64 * 8.0 / parameters as f64
    };
    let vocab_size = g
        .get_array("tokenizer.ggml.tokens")
        .map(|a| a.len() as u64)
        .or_else(|| g.arch_u64("vocab_size"));
    let tokenizer = g.get_str("tokenizer.ggml.model").map(|m| {
        let kind = match m {
            "llama" => "SentencePiece (llama)",
            "gpt2" => "byte-level BPE (gpt2)",
            "bert" => "WordPiece (bert)",
            "t5" => "Unigram (t5)",
            "rwkv" => "RWKV",
            "none" => "none",
            other => other,
        };
        match g.get_str("tokenizer.ggml.pre") {
            Some(pre) => format!("{kind}, pre-tokenizer {pre}"),
            None => kind.to_string(),
        }
    });
    let context_length = g.arch_u64("context_length");
    let mut memory = Vec::new();
    if let Some(geo) = kv_geometry(g) {
        let mut sizes = vec![4096];
        if let Some(n) = context_length {
            if n != 4096 {
                sizes.push(n);
            }
        }
        for n_ctx in sizes {
            let kv = kv_bytes(&geo, n_ctx);
            memory.push(MemoryPlan {
                n_ctx,
                weights_bytes: tensor_bytes,
                kv_bytes: kv,
                total_bytes: tensor_bytes.saturating_add(kv),
            });
        }
    }
    ModelSummary {
        name: g.get_str("general.name").map(str::to_string),
        architecture: g.architecture().map(str::to_string),
        gguf_version: g.version,
        parameters,
        size_class: SizeClass::of(parameters),
        file_type: g.get_u64("general.file_type").map(|f| {
            file_type_name(f)
                .map(str::to_string)
                .unwrap_or_else(|| format!("unknown ({f})"))
        }),
        file_bytes,
        tensor_count: g.tensors().len(),
        tensor_bytes,
        bits_per_weight,
        types,
        context_length,
        embedding_length: g.arch_u64("embedding_length"),
        block_count: g.arch_u64("block_count"),
        head_count: g.arch_u64("attention.head_count"),
        head_count_kv: g.arch_u64("attention.head_count_kv"),
        sliding_window: g.arch_u64("attention.sliding_window"),
        vocab_size,
        tokenizer,
        chat_template: g.get_str("tokenizer.chat_template").is_some(),
        memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_class_boundaries() {
        assert_eq!(SizeClass::of(99_999_999), SizeClass::Tiny);
        assert_eq!(SizeClass::of(100_000_000), SizeClass::Micro);
        assert_eq!(SizeClass::of(268_098_176), SizeClass::Micro);
        assert_eq!(SizeClass::of(1_440_000_000), SizeClass::Micro);
        assert_eq!(SizeClass::of(1_500_000_000), SizeClass::Small);
        assert_eq!(SizeClass::of(13_900_000_000), SizeClass::Small);
        assert_eq!(SizeClass::of(14_000_000_000), SizeClass::Medium);
        assert_eq!(SizeClass::of(30_000_000_000), SizeClass::Medium);
        assert_eq!(SizeClass::of(30_600_000_000), SizeClass::Large);
    }
}
