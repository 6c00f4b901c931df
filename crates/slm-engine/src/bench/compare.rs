//! The comparison of quantized variants of one model against its base: per model the file
//! size, % reduction, bits per weight, perplexity, KL divergence and top-1 agreement against
//! the base (`slm_model::eval`'s llama.cpp-compatible `save_logits` / `kl_divergence`), prompt
//! and generation speed and peak memory ([`super::BenchModel`]), and which models lie on the
//! size/KLD Pareto front.
//!
//! One model at a time, the base first: reset the peak-RSS counter, load, run the speed tests
//! (so the peak is what loading and running the model alone needs), then score the text: the
//! base writes its log-probabilities to a temporary file (llama.cpp's `--kl-divergence-base`
//! format, removed at the end), each variant is scored against that file.

use std::path::{Path, PathBuf};

use serde::Serialize;
use slm_gguf::GgufFile;
use slm_model::eval::{self, ChunkParams, KlDivergence, KldParams};
use slm_tokenizer::Tokenizer;

use super::memory::{self, PeakScope};
use super::{human_size, BenchError, BenchModel, BenchTest, ModelFacts, Result, TokenRng};

/// What to measure.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Tokens per perplexity chunk.
    pub n_ctx: usize,
    /// Chunks to score (0 = all whole chunks of the text).
    pub n_chunks: usize,
    pub threads: usize,
    /// Prompt tokens of the speed test (0 = skip).
    pub n_prompt: usize,
    /// Generated tokens of the speed test (0 = skip).
    pub n_gen: usize,
    pub reps: usize,
    pub n_batch: usize,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            n_ctx: 512,
            n_chunks: 0,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            n_prompt: 256,
            n_gen: 64,
            reps: 3,
            n_batch: 2048,
        }
    }
}

/// A variant's quality against the base (llama.cpp's `--kl-divergence` statistics; each
/// `_unc` is one standard error, 0 when 10 tokens or fewer were scored).
#[derive(Clone, Debug, Default, Serialize)]
pub struct QualitySummary {
    pub n_scored: usize,
    /// PPL(variant) - PPL(base).
    pub delta_ppl: f64,
    pub delta_ppl_unc: f64,
    /// Mean ln(PPL(variant) / PPL(base)).
    pub ln_ppl_ratio: f64,
    pub ln_ppl_ratio_unc: f64,
    /// Mean KL divergence from the base, nats per token.
    pub kld_mean: f64,
    pub kld_unc: f64,
    pub kld_median: f64,
    pub kld_p99: f64,
    pub kld_max: f64,
    /// Fraction of scored tokens whose most likely next token is the base's.
    pub same_top: f64,
    pub same_top_unc: f64,
    /// RMS of p(next token) - p_base(next token).
    pub rms_dp: f64,
    pub rms_dp_unc: f64,
}

impl QualitySummary {
    pub fn of(k: &KlDivergence) -> QualitySummary {
        let (d, r, kl, top, dp) = (
            k.ppl_diff(),
            k.ln_ppl_ratio(),
            k.kld(),
            k.same_top(),
            k.p_diff_rms(),
        );
        QualitySummary {
            n_scored: k.count(),
            delta_ppl: d.value,
            delta_ppl_unc: d.uncertainty,
            ln_ppl_ratio: r.value,
            ln_ppl_ratio_unc: r.uncertainty,
            kld_mean: kl.value,
            kld_unc: kl.uncertainty,
            kld_median: k.kld_median(),
            kld_p99: k.kld_percentile(0.99),
            kld_max: k.kld_percentile(1.0),
            same_top: top.value,
            same_top_unc: top.uncertainty,
            rms_dp: dp.value,
            rms_dp_unc: dp.uncertainty,
        }
    }
}

/// One model of the comparison (the base is the first row).
#[derive(Clone, Debug, Serialize)]
pub struct CompareRow {
    /// The file name without `.gguf`.
    pub name: String,
    pub is_base: bool,
    #[serde(flatten)]
    pub facts: ModelFacts,
    /// 100 * (1 - file bytes / base file bytes).
    pub size_reduction_pct: f64,
    pub ppl: f64,
    pub ppl_unc: f64,
    /// Against the base; `None` on the base row.
    pub quality: Option<QualitySummary>,
    /// Prompt processing, tokens/s (mean ± sd).
    pub pp_ts: Option<f64>,
    pub pp_ts_sd: Option<f64>,
    /// Generation, tokens/s (mean ± sd).
    pub tg_ts: Option<f64>,
    pub tg_ts_sd: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub peak_rss_scope: PeakScope,
    /// No other model is both smaller (or equal) and closer (or equal) to the base in KLD.
    pub pareto: bool,
}

