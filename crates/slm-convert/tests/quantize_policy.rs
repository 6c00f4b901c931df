//! The per-tensor type policy against llama.cpp's own choices: `fixtures/quantize/policy.json`
//! holds, for synthetic llama models (32/12/30/7 layers, GQA 1/4/3/2, tied or separate
//! output, rows of 256 or 576), the type llama.cpp's `llama_model_quantize` gave every tensor
//! for every mix, with and without an importance matrix (tools/golden/quantize_ref.py). slm's
//! policy must choose the same types and order the tensors the same way.

use std::path::PathBuf;

use serde_json::Value as Json;
use slm_convert::quantize::policy::{choose_types, ModelParams, PolicyOptions, TensorDesc};
use slm_convert::quantize::FileType;
use slm_gguf::GgmlType;

fn fixture(name: &str) -> Json {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/quantize")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn u32_of(v: &Json, key: &str) -> u32 {
    v[key].as_u64().unwrap() as u32
}

fn options(mix: &Json) -> PolicyOptions {
    PolicyOptions {
        ftype: FileType::parse(mix["type"].as_str().unwrap()).unwrap(),
        pure: false,
        quantize_output: true,
        output_tensor_type: None,
        token_embedding_type: None,
        overrides: Vec::new(),
        has_imatrix: mix["imatrix"].as_bool().unwrap(),
    }
}

