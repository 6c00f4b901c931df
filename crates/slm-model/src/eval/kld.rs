//! KL divergence of a model against saved base log-probabilities, with the statistics
//! `llama-perplexity --kl-divergence` prints (`tools/perplexity/perplexity.cpp`,
//! `kl_divergence()` and its `log_softmax(.., kld)`): per scored token
//! `KLD = Σ_i p_base(i) (log p_base(i) - log p(i))` over ids with `log p_base(i) > -16`,
//! the ln-ratio and difference of perplexities with their covariance-aware uncertainties,
//! `Δp = p(target) - p_base(target)`, and how often the top token is the same.
//! Arithmetic follows llama.cpp's (f32 per token, f64 sums) so the figures agree closely.

use std::path::Path;

use super::logits_file::{decode_record, record_len, LogitsReader};
use super::{run_chunks, ChunkParams};
use crate::arch::Model;
use crate::error::{ModelError, Result};

/// A value with its standard error (llama.cpp prints `value ± uncertainty`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub uncertainty: f64,
}

/// Settings of a KL-divergence run; `n_ctx`, the chunks and the tokens come from the file.
#[derive(Clone, Debug, Default)]
pub struct KldParams {
    /// Tokens per forward pass (`-b`), 0 = the file's n_ctx.
    pub n_batch: usize,
    /// Replaces the first token of every chunk (for models that add BOS).
    pub bos: Option<u32>,
    /// Chunks to evaluate, 0 = every chunk in the file.
    pub n_chunks: usize,
}

/// Running (or final) KL-divergence statistics, llama.cpp's `kl_divergence_result` plus the
/// per-token values for percentiles.
#[derive(Clone, Debug, Default)]
pub struct KlDivergence {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    max_p_diff: f32,
    n_same_top: usize,
    count: usize,
    /// Per scored token KLD; sorted once the run is over.
    pub kld_values: Vec<f32>,
    /// Per scored token Δp = p(target) - p_base(target); sorted once the run is over.
    pub p_diff_values: Vec<f32>,
    /// Chunks evaluated and their size.
    pub n_chunks: usize,
    pub n_ctx: usize,
}

/// One token's contribution.
struct Row {
    nll: f32,
    nll_base: f32,
    kld: f64,
    p_diff: f32,
    same_top: bool,
}

/// llama.cpp's `log_softmax(n_vocab, logits, base_log_prob, tok, kld)` for one token.
fn row_kld(logits: &[f32], rec: &[u16], tok: u32) -> Row {
    let mut max = logits.first().copied().unwrap_or(0.0);
    let mut imax = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > max {
            max = l;
            imax = i;
        }
    }
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let lse = sum_exp.ln() as f32;
    let (scale, min_log_prob, q) = decode_record(rec);
    let lt = logits
        .get(tok as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    let nll = max + lse - lt;
    let q_tok = q.get(tok as usize).copied().unwrap_or(0);
    let nll_base = -(scale * f32::from(q_tok) + min_log_prob);
    let norm = max + lse;
    let mut sum = 0f64;
    let (mut imax_base, mut p_max) = (0usize, 0f32);
    for (i, (&qi, &l)) in q.iter().zip(logits).enumerate() {
        let p_log_base = scale * f32::from(qi) + min_log_prob;
        if i == 0 || p_log_base > p_max {
            p_max = p_log_base;
            imax_base = i;
        }
        if p_log_base > -16.0 {
            let p_base = p_log_base.exp();
            sum += f64::from(p_base * (p_log_base - l + norm));
        }
    }
    let p_diff = (-nll).exp() - (-nll_base).exp();
    Row {
        nll,
        nll_base,
        kld: sum,
        p_diff,
        same_top: imax == imax_base,
    }
}

