//! Shared helpers for the tests that use the real material (`$SLM_MATERIAL`, fetched by
//! `python3 tools/material.py`). Missing material is a test failure, never a silent pass.
#![allow(dead_code)]

use std::path::PathBuf;

use slm_gguf::GgufFile;
use slm_tokenizer::Tokenizer;

pub fn material_dir() -> PathBuf {
    match std::env::var_os("SLM_MATERIAL") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache").join("slm-material")
        }
    }
}

pub fn material(rel: &str) -> PathBuf {
    let p = material_dir().join(rel);
    assert!(
        p.exists(),
        "test material {} is missing: run `python3 tools/material.py` first",
        p.display()
    );
    p
}

pub fn load(rel: &str) -> Tokenizer {
    let path = material(rel);
    let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    Tokenizer::from_gguf(&f).unwrap_or_else(|e| panic!("tokenizer of {}: {e}", path.display()))
}

/// llama.cpp's test-tokenizer-0 reader: cases split by "\n__ggml_vocab_test__\n", a trailing
/// separator ends the list; one line of ids per case.
pub fn read_cases(name: &str) -> Vec<(String, Vec<u32>)> {
    let inp =
        std::fs::read_to_string(material(&format!("vocab/ggml-vocab-{name}.gguf.inp"))).unwrap();
    let out =
        std::fs::read_to_string(material(&format!("vocab/ggml-vocab-{name}.gguf.out"))).unwrap();
    let sep = "\n__ggml_vocab_test__\n";
    let mut cases = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].find(sep) {
            None => {
                cases.push(inp[pos..].to_string());
                break;
            }
            Some(n) => {
                cases.push(inp[pos..pos + n].to_string());
                pos += n + sep.len();
            }
        }
    }
    let outs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        cases.len(),
        outs.len(),
        "{name}: .inp and .out case counts differ"
    );
    cases.into_iter().zip(outs).collect()
}
