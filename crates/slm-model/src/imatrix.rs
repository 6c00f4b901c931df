//! Importance matrix collection the way llama.cpp's `llama-imatrix` does it
//! (`tools/imatrix/imatrix.cpp`, `IMatrixCollector::collect_imatrix` and `compute_imatrix`):
//!
//! - the text is tokenized once (with BOS), cut into chunks of `n_ctx` tokens, the first
//!   token of each chunk replaced by BOS, each chunk run in a fresh cache with logits for
//!   every token;
//! - for every weight matmul whose name starts with `blk.` (plus `output.weight` with
//!   `process_output`) and whose input has at least 16 rows, each input row `x` adds `x[j]^2`
//!   to the weight's per-column sums (f32, row by row, as llama.cpp) and 1 to its count;
//! - a running perplexity over the second half of each chunk is reported (llama.cpp's
//!   `compute_ppl`, on by default).
//!
//! Dense weights only: this engine has no mixture-of-experts layers, so every entry has one
//! matrix (`n_mat = 1`); llama.cpp's per-expert `MUL_MAT_ID` branch has nothing to observe.
//! The file format lives in `slm_convert::imatrix`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::arch::Model;
use crate::batch::{Batch, SeqId};
use crate::error::{ModelError, Result};
use crate::eval::nll;
use crate::trace::ActivationObserver;

/// llama.cpp ignores matmuls with fewer input rows than this ("why are small batches ignored?").
pub const MIN_ROWS: usize = 16;

/// Collected statistics of one weight.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightStats {
    /// (cols,): sum over every input row of `x[j]^2`.
    pub sums: Vec<f32>,
    /// Input rows summed.
    pub count: i64,
}

/// Statistics of every observed weight, by GGUF name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImatrixStats {
    pub entries: BTreeMap<String, WeightStats>,
    /// Name of the first weight that received a non-finite activation, if any.
    pub non_finite: Option<String>,
}

impl ImatrixStats {
    /// Chunks seen, as llama.cpp stores it (`imatrix.chunk_count`): the largest count
    /// divided by the chunk size.
    pub fn chunk_count(&self, chunk_size: usize) -> u32 {
        let max = self.entries.values().map(|e| e.count).max().unwrap_or(0);
        u32::try_from(max / chunk_size.max(1) as i64).unwrap_or(u32::MAX)
    }
}

/// An [`ActivationObserver`] accumulating [`ImatrixStats`]; clones share the statistics.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    stats: Arc<Mutex<ImatrixStats>>,
    /// Also collect `output.weight` (llama-imatrix `--process-output`).
    pub process_output: bool,
}

impl Collector {
    pub fn new(process_output: bool) -> Collector {
        Collector {
            stats: Arc::default(),
            process_output,
        }
    }

    /// A copy of the statistics so far.
    pub fn snapshot(&self) -> ImatrixStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether llama.cpp's collector would take this weight.
    pub fn wants(&self, weight: &str) -> bool {
        weight.starts_with("blk.") || (self.process_output && weight == "output.weight")
    }
}

impl ActivationObserver for Collector {
    fn observe(&mut self, weight: &str, cols: usize, x: &[f32]) {
        let rows = x.len().checked_div(cols).unwrap_or(0);
        if rows < MIN_ROWS || !self.wants(weight) {
            return;
        }
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let e = stats.entries.entry(weight.to_string()).or_default();
        if e.sums.len() != cols {
            // First sight (a column mismatch cannot happen: names are unique per tensor).
            e.sums = vec![0.0; cols];
            e.count = 0;
        }
        for row in x.chunks_exact(cols) {
            for (acc, &v) in e.sums.iter_mut().zip(row) {
                *acc += v * v;
            }
        }
        e.count += rows as i64;
        let finite = e.sums.iter().all(|v| v.is_finite());
        if !finite && stats.non_finite.is_none() {
            stats.non_finite = Some(weight.to_string());
        }
    }
}

/// Settings of an imatrix run (llama-imatrix's flags).
#[derive(Clone, Debug)]
pub struct ImatrixParams {
    /// Tokens per chunk (`-c`).
    pub n_ctx: usize,
    /// Chunks to process, 0 = all whole chunks (`--chunks`).
    pub n_chunks: usize,
    /// Chunks to skip at the start (`--chunk`).
    pub from_chunk: usize,
    /// Collect `output.weight` too (`--process-output`).
    pub process_output: bool,
    /// Compute the running perplexity (llama.cpp's default; `--no-ppl` turns it off).
    pub compute_ppl: bool,
    /// BOS to put first in every chunk (when the model adds one).
    pub bos: Option<u32>,
}

/// What [`compute_imatrix`] reports after each chunk.
pub struct ChunkReport<'a> {
    /// 0-based chunk index and the number of chunks.
    pub chunk: usize,
    pub n_chunks: usize,
    /// Running perplexity (when computed).
    pub ppl: Option<f64>,
    /// Statistics so far (to save intermediate files, llama.cpp's `--output-frequency`).
    pub stats: &'a Collector,
}

