//! Exactness against llama.cpp's own tokenizer test pairs: every `ggml-vocab-NAME.gguf` with
//! `.inp`/`.out` whose family is SPM or byte-level BPE (as in llama.cpp's test-tokenizer-0:
//! add_special = false, parse_special = false).

mod common;

fn check(name: &str) {
    let tok = common::load(&format!("vocab/ggml-vocab-{name}.gguf"));
    let cases = common::read_cases(name);
    assert!(cases.len() >= 40, "{name}: only {} cases", cases.len());
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = tok.encode(text, false, false).unwrap();
        if &got != want {
            failures.push(format!("{text:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn llama_spm() {
    check("llama-spm");
}
#[test]
fn phi_3() {
    check("phi-3");
}
#[test]
fn gpt_2() {
    check("gpt-2");
}
#[test]
fn llama_bpe() {
    check("llama-bpe");
}
#[test]
fn qwen2() {
    check("qwen2");
}
#[test]
fn qwen35() {
    check("qwen35");
}
#[test]
fn deepseek_coder() {
    check("deepseek-coder");
}
#[test]
fn deepseek_llm() {
    check("deepseek-llm");
}
#[test]
fn falcon() {
    check("falcon");
}
#[test]
fn mpt() {
    check("mpt");
}
#[test]
fn refact() {
    check("refact");
}
#[test]
fn starcoder() {
    check("starcoder");
}
#[test]
fn command_r() {
    check("command-r");
}
#[test]
fn gemma_4() {
    check("gemma-4");
}