/// llama.cpp's `mean_and_uncertainty`: mean and standard error (0 for 10 values or fewer).
fn mean_unc(sum: f64, sum2: f64, count: usize) -> Estimate {
    if count < 1 {
        return Estimate::default();
    }
    let n = count as f64;
    let f = sum / n;
    let df = sum2 / n - f * f;
    let uncertainty = if df > 0.0 && count > 10 {
        (df / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Estimate {
        value: f,
        uncertainty,
    }
}

/// Linear-interpolated percentile of sorted `values` (llama.cpp's `percentile` lambda).
fn percentile(sorted: &[f32], fraction: f32) -> f64 {
    let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
        return 0.0;
    };
    if fraction <= 0.0 {
        return f64::from(lo);
    }
    if fraction >= 1.0 {
        return f64::from(hi);
    }
    let p = fraction * (sorted.len() - 1) as f32;
    let ip = p as usize;
    let frac = p - ip as f32;
    let next = sorted[(ip + 1).min(sorted.len() - 1)];
    f64::from((1.0 - frac) * sorted[ip] + frac * next)
}

fn median(sorted: &[f32]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n.is_multiple_of(2) => f64::from(0.5 * (sorted[n / 2] + sorted[n / 2 - 1])),
        _ => f64::from(sorted[n / 2]),
    }
}

impl KlDivergence {
    fn add(&mut self, r: &Row) {
        let (nll, nll_base) = (f64::from(r.nll), f64::from(r.nll_base));
        self.sum_nll += nll;
        self.sum_nll2 += nll * nll;
        self.sum_nll_base += nll_base;
        self.sum_nll_base2 += nll_base * nll_base;
        self.sum_nll_nll_base += nll * nll_base;
        self.sum_kld += r.kld;
        self.sum_kld2 += r.kld * r.kld;
        let pd = f64::from(r.p_diff);
        self.sum_p_diff += pd;
        self.sum_p_diff2 += pd * pd;
        self.sum_p_diff4 += pd * pd * pd * pd;
        self.max_p_diff = self.max_p_diff.max(r.p_diff.abs());
        self.n_same_top += usize::from(r.same_top);
        self.count += 1;
        self.kld_values.push(r.kld as f32);
        self.p_diff_values.push(r.p_diff);
    }

    /// Scored tokens.
    pub fn count(&self) -> usize {
        self.count
    }

    fn log_ppl_cov(&self) -> f64 {
        if self.count < 10 {
            return 0.0;
        }
        let n = self.count as f64;
        let var = self.sum_nll_nll_base / n - (self.sum_nll / n) * (self.sum_nll_base / n);
        var / (n - 1.0)
    }

    /// Mean PPL(Q): the model's perplexity.
    pub fn ppl(&self) -> Estimate {
        let l = mean_unc(self.sum_nll, self.sum_nll2, self.count);
        let v = l.value.exp();
        Estimate {
            value: v,
            uncertainty: v * l.uncertainty,
        }
    }

    /// Mean PPL(base), from the stored (16-bit) base log-probabilities.
    pub fn ppl_base(&self) -> Estimate {
        let l = mean_unc(self.sum_nll_base, self.sum_nll_base2, self.count);
        let v = l.value.exp();
        Estimate {
            value: v,
            uncertainty: v * l.uncertainty,
        }
    }

    /// Cor(ln PPL(Q), ln PPL(base)).
    pub fn ppl_correlation(&self) -> f64 {
        let a = mean_unc(self.sum_nll, self.sum_nll2, self.count).uncertainty;
        let b = mean_unc(self.sum_nll_base, self.sum_nll_base2, self.count).uncertainty;
        self.log_ppl_cov() / (a * b)
    }

    /// Mean ln(PPL(Q)/PPL(base)).
    pub fn ln_ppl_ratio(&self) -> Estimate {
        let a = mean_unc(self.sum_nll, self.sum_nll2, self.count);
        let b = mean_unc(self.sum_nll_base, self.sum_nll_base2, self.count);
        let var = a.uncertainty.powi(2) + b.uncertainty.powi(2) - 2.0 * self.log_ppl_cov();
        Estimate {
            value: a.value - b.value,
            uncertainty: var.max(0.0).sqrt(),
        }
    }

    /// Mean PPL(Q)/PPL(base).
    pub fn ppl_ratio(&self) -> Estimate {
        let l = self.ln_ppl_ratio();
        let v = l.value.exp();
        Estimate {
            value: v,
            uncertainty: v * l.uncertainty,
        }
    }

