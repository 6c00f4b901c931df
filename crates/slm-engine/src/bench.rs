//! Speed benchmarks with llama-bench's measures and semantics, and the size/quality/speed
//! comparison of quantized variants built on them.
//!
//! One benchmark row is one (model, threads, test) instance, as in llama.cpp's
//! `tools/llama-bench/llama-bench.cpp`:
//! - `ppN`: one prompt of N random token ids (BOS first when the model adds one), processed in
//!   batches of at most `n_batch` tokens, logits for the last token of each batch only;
//! - `tgN`: N tokens generated one at a time after no prompt (BOS, then random ids);
//! - `ppN+tgM`: the prompt, then M single-token steps continuing it.
//!
//! Before the repetitions one warm-up runs (the whole prompt, and/or one generated token);
//! every repetition starts from an empty cache; tokens/s = (N + M) / time of a repetition,
//! reported as mean ± sample standard deviation over the repetitions. The peak resident memory
//! of each row comes from [`memory`]. Rows print as llama-bench's markdown table, CSV or JSON
//! with llama-bench's field names plus ours (`file_bytes`, `bits_per_weight`, `peak_rss_bytes`).
//!
//! - [`memory`]: peak/current RSS from `/proc/self/status`.
//! - [`compare`]: the comparison report (quality + speed + size per variant, Pareto front).
//! - [`table`]: the markdown table and CSV of benchmark rows.

pub mod compare;
pub mod memory;
pub mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use slm_gguf::GgufFile;
use slm_model::{Batch, KvCache, Model};
use slm_tokenizer::Tokenizer;

use crate::info::summarize;
use memory::PeakScope;

/// Why a benchmark or comparison failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path} is not a readable GGUF model: {source}")]
    Gguf {
        path: String,
        #[source]
        source: slm_gguf::GgufError,
    },
    #[error("{path}: cannot build the tokenizer: {source}")]
    Tokenizer {
        path: String,
        #[source]
        source: slm_tokenizer::TokenizerError,
    },
    #[error("{path}: {source}")]
    Model {
        path: String,
        #[source]
        source: slm_model::ModelError,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, BenchError>;

/// llama-bench's defaults: `-p 512 -n 128 -r 5 -b 2048`, warm-up on.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub n_prompt: Vec<usize>,
    pub n_gen: Vec<usize>,
    /// (prompt, generation) pairs of `-pg`.
    pub n_pg: Vec<(usize, usize)>,
    pub threads: Vec<usize>,
    pub reps: usize,
    pub n_batch: usize,
    pub warmup: bool,
    /// Seed of the random token ids (llama-bench uses `std::rand()` unseeded).
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            n_prompt: vec![512],
            n_gen: vec![128],
            n_pg: Vec::new(),
            threads: vec![std::thread::available_parallelism().map_or(1, |n| n.get())],
            reps: 5,
            n_batch: 2048,
            warmup: true,
            seed: 1,
        }
    }
}

/// One test: `n_prompt` tokens of prompt, then `n_gen` generated one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BenchTest {
    pub n_prompt: usize,
    pub n_gen: usize,
}

impl BenchTest {
    /// llama-bench's name: `pp512`, `tg128`, `pp512+tg128`.
    pub fn name(&self) -> String {
        match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, n) => format!("tg{n}"),
            (p, n) => format!("pp{p}+tg{n}"),
        }
    }
}

impl BenchOptions {
    /// The tests in llama-bench's order: prompts, then generations, then pairs; zero sizes skipped.
    pub fn tests(&self) -> Vec<BenchTest> {
        let pp = self
            .n_prompt
            .iter()
            .filter(|&&p| p > 0)
            .map(|&p| BenchTest {
                n_prompt: p,
                n_gen: 0,
            });
        let tg = self.n_gen.iter().filter(|&&n| n > 0).map(|&n| BenchTest {
            n_prompt: 0,
            n_gen: n,
        });
        let pg = self
            .n_pg
            .iter()
            .filter(|&&(p, n)| p > 0 || n > 0)
            .map(|&(p, n)| BenchTest {
                n_prompt: p,
                n_gen: n,
            });
        pp.chain(tg).chain(pg).collect()
    }

