//! Model evaluation: perplexity the way llama.cpp's `llama-perplexity` computes it, its
//! KL-divergence mode against saved base log-probabilities, and greedy decoding (used by the
//! golden tests and by `slm run` smoke checks).
//!
//! Perplexity (`tools/perplexity/perplexity.cpp`, `perplexity()`): the text is tokenized once
//! (with BOS, as `common_tokenize(ctx, text, true)`), cut into `n_chunks` chunks of `n_ctx`
//! tokens; the first token of every chunk is replaced by BOS; each chunk runs in a fresh cache;
//! only the second half of each chunk is scored: the logits at positions
//! `n_ctx/2 .. n_ctx-1` predict the tokens after them. `n_batch` (`-b`) below `n_ctx` runs a
//! chunk in several forward passes; a multiple of `n_ctx` runs several chunks side by side as
//! separate sequences of one batch.
//!
//! - [`logits_file`]: llama.cpp's `--kl-divergence-base` file (read and written).
//! - [`kld`]: [`kl_divergence`] of a model against such a file, with llama.cpp's statistics.

pub mod kld;
pub mod logits_file;

use std::path::Path;

use crate::arch::Model;
use crate::batch::{argmax, Batch, SeqId};
use crate::error::{ModelError, Result};

pub use kld::{kl_divergence, Estimate, KlDivergence, KldParams};
pub use logits_file::{LogitsReader, LogitsWriter};

/// Result of a perplexity run.
#[derive(Clone, Debug)]
pub struct Perplexity {
    /// exp(mean negative log-likelihood) over all scored tokens.
    pub ppl: f64,
    /// Running perplexity after each chunk (what llama-perplexity prints as `[i]value`).
    pub per_chunk: Vec<f64>,
    pub n_scored: usize,
    /// Standard error of `ppl`, as llama-perplexity prints it after `+/-`:
    /// ppl * sqrt(var(nll) / (n - 1)).
    pub ppl_uncertainty: f64,
}

/// How the text is cut and run (llama-perplexity's `-c`, `--chunks`, `-b`).
#[derive(Clone, Debug)]
pub struct ChunkParams {
    /// Tokens per chunk (`-c`).
    pub n_ctx: usize,
    /// Chunks to score, 0 = every whole chunk (`--chunks`).
    pub n_chunks: usize,
    /// Tokens per forward pass (`-b`), 0 = `n_ctx`. Below `n_ctx` a chunk takes several
    /// passes; otherwise it must be a multiple of `n_ctx` and that many chunks run together.
    pub n_batch: usize,
    /// Replaces the first token of every chunk (for models that add BOS).
    pub bos: Option<u32>,
}

impl ChunkParams {
    pub fn new(n_ctx: usize) -> ChunkParams {
        ChunkParams {
            n_ctx,
            n_chunks: 0,
            n_batch: 0,
            bos: None,
        }
    }

    /// The number of chunks `n_tokens` tokens give under these settings.
    pub fn chunks_for(&self, n_tokens: usize) -> usize {
        let max = n_tokens / self.n_ctx.max(1);
        match self.n_chunks {
            0 => max,
            n => n.min(max),
        }
    }
}

/// `-log softmax(logits)[target]`, in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lt = logits
        .get(target as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    sum.ln() - f64::from(lt - max)
}

/// Running sums of negative log-likelihoods and llama.cpp's final estimate from them.
#[derive(Clone, Debug, Default)]
struct NllSums {
    sum: f64,
    sum2: f64,
    count: usize,
}