    /// Mean PPL(Q) - PPL(base).
    pub fn ppl_diff(&self) -> Estimate {
        let (q, b) = (self.ppl(), self.ppl_base());
        let cov = q.value * b.value * self.log_ppl_cov();
        let var = q.uncertainty.powi(2) + b.uncertainty.powi(2) - 2.0 * cov;
        Estimate {
            value: q.value - b.value,
            uncertainty: var.max(0.0).sqrt(),
        }
    }

    /// Mean KL divergence (nats per token).
    pub fn kld(&self) -> Estimate {
        mean_unc(self.sum_kld, self.sum_kld2, self.count)
    }

    /// KLD percentile, `fraction` in [0, 1] (1 = maximum); exact once the run is over
    /// (the values are sorted then; before, a sorted copy is made).
    pub fn kld_percentile(&self, fraction: f32) -> f64 {
        with_sorted(&self.kld_values, |s| percentile(s, fraction))
    }

    pub fn kld_median(&self) -> f64 {
        with_sorted(&self.kld_values, median)
    }

    /// Mean Δp (probability of the right token, model minus base).
    pub fn p_diff(&self) -> Estimate {
        mean_unc(self.sum_p_diff, self.sum_p_diff2, self.count)
    }

    pub fn p_diff_percentile(&self, fraction: f32) -> f64 {
        with_sorted(&self.p_diff_values, |s| percentile(s, fraction))
    }

    pub fn p_diff_median(&self) -> f64 {
        with_sorted(&self.p_diff_values, median)
    }

    /// Largest |Δp|.
    pub fn p_diff_max_abs(&self) -> f64 {
        f64::from(self.max_p_diff)
    }

