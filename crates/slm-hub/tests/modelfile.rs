//! `slm create` from Ollama's Modelfile syntax: every supported instruction, multi-line values,
//! clear errors for what is not supported, and the stored layers with Ollama's media types.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slm_hub::modelfile::{create, parse};
use slm_hub::{ModelName, Store};

const MODELFILE: &str = r#"
# a comment
FROM ./tiny.gguf
PARAMETER temperature 0.7
PARAMETER num_ctx 2048
PARAMETER stop "<|im_end|>"
PARAMETER stop <end>
TEMPLATE """{{ if .System }}<|system|>{{ .System }}{{ end }}
<|user|>{{ .Prompt }}
<|assistant|>"""
SYSTEM You are a terse assistant.
MESSAGE user Hi
MESSAGE assistant "Hello."
LICENSE """MIT
text"""
"#;

#[test]
fn parses_every_supported_instruction() {
    let mf = parse(MODELFILE).unwrap();
    assert_eq!(mf.from, "./tiny.gguf");
    assert_eq!(mf.parameters["temperature"], 0.7);
    assert_eq!(mf.parameters["num_ctx"], 2048);
    assert_eq!(
        mf.parameters["stop"],
        serde_json::json!(["<|im_end|>", "<end>"])
    );
    assert_eq!(
        mf.template.as_deref(),
        Some("{{ if .System }}<|system|>{{ .System }}{{ end }}\n<|user|>{{ .Prompt }}\n<|assistant|>")
    );
    assert_eq!(mf.system.as_deref(), Some("You are a terse assistant."));
    assert_eq!(
        mf.messages,
        vec![
            ("user".into(), "Hi".into()),
            ("assistant".into(), "Hello.".into())
        ]
    );
    assert_eq!(mf.licenses, vec!["MIT\ntext".to_string()]);
}

#[test]
fn unsupported_or_malformed_input_is_a_clear_error() {
    for (text, want) in [
        ("PARAMETER temperature 0.1", "no FROM"),
        ("FROM a\nFROM b", "more than one FROM"),
        ("FROM a\nADAPTER ./lora.gguf", "ADAPTER"),
        (
            "FROM a\nPARAMETER flash_attn true",
            "unsupported PARAMETER flash_attn",
        ),
        ("FROM a\nPARAMETER num_ctx lots", "integer"),
        ("FROM a\nPARAMETER temperature nan", "number"),
        (
            "FROM a\nPARAMETER temperature 1\nPARAMETER temperature 2",
            "twice",
        ),
        ("FROM a\nTEMPLATE \"\"\"never closed", "unterminated"),
        ("FROM a\nSYSTEM \"open", "unterminated quote"),
        ("FROM a\nMESSAGE tool hi", "role"),
        ("FROM a\nQUANTIZE q4", "unknown instruction"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn create_stores_model_and_text_layers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    std::fs::write(dir.path().join("tiny.gguf"), b"GGUF tiny model").unwrap();
    let mf = parse(MODELFILE).unwrap();
    let name = ModelName::parse("my/assistant:v1").unwrap();
    let m = create(&store, &name, &mf, dir.path()).unwrap();
    let media: Vec<&str> = m
        .layers
        .iter()
        .map(|l| l.media_type.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(
        media,
        ["model", "template", "system", "params", "messages", "license"]
    );
    let params: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.blob_path(&m.layers[3].digest)).unwrap())
            .unwrap();
    assert_eq!(params["num_ctx"], 2048);
    store.verify(&name).unwrap();
    // FROM a stored name reuses its model blob.
    let mf2 = parse("FROM my/assistant:v1\nSYSTEM Be brief.").unwrap();
    let m2 = create(
        &store,
        &ModelName::parse("brief").unwrap(),
        &mf2,
        dir.path(),
    )
    .unwrap();
    assert_eq!(m2.layers[0].digest, m.layers[0].digest);
    // FROM something that is neither a file nor a stored model.
    let mf3 = parse("FROM nothere:1").unwrap();
    assert!(create(&store, &ModelName::parse("x").unwrap(), &mf3, dir.path()).is_err());
}

#[test]
fn local_names_resolve_through_pull_without_network() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    std::fs::write(dir.path().join("tiny.gguf"), b"GGUF tiny model").unwrap();
    let mf = parse("FROM ./tiny.gguf").unwrap();
    create(&store, &ModelName::parse("mybot").unwrap(), &mf, dir.path()).unwrap();
    // An unreachable HTTP config: any network use would fail.
    let http = slm_hub::Http::new(slm_hub::HttpConfig::default());
    let opts = slm_hub::PullOptions {
        offline: true,
        ..Default::default()
    };
    let path = slm_hub::ensure_model(
        &store,
        &http,
        "mybot",
        &opts,
        &mut slm_hub::progress::Silent,
    )
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"GGUF tiny model");
    let err = slm_hub::ensure_model(
        &store,
        &http,
        "notmine",
        &opts,
        &mut slm_hub::progress::Silent,
    )
    .unwrap_err();
    assert!(
        matches!(err, slm_hub::HubError::NotInCatalog { .. }),
        "{err}"
    );
}
