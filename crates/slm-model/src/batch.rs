//! A batch of tokens from one or more sequences (llama.cpp's `llama_batch`): for every token its
//! id, position, sequence and whether its logits are wanted; and the logits a forward returns.

/// A sequence's id in the KV cache.
pub type SeqId = u32;

/// One token of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchToken {
    pub token: u32,
    /// Position within its sequence; a sequence's tokens must continue its cache without gaps.
    pub pos: u32,
    pub seq: SeqId,
    /// Whether the forward returns logits for this token.
    pub logits: bool,
}

/// Tokens of one forward pass, in any interleaving of sequences (each sequence's own tokens
/// in increasing position order).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub tokens: Vec<BatchToken>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, token: u32, pos: u32, seq: SeqId, logits: bool) {
        self.tokens.push(BatchToken {
            token,
            pos,
            seq,
            logits,
        });
    }

    /// A batch of `tokens` for `seq` starting at `start_pos`, logits for the last one only.
    pub fn sequence(tokens: &[u32], start_pos: u32, seq: SeqId) -> Batch {
        let mut b = Batch::new();
        for (i, &t) in tokens.iter().enumerate() {
            b.push(t, start_pos + i as u32, seq, i + 1 == tokens.len());
        }
        b
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
    }
}

/// Logits of the batch tokens that asked for them.
#[derive(Clone, Debug, Default)]
pub struct Logits {
    pub n_vocab: usize,
    /// Batch index of each row of `data`, increasing.
    pub rows: Vec<usize>,
    /// (rows.len(), n_vocab)
    pub data: Vec<f32>,
}

impl Logits {
    /// The logits of batch token `index`, if it asked for them.
    pub fn get(&self, index: usize) -> Option<&[f32]> {
        let r = self.rows.binary_search(&index).ok()?;
        self.data.get(r * self.n_vocab..(r + 1) * self.n_vocab)
    }

    /// The `r`-th row of logits (in batch order).
    pub fn row(&self, r: usize) -> Option<&[f32]> {
        self.data.get(r * self.n_vocab..(r + 1) * self.n_vocab)
    }

    /// The logits of the last row (typical for single-sequence decoding).
    pub fn last(&self) -> Option<&[f32]> {
        self.rows.len().checked_sub(1).and_then(|r| self.row(r))
    }
}

/// Index of the largest value (first one on ties); 0 for an empty slice.
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}
