//! The activation hook and the chunk runner on the tiny random-weight models
//! (tests/fixtures/arch, made by llama.cpp's converter):
//! - every weight matmul is observed exactly once per forward, under its GGUF name, with the
//!   activation the tracer names as its input (fused `attn_qkv`/`ffn_up` once, as llama.cpp);
//! - the imatrix collector keeps llama-imatrix's set (blk.* only unless --process-output);
//! - perplexity is the same whatever the batch size (one chunk in several passes, or several
//!   chunks side by side in one batch), as llama-perplexity's `-b`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use slm_model::eval::{self, ChunkParams};
use slm_model::imatrix::{compute_imatrix, ImatrixParams};
use slm_model::{ActivationObserver, Batch, Model, Recorder, Tracer};

fn tiny(arch: &str) -> Model {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/arch/tiny-{arch}.gguf"));
    let mut m = Model::load(&p).expect("tiny model");
    m.set_threads(2);
    m
}

type Seen = Arc<Mutex<Vec<(String, usize, Vec<f32>)>>>;

struct Log(Seen);
impl ActivationObserver for Log {
    fn observe(&mut self, weight: &str, cols: usize, x: &[f32]) {
        self.0
            .lock()
            .unwrap()
            .push((weight.to_string(), cols, x.to_vec()));
    }
}

struct SharedRec(Arc<Mutex<Recorder>>);
impl Tracer for SharedRec {
    fn record(&mut self, name: &str, layer: Option<usize>, row_len: usize, data: &[f32]) {
        self.0.lock().unwrap().record(name, layer, row_len, data);
    }
}

fn observe_one_forward(arch: &str) -> (Vec<(String, usize, Vec<f32>)>, Recorder) {
    let mut m = tiny(arch);
    let seen: Seen = Arc::default();
    let rec = Arc::new(Mutex::new(Recorder::default()));
    m.set_observer(Some(Box::new(Log(seen.clone()))));
    m.set_tracer(Some(Box::new(SharedRec(rec.clone()))));
    let mut kv = m.new_kv_cache(64);
    let mut b = Batch::new();
    for i in 0..20u32 {
        b.push((i * 37 + 5) % 300, i, 0, true);
    }
    m.forward(&b, &mut kv).expect("forward");
    m.set_tracer(None);
    let out = seen.lock().unwrap().clone();
    let r = std::mem::take(&mut *rec.lock().unwrap());
    (out, r)
}

fn check(arch: &str, per_layer: &[(&str, &str)], output: &str) {
    let (seen, rec) = observe_one_forward(arch);
    let mut want: Vec<String> = Vec::new();
    for l in 0..2 {
        for (w, _) in per_layer {
            want.push(format!("blk.{l}.{w}.weight"));
        }
    }
    want.push(output.to_string());
    let mut got: Vec<String> = seen.iter().map(|s| s.0.clone()).collect();
    let mut sorted_want = want.clone();
    got.sort();
    sorted_want.sort();
    assert_eq!(got, sorted_want, "{arch}: each weight matmul observed once");
    for (name, cols, x) in &seen {
        assert_eq!(x.len(), 20 * cols, "{name}: every row of the batch");
    }
    // The observed inputs are the activations the tracer names.
    let by_name: BTreeMap<&str, &Vec<f32>> = seen.iter().map(|s| (s.0.as_str(), &s.2)).collect();
    for l in 0..2 {
        for (w, input) in per_layer {
            let key = Recorder::key(input, Some(l));
            let Some((_, traced)) = rec.entries.get(&key) else {
                continue; // no trace point for this input (the FFN's inner product)
            };
            let x = by_name[format!("blk.{l}.{w}.weight").as_str()];
            assert_eq!(&x[..], &traced[..], "{arch} blk.{l}.{w} input = {key}");
        }
    }
    let (_, norm) = &rec.entries["result_norm"];
    assert_eq!(
        &by_name[output][..],
        &norm[..],
        "{arch} output input = result_norm"
    );
}

