//! The real model files the engine runs (Gemma 3 270M, Qwen2.5-Coder 0.5B, SmolLM2 135M) encode
//! exactly as Hugging Face `tokenizers` does: ids in `tests/golden/tokenizer_ref.json`, made by
//! `tools/golden/tokenizer_ref.py` (see there for what each reference is).

mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};

fn golden() -> Value {
    let text = include_str!("golden/tokenizer_ref.json");
    serde_json::from_str(text).expect("golden json")
}

fn check_model(name: &str) {
    let g = golden();
    let m = &g["models"][name];
    let tok = common::load(m["gguf"].as_str().unwrap());
    let cases = m["cases"].as_array().unwrap();
    assert!(cases.len() > 50);
    let mut failures = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let parse_special = c["parse_special"].as_bool().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, false, parse_special).unwrap();
        if got != want {
            failures.push(format!("{text:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let botchan = std::fs::read_to_string(common::material("botchan.txt")).unwrap();
    let ids = tok.encode(&botchan, false, false).unwrap();
    let mut h = Sha256::new();
    for id in &ids {
        h.update(id.to_le_bytes());
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        ids.len() as u64,
        m["botchan"]["n_ids"].as_u64().unwrap(),
        "{name}: botchan id count"
    );
    assert_eq!(
        digest,
        m["botchan"]["sha256"].as_str().unwrap(),
        "{name}: botchan ids differ"
    );
}

#[test]
fn gemma3_matches_hf_tokenizer_json() {
    check_model("gemma3");
}

#[test]
fn qwen25_matches_hf_tokenizer_json() {
    check_model("qwen25");
}

#[test]
fn smollm2_matches_hf_bpe_over_its_vocab() {
    check_model("smollm2");
}
