//! The architecture seam: the [`Architecture`] trait every model family implements (one file
//! each), the registry that maps `general.architecture` to a loader (one line per
//! architecture), and [`Model`], which owns the mapped file, the loaded architecture, the
//! thread count and an optional tracer, and runs batches against a [`KvCache`].

use std::path::Path;
use std::sync::Arc;

use slm_gguf::GgufFile;

use crate::batch::{Batch, Logits, SeqId};
use crate::config::HParams;
use crate::error::{ModelError, Result};
use crate::kv_cache::{KvCache, KvSpec};
use crate::layers::par::Threads;
use crate::trace::{ActivationObserver, Tracer};
use crate::weights::Weight;

/// What a forward pass gets besides the batch and cache.
pub struct ForwardCtx<'a> {
    pub file: &'a GgufFile,
    pub threads: &'a Threads,
    pub tracer: Option<&'a mut (dyn Tracer + 'static)>,
    /// Sees the input of every weight matmul made through [`ForwardCtx::linear`].
    pub observer: Option<&'a mut (dyn ActivationObserver + 'static)>,
}

impl ForwardCtx<'_> {
    /// y (n_tokens, w.rows) = x (n_tokens, w.cols) · W^T, shown to the observer first (a
    /// no-op test without one).
    pub fn linear(&mut self, w: &Weight, x: &[f32], y: &mut [f32]) -> Result<()> {
        if let (Some(o), Some(name)) = (self.observer.as_deref_mut(), w.observe_as.as_deref()) {
            o.observe(name, w.cols, x);
        }
        crate::layers::linear::linear(self.threads, self.file, w, x, y)
    }

    /// Report an activation (cheap no-op without a tracer).
    pub fn trace(&mut self, name: &str, layer: Option<usize>, row_len: usize, data: &[f32]) {
        if let Some(t) = self.tracer.as_deref_mut() {
            t.record(name, layer, row_len, data);
        }
    }
}

/// One model family: its loaded weights and its forward pass.
pub trait Architecture: Send + Sync {
    fn hparams(&self) -> &HParams;

    /// Per-layer cache layout for contexts of up to `n_ctx` positions.
    fn kv_spec(&self, n_ctx: u32) -> KvSpec;

    /// Run `batch` (already validated against `kv`, its sequences present in `kv`), append
    /// its K/V rows to `kv`, return logits for the tokens that want them. The caller commits
    /// the new positions afterwards.
    fn forward(&self, ctx: &mut ForwardCtx<'_>, batch: &Batch, kv: &mut KvCache) -> Result<Logits>;
}

/// Builds an architecture from a file whose common hyperparameters were read.
pub type LoadFn = fn(&GgufFile, HParams) -> Result<Box<dyn Architecture>>;

/// Every supported architecture: `general.architecture` value and loader.
pub const REGISTRY: &[(&str, LoadFn)] = &[
    ("gemma3", crate::gemma3::load),
    ("llama", crate::llama::load),
    ("qwen2", crate::qwen2::load),
    ("qwen3", crate::qwen3::load),
    ("phi3", crate::phi3::load),
];

/// Load the architecture `file` declares.
pub fn load_architecture(file: &GgufFile) -> Result<Box<dyn Architecture>> {
    let arch = file.architecture().ok_or(ModelError::NoArchitecture)?;
    let (_, load) = REGISTRY.iter().find(|(n, _)| *n == arch).ok_or_else(|| {
        let known: Vec<&str> = REGISTRY.iter().map(|(n, _)| *n).collect();
        ModelError::UnknownArchitecture(arch.to_string(), known.join(", "))
    })?;
    let hp = HParams::from_gguf(file, arch)?;
    load(file, hp)
}

/// A loaded model ready to run batches.
pub struct Model {
    file: Arc<GgufFile>,
    arch: Box<dyn Architecture>,
    threads: Threads,
    tracer: Option<Box<dyn Tracer>>,
    observer: Option<Box<dyn ActivationObserver>>,
}

impl Model {
    /// Map and load a GGUF model file (2 threads; see [`Model::set_threads`]).
    pub fn load(path: &Path) -> Result<Model> {
        Model::from_file(Arc::new(GgufFile::open(path)?))
    }

