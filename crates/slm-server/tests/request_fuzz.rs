//! Reliability guide 2.6: property-based requests against the router (no port): random JSON
//! bodies shaped like each endpoint's schema, with hostile values (wrong types, out-of-range and
//! non-finite numbers, huge strings, deep nesting), plus arbitrary bytes. The server must never
//! answer 5xx (503 "busy" aside) or panic, and every error is a JSON body. Runs on the real
//! Gemma 3 270M (generation capped at 2 s per request); `SLM_FUZZ_CASES` cases per endpoint.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use slm_engine::{EngineConfig, LoadOptions};
use slm_server::auth::Auth;
use slm_server::{router, AppState, KeepAlive, Limits, ModelConfig, Models};
use tower::ServiceExt;

fn material(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slm-material")
        });
    let p = dir.join(name);
    assert!(
        p.exists(),
        "test material {} is missing: run `python3 tools/material.py` first",
        p.display()
    );
    p
}

/// A hostile scalar or small structure.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(2),
            Just(4),
            Just(5),
            Just(21),
            Just(300),
            Just(4096),
            Just(4097),
            Just(i64::MAX),
            Just(i64::MIN),
            -3i64..8,
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just(-2.5f64),
            Just(0.5),
            Just(1e308),
            Just(-1e-300),
            Just(2.000001)
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just(String::new()),
            Just("g".to_string()),
            Just("json".to_string()),
            Just("5m".to_string()),
            Just("../../etc/passwd".to_string()),
            Just("sha256:zz".to_string()),
            Just("\u{0}\u{1b}[31m\n".to_string()),
            Just("x".repeat(5000)),
            "[a-z:/._-]{0,24}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The fields an endpoint reads, so random values reach its validation.
fn fields(path: &str) -> &'static [&'static str] {
    match path {
        "/v1/chat/completions" => &[
            "messages",
            "temperature",
            "top_p",
            "top_k",
            "n",
            "stream",
            "stop",
            "seed",
            "logprobs",
            "top_logprobs",
            "response_format",
            "presence_penalty",
            "frequency_penalty",
            "stream_options",
        ],
        "/v1/completions" => &[
            "prompt",
            "temperature",
            "n",
            "stream",
            "stop",
            "logprobs",
            "seed",
            "min_p",
        ],
        "/api/generate" => &[
            "prompt",
            "system",
            "raw",
            "template",
            "stream",
            "format",
            "options",
            "keep_alive",
        ],
        "/api/chat" => &["messages", "stream", "format", "options", "keep_alive"],
        "/api/tokenize" => &["prompt", "content"],
        "/api/detokenize" => &["tokens"],
        "/api/pull" => &["name", "stream", "insecure"],
        "/api/copy" => &["source", "destination"],
        "/api/create" => &[
            "from",
            "system",
            "template",
            "parameters",
            "messages",
            "license",
            "stream",
            "quantize",
        ],
        _ => &["name"],
    }
}

/// A body for `path`: the model (mostly the served one), a small length limit (so valid requests
/// stay short), and random values for a random subset of the endpoint's fields.
fn body(path: &'static str) -> impl Strategy<Value = Value> {
    let names = fields(path);
    let limit = prop_oneof![
        Just(json!(1)),
        Just(json!(3)),
        Just(json!(0)),
        Just(json!(-7)),
        Just(json!(1e9)),
        Just(json!("3")),
    ];
    (
        prop_oneof![
            6 => Just(json!("g")),
            1 => value()
        ],
        prop_oneof![
            4 => prop_oneof![Just(json!(1)), Just(json!(3))],
            1 => limit
        ],
        // One case in three leaves the other fields alone (mostly valid requests).
        prop_oneof![
            1 => Just(Vec::new()),
            2 => prop::collection::vec((0..names.len(), value()), 1..6)
        ],
        prop_oneof![
            3 => Just(json!([{"role": "user", "content": "hi"}])),
            1 => value()
        ],
    )
        .prop_map(move |(model, limit, picks, messages)| {
            let mut m = Map::new();
            m.insert("model".into(), model);
            m.insert("max_tokens".into(), limit.clone());
            m.insert("options".into(), json!({ "num_predict": limit }));
            m.insert("messages".into(), messages);
            m.insert("prompt".into(), json!("hi"));
            for (i, v) in picks {
                m.insert(names[i].to_string(), v);
            }
            // Keep valid generations short.
            if let Some(Value::Object(o)) = m.get_mut("options") {
                o.entry("num_predict").or_insert(json!(2));
            }
            Value::Object(m)
        })
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
        .await
        .expect("a response body that ends")
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, bytes, ctype)
}

