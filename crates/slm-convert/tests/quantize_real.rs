//! `slm quantize` byte for byte against llama.cpp on a real model (slow: ~540 MB F32 source).
//!
//! The source: the real SmolLM2-135M-Instruct Q4_1 from `$SLM_MATERIAL`, requantized to F32
//! by slm itself (`--allow-requantize`); its sha256 must equal that of llama.cpp's own F32
//! requantization of the same file. Then each mix in `fixtures/quantize/real.json`
//! (tools/golden/quantize_ref.py: llama.cpp's `llama_model_quantize` through
//! llama-cpp-python 0.3.36 from that same F32 file) must come out with llama.cpp's sha256. On a
//! mismatch the test names the first tensor whose type or bytes differ.
//!
//! CI runs [`CI_MIXES`]; `SLM_QUANTIZE_ALL=1` runs every mix of the fixture,
//! `SLM_QUANTIZE_ONLY=IQ3_XXS+imatrix,Q6_K` the ones named.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use slm_convert::quantize::{quantize_file, FileType, QuantizeOptions, QuantizeReport};
use slm_gguf::GgufFile;

/// The mixes checked by default (about a minute on 2 cores): the five, plus F16, a
/// K-quant mix with the Q3_K_M layer schedule, and one with an importance matrix. The slow
/// ones (IQ4_NL/IQ4_XS ~1 min each) run with `SLM_QUANTIZE_ALL=1`.
const CI_MIXES: &[(&str, bool)] = &[
    ("Q8_0", false),
    ("Q5_1", false),
    ("Q4_0", false),
    ("Q4_K_M", false),
    ("TQ2_0", false),
    ("F16", false),
    ("Q3_K_M", false),
    ("Q4_0", true),
];

fn material(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/slm-material"),
        PathBuf::from,
    );
    let p = dir.join(name);
    assert!(
        p.exists(),
        "test material {} is missing: run `python3 tools/material.py` first",
        p.display()
    );
    p
}

fn sha256_file(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The synthetic importance matrix of the fixture (`imatrix_value` in quantize_ref.py).
fn imatrix_for(source: &GgufFile) -> BTreeMap<String, Vec<f32>> {
    let mut m = BTreeMap::new();
    for t in source.tensors() {
        let dims: Vec<u64> = slm_convert::quantize::policy::trim_dims(&t.dims);
        if dims.len() < 2 || !t.name.ends_with("weight") {
            continue;
        }
        let layer = slm_convert::quantize::policy::layer_of(&t.name)
            .filter(|_| t.name.starts_with("blk."))
            .unwrap_or(-1);
        let n_mat: u64 = dims.iter().skip(2).product();
        let row: Vec<f32> = (0..dims[0] as i64)
            .map(|j| 0.25 + ((j * 7 + (layer + 1) * 3) % 16) as f32 * 0.125)
            .collect();
        m.insert(t.name.clone(), row.repeat(n_mat as usize));
    }
    m
}

/// The first tensor whose type or bytes differ from llama.cpp's, for the failure message.
fn first_difference(mix: &Json, names: &[&str], out: &Path, report: &QuantizeReport) -> String {
    let want_types: Vec<&str> = mix["types"].as_str().unwrap().split(' ').collect();
    for (i, t) in report.tensors.iter().enumerate() {
        if names.get(i) != Some(&t.name.as_str()) {
            return format!(
                "tensor #{i}: slm writes {}, llama.cpp {:?}",
                t.name,
                names.get(i)
            );
        }
        if want_types.get(i) != Some(&t.dst_type.name()) {
            return format!(
                "tensor {}: slm chose {}, llama.cpp {:?}",
                t.name,
                t.dst_type,
                want_types.get(i)
            );
        }
    }
    let digests: Vec<&str> = mix["tensor_sha256"]
        .as_str()
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    let file = GgufFile::open(out).unwrap();
    for (i, t) in report.tensors.iter().enumerate() {
        let (_, data) = file.tensor(&t.name).unwrap();
        let d = hex(&Sha256::digest(data));
        if let Some(want) = digests.get(i) {
            if !d.starts_with(want) {
                return format!("tensor {} ({}): data differs", t.name, t.dst_type);
            }
        }
    }
    "every tensor's type and data agree: the header (metadata or layout) differs".into()
}

#[test]
fn quantize_real_smollm2_byte_identical_to_llama_cpp() {
    let fx_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quantize/real.json");
    let fx: Json = serde_json::from_str(&std::fs::read_to_string(&fx_path).unwrap()).unwrap();
    let src = material(fx["source"].as_str().unwrap());
    let dir = std::env::temp_dir().join(format!("slm-quantize-real-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Requantizing a quantized file is refused without the flag.
    let f32_path = dir.join("smollm2-f32.gguf");
    let err = quantize_file(&src, &f32_path, &QuantizeOptions::new(FileType::F32)).unwrap_err();
    assert!(err.to_string().contains("--allow-requantize"), "{err}");

    let mut opts = QuantizeOptions::new(FileType::F32);
    opts.allow_requantize = true;
    let r = quantize_file(&src, &f32_path, &opts).unwrap();
    assert_eq!(r.n_tensors, 272);
    assert_eq!(
        sha256_file(&f32_path),
        fx["f32_sha256"].as_str().unwrap(),
        "slm's F32 requantization differs from llama.cpp's"
    );
    let f32_file = GgufFile::open(&f32_path).unwrap();
    let imatrix = imatrix_for(&f32_file);
    drop(f32_file);

    let names: Vec<&str> = fx["names"].as_str().unwrap().split(' ').collect();
    let all = std::env::var_os("SLM_QUANTIZE_ALL").is_some();
    let only: Option<Vec<String>> = std::env::var("SLM_QUANTIZE_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let mut failures = Vec::new();
    let mut n_checked = 0;
    for mix in fx["mixes"].as_array().unwrap() {
        let ty = mix["type"].as_str().unwrap();
        let with_im = mix["imatrix"].as_bool().unwrap();
        let label = if with_im {
            format!("{ty}+imatrix")
        } else {
            ty.to_string()
        };
        let selected = match &only {
            Some(names) => names.contains(&label),
            None => all || CI_MIXES.contains(&(ty, with_im)),
        };
        if !selected {
            continue;
        }
        let mut opts = QuantizeOptions::new(FileType::parse(ty).unwrap());
        if with_im {
            opts.imatrix = Some(imatrix.clone());
        }
        let out = dir.join(format!("out-{ty}-{with_im}.gguf"));
        let t0 = std::time::Instant::now();
        let report = quantize_file(&f32_path, &out, &opts)
            .unwrap_or_else(|e| panic!("{ty} imatrix={with_im}: {e}"));
        let got = sha256_file(&out);
        eprintln!(
            "{ty:8} imatrix={with_im:5} {:>11} B  {:.1} s  {}",
            report.output_file_bytes,
            t0.elapsed().as_secs_f64(),
            if got == mix["sha256"].as_str().unwrap() {
                "identical"
            } else {
                "DIFFERS"
            }
        );
        if got != mix["sha256"].as_str().unwrap() {
            failures.push(format!(
                "{ty} imatrix={with_im}: sha256 {got} != llama.cpp's {}; {}",
                mix["sha256"],
                first_difference(mix, &names, &out, &report)
            ));
        }
        std::fs::remove_file(&out).ok();
        n_checked += 1;
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        n_checked >= 5 || only.is_some(),
        "only {n_checked} mixes checked"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