#[test]
fn imatrix_hook_sees_every_llama_weight_once() {
    check(
        "llama",
        &[
            ("attn_q", "attn_norm"),
            ("attn_k", "attn_norm"),
            ("attn_v", "attn_norm"),
            ("attn_output", "kqv_out"),
            ("ffn_gate", "ffn_norm"),
            ("ffn_up", "ffn_norm"),
            ("ffn_down", "-"),
        ],
        "token_embd.weight", // tied output
    );
}

#[test]
fn imatrix_hook_sees_fused_phi3_weights_once() {
    check(
        "phi3",
        &[
            ("attn_qkv", "attn_norm"),
            ("attn_output", "kqv_out"),
            ("ffn_up", "ffn_norm"),
            ("ffn_down", "-"),
        ],
        "output.weight",
    );
}

#[test]
fn imatrix_collects_llama_imatrix_set_and_counts() {
    let mut m = tiny("phi3");
    let tokens: Vec<u32> = (0..200u32).map(|i| (i * 53 + 11) % 320).collect();
    let mut params = ImatrixParams {
        n_ctx: 64,
        n_chunks: 3,
        from_chunk: 0,
        process_output: false,
        compute_ppl: true,
        bos: Some(1),
    };
    let mut chunks_seen = 0;
    let run = compute_imatrix(&mut m, &tokens, &params, |r| {
        chunks_seen = r.chunk + 1;
        assert!(r.ppl.is_some());
    })
    .expect("imatrix");
    assert_eq!(chunks_seen, 3);
    assert_eq!(
        run.stats.entries.len(),
        8,
        "4 weights x 2 layers, no output"
    );
    for (name, e) in &run.stats.entries {
        assert!(name.starts_with("blk."), "{name}");
        assert_eq!(e.count, 3 * 64, "{name}: every token of every chunk");
    }
    assert_eq!(run.stats.entries["blk.1.ffn_down.weight"].sums.len(), 96);
    assert_eq!(run.stats.chunk_count(64), 3);
    assert!(run.ppl.is_some());
    params.process_output = true;
    let run = compute_imatrix(&mut m, &tokens, &params, |_| {}).expect("imatrix");
    assert_eq!(run.stats.entries["output.weight"].count, 3 * 64);
    // fewer than 2 chunks of text: refused like llama-imatrix
    assert!(compute_imatrix(&mut m, &tokens[..100], &params, |_| {}).is_err());
}

#[test]
fn perplexity_is_the_same_for_every_batch_size() {
    let mut m = tiny("llama");
    let tokens: Vec<u32> = (0..400u32).map(|i| (i * 97 + 3) % 320).collect();
    let run = |m: &mut Model, n_batch: usize| {
        let p = ChunkParams {
            n_ctx: 64,
            n_chunks: 5,
            n_batch,
            bos: Some(1),
        };
        eval::perplexity_with(m, &tokens, &p, |_, _| {}).expect("ppl")
    };
    let base = run(&mut m, 0);
    assert_eq!(base.n_scored, 5 * 31);
    let old = eval::perplexity(&mut m, &tokens, 64, 5, Some(1), |_, _| {}).expect("ppl");
    assert_eq!(old.ppl, base.ppl);
    for n_batch in [16, 48, 128, 192] {
        let r = run(&mut m, n_batch);
        assert!(
            (r.ppl / base.ppl - 1.0).abs() < 1e-4,
            "-b {n_batch}: {} vs {}",
            r.ppl,
            base.ppl
        );
        assert_eq!(r.per_chunk.len(), 5);
    }
    // neither below nor a multiple of the context: refused like llama.cpp's assert
    let p = ChunkParams {
        n_ctx: 64,
        n_chunks: 5,
        n_batch: 100,
        bos: None,
    };
    assert!(eval::perplexity_with(&mut m, &tokens, &p, |_, _| {}).is_err());
}
