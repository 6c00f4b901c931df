//! Llama (`general.architecture = llama`: Llama 2/3, SmolLM2, TinyLlama, ...), the reference
//! decoder the other families deviate from, and the shared loader/forward that Qwen2, Qwen3 and
//! Phi-3 configure with a [`Variant`] (their files list what they change).
//!
//! Llama as llama.cpp implements it (`src/models/llama.cpp`) and HF `modeling_llama.py` defines it:
//! - Pre-norm blocks: `x += Wo·attn(n)`, `n = RMSNorm(x)`; `x += FFN(RMSNorm(x))`, SwiGLU FFN
//!   (`down(silu(gate(x)) * up(x))`), final RMSNorm, output projection.
//! - Grouped-query attention, scale `1/sqrt(head_dim)`, causal, no sliding window.
//! - RoPE in normal style (ggml mode 0, adjacent pairs): the GGUF converter permutes the rows of
//!   `attn_q`/`attn_k` so that the HF half-split rotation becomes an adjacent-pair one.
//! - Llama 3 RoPE scaling: the converter stores one divisor per frequency in `rope_freqs.weight`
//!   (n_rot/2,): `theta_i = pos * freq_scale * base^(-2i/n_rot) / rope_freqs[i]`.
//! - Optional biases on q/k/v (or a fused `attn_qkv`) and on the attention output.
//! - Output projection tied to `token_embd` unless an `output.weight` exists.
//!
//! Variant switches (see [`Variant`]): NEOX RoPE (Qwen2/3, Phi-3), required q/k/v biases
//! (Qwen2), per-head QK RMSNorm before RoPE (Qwen3), gate and up fused in one `ffn_up`
//! (Phi-3), LongRoPE factors with an attention factor on cos/sin (Phi-3).

use slm_gguf::{GgufFile, TensorInfo};
use slm_tensor::ops::{self, RopeParams, RopeStyle};

use crate::arch::{Architecture, ForwardCtx};
use crate::batch::{Batch, Logits};
use crate::config::{key_f32, key_u64, HParams};
use crate::error::{ModelError, Result};
use crate::kv_cache::{KvCache, KvSpec};
use crate::layers::attention::{attention, AttnShape};
use crate::layers::ffn::{GatedAct, GatedFfn};
use crate::layers::select_rows;
use crate::weights::{self, Weight};

/// What a family changes in the Llama block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub rope_style: RopeStyle,
    /// q/k/v biases must be present (they are always optional).
    pub qkv_bias: bool,
    /// RMSNorm over every head of Q and K (weights `attn_q_norm`/`attn_k_norm`, head_dim) before RoPE.
    pub qk_norm: bool,
    /// `ffn_up` is (2 * n_ff, n_embd): rows `0..n_ff` are the gate, `n_ff..` the up projection.
    pub fused_gate_up: bool,
    /// `rope_factors_long`/`rope_factors_short` (n_rot/2,) chosen by context size against
    /// `rope.scaling.original_context_length`; cos/sin scaled by `rope.scaling.attn_factor`.
    pub long_rope: bool,
}

/// Plain Llama.
pub const LLAMA: Variant = Variant {
    rope_style: RopeStyle::Normal,
    qkv_bias: false,
    qk_norm: false,
    fused_gate_up: false,
    long_rope: false,
};

/// One transformer block's weights.
struct Layer {
    attn_norm: Vec<f32>,      // (n_embd,)
    wq: Weight,               // (n_head * head_dim_k, n_embd)
    wk: Weight,               // (n_head_kv * head_dim_k, n_embd)
    wv: Weight,               // (n_head_kv * head_dim_v, n_embd)
    bq: Option<Vec<f32>>,     // (n_head * head_dim_k,)
    bk: Option<Vec<f32>>,     // (n_head_kv * head_dim_k,)
    bv: Option<Vec<f32>>,     // (n_head_kv * head_dim_v,)
    q_norm: Option<Vec<f32>>, // (head_dim_k,)
    k_norm: Option<Vec<f32>>, // (head_dim_k,)
    wo: Weight,               // (n_embd, n_head * head_dim_v)
    bo: Option<Vec<f32>>,     // (n_embd,)
    ffn_norm: Vec<f32>,       // (n_embd,)
    ffn: GatedFfn,
}

