//! The importance matrix of the real SmolLM2-135M (F32, rebuilt in memory from the Q4_1 file)
//! on botchan.txt against llama.cpp's `llama-imatrix` on the same F32 model, text and settings
//! (fixture made by `tools/golden/imatrix_ref.py --f32`). With F32 weights neither engine
//! quantizes activations, so the sums of squares agree closely: measured max relative
//! difference 1.9e-3 over all 149,760 columns (4 chunks), totals within 1.6e-4.
//! About 20 s of F32 forward in CI (2 chunks of 512).

mod common;

use std::sync::Arc;

use slm_model::imatrix::{compute_imatrix, ImatrixParams};
use slm_model::Model;
use slm_tokenizer::Tokenizer;

/// Relative tolerance on every sampled column (relative to max(|reference|, 1% of the
/// tensor's mean column)) and on every tensor's total.
const TOL_COL: f64 = 1e-2;
const TOL_SUM: f64 = 2e-3;

#[test]
fn imatrix_smollm2_f32_real_matches_llama_cpp() {
    let fx = common::json_fixture("imatrix/smollm2_f32_botchan.json");
    let chunks = fx["chunks"].as_u64().unwrap() as usize;
    let file = Arc::new(common::smollm2_f32());
    let tok = Tokenizer::from_gguf(file.header()).expect("tokenizer");
    let text = std::fs::read_to_string(common::material("botchan.txt")).expect("botchan");
    let tokens = tok.encode(&text, true, false).expect("encode");
    let mut m = Model::from_file(file).expect("model");
    m.set_threads(2);
    let params = ImatrixParams {
        n_ctx: 512,
        n_chunks: chunks,
        from_chunk: 0,
        process_output: true, // tied output: token_embd is never collected, as in llama.cpp
        compute_ppl: true,
        bos: if tok.add_bos() { tok.bos() } else { None },
    };
    let run = compute_imatrix(&mut m, &tokens, &params, |_| {}).expect("imatrix");
    let (ppl, _) = run.ppl.expect("ppl");
    let ref_ppl = fx["ppl"].as_f64().unwrap();
    assert!((ppl / ref_ppl - 1.0).abs() < 1e-3, "ppl {ppl} vs {ref_ppl}");
    assert_eq!(
        u64::from(run.stats.chunk_count(512)),
        fx["chunk_count"].as_u64().unwrap()
    );
    let tensors = fx["tensors"].as_object().unwrap();
    let ours: Vec<&String> = run.stats.entries.keys().collect();
    assert_eq!(ours, tensors.keys().collect::<Vec<_>>(), "same weights");
    let (mut worst_sum, mut worst_col) = (0f64, 0f64);
    for (name, r) in tensors {
        let e = &run.stats.entries[name];
        assert_eq!(e.count, r["count"].as_i64().unwrap(), "{name}");
        let sum: f64 = e.sums.iter().map(|&v| f64::from(v)).sum();
        let ref_sum = r["sum"].as_f64().unwrap();
        worst_sum = worst_sum.max((sum / ref_sum - 1.0).abs());
        let floor = 0.01 * ref_sum / e.sums.len() as f64;
        for (col, v) in r["columns"].as_object().unwrap() {
            let c: usize = col.parse().unwrap();
            let want = v.as_f64().unwrap();
            let rel = (f64::from(e.sums[c]) - want).abs() / want.abs().max(floor);
            worst_col = worst_col.max(rel);
            assert!(
                rel < TOL_COL,
                "{name}[{c}]: {} vs llama.cpp {want}",
                e.sums[c]
            );
        }
    }
    eprintln!(
        "max rel diff vs llama-imatrix (F32): totals {worst_sum:.2e}, columns {worst_col:.2e}"
    );
    assert!(worst_sum < TOL_SUM, "totals differ by {worst_sum:.2e}");
}
