//! Shared helpers for the real-model tests: locating the material (a missing file is a test
//! failure with a clear message, never a silent pass) and loading the model once per test.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use slm_gguf::{GgmlType, GgufBuilder, GgufFile};
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

/// A JSON fixture under tests/fixtures/.
pub fn json_fixture(rel: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("fixture json")
}

/// sum(byte[i] * (i + 1)) mod 2^64, as tools/golden/kld_ref.py computes it.
pub fn checksum(data: &[u8]) -> String {
    let mut total = 0u64;
    for (i, &b) in data.iter().enumerate() {
        total = total.wrapping_add(u64::from(b).wrapping_mul(i as u64 + 1));
    }
    format!("{total:016x}")
}

/// A copy of `src` with every tensor converted to the type `want[i]` (name, type, checksum)
/// lists, through F32; the bytes must match the checksums.
pub fn rebuild(src: &GgufFile, want: &[Value]) -> GgufFile {
    let mut b = GgufBuilder::new();
    for (k, v) in src.metadata() {
        b.kv(k, v.clone()).expect("kv");
    }
    let mut blobs = Vec::new();
    assert_eq!(src.tensors().len(), want.len(), "tensor count");
    // In the reference file's order (llama-quantize writes its own order).
    for w in want {
        let (name, ty, sum) = (
            w[0].as_str().unwrap(),
            w[1].as_str().unwrap(),
            w[2].as_str().unwrap(),
        );
        let t = src
            .tensor_info(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let ty = GgmlType::from_name(ty).expect("known type");
        let n = t.n_elements as usize;
        let mut f = vec![0f32; n];
        slm_quant::formats::dequantize_row(t.ty, src.tensor_data(t), &mut f).expect("dequantize");
        let bytes: Vec<u8> = if ty == GgmlType::F32 {
            f.iter().flat_map(|v| v.to_le_bytes()).collect()
        } else {
            let cols = t.dims[0] as usize;
            let mut out = vec![0u8; ty.row_bytes(cols as u64).unwrap() as usize * (n / cols)];
            slm_quant::formats::quantize_rows(ty, &f, cols, &mut out, None).expect("quantize");
            out
        };
        assert_eq!(
            checksum(&bytes),
            sum,
            "{name} as {ty:?}: bytes differ from llama-quantize's"
        );
        b.tensor(name, &t.dims, ty).expect("tensor");
        blobs.push(bytes);
    }
    let mut w = b.write_header(Vec::new()).expect("header");
    for blob in &blobs {
        w.write_tensor(blob).expect("data");
    }
    GgufFile::from_vec(w.finish().expect("finish")).expect("parse rebuilt file")
}

/// The F32 SmolLM2-135M: the real Q4_1 dequantized, in memory, checked against the checksums
/// of `llama-quantize --allow-requantize ... F32` (fixture of tools/golden/kld_ref.py).
pub fn smollm2_f32() -> GgufFile {
    let q41 = GgufFile::open(&material("SmolLM2-135M-Instruct.Q4_1.gguf")).expect("open");
    let fx = json_fixture("kld/smollm2_q4_0_vs_f32.json");
    rebuild(&q41, fx["f32_tensors"].as_array().expect("f32_tensors"))
}
