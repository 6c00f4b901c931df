//! Tokenizer metadata, as llama.cpp's converter writes it: the vocabulary from
//! `tokenizer.model` (SentencePiece: pieces, scores, types; `tokenizer.ggml.model = llama`) or
//! `tokenizer.json` (byte-level BPE: tokens, types, merges; `gpt2`), then gguf-py's
//! `SpecialVocab`: special token ids (tokenizer_config.json names resolved through
//! tokenizer.json's added tokens, then config.json's `*_token_id`), `add_*_token` flags (from
//! the post-processor, then tokenizer_config.json) and the chat template.
//!
//! One deliberate difference: llama.cpp names the BPE pre-tokenizer by hashing the token ids
//! the HF tokenizer gives for a test string; we recognise the `pre_tokenizer` definition
//! itself ([`PRE_TOKENIZERS`]) and fail with a clear message for others (override: `pre`).

use std::path::Path;

use serde_json::{json, Value};
use slm_gguf::{Array, Value as GValue};

use crate::error::{Error, Result};
use crate::hf::config::{read_json, Arch, HfConfig};
use crate::hf::meta::Meta;
use crate::hf::spm::{self, Piece};

/// GGUF token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

const LLAMA3_REGEX: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// Known `pre_tokenizer` definitions of tokenizer.json and llama.cpp's name for each (the name
/// its hash table gives those models). Used both ways: to name a tokenizer on conversion and to
/// write one on export.
pub fn pre_tokenizers() -> Vec<(&'static str, Value)> {
    let byte_level = |use_regex: bool, trim: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": trim, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    vec![
        (
            "llama-bpe",
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(false, false)]}),
        ),
        (
            "qwen2",
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(false, false)]}),
        ),
        (
            "smollm",
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true, true)]}),
        ),
        ("gpt-2", byte_level(true, true)),
    ]
}

