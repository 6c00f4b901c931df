//! `slm show` on the real models, checked against the reference `gguf` Python package, and its
//! one-line errors for bad inputs.

mod common;
use common::{material, repo_root, slm};

use std::process::Command;

fn check_model(file: &str, arch: &str, params: u64, class: &str) {
    let path = material(file);
    let out = slm(&["show", "--json", "--tensors", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours["architecture"], arch);
    assert_eq!(ours["parameters"], params);
    assert_eq!(ours["size_class"], class);

    let reference = Command::new("python3")
        .arg(repo_root().join("tools/golden/gguf_summary.py"))
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        reference.status.success(),
        "reference reader failed (pip install -r tools/requirements.txt): {}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();
    assert_eq!(theirs["architecture"], arch);
    let their_tensors = theirs["tensors"].as_object().unwrap();
    let our_tensors = ours["tensor_list"].as_array().unwrap();
    assert_eq!(our_tensors.len(), their_tensors.len());
    let mut elements = 0u64;
    for t in our_tensors {
        let name = t["name"].as_str().unwrap();
        let r = &their_tensors[name];
        assert_eq!(t["type"], r["type"], "{name}");
        assert_eq!(t["elements"], r["elements"], "{name}");
        assert_eq!(t["bytes"], r["bytes"], "{name}");
        elements += t["elements"].as_u64().unwrap();
    }
    assert_eq!(elements, params);
    // Per-type sums in the summary agree with the tensor list.
    for (ty, st) in ours["types"].as_object().unwrap() {
        let bytes: u64 = our_tensors
            .iter()
            .filter(|t| t["type"] == ty.as_str())
            .map(|t| t["bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(st["bytes"].as_u64().unwrap(), bytes, "{ty}");
    }
}

#[test]
fn gemma3_270m() {
    check_model("gemma-3-270m-q4_k_m.gguf", "gemma3", 268_098_176, "micro");
}

#[test]
fn smollm2_135m() {
    check_model(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "llama",
        134_515_008,
        "micro",
    );
}

#[test]
fn qwen25_coder_05b() {
    check_model(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "qwen2",
        630_167_424,
        "micro",
    );
}

fn one_line_error(args: &[&str], expect: &str) {
    let out = slm(args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(expect), "{err:?} lacks {expect:?}");
}

#[test]
fn clear_errors() {
    let dir = std::env::temp_dir().join(format!("slm-show-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    one_line_error(
        &["show", dir.join("nope.gguf").to_str().unwrap()],
        "No such file",
    );

    let not_gguf = dir.join("model.txt");
    std::fs::write(&not_gguf, b"hello world, not a model").unwrap();
    one_line_error(&["show", not_gguf.to_str().unwrap()], "not a GGUF file");

    let full = std::fs::read(material("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &full[..100_000]).unwrap();
    one_line_error(&["show", truncated.to_str().unwrap()], "truncated");
    std::fs::write(&truncated, &full[..full.len() - 1000]).unwrap();
    one_line_error(&["show", truncated.to_str().unwrap()], "past the end");
    std::fs::remove_dir_all(&dir).unwrap();
}