/// Result of an imatrix run.
#[derive(Clone, Debug)]
pub struct ImatrixRun {
    pub stats: ImatrixStats,
    pub n_chunks: usize,
    /// Final perplexity estimate and its uncertainty (when computed).
    pub ppl: Option<(f64, f64)>,
}

/// Run `tokens` (the whole tokenized text) through `model` chunk by chunk and collect the
/// importance matrix. Any observer the model had is restored afterwards.
pub fn compute_imatrix(
    model: &mut Model,
    tokens: &[u32],
    params: &ImatrixParams,
    mut on_chunk: impl FnMut(&ChunkReport<'_>),
) -> Result<ImatrixRun> {
    let n_ctx = params.n_ctx;
    if n_ctx < 4 {
        return Err(ModelError::Perplexity(format!(
            "context {n_ctx} is too small"
        )));
    }
    let skip = params.from_chunk.saturating_mul(n_ctx);
    if params.from_chunk > 0 && (params.from_chunk + 2) * n_ctx >= tokens.len() {
        return Err(ModelError::Imatrix(format!(
            "not enough tokens left after removing {} chunks",
            params.from_chunk
        )));
    }
    let tokens = tokens.get(skip..).unwrap_or(&[]);
    if tokens.len() < 2 * n_ctx {
        return Err(ModelError::Imatrix(format!(
            "{} tokens: at least {} are needed for a context of {n_ctx} (llama-imatrix's rule)",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let max_chunks = tokens.len() / n_ctx;
    let n_chunks = match params.n_chunks {
        0 => max_chunks,
        n => n.min(max_chunks),
    };
    let collector = Collector::new(params.process_output);
    let previous = model.set_observer(Some(Box::new(collector.clone())));
    let result = run_chunks(model, tokens, params, n_chunks, &collector, &mut on_chunk);
    model.set_observer(previous);
    let ppl = result?;
    let stats = collector.snapshot();
    if let Some(name) = &stats.non_finite {
        return Err(ModelError::Imatrix(format!(
            "non-finite activations in the input of {name}"
        )));
    }
    Ok(ImatrixRun {
        stats,
        n_chunks,
        ppl,
    })
}

fn run_chunks(
    model: &mut Model,
    tokens: &[u32],
    params: &ImatrixParams,
    n_chunks: usize,
    collector: &Collector,
    on_chunk: &mut impl FnMut(&ChunkReport<'_>),
) -> Result<Option<(f64, f64)>> {
    let n_ctx = params.n_ctx;
    let first = n_ctx / 2;
    let seq: SeqId = 0;
    let mut kv = model.new_kv_cache(n_ctx as u32);
    let (mut sum, mut sum2, mut count) = (0.0f64, 0.0f64, 0usize);
    for c in 0..n_chunks {
        let chunk = &tokens[c * n_ctx..(c + 1) * n_ctx];
        kv.clear();
        let mut batch = Batch::new();
        for (j, &t) in chunk.iter().enumerate() {
            let t = if j == 0 { params.bos.unwrap_or(t) } else { t };
            // Every token wants logits, as in llama-imatrix (the output matmul and the last
            // layer then see every row).
            batch.push(t, j as u32, seq, true);
        }
        let logits = model.forward(&batch, &mut kv)?;
        let mut ppl = None;
        if params.compute_ppl {
            for j in first..n_ctx - 1 {
                let row = logits
                    .get(j)
                    .ok_or_else(|| ModelError::Perplexity(format!("no logits for {j}")))?;
                let v = nll(row, chunk[j + 1]);
                sum += v;
                sum2 += v * v;
                count += 1;
            }
            ppl = Some((sum / count as f64).exp());
        }
        on_chunk(&ChunkReport {
            chunk: c,
            n_chunks,
            ppl,
            stats: collector,
        });
    }
    if !params.compute_ppl || count < 2 {
        return Ok(None);
    }
    let n = count as f64;
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    let ppl = mean.exp();
    Ok(Some((ppl, ppl * (var / (n - 1.0)).sqrt())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_follows_llama_cpp_rules() {
        let mut c = Collector::new(false);
        let x: Vec<f32> = (0..32).map(|i| i as f32).collect(); // 16 rows of 2
        c.observe("blk.0.attn_q.weight", 2, &x);
        c.observe("blk.0.attn_q.weight", 2, &x[..30]); // 15 rows: ignored
        c.observe("output.weight", 2, &x); // not without process_output
        c.observe("token_embd.weight", 2, &x); // tied output: never
        let s = c.snapshot();
        assert_eq!(s.entries.len(), 1);
        let e = &s.entries["blk.0.attn_q.weight"];
        assert_eq!(e.count, 16);
        let even: f32 = (0..16).map(|r| ((2 * r) as f32).powi(2)).sum();
        let odd: f32 = (0..16).map(|r| ((2 * r + 1) as f32).powi(2)).sum();
        assert_eq!(e.sums, vec![even, odd]);
        assert_eq!(s.chunk_count(8), 2);

        let mut c = Collector::new(true);
        c.observe("output.weight", 2, &x);
        assert_eq!(c.snapshot().entries["output.weight"].count, 16);
        c.observe("output.weight", 2, &[f32::INFINITY; 32]);
        assert_eq!(c.snapshot().non_finite.as_deref(), Some("output.weight"));
    }
}