/// Compare pre-tokenizer definitions on what changes the split (types, patterns, regex use,
/// digits), ignoring offsets-only fields.
fn same_pre(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| -> Value {
        let mut v = v.clone();
        strip(&mut v);
        v
    };
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("trim_offsets");
                m.remove("add_prefix_space");
                m.remove("invert");
                for (_, x) in m.iter_mut() {
                    strip(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    norm(a) == norm(b)
}

/// llama.cpp's name for a tokenizer.json `pre_tokenizer`.
pub fn detect_pre(pre: &Value) -> Option<&'static str> {
    pre_tokenizers()
        .into_iter()
        .find(|(_, v)| same_pre(v, pre))
        .map(|(n, _)| n)
}

/// gguf-py's `does_token_look_special`.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

fn opt_json(path: &Path) -> Result<Option<Value>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

fn tok_err(file: &Path, why: impl Into<String>) -> Error {
    Error::HfConfig {
        file: file.display().to_string(),
        why: why.into(),
    }
}

/// Write the tokenizer keys for the model folder `dir`. `pre` overrides the BPE pre-tokenizer
/// name. Returns the number of tokens.
pub fn set_vocab(dir: &Path, cfg: &HfConfig, m: &mut Meta, pre: Option<&str>) -> Result<usize> {
    let tc = opt_json(&dir.join("tokenizer_config.json"))?;
    let has_spm = dir.join("tokenizer.model").is_file();
    let n = match cfg.arch {
        Arch::Llama => {
            if let Some(b) = tc
                .as_ref()
                .and_then(|t| t.get("add_prefix_space"))
                .and_then(Value::as_bool)
            {
                m.bool("tokenizer.ggml.add_space_prefix", b);
            }
            if has_spm {
                sentencepiece(dir, cfg, m, tc.as_ref(), false)?
            } else {
                gpt2(dir, cfg, m, pre)?
            }
        }
        Arch::Phi3 => {
            let class = tc
                .as_ref()
                .and_then(|t| t.get("tokenizer_class"))
                .and_then(Value::as_str);
            if class == Some("GPT2Tokenizer") {
                gpt2(dir, cfg, m, pre)?
            } else if has_spm {
                sentencepiece(dir, cfg, m, tc.as_ref(), true)?
            } else {
                return Err(Error::MissingFile {
                    path: dir.join("tokenizer.model").display().to_string(),
                    what: "tokenizer.model for a Phi-3 SentencePiece vocabulary".into(),
                });
            }
        }
        Arch::Qwen2 | Arch::Qwen3 | Arch::Gemma3 | Arch::GemmaEmbedding => {
            if has_spm {
                let n = sentencepiece(dir, cfg, m, tc.as_ref(), false)?;
                if matches!(cfg.arch, Arch::Gemma3 | Arch::GemmaEmbedding) {
                    m.bool("tokenizer.ggml.add_space_prefix", false);
                }
                n
            } else {
                gpt2(dir, cfg, m, pre)?
            }
        }
    };
    Ok(n)
}

/// `_create_vocab_sentencepiece` (or Phi-3's variant) + `SpecialVocab`.
fn sentencepiece(
    dir: &Path,
    cfg: &HfConfig,
    m: &mut Meta,
    tc: Option<&Value>,
    phi3: bool,
) -> Result<usize> {
    let path = dir.join("tokenizer.model");
    let bytes = std::fs::read(&path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let pieces = spm::parse_model(&bytes, &path.display().to_string())?;
    let vocab_size = match cfg.find_u32(&["vocab_size_per_layer_input", "vocab_size"])? {
        Some(v) if v > 0 => v as usize,
        _ => pieces.len(),
    };
    let mut tokens: Vec<String> = (0..vocab_size).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; vocab_size];
    let mut types = vec![UNUSED; vocab_size];
    for (id, Piece { piece, score, kind }) in pieces.iter().enumerate().take(vocab_size) {
        tokens[id] = piece.clone();
        scores[id] = *score;
        types[id] = match *kind {
            spm::UNKNOWN | spm::CONTROL | spm::UNUSED | spm::BYTE => *kind,
            _ => NORMAL,
        };
    }
    if let Some(Value::Object(added)) = opt_json(&dir.join("added_tokens.json"))? {
        for (content, id) in added {
            if let Some(id) = id.as_u64().and_then(|i| usize::try_from(i).ok()) {
                if id < vocab_size {
                    tokens[id] = content;
                    scores[id] = -1000.0;
                    types[id] = USER_DEFINED;
                }
            }
        }
    }
    let mut apply_added = |id: usize, content: &str, special: bool| {
        if id >= vocab_size {
            return;
        }
        if phi3 {
            tokens[id] = content.to_string();
            types[id] = if special { CONTROL } else { USER_DEFINED };
        } else if special || looks_special(content) {
            tokens[id] = content.to_string();
            types[id] = CONTROL;
        } else {
            tokens[id] = content.replace('\u{2581}', " ");
            types[id] = USER_DEFINED;
        }
        scores[id] = -1000.0;
    };
    if let Some(Value::Object(dec)) = tc.and_then(|t| t.get("added_tokens_decoder")) {
        for (id, data) in dec {
            let (Ok(id), Some(content)) = (
                id.parse::<usize>(),
                data.get("content").and_then(Value::as_str),
            ) else {
                continue;
            };
            let special = data.get("special").and_then(Value::as_bool) == Some(true);
            apply_added(id, content, special);
        }
    }
    if phi3 {
        if let Some(tj) = opt_json(&dir.join("tokenizer.json"))? {
            for a in tj
                .get("added_tokens")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = a
                    .get("id")
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok());
                let content = a.get("content").and_then(Value::as_str);
                if let (Some(id), Some(content)) = (id, content) {
                    let special = a.get("special").and_then(Value::as_bool) == Some(true);
                    apply_added(id, content, special);
                }
            }
        }
    }
    let n = tokens.len();
    m.str("tokenizer.ggml.model", "llama");
    m.str("tokenizer.ggml.pre", "default");
    m.strings("tokenizer.ggml.tokens", tokens);
    m.set("tokenizer.ggml.scores", GValue::Array(Array::F32(scores)));
    m.set(
        "tokenizer.ggml.token_type",
        GValue::Array(Array::I32(types)),
    );
    special_vocab(dir, m, tc, n, false)?;
    Ok(n)
}

