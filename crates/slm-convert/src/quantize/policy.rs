//! llama.cpp's per-tensor type policy (`llama-quant.cpp` of the llama.cpp vendored by
//! llama-cpp-python 0.3.36), re-implemented rule for rule:
//!
//! - [`allows_quantization`] says what is never quantized (1-D tensors, names not ending in
//!   `weight`, norms, expert gates, position embeddings, conv1d, ... — `tensor_allows_quantization`);
//! - [`Planner::choose`] is `llama_tensor_get_type`: `--token-embedding-type` /
//!   `--output-tensor-type`, `--tensor-type` regex overrides (first match wins), then unless
//!   `--pure` the mix rules of `llama_tensor_get_type_impl` (output / tied token embeddings,
//!   the `attn_v` and `ffn_down` "use more bits" layer schedules, GQA and expert rules), then the
//!   row-size fallback of `tensor_type_fallback`;
//! - [`requires_imatrix`] is `tensor_requires_imatrix`.
//!
//! The rules are stateful like llama.cpp's: counters of `attn_v` / `ffn_*` tensors seen so far
//! pick the layer, so tensors must be visited in llama.cpp's order ([`llama_order`]).

use regex::Regex;
use slm_gguf::{GgmlType, Gguf};

use super::ftype::FileType;
use super::tensor_kind::is_attn_v_like;
pub use super::tensor_kind::{
    allows_quantization, category, layer_of, llama_order, requires_imatrix, trim_dims, Category,
};
use crate::error::{Error, Result};

/// The hyper-parameters the policy looks at, read from GGUF metadata like llama.cpp's
/// `load_hparams` (layer 0's head counts for `n_gqa`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelParams {
    pub arch: String,
    /// `{arch}.block_count` (llama.cpp's `n_layer_all`).
    pub n_layer: u32,
    /// `{arch}.expert_count`, 0 without experts.
    pub n_expert: u32,
    pub n_head: u32,
    /// Defaults to `n_head`.
    pub n_head_kv: u32,
}

