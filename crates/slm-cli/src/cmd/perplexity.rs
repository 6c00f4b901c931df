//! `slm perplexity MODEL -f TEXT`: llama.cpp's perplexity method (chunks of `-c` tokens, each
//! starting with BOS in a fresh cache, the second half of each chunk scored).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use slm_gguf::GgufFile;
use slm_model::Model;
use slm_tokenizer::Tokenizer;

use super::load::default_threads;

#[derive(Args)]
#[command(
    about = "Measure perplexity on a text file, the way llama.cpp's llama-perplexity does",
    after_help = "The text is tokenized once (with BOS when the model adds one) and cut into chunks of \
--ctx-size tokens. Each chunk is evaluated in a fresh context with its first token replaced by BOS, and \
only the second half of each chunk is scored, so every scored token sees at least ctx/2 tokens of context. \
Prints the running perplexity after each chunk as [chunk]value, then the final estimate.\n\n\
Example:\n  slm perplexity gemma-3-270m-q4_k_m.gguf -f botchan.txt -c 512 --chunks 20"
)]
pub struct PerplexityArgs {
    /// Path to a GGUF file, or a model name (gemma3:270m, hf.co/..., ollama:NAME:TAG), pulled when missing
    pub model: PathBuf,
    /// Text file to score
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Tokens per chunk
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub ctx_size: usize,
    /// Chunks to score (default: all whole chunks)
    #[arg(long = "chunks")]
    pub chunks: Option<usize>,
    /// Number of threads (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let model_path = super::pull::resolve_model_arg(&args.model)?;
    let file = std::sync::Arc::new(
        GgufFile::open(&model_path)
            .with_context(|| format!("{} is not a readable GGUF model", args.model.display()))?,
    );
    let tokenizer = Tokenizer::from_gguf(file.header())?;
    let mut model = Model::from_file(file.clone())?;
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    model.set_threads(threads);
    let t0 = Instant::now();
    let tokens = tokenizer.encode(&text, true, false)?;
    let t_tok = t0.elapsed();
    let n_chunks_avail = tokens.len() / args.ctx_size.max(1);
    let n_chunks = args.chunks.unwrap_or(n_chunks_avail).min(n_chunks_avail);
    if !args.json {
        eprintln!(
            "tokenized {} bytes into {} tokens in {:.0} ms; scoring {n_chunks} chunks of {} tokens on {threads} threads",
            text.len(),
            tokens.len(),
            t_tok.as_secs_f64() * 1e3,
            args.ctx_size,
        );
    }
    let t1 = Instant::now();
    let json = args.json;
    let result = slm_model::eval::perplexity(
        &mut model,
        &tokens,
        args.ctx_size,
        n_chunks,
        // llama-perplexity puts BOS first in each chunk only for models that add one.
        if tokenizer.add_bos() {
            tokenizer.bos()
        } else {
            None
        },
        |i, ppl| {
            if !json {
                eprint!("[{}]{ppl:.4},", i + 1);
            }
        },
    )?;
    let secs = t1.elapsed().as_secs_f64();
    if json {
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "file": args.file.display().to_string(),
            "ctx_size": args.ctx_size,
            "chunks": n_chunks,
            "tokens_scored": result.n_scored,
            "ppl": result.ppl,
            "ppl_uncertainty": result.ppl_uncertainty,
            "per_chunk": result.per_chunk,
            "seconds": secs,
            "tokens_per_second": (n_chunks * args.ctx_size) as f64 / secs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        eprintln!();
        println!(
            "Final estimate: PPL = {:.4} +/- {:.5} over {} scored tokens ({:.1} s, {:.1} tokens/s)",
            result.ppl,
            result.ppl_uncertainty,
            result.n_scored,
            secs,
            (n_chunks * args.ctx_size) as f64 / secs
        );
    }
    Ok(())
}