    /// RMS Δp.
    pub fn p_diff_rms(&self) -> Estimate {
        let mse = mean_unc(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let v = mse.value.sqrt();
        Estimate {
            value: v,
            uncertainty: if v > 0.0 {
                0.5 / v * mse.uncertainty
            } else {
                0.0
            },
        }
    }

    /// Fraction of tokens whose top-1 id is the same as the base's ("Same top p").
    pub fn same_top(&self) -> Estimate {
        let p = self.n_same_top as f64 / self.count.max(1) as f64;
        let unc = if self.count > 1 {
            (p * (1.0 - p) / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        };
        Estimate {
            value: p,
            uncertainty: unc,
        }
    }
}

fn with_sorted<T>(values: &[f32], f: impl Fn(&[f32]) -> T) -> T {
    if values.windows(2).all(|w| w[0] <= w[1]) {
        f(values)
    } else {
        let mut v = values.to_vec();
        v.sort_by(f32::total_cmp);
        f(&v)
    }
}

/// KL divergence of `model` against the base log-probabilities in `base` (written by
/// [`save_logits`](super::save_logits) or `llama-perplexity --kl-divergence-base`), on the
/// tokens stored in that file. `on_chunk(i, stats_so_far)` runs after each chunk.
pub fn kl_divergence(
    model: &mut Model,
    base: &Path,
    params: &KldParams,
    mut on_chunk: impl FnMut(usize, &KlDivergence),
) -> Result<KlDivergence> {
    let mut reader = LogitsReader::open(base)?;
    let n_vocab = model.hparams().n_vocab;
    if reader.n_vocab != n_vocab {
        return Err(ModelError::Kld(format!(
            "inconsistent vocabulary: {} in {}, {n_vocab} in the model",
            reader.n_vocab,
            base.display()
        )));
    }
    let n_ctx = reader.n_ctx;
    let n_chunks = match params.n_chunks {
        0 => reader.n_chunk,
        n => n.min(reader.n_chunk),
    };
    let chunk_params = ChunkParams {
        n_ctx,
        n_chunks,
        n_batch: params.n_batch,
        bos: params.bos,
    };
    if chunk_params.n_batch >= n_ctx && !chunk_params.n_batch.is_multiple_of(n_ctx) {
        return Err(ModelError::Kld(format!(
            "batch size {} must be below the context {n_ctx} or a multiple of it",
            chunk_params.n_batch
        )));
    }
    let tokens = std::mem::take(&mut reader.tokens);
    let n_threads = model.threads().max(1);
    let nv = record_len(n_vocab);
    let mut acc = KlDivergence {
        n_ctx,
        ..KlDivergence::default()
    };
    let mut recs = Vec::new();
    run_chunks(
        model,
        &tokens,
        &chunk_params,
        n_chunks,
        |c, chunk, logits| {
            reader.next_chunk(&mut recs)?;
            let first = n_ctx / 2;
            let targets = &chunk[first + 1..];
            let rows = targets.len();
            let per = rows.div_ceil(n_threads).max(1);
            let mut results: Vec<Vec<Row>> = Vec::new();
            let mut panicked = false;
            std::thread::scope(|s| {
                let handles: Vec<_> = logits
                    .chunks(per * n_vocab)
                    .zip(recs.chunks(per * nv))
                    .zip(targets.chunks(per))
                    .map(|((l, r), t)| {
                        s.spawn(move || {
                            l.chunks_exact(n_vocab)
                                .zip(r.chunks_exact(nv))
                                .zip(t)
                                .map(|((l, r), &t)| row_kld(l, r, t))
                                .collect::<Vec<Row>>()
                        })
                    })
                    .collect();
                for h in handles {
                    match h.join() {
                        Ok(rows) => results.push(rows),
                        Err(_) => panicked = true,
                    }
                }
            });
            if panicked {
                return Err(ModelError::Kld("a worker thread panicked".into()));
            }
            for r in results.iter().flatten() {
                acc.add(r);
            }
            acc.n_chunks = c + 1;
            on_chunk(c, &acc);
            Ok(())
        },
    )?;
    acc.kld_values.sort_by(f32::total_cmp);
    acc.p_diff_values.sort_by(f32::total_cmp);
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::super::logits_file::encode_row;
    use super::*;

    #[test]
    fn identical_distributions_have_zero_kld_and_same_top() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 7) % 13) as f32 * 0.5).collect();
        let mut rec = vec![0u16; record_len(50)];
        encode_row(&logits, 4, &mut rec);
        let r = row_kld(&logits, &rec, 4);
        assert!(r.kld.abs() < 1e-3, "{}", r.kld);
        assert!(r.same_top);
        assert!((r.nll - r.nll_base).abs() < 1e-3);
    }

    #[test]
    fn kld_matches_a_direct_f64_computation() {
        let base: Vec<f32> = (0..40).map(|i| ((i * 11) % 17) as f32 * 0.4).collect();
        let q: Vec<f32> = base
            .iter()
            .enumerate()
            .map(|(i, &b)| b + ((i % 5) as f32 - 2.0) * 0.3)
            .collect();
        let mut rec = vec![0u16; record_len(40)];
        encode_row(&base, 0, &mut rec);
        let lsm = |v: &[f32]| {
            let m = v.iter().copied().fold(f32::MIN, f32::max) as f64;
            let lse = v.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            v.iter().map(|&x| x as f64 - m - lse).collect::<Vec<f64>>()
        };
        let (lb, lq) = (lsm(&base), lsm(&q));
        let exact: f64 = lb.iter().zip(&lq).map(|(b, q)| b.exp() * (b - q)).sum();
        let r = row_kld(&q, &rec, 0);
        assert!(
            (r.kld - exact).abs() < 2e-3 * exact.max(1e-3) + 1e-4,
            "{} vs {exact}",
            r.kld
        );
    }

    #[test]
    fn statistics_follow_llama_cpp_formulas() {
        let mut k = KlDivergence::default();
        for i in 0..20 {
            k.add(&Row {
                nll: 1.0 + 0.1 * (i % 3) as f32,
                nll_base: 1.0,
                kld: 0.01 * i as f64,
                p_diff: 0.0,
                same_top: i % 4 != 0,
            });
        }
        assert_eq!(k.count(), 20);
        assert!((k.kld().value - 0.095).abs() < 1e-12);
        assert!((k.same_top().value - 0.75).abs() < 1e-12);
        assert!((k.kld_percentile(1.0) - 0.19).abs() < 1e-6);
        assert!((k.kld_median() - 0.095).abs() < 1e-6);
        assert!((k.ppl_base().value - 1f64.exp()).abs() < 1e-9);
        assert_eq!(k.ppl_base().uncertainty, 0.0);
    }
}
