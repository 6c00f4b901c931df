//! slm's converter against llama.cpp's, on the tiny random-weight HF models of
//! `tools/golden/arch_hf_tiny.py` (llama with Llama 3 RoPE scaling, qwen2, qwen3, phi3 with
//! LongRoPE): the committed HF folders (`tests/fixtures/hf/hf-<arch>/` + the shared
//! `tokenizer.model`) are converted with `--outtype f32` and compared with the GGUF llama.cpp's
//! `convert_hf_to_gguf.py --outtype f32` made from the same folders
//! (`slm-model/tests/fixtures/arch/tiny-<arch>.gguf`; the script reproduces those bytes):
//! - every tensor: same name, order, type, dims and bytes;
//! - every metadata key and value, except [`INTENDED`];
//! - slm's logits on slm's file equal transformers' logits (`tiny-<arch>-logits.json`).
//!
//! The f16 and q8_0 outputs are checked tensor by tensor against the PyPI `gguf` package's
//! quantizers applied to llama.cpp's F32 file (`tools/golden/convert_quant_check.py`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value as Json;
use slm_convert::hf::{plan, ConvertOptions};
use slm_gguf::{GgmlType, GgufFile};
use slm_model::{Batch, Model};

/// Metadata keys slm writes differently on purpose (none for these models today; the list is
/// kept so a difference has to be named here to pass).
const INTENDED: &[&str] = &[];

/// Max |logit difference| vs transformers (as `slm-model/tests/arch_tiny.rs`).
const TOL: f32 = 5e-4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn llamacpp_gguf(arch: &str) -> PathBuf {
    let p = root().join(format!("../slm-model/tests/fixtures/arch/tiny-{arch}.gguf"));
    assert!(
        p.exists(),
        "{} missing (tools/golden/arch_hf_tiny.py)",
        p.display()
    );
    p
}

/// A temporary copy of the HF folder, named `hf-<arch>` like the one llama.cpp converted
/// (general.name comes from the folder name).
fn hf_folder(arch: &str, tag: &str) -> PathBuf {
    let src = root().join("tests/fixtures/hf");
    let dir = scratch(tag).join(format!("hf-{arch}"));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer_config.json"] {
        std::fs::copy(src.join(format!("hf-{arch}")).join(f), dir.join(f))
            .unwrap_or_else(|e| panic!("fixture hf-{arch}/{f}: {e}"));
    }
    std::fs::copy(src.join("tokenizer.model"), dir.join("tokenizer.model")).unwrap();
    dir
}

/// This process's scratch folder for conversions tagged `tag`.
fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("slm-convert-{}-{tag}", std::process::id()))
}

fn convert(arch: &str, ty: GgmlType, tag: &str) -> PathBuf {
    let dir = hf_folder(arch, tag);
    let opts = ConvertOptions {
        outtype: ty,
        pre: None,
    };
    let p = plan(&dir, &opts).expect("plan");
    let out = dir.join(format!("{arch}-{}.gguf", ty.name()));
    p.write(&out, &mut |_, _, _| {}).expect("write");
    out
}

fn compare_with_llamacpp(arch: &str) -> PathBuf {
    let ours_path = convert(arch, GgmlType::F32, "f32");
    let ours = GgufFile::open(&ours_path).expect("open ours");
    let theirs = GgufFile::open(&llamacpp_gguf(arch)).expect("open llama.cpp's");

    // Tensors: same order, names, types, dims, bytes.
    let a: Vec<_> = ours.tensors().iter().map(|t| &t.name).collect();
    let b: Vec<_> = theirs.tensors().iter().map(|t| &t.name).collect();
    assert_eq!(a, b, "{arch}: tensor names/order");
    for t in theirs.tensors() {
        let (o, od) = ours.tensor(&t.name).unwrap();
        assert_eq!((o.ty, &o.dims), (t.ty, &t.dims), "{arch}: {}", t.name);
        assert!(
            od == theirs.tensor_data(t),
            "{arch}: tensor {} bytes differ",
            t.name
        );
    }
    // Metadata: same keys with the same values, except the intended differences.
    let keys = |g: &GgufFile| -> Vec<String> {
        let mut k: Vec<String> = g
            .metadata()
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !INTENDED.contains(&k.as_str()))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(&theirs), "{arch}: metadata keys");
    for (k, v) in theirs.metadata() {
        if INTENDED.contains(&k.as_str()) {
            continue;
        }
        assert_eq!(ours.get(k), Some(v), "{arch}: metadata {k}");
    }
    ours_path
}

