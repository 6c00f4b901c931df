//! The seam between the engine and a model: a batch of tokens from several sequences in, logits
//! for the tokens that want them out. `slm-model`'s architectures implement it through an
//! adapter ([`ModelRunner`]); tests implement it with a scripted fake model.

pub use slm_model::BatchToken;

/// What the engine needs from a model plus its KV cache.
pub trait StepModel: Send {
    fn n_vocab(&self) -> usize;
    /// Context length available to each sequence.
    fn n_ctx(&self) -> usize;
    /// How many sequences the KV cache holds at once.
    fn max_seqs(&self) -> usize;
    /// Run one batch. Returns `n_vocab` logits for each token with `logits: true`, in batch order,
    /// concatenated. Shape: (n_wanted, n_vocab).
    fn forward(&mut self, batch: &[BatchToken]) -> Result<Vec<f32>, String>;
    /// Forget everything cached for `seq`.
    fn clear_seq(&mut self, seq: u32);
    /// Keep only positions `..n_keep` of `seq` (prefix reuse). Returns false when the model
    /// cannot (the sequence must then be cleared and recomputed).
    fn truncate_seq(&mut self, seq: u32, n_keep: u32) -> bool {
        let _ = (seq, n_keep);
        false
    }
}

/// What the engine needs to turn token ids into text and to know when generation ends.
pub trait Detokenizer: Send + Sync {
    /// The bytes a token renders to (may be part of a UTF-8 character).
    fn piece(&self, id: u32) -> Vec<u8>;
    /// End-of-generation token (EOS, end-of-turn ...).
    fn is_eog(&self, id: u32) -> bool;
}

/// A real model and its KV cache, as the engine drives them.
pub struct ModelRunner {
    model: slm_model::Model,
    kv: slm_model::KvCache,
    n_ctx: usize,
    max_seqs: usize,
    batch: slm_model::Batch,
}

impl ModelRunner {
    /// `n_ctx` positions per sequence, `max_seqs` sequences at once.
    pub fn new(model: slm_model::Model, n_ctx: usize, max_seqs: usize) -> ModelRunner {
        let kv = model.new_kv_cache(n_ctx as u32);
        ModelRunner {
            model,
            kv,
            n_ctx,
            max_seqs: max_seqs.max(1),
            batch: slm_model::Batch::new(),
        }
    }
}

impl StepModel for ModelRunner {
    fn n_vocab(&self) -> usize {
        self.model.hparams().n_vocab
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn max_seqs(&self) -> usize {
        self.max_seqs
    }
    fn forward(&mut self, batch: &[BatchToken]) -> Result<Vec<f32>, String> {
        self.batch.clear();
        self.batch.tokens.extend_from_slice(batch);
        let logits = self
            .model
            .forward(&self.batch, &mut self.kv)
            .map_err(|e| e.to_string())?;
        Ok(logits.data)
    }
    fn clear_seq(&mut self, seq: u32) {
        self.kv.clear_seq(seq);
    }
    fn truncate_seq(&mut self, seq: u32, n_keep: u32) -> bool {
        self.kv.truncate_seq(seq, n_keep).is_ok()
    }
}

impl Detokenizer for slm_tokenizer::Tokenizer {
    fn piece(&self, id: u32) -> Vec<u8> {
        self.token_to_piece(id)
    }
    fn is_eog(&self, id: u32) -> bool {
        slm_tokenizer::Tokenizer::is_eog(self, id)
    }
}
