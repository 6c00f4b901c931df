//! `slm perplexity MODEL -f TEXT`: llama.cpp's perplexity method (chunks of `-c` tokens, each
//! starting with BOS in a fresh cache, the second half of each chunk scored), and its
//! KL-divergence mode: `--save-logits FILE` (llama.cpp's `--kl-divergence-base`) stores the
//! base model's log-probabilities, `--kl-divergence FILE` compares another model with them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use slm_gguf::GgufFile;
use slm_model::eval::{self, ChunkParams, Estimate, KlDivergence, KldParams};
use slm_model::Model;
use slm_tokenizer::Tokenizer;

use super::load::default_threads;

#[derive(Args)]
#[command(
    about = "Measure perplexity on a text file, or the KL divergence from a base model, the way llama.cpp's llama-perplexity does",
    after_help = "The text is tokenized once (with BOS when the model adds one) and cut into chunks of \
--ctx-size tokens. Each chunk is evaluated in a fresh context with its first token replaced by BOS, and \
only the second half of each chunk is scored, so every scored token sees at least ctx/2 tokens of context. \
Prints the running perplexity after each chunk as [chunk]value, then the final estimate.\n\n\
KL divergence: run the base (e.g. F16/F32) model once with --save-logits FILE, then each variant with \
--kl-divergence FILE (the tokens and context size come from FILE, so -f is not needed). The file is \
llama.cpp's --kl-divergence-base format: llama-perplexity reads slm's files and slm reads llama.cpp's. \
It is large: about ctx/2 * n_vocab * 2 bytes per chunk.\n\n\
Examples:\n  slm perplexity gemma-3-270m-q4_k_m.gguf -f botchan.txt -c 512 --chunks 20\n  \
slm perplexity model-f32.gguf -f botchan.txt --chunks 20 --save-logits base.kld\n  \
slm perplexity model-q4_0.gguf --kl-divergence base.kld"
)]
pub struct PerplexityArgs {
    /// Path to a GGUF file, or a model name (gemma3:270m, hf.co/..., ollama:NAME:TAG), pulled when missing
    pub model: PathBuf,
    /// Text file to score (not needed with --kl-divergence)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Tokens per chunk
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub ctx_size: usize,
    /// Chunks to score (default: all whole chunks)
    #[arg(long = "chunks")]
    pub chunks: Option<usize>,
    /// Tokens per forward pass: below ctx-size a chunk runs in several passes; a multiple of it runs that many chunks together (default: ctx-size)
    #[arg(short = 'b', long = "batch-size")]
    pub batch_size: Option<usize>,
    /// Save the base log-probabilities of every scored token to FILE (llama.cpp's --kl-divergence-base)
    #[arg(
        long = "save-logits",
        visible_alias = "kl-divergence-base",
        value_name = "FILE"
    )]
    pub save_logits: Option<PathBuf>,
    /// Compare with the base log-probabilities in FILE (default: the --kl-divergence-base file)
    #[arg(long = "kl-divergence", value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub kl_divergence: Option<PathBuf>,
    /// Number of threads (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

/// A loaded model with its tokenizer, for the evaluation commands (`perplexity`, `imatrix`).
pub struct EvalModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub threads: usize,
}

impl EvalModel {
    pub fn load(model_arg: &Path, threads: Option<usize>) -> Result<EvalModel> {
        let model_path = super::pull::resolve_model_arg(model_arg)?;
        let file =
            std::sync::Arc::new(GgufFile::open(&model_path).with_context(|| {
                format!("{} is not a readable GGUF model", model_arg.display())
            })?);
        let tokenizer = Tokenizer::from_gguf(file.header())?;
        let mut model = Model::from_file(file)?;
        let threads = threads.unwrap_or_else(default_threads).max(1);
        model.set_threads(threads);
        Ok(EvalModel {
            model,
            tokenizer,
            threads,
        })
    }

    /// The token llama.cpp puts first in every chunk: BOS, for models that add one.
    pub fn chunk_bos(&self) -> Option<u32> {
        if self.tokenizer.add_bos() {
            self.tokenizer.bos()
        } else {
            None
        }
    }

