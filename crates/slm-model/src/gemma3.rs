//! Gemma 3 (text decoder, `general.architecture = gemma3`).
//!
//! Deviations from Llama, as llama.cpp implements them (`src/models/gemma3.cpp`,
//! `llama-model.cpp`) and HF `modeling_gemma3.py` defines them:
//! - Input embeddings are multiplied by `sqrt(n_embd)` (in f32).
//! - Local/global attention: every 6th layer (`il % 6 == 5`) is global; the others attend to a
//!   sliding window of `attention.sliding_window` positions (the query's own included).
//! - Two RoPE bases: `rope.freq_base` (1e6 for 270M) on global layers, 10000 on local layers
//!   (not in the file; `rope.freq_base_swa` overrides it if present). Linear RoPE scaling applies
//!   to global layers only. NEOX pairing.
//! - QK-norm: RMSNorm over each head of Q and of K (weights of head_dim) before RoPE.
//! - Sandwich norms: RMSNorm before *and after* attention and before *and after* the FFN; the
//!   post-norm output is what is added to the residual.
//! - GeGLU feed-forward (`gelu_tanh(gate) * up`), not SwiGLU; GELU through ggml's f16 table
//!   (`ops::geglu`) so that we round like llama.cpp's CPU backend.
//! - Norm weights are used as stored: the GGUF converter already folded Gemma's `1 + w`.
//! - Attention scale `1/sqrt(head_dim_k)` (`query_pre_attn_scalar = head_dim`), except the 27B
//!   (62 layers), which uses `1/sqrt(n_embd / n_head)`.
//! - Output projection tied to `token_embd` unless an `output.weight` exists; no final logit
//!   soft-capping (Gemma 2 had it; honoured here if the key is present).

use slm_gguf::GgufFile;
use slm_tensor::ops::{self, RopeParams, RopeStyle};

use crate::arch::{Architecture, ForwardCtx};
use crate::batch::{Batch, Logits};
use crate::config::{key_f32, key_u64, HParams};
use crate::error::Result;
use crate::kv_cache::{KvCache, KvSpec};
use crate::layers::attention::{attention, AttnShape};
use crate::layers::ffn::{GatedAct, GatedFfn};
use crate::layers::norm::rms_norm_rows;
use crate::layers::select_rows;
use crate::weights::{self, Weight};

/// One transformer block's weights.
struct Layer {
    attn_norm: Vec<f32>,      // (n_embd,)
    wq: Weight,               // (n_head * head_dim_k, n_embd)
    wk: Weight,               // (n_head_kv * head_dim_k, n_embd)
    wv: Weight,               // (n_head_kv * head_dim_v, n_embd)
    q_norm: Vec<f32>,         // (head_dim_k,)
    k_norm: Vec<f32>,         // (head_dim_k,)
    wo: Weight,               // (n_embd, n_head * head_dim_v)
    post_attn_norm: Vec<f32>, // (n_embd,)
    ffn_norm: Vec<f32>,       // (n_embd,)
    ffn: GatedFfn,
    post_ffw_norm: Vec<f32>, // (n_embd,)
    rope: RopeParams,
    attn: AttnShape,
}

pub struct Gemma3 {
    hp: HParams,
    tok_embd: Weight,      // (n_vocab, n_embd)
    output: Weight,        // (n_vocab, n_embd), tok_embd when tied
    output_norm: Vec<f32>, // (n_embd,)
    layers: Vec<Layer>,
}

