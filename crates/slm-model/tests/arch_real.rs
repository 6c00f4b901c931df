//! Real Llama-family models from the test material against llama.cpp: perplexity on
//! botchan.txt with llama-perplexity's method (`-c 512 --chunks 20 -b 512`, llama.cpp numbers
//! from the material README) within 0.5%, and greedy continuations equal to llama.cpp's
//! (`tests/fixtures/arch/*-greedy-llamacpp.json`, made by `tools/golden/arch_llamacpp_greedy.py`)
//! up to near-ties: a different pick is accepted only where llama.cpp's top-2 log-prob gap is
//! below `tie` (0.25 nats for Qwen; 0.5 for SmolLM2, whose Q4_1 weights with Q8_1 activations
//! make the per-step log-probs differ from llama.cpp's by up to ~0.2 nats, f16-vs-f32 KV cache
//! and activation rounding: measured, one pick flips at a 0.31 gap).

mod common;

use std::path::PathBuf;

use serde_json::Value;
use slm_model::{argmax, Batch, Model};
use slm_tokenizer::Tokenizer;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const QWEN2: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

fn load(name: &str) -> Model {
    let mut m = Model::load(&common::material(name)).expect("load model");
    m.set_threads(2);
    m
}

fn check_perplexity(name: &str, llama_cpp: f64) {
    let mut model = load(name);
    let text = std::fs::read_to_string(common::material("botchan.txt")).expect("read botchan");
    let tok = Tokenizer::from_gguf(model.file()).expect("tokenizer");
    let tokens = tok.encode(&text, true, false).expect("tokenize");
    let bos = if tok.add_bos() { tok.bos() } else { None };
    let t0 = std::time::Instant::now();
    let r = slm_model::eval::perplexity(&mut model, &tokens, 512, 20, bos, |i, p| {
        eprintln!("[{}] {p:.4}", i + 1);
    })
    .expect("perplexity");
    let rel = (r.ppl - llama_cpp).abs() / llama_cpp;
    eprintln!(
        "{name}: perplexity {:.4} over {} tokens, llama.cpp {llama_cpp}, off by {:.3}%, {:.1}s",
        r.ppl,
        r.n_scored,
        rel * 100.0,
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(r.n_scored, 20 * 255);
    assert!(
        rel < 0.005,
        "{name}: perplexity {} is not within 0.5% of llama.cpp's {llama_cpp}",
        r.ppl
    );
}

#[test]
fn smollm2_perplexity_matches_llama_cpp() {
    check_perplexity(SMOLLM2, 26.9222);
}

#[test]
fn qwen2_perplexity_matches_llama_cpp() {
    check_perplexity(QWEN2, 42.7271);
}

/// One prompt of a llama.cpp greedy fixture.
struct Case {
    prompt: String,
    prompt_ids: Vec<u32>,
    ids: Vec<u32>,
    /// llama.cpp's top-2 (id, logprob) per step.
    top2: Vec<[(u32, f64); 2]>,
}

fn fixture(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/arch")
        .join(name);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p
}

fn cases(name: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(fixture(name)).expect("read fixture");
    let v: Value = serde_json::from_str(&text).expect("fixture json");
    let ids = |x: &Value| -> Vec<u32> {
        x.as_array()
            .expect("id array")
            .iter()
            .map(|i| i.as_u64().expect("id") as u32)
            .collect()
    };
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| Case {
            prompt: r["prompt"].as_str().unwrap_or_default().to_string(),
            prompt_ids: ids(&r["prompt_ids"]),
            ids: ids(&r["generated_ids"]),
            top2: r["top2_logprobs_per_step"]
                .as_array()
                .expect("top2")
                .iter()
                .map(|s| {
                    let p = |k: usize| {
                        (
                            s[k][0].as_u64().expect("id") as u32,
                            s[k][1].as_f64().expect("logprob"),
                        )
                    };
                    [p(0), p(1)]
                })
                .collect(),
        })
        .collect()
}

/// Greedy decode of one case against llama.cpp: returns (steps compared, max |logprob diff|
/// of llama.cpp's pick).
fn check_case(model: &mut Model, c: &Case, tie: f64) -> (usize, f64) {
    let mut kv = model.new_kv_cache(256);
    let mut logits = model
        .forward(&Batch::sequence(&c.prompt_ids, 0, 0), &mut kv)
        .expect("prefill");
    let mut max_err = 0.0f64;
    for (step, pos) in (c.prompt_ids.len() as u32..).take(c.ids.len()).enumerate() {
        let row = logits.last().expect("logits");
        let ours = argmax(row);
        let [(id0, lp0), (_, lp1)] = c.top2[step];
        assert_eq!(id0, c.ids[step], "fixture is self-consistent");
        if ours != id0 {
            let gap = lp0 - lp1;
            assert!(
                gap < tie,
                "{:?} step {step}: we pick {ours} (logprob {:.3}), llama.cpp {id0} (ours {:.3}, \
                 llama.cpp {lp0:.3}) with a top-2 gap of {gap:.3} nats",
                c.prompt,
                -slm_model::eval::nll(row, ours),
                -slm_model::eval::nll(row, id0),
            );
            eprintln!("{:?}: near-tie at step {step} (gap {gap:.3})", c.prompt);
            return (step, max_err);
        }
        let d = -slm_model::eval::nll(row, id0) - lp0;
        if std::env::var_os("SLM_TEST_VERBOSE").is_some() {
            eprintln!("step {step}: id {id0} logprob diff {d:+.4}");
        }
        max_err = max_err.max(d.abs());
        logits = model
            .forward(&Batch::sequence(&[ours], pos, 0), &mut kv)
            .expect("decode");
    }
    (c.ids.len(), max_err)
}

fn check_greedy(model_name: &str, fixture_name: &str, tie: f64, min_steps: usize) {
    let mut model = load(model_name);
    let mut compared = 0;
    for c in cases(fixture_name) {
        let (n, err) = check_case(&mut model, &c, tie);
        eprintln!(
            "{model_name} {:?}: {n}/{} tokens equal to llama.cpp, max |logprob diff| {err:.4}",
            c.prompt,
            c.ids.len()
        );
        assert!(err < 0.3, "{:?}: logprob differs by {err}", c.prompt);
        compared += n;
    }
    assert!(compared >= min_steps, "only {compared} steps compared");
}

#[test]
fn smollm2_greedy_matches_llama_cpp() {
    check_greedy(SMOLLM2, "smollm2-135m-q4_1-greedy-llamacpp.json", 0.5, 48);
}

#[test]
fn qwen2_greedy_matches_llama_cpp() {
    check_greedy(
        QWEN2,
        "qwen2.5-coder-0.5b-q4_k_m-greedy-llamacpp.json",
        0.25,
        64,
    );
}
