//! The real chat templates of the test material ($SLM_MATERIAL, default ~/.cache/slm-material):
//! SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct, plus the templates carried by
//! llama.cpp's vocab-only GGUFs (Command-R, Gemma 4, Phi-3, Qwen2). Each is rendered for several
//! conversations and must equal jinja2 configured as `transformers` configures it
//! (tools/golden/template_render.py, run as a subprocess). Also: fuel calibration with 200
//! messages + 64 tools (must use <= 10% of the budget).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use slm_gguf::{Array, GgufFile};
use slm_tokenizer::template::{ChatTemplate, TemplateError, FUEL};

fn material() -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/slm-material")
        });
    assert!(
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf").exists(),
        "test material missing in {}: run `python3 tools/material.py` first",
        dir.display()
    );
    dir
}

struct Real {
    name: String,
    source: String,
    bos: String,
    eos: String,
}

fn token_text(g: &GgufFile, key: &str) -> String {
    let Some(id) = g.get_u64(key) else {
        return String::new();
    };
    match g.get_array("tokenizer.ggml.tokens") {
        Some(Array::String(toks)) => toks.get(id as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

fn load(file: &str, name: &str) -> Real {
    let path = material().join(file);
    let g = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let source = g
        .get_str("tokenizer.chat_template")
        .unwrap_or_else(|| panic!("{file} has no tokenizer.chat_template"))
        .to_string();
    Real {
        name: name.to_string(),
        source,
        bos: token_text(&g, "tokenizer.ggml.bos_token_id"),
        eos: token_text(&g, "tokenizer.ggml.eos_token_id"),
    }
}

fn real_templates() -> Vec<Real> {
    let mut v = vec![
        load("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2"),
        load("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "qwen2.5-coder"),
        load("vocab/ggml-vocab-command-r.gguf", "command-r"),
        load("vocab/ggml-vocab-gemma-4.gguf", "gemma-4"),
        load("vocab/ggml-vocab-phi-3.gguf", "phi-3"),
        load("vocab/ggml-vocab-qwen2.gguf", "qwen2"),
    ];
    v.extend(extra_templates());
    v
}

/// More templates from `$SLM_EXTRA_TEMPLATES` (optional): `NAME.jinja` files, each with a
/// `NAME.tokens.json` holding `{"bos": .., "eos": ..}`.
fn extra_templates() -> Vec<Real> {
    let Some(dir) = std::env::var_os("SLM_EXTRA_TEMPLATES").map(PathBuf::from) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("SLM_EXTRA_TEMPLATES={}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jinja"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let source = std::fs::read_to_string(&path).expect("read template");
        let toks: Value = std::fs::read_to_string(dir.join(format!("{name}.tokens.json")))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        out.push(Real {
            name,
            source,
            bos: toks["bos"].as_str().unwrap_or("").to_string(),
            eos: toks["eos"].as_str().unwrap_or("").to_string(),
        });
    }
    out
}

fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

fn tools(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"type": "function", "function": {
                    "name": format!("tool_{i}"),
                    "description": format!("Does thing {i} with \"quotes\" and é."),
                    "parameters": {"type": "object", "properties": {
                        "city": {"type": "string", "description": "A city"},
                        "days": {"type": "integer", "description": "How many days"},
                        "unit": {"type": "string", "enum": ["c", "f"]}
                    }, "required": ["city"]}
                }})
            })
            .collect(),
    )
}

/// Conversations: (label, messages, tools, kwargs).
fn conversations() -> Vec<(&'static str, Value, Option<Value>, Value)> {
    let none = json!({});
    vec![
        ("user", json!([msg("user", "Hello!")]), None, none.clone()),
        (
            "system+user",
            json!([msg("system", "You are terse."), msg("user", "What is 2+2?")]),
            None,
            none.clone(),
        ),
        (
            "multi-turn",
            json!([
                msg("system", "Be kind."),
                msg("user", "Hi"),
                msg("assistant", "Hello! How can I help?"),
                msg("user", "Tell me a joke about {{ braces }} and <tags>.")
            ]),
            None,
            none.clone(),
        ),
        (
            "no-system alternating",
            json!([
                msg("user", "  padded \n text  "),
                msg("assistant", "Ünïcödé ✓ \"quoted\" \\ back"),
                msg("user", "last")
            ]),
            None,
            none.clone(),
        ),
        (
            "bad alternation",
            json!([msg("user", "a"), msg("user", "b")]),
            None,
            none.clone(),
        ),
        (
            "tools",
            json!([
                msg("system", "Use tools."),
                msg("user", "Weather in Paris?"),
                {"role": "assistant", "content": "", "tool_calls": [
                    {"type": "function", "function": {"name": "tool_0", "arguments": {"city": "Paris", "days": 2}}}
                ]},
                {"role": "tool", "content": "{\"temp\": 21.5}"},
                msg("user", "Thanks")
            ]),
            Some(tools(2)),
            json!({"enable_thinking": false}),
        ),
    ]
}