impl CompareRow {
    /// KLD against the base (0 for the base).
    pub fn kld(&self) -> f64 {
        self.quality.as_ref().map_or(0.0, |q| q.kld_mean)
    }

    /// PPL - PPL(base) (0 for the base).
    pub fn delta_ppl(&self) -> f64 {
        self.quality.as_ref().map_or(0.0, |q| q.delta_ppl)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CompareReport {
    pub base: String,
    pub text_tokens: usize,
    pub n_ctx: usize,
    pub n_chunks: usize,
    pub n_scored: usize,
    pub threads: usize,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub reps: usize,
    pub rows: Vec<CompareRow>,
}

/// Progress of [`run`].
pub enum CompareEvent<'a> {
    Loading(&'a Path),
    /// The text is tokenized; `total` chunk evaluations (chunks x models) follow.
    Tokenized {
        n_tokens: usize,
        n_chunks: usize,
        total: usize,
    },
    /// `done` chunk evaluations of `total` are finished.
    Chunk {
        done: usize,
        total: usize,
    },
    Speed {
        name: String,
        test: String,
    },
}

/// Mark the rows no other row dominates in (file bytes, KLD), both smaller is better.
pub fn mark_pareto(rows: &mut [CompareRow]) {
    let points: Vec<(u64, f64)> = rows.iter().map(|r| (r.facts.file_bytes, r.kld())).collect();
    for (i, row) in rows.iter_mut().enumerate() {
        let Some(&(s, k)) = points.get(i) else {
            continue;
        };
        row.pareto = !points
            .iter()
            .enumerate()
            .any(|(j, &(s2, k2))| j != i && s2 <= s && k2 <= k && (s2 < s || k2 < k));
    }
}

/// The base's log-probabilities on disk for the length of a comparison.
struct TempLogits(PathBuf);

impl TempLogits {
    fn new() -> TempLogits {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        TempLogits(
            std::env::temp_dir().join(format!("slm-compare-{}-{nanos}.kld", std::process::id())),
        )
    }
}

impl Drop for TempLogits {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Compare `variants` with `base` on `text` (see the module header).
pub fn run(
    base: &Path,
    variants: &[PathBuf],
    text: &str,
    opts: &CompareOptions,
    mut on_event: impl FnMut(CompareEvent<'_>),
) -> Result<CompareReport> {
    if variants.is_empty() {
        return Err(BenchError::Invalid(
            "give at least one variant to compare".into(),
        ));
    }
    if opts.reps == 0 || opts.n_batch == 0 || opts.threads == 0 {
        return Err(BenchError::Invalid(
            "repetitions, batch size and threads must be at least 1".into(),
        ));
    }
    let base_name = base.display().to_string();
    let base_file = GgufFile::open(base).map_err(|source| BenchError::Gguf {
        path: base_name.clone(),
        source,
    })?;
    let tok_err = |source| BenchError::Tokenizer {
        path: base_name.clone(),
        source,
    };
    let tokenizer = Tokenizer::from_gguf(base_file.header()).map_err(tok_err)?;
    let tokens = tokenizer.encode(text, true, false).map_err(tok_err)?;
    drop(base_file);
    let chunks = ChunkParams {
        n_ctx: opts.n_ctx,
        n_chunks: opts.n_chunks,
        n_batch: 0,
        // llama-perplexity puts BOS first in each chunk only for models that add one.
        bos: if tokenizer.add_bos() {
            tokenizer.bos()
        } else {
            None
        },
    };
    let n_chunks = chunks.chunks_for(tokens.len());
    if opts.n_ctx < 4 || n_chunks == 0 {
        return Err(BenchError::Invalid(format!(
            "the text's {} tokens do not fill one chunk of {}",
            tokens.len(),
            opts.n_ctx
        )));
    }
    let total = n_chunks * (variants.len() + 1);
    on_event(CompareEvent::Tokenized {
        n_tokens: tokens.len(),
        n_chunks,
        total,
    });
    let logits = TempLogits::new();
    let mut rng = TokenRng::new(1);
    let mut rows: Vec<CompareRow> = Vec::with_capacity(variants.len() + 1);
    let paths = std::iter::once(base).chain(variants.iter().map(PathBuf::as_path));
    for (i, path) in paths.enumerate() {
        on_event(CompareEvent::Loading(path));
        let scope = memory::reset_peak();
        let mut bm = BenchModel::load(path)?;
        let mut row = new_row(&bm.facts, i == 0);
        speed(&mut bm, opts, &mut row, &mut rng, &mut on_event)?;
        row.peak_rss_bytes = memory::peak_rss_bytes();
        row.peak_rss_scope = scope;
        let model_err = |source| BenchError::Model {
            path: path.display().to_string(),
            source,
        };
        let done0 = i * n_chunks;
        let model = bm.model_mut();
        model.set_threads(opts.threads);
        if i == 0 {
            let p = eval::save_logits(model, &tokens, &chunks, &logits.0, |c, _| {
                on_event(CompareEvent::Chunk {
                    done: done0 + c + 1,
                    total,
                });
            })
            .map_err(model_err)?;
            row.ppl = p.ppl;
            row.ppl_unc = p.ppl_uncertainty;
        } else {
            let params = KldParams {
                n_batch: 0,
                bos: chunks.bos,
                n_chunks,
            };
            let k = eval::kl_divergence(model, &logits.0, &params, |c, _| {
                on_event(CompareEvent::Chunk {
                    done: done0 + c + 1,
                    total,
                });
            })
            .map_err(model_err)?;
            let ppl = k.ppl();
            row.ppl = ppl.value;
            row.ppl_unc = ppl.uncertainty;
            row.quality = Some(QualitySummary::of(&k));
        }
        rows.push(row);
        // `bm` drops here, unmapping the model before the next one loads.
    }
    let base_bytes = rows.first().map_or(1, |r| r.facts.file_bytes).max(1);
    for r in &mut rows {
        r.size_reduction_pct = 100.0 * (1.0 - r.facts.file_bytes as f64 / base_bytes as f64);
    }
    mark_pareto(&mut rows);
    Ok(CompareReport {
        base: base_name,
        text_tokens: tokens.len(),
        n_ctx: opts.n_ctx,
        n_chunks,
        n_scored: rows
            .get(1)
            .and_then(|r| r.quality.as_ref())
            .map_or(0, |q| q.n_scored),
        threads: opts.threads,
        n_prompt: opts.n_prompt,
        n_gen: opts.n_gen,
        reps: opts.reps,
        rows,
    })
}

fn new_row(facts: &ModelFacts, is_base: bool) -> CompareRow {
    CompareRow {
        name: facts.short_name(),
        is_base,
        facts: facts.clone(),
        size_reduction_pct: 0.0,
        ppl: 0.0,
        ppl_unc: 0.0,
        quality: None,
        pp_ts: None,
        pp_ts_sd: None,
        tg_ts: None,
        tg_ts_sd: None,
        peak_rss_bytes: None,
        peak_rss_scope: PeakScope::Unavailable,
        pareto: false,
    }
}

/// The prompt and generation tests of one model.
fn speed(
    bm: &mut BenchModel,
    opts: &CompareOptions,
    row: &mut CompareRow,
    rng: &mut TokenRng,
    on_event: &mut impl FnMut(CompareEvent<'_>),
) -> Result<()> {
    let tests = [
        BenchTest {
            n_prompt: opts.n_prompt,
            n_gen: 0,
        },
        BenchTest {
            n_prompt: 0,
            n_gen: opts.n_gen,
        },
    ];
    for test in tests {
        if test.n_prompt + test.n_gen == 0 {
            continue;
        }
        on_event(CompareEvent::Speed {
            name: row.name.clone(),
            test: test.name(),
        });
        let r = bm.run_test(test, opts.threads, opts.n_batch, opts.reps, true, rng)?;
        if test.n_gen == 0 {
            row.pp_ts = Some(r.avg_ts);
            row.pp_ts_sd = Some(r.stddev_ts);
        } else {
            row.tg_ts = Some(r.avg_ts);
            row.tg_ts_sd = Some(r.stddev_ts);
        }
    }
    Ok(())
}

fn opt_ts(v: Option<f64>, sd: Option<f64>) -> String {
    match (v, sd) {
        (Some(v), Some(sd)) => format!("{v:.1} ± {sd:.1}"),
        (Some(v), None) => format!("{v:.1}"),
        _ => "-".to_string(),
    }
}

/// The report as a markdown table (one row per model, the base first; `*` marks the
/// Pareto front of size against KLD).
pub fn markdown(report: &CompareReport) -> String {
    let header = [
        "model",
        "type",
        "size",
        "vs base",
        "bpw",
        "PPL",
        "ΔPPL",
        "KLD",
        "top-1 %",
        &format!("pp{} t/s", report.n_prompt),
        &format!("tg{} t/s", report.n_gen),
        "peak RSS",
        "front",
    ]
    .map(str::to_string);
    let mut table: Vec<Vec<String>> = vec![header.to_vec()];
    for r in &report.rows {
        let (dppl, kld, top) = match &r.quality {
            Some(q) => (
                format!("{:+.4} ± {:.4}", q.delta_ppl, q.delta_ppl_unc),
                format!("{:.5} ± {:.5}", q.kld_mean, q.kld_unc),
                format!("{:.2} ± {:.2}", 100.0 * q.same_top, 100.0 * q.same_top_unc),
            ),
            None => ("(base)".into(), "-".into(), "-".into()),
        };
        table.push(vec![
            r.name.clone(),
            r.facts.file_type.clone(),
            human_size(r.facts.file_bytes),
            if r.is_base {
                "-".into()
            } else {
                format!("{:-.1}%", -r.size_reduction_pct)
            },
            format!("{:.2}", r.facts.bits_per_weight),
            format!("{:.4} ± {:.4}", r.ppl, r.ppl_unc),
            dppl,
            kld,
            top,
            opt_ts(r.pp_ts, r.pp_ts_sd),
            opt_ts(r.tg_ts, r.tg_ts_sd),
            r.peak_rss_bytes.map_or_else(|| "-".into(), human_size),
            if r.pareto { "*".into() } else { String::new() },
        ]);
    }
    let n_cols = header.len();
    let widths: Vec<usize> = (0..n_cols)
        .map(|c| {
            table
                .iter()
                .map(|row| row.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in table.iter().enumerate() {
        out.push('|');
        for (c, cell) in row.iter().enumerate() {
            let w = widths.get(c).copied().unwrap_or(0);
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if c < 2 {
                out.push_str(&format!(" {cell}{pad} |"));
            } else {
                out.push_str(&format!(" {pad}{cell} |"));
            }
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            for (c, w) in widths.iter().enumerate() {
                let dashes = "-".repeat(w.saturating_sub(1));
                out.push_str(&format!(" {dashes}{} |", if c < 2 { '-' } else { ':' }));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, bytes: u64, kld: Option<f64>) -> CompareRow {
        let quality = kld.map(|k| QualitySummary {
            kld_mean: k,
            ..QualitySummary::default()
        });
        CompareRow {
            name: name.into(),
            is_base: kld.is_none(),
            facts: ModelFacts {
                model_filename: format!("{name}.gguf"),
                model_type: String::new(),
                file_type: name.into(),
                model_size: bytes,
                file_bytes: bytes,
                model_n_params: 1,
                bits_per_weight: 1.0,
            },
            size_reduction_pct: 0.0,
            ppl: 10.0,
            ppl_unc: 0.1,
            quality,
            pp_ts: Some(100.0),
            pp_ts_sd: Some(1.0),
            tg_ts: None,
            tg_ts_sd: None,
            peak_rss_bytes: None,
            peak_rss_scope: PeakScope::Unavailable,
            pareto: false,
        }
    }

    #[test]
    fn pareto_front_keeps_undominated_points() {
        let mut rows = vec![
            row("F32", 500, None),
            row("Q8_0", 150, Some(0.001)),
            row("Q5_1", 110, Some(0.02)),
            row("Q4_0", 100, Some(0.05)),
            row("BAD", 120, Some(0.2)),
            row("TQ2_0", 60, Some(2.0)),
        ];
        mark_pareto(&mut rows);
        let front: Vec<&str> = rows
            .iter()
            .filter(|r| r.pareto)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(front, ["F32", "Q8_0", "Q5_1", "Q4_0", "TQ2_0"]);
    }

    #[test]
    fn markdown_has_one_line_per_model() {
        let report = CompareReport {
            base: "F32.gguf".into(),
            text_tokens: 1000,
            n_ctx: 128,
            n_chunks: 2,
            n_scored: 126,
            threads: 2,
            n_prompt: 16,
            n_gen: 4,
            reps: 1,
            rows: vec![row("F32", 500, None), row("Q8_0", 150, Some(0.001))],
        };
        let md = markdown(&report);
        assert_eq!(md.lines().count(), 4, "{md}");
        assert!(md.contains("| F32 "));
        assert!(md.contains("(base)"));
        assert!(md.contains("pp16 t/s"));
        let lens: Vec<usize> = md.lines().map(|l| l.chars().count()).collect();
        assert!(lens.windows(2).all(|w| w[0] == w[1]), "{md}");
    }
}
