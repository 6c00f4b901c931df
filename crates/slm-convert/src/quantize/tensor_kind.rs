//! What llama.cpp reads from a tensor's name and shape before its mix rules: the category
//! (`tensor_get_category`), whether the tensor is quantized at all
//! (`tensor_allows_quantization`), whether its type needs an importance matrix
//! (`tensor_requires_imatrix`), its layer (`sscanf("blk.%d.")`), its dims as written
//! (`ggml_n_dims`) and llama.cpp's tensor order (`weight_name_comparer`).

use slm_gguf::GgmlType;

use super::ftype::FileType;

/// Broad tensor roles (`tensor_category` in llama-quant.cpp), found by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

fn is_token_embd(name: &str) -> bool {
    name == "token_embd.weight" || name == "per_layer_token_embd.weight"
}

/// The category of a tensor name (`tensor_get_category`): first matching rule wins.
pub fn category(name: &str) -> Category {
    use Category as C;
    if name == "output.weight" {
        return C::Output;
    }
    if is_token_embd(name) {
        return C::TokenEmbd;
    }
    const BY_SUBSTRING: &[(&str, Category)] = &[
        ("attn_qkv.weight", C::AttnQkv),
        ("attn_kv_b.weight", C::AttnKvB),
        ("attn_v.weight", C::AttnV),
        ("attn_k.weight", C::AttnK),
        ("attn_q.weight", C::AttnQ),
        ("attn_output.weight", C::AttnOutput),
        ("ffn_up", C::FfnUp),
        ("ffn_gate", C::FfnGate),
        ("ffn_down", C::FfnDown),
    ];
    BY_SUBSTRING
        .iter()
        .find(|(s, _)| name.contains(s))
        .map_or(C::Other, |(_, c)| *c)
}

pub(crate) fn is_attn_v_like(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// The ggml dims of a tensor without trailing 1s (`ggml_n_dims`), as llama.cpp writes them.
pub fn trim_dims(dims: &[u64]) -> Vec<u64> {
    let n = dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1);
    dims.iter().copied().take(n).collect()
}

/// Whether llama.cpp quantizes this tensor at all (`tensor_allows_quantization`); `dims` are
/// ggml dims, `quantize_output` is `--leave-output-tensor` negated.
pub fn allows_quantization(name: &str, dims: &[u64], arch: &str, quantize_output: bool) -> bool {
    // Only 2-D and 3-D (expert) tensors.
    if trim_dims(dims).len() < 2 {
        return false;
    }
    // `name.rfind("weight") == name.size() - 6`, whose unsigned wrap-around also accepts names
    // shorter than 6 bytes.
    if !(name.len() < 6 || name.ends_with("weight")) {
        return false;
    }
    if !quantize_output && name == "output.weight" {
        return false;
    }
    if name == "position_embd.weight" || name == "token_types.weight" {
        return false;
    }
    const NEVER: &[&str] = &[
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    if NEVER.iter().any(|s| name.contains(s)) {
        return false;
    }
    const NEVER_GLM5_NEXT: &[&str] = &[
        "hc_",
        "indexer.attn_q_b",
        "indexer.attn_k",
        "indexer.proj",
        "indexer_compressor_gate",
        "indexer_compressor_ape",
        "ssm_f_a.weight",
        "ssm_f_b.weight",
        "ssm_g_a.weight",
        "ssm_g_b.weight",
        "ssm_beta.weight",
        "attn_kv_a_mqa.weight",
        "attn_k_b.weight",
        "attn_v_b.weight",
    ];
    !(arch == "glm5-next" && NEVER_GLM5_NEXT.iter().any(|s| name.contains(s)))
}

/// Whether a tensor of type `ty` in mix `ftype` needs an importance matrix
/// (`tensor_requires_imatrix`).
pub fn requires_imatrix(name: &str, ty: GgmlType, ftype: FileType) -> bool {
    if is_token_embd(name) || name == "output.weight" {
        return false;
    }
    use GgmlType as T;
    match ty {
        T::IQ3_XXS | T::IQ2_XXS | T::IQ2_XS | T::IQ2_S | T::IQ1_M | T::IQ1_S => true,
        T::Q2_K => ftype == FileType::Q2_K_S,
        _ => false,
    }
}

/// `sscanf(name, "blk.%d.", &il)`: the layer number after `blk.`, if any.
pub fn layer_of(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?;
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let sign_len = usize::from(rest.starts_with(['+', '-']));
    let digits = rest
        .get(sign_len..)?
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return None;
    }
    rest.get(..sign_len + digits)?.parse::<i64>().ok()
}

/// llama.cpp's tensor order (`weight_name_comparer`): by layer number (non-layer tensors
/// first, as layer -1), then by name bytes.
pub fn llama_order(a: &str, b: &str) -> std::cmp::Ordering {
    let la = layer_of(a).unwrap_or(-1);
    let lb = layer_of(b).unwrap_or(-1);
    la.cmp(&lb).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}
