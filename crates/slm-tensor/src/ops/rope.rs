//! Rotary position embedding, matching ggml's `rope_ext` with `ext_factor = 0` (no YaRN):
//! `theta_i = pos * freq_scale * freq_base^(-2i / n_rot)` for pair `i` of the first `n_rot`
//! dimensions of every head; dimensions past `n_rot` pass through.
//!
//! Two pairings: `Normal` (llama, ggml mode 0) rotates `(x[2i], x[2i+1])`; `Neox` (gemma, qwen,
//! phi3, ggml mode 2) rotates `(x[i], x[i + n_rot/2])`.

/// Which dimensions form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)`.
    Normal,
    /// Split halves `(i, i + n_rot/2)`.
    Neox,
}

/// RoPE settings for one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeParams {
    pub style: RopeStyle,
    /// Rotated dimensions per head (even, at most the head size).
    pub n_rot: usize,
    pub freq_base: f32,
    /// Linear position scaling: `1 / factor` of `rope.scaling.type = linear` (1.0 for none).
    pub freq_scale: f32,
}

impl RopeParams {
    /// The `(cos, sin)` table for one position: `cs` (n_rot/2 * 2,) laid out `[cos0, sin0, cos1, ...]`.
    pub fn table(&self, pos: u32, cs: &mut [f32]) {
        let half = self.n_rot / 2;
        debug_assert!(cs.len() >= 2 * half);
        let p = f64::from(pos) * f64::from(self.freq_scale);
        let base = f64::from(self.freq_base);
        for (i, pair) in cs.chunks_exact_mut(2).take(half).enumerate() {
            let inv_freq = base.powf(-2.0 * i as f64 / self.n_rot as f64);
            let theta = p * inv_freq;
            pair[0] = theta.cos() as f32;
            pair[1] = theta.sin() as f32;
        }
    }

    /// Rotate every head of one token in place. `x`: (n_heads, head_dim); `cs` from [`Self::table`].
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cs: &[f32]) {
        let half = self.n_rot / 2;
        debug_assert!(self.n_rot <= head_dim);
        for head in x.chunks_exact_mut(head_dim) {
            match self.style {
                RopeStyle::Normal => {
                    for (pair, c) in head.chunks_exact_mut(2).take(half).zip(cs.chunks_exact(2)) {
                        let (x0, x1) = (pair[0], pair[1]);
                        pair[0] = x0 * c[0] - x1 * c[1];
                        pair[1] = x0 * c[1] + x1 * c[0];
                    }
                }
                RopeStyle::Neox => {
                    let (lo, hi) = head.split_at_mut(half);
                    for ((a, b), c) in lo.iter_mut().zip(hi.iter_mut()).zip(cs.chunks_exact(2)) {
                        let (x0, x1) = (*a, *b);
                        *a = x0 * c[0] - x1 * c[1];
                        *b = x0 * c[1] + x1 * c[0];
                    }
                }
            }
        }
    }
}
