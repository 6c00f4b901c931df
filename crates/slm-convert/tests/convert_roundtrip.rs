//! `export_hf` then `plan(..).write` (slm export-hf, then slm convert --outtype f32):
//! - tiny qwen2/qwen3/phi3 (llama.cpp's F32 conversions, `slm-model/tests/fixtures/arch`): the
//!   round trip gives back every tensor byte for byte and every metadata entry except
//!   `general.name`/`general.size_label` (taken from the new folder);
//! - the real SmolLM2-135M-Instruct Q4_1 (`$SLM_MATERIAL`, tools/material.py): the F32 file from
//!   the exported folder holds exactly the dequantized weights (checked tensor by tensor against
//!   the original), the same metadata and tokenization of botchan.txt, and the same greedy
//!   tokens as the original. Its perplexity on botchan.txt (-c 512, 3 chunks) is within 0.1% of
//!   llama.cpp's llama-perplexity on the very same file (sha256 checked;
//!   `tests/fixtures/smollm2-roundtrip-ppl-llamacpp.json`, tools/golden/convert_roundtrip_ppl.py),
//!   and within 1% of the Q4_1 original's (the original multiplies with Q8_1-quantized
//!   activations, the F32 file in f32, hence a small real gap: 0.35% over 3 chunks).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use slm_convert::hf::{export_hf, plan, ConvertOptions};
use slm_gguf::{GgmlType, GgufFile};
use slm_model::{eval, Model};
use slm_tokenizer::Tokenizer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slm-roundtrip-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Export `src` to a folder and convert it back to F32; returns (folder, new gguf).
fn round_trip(src: &Path, work: &Path) -> PathBuf {
    let hf = work.join("hf");
    export_hf(src, &hf, &mut |_, _, _| {}).expect("export");
    let p = plan(
        &hf,
        &ConvertOptions {
            outtype: GgmlType::F32,
            pre: None,
        },
    )
    .expect("plan");
    let out = work.join("back-f32.gguf");
    p.write(&out, &mut |_, _, _| {}).expect("write");
    out
}

const RENAMED: [&str; 2] = ["general.name", "general.size_label"];

fn same_metadata(a: &GgufFile, b: &GgufFile, skip: &[&str]) {
    let keys = |g: &GgufFile| {
        let mut k: Vec<String> = g
            .metadata()
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !skip.contains(&k.as_str()))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(a), keys(b), "metadata keys");
    for (k, v) in a.metadata() {
        if !skip.contains(&k.as_str()) {
            assert_eq!(b.get(k), Some(v), "metadata {k}");
        }
    }
}

fn tiny(arch: &str) {
    let src = root().join(format!("../slm-model/tests/fixtures/arch/tiny-{arch}.gguf"));
    let work = scratch(arch);
    let back = round_trip(&src, &work);
    let a = GgufFile::open(&src).unwrap();
    let b = GgufFile::open(&back).unwrap();
    same_metadata(&a, &b, &RENAMED);
    assert_eq!(a.tensors().len(), b.tensors().len());
    for t in a.tensors() {
        let (bt, bd) = b
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{arch}: {} lost", t.name));
        assert_eq!((bt.ty, &bt.dims), (t.ty, &t.dims), "{arch}: {}", t.name);
        assert!(bd == a.tensor_data(t), "{arch}: {} bytes differ", t.name);
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn tiny_qwen2_round_trips() {
    tiny("qwen2");
}

#[test]
fn tiny_qwen3_round_trips() {
    tiny("qwen3");
}

#[test]
fn tiny_phi3_round_trips() {
    tiny("phi3");
}

#[test]
fn llama3_rope_freqs_refuse_export_clearly() {
    let src = root().join("../slm-model/tests/fixtures/arch/tiny-llama.gguf");
    let work = scratch("llama");
    let e = export_hf(&src, &work.join("hf"), &mut |_, _, _| {})
        .expect_err("rope_freqs cannot be exported");
    assert!(e.to_string().contains("rope_freqs"), "{e}");
    std::fs::remove_dir_all(&work).unwrap();
}

fn material(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slm-material")
        });
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `python3 tools/material.py` (or set SLM_MATERIAL)",
        p.display()
    );
    p
}

fn load(path: &Path) -> Model {
    let mut m = Model::from_file(Arc::new(GgufFile::open(path).unwrap())).expect("load");
    m.set_threads(2);
    m
}

/// Perplexity over the first `chunks` chunks of 512 tokens of botchan.txt.
fn ppl(model: &mut Model, tokens: &[u32], chunks: usize) -> f64 {
    eval::perplexity(model, tokens, 512, chunks, None, |_, _| {})
        .expect("perplexity")
        .ppl
}

fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn real_smollm2_q4_1_round_trip_slow() {
    let src = material("SmolLM2-135M-Instruct.Q4_1.gguf");
    let text = std::fs::read_to_string(material("botchan.txt")).unwrap();
    let work = scratch("smollm2");
    let back = round_trip(&src, &work);
    let a = GgufFile::open(&src).unwrap();
    let b = GgufFile::open(&back).unwrap();

    // Every tensor of the F32 file is the original dequantized (Q/K un-permuted on export and
    // permuted again on conversion).
    assert_eq!(a.tensors().len(), b.tensors().len());
    for t in a.tensors() {
        let (bt, bd) = b.tensor(&t.name).unwrap();
        assert_eq!(bt.dims, t.dims, "{}", t.name);
        assert_eq!(bt.ty, GgmlType::F32, "{}", t.name);
        let mut want = vec![0f32; t.n_elements as usize];
        let ne0 = t.dims[0] as usize;
        let rb = t.ty.row_bytes(ne0 as u64).unwrap() as usize;
        for (dst, src) in want.chunks_mut(ne0).zip(a.tensor_data(t).chunks(rb)) {
            slm_quant::dequantize_row(t.ty, src, dst).unwrap();
        }
        let got: Vec<f32> = bd
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(
            got == want,
            "{}: values differ from the dequantized original",
            t.name
        );
    }
    // Tokenizer and hyperparameters survive; general.* and file_type are the new file's.
    same_metadata(
        &a,
        &b,
        &[
            "general.name",
            "general.size_label",
            "general.organization",
            "general.finetune",
            "general.basename",
            "general.license",
            "general.languages",
            "general.file_type",
        ],
    );

    let mut orig = load(&src);
    let mut conv = load(&back);
    let tok = Tokenizer::from_gguf(&a).expect("tokenizer");
    let tokens = tok.encode(&text, true, false).expect("encode");
    let tokens_back = Tokenizer::from_gguf(&b)
        .expect("tokenizer of the converted file")
        .encode(&text, true, false)
        .expect("encode");
    assert!(
        tokens == tokens_back,
        "the converted tokenizer tokenizes botchan differently"
    );
    // llama.cpp's figure applies to exactly this file.
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/smollm2-roundtrip-ppl-llamacpp.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        sha256_file(&back),
        golden["gguf_sha256"].as_str().unwrap(),
        "the round-tripped file changed: rerun tools/golden/convert_roundtrip_ppl.py"
    );
    let chunks = 3;
    let (p0, p1) = (
        ppl(&mut orig, &tokens, chunks),
        ppl(&mut conv, &tokens, chunks),
    );
    let want = golden["ppl_3_chunks"].as_f64().unwrap();
    eprintln!(
        "SmolLM2 botchan -c 512 --chunks {chunks}: Q4_1 {p0:.4}, round-tripped F32 {p1:.4}, \
         llama.cpp on the same F32 file {want:.4}"
    );
    assert!(
        (p1 - want).abs() / want < 1e-3,
        "F32: slm {p1} vs llama.cpp {want}"
    );
    assert!((p1 - p0).abs() / p0 < 1e-2, "F32 {p1} vs Q4_1 {p0}");

    let prompt = tok
        .encode("The old man said to the boy", true, false)
        .expect("encode");
    let mut kv0 = orig.new_kv_cache(128);
    let mut kv1 = conv.new_kv_cache(128);
    let g0 = eval::greedy(&mut orig, &mut kv0, 0, &prompt, 24).expect("greedy");
    let g1 = eval::greedy(&mut conv, &mut kv1, 0, &prompt, 24).expect("greedy");
    // The F32 file computes with f32 activations, the Q4_1 one with Q8_1-quantized ones, so
    // greedy may part at a near-tie: where it does, the two picks must be within 0.5 nats in
    // the original (SmolLM2's tie margin against llama.cpp too), after at least 6 equal tokens.
    if let Some(k) = (0..g0.len()).find(|&k| g0[k] != g1[k]) {
        assert!(
            k >= 6,
            "greedy continuations part at token {k}: {g0:?} vs {g1:?}"
        );
        let mut ctx = prompt.clone();
        ctx.extend_from_slice(&g0[..k]);
        let mut kv = orig.new_kv_cache(128);
        let logits = orig
            .forward(&slm_model::Batch::sequence(&ctx, 0, 0), &mut kv)
            .expect("forward");
        let row = logits.last().expect("logits");
        let gap = eval::nll(row, g1[k]) - eval::nll(row, g0[k]);
        eprintln!("greedy parts at token {k}, gap {gap:.3} nats in the Q4_1 original");
        assert!(
            gap < 0.5,
            "greedy continuations part at token {k} with a gap of {gap:.3} nats"
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}
