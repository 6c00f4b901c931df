//! The vocabulary as read from GGUF metadata (`tokenizer.ggml.*`): token texts, scores, token
//! types turned into attributes, special token ids, the BOS/EOS/space-prefix flags, and the
//! end-of-generation set. Follows llama.cpp's `llama_vocab::impl::load` (src/llama-vocab.cpp)
//! rule by rule, except that malformed metadata is a typed error instead of a warning or abort.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use slm_gguf::{Array, Gguf, Value};

use crate::error::TokenizerError;

/// Token attributes: llama.cpp's `llama_token_attr` bits.
pub mod attr {
    pub const UNDEFINED: u32 = 0;
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

/// More tokens than this is refused (llama.cpp ids are i32; 16M is far above any real vocabulary).
pub const MAX_VOCAB: usize = 1 << 24;

/// Which tokenizer family the metadata names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// `tokenizer.ggml.model = llama`: SentencePiece, merges by score, byte fallback.
    Spm,
    /// `tokenizer.ggml.model = gpt2`: byte-level BPE, merges by rank; also `gemma4` (BPE over raw
    /// UTF-8 with `▁` for spaces and `<0xHH>` byte tokens).
    Bpe,
}

/// Special token ids; `None` where the vocabulary has none.
#[derive(Clone, Debug, Default)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

/// Accessor of one field of [`SpecialIds`].
type Slot = fn(&mut SpecialIds) -> &mut Option<u32>;

/// The loaded vocabulary.
#[derive(Clone, Debug)]
pub struct Vocab {
    pub kind: VocabKind,
    /// BPE only: GPT-2 byte-level encoding (`gpt2`); false for Gemma 4's raw-UTF-8 BPE with `▁`
    /// for spaces and `<0xHH>` byte tokens.
    pub byte_level: bool,
    /// `tokenizer.ggml.pre`, empty when absent.
    pub pre: String,
    pub texts: Vec<String>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u32>,
    /// Token ids keyed by the hash of their text (the texts live in `texts` only once).
    text_to_id: HashTable<u32>,
    pub special: SpecialIds,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub ignore_merges: bool,
    /// End-of-generation ids, sorted.
    pub eog: Vec<u32>,
}

fn key_str<'a>(g: &'a Gguf, key: &'static str) -> Result<Option<&'a str>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "string",
        }),
    }
}

fn key_bool(g: &Gguf, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "bool",
        }),
    }
}

fn key_array<'a>(g: &'a Gguf, key: &'static str) -> Result<Option<&'a Array>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "array",
        }),
    }
}

/// A special token id from metadata: absent -> `Ok(None)`, present and in range -> `Some`,
/// negative, non-integer or out of range -> error.
fn key_token_id(
    g: &Gguf,
    key: &'static str,
    n_vocab: usize,
) -> Result<Option<u32>, TokenizerError> {
    let Some(v) = g.get(key) else { return Ok(None) };
    let id = match v.as_i64() {
        Some(id) => id,
        None => match v.as_u64() {
            Some(u) => i64::try_from(u).unwrap_or(i64::MAX),
            None => {
                return Err(TokenizerError::WrongType {
                    key,
                    expected: "integer",
                })
            }
        },
    };
    if id < 0 || id as u64 >= n_vocab as u64 {
        return Err(TokenizerError::SpecialTokenOutOfRange { key, id, n_vocab });
    }
    Ok(Some(id as u32))
}

fn hash_str(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

/// Parse `<0xHH>` (two hex digits, either case).
pub fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Pre-tokenizer names whose llama.cpp type ignores merges for whole-word tokens and adds BOS.
const LLAMA3_NAMES: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
    "jina-v5-nano",
];

