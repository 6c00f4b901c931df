//! Named intermediate activations (llama.cpp's `cb(cur, "attn_norm", il)`): an architecture
//! reports each one to an optional [`Tracer`] so two implementations can be diffed layer by
//! layer. Names follow llama.cpp's (`inp_scaled`, `attn_norm`, `Qcur_normed`, `kqv_out`,
//! `attn_post_norm`, `sa_out`, `ffn_out`, `l_out`, `result_norm`, `result_output`).
//!
//! Also the [`ActivationObserver`] hook: the input rows of every weight matmul, keyed by the
//! GGUF weight name (what llama.cpp's imatrix tool collects through its eval callback).

use std::collections::BTreeMap;

/// Receives activations during a forward pass.
pub trait Tracer: Send {
    /// `data` is (data.len() / row_len, row_len), one row per batch token (or per output row
    /// after the last layer's selection). `layer` is `None` outside the blocks.
    fn record(&mut self, name: &str, layer: Option<usize>, row_len: usize, data: &[f32]);
}

/// Sees the input of every weight matmul during a forward pass (llama.cpp's `cb_eval` on
/// `MUL_MAT` nodes, as used by `llama-imatrix`).
pub trait ActivationObserver: Send {
    /// `x` is (x.len() / cols, cols): the activation rows multiplied by the weight `weight`,
    /// named as in the GGUF file (`blk.0.attn_q.weight`, `output.weight`, or
    /// `token_embd.weight` for a tied output). A fused tensor (`attn_qkv`, Phi-3's `ffn_up`)
    /// is reported once per matmul, under its own name.
    fn observe(&mut self, weight: &str, cols: usize, x: &[f32]);
}

/// A tracer that keeps copies of activations whose key (`name` or `name-layer`, as in ggml's
/// graph dumps) passes a filter.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Keys to keep; empty keeps everything.
    pub keep: Vec<String>,
    /// key -> (row_len, data)
    pub entries: BTreeMap<String, (usize, Vec<f32>)>,
}

impl Recorder {
    pub fn key(name: &str, layer: Option<usize>) -> String {
        match layer {
            Some(l) => format!("{name}-{l}"),
            None => name.to_string(),
        }
    }
}

impl Tracer for Recorder {
    fn record(&mut self, name: &str, layer: Option<usize>, row_len: usize, data: &[f32]) {
        let key = Recorder::key(name, layer);
        if self.keep.is_empty() || self.keep.contains(&key) {
            self.entries.insert(key, (row_len, data.to_vec()));
        }
    }
}

/// A tracer that prints one summary line per activation to stderr (shape, mean, rms, first
/// values), like llama.cpp's `eval-callback` tool. `filter` keeps keys containing any of its
/// strings (empty keeps all).
#[derive(Debug, Default)]
pub struct Printer {
    pub filter: Vec<String>,
}

impl Printer {
    /// From a comma-separated list (e.g. the value of an `SLM_TRACE` variable).
    pub fn from_list(list: &str) -> Printer {
        Printer {
            filter: list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        }
    }
}

impl Tracer for Printer {
    fn record(&mut self, name: &str, layer: Option<usize>, row_len: usize, data: &[f32]) {
        let key = Recorder::key(name, layer);
        if !self.filter.is_empty() && !self.filter.iter().any(|f| key.contains(f.as_str())) {
            return;
        }
        let n = data.len().max(1) as f64;
        let mean = data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let rms = (data.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n).sqrt();
        let head: Vec<String> = data.iter().take(4).map(|v| format!("{v:.4}")).collect();
        eprintln!(
            "{key:>20} ({}, {row_len}) mean {mean:+.5} rms {rms:.5} [{}]",
            data.len() / row_len.max(1),
            head.join(", ")
        );
    }
}
