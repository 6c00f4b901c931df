//! Model evaluation: perplexity the way llama.cpp's `llama-perplexity` computes it, and greedy
//! decoding (used by the golden tests and by `slm run` smoke checks).
//!
//! Perplexity: the text is tokenized once (with BOS, as `common_tokenize(ctx, text, true)`),
//! cut into `n_chunks` chunks of `n_ctx` tokens; the first token of every chunk is replaced by
//! BOS; each chunk runs in a fresh cache; only the second half of each chunk is scored: the
//! logits at positions `n_ctx/2 .. n_ctx-1` predict the tokens after them.

use crate::arch::Model;
use crate::batch::{argmax, Batch, SeqId};
use crate::error::{ModelError, Result};

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

/// Perplexity of `tokens` (the whole tokenized text, BOS included if the model adds one) in
/// chunks of `n_ctx`; `n_chunks` = 0 takes every whole chunk. `bos` replaces the first token of
/// each chunk when given. `on_chunk(i, running_ppl)` is called after each chunk.
pub fn perplexity(
    model: &mut Model,
    tokens: &[u32],
    n_ctx: usize,
    n_chunks: usize,
    bos: Option<u32>,
    mut on_chunk: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    if n_ctx < 4 {
        return Err(ModelError::Perplexity(format!(
            "context {n_ctx} is too small"
        )));
    }
    let max_chunks = tokens.len() / n_ctx;
    let n_chunks = if n_chunks == 0 {
        max_chunks
    } else {
        n_chunks.min(max_chunks)
    };
    if n_chunks == 0 {
        return Err(ModelError::Perplexity(format!(
            "{} tokens do not fill one chunk of {n_ctx}",
            tokens.len()
        )));
    }
    let first = n_ctx / 2;
    let seq: SeqId = 0;
    let mut kv = model.new_kv_cache(n_ctx as u32);
    let (mut sum, mut sum2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut per_chunk = Vec::with_capacity(n_chunks);
    for c in 0..n_chunks {
        let chunk = &tokens[c * n_ctx..(c + 1) * n_ctx];
        kv.clear();
        let mut batch = Batch::new();
        for (j, &t) in chunk.iter().enumerate() {
            let t = if j == 0 { bos.unwrap_or(t) } else { t };
            batch.push(t, j as u32, seq, j >= first && j + 1 < n_ctx);
        }
        let logits = model.forward(&batch, &mut kv)?;
        for j in first..n_ctx - 1 {
            let row = logits
                .get(j)
                .ok_or_else(|| ModelError::Perplexity(format!("no logits for position {j}")))?;
            let v = nll(row, chunk[j + 1]);
            sum += v;
            sum2 += v * v;
            count += 1;
        }
        let ppl = (sum / count as f64).exp();
        per_chunk.push(ppl);
        on_chunk(c, ppl);
    }
    let n = count as f64;
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    let ppl = mean.exp();
    let ppl_uncertainty = if count > 1 {
        ppl * (var / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Ok(Perplexity {
        ppl,
        ppl_uncertainty,
        per_chunk,
        n_scored: count,
    })
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