    fn check(&self) -> Result<()> {
        if self.reps == 0 {
            return Err(BenchError::Invalid("repetitions must be at least 1".into()));
        }
        if self.n_batch == 0 {
            return Err(BenchError::Invalid("batch size must be at least 1".into()));
        }
        if self.threads.is_empty() || self.threads.contains(&0) {
            return Err(BenchError::Invalid(
                "thread counts must be at least 1".into(),
            ));
        }
        if self.tests().is_empty() {
            return Err(BenchError::Invalid(
                "nothing to run: every prompt and generation size is 0".into(),
            ));
        }
        Ok(())
    }
}

/// What a model file is, as the benchmark table shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFacts {
    pub model_filename: String,
    /// `{architecture} {parameters} {file type}`, like llama-bench's `model_type`.
    pub model_type: String,
    pub file_type: String,
    /// Bytes of all tensors (llama-bench's `model_size`).
    pub model_size: u64,
    pub file_bytes: u64,
    pub model_n_params: u64,
    pub bits_per_weight: f64,
}

impl ModelFacts {
    pub fn of(path: &Path, file: &GgufFile) -> ModelFacts {
        let s = summarize(file.header(), file.file_len());
        let file_type = s.file_type.clone().unwrap_or_else(|| {
            // No general.file_type: name the type holding the most bytes.
            s.types
                .iter()
                .max_by_key(|(_, t)| t.bytes)
                .map_or_else(|| "?".to_string(), |(n, _)| n.clone())
        });
        let params = if s.parameters >= 1_000_000_000 {
            format!("{:.1}B", s.parameters as f64 / 1e9)
        } else {
            format!("{:.0}M", s.parameters as f64 / 1e6)
        };
        ModelFacts {
            model_filename: path.display().to_string(),
            model_type: format!(
                "{} {params} {file_type}",
                s.architecture.as_deref().unwrap_or("?")
            ),
            file_type,
            model_size: s.tensor_bytes,
            file_bytes: s.file_bytes,
            model_n_params: s.parameters,
            bits_per_weight: s.bits_per_weight,
        }
    }

    /// The file name without directories, for tables.
    pub fn short_name(&self) -> String {
        short_name(&self.model_filename)
    }
}

/// `dir/name.gguf` -> `name`.
pub fn short_name(path: &str) -> String {
    let p = Path::new(path);
    let name = p
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".gguf").unwrap_or(&name).to_string()
}

/// One benchmark result, with llama-bench's JSON field names where it has them.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    #[serde(flatten)]
    pub model: ModelFacts,
    pub backend: &'static str,
    pub n_batch: usize,
    pub n_threads: usize,
    pub test: String,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
    /// Peak resident memory during the row (see `peak_rss_scope`).
    pub peak_rss_bytes: Option<u64>,
    pub peak_rss_scope: PeakScope,
}

/// Mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Sample standard deviation as llama-bench computes it (0 for fewer than 2 values).
pub fn stdev(v: &[f64]) -> f64 {
    if v.len() <= 1 {
        return 0.0;
    }
    let n = v.len() as f64;
    let m = mean(v);
    let sq: f64 = v.iter().map(|x| x * x).sum();
    (sq / (n - 1.0) - m * m * n / (n - 1.0)).max(0.0).sqrt()
}

/// Deterministic token ids (splitmix64), standing in for llama-bench's `std::rand() % n_vocab`.
#[derive(Clone, Debug)]
pub struct TokenRng(u64);

impl TokenRng {
    pub fn new(seed: u64) -> TokenRng {
        TokenRng(seed)
    }

    pub fn next_token(&mut self, n_vocab: usize) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        u32::try_from(z % (n_vocab.max(1) as u64)).unwrap_or(0)
    }
}

/// A model loaded for benchmarking.
pub struct BenchModel {
    pub facts: ModelFacts,
    model: Model,
    /// BOS when the model adds one (llama-bench starts prompts and generations with it).
    bos: Option<u32>,
    n_vocab: usize,
}

