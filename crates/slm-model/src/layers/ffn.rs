//! The gated feed-forward block `down(act(gate(x)) * up(x))` with GeGLU (Gemma) or SwiGLU
//! (Llama, Qwen, Phi-3) activation.

use crate::arch::ForwardCtx;
use crate::error::Result;
use crate::weights::Weight;

/// The gate activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatedAct {
    /// `gelu_tanh(gate) * up`
    GeGlu,
    /// `silu(gate) * up`
    SwiGlu,
}

/// Weights of one gated FFN: gate/up (n_ff, n_embd), down (n_embd, n_ff).
#[derive(Clone, Debug)]
pub struct GatedFfn {
    pub gate: Weight,
    pub up: Weight,
    pub down: Weight,
    pub act: GatedAct,
}

impl GatedFfn {
    /// out (n_tokens, n_embd) = ffn(x (n_tokens, n_embd)).
    pub fn forward(&self, ctx: &mut ForwardCtx<'_>, x: &[f32], out: &mut [f32]) -> Result<()> {
        let n_ff = self.gate.rows;
        let n_tokens = x.len() / self.gate.cols.max(1);
        let mut g = vec![0.0f32; n_tokens * n_ff]; // (n_tokens, n_ff)
        let mut u = vec![0.0f32; n_tokens * n_ff]; // (n_tokens, n_ff)
        ctx.linear(&self.gate, x, &mut g)?;
        ctx.linear(&self.up, x, &mut u)?;
        let act = match self.act {
            GatedAct::GeGlu => slm_tensor::ops::geglu,
            GatedAct::SwiGlu => slm_tensor::ops::swiglu,
        };
        // Token rows are independent: split them over the pool (decode runs inline).
        ctx.threads.for_units(&mut g, n_ff, |first, rows| {
            let start = first * n_ff;
            act(rows, &u[start..start + rows.len()]);
        });
        ctx.linear(&self.down, &g, out)
    }
}