fn check(path: &str, body: &[u8], status: u16, resp: &[u8], ctype: &str) -> Result<(), String> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status >= 500 && status != 503 {
        return Err(format!(
            "{path}: {status} for {} -> {}",
            shown(),
            String::from_utf8_lossy(resp)
        ));
    }
    if status >= 400 {
        let v: Value = serde_json::from_slice(resp).map_err(|_| {
            format!(
                "{path}: {status} error body is not JSON ({ctype}): {}",
                String::from_utf8_lossy(resp)
            )
        })?;
        if v.get("error").is_none() {
            return Err(format!("{path}: error body without `error`: {v}"));
        }
    }
    let text = String::from_utf8_lossy(resp);
    if text.contains("/root/") || text.contains("/home/") || text.contains(".cache/slm") {
        return Err(format!("{path}: a path leaked: {text}"));
    }
    Ok(())
}

#[test]
fn fuzzed_requests_never_5xx_or_panic() {
    let cases: u32 = std::env::var("SLM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    let home = std::env::temp_dir().join(format!("slm-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let store = slm_hub::Store::open(&home).unwrap();
    let models = Models::new(
        vec![("g".into(), material("gemma-3-270m-q4_k_m.gguf"))],
        Some(store),
        ModelConfig {
            load: LoadOptions {
                threads: 2,
                n_ctx: Some(128),
                slots: 2,
                engine: EngineConfig {
                    n_batch: 64,
                    max_queue: 8,
                },
            },
            max_memory: 4 << 30,
            default_keep_alive: KeepAlive::Forever,
            offline: true,
        },
    );
    let limits = Limits {
        max_request: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let state = AppState::new(models, Auth::open_loopback(), limits);
    let app = router(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut total = 0;
    let mut successes = std::collections::BTreeMap::new();
    for &(method, path, _) in slm_server::ROUTES {
        let ok = std::cell::Cell::new(0u32);
        // A fixed seed: the same requests every run (a failure reproduces).
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let strategy = (body(path), any::<bool>());
        runner
            .run(&strategy, |(v, as_text)| {
                // Sometimes a JSON body, sometimes its bytes cut short (malformed JSON).
                let mut bytes = serde_json::to_vec(&v).unwrap();
                if !as_text {
                    bytes.truncate(bytes.len() / 2);
                }
                let (status, resp, ctype) = rt.block_on(call(&app, method, path, bytes.clone()));
                if status == 200 {
                    ok.set(ok.get() + 1);
                }
                check(path, &bytes, status, &resp, &ctype).map_err(TestCaseError::fail)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        total += cases;
        successes.insert(path, ok.get());
    }
    // Arbitrary bytes, deep nesting and a wrong content type on every route.
    let mut nested = String::new();
    for _ in 0..200 {
        nested.push('[');
    }
    for &(method, path, _) in slm_server::ROUTES {
        for b in [
            b"\xff\xfe\x00garbage".to_vec(),
            nested.clone().into_bytes(),
            b"{\"model\": \"g\", \"stream\": \"yes\"}".to_vec(),
            b"null".to_vec(),
        ] {
            let (status, resp, ctype) = rt.block_on(call(&app, method, path, b.clone()));
            check(path, &b, status, &resp, &ctype).unwrap_or_else(|e| panic!("{e}"));
            total += 1;
        }
    }
    eprintln!("{total} fuzzed requests; successes per route: {successes:?}");
    // The bodies do reach the handlers: valid ones among them succeed.
    for path in [
        "/v1/chat/completions",
        "/v1/completions",
        "/api/generate",
        "/api/chat",
        "/api/tokenize",
    ] {
        assert!(successes[path] > 0, "no fuzzed request to {path} succeeded");
    }
    let _ = std::fs::remove_dir_all(&home);
}
