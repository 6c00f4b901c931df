//! `slm imatrix MODEL -f TEXT`: compute an importance matrix the way llama.cpp's
//! `llama-imatrix` does and write it in its GGUF format, which `slm quantize --imatrix` and
//! `llama-quantize --imatrix` read.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use slm_convert::imatrix::{self as imx, ImatrixData};
use slm_model::imatrix::{compute_imatrix, ImatrixParams, ImatrixStats};

use super::perplexity::EvalModel;

#[derive(Args)]
#[command(
    about = "Compute an importance matrix (llama.cpp's llama-imatrix) for quantizing with --imatrix",
    after_help = "The text is tokenized once (with BOS) and cut into chunks of --ctx-size tokens; each chunk \
runs in a fresh context with BOS first. For every weight matrix of the blocks (and output.weight with \
--process-output) the sum of squares of its input activations is collected per column, with the number of \
rows summed. The output is llama.cpp's GGUF imatrix (<weight>.in_sum2, <weight>.counts, imatrix.datasets, \
imatrix.chunk_count, imatrix.chunk_size).\n\n\
Example:\n  slm imatrix smollm2-135m-f16.gguf -f botchan.txt -o imatrix.gguf --chunks 50"
)]
pub struct ImatrixArgs {
    /// Path to a GGUF file, or a model name (gemma3:270m, hf.co/..., ollama:NAME:TAG), pulled when missing
    pub model: PathBuf,
    /// Calibration text
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Output file
    #[arg(short = 'o', long = "output", default_value = "imatrix.gguf")]
    pub output: PathBuf,
    /// Tokens per chunk
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub ctx_size: usize,
    /// Chunks to process (default: all whole chunks)
    #[arg(long = "chunks")]
    pub chunks: Option<usize>,
    /// Skip this many chunks at the start of the text
    #[arg(long = "chunk", visible_alias = "from-chunk", default_value_t = 0)]
    pub from_chunk: usize,
    /// Write the imatrix every N chunks
    #[arg(long = "output-frequency", default_value_t = 10)]
    pub output_frequency: usize,
    /// Also keep a copy every N chunks as OUTPUT.at_N (0: never)
    #[arg(long = "save-frequency", default_value_t = 0)]
    pub save_frequency: usize,
    /// Collect data for output.weight too
    #[arg(long = "process-output")]
    pub process_output: bool,
    /// Do not compute the perplexity along the way
    #[arg(long = "no-ppl")]
    pub no_ppl: bool,
    /// Number of threads (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
}

/// The statistics in llama.cpp's file layout.
pub fn to_file_data(stats: &ImatrixStats, dataset: &str, chunk_size: usize) -> ImatrixData {
    ImatrixData {
        entries: stats
            .entries
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    imx::Entry {
                        sums: s.sums.clone(),
                        counts: vec![s.count],
                    },
                )
            })
            .collect(),
        datasets: vec![dataset.to_string()],
        chunk_count: stats.chunk_count(chunk_size),
        chunk_size: u32::try_from(chunk_size).unwrap_or(u32::MAX),
        is_legacy: false,
        has_metadata: true,
    }
}

fn save(path: &Path, stats: &ImatrixStats, dataset: &str, chunk_size: usize) -> Result<()> {
    imx::write(path, &to_file_data(stats, dataset, chunk_size))
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: &ImatrixArgs) -> Result<()> {
    if args.output_frequency == 0 {
        bail!("--output-frequency must be at least 1");
    }
    let mut em = EvalModel::load(&args.model, args.threads)?;
    let tokens = em.tokenize_file(&args.file, false)?;
    let params = ImatrixParams {
        n_ctx: args.ctx_size,
        n_chunks: args.chunks.unwrap_or(0),
        from_chunk: args.from_chunk,
        process_output: args.process_output,
        compute_ppl: !args.no_ppl,
        bos: em.chunk_bos(),
    };
    let dataset = args.file.display().to_string();
    let n_avail =
        tokens.len().saturating_sub(args.from_chunk * args.ctx_size) / args.ctx_size.max(1);
    let n_total = args.chunks.map_or(n_avail, |c| c.min(n_avail));
    eprintln!(
        "computing over {n_total} chunks of {} tokens on {} threads",
        args.ctx_size, em.threads
    );
    let bar = ProgressBar::new(n_total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} chunks  {elapsed} < {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let mut save_err: Option<anyhow::Error> = None;
    let run = compute_imatrix(&mut em.model, &tokens, &params, |r| {
        let n = r.chunk + 1;
        bar.set_position(n as u64);
        if let Some(p) = r.ppl {
            bar.set_message(format!("PPL {p:.4}"));
        }
        let periodic = n % args.output_frequency == 0;
        let copy = args.save_frequency > 0 && n % args.save_frequency == 0;
        if (periodic || copy) && save_err.is_none() {
            let stats = r.stats.snapshot();
            let mut result = Ok(());
            if periodic {
                result = save(&args.output, &stats, &dataset, args.ctx_size);
            }
            if copy && result.is_ok() {
                let mut name = args.output.clone().into_os_string();
                name.push(format!(".at_{n}"));
                result = save(Path::new(&name), &stats, &dataset, args.ctx_size);
            }
            save_err = result.err();
        }
    });
    bar.finish();
    let run = run?;
    if let Some(e) = save_err {
        return Err(e);
    }
    save(&args.output, &run.stats, &dataset, args.ctx_size)?;
    if let Some((ppl, unc)) = run.ppl {
        println!("Final estimate: PPL = {ppl:.4} +/- {unc:.5}");
    }
    println!(
        "saved {} entries computed on {} chunks to {} ({:.1} s)",
        run.stats.entries.len(),
        run.stats.chunk_count(args.ctx_size),
        args.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