impl NllSums {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.sum2 += v * v;
        self.count += 1;
    }

    fn ppl(&self) -> f64 {
        (self.sum / self.count.max(1) as f64).exp()
    }

    fn finish(&self, per_chunk: Vec<f64>) -> Perplexity {
        let n = self.count as f64;
        let mean = self.sum / n.max(1.0);
        let var = (self.sum2 / n.max(1.0) - mean * mean).max(0.0);
        let ppl = mean.exp();
        let ppl_uncertainty = if self.count > 1 {
            ppl * (var / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Perplexity {
            ppl,
            ppl_uncertainty,
            per_chunk,
            n_scored: self.count,
        }
    }
}

/// Perplexity of `tokens` (the whole tokenized text, BOS included if the model adds one) in
/// chunks of `n_ctx`; `n_chunks` = 0 takes every whole chunk. `bos` replaces the first token of
/// each chunk when given. `on_chunk(i, running_ppl)` is called after each chunk.
pub fn perplexity(
    model: &mut Model,
    tokens: &[u32],
    n_ctx: usize,
    n_chunks: usize,
    bos: Option<u32>,
    on_chunk: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    let params = ChunkParams {
        n_ctx,
        n_chunks,
        n_batch: 0,
        bos,
    };
    perplexity_with(model, tokens, &params, on_chunk)
}

/// [`perplexity`] with every llama-perplexity setting (batch size included).
pub fn perplexity_with(
    model: &mut Model,
    tokens: &[u32],
    params: &ChunkParams,
    mut on_chunk: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    let n_chunks = check_chunks(tokens, params)?;
    let mut sums = NllSums::default();
    let mut per_chunk = Vec::with_capacity(n_chunks);
    let n_vocab = model.hparams().n_vocab;
    run_chunks(model, tokens, params, n_chunks, |c, chunk, logits| {
        let first = chunk.len() / 2;
        for (r, row) in logits.chunks_exact(n_vocab).enumerate() {
            sums.add(nll(row, chunk[first + r + 1]));
        }
        per_chunk.push(sums.ppl());
        on_chunk(c, sums.ppl());
        Ok(())
    })?;
    Ok(sums.finish(per_chunk))
}

/// Perplexity as [`perplexity_with`], also writing every scored token's log-probabilities to
/// `path` in llama.cpp's `--kl-divergence-base` format (see [`logits_file`]), which
/// [`kl_divergence`] and `llama-perplexity --kl-divergence` read.
pub fn save_logits(
    model: &mut Model,
    tokens: &[u32],
    params: &ChunkParams,
    path: &Path,
    mut on_chunk: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    let n_chunks = check_chunks(tokens, params)?;
    let n_vocab = model.hparams().n_vocab;
    let n_threads = model.threads();
    let mut w = LogitsWriter::create(
        path,
        params.n_ctx,
        n_vocab,
        &tokens[..n_chunks * params.n_ctx],
    )?;
    let mut sums = NllSums::default();
    let mut per_chunk = Vec::with_capacity(n_chunks);
    run_chunks(model, tokens, params, n_chunks, |c, chunk, logits| {
        let first = chunk.len() / 2;
        for v in w.write_chunk(logits, &chunk[first + 1..], n_threads)? {
            sums.add(v);
        }
        per_chunk.push(sums.ppl());
        on_chunk(c, sums.ppl());
        Ok(())
    })?;
    w.finish()?;
    Ok(sums.finish(per_chunk))
}

/// Validate the settings against the text; returns the number of chunks to run.
fn check_chunks(tokens: &[u32], params: &ChunkParams) -> Result<usize> {
    let n_ctx = params.n_ctx;
    if n_ctx < 4 {
        return Err(ModelError::Perplexity(format!(
            "context {n_ctx} is too small"
        )));
    }
    if params.n_batch >= n_ctx && !params.n_batch.is_multiple_of(n_ctx) {
        return Err(ModelError::Perplexity(format!(
            "batch size {} must be below the context {n_ctx} or a multiple of it",
            params.n_batch
        )));
    }
    let n_chunks = params.chunks_for(tokens.len());
    if n_chunks == 0 {
        return Err(ModelError::Perplexity(format!(
            "{} tokens do not fill one chunk of {n_ctx}",
            tokens.len()
        )));
    }
    Ok(n_chunks)
}

/// Run `n_chunks` chunks of `tokens` the llama-perplexity way and hand each chunk's scored
/// logits to `f(chunk_index, chunk_tokens, logits)`: `chunk_tokens` are the chunk's original
/// tokens (n_ctx,), `logits` (n_ctx - 1 - n_ctx/2, n_vocab) the rows of positions
/// `n_ctx/2 .. n_ctx-1`, which predict `chunk_tokens[n_ctx/2 + 1 ..]`.
pub fn run_chunks(
    model: &mut Model,
    tokens: &[u32],
    params: &ChunkParams,
    n_chunks: usize,
    mut f: impl FnMut(usize, &[u32], &[f32]) -> Result<()>,
) -> Result<()> {
    let n_ctx = params.n_ctx;
    let first = n_ctx / 2;
    let n_score = n_ctx - 1 - first;
    let n_vocab = model.hparams().n_vocab;
    let n_batch = if params.n_batch == 0 {
        n_ctx
    } else {
        params.n_batch
    };
    let (n_seq, per_pass) = if n_batch >= n_ctx {
        (n_batch / n_ctx, n_ctx)
    } else {
        (1, n_batch)
    };
    let mut kv = model.new_kv_cache(n_ctx as u32);
    let mut bufs: Vec<Vec<f32>> = Vec::new();
    let mut c0 = 0;
    while c0 < n_chunks {
        let n_seq_batch = n_seq.min(n_chunks - c0);
        kv.clear();
        bufs.resize_with(n_seq_batch, Vec::new);
        for b in &mut bufs {
            b.clear();
            b.resize(n_score * n_vocab, 0.0);
        }
        let chunk = |s: usize| &tokens[(c0 + s) * n_ctx..(c0 + s + 1) * n_ctx];
        let mut start = 0;
        while start < n_ctx {
            let end = (start + per_pass).min(n_ctx);
            let mut batch = Batch::new();
            for s in 0..n_seq_batch {
                for (pos, &t) in chunk(s).iter().enumerate().take(end).skip(start) {
                    let t = if pos == 0 { params.bos.unwrap_or(t) } else { t };
                    let want = pos >= first && pos + 1 < n_ctx;
                    batch.push(t, pos as u32, s as SeqId, want);
                }
            }
            let logits = model.forward(&batch, &mut kv)?;
            for (r, &bi) in logits.rows.iter().enumerate() {
                let bt = batch.tokens[bi];
                let row = logits
                    .row(r)
                    .ok_or_else(|| ModelError::Perplexity(format!("no logits row {r}")))?;
                let at = (bt.pos as usize - first) * n_vocab;
                bufs[bt.seq as usize][at..at + n_vocab].copy_from_slice(row);
            }
            start = end;
        }
        for (s, b) in bufs.iter().enumerate().take(n_seq_batch) {
            f(c0 + s, chunk(s), b)?;
        }
        c0 += n_seq_batch;
    }
    Ok(())
}

/// Greedy continuation of `prompt` by `n` tokens in sequence `seq` of `kv` (which must be
/// empty for `seq`). Returns the generated ids.
pub fn greedy(
    model: &mut Model,
    kv: &mut crate::kv_cache::KvCache,
    seq: SeqId,
    prompt: &[u32],
    n: usize,
) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(n);
    let mut logits = model.forward(&Batch::sequence(prompt, 0, seq), kv)?;
    for pos in (prompt.len() as u32..).take(n) {
        let next = argmax(logits.last().unwrap_or(&[]));
        out.push(next);
        if out.len() == n {
            break;
        }
        logits = model.forward(&Batch::sequence(&[next], pos, seq), kv)?;
    }
    Ok(out)
}
