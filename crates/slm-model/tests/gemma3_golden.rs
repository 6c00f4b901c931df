//! Real-model tests on Gemma 3 270M Q4_K_M against llama.cpp's greedy output
//! (`tests/golden/gemma3-270m-greedy-llamacpp.json`, made by llama.cpp 0c1e57098), and
//! batched == sequential decoding.

mod common;

use serde_json::Value;
use slm_model::{argmax, Batch, Model};

/// log-softmax value of `id` in `logits`.
fn logprob(logits: &[f32], id: u32) -> f64 {
    -slm_model::eval::nll(logits, id)
}

struct Case {
    prompt: String,
    prompt_ids: Vec<u32>,
    /// llama-server's generated ids and top-2 (id, logprob) per step.
    ids: Vec<u32>,
    top2: Vec<[(u32, f64); 2]>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(common::golden_path()).expect("read golden");
    let v: Value = serde_json::from_str(&text).expect("golden json");
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
            ids: ids(&r["llama_server"]["generated_ids"]),
            top2: r["llama_server"]["top2_logprobs_per_step"]
                .as_array()
                .expect("top2")
                .iter()
                .map(|step| {
                    let p = |k: usize| {
                        (
                            step[k][0].as_u64().expect("top id") as u32,
                            step[k][1].as_f64().expect("top logprob"),
                        )
                    };
                    [p(0), p(1)]
                })
                .collect(),
        })
        .collect()
}

/// Greedy decode of one case, checked step by step against llama.cpp: the same pick, or a
/// near-tie (top-2 gap < 0.4 nats in llama.cpp) after which the continuation may diverge.
/// 0.4, not 0.25: at step 5 of "The capital of France is" llama.cpp's top-2 gap is 0.365
/// while ours is near zero; which of the two we pick then depends on the kernels' float
/// summation order (the scalar level picks as llama.cpp does, AVX2/AVX-512 do not). Our logprobs
/// differ from llama.cpp's by up to ~0.17 elsewhere (f32 KV cache here, f16 in llama.cpp).
fn check_case(model: &mut Model, c: &Case) -> (usize, f64) {
    let mut kv = model.new_kv_cache(256);
    let mut logits = model
        .forward(&Batch::sequence(&c.prompt_ids, 0, 0), &mut kv)
        .expect("prefill");
    let mut max_lp_err = 0.0f64;
    for (step, pos) in (c.prompt_ids.len() as u32..).take(c.ids.len()).enumerate() {
        let row = logits.last().expect("logits");
        let ours = argmax(row);
        let [(id0, lp0), (_, lp1)] = c.top2[step];
        assert_eq!(id0, c.ids[step], "golden file is self-consistent");
        if ours != id0 {
            let gap = lp0 - lp1;
            assert!(
                gap < 0.4,
                "{:?} step {step}: we pick {ours}, llama.cpp {id0} with a top-2 gap of {gap:.3} nats",
                c.prompt
            );
            eprintln!(
                "{:?}: near-tie at step {step} (gap {gap:.3}), stop comparing",
                c.prompt
            );
            return (step, max_lp_err);
        }
        let d = logprob(row, id0) - lp0;
        if std::env::var_os("SLM_TEST_VERBOSE").is_some() {
            eprintln!(
                "step {step}: id {id0} logprob ours {:.4} llama.cpp {lp0:.4}",
                logprob(row, id0)
            );
        }
        max_lp_err = max_lp_err.max(d.abs());
        logits = model
            .forward(&Batch::sequence(&[ours], pos, 0), &mut kv)
            .expect("decode");
    }
    (c.ids.len(), max_lp_err)
}

#[test]
fn greedy_matches_llama_cpp() {
    let mut model = common::gemma();
    let mut compared = 0;
    for c in cases() {
        let (matched, err) = check_case(&mut model, &c);
        eprintln!(
            "{:?}: {matched}/{} tokens equal to llama.cpp, max |logprob diff| {err:.4}",
            c.prompt,
            c.ids.len()
        );
        compared += matched;
        assert!(
            err < 0.3,
            "{:?}: chosen-token logprob differs by {err}",
            c.prompt
        );
    }
    // llama.cpp's own near-ties end the comparison early for two prompts: with the scalar
    // kernels at steps 18 and 4 (54 steps in all), with the AVX2/AVX-512 ones (another float
    // summation order) at 5 (llama.cpp's gap 0.365) and 4 (41).
    assert!(
        compared >= 40,
        "only {compared} steps compared before near-ties"
    );
}

#[test]
fn batched_equals_sequential() {
    let mut model = common::gemma();
    let mut prompts: Vec<Vec<u32>> = cases().into_iter().map(|c| c.prompt_ids).collect();
    prompts.push(vec![2, 818, 1346, 563, 496]);
    let n_new = 12;
    // Each prompt alone.
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let mut kv = model.new_kv_cache(128);
            slm_model::eval::greedy(&mut model, &mut kv, 7, p, n_new).expect("greedy")
        })
        .collect();
    // All four in one cache: one prefill batch, then one decode batch per step.
    let mut kv = model.new_kv_cache(128);
    let mut batch = Batch::new();
    for (s, p) in prompts.iter().enumerate() {
        for (i, &t) in p.iter().enumerate() {
            batch.push(t, i as u32, s as u32 + 10, i + 1 == p.len());
        }
    }
    let mut together: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    let mut logits = model.forward(&batch, &mut kv).expect("batched prefill");
    for _ in 0..n_new {
        let mut next = Batch::new();
        for (s, out) in together.iter_mut().enumerate() {
            let t = argmax(logits.row(s).expect("row per sequence"));
            out.push(t);
            let seq = s as u32 + 10;
            next.push(t, kv.seq_len(seq), seq, true);
        }
        logits = model.forward(&next, &mut kv).expect("batched decode");
    }
    assert_eq!(together, alone);
}