impl BenchModel {
    pub fn load(path: &Path) -> Result<BenchModel> {
        let file = Arc::new(GgufFile::open(path).map_err(|source| BenchError::Gguf {
            path: path.display().to_string(),
            source,
        })?);
        let facts = ModelFacts::of(path, &file);
        let tokenizer =
            Tokenizer::from_gguf(file.header()).map_err(|source| BenchError::Tokenizer {
                path: path.display().to_string(),
                source,
            })?;
        let model = Model::from_file(file).map_err(|source| BenchError::Model {
            path: path.display().to_string(),
            source,
        })?;
        let n_vocab = model.hparams().n_vocab;
        let bos = if tokenizer.add_bos() {
            tokenizer.bos()
        } else {
            None
        };
        Ok(BenchModel {
            facts,
            model,
            bos,
            n_vocab,
        })
    }

    /// The model, for other measurements on the same loaded weights.
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    fn model_err(&self, source: slm_model::ModelError) -> BenchError {
        BenchError::Model {
            path: self.facts.model_filename.clone(),
            source,
        }
    }

    /// llama-bench's `test_prompt`: `n_prompt` tokens in batches of `n_batch`.
    fn prompt(
        &mut self,
        kv: &mut KvCache,
        n_prompt: usize,
        n_batch: usize,
        rng: &mut TokenRng,
    ) -> Result<()> {
        let mut done = 0usize;
        let mut tokens = Vec::with_capacity(n_batch.min(n_prompt));
        while done < n_prompt {
            let n = (n_prompt - done).min(n_batch);
            tokens.clear();
            for i in 0..n {
                let t = match self.bos {
                    Some(bos) if done == 0 && i == 0 => bos,
                    _ => rng.next_token(self.n_vocab),
                };
                tokens.push(t);
            }
            let pos = kv.seq_len(0);
            let batch = Batch::sequence(&tokens, pos, 0);
            self.model
                .forward(&batch, kv)
                .map_err(|e| self.model_err(e))?;
            done += n;
        }
        Ok(())
    }

    /// llama-bench's `test_gen`: `n_gen` single-token steps after what the cache holds.
    fn generate(&mut self, kv: &mut KvCache, n_gen: usize, rng: &mut TokenRng) -> Result<()> {
        let mut token = match self.bos {
            Some(bos) => bos,
            None => rng.next_token(self.n_vocab),
        };
        let mut batch = Batch::new();
        for _ in 0..n_gen {
            batch.clear();
            batch.push(token, kv.seq_len(0), 0, true);
            self.model
                .forward(&batch, kv)
                .map_err(|e| self.model_err(e))?;
            token = rng.next_token(self.n_vocab);
        }
        Ok(())
    }

    /// Run one test: warm-up (unless disabled), then `reps` timed repetitions from an empty
    /// cache. The peak memory is left to the caller (see [`run`]).
    pub fn run_test(
        &mut self,
        test: BenchTest,
        threads: usize,
        n_batch: usize,
        reps: usize,
        warmup: bool,
        rng: &mut TokenRng,
    ) -> Result<BenchRow> {
        self.model.set_threads(threads);
        let n_ctx = u32::try_from(test.n_prompt + test.n_gen + 1)
            .map_err(|_| BenchError::Invalid(format!("{} is too long", test.name())))?;
        let mut kv = self.model.new_kv_cache(n_ctx);
        if warmup {
            if test.n_prompt > 0 {
                self.prompt(&mut kv, test.n_prompt, n_batch, rng)?;
            }
            if test.n_gen > 0 {
                self.generate(&mut kv, 1, rng)?;
            }
        }
        let mut samples_ns = Vec::with_capacity(reps);
        for _ in 0..reps {
            kv.clear();
            let t0 = Instant::now();
            if test.n_prompt > 0 {
                self.prompt(&mut kv, test.n_prompt, n_batch, rng)?;
            }
            if test.n_gen > 0 {
                self.generate(&mut kv, test.n_gen, rng)?;
            }
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            samples_ns.push(ns.max(1));
        }
        let n_tokens = (test.n_prompt + test.n_gen) as f64;
        let samples_ts: Vec<f64> = samples_ns
            .iter()
            .map(|&ns| 1e9 * n_tokens / ns as f64)
            .collect();
        let ns_f: Vec<f64> = samples_ns.iter().map(|&n| n as f64).collect();
        Ok(BenchRow {
            model: self.facts.clone(),
            backend: "CPU",
            n_batch,
            n_threads: threads,
            test: test.name(),
            n_prompt: test.n_prompt,
            n_gen: test.n_gen,
            avg_ns: mean(&ns_f).round() as u64,
            stddev_ns: stdev(&ns_f).round() as u64,
            avg_ts: mean(&samples_ts),
            stddev_ts: stdev(&samples_ts),
            samples_ns,
            samples_ts,
            peak_rss_bytes: None,
            peak_rss_scope: PeakScope::Unavailable,
        })
    }
}