/// RoPE of every layer: base settings plus optional per-frequency divisors.
struct Rope {
    params: RopeParams,
    /// Llama 3 `rope_freqs` (n_rot/2,).
    freqs: Option<Vec<f32>>,
    /// LongRoPE (short, long) factors (n_rot/2,) each, and the original context length.
    long: Option<(Vec<f32>, Vec<f32>, u32)>,
    /// Multiplies cos and sin (LongRoPE's attention factor; 1.0 otherwise).
    mscale: f32,
}

impl Rope {
    /// `cs` (n_rot,) = `[cos0, sin0, cos1, ...]` for `pos`, as ggml's `rope_cache_init` with
    /// `ext_factor = 0`: `theta_i = pos * freq_scale * base^(-2i/n_rot) / factor_i`.
    fn table(&self, pos: u32, factors: Option<&[f32]>, cs: &mut [f32]) {
        let n_rot = self.params.n_rot;
        let p = f64::from(pos) * f64::from(self.params.freq_scale);
        let base = f64::from(self.params.freq_base);
        for (i, pair) in cs.chunks_exact_mut(2).take(n_rot / 2).enumerate() {
            let ff = factors
                .and_then(|f| f.get(i))
                .map_or(1.0, |&f| f64::from(f));
            let theta = p * base.powf(-2.0 * i as f64 / n_rot as f64) / ff;
            pair[0] = theta.cos() as f32 * self.mscale;
            pair[1] = theta.sin() as f32 * self.mscale;
        }
    }

    /// The factors in use for a cache of `n_ctx` positions (llama.cpp's `get_rope_factors`).
    fn factors(&self, n_ctx: u32) -> Option<&[f32]> {
        if let Some(f) = &self.freqs {
            return Some(f);
        }
        self.long
            .as_ref()
            .map(|(short, long, orig)| if n_ctx > *orig { long } else { short }.as_slice())
    }
}

/// A Llama-family decoder.
pub struct Decoder {
    hp: HParams,
    variant: Variant,
    tok_embd: Weight,      // (n_vocab, n_embd)
    output: Weight,        // (n_vocab, n_embd), tok_embd when tied
    output_norm: Vec<f32>, // (n_embd,)
    rope: Rope,
    layers: Vec<Layer>,
    attn: AttnShape,
}

/// The registry's loader for `llama`.
pub fn load(file: &GgufFile, hp: HParams) -> Result<Box<dyn Architecture>> {
    Ok(Box::new(Decoder::load(file, hp, LLAMA)?))
}

/// Rows `start..start + n` of a 2-D weight, as a weight of its own (no copy: the same bytes
/// of the file). Used to split fused `attn_qkv` and `ffn_up` tensors.
fn split_rows(w: &Weight, start: usize, n: usize) -> Result<Weight> {
    let ty = w.ty();
    let row_bytes = ty
        .row_bytes(w.cols as u64)
        .ok_or_else(|| ModelError::TensorShape {
            name: w.info.name.clone(),
            expected: vec![ty.block_size(), w.rows as u64],
            actual: w.info.dims.clone(),
        })?;
    let info = TensorInfo {
        name: format!("{}[{start}..{}]", w.info.name, start + n),
        dims: vec![w.cols as u64, n as u64],
        ty,
        offset: w.info.offset + start as u64 * row_bytes,
        n_elements: (w.cols * n) as u64,
        n_bytes: n as u64 * row_bytes,
    };
    Ok(Weight {
        info,
        rows: n,
        cols: w.cols,
        // The slices share one input: the observer sees it once, as the fused tensor.
        observe_as: if start == 0 {
            w.observe_as.clone()
        } else {
            None
        },
    })
}

/// `y (n_tokens, b.len()) += b` on every row.
fn add_bias(y: &mut [f32], b: &Option<Vec<f32>>) {
    if let Some(b) = b {
        for row in y.chunks_exact_mut(b.len().max(1)) {
            ops::add_assign(row, b);
        }
    }
}

