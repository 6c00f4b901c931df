//! Perplexity from pre-tokenized ids (whitespace-separated in a file), llama-perplexity style:
//! `cargo run --release -p slm-model --example perplexity_ids -- MODEL.gguf IDS.txt [n_ctx] [chunks] [threads]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model, ids) = (args.get(1).ok_or("model")?, args.get(2).ok_or("ids")?);
    let n_ctx: usize = args.get(3).map_or(Ok(512), |s| s.parse())?;
    let chunks: usize = args.get(4).map_or(Ok(20), |s| s.parse())?;
    let threads: usize = args.get(5).map_or(Ok(2), |s| s.parse())?;
    let tokens: Vec<u32> = std::fs::read_to_string(ids)?
        .split_whitespace()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let mut m = slm_model::Model::load(std::path::Path::new(model))?;
    m.set_threads(threads);
    let t0 = std::time::Instant::now();
    let r = slm_model::eval::perplexity(&mut m, &tokens, n_ctx, chunks, Some(2), |i, p| {
        eprintln!("[{}]{p:.4} ({:.1}s)", i + 1, t0.elapsed().as_secs_f64());
    })?;
    println!("ppl {:.4} over {} scored tokens", r.ppl, r.n_scored);
    Ok(())
}