#[test]
fn quantize_policy_matches_llama_cpp_on_synthetic_models() {
    let fx = fixture("policy.json");
    let mut checked = 0;
    for m in fx["models"].as_array().unwrap() {
        let label = m["label"].as_str().unwrap();
        let model = ModelParams {
            arch: m["arch"].as_str().unwrap().to_string(),
            n_layer: u32_of(m, "n_layer"),
            n_expert: u32_of(m, "n_expert"),
            n_head: u32_of(m, "n_head"),
            n_head_kv: u32_of(m, "n_head_kv"),
        };
        let tensors: Vec<TensorDesc> = m["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| TensorDesc {
                name: t[0].as_str().unwrap().to_string(),
                dims: t[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect(),
                ty: GgmlType::from_name(t[2].as_str().unwrap()).unwrap(),
            })
            .collect();
        let order: Vec<&str> = m["order"].as_str().unwrap().split(' ').collect();
        for mix in m["mixes"].as_array().unwrap() {
            let opts = options(mix);
            let (chosen, _) = choose_types(&model, &opts, &tensors).unwrap();
            let names: Vec<&str> = chosen.iter().map(|(t, _)| t.name.as_str()).collect();
            assert_eq!(names, order, "{label}: tensor order");
            let want: Vec<&str> = mix["types"].as_str().unwrap().split(' ').collect();
            for ((t, got), want) in chosen.iter().zip(&want) {
                assert_eq!(
                    got.name(),
                    *want,
                    "{label} {} imatrix={}: tensor {} ({:?})",
                    opts.ftype,
                    opts.has_imatrix,
                    t.name,
                    t.dims
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} mixes in the fixture");
}

/// Hand-made cases the fixture cannot show: --pure, overrides, output/embedding types,
/// experts parsed from names.
#[test]
fn quantize_policy_options() {
    let model = ModelParams {
        arch: "llama".into(),
        n_layer: 8,
        n_expert: 0,
        n_head: 8,
        n_head_kv: 8,
    };
    let t = |name: &str, dims: &[u64]| TensorDesc {
        name: name.into(),
        dims: dims.to_vec(),
        ty: GgmlType::F32,
    };
    let mut tensors = vec![
        t("token_embd.weight", &[256, 100]),
        t("output.weight", &[256, 100]),
        t("output_norm.weight", &[256]),
    ];
    for i in 0..8 {
        tensors.push(t(&format!("blk.{i}.attn_v.weight"), &[256, 256]));
        tensors.push(t(&format!("blk.{i}.ffn_down.weight"), &[256, 256]));
        tensors.push(t(&format!("blk.{i}.ffn_up.weight"), &[320, 256]));
    }
    let types = |opts: &PolicyOptions| -> Vec<(String, GgmlType)> {
        let (c, _) = choose_types(&model, opts, &tensors).unwrap();
        c.into_iter().map(|(t, ty)| (t.name, ty)).collect()
    };
    let get = |v: &[(String, GgmlType)], n: &str| v.iter().find(|(m, _)| m == n).unwrap().1;
    let mut opts = PolicyOptions {
        ftype: FileType::Q4_K_M,
        pure: false,
        quantize_output: true,
        output_tensor_type: None,
        token_embedding_type: None,
        overrides: Vec::new(),
        has_imatrix: false,
    };
    let v = types(&opts);
    assert_eq!(get(&v, "output.weight"), GgmlType::Q6_K);
    assert_eq!(get(&v, "token_embd.weight"), GgmlType::Q4_K);
    assert_eq!(get(&v, "output_norm.weight"), GgmlType::F32);
    assert_eq!(get(&v, "blk.0.attn_v.weight"), GgmlType::Q6_K);
    assert_eq!(get(&v, "blk.1.attn_v.weight"), GgmlType::Q4_K);
    // 320 is not a multiple of 256: Q4_K falls back to Q5_0.
    assert_eq!(get(&v, "blk.3.ffn_up.weight"), GgmlType::Q5_0);

    opts.pure = true;
    let v = types(&opts);
    assert_eq!(get(&v, "output.weight"), GgmlType::Q4_K);
    assert_eq!(get(&v, "blk.0.attn_v.weight"), GgmlType::Q4_K);
    assert_eq!(get(&v, "blk.3.ffn_up.weight"), GgmlType::Q5_0);

    opts.pure = false;
    opts.overrides = vec![
        (regex::Regex::new("attn_v").unwrap(), GgmlType::Q8_0),
        (
            regex::Regex::new(r"blk\.[0-3]\.ffn").unwrap(),
            GgmlType::Q5_K,
        ),
    ];
    opts.output_tensor_type = Some(GgmlType::Q8_0);
    opts.token_embedding_type = Some(GgmlType::F16);
    let v = types(&opts);
    assert_eq!(get(&v, "output.weight"), GgmlType::Q8_0);
    assert_eq!(get(&v, "token_embd.weight"), GgmlType::F16);
    assert_eq!(get(&v, "blk.5.attn_v.weight"), GgmlType::Q8_0);
    assert_eq!(get(&v, "blk.2.ffn_down.weight"), GgmlType::Q5_K);
    assert_eq!(get(&v, "blk.2.ffn_up.weight"), GgmlType::Q5_1); // Q5_K fallback
                                                                // llama.cpp's ffn_down counter only advances for tensors its rules see: overridden layers
                                                                // 0-3 are skipped, so blk.4 counts as layer 0 (more bits) and blk.6 as layer 2 (not).
    assert_eq!(get(&v, "blk.4.ffn_down.weight"), GgmlType::Q6_K);
    assert_eq!(get(&v, "blk.6.ffn_down.weight"), GgmlType::Q4_K);

    opts.quantize_output = false;
    let v = types(&opts);
    assert_eq!(get(&v, "output.weight"), GgmlType::F32);

    // Experts: the layer comes from the name; a name without one is an error.
    let moe = ModelParams {
        n_expert: 8,
        ..model.clone()
    };
    let opts = PolicyOptions {
        ftype: FileType::Q3_K_M,
        overrides: Vec::new(),
        output_tensor_type: None,
        token_embedding_type: None,
        quantize_output: true,
        ..opts
    };
    let exps = vec![t("blk.0.ffn_down_exps.weight", &[256, 256, 8])];
    let (c, _) = choose_types(&moe, &opts, &exps).unwrap();
    assert_eq!(c[0].1, GgmlType::Q4_K);
    let bad = vec![t("ffn_down_exps.weight", &[256, 256, 8])];
    assert!(choose_types(&moe, &opts, &bad).is_err());
}