impl Decoder {
    /// Load a Llama-family model with the given deviations.
    pub fn load(file: &GgufFile, hp: HParams, variant: Variant) -> Result<Decoder> {
        let arch = hp.arch.clone();
        let (e, v) = (hp.n_embd as u64, hp.n_vocab as u64);
        let (dk, dv) = (hp.head_dim_k as u64, hp.head_dim_v as u64);
        let (nh, nkv, ff) = (hp.n_head as u64, hp.n_head_kv as u64, hp.n_ff as u64);
        let (q_w, k_w, v_w) = (
            hp.n_head * hp.head_dim_k,
            hp.n_head_kv * hp.head_dim_k,
            hp.n_head_kv * hp.head_dim_v,
        );
        let tok_embd = weights::tensor(file, "token_embd.weight", &[e, v])?;
        let output = if weights::has(file, "output.weight") {
            weights::tensor(file, "output.weight", &[e, v])?
        } else {
            tok_embd.clone()
        };
        let output_norm = weights::vector(file, "output_norm.weight", hp.n_embd)?;
        let half = hp.n_rot / 2;
        let opt_vec = |name: &str, len: usize| -> Result<Option<Vec<f32>>> {
            if weights::has(file, name) {
                weights::vector(file, name, len).map(Some)
            } else {
                Ok(None)
            }
        };
        let long = if variant.long_rope {
            match (
                opt_vec("rope_factors_short.weight", half)?,
                opt_vec("rope_factors_long.weight", half)?,
            ) {
                (Some(s), Some(l)) => {
                    let orig = key_u64(
                        file,
                        &arch,
                        "rope.scaling.original_context_length",
                        Some(u64::from(hp.n_ctx_train)),
                        1 << 24,
                    )? as u32;
                    Some((s, l, orig))
                }
                _ => None,
            }
        } else {
            None
        };
        let rope = Rope {
            params: RopeParams {
                style: variant.rope_style,
                n_rot: hp.n_rot,
                freq_base: hp.rope_freq_base,
                freq_scale: hp.rope_freq_scale,
            },
            freqs: opt_vec("rope_freqs.weight", half)?,
            long,
            mscale: key_f32(file, &arch, "rope.scaling.attn_factor", Some(1.0))?.unwrap_or(1.0),
        };

        let mut layers = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let name = |n: &str, kind: &str| format!("blk.{il}.{n}.{kind}");
            let t = |n: &str, dims: &[u64]| weights::tensor(file, &name(n, "weight"), dims);
            let vec = |n: &str, len: usize| weights::vector(file, &name(n, "weight"), len);
            let bias = |n: &str, len: usize| opt_vec(&name(n, "bias"), len);
            for n in ["ffn_gate", "ffn_up", "ffn_down"] {
                if let Some(info) = file.tensor_info(&name(n, "bias")) {
                    return Err(ModelError::TensorType {
                        name: info.name.clone(),
                        ty: info.ty,
                        why: "is a feed-forward bias, which this architecture does not support",
                    });
                }
            }
            let (wq, wk, wv, mut bq, mut bk, mut bv);
            if weights::has(file, &name("attn_qkv", "weight")) {
                let qkv = t("attn_qkv", &[e, (q_w + k_w + v_w) as u64])?;
                wq = split_rows(&qkv, 0, q_w)?;
                wk = split_rows(&qkv, q_w, k_w)?;
                wv = split_rows(&qkv, q_w + k_w, v_w)?;
                match bias("attn_qkv", q_w + k_w + v_w)? {
                    Some(b) => {
                        bq = Some(b[..q_w].to_vec());
                        bk = Some(b[q_w..q_w + k_w].to_vec());
                        bv = Some(b[q_w + k_w..].to_vec());
                    }
                    None => (bq, bk, bv) = (None, None, None),
                }
            } else {
                wq = t("attn_q", &[e, nh * dk])?;
                wk = t("attn_k", &[e, nkv * dk])?;
                wv = t("attn_v", &[e, nkv * dv])?;
                (bq, bk, bv) = (None, None, None);
            }
            if bq.is_none() {
                bq = bias("attn_q", q_w)?;
                bk = bias("attn_k", k_w)?;
                bv = bias("attn_v", v_w)?;
            }
            if variant.qkv_bias && (bq.is_none() || bk.is_none() || bv.is_none()) {
                return Err(ModelError::MissingTensor(name("attn_q/k/v", "bias")));
            }
            let (q_norm, k_norm) = if variant.qk_norm {
                (
                    Some(vec("attn_q_norm", hp.head_dim_k)?),
                    Some(vec("attn_k_norm", hp.head_dim_k)?),
                )
            } else {
                (None, None)
            };
            let (gate, up) = if variant.fused_gate_up {
                let gu = t("ffn_up", &[e, 2 * ff])?;
                (
                    split_rows(&gu, 0, hp.n_ff)?,
                    split_rows(&gu, hp.n_ff, hp.n_ff)?,
                )
            } else {
                (t("ffn_gate", &[e, ff])?, t("ffn_up", &[e, ff])?)
            };
            layers.push(Layer {
                attn_norm: vec("attn_norm", hp.n_embd)?,
                wq,
                wk,
                wv,
                bq,
                bk,
                bv,
                q_norm,
                k_norm,
                wo: t("attn_output", &[nh * dv, e])?,
                bo: bias("attn_output", hp.n_embd)?,
                ffn_norm: vec("ffn_norm", hp.n_embd)?,
                ffn: GatedFfn {
                    gate,
                    up,
                    down: t("ffn_down", &[ff, e])?,
                    act: GatedAct::SwiGlu,
                },
            });
        }
        let attn = AttnShape {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim_k: hp.head_dim_k,
            head_dim_v: hp.head_dim_v,
            scale: 1.0 / (hp.head_dim_k as f32).sqrt(),
            soft_cap: None,
            window: None,
        };
        Ok(Decoder {
            hp,
            variant,
            tok_embd,
            output,
            output_norm,
            rope,
            layers,
            attn,
        })
    }

    /// The deviations this decoder was loaded with.
    pub fn variant(&self) -> Variant {
        self.variant
    }
}