impl ModelParams {
    /// Reads the parameters from a GGUF header.
    pub fn from_gguf(g: &Gguf) -> Result<ModelParams> {
        let arch = g
            .architecture()
            .ok_or_else(|| Error::Quantize("the input has no general.architecture".into()))?
            .to_string();
        let first = |suffix: &str| -> Option<u32> {
            let key = format!("{arch}.{suffix}");
            let v = match g.get(&key)? {
                slm_gguf::Value::Array(a) => a.to_i64s()?.first().copied()?,
                v => v.as_i64()?,
            };
            u32::try_from(v).ok()
        };
        let n_layer = first("block_count")
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::Quantize(format!("the input has no {arch}.block_count")))?;
        let n_head = first("attention.head_count").unwrap_or(0);
        Ok(ModelParams {
            n_layer,
            n_expert: first("expert_count").unwrap_or(0),
            n_head,
            n_head_kv: first("attention.head_count_kv").unwrap_or(n_head),
            arch,
        })
    }

    /// Query heads per KV head (`hparams.n_gqa()`), 0 without KV heads.
    pub fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    /// llama.cpp's `LLM_TYPE_70B` (the model types whose `load_hparams` says 70B).
    fn is_70b(&self) -> bool {
        match self.arch.as_str() {
            "llama" => self.n_layer == 80 && self.n_head != self.n_head_kv,
            "qwen2" | "deci" | "olmo" => self.n_layer == 80,
            "jais2" => self.n_layer == 68,
            _ => false,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// The options of the policy (a subset of `QuantizeOptions`).
#[derive(Clone, Debug)]
pub struct PolicyOptions {
    pub ftype: FileType,
    pub pure: bool,
    pub quantize_output: bool,
    pub output_tensor_type: Option<GgmlType>,
    pub token_embedding_type: Option<GgmlType>,
    /// `--tensor-type` overrides in order: (regex searched in the name, type).
    pub overrides: Vec<(Regex, GgmlType)>,
    pub has_imatrix: bool,
}

/// One tensor as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDesc {
    pub name: String,
    /// ggml dims, `dims[0]` contiguous.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

/// The policy's running state (`quantize_state_impl`).
pub struct Planner<'a> {
    model: &'a ModelParams,
    opts: &'a PolicyOptions,
    n_attention_wv: u32,
    i_attention_wv: u32,
    i_ffn_down: u32,
    i_ffn_gate: u32,
    i_ffn_up: u32,
    has_tied_embeddings: bool,
    /// Tensors whose row size forced a fallback type.
    pub n_fallback: usize,
}

fn use_more_bits(i_layer: u32, n_layers: u32) -> bool {
    let (i, n) = (i64::from(i_layer), i64::from(n_layers));
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// Chooses the type of every tensor of a model: sorts them into llama.cpp's order, runs the
/// [`Planner`] over them, and returns them in that order with their types and the number of
/// row-size fallbacks.
pub fn choose_types(
    model: &ModelParams,
    opts: &PolicyOptions,
    tensors: &[TensorDesc],
) -> Result<(Vec<(TensorDesc, GgmlType)>, usize)> {
    let mut sorted: Vec<&TensorDesc> = tensors.iter().collect();
    sorted.sort_by(|a, b| llama_order(&a.name, &b.name));
    let names: Vec<&str> = sorted.iter().map(|t| t.name.as_str()).collect();
    let mut planner = Planner::new(model, opts, &names);
    let mut out = Vec::with_capacity(sorted.len());
    for t in sorted {
        let ty = planner.choose(t)?;
        out.push((t.clone(), ty));
    }
    Ok((out, planner.n_fallback))
}

impl<'a> Planner<'a> {
    /// Counts what llama.cpp counts before choosing (`init_quantize_state_counters`) over the
    /// whole tensor list.
    pub fn new(model: &'a ModelParams, opts: &'a PolicyOptions, names: &[&str]) -> Self {
        let cats = names.iter().map(|n| category(n));
        let n_attention_wv = cats.clone().filter(|&c| is_attn_v_like(c)).count();
        let has_output = cats.clone().any(|c| c == Category::Output);
        Planner {
            model,
            opts,
            n_attention_wv: u32::try_from(n_attention_wv).unwrap_or(u32::MAX),
            i_attention_wv: 0,
            i_ffn_down: 0,
            i_ffn_gate: 0,
            i_ffn_up: 0,
            has_tied_embeddings: !has_output,
            n_fallback: 0,
        }
    }

    /// The target type of the next tensor (call in llama.cpp's order): its own type when it
    /// is never quantized.
    pub fn choose(&mut self, t: &TensorDesc) -> Result<GgmlType> {
        let opts = self.opts;
        if !allows_quantization(&t.name, &t.dims, &self.model.arch, opts.quantize_output) {
            return Ok(t.ty);
        }
        let cat = category(&t.name);
        if let (Some(ty), Category::TokenEmbd) = (opts.token_embedding_type, cat) {
            // An explicit --tensor-type may still name per_layer_token_embd.
            let named = t.name == "per_layer_token_embd.weight"
                && opts.overrides.iter().any(|(re, _)| re.is_match(&t.name));
            if !named {
                return Ok(ty);
            }
        }
        if let (Some(ty), Category::Output) = (opts.output_tensor_type, cat) {
            return Ok(ty);
        }
        let default = opts.ftype.default_type();
        if !default.is_quantized() {
            return Ok(default);
        }
        let manual = opts.overrides.iter().find(|(re, _)| re.is_match(&t.name));
        let mut ty = match manual {
            Some(&(_, ty)) => ty,
            None if opts.pure => default,
            None => self.mix_type(default, t, cat)?,
        };
        ty = self.fallback(t, ty)?;
        Ok(ty)
    }

    fn layer_info(&self, counter: u32, name: &str) -> Result<(u32, u32)> {
        let n_layer = self.model.n_layer;
        if self.model.n_expert <= 1 {
            return Ok((counter, n_layer));
        }
        let il = layer_of(name).ok_or_else(|| {
            Error::Quantize(format!("failed to determine layer for tensor {name}"))
        })?;
        match u32::try_from(il) {
            Ok(il) if il < n_layer => Ok((il, n_layer)),
            _ => Err(Error::Quantize(format!(
                "bad layer {il} for tensor {name}: must be in [0, {n_layer})"
            ))),
        }
    }

    /// `llama_tensor_get_type_impl`: the mix's rules for one tensor, kept branch for branch
    /// like llama.cpp's (hence identical arms are not merged).
    #[allow(clippy::if_same_then_else)]
    fn mix_type(&mut self, default: GgmlType, t: &TensorDesc, cat: Category) -> Result<GgmlType> {
        use Category as C;
        use FileType as F;
        use GgmlType as T;
        let ftype = self.opts.ftype;
        let m = self.model;
        let name = t.name.as_str();
        let mut ty = default;
        let low_iq = matches!(
            ftype,
            F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ2_S | F::IQ2_M | F::IQ1_M
        );
        let iq2_sm = matches!(ftype, F::IQ2_S | F::IQ2_M);

        if m.arch == "glm5-next"
            && ["attn_q_a", "attn_q_b", "nextn.eh_proj"]
                .iter()
                .any(|s| name.contains(s))
            && !matches!(ty, T::F32 | T::BF16 | T::F16)
        {
            return Ok(T::Q8_0);
        }

        if cat == C::Output || (self.has_tied_embeddings && cat == C::TokenEmbd) {
            if let Some(o) = self.opts.output_tensor_type {
                ty = o;
            } else {
                let nx = t.dims.first().copied().unwrap_or(0);
                if ftype == F::MXFP4_MOE || m.is_falcon() || nx % ty.block_size() != 0 {
                    ty = T::Q8_0;
                } else if low_iq || ftype == F::IQ3_XXS {
                    ty = T::Q5_K;
                } else if ty != T::Q8_0 {
                    ty = T::Q6_K;
                }
            }
        } else if ftype == F::MXFP4_MOE {
            let ne2 = t.dims.get(2).copied().unwrap_or(1);
            let expert_role = matches!(cat, C::FfnUp | C::FfnGate | C::FfnDown);
            ty = if ne2 > 1 && (m.arch != "bailingmoe3" || expert_role) {
                T::MXFP4
            } else {
                T::Q8_0
            };
        } else if cat == C::TokenEmbd {
            if let Some(e) = self.opts.token_embedding_type {
                ty = e;
            } else if matches!(ftype, F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ1_M) {
                ty = T::Q2_K;
            } else if matches!(ftype, F::IQ2_S | F::IQ2_M | F::IQ3_XXS) {
                ty = T::IQ3_S;
            } else if matches!(ftype, F::TQ1_0 | F::TQ2_0) {
                ty = T::Q4_K;
            }
        } else if low_iq {
            if is_attn_v_like(cat) {
                ty = if m.n_gqa() >= 4 || m.n_expert >= 4 {
                    T::Q4_K
                } else if iq2_sm {
                    T::IQ3_S
                } else {
                    T::Q2_K
                };
                self.i_attention_wv += 1;
            } else if m.n_expert == 8 && cat == C::AttnK {
                ty = T::Q4_K;
            } else if cat == C::FfnDown {
                if self.i_ffn_down < m.n_layer / 8 {
                    ty = if iq2_sm { T::IQ3_S } else { T::Q2_K };
                }
                self.i_ffn_down += 1;
            } else if cat == C::AttnOutput {
                if m.n_expert == 8 {
                    ty = T::Q5_K;
                } else if matches!(ftype, F::IQ1_S | F::IQ1_M) {
                    ty = T::IQ2_XXS;
                } else if iq2_sm {
                    ty = T::IQ3_S;
                }
            }
        } else if is_attn_v_like(cat) {
            let gqa4 = m.n_gqa() >= 4;
            if ftype == F::Q2_K {
                ty = if gqa4 { T::Q4_K } else { T::Q3_K };
            } else if ftype == F::Q2_K_S && gqa4 {
                ty = T::Q4_K;
            } else if ftype == F::IQ3_XXS {
                ty = if gqa4 {
                    T::Q4_K
                } else if !self.opts.has_imatrix {
                    T::IQ3_S
                } else {
                    T::IQ3_XXS
                };
            } else if matches!(ftype, F::IQ3_XS | F::IQ3_S) && gqa4 {
                ty = T::Q4_K;
            } else if ftype == F::IQ3_M {
                ty = T::Q4_K;
            } else if ftype == F::Q3_K_M {
                ty = if self.i_attention_wv < 2 {
                    T::Q5_K
                } else {
                    T::Q4_K
                };
            } else if ftype == F::Q3_K_L {
                ty = T::Q5_K;
            } else if matches!(ftype, F::IQ4_NL | F::IQ4_XS) && gqa4 {
                ty = T::Q5_K;
            } else if matches!(ftype, F::Q4_K_M | F::Q5_K_M)
                && use_more_bits(self.i_attention_wv, self.n_attention_wv)
            {
                ty = T::Q6_K;
            } else if ftype == F::Q4_K_S && self.i_attention_wv < 4 {
                ty = T::Q5_K;
            }
            if m.is_70b() && matches!(ty, T::Q3_K | T::Q4_K) {
                ty = T::Q5_K;
            }
            if m.n_expert == 8 {
                ty = T::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == C::AttnK {
            if m.n_expert == 8 {
                ty = T::Q8_0;
            } else if ftype == F::IQ3_XS {
                ty = T::IQ3_XXS;
            } else if ftype == F::IQ3_XXS {
                ty = T::IQ2_S;
            }
        } else if cat == C::AttnQ {
            if ftype == F::IQ3_XS {
                ty = T::IQ3_XXS;
            } else if ftype == F::IQ3_XXS {
                ty = T::IQ2_S;
            }
        } else if cat == C::FfnDown {
            let (il, nl) = self.layer_info(self.i_ffn_down, name)?;
            let falcon = m.is_falcon();
            if ftype == F::Q2_K {
                ty = T::Q3_K;
            } else if ftype == F::Q2_K_S {
                if il < nl / 8 {
                    ty = T::Q4_K;
                }
            } else if ftype == F::IQ3_XXS && !self.opts.has_imatrix {
                ty = if il < nl / 8 { T::Q4_K } else { T::Q3_K };
            } else if ftype == F::Q3_K_M {
                ty = if il < nl / 16 {
                    T::Q5_K
                } else if !falcon || use_more_bits(il, nl) {
                    T::Q4_K
                } else {
                    T::Q3_K
                };
            } else if ftype == F::IQ3_M
                && (il < nl / 8 || (m.n_expert == 8 && use_more_bits(il, nl)))
            {
                ty = T::Q4_K;
            } else if ftype == F::Q3_K_L {
                ty = if falcon { T::Q4_K } else { T::Q5_K };
            } else if ftype == F::Q4_K_M {
                if falcon {
                    ty = if il < nl / 16 {
                        T::Q6_K
                    } else if use_more_bits(il, nl) {
                        T::Q5_K
                    } else {
                        T::Q4_K
                    };
                } else if use_more_bits(il, nl) {
                    ty = T::Q6_K;
                }
            } else if il < nl / 8
                && matches!(ftype, F::IQ4_NL | F::IQ4_XS)
                && !self.opts.has_imatrix
            {
                ty = T::Q5_K;
            } else if ftype == F::Q5_K_M && use_more_bits(il, nl) {
                ty = T::Q6_K;
            } else if ftype == F::Q4_K_S && !falcon && il < nl / 8 {
                ty = T::Q5_K;
            } else if matches!(ftype, F::Q4_0 | F::Q5_0) && self.opts.has_imatrix && il < nl / 8 {
                ty = if ftype == F::Q4_0 { T::Q4_1 } else { T::Q5_1 };
            }
            self.i_ffn_down += 1;
        } else if cat == C::AttnOutput {
            if !m.is_falcon() {
                if m.n_expert == 8 {
                    if matches!(
                        ftype,
                        F::Q2_K
                            | F::IQ3_XS
                            | F::IQ3_XXS
                            | F::Q3_K_S
                            | F::Q3_K_M
                            | F::IQ4_NL
                            | F::Q4_K_S
                            | F::Q4_K_M
                            | F::IQ3_S
                            | F::IQ3_M
                            | F::IQ4_XS
                    ) {
                        ty = T::Q5_K;
                    }
                } else {
                    match ftype {
                        F::Q2_K => ty = T::Q3_K,
                        F::IQ3_XXS => ty = T::IQ3_S,
                        F::Q3_K_M | F::IQ3_M => ty = T::Q4_K,
                        F::Q3_K_L => ty = T::Q5_K,
                        _ => {}
                    }
                }
            } else if ftype == F::Q3_K_L {
                ty = T::Q4_K;
            }
        } else if cat == C::AttnQkv {
            match ftype {
                F::Q3_K_M | F::Q3_K_L | F::IQ3_M => ty = T::Q4_K,
                F::Q4_K_M => ty = T::Q5_K,
                F::Q5_K_M => ty = T::Q6_K,
                _ => {}
            }
        } else if cat == C::FfnGate || cat == C::FfnUp {
            let counter = if cat == C::FfnGate {
                self.i_ffn_gate
            } else {
                self.i_ffn_up
            };
            let (il, nl) = self.layer_info(counter, name)?;
            if ftype == F::IQ3_XS && il >= nl / 8 && il < 7 * nl / 8 {
                ty = T::IQ3_XXS;
            }
            if cat == C::FfnGate {
                self.i_ffn_gate += 1;
            } else {
                self.i_ffn_up += 1;
            }
        }
        Ok(ty)
    }

    /// `tensor_type_fallback`: a type whose block does not divide the row size is replaced.
    fn fallback(&mut self, t: &TensorDesc, target: GgmlType) -> Result<GgmlType> {
        use GgmlType as T;
        let ncols = t.dims.first().copied().unwrap_or(0);
        let block = target.block_size();
        if ncols % block == 0 {
            return Ok(target);
        }
        self.n_fallback += 1;
        let mut ty = match target {
            T::IQ1_S
            | T::IQ1_M
            | T::IQ2_XXS
            | T::IQ2_XS
            | T::IQ2_S
            | T::IQ3_XXS
            | T::IQ3_S
            | T::IQ4_XS => T::IQ4_NL,
            T::Q2_K | T::Q3_K | T::TQ1_0 | T::TQ2_0 => T::Q4_0,
            T::Q4_K => T::Q5_0,
            T::Q5_K => T::Q5_1,
            T::Q6_K => T::Q8_0,
            _ if block <= 32 => target,
            _ => {
                return Err(Error::Quantize(format!(
                    "tensor {}: no fallback type is defined for {target} (rows of {ncols})",
                    t.name
                )))
            }
        };
        if ncols % ty.block_size() != 0 {
            ty = T::F16;
        }
        Ok(ty)
    }
}