/// The registry's loader.
pub fn load(file: &GgufFile, hp: HParams) -> Result<Box<dyn crate::arch::Architecture>> {
    let arch = hp.arch.clone();
    let swa_pattern = key_u64(
        file,
        &arch,
        "attention.sliding_window_pattern",
        Some(6),
        1 << 20,
    )?;
    let base_swa = key_f32(file, &arch, "rope.freq_base_swa", Some(10_000.0))?.unwrap_or(10_000.0);
    let (e, v) = (hp.n_embd as u64, hp.n_vocab as u64);
    let (dk, dv) = (hp.head_dim_k as u64, hp.head_dim_v as u64);
    let (nh, nkv, ff) = (hp.n_head as u64, hp.n_head_kv as u64, hp.n_ff as u64);
    let tok_embd = weights::tensor(file, "token_embd.weight", &[e, v])?;
    let output = if weights::has(file, "output.weight") {
        weights::tensor(file, "output.weight", &[e, v])?
    } else {
        tok_embd.clone()
    };
    let output_norm = weights::vector(file, "output_norm.weight", hp.n_embd)?;
    let scale = if hp.n_layer == 62 {
        1.0 / ((hp.n_embd / hp.n_head) as f32).sqrt()
    } else {
        1.0 / (hp.head_dim_k as f32).sqrt()
    };
    let mut layers = Vec::with_capacity(hp.n_layer);
    for il in 0..hp.n_layer {
        let t =
            |n: &str, dims: &[u64]| weights::tensor(file, &format!("blk.{il}.{n}.weight"), dims);
        let vec = |n: &str, len: usize| weights::vector(file, &format!("blk.{il}.{n}.weight"), len);
        let is_swa = hp.sliding_window.is_some() && (il as u64 % swa_pattern) < swa_pattern - 1;
        let rope = RopeParams {
            style: RopeStyle::Neox,
            n_rot: hp.n_rot,
            freq_base: if is_swa { base_swa } else { hp.rope_freq_base },
            freq_scale: if is_swa { 1.0 } else { hp.rope_freq_scale },
        };
        layers.push(Layer {
            attn_norm: vec("attn_norm", hp.n_embd)?,
            wq: t("attn_q", &[e, nh * dk])?,
            wk: t("attn_k", &[e, nkv * dk])?,
            wv: t("attn_v", &[e, nkv * dv])?,
            q_norm: vec("attn_q_norm", hp.head_dim_k)?,
            k_norm: vec("attn_k_norm", hp.head_dim_k)?,
            wo: t("attn_output", &[nh * dv, e])?,
            post_attn_norm: vec("post_attention_norm", hp.n_embd)?,
            ffn_norm: vec("ffn_norm", hp.n_embd)?,
            ffn: GatedFfn {
                gate: t("ffn_gate", &[e, ff])?,
                up: t("ffn_up", &[e, ff])?,
                down: t("ffn_down", &[ff, e])?,
                act: GatedAct::GeGlu,
            },
            post_ffw_norm: vec("post_ffw_norm", hp.n_embd)?,
            rope,
            attn: AttnShape {
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                head_dim_k: hp.head_dim_k,
                head_dim_v: hp.head_dim_v,
                scale,
                soft_cap: hp.attn_soft_cap,
                window: if is_swa { hp.sliding_window } else { None },
            },
        });
    }
    Ok(Box::new(Gemma3 {
        hp,
        tok_embd,
        output,
        output_norm,
        layers,
    }))
}

impl Architecture for Gemma3 {
    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn kv_spec(&self, n_ctx: u32) -> KvSpec {
        KvSpec {
            windows: self.layers.iter().map(|l| l.attn.window).collect(),
            k_row: self.hp.n_head_kv * self.hp.head_dim_k,
            v_row: self.hp.n_head_kv * self.hp.head_dim_v,
            n_ctx,
        }
    }

