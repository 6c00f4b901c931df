//! slm-quant's formats on the real tensors of the shipped models (`$SLM_MATERIAL`, fetched by
//! `tools/material.py`; missing material fails the test):
//! - every legacy-quant tensor (Q4_1 of SmolLM2, Q5_0/Q8_0 of Gemma 3 and Qwen 2.5) dequantizes
//!   and re-quantizes to exactly the shipped bytes (llama.cpp wrote them without an imatrix);
//! - rows of every quantized tensor type in the files dequantize bit-exactly like PyPI `gguf`'s
//!   `gguf.quants.dequantize` (ggml's algorithms).

mod formats_support;

use std::collections::BTreeMap;

use formats_support::{material, reference_batch, Job};
use slm_gguf::GgufFile;
use slm_quant::{dequantize_row, quantize_row, GgmlType};

const MODELS: &[&str] = &[
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
];

fn is_legacy(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0
    )
}

#[test]
fn legacy_tensors_requantize_to_shipped_bytes() {
    let mut checked: BTreeMap<(String, GgmlType), usize> = BTreeMap::new();
    for model in MODELS {
        let file = GgufFile::open(&material(model)).expect("open model");
        for t in file.tensors().iter().filter(|t| is_legacy(t.ty)) {
            let data = file.tensor_data(t);
            let n = t.dims[0] as usize;
            let row_bytes = t.ty.row_bytes(n as u64).expect("row") as usize;
            assert_eq!(data.len() as u64, t.n_bytes, "{}", t.name);
            let mut x = vec![0f32; n];
            let mut q = vec![0u8; row_bytes];
            for (r, row) in data.chunks_exact(row_bytes).enumerate() {
                dequantize_row(t.ty, row, &mut x).expect("dequantize");
                quantize_row(t.ty, &x, &mut q, None).expect("quantize");
                if q != row {
                    let bs = t.ty.type_size() as usize;
                    let b = q.chunks(bs).zip(row.chunks(bs)).position(|(a, b)| a != b);
                    panic!(
                        "{model} {} ({}) row {r} block {b:?} re-quantizes differently",
                        t.name, t.ty
                    );
                }
            }
            *checked.entry((model.to_string(), t.ty)).or_default() += 1;
        }
    }
    eprintln!("re-quantized tensors: {checked:?}");
    let count = |m: &str, ty| checked.get(&(m.to_string(), ty)).copied().unwrap_or(0);
    assert!(
        count(MODELS[0], GgmlType::Q4_1) > 100,
        "SmolLM2 Q4_1 tensors"
    );
    assert!(
        count(MODELS[1], GgmlType::Q5_0) > 50,
        "Gemma 3 Q5_0 tensors"
    );
    assert!(count(MODELS[1], GgmlType::Q8_0) > 5, "Gemma 3 Q8_0 tensors");
    assert!(count(MODELS[2], GgmlType::Q5_0) > 50, "Qwen Q5_0 tensors");
}

#[test]
fn model_tensors_dequantize_like_gguf_py() {
    const ROWS: usize = 48;
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    let mut labels = Vec::new();
    for model in MODELS {
        let file = GgufFile::open(&material(model)).expect("open model");
        let mut per_type: BTreeMap<GgmlType, usize> = BTreeMap::new();
        for t in file.tensors() {
            let seen = per_type.entry(t.ty).or_default();
            // Two tensors per type and model, the first rows of each.
            if *seen >= 2 || t.ty == GgmlType::F32 && *seen >= 1 {
                continue;
            }
            *seen += 1;
            let n = t.dims[0] as usize;
            let row_bytes = t.ty.row_bytes(n as u64).expect("row") as usize;
            let data = file.tensor_data(t);
            let rows = (data.len() / row_bytes).min(ROWS);
            let raw = &data[..rows * row_bytes];
            let mut y = vec![0f32; rows * n];
            for (src, dst) in raw.chunks_exact(row_bytes).zip(y.chunks_exact_mut(n)) {
                dequantize_row(t.ty, src, dst).expect("dequantize");
            }
            jobs.push(Job {
                op: "dequant",
                ty: t.ty,
                n_per_row: n,
                input: raw.to_vec(),
                imatrix: None,
            });
            ours.push(y);
            labels.push(format!("{model} {} ({})", t.name, t.ty));
        }
    }
    let theirs = reference_batch(&jobs);
    let mut types = std::collections::BTreeSet::new();
    for ((label, y), t) in labels.iter().zip(&ours).zip(&theirs) {
        let t: &[f32] = bytemuck::cast_slice(t);
        assert_eq!(y.len(), t.len(), "{label}");
        if let Some(i) = (0..y.len()).find(|&i| y[i].to_bits() != t[i].to_bits()) {
            panic!("{label}: value {i} ours {} gguf-py {}", y[i], t[i]);
        }
    }
    for j in &jobs {
        types.insert(j.ty);
    }
    for ty in [
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        assert!(types.contains(&ty), "no {ty} tensor was compared");
    }
}
