//! The KV cache for many sequences at once. Per sequence and layer it keeps the K and V rows of
//! consecutive positions `first_pos ..`: global layers keep every position, sliding-window
//! layers drop positions that no future token can see (all but the last `window` positions,
//! trimmed lazily once `window + keep_extra` more have piled up, so a batch never loses rows it
//! still needs and a sequence can step back up to `keep_extra` positions).
//!
//! Rows are f32 (llama.cpp keeps f16 by default; f32 keeps our numbers a little closer to the
//! exact model at twice the memory).

use std::collections::BTreeMap;

use crate::batch::SeqId;
use crate::error::{ModelError, Result};

/// What the cache stores for each layer of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvSpec {
    /// Per layer: `Some(window)` for sliding-window attention, `None` for global.
    pub windows: Vec<Option<u32>>,
    /// Floats per K row: n_head_kv * head_dim_k.
    pub k_row: usize,
    /// Floats per V row: n_head_kv * head_dim_v.
    pub v_row: usize,
    /// The largest position + 1 a sequence may reach.
    pub n_ctx: u32,
}

/// K and V rows of one sequence in one layer.
#[derive(Clone, Debug, Default)]
pub struct LayerKv {
    /// Position of the first stored row.
    pub first_pos: u32,
    /// (n_stored, k_row)
    pub k: Vec<f32>,
    /// (n_stored, v_row)
    pub v: Vec<f32>,
}

#[derive(Clone, Debug, Default)]
struct SeqKv {
    /// Next position to fill (= number of positions seen).
    n_pos: u32,
    /// One per layer.
    layers: Vec<LayerKv>,
}

/// The cache of every live sequence.
#[derive(Clone, Debug)]
pub struct KvCache {
    spec: KvSpec,
    /// Extra positions a sliding-window layer keeps past its window before trimming.
    keep_extra: u32,
    seqs: BTreeMap<SeqId, SeqKv>,
}

impl KvCache {
    pub fn new(spec: KvSpec) -> KvCache {
        KvCache {
            spec,
            keep_extra: 512,
            seqs: BTreeMap::new(),
        }
    }

    /// How many positions past the window sliding layers keep (how far back `truncate_seq`
    /// may go without a re-prefill). Larger costs memory.
    pub fn set_keep_extra(&mut self, n: u32) {
        self.keep_extra = n;
    }

    pub fn spec(&self) -> &KvSpec {
        &self.spec
    }

    /// The next position of `seq` (0 for an unknown sequence).
    pub fn seq_len(&self, seq: SeqId) -> u32 {
        self.seqs.get(&seq).map_or(0, |s| s.n_pos)
    }

    /// Sequences present in the cache.
    pub fn seq_ids(&self) -> impl Iterator<Item = SeqId> + '_ {
        self.seqs.keys().copied()
    }

    /// Forget a sequence.
    pub fn clear_seq(&mut self, seq: SeqId) {
        self.seqs.remove(&seq);
    }

    /// Forget every sequence.
    pub fn clear(&mut self) {
        self.seqs.clear();
    }

    /// Remove positions `from_pos..` of `seq` so the next token may be at `from_pos`. Fails
    /// (changing nothing) where a sliding-window layer already dropped rows the token at
    /// `from_pos` would need.
    pub fn truncate_seq(&mut self, seq: SeqId, from_pos: u32) -> Result<()> {
        let Some(s) = self.seqs.get_mut(&seq) else {
            return Ok(());
        };
        if from_pos >= s.n_pos {
            return Ok(());
        }
        if from_pos == 0 {
            self.seqs.remove(&seq);
            return Ok(());
        }
        for (l, w) in s.layers.iter().zip(&self.spec.windows) {
            let need = match w {
                Some(w) => from_pos.saturating_sub(w.saturating_sub(1)),
                None => 0,
            };
            if l.first_pos > need {
                return Err(ModelError::WindowHistoryLost {
                    seq,
                    pos: from_pos,
                    first_kept: l.first_pos,
                });
            }
        }
        for l in &mut s.layers {
            let keep = (from_pos - l.first_pos) as usize;
            l.k.truncate(keep * self.spec.k_row);
            l.v.truncate(keep * self.spec.v_row);
        }
        s.n_pos = from_pos;
        Ok(())
    }

    /// Bytes held by the cached rows.
    pub fn memory_bytes(&self) -> usize {
        self.seqs
            .values()
            .flat_map(|s| &s.layers)
            .map(|l| (l.k.len() + l.v.len()) * std::mem::size_of::<f32>())
            .sum()
    }

    pub(crate) fn has_seq(&self, seq: SeqId) -> bool {
        self.seqs.contains_key(&seq)
    }

    /// Drop rows appended since the last commit (a forward that failed half-way).
    pub(crate) fn rollback(&mut self, seq: SeqId) {
        let (k_row, v_row) = (self.spec.k_row, self.spec.v_row);
        if let Some(s) = self.seqs.get_mut(&seq) {
            for l in &mut s.layers {
                let keep = s.n_pos.saturating_sub(l.first_pos) as usize;
                l.k.truncate(keep * k_row);
                l.v.truncate(keep * v_row);
            }
        }
    }

    /// Make sure `seq` exists (empty) and return its next position.
    pub(crate) fn ensure_seq(&mut self, seq: SeqId) -> u32 {
        let n_layer = self.spec.windows.len();
        let s = self.seqs.entry(seq).or_insert_with(|| SeqKv {
            n_pos: 0,
            layers: vec![LayerKv::default(); n_layer],
        });
        s.n_pos
    }

    /// Append one position's K row (k_row,) and V row (v_row,) to `seq` in `layer`.
    pub(crate) fn push(&mut self, layer: usize, seq: SeqId, k: &[f32], v: &[f32]) {
        if let Some(l) = self
            .seqs
            .get_mut(&seq)
            .and_then(|s| s.layers.get_mut(layer))
        {
            l.k.extend_from_slice(k);
            l.v.extend_from_slice(v);
        }
    }

    /// The rows of `seq` in `layer`.
    pub(crate) fn layer(&self, layer: usize, seq: SeqId) -> Option<&LayerKv> {
        self.seqs.get(&seq).and_then(|s| s.layers.get(layer))
    }

    /// After a forward: `seq` has `added` more positions; trim sliding-window layers.
    pub(crate) fn commit(&mut self, seq: SeqId, added: u32) {
        let (k_row, v_row, keep_extra) = (self.spec.k_row, self.spec.v_row, self.keep_extra);
        let Some(s) = self.seqs.get_mut(&seq) else {
            return;
        };
        s.n_pos += added;
        for (l, w) in s.layers.iter_mut().zip(&self.spec.windows) {
            let Some(w) = *w else { continue };
            let stored = (l.k.len() / k_row.max(1)) as u32;
            if stored > w + keep_extra {
                let drop = stored - w;
                l.k.drain(..drop as usize * k_row);
                l.v.drain(..drop as usize * v_row);
                l.first_pos += drop;
            }
        }
    }
}