fn python_render(cases: &[Value]) -> Vec<Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/golden/template_render.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required for the template goldens");
    let input = json!({ "cases": cases }).to_string();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(out.status.success(), "template_render.py failed");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from template_render.py");
    v["results"].as_array().expect("results").clone()
}

#[test]
fn real_templates_match_jinja2() {
    let templates = real_templates();
    let convs = conversations();
    let mut cases = Vec::new();
    let mut labels = Vec::new();
    for t in &templates {
        for (label, messages, tools, kwargs) in &convs {
            for agp in [false, true] {
                cases.push(json!({
                    "template": t.source, "bos_token": t.bos, "eos_token": t.eos,
                    "messages": messages, "add_generation_prompt": agp,
                    "tools": tools, "kwargs": kwargs,
                }));
                labels.push(format!(
                    "{} / {label} / add_generation_prompt={agp}",
                    t.name
                ));
            }
        }
    }
    let expected = python_render(&cases);
    assert_eq!(expected.len(), cases.len());
    let (mut ok, mut raised) = (0, 0);
    for ((case, label), want) in cases.iter().zip(&labels).zip(&expected) {
        let t = ChatTemplate::new(
            case["template"].as_str().unwrap_or(""),
            case["bos_token"].as_str().unwrap_or(""),
            case["eos_token"].as_str().unwrap_or(""),
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        let kwargs = case["kwargs"].as_object().cloned().unwrap_or_default();
        let tools = case.get("tools").filter(|t| !t.is_null());
        let got = t.render_json(
            &case["messages"],
            case["add_generation_prompt"] == true,
            tools,
            &kwargs,
        );
        if let Some(text) = want.get("ok").and_then(Value::as_str) {
            let got = got.unwrap_or_else(|e| panic!("{label}: jinja2 rendered, we failed: {e}"));
            assert_eq!(got.0, text, "{label}");
            ok += 1;
        } else if let Some(msg) = want.get("raised").and_then(Value::as_str) {
            assert_eq!(got, Err(TemplateError::Raised(msg.to_string())), "{label}");
            raised += 1;
        } else {
            assert!(
                got.is_err(),
                "{label}: jinja2 failed ({want}), we rendered {got:?}"
            );
        }
    }
    eprintln!(
        "{ok} renders equal to jinja2, {raised} raise_exception equal, of {}",
        cases.len()
    );
    assert!(ok >= 50, "too few successful renders compared: {ok}");
    assert!(raised >= 2, "raise_exception was never compared");
}

#[test]
fn plain_api_matches_json_api() {
    let t = load("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2");
    let ct = ChatTemplate::new(&t.source, &t.bos, &t.eos).expect("compile");
    let msgs = vec![
        slm_tokenizer::template::ChatMessage::new("user", "Hi"),
        slm_tokenizer::template::ChatMessage::new("assistant", "Hello"),
    ];
    let a = ct.render(&msgs, true).expect("render");
    let b = ct
        .render_json(
            &serde_json::to_value(&msgs).expect("json"),
            true,
            None,
            &Default::default(),
        )
        .expect("render_json");
    assert_eq!(a, b.0);
    assert_eq!(
        a,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn gemma3_270m_has_no_template() {
    // The base Gemma 3 270M GGUF carries no chat template: callers fall back to raw prompts.
    let g = GgufFile::open(&material().join("gemma-3-270m-q4_k_m.gguf")).expect("open gemma");
    assert!(g.get_str("tokenizer.chat_template").is_none());
}

#[test]
fn fuel_calibration_200_messages_64_tools() {
    let mut messages = vec![msg("system", "You are a helpful assistant.")];
    for i in 0..200 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(msg(
            role,
            &format!("Message number {i}: {}", "lorem ipsum dolor ".repeat(8)),
        ));
    }
    let messages = Value::Array(messages);
    let tools = tools(64);
    let mut worst = 0u64;
    for t in real_templates() {
        let ct = ChatTemplate::new(&t.source, &t.bos, &t.eos).expect("compile");
        let start = std::time::Instant::now();
        let (out, stats) = ct
            .render_json(&messages, true, Some(&tools), &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let dt = start.elapsed();
        eprintln!(
            "{:14} fuel {:>8} of {} ({:.2}%), {} bytes, {:?}",
            t.name,
            stats.fuel_used,
            FUEL,
            stats.fuel_used as f64 * 100.0 / FUEL as f64,
            out.len(),
            dt
        );
        assert!(stats.fuel_used > 0, "{}: fuel not tracked", t.name);
        worst = worst.max(stats.fuel_used);
    }
    assert!(
        worst * 10 <= FUEL,
        "a real template used {worst} fuel, more than 10% of {FUEL}"
    );
}
