//! Shared helpers for the real-model tests: locating the material (a missing file is a test
//! failure with a clear message, never a silent pass) and loading the model once per test.

#![allow(dead_code)]

use std::path::PathBuf;

use slm_model::Model;

/// `$SLM_MATERIAL` or `~/.cache/slm-material`.
pub fn material_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SLM_MATERIAL") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/slm-material")
}

/// Path of a material file; panics with instructions when it is missing.
pub fn material(name: &str) -> PathBuf {
    let p = material_dir().join(name);
    assert!(
        p.exists(),
        "test material {} is missing: run `python3 tools/material.py` (or set SLM_MATERIAL)",
        p.display()
    );
    p
}

/// The golden file from llama.cpp, under the workspace's shared material.
pub fn golden_path() -> PathBuf {
    let candidates = [
        std::env::var_os("SLM_GOLDEN").map(PathBuf::from),
        Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden/gemma3-270m-greedy-llamacpp.json"),
        ),
        Some(PathBuf::from(
            "/work/shared/material/golden/gemma3-270m-greedy-llamacpp.json",
        )),
    ];
    for c in candidates.into_iter().flatten() {
        if c.exists() {
            return c;
        }
    }
    panic!("golden file gemma3-270m-greedy-llamacpp.json not found (set SLM_GOLDEN)");
}

pub fn gemma() -> Model {
    let mut m = Model::load(&material("gemma-3-270m-q4_k_m.gguf")).expect("load gemma 3 270M");
    m.set_threads(2);
    m
}