    /// Read and tokenize a text file (with BOS when the model adds one).
    pub fn tokenize_file(&self, path: &Path, quiet: bool) -> Result<Vec<u32>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let t0 = Instant::now();
        let tokens = self.tokenizer.encode(&text, true, false)?;
        if !quiet {
            eprintln!(
                "tokenized {} bytes into {} tokens in {:.0} ms",
                text.len(),
                tokens.len(),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        Ok(tokens)
    }
}

pub fn run(args: &PerplexityArgs) -> Result<()> {
    let mut em = EvalModel::load(&args.model, args.threads)?;
    if let Some(kld) = &args.kl_divergence {
        let base = if kld.as_os_str().is_empty() {
            args.save_logits
                .clone()
                .context("--kl-divergence needs a file (or --kl-divergence-base FILE)")?
        } else {
            kld.clone()
        };
        return run_kld(args, &mut em, &base);
    }
    let Some(text) = &args.file else {
        bail!("a text file is needed: -f TEXT");
    };
    let tokens = em.tokenize_file(text, args.json)?;
    let params = ChunkParams {
        n_ctx: args.ctx_size,
        n_chunks: args.chunks.unwrap_or(0),
        n_batch: args.batch_size.unwrap_or(0),
        bos: em.chunk_bos(),
    };
    let n_chunks = params.chunks_for(tokens.len());
    if !args.json {
        eprintln!(
            "scoring {n_chunks} chunks of {} tokens on {} threads",
            args.ctx_size, em.threads
        );
    }
    let t1 = Instant::now();
    let json = args.json;
    let on_chunk = |i: usize, ppl: f64| {
        if !json {
            eprint!("[{}]{ppl:.4},", i + 1);
        }
    };
    let result = match &args.save_logits {
        Some(path) => {
            if !json {
                eprintln!("saving the log-probabilities to {}", path.display());
            }
            eval::save_logits(&mut em.model, &tokens, &params, path, on_chunk)?
        }
        None => eval::perplexity_with(&mut em.model, &tokens, &params, on_chunk)?,
    };
    let secs = t1.elapsed().as_secs_f64();
    if json {
        let v = json!({
            "model": args.model.display().to_string(),
            "file": text.display().to_string(),
            "ctx_size": args.ctx_size,
            "chunks": n_chunks,
            "tokens_scored": result.n_scored,
            "ppl": result.ppl,
            "ppl_uncertainty": result.ppl_uncertainty,
            "per_chunk": result.per_chunk,
            "seconds": secs,
            "tokens_per_second": (n_chunks * args.ctx_size) as f64 / secs,
            "saved_logits": args.save_logits.as_ref().map(|p| p.display().to_string()),
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

fn pm(e: Estimate, scale: f64) -> String {
    format!("{:10.6} ± {:10.6}", e.value * scale, e.uncertainty * scale)
}

fn run_kld(args: &PerplexityArgs, em: &mut EvalModel, base: &Path) -> Result<()> {
    let params = KldParams {
        n_batch: args.batch_size.unwrap_or(0),
        bos: em.chunk_bos(),
        n_chunks: args.chunks.unwrap_or(0),
    };
    let json = args.json;
    if !json {
        eprintln!(
            "KL divergence against {} on {} threads",
            base.display(),
            em.threads
        );
        eprintln!(
            "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p"
        );
    }
    let t0 = Instant::now();
    let k = eval::kl_divergence(&mut em.model, base, &params, |i, k| {
        if !json {
            let (p, r, d) = (k.ppl(), k.ln_ppl_ratio(), k.kld());
            let (rms, top) = (k.p_diff_rms(), k.same_top());
            eprintln!(
                "{:4}    {:9.4} ± {:9.4}    {:10.5} ± {:10.5}    {:10.5} ± {:10.5}    {:6.3} ± {:6.3} %    {:6.3} ± {:6.3} %",
                i + 1,
                p.value,
                p.uncertainty,
                r.value,
                r.uncertainty,
                d.value,
                d.uncertainty,
                100.0 * rms.value,
                100.0 * rms.uncertainty,
                100.0 * top.value,
                100.0 * top.uncertainty
            );
        }
    })
    .with_context(|| format!("KL divergence against {}", base.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&kld_json(args, base, &k, secs))?
        );
    } else {
        print_kld(&k);
    }
    Ok(())
}

const KLD_LEVELS: [(&str, f32); 9] = [
    ("99.9%", 0.999),
    ("99.0%", 0.990),
    ("95.0%", 0.950),
    ("90.0%", 0.900),
    ("10.0%", 0.100),
    (" 5.0%", 0.050),
    (" 1.0%", 0.010),
    (" 0.1%", 0.001),
    ("Minimum", 0.0),
];

fn print_kld(k: &KlDivergence) {
    if k.count() < 100 {
        println!("only {} scored tokens: too few for statistics", k.count());
        return;
    }
    println!("\n====== Perplexity statistics ======");
    println!("Mean PPL(Q)                   : {}", pm(k.ppl(), 1.0));
    println!("Mean PPL(base)                : {}", pm(k.ppl_base(), 1.0));
    println!(
        "Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%",
        100.0 * k.ppl_correlation()
    );
    println!(
        "Mean ln(PPL(Q)/PPL(base))     : {}",
        pm(k.ln_ppl_ratio(), 1.0)
    );
    println!("Mean PPL(Q)/PPL(base)         : {}", pm(k.ppl_ratio(), 1.0));
    println!("Mean PPL(Q)-PPL(base)         : {}", pm(k.ppl_diff(), 1.0));
    println!("\n====== KL divergence statistics ======");
    println!("Mean    KLD: {}", pm(k.kld(), 1.0));
    println!("Maximum KLD: {:10.6}", k.kld_percentile(1.0));
    for (name, f) in &KLD_LEVELS[..4] {
        println!("{name:<7} KLD: {:10.6}", k.kld_percentile(*f));
    }
    println!("Median  KLD: {:10.6}", k.kld_median());
    for (name, f) in &KLD_LEVELS[4..] {
        println!("{name:<7} KLD: {:10.6}", k.kld_percentile(*f));
    }
    println!("\n====== Token probability statistics ======");
    let pd = k.p_diff();
    println!(
        "Mean    Δp: {:6.3} ± {:5.3} %",
        100.0 * pd.value,
        100.0 * pd.uncertainty
    );
    println!("Maximum Δp: {:6.3}%", 100.0 * k.p_diff_percentile(1.0));
    for (name, f) in [
        ("99.9%", 0.999),
        ("99.0%", 0.990),
        ("95.0%", 0.950),
        ("90.0%", 0.900),
        ("75.0%", 0.750),
    ] {
        println!("{name:<7} Δp: {:6.3}%", 100.0 * k.p_diff_percentile(f));
    }
    println!("Median  Δp: {:6.3}%", 100.0 * k.p_diff_median());
    for (name, f) in [
        ("25.0%", 0.250),
        ("10.0%", 0.100),
        (" 5.0%", 0.050),
        (" 1.0%", 0.010),
        (" 0.1%", 0.001),
        ("Minimum", 0.0),
    ] {
        println!("{name:<7} Δp: {:6.3}%", 100.0 * k.p_diff_percentile(f));
    }
    let rms = k.p_diff_rms();
    println!(
        "RMS Δp    : {:6.3} ± {:5.3} %",
        100.0 * rms.value,
        100.0 * rms.uncertainty
    );
    let top = k.same_top();
    println!(
        "Same top p: {:6.3} ± {:5.3} %",
        100.0 * top.value,
        100.0 * top.uncertainty
    );
}

fn est(e: Estimate) -> serde_json::Value {
    json!({ "value": e.value, "uncertainty": e.uncertainty })
}

fn kld_json(args: &PerplexityArgs, base: &Path, k: &KlDivergence, secs: f64) -> serde_json::Value {
    json!({
        "model": args.model.display().to_string(),
        "base": base.display().to_string(),
        "ctx_size": k.n_ctx,
        "chunks": k.n_chunks,
        "tokens_scored": k.count(),
        "ppl": est(k.ppl()),
        "ppl_base": est(k.ppl_base()),
        "ppl_correlation": k.ppl_correlation(),
        "ln_ppl_ratio": est(k.ln_ppl_ratio()),
        "ppl_ratio": est(k.ppl_ratio()),
        "ppl_diff": est(k.ppl_diff()),
        "kld": est(k.kld()),
        "kld_percentiles": {
            "max": k.kld_percentile(1.0),
            "99.9": k.kld_percentile(0.999),
            "99.0": k.kld_percentile(0.99),
            "95.0": k.kld_percentile(0.95),
            "90.0": k.kld_percentile(0.90),
            "median": k.kld_median(),
            "10.0": k.kld_percentile(0.10),
            "5.0": k.kld_percentile(0.05),
            "1.0": k.kld_percentile(0.01),
            "0.1": k.kld_percentile(0.001),
            "min": k.kld_percentile(0.0),
        },
        "p_diff": est(k.p_diff()),
        "p_diff_rms": est(k.p_diff_rms()),
        "p_diff_max_abs": k.p_diff_max_abs(),
        "same_top": est(k.same_top()),
        "seconds": secs,
    })
}