/// `_set_vocab_gpt2`: byte-level BPE from tokenizer.json.
fn gpt2(dir: &Path, cfg: &HfConfig, m: &mut Meta, pre: Option<&str>) -> Result<usize> {
    let path = dir.join("tokenizer.json");
    let tj = opt_json(&path)?.ok_or_else(|| Error::MissingFile {
        path: path.display().to_string(),
        what: "tokenizer.json or tokenizer.model".into(),
    })?;
    let model = tj
        .get("model")
        .ok_or_else(|| tok_err(&path, "no \"model\""))?;
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return Err(tok_err(
            &path,
            "only BPE tokenizer.json models are supported",
        ));
    }
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| tok_err(&path, "no model.vocab object"))?;
    let added: Vec<(usize, String, bool)> = tj
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let id = usize::try_from(a.get("id")?.as_u64()?).ok()?;
            let content = a.get("content")?.as_str()?.to_string();
            Some((
                id,
                content,
                a.get("special").and_then(Value::as_bool) == Some(true),
            ))
        })
        .collect();
    let mut by_id: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    for (t, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| tok_err(&path, format!("token {t:?} has a bad id")))?;
        by_id.insert(id, t.clone());
    }
    for (id, content, _) in &added {
        by_id.insert(*id, content.clone());
    }
    let max_id = by_id.keys().copied().max().unwrap_or(0);
    let vocab_size = match cfg.find_u32(&["vocab_size"])? {
        Some(v) => v as usize,
        None => by_id.len(),
    };
    if max_id >= vocab_size || vocab_size > (1 << 24) {
        return Err(tok_err(
            &path,
            format!("token id {max_id} does not fit the vocabulary size {vocab_size}"),
        ));
    }
    let mut tokens = Vec::with_capacity(vocab_size);
    let mut types = Vec::with_capacity(vocab_size);
    for i in 0..vocab_size {
        match by_id.get(&i) {
            None => {
                tokens.push(format!("[PAD{i}]"));
                types.push(UNUSED);
            }
            Some(t) => match added.iter().find(|(id, _, _)| *id == i) {
                Some((_, _, special)) if *special || looks_special(t) => {
                    tokens.push(t.clone());
                    types.push(CONTROL);
                }
                Some(_) => {
                    tokens.push(t.replace('\u{2581}', " "));
                    types.push(USER_DEFINED);
                }
                None => {
                    tokens.push(t.clone());
                    types.push(NORMAL);
                }
            },
        }
    }
    let pre_name = match pre {
        Some(p) => p.to_string(),
        None => {
            let def = tj.get("pre_tokenizer").cloned().unwrap_or(Value::Null);
            detect_pre(&def)
                .ok_or_else(|| {
                    tok_err(
                        &path,
                        format!(
                            "unrecognized BPE pre-tokenizer {} (known: {}); name it with --vocab-pre",
                            serde_json::to_string(&def).unwrap_or_default().chars().take(200).collect::<String>(),
                            pre_tokenizers().iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?
                .to_string()
        }
    };
    let n = tokens.len();
    m.str("tokenizer.ggml.model", "gpt2");
    m.str("tokenizer.ggml.pre", &pre_name);
    m.strings("tokenizer.ggml.tokens", tokens);
    m.set(
        "tokenizer.ggml.token_type",
        GValue::Array(Array::I32(types)),
    );
    let tc = opt_json(&dir.join("tokenizer_config.json"))?;
    special_vocab(dir, m, tc.as_ref(), n, true)?;
    Ok(n)
}

/// BPE merges of tokenizer.json in the GGUF form ("a b"; a space inside a part as U+0120).
fn merges(tj: &Value) -> Option<Vec<String>> {
    let list = tj.get("model")?.get("merges")?.as_array()?;
    list.iter()
        .map(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(pair) if pair.len() == 2 => {
                let enc = |v: &Value| v.as_str().map(|s| s.replace(' ', "\u{120}"));
                Some(format!("{} {}", enc(&pair[0])?, enc(&pair[1])?))
            }
            _ => None,
        })
        .collect()
}

const TYPES: [&str; 7] = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];

fn id_key(typ: &str) -> String {
    let k = match typ {
        "unk" => "unknown",
        "sep" => "seperator",
        "pad" => "padding",
        other => other,
    };
    format!("tokenizer.ggml.{k}_token_id")
}

/// gguf-py's `SpecialVocab` for a vocabulary of `n_vocab` tokens.
fn special_vocab(
    dir: &Path,
    m: &mut Meta,
    tc: Option<&Value>,
    n_vocab: usize,
    load_merges: bool,
) -> Result<()> {
    let mut ids: Vec<(String, u32)> = Vec::new();
    let mut add: Vec<(String, bool)> = Vec::new();
    let set_id = |ids: &mut Vec<(String, u32)>, typ: &str, v: Option<&Value>| {
        if let Some(id) = v.and_then(Value::as_u64) {
            if (id as usize) < n_vocab && !ids.iter().any(|(t, _)| t == typ) {
                ids.push((typ.to_string(), id as u32));
            }
        }
    };
    let set_add = |add: &mut Vec<(String, bool)>, typ: &str, v: bool, force: bool| match add
        .iter_mut()
        .find(|(t, _)| t == typ)
    {
        Some(slot) if force => slot.1 = v,
        Some(_) => {}
        None => add.push((typ.to_string(), v)),
    };
    let tj = opt_json(&dir.join("tokenizer.json"))?;
    let mut merge_list = None;
    let mut added_tokens: Vec<(String, Value)> = Vec::new();
    let tc = tc.cloned();
    if let Some(tj) = &tj {
        if load_merges {
            merge_list = merges(tj);
        }
        for a in tj
            .get("added_tokens")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(c), Some(id)) = (a.get("content").and_then(Value::as_str), a.get("id")) {
                added_tokens.push((c.to_string(), id.clone()));
            }
        }
        let tok_name = |tc: &Option<Value>, typ: &str| -> Option<String> {
            let e = tc.as_ref()?.get(format!("{typ}_token"))?;
            e.as_str()
                .or_else(|| e.get("content").and_then(Value::as_str))
                .map(str::to_string)
        };
        let bos = tok_name(&tc, "bos").or_else(|| tok_name(&tc, "cls"));
        let eos = tok_name(&tc, "eos").or_else(|| tok_name(&tc, "sep"));
        if let Some(pp) = tj.get("post_processor").filter(|p| !p.is_null()) {
            let procs: Vec<&Value> = match pp.get("processors").and_then(Value::as_array) {
                Some(list) => list.iter().collect(),
                None => vec![pp],
            };
            for p in procs {
                match p.get("type").and_then(Value::as_str) {
                    Some("ByteLevel") => {
                        set_add(&mut add, "bos", false, false);
                        set_add(&mut add, "eos", false, false);
                    }
                    Some("TemplateProcessing") => {
                        let special = |v: Option<&Value>| {
                            v.and_then(|x| x.get("SpecialToken"))
                                .and_then(|s| s.get("id"))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        };
                        let single = p.get("single").and_then(Value::as_array);
                        if let Some(single) = single.filter(|s| s.len() > 1) {
                            let first = special(single.first());
                            let last = special(single.last());
                            if let Some(f) = &first {
                                set_add(&mut add, "bos", Some(f) == bos.as_ref(), true);
                            }
                            if let Some(l) = &last {
                                set_add(&mut add, "eos", Some(l) == eos.as_ref(), true);
                            }
                            let pair = p.get("pair").and_then(Value::as_array);
                            if let Some(pair) = pair.filter(|p| !p.is_empty()) {
                                let start =
                                    usize::from(first.is_some() && special(pair.first()) == first);
                                let stop = if last.is_some() && special(pair.last()) == last {
                                    pair.len().saturating_sub(1)
                                } else {
                                    pair.len()
                                };
                                let mid = pair.get(start..stop).unwrap_or(&[]);
                                fn seq(v: Option<&Value>) -> Option<&str> {
                                    v.and_then(|x| x.get("Sequence"))
                                        .and_then(|s| s.get("id"))
                                        .and_then(Value::as_str)
                                }
                                if mid.len() > 2
                                    && seq(mid.first()) == Some("A")
                                    && seq(mid.last()) == Some("B")
                                {
                                    let inner = &mid[1..mid.len() - 1];
                                    let sep = tok_name(&tc, "sep");
                                    let is_sep = |t: &Option<String>| {
                                        t.is_some() && (*t == sep || *t == eos)
                                    };
                                    let mut add_sep =
                                        is_sep(&special(inner.first())) && last.is_none();
                                    if inner.len() == 2 && is_sep(&special(inner.get(1))) {
                                        add_sep = true;
                                    }
                                    set_add(&mut add, "sep", add_sep, true);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut template: Option<Value> = None;
    if let Some(tc) = &tc {
        let jinja = dir.join("chat_template.jinja");
        let alt = if jinja.is_file() {
            Some(Value::String(std::fs::read_to_string(&jinja).map_err(
                |source| Error::Io {
                    path: jinja.display().to_string(),
                    source,
                },
            )?))
        } else {
            opt_json(&dir.join("chat_template.json"))?.and_then(|v| v.get("chat_template").cloned())
        };
        template = tc.get("chat_template").cloned().or(alt);
        for typ in TYPES {
            if let Some(b) = tc.get(format!("add_{typ}_token")).and_then(Value::as_bool) {
                set_add(&mut add, typ, b, false);
            }
            let entry = tc.get(format!("{typ}_token"));
            let content = entry
                .and_then(Value::as_str)
                .or_else(|| entry.and_then(|e| e.get("content")).and_then(Value::as_str));
            if let Some(c) = content {
                let id = added_tokens.iter().find(|(a, _)| a == c).map(|(_, id)| id);
                set_id(&mut ids, typ, id);
            }
        }
    }
    if let Some(Value::Object(cfg)) = opt_json(&dir.join("config.json"))? {
        for typ in TYPES {
            let v = cfg
                .get(&format!("{typ}_token_id"))
                .filter(|v| !v.is_null())
                .or_else(|| {
                    cfg.get("text_config")
                        .and_then(|t| t.get(format!("{typ}_token_id")))
                });
            set_id(&mut ids, typ, v);
        }
    }
    if let Some(ml) = merge_list.filter(|l| !l.is_empty()) {
        m.strings("tokenizer.ggml.merges", ml);
    }
    for (typ, id) in ids {
        m.u32(&id_key(&typ), id);
    }
    for (typ, v) in add {
        if matches!(typ.as_str(), "bos" | "eos" | "sep") {
            m.bool(&format!("tokenizer.ggml.add_{typ}_token"), v);
        }
    }
    match template {
        Some(Value::String(s)) => m.str("tokenizer.chat_template", &s),
        Some(Value::Array(list)) => {
            let mut names = Vec::new();
            for t in &list {
                let (Some(name), Some(body)) = (
                    t.get("name").and_then(Value::as_str),
                    t.get("template").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if name == "default" {
                    m.str("tokenizer.chat_template", body);
                } else {
                    m.str(&format!("tokenizer.chat_template.{name}"), body);
                    names.push(name.to_string());
                }
            }
            if !names.is_empty() {
                m.strings("tokenizer.chat_templates", names);
            }
        }
        _ => {}
    }
    Ok(())
}
