//! jinja2 compatibility of the sandbox on the constructs real chat templates use (Python string
//! and dict methods, filters, tests, loop variables, slicing, `tojson` options, whitespace
//! control, Python spellings of None/True/False): each line of tests/template_compat.txt is one
//! template, rendered by us and by jinja2 configured as `transformers` configures it
//! (tools/golden/template_render.py), and the results must be equal. Lines listed in
//! `KNOWN_DIFFERENCES` must differ (so the list stays true).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use slm_tokenizer::template::{ChatTemplate, TemplateError};

/// Constructs where minijinja (with pycompat) is known to render differently from jinja2.
const KNOWN_DIFFERENCES: &[&str] = &[];

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
fn constructs_match_jinja2() {
    let path = std::env::var("COMPAT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/template_compat.txt")
        });
    let text = std::fs::read_to_string(&path).expect("read compat cases");
    // Cases are separated by lines holding only `----`.
    let sources: Vec<&str> = text
        .split("\n----\n")
        .map(|s| s.trim_end_matches('\n'))
        .filter(|s| !s.is_empty())
        .collect();
    let messages = json!([
        {"role": "system", "content": "  You are helpful.\n  "},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Bye"}
    ]);
    let cases: Vec<Value> = sources
        .iter()
        .map(|src| json!({"template": src, "bos_token": "<s>", "eos_token": "</s>", "messages": messages, "add_generation_prompt": true}))
        .collect();
    let expected = python_render(&cases);
    let mut mismatches = Vec::new();
    for (src, want) in sources.iter().zip(&expected) {
        let got = ChatTemplate::new(src, "<s>", "</s>").and_then(|t| {
            t.render_json(&messages, true, None, &Default::default())
                .map(|r| r.0)
        });
        let same = match (
            want.get("ok").and_then(Value::as_str),
            want.get("raised").and_then(Value::as_str),
            &got,
        ) {
            (Some(w), _, Ok(g)) => w == g,
            (_, Some(w), Err(TemplateError::Raised(g))) => w == g,
            (None, None, Err(_)) => true,
            _ => false,
        };
        let known = KNOWN_DIFFERENCES.contains(src);
        if same == known {
            mismatches.push(format!(
                "template: {src}\n  jinja2: {want}\n  ours:   {got:?}\n  known difference: {known}"
            ));
        }
    }
    let ok = expected.iter().filter(|w| w.get("ok").is_some()).count();
    assert!(
        ok + 3 >= sources.len(),
        "only {ok} of {} cases rendered in jinja2",
        sources.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        sources.len(),
        mismatches.join("\n")
    );
}