    fn forward(&self, ctx: &mut ForwardCtx<'_>, batch: &Batch, kv: &mut KvCache) -> Result<Logits> {
        let hp = &self.hp;
        let (file, threads) = (ctx.file, ctx.threads);
        let n = batch.len();
        let (n_embd, dk, dv) = (hp.n_embd, hp.head_dim_k, hp.head_dim_v);
        let (q_w, k_w, v_w) = (hp.n_head * dk, hp.n_head_kv * dk, hp.n_head_kv * dv);
        let out_rows: Vec<usize> = (0..n).filter(|&i| batch.tokens[i].logits).collect();

        // x (n, n_embd): scaled token embeddings.
        let ids: Vec<u32> = batch.tokens.iter().map(|t| t.token).collect();
        let mut x = vec![0.0f32; n * n_embd];
        ops::get_rows(
            self.tok_embd.ty(),
            self.tok_embd.data(file),
            n_embd,
            &ids,
            &mut x,
        )?;
        ops::scale(&mut x, (n_embd as f32).sqrt());
        ctx.trace("inp_scaled", None, n_embd, &x);

        // RoPE tables per distinct layer setting: (n, n_rot) each.
        let mut rope_tables: Vec<(RopeParams, Vec<f32>)> = Vec::new();
        for l in &self.layers {
            if rope_tables.iter().all(|(p, _)| *p != l.rope) {
                let mut cs = vec![0.0f32; n * hp.n_rot];
                for (t, c) in batch
                    .tokens
                    .iter()
                    .zip(cs.chunks_exact_mut(hp.n_rot.max(1)))
                {
                    l.rope.table(t.pos, c);
                }
                rope_tables.push((l.rope, cs));
            }
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
            rms_norm_rows(threads, &mut h, &l.attn_norm, hp.rms_eps);
            ctx.trace("attn_norm", li, n_embd, &h);

            ctx.linear(&l.wq, &h, &mut q)?;
            ctx.linear(&l.wk, &h, &mut k)?;
            ctx.linear(&l.wv, &h, &mut v)?;
            rms_norm_rows(threads, &mut q, &l.q_norm, hp.rms_eps);
            rms_norm_rows(threads, &mut k, &l.k_norm, hp.rms_eps);
            ctx.trace("Qcur_normed", li, q_w, &q);
            ctx.trace("Kcur_normed", li, k_w, &k);
            let cs_all = rope_tables
                .iter()
                .find(|(p, _)| *p == l.rope)
                .map(|(_, cs)| cs.as_slice())
                .unwrap_or(&[]);
            for (t, cs) in cs_all.chunks_exact(hp.n_rot.max(1)).enumerate().take(n) {
                l.rope.apply(&mut q[t * q_w..(t + 1) * q_w], dk, cs);
                l.rope.apply(&mut k[t * k_w..(t + 1) * k_w], dk, cs);
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
            attention(threads, &l.attn, kv, il, &batch.tokens, &q, &mut att);
            ctx.trace("kqv_out", li, hp.n_head * dv, &att);

            // After the last layer's attention only the rows that want logits matter.
            if il + 1 == n_layer && out_rows.len() < n {
                x = select_rows(&x, n_embd, &out_rows);
                att = select_rows(&att, hp.n_head * dv, &out_rows);
                h.truncate(out_rows.len() * n_embd);
            }
            let m = x.len() / n_embd;
            if m == 0 {
                break;
            }
            // h (m, n_embd) = post_norm(attn_out · Wo^T); x += h
            ctx.linear(&l.wo, &att, &mut h)?;
            rms_norm_rows(threads, &mut h, &l.post_attn_norm, hp.rms_eps);
            ctx.trace("attn_post_norm", li, n_embd, &h);
            ops::add_assign(&mut x, &h);
            ctx.trace("sa_out", li, n_embd, &x);

            let mut f = x.clone(); // (m, n_embd)
            rms_norm_rows(threads, &mut f, &l.ffn_norm, hp.rms_eps);
            ctx.trace("ffn_norm", li, n_embd, &f);
            l.ffn.forward(ctx, &f, &mut h)?;
            rms_norm_rows(threads, &mut h, &l.post_ffw_norm, hp.rms_eps);
            ctx.trace("ffn_post_norm", li, n_embd, &h);
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
        rms_norm_rows(threads, &mut x, &self.output_norm, hp.rms_eps);
        ctx.trace("result_norm", None, n_embd, &x);
        logits.data = vec![0.0f32; m * hp.n_vocab]; // (m, n_vocab)
        ctx.linear(&self.output, &x, &mut logits.data)?;
        if let Some(cap) = hp.final_soft_cap {
            ops::softcap(&mut logits.data, cap);
        }
        ctx.trace("result_output", None, hp.n_vocab, &logits.data);
        Ok(logits)
    }
}