/// Progress of [`run`].
pub enum BenchEvent<'a> {
    Loading(&'a Path),
    /// Test `index` (0-based) of `total` is starting.
    Running {
        index: usize,
        total: usize,
        label: String,
    },
    Row(&'a BenchRow),
}

/// Benchmark every model (loaded one at a time) over every thread count and test.
pub fn run(
    models: &[PathBuf],
    opts: &BenchOptions,
    mut on_event: impl FnMut(BenchEvent<'_>),
) -> Result<Vec<BenchRow>> {
    opts.check()?;
    if models.is_empty() {
        return Err(BenchError::Invalid("no model given".into()));
    }
    let tests = opts.tests();
    let total = models.len() * opts.threads.len() * tests.len();
    let mut rng = TokenRng::new(opts.seed);
    let mut rows = Vec::with_capacity(total);
    for path in models {
        on_event(BenchEvent::Loading(path));
        let mut bm = BenchModel::load(path)?;
        for &threads in &opts.threads {
            for &test in &tests {
                on_event(BenchEvent::Running {
                    index: rows.len(),
                    total,
                    label: format!("{} {} t={threads}", bm.facts.short_name(), test.name()),
                });
                let scope = memory::reset_peak();
                let mut row = bm.run_test(
                    test,
                    threads,
                    opts.n_batch,
                    opts.reps,
                    opts.warmup,
                    &mut rng,
                )?;
                row.peak_rss_bytes = memory::peak_rss_bytes();
                row.peak_rss_scope = scope;
                on_event(BenchEvent::Row(&row));
                rows.push(row);
            }
        }
        // `bm` drops here: its mapping goes before the next model loads.
    }
    Ok(rows)
}

/// Sizes as llama-bench prints them: MiB below 1 GiB, else GiB.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Parameter counts as llama-bench prints them.
pub fn human_params(n: u64) -> String {
    if n < 1_000_000_000 {
        format!("{:.2} M", n as f64 / 1e6)
    } else {
        format!("{:.2} B", n as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_follow_llama_bench_order_and_names() {
        let opts = BenchOptions {
            n_prompt: vec![512, 0, 128],
            n_gen: vec![0, 64],
            n_pg: vec![(512, 128), (0, 0)],
            ..BenchOptions::default()
        };
        let names: Vec<String> = opts.tests().iter().map(BenchTest::name).collect();
        assert_eq!(names, ["pp512", "pp128", "tg64", "pp512+tg128"]);
        let none = BenchOptions {
            n_prompt: vec![0],
            n_gen: vec![0],
            ..BenchOptions::default()
        };
        assert!(none.check().is_err());
        let zero_reps = BenchOptions {
            reps: 0,
            ..BenchOptions::default()
        };
        assert!(zero_reps.check().is_err());
    }

    #[test]
    fn stdev_is_the_sample_standard_deviation() {
        assert_eq!(stdev(&[5.0]), 0.0);
        assert!((stdev(&[1.0, 2.0, 3.0, 4.0]) - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert!((mean(&[1.0, 2.0, 3.0, 4.0]) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn token_ids_are_deterministic_and_in_range() {
        let mut a = TokenRng::new(1);
        let mut b = TokenRng::new(1);
        let xs: Vec<u32> = (0..1000).map(|_| a.next_token(49152)).collect();
        let ys: Vec<u32> = (0..1000).map(|_| b.next_token(49152)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&t| t < 49152));
        // Spread over the vocabulary, not stuck.
        let distinct: std::collections::BTreeSet<u32> = xs.iter().copied().collect();
        assert!(distinct.len() > 900);
    }

    #[test]
    fn short_names_drop_directories_and_the_extension() {
        assert_eq!(short_name("/a/b/model-q4_0.gguf"), "model-q4_0");
        assert_eq!(short_name("model.bin"), "model.bin");
    }
}