    pub fn from_file(file: Arc<GgufFile>) -> Result<Model> {
        let arch = load_architecture(&file)?;
        Ok(Model {
            file,
            arch,
            threads: Threads::new(2),
            // `SLM_TRACE=attn_norm-0,l_out` prints matching activations (see `trace::Printer`).
            tracer: std::env::var("SLM_TRACE")
                .ok()
                .map(|v| Box::new(crate::trace::Printer::from_list(&v)) as Box<dyn Tracer>),
            observer: None,
        })
    }

    /// The model file (for the tokenizer and metadata).
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    pub fn hparams(&self) -> &HParams {
        self.arch.hparams()
    }

    /// Compute with `n` threads (a new pool; a no-op if the count is unchanged).
    pub fn set_threads(&mut self, n: usize) {
        if n.max(1) != self.threads.n() {
            self.threads = Threads::new(n);
        }
    }

    pub fn threads(&self) -> usize {
        self.threads.n()
    }

    /// Install (or remove) a tracer that sees every named activation.
    pub fn set_tracer(&mut self, tracer: Option<Box<dyn Tracer>>) -> Option<Box<dyn Tracer>> {
        std::mem::replace(&mut self.tracer, tracer)
    }

    /// Install (or remove) an observer of every weight matmul's input (see
    /// [`ActivationObserver`]); returns the previous one.
    pub fn set_observer(
        &mut self,
        observer: Option<Box<dyn ActivationObserver>>,
    ) -> Option<Box<dyn ActivationObserver>> {
        std::mem::replace(&mut self.observer, observer)
    }

    /// An empty cache for sequences of up to `n_ctx` positions (0 = the training context).
    pub fn new_kv_cache(&self, n_ctx: u32) -> KvCache {
        let n_ctx = if n_ctx == 0 {
            self.hparams().n_ctx_train
        } else {
            n_ctx
        };
        KvCache::new(self.arch.kv_spec(n_ctx))
    }

    /// Run one batch: check it, compute, append its K/V rows to `kv`, return the logits of
    /// the tokens that asked for them. On error the cache is unchanged.
    pub fn forward(&mut self, batch: &Batch, kv: &mut KvCache) -> Result<Logits> {
        let added = check_batch(batch, kv, self.hparams().n_vocab)?;
        let existed: Vec<bool> = added.iter().map(|&(s, _)| kv.has_seq(s)).collect();
        for &(seq, _) in &added {
            kv.ensure_seq(seq);
        }
        let mut ctx = ForwardCtx {
            file: &self.file,
            threads: &self.threads,
            tracer: self.tracer.as_deref_mut(),
            observer: self.observer.as_deref_mut(),
        };
        let out = self.arch.forward(&mut ctx, batch, kv);
        for (&(seq, n), &had) in added.iter().zip(&existed) {
            match (&out, had) {
                (Ok(_), _) => kv.commit(seq, n),
                (Err(_), true) => kv.rollback(seq),
                (Err(_), false) => kv.clear_seq(seq),
            }
        }
        out
    }
}

/// Validate a batch against the cache; returns each sequence with its number of new tokens.
fn check_batch(batch: &Batch, kv: &KvCache, n_vocab: usize) -> Result<Vec<(SeqId, u32)>> {
    if batch.is_empty() {
        return Err(ModelError::EmptyBatch);
    }
    let n_ctx = kv.spec().n_ctx;
    let mut added: Vec<(SeqId, u32)> = Vec::new();
    for (index, t) in batch.tokens.iter().enumerate() {
        if t.token as usize >= n_vocab {
            return Err(ModelError::TokenOutOfRange {
                index,
                token: t.token,
                n_vocab,
            });
        }
        let slot = match added.iter_mut().find(|(s, _)| *s == t.seq) {
            Some(slot) => slot,
            None => {
                added.push((t.seq, 0));
                let last = added.len() - 1;
                &mut added[last]
            }
        };
        let expected = kv.seq_len(t.seq) + slot.1;
        if t.pos != expected {
            return Err(ModelError::PositionGap {
                index,
                seq: t.seq,
                expected,
                got: t.pos,
            });
        }
        if t.pos >= n_ctx {
            return Err(ModelError::ContextFull {
                seq: t.seq,
                pos: t.pos,
                n_ctx,
            });
        }
        slot.1 += 1;
    }
    Ok(added)
}
