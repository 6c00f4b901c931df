//! `slm bench MODEL...`: llama-bench's speed tests (`slm_engine::bench`), printed as its
//! markdown table (row by row), CSV or JSON.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use slm_engine::bench::{self, table, BenchEvent, BenchOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Md,
    Csv,
    Json,
}

#[derive(Args)]
#[command(
    about = "Measure prompt and generation speed the way llama.cpp's llama-bench does",
    after_help = "Tests (as in llama-bench):\n  \
ppN        one prompt of N random tokens, processed in batches of --batch-size\n  \
tgN        N tokens generated one at a time, after no prompt\n  \
ppN+tgM    (--pg N,M) the prompt, then M generated tokens\n\
Each test runs once to warm up, then --repetitions times from an empty cache; t/s is \
(N + M) / seconds, shown as mean ± standard deviation over the repetitions. Lists take commas \
(-p 128,512) or repeated flags; every model x thread count x test is one row.\n\n\
size is the bytes of all tensors (llama-bench's model size), bpw = size x 8 / params, and \
peak RSS the largest resident memory during the row (Linux VmHWM, reset before each row).\n\n\
Run it on a quiet machine: another busy process makes the numbers meaningless.\n\n\
Example:\n  slm bench gemma-3-270m-q4_k_m.gguf -p 512 -n 128 -pg 512,128 -t 1,2 -r 5"
)]
pub struct BenchArgs {
    /// GGUF files or model names (gemma3:270m, hf.co/...), pulled when missing
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    /// Prompt sizes (0 = none)
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_values_t = [512])]
    pub n_prompt: Vec<usize>,
    /// Generation sizes (0 = none)
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_values_t = [128])]
    pub n_gen: Vec<usize>,
    /// Prompt then generation, as PROMPT,GEN (also written -pg); repeat for several
    #[arg(long = "pg", value_parser = parse_pair)]
    pub pg: Vec<(usize, usize)>,
    /// Thread counts (default: all cores)
    #[arg(short = 't', long = "threads", value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Timed repetitions of each test
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub reps: usize,
    /// Largest batch a prompt is processed in
    #[arg(short = 'b', long = "batch-size", default_value_t = 2048)]
    pub batch: usize,
    /// Skip the warm-up run
    #[arg(long = "no-warmup")]
    pub no_warmup: bool,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Format>,
    /// Print JSON (same as -o json)
    #[arg(long, conflicts_with_all = ["csv", "output"])]
    pub json: bool,
    /// Print CSV (same as -o csv)
    #[arg(long, conflicts_with = "output")]
    pub csv: bool,
    /// Print each step to stderr
    #[arg(long)]
    pub progress: bool,
}

fn parse_pair(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected PROMPT,GEN like 512,128, got {s:?}"))?;
    let parse = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|e| format!("{x:?} in {s:?}: {e}"))
    };
    Ok((parse(a)?, parse(b)?))
}

/// llama-bench spells the pair flag `-pg`, which clap cannot take as a short flag: rewrite it
/// to `--pg` for `slm bench` (every other argument list passes through unchanged).
pub fn llama_bench_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).and_then(|a| a.to_str()) != Some("bench") {
        return args;
    }
    args.into_iter()
        .map(|a| {
            if a == "-pg" {
                OsString::from("--pg")
            } else {
                a
            }
        })
        .collect()
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let format = match (args.json, args.csv, args.output) {
        (true, _, _) => Format::Json,
        (_, true, _) => Format::Csv,
        (_, _, Some(f)) => f,
        _ => Format::Md,
    };
    let mut models = Vec::with_capacity(args.models.len());
    for m in &args.models {
        models.push(super::pull::resolve_model_arg(m)?);
    }
    let defaults = BenchOptions::default();
    let opts = BenchOptions {
        n_prompt: args.n_prompt.clone(),
        n_gen: args.n_gen.clone(),
        n_pg: args.pg.clone(),
        threads: if args.threads.is_empty() {
            defaults.threads.clone()
        } else {
            args.threads.clone()
        },
        reps: args.reps,
        n_batch: args.batch,
        warmup: !args.no_warmup,
        ..defaults
    };
    if opts.tests().is_empty() {
        bail!("nothing to run: every -p/-n size is 0 and no --pg was given");
    }
    let names: Vec<String> = models
        .iter()
        .map(|p| bench::short_name(&p.display().to_string()))
        .collect();
    let md = table::MarkdownTable::new(&names, args.batch != BenchOptions::default().n_batch);
    match format {
        Format::Md => println!("{}", md.header()),
        Format::Csv => println!("{}", table::csv_header()),
        Format::Json => {}
    }
    let progress = args.progress;
    let rows = bench::run(&models, &opts, |ev| match ev {
        BenchEvent::Loading(p) if progress => eprintln!("slm bench: loading {}", p.display()),
        BenchEvent::Running {
            index,
            total,
            label,
        } if progress => eprintln!("slm bench: benchmark {}/{total}: {label}", index + 1),
        BenchEvent::Row(r) => match format {
            Format::Md => println!("{}", md.row(r)),
            Format::Csv => println!("{}", table::csv_row(r)),
            Format::Json => {}
        },
        _ => {}
    })?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Md => {
            let scope = rows.first().map(|r| r.peak_rss_scope);
            if scope == Some(bench::memory::PeakScope::Process) {
                println!(
                    "\npeak RSS: since the process started (this system refused the per-row reset)"
                );
            }
        }
        Format::Csv => {}
    }
    Ok(())
}
