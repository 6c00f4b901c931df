//! The real models of the test material ($SLM_MATERIAL, default ~/.cache/slm-material, fetched by
//! `python3 tools/material.py`): slm's parse equals `gguf.GGUFReader`'s (PyPI `gguf` 0.19.0)
//! on every metadata entry and every tensor (name, type, dims, element and byte count, offset and
//! the sha256 of its bytes), and the parameter counts are the known ones. Missing material fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use common::{assert_same, python_dump, slm_json};
use slm_gguf::GgufFile;

fn material() -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/slm-material")
        });
    assert!(
        dir.is_dir(),
        "test material missing: {} does not exist; run `python3 tools/material.py` (or set SLM_MATERIAL)",
        dir.display()
    );
    dir
}

fn model(file: &str) -> PathBuf {
    let p = material().join(file);
    assert!(
        p.is_file(),
        "test material missing: {}; run `python3 tools/material.py`",
        p.display()
    );
    p
}

/// (file, general.architecture, tensor count, sum of n_elements)
const MODELS: &[(&str, &str, usize, u64)] = &[
    ("gemma-3-270m-q4_k_m.gguf", "gemma3", 236, 268_098_176),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "llama", 272, 134_515_008),
    (
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "qwen2",
        291,
        630_167_424,
    ),
];

fn check(file: &str, arch: &str, n_tensors: usize, params: u64) {
    let path = model(file);
    let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(f.architecture(), Some(arch), "{file}");
    assert_eq!(f.tensors().len(), n_tensors, "{file}");
    let sum: u64 = f.tensors().iter().map(|t| t.n_elements).sum();
    assert_eq!(sum, params, "{file}: parameter count");
    // Tensors fill the data section up to the final padding.
    let last_end = f
        .tensors()
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap();
    assert!(
        f.data_len - last_end < f.alignment,
        "{file}: data section has slack"
    );
    let py = python_dump(&[&path]);
    assert_same(file, &slm_json(&f), &py[0]);
}

#[test]
fn gemma3_270m_matches_gguf() {
    let (f, a, n, p) = MODELS[0];
    check(f, a, n, p);
}

#[test]
fn smollm2_135m_matches_gguf() {
    let (f, a, n, p) = MODELS[1];
    check(f, a, n, p);
}

#[test]
fn qwen25_coder_05b_matches_gguf() {
    let (f, a, n, p) = MODELS[2];
    check(f, a, n, p);
}

/// llama.cpp's vocab-only GGUFs (material `vocab/`): metadata-heavy files from other converters
/// (WordPiece, SentencePiece, BPE). The six smallest, to keep the Python side quick.
const VOCABS: &[&str] = &[
    "bert-bge",
    "llama-spm",
    "phi-3",
    "deepseek-coder",
    "baichuan",
    "starcoder",
];

#[test]
fn llama_cpp_vocab_files_match_gguf() {
    let paths: Vec<PathBuf> = VOCABS
        .iter()
        .map(|v| model(&format!("vocab/ggml-vocab-{v}.gguf")))
        .collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let dumps = python_dump(&refs);
    assert_eq!(dumps.len(), paths.len());
    for (p, py) in paths.iter().zip(&dumps) {
        let f = GgufFile::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(f
            .get_array("tokenizer.ggml.tokens")
            .is_some_and(|a| a.len() > 1000));
        assert_same(&p.display().to_string(), &slm_json(&f), py);
    }
}
