//! Perplexity of Gemma 3 270M Q4_K_M on botchan.txt with llama-perplexity's method
//! (`-c 512 --chunks 20 -b 512`): llama.cpp gives 21.9579; we must be within 0.5%.

mod common;

use slm_tokenizer::Tokenizer;

const LLAMA_CPP_PPL: f64 = 21.9579;

/// 20 chunks of 512 tokens: about 1.5 minutes on 2 cores (115 tokens/s measured on a busy
/// machine with `slm perplexity`), so it runs in CI.
#[test]
fn perplexity_botchan_matches_llama_cpp() {
    let mut model = common::gemma();
    let text = std::fs::read_to_string(common::material("botchan.txt")).expect("read botchan");
    let tok = Tokenizer::from_gguf(model.file()).expect("tokenizer");
    // llama-perplexity: common_tokenize(ctx, text, add_special = true), parse_special = false.
    let tokens = tok.encode(&text, true, false).expect("tokenize");
    let bos = if tok.add_bos() { tok.bos() } else { None };
    let t0 = std::time::Instant::now();
    let r = slm_model::eval::perplexity(&mut model, &tokens, 512, 20, bos, |i, p| {
        eprintln!("[{}] {p:.4}", i + 1);
    })
    .expect("perplexity");
    let rel = (r.ppl - LLAMA_CPP_PPL).abs() / LLAMA_CPP_PPL;
    eprintln!(
        "perplexity {:.4} over {} tokens ({} text tokens), llama.cpp {LLAMA_CPP_PPL}, off by {:.3}%, {:.1}s",
        r.ppl,
        r.n_scored,
        tokens.len(),
        rel * 100.0,
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(r.n_scored, 20 * 255);
    assert!(
        rel < 0.005,
        "perplexity {} is not within 0.5% of {LLAMA_CPP_PPL}",
        r.ppl
    );
}