impl Vocab {
    pub fn from_gguf(g: &Gguf) -> Result<Vocab, TokenizerError> {
        let model = key_str(g, "tokenizer.ggml.model")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        let kind = match model {
            "llama" => VocabKind::Spm,
            "gpt2" | "gemma4" => VocabKind::Bpe,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        // Gemma 4: BPE over raw UTF-8 with SPM-style `▁` spaces and `<0xHH>` byte tokens.
        let byte_level = model != "gemma4";
        let pre = if byte_level {
            key_str(g, "tokenizer.ggml.pre")?.unwrap_or("").to_string()
        } else {
            "gemma4".to_string()
        };

        let tokens = key_array(g, "tokenizer.ggml.tokens")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?;
        let Array::String(tokens) = tokens else {
            return Err(TokenizerError::WrongType {
                key: "tokenizer.ggml.tokens",
                expected: "array of string",
            });
        };
        let n = tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if n > MAX_VOCAB {
            return Err(TokenizerError::VocabTooLarge(n));
        }

        let scores: Vec<f32> = match key_array(g, "tokenizer.ggml.scores")? {
            None => vec![0.0; n],
            Some(Array::F32(v)) => v.clone(),
            Some(Array::I32(v)) => v.iter().map(|&x| x as f32).collect(),
            Some(_) => {
                return Err(TokenizerError::WrongType {
                    key: "tokenizer.ggml.scores",
                    expected: "array of f32",
                })
            }
        };
        if scores.len() != n {
            return Err(TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.scores",
                expected: n,
                actual: scores.len(),
            });
        }

        let types: Option<Vec<i64>> = match key_array(g, "tokenizer.ggml.token_type")? {
            None => None,
            Some(a) => Some(a.to_i64s().ok_or(TokenizerError::WrongType {
                key: "tokenizer.ggml.token_type",
                expected: "array of integer",
            })?),
        };
        if let Some(t) = &types {
            if t.len() != n {
                return Err(TokenizerError::LengthMismatch {
                    key: "tokenizer.ggml.token_type",
                    expected: n,
                    actual: t.len(),
                });
            }
        }

        let mut texts: Vec<String> = Vec::with_capacity(n);
        let mut attrs = Vec::with_capacity(n);
        let mut text_to_id: HashTable<u32> = HashTable::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            let id = i as u32;
            let text = if t.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                t.clone()
            };
            let a = match types.as_ref().map(|v| v[i]) {
                None => attr::NORMAL,
                Some(0) => attr::UNDEFINED,
                Some(1) => attr::NORMAL,
                Some(2) => attr::UNKNOWN,
                Some(3) => attr::CONTROL,
                Some(4) => attr::USER_DEFINED,
                Some(5) => attr::UNUSED,
                Some(6) => attr::BYTE,
                Some(ty) => return Err(TokenizerError::InvalidTokenType { id, ty }),
            };
            if a == attr::BYTE
                && !(kind == VocabKind::Bpe && byte_level)
                && parse_byte_token(&text).is_none()
            {
                return Err(TokenizerError::InvalidByteToken { id, text });
            }
            let h = hash_str(&text);
            if let Some(&first) = text_to_id.find(h, |&j| texts[j as usize] == *text) {
                return Err(TokenizerError::DuplicateToken {
                    text,
                    first,
                    second: id,
                });
            }
            text_to_id.insert_unique(h, id, |&j| hash_str(&texts[j as usize]));
            texts.push(text);
            attrs.push(a);
        }

        let mut v = Vocab {
            kind,
            byte_level,
            pre,
            texts,
            scores,
            attrs,
            text_to_id,
            special: SpecialIds::default(),
            add_bos: false,
            add_eos: false,
            add_space_prefix: false,
            ignore_merges: false,
            eog: Vec::new(),
        };
        v.load_flags_and_specials(g)?;
        v.detect_special_by_text();
        v.build_eog();
        v.model_specific_attrs(g)?;
        Ok(v)
    }

    pub fn n_tokens(&self) -> usize {
        self.texts.len()
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.text_to_id
            .find(hash_str(text), |&j| self.texts[j as usize] == text)
            .copied()
    }

    fn load_flags_and_specials(&mut self, g: &Gguf) -> Result<(), TokenizerError> {
        let n = self.n_tokens();
        let in_range = |id: u32| ((id as usize) < n).then_some(id);
        // Defaults per family (llama.cpp), silently dropped when outside the vocabulary.
        match self.kind {
            VocabKind::Spm => {
                self.special.bos = in_range(1);
                self.special.eos = in_range(2);
                self.special.unk = in_range(0);
                self.add_space_prefix = true;
                self.add_bos = true;
                self.add_eos = false;
            }
            VocabKind::Bpe if !self.byte_level => {}
            VocabKind::Bpe => {
                self.special.bos = in_range(11);
                self.special.eos = in_range(11);
                if LLAMA3_NAMES.contains(&self.pre.as_str()) {
                    self.ignore_merges = true;
                    self.add_bos = true;
                }
                if matches!(
                    self.pre.as_str(),
                    "tekken" | "youtu" | "minicpm5" | "glm4" | "glm5"
                ) {
                    self.ignore_merges = true;
                }
            }
        }
        if let Some(b) = key_bool(g, "tokenizer.ggml.add_space_prefix")? {
            self.add_space_prefix = b;
        }
        let keys: [(&'static str, Slot); 17] = [
            ("tokenizer.ggml.bos_token_id", |s| &mut s.bos),
            ("tokenizer.ggml.eos_token_id", |s| &mut s.eos),
            ("tokenizer.ggml.eot_token_id", |s| &mut s.eot),
            ("tokenizer.ggml.eom_token_id", |s| &mut s.eom),
            ("tokenizer.ggml.unknown_token_id", |s| &mut s.unk),
            ("tokenizer.ggml.seperator_token_id", |s| &mut s.sep),
            ("tokenizer.ggml.padding_token_id", |s| &mut s.pad),
            ("tokenizer.ggml.mask_token_id", |s| &mut s.mask),
            ("tokenizer.ggml.fim_pre_token_id", |s| &mut s.fim_pre),
            ("tokenizer.ggml.fim_suf_token_id", |s| &mut s.fim_suf),
            ("tokenizer.ggml.fim_mid_token_id", |s| &mut s.fim_mid),
            ("tokenizer.ggml.fim_pad_token_id", |s| &mut s.fim_pad),
            ("tokenizer.ggml.fim_rep_token_id", |s| &mut s.fim_rep),
            ("tokenizer.ggml.fim_sep_token_id", |s| &mut s.fim_sep),
            ("tokenizer.ggml.prefix_token_id", |s| &mut s.fim_pre),
            ("tokenizer.ggml.suffix_token_id", |s| &mut s.fim_suf),
            ("tokenizer.ggml.middle_token_id", |s| &mut s.fim_mid),
        ];
        for (key, slot) in keys {
            if let Some(id) = key_token_id(g, key, n)? {
                *slot(&mut self.special) = Some(id);
            }
        }
        if let Some(b) = key_bool(g, "tokenizer.ggml.add_bos_token")? {
            self.add_bos = b;
        }
        if let Some(b) = key_bool(g, "tokenizer.ggml.add_eos_token")? {
            self.add_eos = b;
        }
        // llama.cpp forces BOS for Gemma 4.
        if self.pre == "gemma4" {
            self.add_bos = true;
        }
        Ok(())
    }

    /// llama.cpp finds EOT/EOM/FIM tokens by their text when the metadata does not name them, and
    /// forces such tokens to be control tokens. Where several texts match one role, llama.cpp's pick
    /// depends on hash-map order; we take the lowest id.
    fn detect_special_by_text(&mut self) {
        const EOT: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "<｜end▁of▁sentence｜>",
            "<end_of_utterance>",
        ];
        const EOM: &[&str] = &["<|eom_id|>"];
        const FIM_PRE: &[&str] = &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ];
        const FIM_SUF: &[&str] = &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ];
        const FIM_MID: &[&str] = &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ];
        const FIM_PAD: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
        const FIM_REP: &[&str] = &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ];
        const FIM_SEP: &[&str] = &["<|file_sep|>"];
        let roles: [(&[&str], Slot); 8] = [
            (EOT, |s| &mut s.eot),
            (EOM, |s| &mut s.eom),
            (FIM_PRE, |s| &mut s.fim_pre),
            (FIM_SUF, |s| &mut s.fim_suf),
            (FIM_MID, |s| &mut s.fim_mid),
            (FIM_PAD, |s| &mut s.fim_pad),
            (FIM_REP, |s| &mut s.fim_rep),
            (FIM_SEP, |s| &mut s.fim_sep),
        ];
        for (texts, slot) in roles {
            if slot(&mut self.special).is_some() {
                continue;
            }
            let found = texts.iter().filter_map(|t| self.id(t)).min();
            if let Some(id) = found {
                *slot(&mut self.special) = Some(id);
                self.attrs[id as usize] |= attr::CONTROL;
            }
        }
        // Control tokens whose text says "unused" are unused.
        for (a, t) in self.attrs.iter_mut().zip(&self.texts) {
            if *a & attr::CONTROL != 0 && t.contains("unused") {
                *a |= attr::UNUSED;
            }
        }
    }

    fn build_eog(&mut self) {
        const EOG: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<|return|>",
            "<|call|>",
            "<|flush|>",
            "<|calls|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "</s>",
            "<|eom_id|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "[EOS]",
            "<|end_of_text|>",
            "<end_of_utterance>",
            "<eos>",
            "<turn|>",
            "<|tool_response>",
            "<｜end▁of▁sentence｜>",
            "[e~[",
        ];
        let s = &self.special;
        let mut eog: Vec<u32> = [s.fim_pad, s.fim_rep, s.fim_sep]
            .into_iter()
            .flatten()
            .collect();
        for t in EOG {
            if let Some(id) = self.id(t) {
                eog.push(id);
                self.attrs[id as usize] |= attr::CONTROL;
            }
        }
        // gpt-oss: always rendered.
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = self.id(t) {
                self.attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend([s.eos, s.eot, s.eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let texts = &self.texts;
        let has = |eog: &[u32], t: &str| eog.iter().any(|&id| texts[id as usize] == t);
        // o200k_harmony / solar-open: "<|end|>" is not end of generation there.
        let drop_end = (has(&eog, "<|return|>")
            && (has(&eog, "<|call|>") || has(&eog, "<|calls|>"))
            && has(&eog, "<|end|>"))
            || ((has(&eog, "<|call|>") || has(&eog, "<|calls|>"))
                && has(&eog, "<|flush|>")
                && has(&eog, "<|end|>"));
        if drop_end {
            if let Some(id) = self.id("<|end|>") {
                eog.retain(|&x| x != id);
                self.attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        // gemma4 / plamo2 have an ordinary "</s>".
        if (has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>")) && has(&eog, "</s>") {
            if let Some(id) = self.id("</s>") {
                eog.retain(|&x| x != id);
                self.attrs[id as usize] = attr::NORMAL;
            }
        }
        self.eog = eog;
    }

    /// Per-model attribute tweaks llama.cpp applies by model name (phi-3: special tokens strip
    /// whitespace on their right).
    fn model_specific_attrs(&mut self, g: &Gguf) -> Result<(), TokenizerError> {
        let name = key_str(g, "general.name")?.unwrap_or("").to_lowercase();
        if name.contains("phi-3") || name.contains("phi3") {
            for a in self.attrs.iter_mut() {
                if *a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0 {
                    *a |= attr::RSTRIP;
                }
            }
            if let Some(id) = self.id("</s>") {
                self.attrs[id as usize] |= attr::RSTRIP;
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(id) = self.id(t) {
                    self.attrs[id as usize] &= !attr::RSTRIP;
                }
            }
        }
        Ok(())
    }
}