fn logits_match_transformers(arch: &str, gguf: &Path) {
    let fx = root().join(format!(
        "../slm-model/tests/fixtures/arch/tiny-{arch}-logits.json"
    ));
    let doc: Json = serde_json::from_str(&std::fs::read_to_string(fx).unwrap()).unwrap();
    let mut model = Model::from_file(Arc::new(GgufFile::open(gguf).unwrap())).expect("load");
    model.set_threads(2);
    let mut worst = 0.0f32;
    for c in doc["cases"].as_array().unwrap() {
        let ids: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect();
        let mut kv = model.new_kv_cache(64);
        let mut b = Batch::new();
        for (i, &t) in ids.iter().enumerate() {
            b.push(t, i as u32, 0, true);
        }
        let out = model.forward(&b, &mut kv).expect("forward");
        for (i, want) in c["logits"].as_array().unwrap().iter().enumerate() {
            let got = out.get(i).unwrap();
            let want: Vec<f32> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(got.len(), want.len());
            let d = got
                .iter()
                .zip(&want)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(d < TOL, "{arch} position {i}: max |diff| {d}");
            worst = worst.max(d);
        }
    }
    eprintln!("{arch}: slm-converted F32, max |logit diff| vs transformers {worst:.2e}");
}

/// Our f16 / q8_0 files against gguf-py's quantizers on llama.cpp's F32 tensors.
fn quant_matches_gguf_py(arch: &str) {
    let f16 = convert(arch, GgmlType::F16, "f16");
    let q8 = convert(arch, GgmlType::Q8_0, "q8");
    let script = root().join("../../tools/golden/convert_quant_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(llamacpp_gguf(arch))
        .arg(&f16)
        .arg(&q8)
        .output()
        .expect("python3 (with the gguf package of tools/requirements.txt) is needed");
    assert!(
        out.status.success(),
        "{arch}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(arch: &str) {
    let ours = compare_with_llamacpp(arch);
    logits_match_transformers(arch, &ours);
    quant_matches_gguf_py(arch);
    // Each conversion has its own folder under the temp dir: remove those only.
    for tag in ["f32", "f16", "q8"] {
        let _ = std::fs::remove_dir_all(scratch(tag).join(format!("hf-{arch}")));
    }
}

#[test]
fn llama3_converts_like_llamacpp() {
    check("llama");
}

#[test]
fn qwen2_converts_like_llamacpp() {
    check("qwen2");
}

#[test]
fn qwen3_converts_like_llamacpp() {
    check("qwen3");
}

#[test]
fn phi3_converts_like_llamacpp() {
    check("phi3");
}

#[test]
fn dry_run_plan_and_errors() {
    let dir = hf_folder("qwen3", "plan");
    let p = plan(&dir, &ConvertOptions::default()).expect("plan");
    let j = p.to_json();
    assert_eq!(j["architecture"], "qwen3");
    let tensors = j["tensors"].as_array().unwrap();
    let q = tensors
        .iter()
        .find(|t| t["name"] == "blk.0.attn_q.weight")
        .unwrap();
    assert_eq!(q["type"], "F16");
    let n = tensors
        .iter()
        .find(|t| t["name"] == "blk.0.attn_q_norm.weight")
        .unwrap();
    assert_eq!(n["type"], "F32");
    // Unsupported architecture: one clear error naming it.
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("Qwen3ForCausalLM", "MambaForCausalLM"),
    )
    .unwrap();
    let e = plan(&dir, &ConvertOptions::default()).err().unwrap();
    assert!(e.to_string().contains("MambaForCausalLM"), "{e}");
    // Missing tokenizer.
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    std::fs::remove_file(dir.join("tokenizer.model")).unwrap();
    let e = plan(&dir, &ConvertOptions::default()).err().unwrap();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
    // Missing weights.
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = plan(&dir, &ConvertOptions::default()).err().unwrap();
    assert!(e.to_string().contains("model.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
