//! `slm compare BASE VARIANT... -f TEXT`: size, quality against the base (perplexity, KL
//! divergence, top-1 agreement) and speed of quantized variants (`slm_engine::bench::compare`),
//! as a table, JSON, and an SVG picture drawn with `plotters` (`plot`).

mod plot;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use slm_engine::bench::compare::{self, CompareEvent, CompareOptions};

use super::load::default_threads;

#[derive(Args)]
#[command(
    about = "Compare quantized variants with their base model: size, perplexity, KL divergence, speed",
    after_help = "Quality: the text is cut into chunks of --ctx-size tokens as `slm perplexity` does; on \
each chunk the base runs once and every variant runs on the same tokens. Per variant: perplexity, \
ΔPPL = PPL - PPL(base), mean KL divergence of its next-token distribution from the base's, and \
top-1 = how often its most likely next token is the base's (llama.cpp's --kl-divergence \
statistics, ± one standard error).\n\n\
Speed: ppN (one N-token prompt) and tgM (M tokens generated one at a time) as `slm bench` \
measures them, each model alone; peak RSS is the largest resident memory while loading and \
running it (Linux VmHWM). Run on a quiet machine.\n\n\
Front: the models no other model beats on both file size and KLD (the Pareto front).\n\n\
Example:\n  slm compare smollm2-f32.gguf smollm2-q8_0.gguf smollm2-q4_0.gguf -f botchan.txt \
--chunks 4 -o report.svg"
)]
pub struct CompareArgs {
    /// The reference model (e.g. the F32 or F16 file the variants were quantized from)
    pub base: PathBuf,
    /// Variants of the same model (same vocabulary)
    #[arg(required = true)]
    pub variants: Vec<PathBuf>,
    /// Text file for perplexity and KL divergence
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Tokens per chunk
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub ctx_size: usize,
    /// Chunks to score (default: all whole chunks of the text)
    #[arg(long = "chunks")]
    pub chunks: Option<usize>,
    /// Number of threads (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Prompt tokens of the speed test (0 = skip)
    #[arg(short = 'p', long = "n-prompt", default_value_t = 256)]
    pub n_prompt: usize,
    /// Generated tokens of the speed test (0 = skip)
    #[arg(short = 'n', long = "n-gen", default_value_t = 64)]
    pub n_gen: usize,
    /// Timed repetitions of each speed test
    #[arg(short = 'r', long = "repetitions", default_value_t = 3)]
    pub reps: usize,
    /// Largest batch a prompt is processed in
    #[arg(short = 'b', long = "batch-size", default_value_t = 2048)]
    pub batch: usize,
    /// Write the picture (SVG) here
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print JSON for scripts instead of the table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let base = super::pull::resolve_model_arg(&args.base)?;
    let mut variants = Vec::with_capacity(args.variants.len());
    for v in &args.variants {
        variants.push(super::pull::resolve_model_arg(v)?);
    }
    let opts = CompareOptions {
        n_ctx: args.ctx_size,
        n_chunks: args.chunks.unwrap_or(0),
        threads: args.threads.unwrap_or_else(default_threads).max(1),
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        reps: args.reps,
        n_batch: args.batch,
    };
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let report = compare::run(&base, &variants, &text, &opts, |ev| match ev {
        CompareEvent::Loading(p) => bar.set_message(format!("loading {}", p.display())),
        CompareEvent::Tokenized {
            n_tokens,
            n_chunks,
            total,
        } => {
            bar.set_length(total as u64);
            bar.set_message(format!(
                "{n_chunks} chunks of {} ({n_tokens} tokens) per model",
                opts.n_ctx
            ));
        }
        CompareEvent::Chunk { done, .. } => {
            bar.set_position(done as u64);
            bar.set_message("scoring");
        }
        CompareEvent::Speed { name, test } => bar.set_message(format!("speed {name} {test}")),
    });
    bar.finish_and_clear();
    let report = report?;
    if let Some(out) = &args.output {
        plot::draw(&report, &args.file, out)
            .with_context(|| format!("cannot draw {}", out.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "base {}: {} chunks of {} tokens ({} scored), {} threads, speed over {} repetitions\n",
            report.base,
            report.n_chunks,
            report.n_ctx,
            report.n_scored,
            report.threads,
            report.reps
        );
        print!("{}", compare::markdown(&report));
        if let Some(out) = &args.output {
            println!("\npicture: {}", out.display());
        }
    }
    Ok(())
}