impl Architecture for Decoder {
    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn kv_spec(&self, n_ctx: u32) -> KvSpec {
        KvSpec {
            windows: vec![None; self.layers.len()],
            k_row: self.hp.n_head_kv * self.hp.head_dim_k,
            v_row: self.hp.n_head_kv * self.hp.head_dim_v,
            n_ctx,
        }
    }

    fn forward(&self, ctx: &mut ForwardCtx<'_>, batch: &Batch, kv: &mut KvCache) -> Result<Logits> {
        let hp = &self.hp;
        let (file, threads) = (ctx.file, ctx.threads);
        let n = batch.len();
        let (n_embd, dk, dv, n_rot) = (hp.n_embd, hp.head_dim_k, hp.head_dim_v, hp.n_rot);
        let (q_w, k_w, v_w) = (hp.n_head * dk, hp.n_head_kv * dk, hp.n_head_kv * dv);
        let out_rows: Vec<usize> = (0..n).filter(|&i| batch.tokens[i].logits).collect();

        // x (n, n_embd): token embeddings.
        let ids: Vec<u32> = batch.tokens.iter().map(|t| t.token).collect();
        let mut x = vec![0.0f32; n * n_embd];
        ops::get_rows(
            self.tok_embd.ty(),
            self.tok_embd.data(file),
            n_embd,
            &ids,
            &mut x,
        )?;
        ctx.trace("inp_embd", None, n_embd, &x);

        // cs (n, n_rot): one RoPE table per token, shared by every layer.
        let factors = self.rope.factors(kv.spec().n_ctx);
        let mut cs = vec![0.0f32; n * n_rot];
        for (t, c) in batch.tokens.iter().zip(cs.chunks_exact_mut(n_rot.max(1))) {
            self.rope.table(t.pos, factors, c);
        }

        let mut h = vec![0.0f32; n * n_embd]; // (n, n_embd)
        let mut q = vec![0.0f32; n * q_w]; // (n, n_head * dk)
        let mut k = vec![0.0f32; n * k_w]; // (n, n_head_kv * dk)
        let mut v = vec![0.0f32; n * v_w]; // (n, n_head_kv * dv)
        let mut att = vec![0.0f32; n * hp.n_head * dv]; // (n, n_head * dv)
        let n_layer = self.layers.len();
        for (il, l) in self.layers.iter().enumerate() {
            let li = Some(il);
            h.copy_from_slice(&x);
            ops::rms_norm_rows(&mut h, &l.attn_norm, hp.rms_eps);
            ctx.trace("attn_norm", li, n_embd, &h);

            ctx.linear(&l.wq, &h, &mut q)?;
            ctx.linear(&l.wk, &h, &mut k)?;
            ctx.linear(&l.wv, &h, &mut v)?;
            add_bias(&mut q, &l.bq);
            add_bias(&mut k, &l.bk);
            add_bias(&mut v, &l.bv);
            if let (Some(qn), Some(kn)) = (&l.q_norm, &l.k_norm) {
                ops::rms_norm_rows(&mut q, qn, hp.rms_eps);
                ops::rms_norm_rows(&mut k, kn, hp.rms_eps);
                ctx.trace("Qcur_normed", li, q_w, &q);
                ctx.trace("Kcur_normed", li, k_w, &k);
            }
            for (t, c) in cs.chunks_exact(n_rot.max(1)).enumerate().take(n) {
                self.rope
                    .params
                    .apply(&mut q[t * q_w..(t + 1) * q_w], dk, c);
                self.rope
                    .params
                    .apply(&mut k[t * k_w..(t + 1) * k_w], dk, c);
            }
            ctx.trace("Qcur", li, q_w, &q);
            ctx.trace("Kcur", li, k_w, &k);
            ctx.trace("Vcur", li, v_w, &v);
            for (t, tok) in batch.tokens.iter().enumerate() {
                kv.push(
                    il,
                    tok.seq,
                    &k[t * k_w..(t + 1) * k_w],
                    &v[t * v_w..(t + 1) * v_w],
                );
            }
            attention(threads, &self.attn, kv, il, &batch.tokens, &q, &mut att);
            ctx.trace("kqv_out", li, hp.n_head * dv, &att);

            // After the last layer's attention only the rows that want logits matter.
            if il + 1 == n_layer && out_rows.len() < n {
                x = select_rows(&x, n_embd, &out_rows);
                att = select_rows(&att, hp.n_head * dv, &out_rows);
                h.truncate(out_rows.len() * n_embd);
            }
            if x.is_empty() {
                break;
            }
            // h (m, n_embd) = attn_out · Wo^T (+ bo); x += h
            ctx.linear(&l.wo, &att, &mut h)?;
            add_bias(&mut h, &l.bo);
            ctx.trace("attn_out", li, n_embd, &h);
            ops::add_assign(&mut x, &h);
            ctx.trace("ffn_inp", li, n_embd, &x);

            let mut f = x.clone(); // (m, n_embd)
            ops::rms_norm_rows(&mut f, &l.ffn_norm, hp.rms_eps);
            ctx.trace("ffn_norm", li, n_embd, &f);
            l.ffn.forward(ctx, &f, &mut h)?;
            ops::add_assign(&mut x, &h);
            ctx.trace("l_out", li, n_embd, &x);
        }

        let m = out_rows.len();
        let mut logits = Logits {
            n_vocab: hp.n_vocab,
            rows: out_rows,
            data: Vec::new(),
        };
        if m == 0 {
            return Ok(logits);
        }
        ops::rms_norm_rows(&mut x, &self.output_norm, hp.rms_eps);
        ctx.trace("result_norm", None, n_embd, &x);
        logits.data = vec![0.0f32; m * hp.n_vocab]; // (m, n_vocab)
        ctx.linear(&self.output, &x, &mut logits.data)?;
        ctx.trace("result_output", None, hp.n_vocab, &logits.data);
        Ok(logits)
    }
}
