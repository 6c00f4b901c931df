//! Logits of tiny random-weight models of every Llama-family architecture against Hugging Face
//! `transformers`: `tests/fixtures/arch/tiny-<arch>.gguf` (llama.cpp's converter, F32) and
//! `tiny-<arch>-logits.json` (transformers' float32 logits at every position), both made by
//! `tools/golden/arch_hf_tiny.py`. Each prompt runs twice: as one prefill batch, and as a
//! short prefill followed by one token per forward (the KV-cache path); every position's
//! logits must be within `TOL` of transformers'.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use slm_gguf::GgufFile;
use slm_model::{Batch, Model};

/// Max |logit difference| allowed (logits spread over several nats: mean std 2..8). Both
/// sides compute in f32 from the same f32 weights; the differences are summation order, RoPE
/// tables and the fixture's 6 significant digits (measured: 7e-6 qwen2/phi3, 6e-5 llama/qwen3).
const TOL: f32 = 5e-4;

struct Case {
    ids: Vec<u32>,
    /// (ids.len(), n_vocab)
    logits: Vec<Vec<f32>>,
}

fn fixture(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/arch")
        .join(name);
    assert!(
        p.exists(),
        "fixture {} is missing (tools/golden/arch_hf_tiny.py makes it)",
        p.display()
    );
    p
}

fn cases(arch: &str) -> Vec<Case> {
    let text =
        std::fs::read_to_string(fixture(&format!("tiny-{arch}-logits.json"))).expect("read logits");
    let v: Value = serde_json::from_str(&text).expect("logits json");
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            ids: c["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|i| i.as_u64().expect("id") as u32)
                .collect(),
            logits: c["logits"]
                .as_array()
                .expect("logits")
                .iter()
                .map(|r| {
                    r.as_array()
                        .expect("row")
                        .iter()
                        .map(|x| x.as_f64().expect("logit") as f32)
                        .collect()
                })
                .collect(),
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vocabulary sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(arch: &str) {
    let file = Arc::new(GgufFile::open(&fixture(&format!("tiny-{arch}.gguf"))).expect("open"));
    assert_eq!(file.architecture(), Some(arch));
    let mut model = Model::from_file(file).expect("load");
    model.set_threads(2);
    let mut worst = 0.0f32;
    for c in cases(arch) {
        // One prefill batch with logits at every position.
        let mut kv = model.new_kv_cache(64);
        let mut b = Batch::new();
        for (i, &t) in c.ids.iter().enumerate() {
            b.push(t, i as u32, 0, true);
        }
        let out = model.forward(&b, &mut kv).expect("prefill");
        for (i, want) in c.logits.iter().enumerate() {
            let d = max_diff(out.get(i).expect("row"), want);
            assert!(d < TOL, "{arch} prefill position {i}: max |diff| {d}");
            worst = worst.max(d);
        }
        // Prefill of 3 tokens, then one token per forward.
        let mut kv = model.new_kv_cache(64);
        let split = 3;
        let out = model
            .forward(&Batch::sequence(&c.ids[..split], 0, 5), &mut kv)
            .expect("short prefill");
        let d = max_diff(out.last().expect("row"), &c.logits[split - 1]);
        assert!(d < TOL, "{arch} short prefill: max |diff| {d}");
        for (i, &t) in c.ids.iter().enumerate().skip(split) {
            let out = model
                .forward(&Batch::sequence(&[t], i as u32, 5), &mut kv)
                .expect("decode");
            let d = max_diff(out.last().expect("row"), &c.logits[i]);
            assert!(d < TOL, "{arch} decode position {i}: max |diff| {d}");
            worst = worst.max(d);
        }
    }
    eprintln!("{arch}: max |logit diff| vs transformers {worst:.2e} (tolerance {TOL:.0e})");
}

#[test]
fn llama3_rope_scaling_matches_transformers() {
    check("llama");
}

#[test]
fn qwen2_matches_transformers() {
    check("qwen2");
}

#[test]
fn qwen3_matches_transformers() {
    check("qwen3");
}

#[test]
fn phi3_longrope_partial_rotary_matches_transformers() {
    check("phi3");
}
