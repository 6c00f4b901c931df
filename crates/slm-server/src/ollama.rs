//! Ollama-compatible endpoints: `/api/generate`, `/api/chat` (NDJSON streaming and not),
//! `/api/tags`, `/api/show`, `/api/ps`, `/api/version`, `/api/tokenize`, `/api/detokenize`.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use slm_engine::sampling::SamplingParams;
use slm_engine::Event;
use slm_tokenizer::template::ChatMessage;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::generate::{collect, finish_name, start, Options};
use crate::keep_alive::KeepAlive;
use crate::models::Lease;
use crate::state::{unix_now, AppState, ServedModel};

#[derive(Deserialize, Default)]
pub struct OllamaOptions {
    num_predict: Option<i64>,
    temperature: Option<f32>,
    top_k: Option<i64>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    repeat_last_n: Option<i64>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    seed: Option<i64>,
    stop: Option<Vec<String>>,
    num_ctx: Option<i64>,
    /// Not in Ollama; llama-server's and vLLM's extension, for fixed-length benchmarks.
    #[serde(default)]
    ignore_eos: bool,
}

#[derive(Deserialize)]
pub struct GenerateRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    system: Option<String>,
    #[serde(default)]
    raw: bool,
    template: Option<String>,
    stream: Option<bool>,
    format: Option<Value>,
    #[serde(default)]
    options: Value,
    keep_alive: Option<Value>,
}

#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessageIn>,
    stream: Option<bool>,
    format: Option<Value>,
    #[serde(default)]
    options: Value,
    keep_alive: Option<Value>,
}

#[derive(Deserialize)]
pub struct ChatMessageIn {
    role: String,
    #[serde(default)]
    content: String,
}

/// Ollama's defaults.
fn ollama_default_sampling() -> SamplingParams {
    SamplingParams {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.9,
        min_p: 0.0,
        repeat_penalty: 1.1,
        repeat_last_n: 64,
        ..SamplingParams::default()
    }
}

/// The request's options over the model's PARAMETERs (from `/api/create`), as typed options.
fn merged_options(served: &ServedModel, req: &Value) -> Result<OllamaOptions, ApiError> {
    let mut map = served.params.clone();
    // A stored num_ctx may exceed this server's context; the server's own context applies.
    map.remove("num_ctx");
    match req {
        Value::Null => {}
        Value::Object(o) => map.extend(o.clone()),
        _ => return Err(ApiError::BadRequest("options must be an object".into())),
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::BadRequest(format!("options: {e}")))
}

fn to_options(
    o: &OllamaOptions,
    served: &ServedModel,
    format: &Option<Value>,
) -> Result<Options, ApiError> {
    if let Some(n) = o.num_ctx {
        if n < 1 || n as u64 > served.model.n_ctx as u64 {
            return Err(ApiError::BadRequest(format!(
                "num_ctx {n} is outside 1..={} (this server's context)",
                served.model.n_ctx
            )));
        }
    }
    Ok(Options {
        max_tokens: o.num_predict,
        temperature: o.temperature,
        top_p: o.top_p,
        top_k: o.top_k,
        min_p: o.min_p,
        repeat_penalty: o.repeat_penalty,
        repeat_last_n: o.repeat_last_n,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        seed: o.seed,
        stop: o.stop.clone().unwrap_or_default(),
        logprobs: None,
        json: json_format(format)?,
        ignore_eos: o.ignore_eos,
    })
}

/// Ollama's `format`: "json" turns JSON mode on; a JSON schema is not supported yet.
fn json_format(format: &Option<Value>) -> Result<Option<bool>, ApiError> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(false)),
        Some(_) => Err(ApiError::BadRequest(
            "format: only \"json\" is supported (JSON schemas are not yet)".into(),
        )),
    }
}

/// RFC 3339 UTC time, as Ollama prints `created_at`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn ndjson(s: impl futures_util::Stream<Item = Value> + Send + 'static) -> Response {
    let body = s.map(|v| Ok::<_, Infallible>(format!("{v}\n")));
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| ApiError::Internal("response".into()).into_response())
}

fn final_fields(v: &mut Value, d: &slm_engine::Done) {
    let ns = |t: std::time::Duration| t.as_nanos() as u64;
    v["done"] = json!(true);
    v["done_reason"] = json!(finish_name(d.finish));
    v["total_duration"] = json!(ns(d.prompt_time + d.gen_time));
    v["load_duration"] = json!(0);
    v["prompt_eval_count"] = json!(d.prompt_tokens);
    v["prompt_eval_duration"] = json!(ns(d.prompt_time));
    v["eval_count"] = json!(d.generated_tokens);
    v["eval_duration"] = json!(ns(d.gen_time));
}

/// Stream events as NDJSON objects made by `piece(text)`; the last one carries the counts.
fn stream_ndjson(
    rx: mpsc::Receiver<Event>,
    piece: impl Fn(&str) -> Value + Send + Sync + Clone + 'static,
) -> Response {
    let s = stream::unfold((rx, false), move |(mut rx, finished)| {
        let piece = piece.clone();
        async move {
            if finished {
                return None;
            }
            loop {
                match rx.recv().await? {
                    Event::Token { text, .. } if text.is_empty() => continue,
                    Event::Token { text, .. } => return Some((piece(&text), (rx, false))),
                    Event::Done(d) => {
                        let mut v = piece("");
                        final_fields(&mut v, &d);
                        return Some((v, (rx, true)));
                    }
                    Event::Error(e) => return Some((json!({"error": e.to_string()}), (rx, true))),
                }
            }
        }
    });
    ndjson(s)
}

/// Answer a load request (the model is loaded; its keep-alive starts now).
async fn load_or_unload(
    _state: &AppState,
    served: Lease,
    _keep: Option<KeepAlive>,
) -> &'static str {
    drop(served);
    "load"
}

pub async fn generate(
    State(state): State<AppState>,
    Json(req): Json<GenerateRequest>,
) -> Result<Response, ApiError> {
    let keep = KeepAlive::from_json(req.keep_alive.as_ref())?;
    if req.template.is_some() {
        return Err(ApiError::BadRequest(
            "request-supplied templates are disabled on this server".into(),
        ));
    }
    if req.prompt.is_empty() && req.system.is_none() && keep == Some(KeepAlive::ZERO) {
        state.models.unload(&req.model).await;
        return Ok(Json(
            json!({"model": req.model, "created_at": rfc3339(unix_now()),
                              "response": "", "done": true, "done_reason": "unload"}),
        )
        .into_response());
    }
    let served = state.models.acquire(&req.model, keep).await?;
    let model = served.name.clone();
    if req.prompt.is_empty() && req.system.is_none() {
        // Ollama's "load the model" request; with keep_alive 0, "unload it".
        let reason = load_or_unload(&state, served, keep).await;
        return Ok(
            Json(json!({"model": model, "created_at": rfc3339(unix_now()),
                              "response": "", "done": true, "done_reason": reason}))
            .into_response(),
        );
    }
    let templated = !req.raw && !served.model.template_is_fallback;
    let prompt = if !templated {
        served.model.tokenize_raw(&req.prompt)?
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = req.system.as_ref().or(served.system.as_ref()) {
            msgs.push(ChatMessage::new("system", s.clone()));
        }
        msgs.push(ChatMessage::new("user", req.prompt.clone()));
        served.model.tokenize_chat(&msgs)?
    };
    let opts = to_options(
        &merged_options(&served, &req.options)?,
        &served,
        &req.format,
    )?;
    let gen_req = opts.to_request(prompt, served.model.n_ctx, &ollama_default_sampling())?;
    let rx = start(served, gen_req, &state)?;
    if req.stream.unwrap_or(true) {
        return Ok(stream_ndjson(
            rx,
            move |text| json!({"model": model, "created_at": rfc3339(unix_now()), "response": text, "done": false}),
        ));
    }
    let c = collect(rx).await?;
    let mut v = json!({"model": model, "created_at": rfc3339(unix_now()), "response": c.text});
    final_fields(&mut v, &c.done);
    Ok(Json(v).into_response())
}

pub async fn chat(
    State(state): State<AppState>,
    Json(req): Json<ChatRequest>,
) -> Result<Response, ApiError> {
    let keep = KeepAlive::from_json(req.keep_alive.as_ref())?;
    if req.messages.is_empty() && keep == Some(KeepAlive::ZERO) {
        state.models.unload(&req.model).await;
        return Ok(Json(
            json!({"model": req.model, "created_at": rfc3339(unix_now()),
                              "message": {"role": "assistant", "content": ""},
                              "done": true, "done_reason": "unload"}),
        )
        .into_response());
    }
    let served = state.models.acquire(&req.model, keep).await?;
    let model = served.name.clone();
    if req.messages.is_empty() {
        let reason = load_or_unload(&state, served, keep).await;
        return Ok(
            Json(json!({"model": model, "created_at": rfc3339(unix_now()),
                              "message": {"role": "assistant", "content": ""},
                              "done": true, "done_reason": reason}))
            .into_response(),
        );
    }
    if req.messages.len() > 1024 {
        return Err(ApiError::BadRequest("at most 1024 messages".into()));
    }
    let mut msgs: Vec<ChatMessage> = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &served.system {
        if req.messages.iter().all(|m| m.role != "system") {
            msgs.push(ChatMessage::new("system", system.clone()));
        }
    }
    msgs.extend(
        req.messages
            .iter()
            .map(|m| ChatMessage::new(m.role.clone(), m.content.clone())),
    );
    let prompt = served.model.tokenize_chat(&msgs)?;
    let opts = to_options(
        &merged_options(&served, &req.options)?,
        &served,
        &req.format,
    )?;
    let mut gen_req = opts.to_request(prompt, served.model.n_ctx, &ollama_default_sampling())?;
    if !gen_req.ignore_eos {
        // The fallback template's end-of-turn text counts as end of generation.
        gen_req.stop.extend(served.model.chat_stops());
    }
    let rx = start(served, gen_req, &state)?;
    if req.stream.unwrap_or(true) {
        return Ok(stream_ndjson(rx, move |text| {
            json!({"model": model, "created_at": rfc3339(unix_now()),
                   "message": {"role": "assistant", "content": text}, "done": false})
        }));
    }
    let c = collect(rx).await?;
    let mut v = json!({"model": model, "created_at": rfc3339(unix_now()),
                       "message": {"role": "assistant", "content": c.text}});
    final_fields(&mut v, &c.done);
    Ok(Json(v).into_response())
}

fn details(s: &slm_engine::info::ModelSummary) -> Value {
    json!({
        "format": "gguf",
        "family": s.architecture,
        "families": [s.architecture],
        "parameter_size": format!("{:.0}M", s.parameters as f64 / 1e6),
        "quantization_level": s.file_type,
    })
}

/// Summary of a GGUF file without loading it (its header is mapped and read).
fn summary_of(path: &std::path::Path) -> Option<slm_engine::info::ModelSummary> {
    let f = slm_gguf::GgufFile::open(path).ok()?;
    Some(slm_engine::info::summarize(f.header(), f.file_len()))
}

pub async fn tags(State(state): State<AppState>) -> impl IntoResponse {
    let models = tokio::task::spawn_blocking(move || {
        state
            .models
            .available()
            .into_iter()
            .map(|a| {
                json!({
                    "name": a.name, "model": a.name,
                    "modified_at": rfc3339(a.modified),
                    "size": a.size,
                    "digest": a.digest,
                    "details": summary_of(&a.path).map_or(Value::Null, |s| details(&s)),
                })
            })
            .collect::<Vec<Value>>()
    })
    .await
    .unwrap_or_default();
    Json(json!({ "models": models }))
}

pub async fn ps(State(state): State<AppState>) -> impl IntoResponse {
    let models: Vec<Value> = state
        .models
        .loaded()
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "model": m.name,
                "size": m.size,
                "digest": m.digest.strip_prefix("sha256:").unwrap_or(&m.digest),
                "details": details(&m.model.summary),
                "expires_at": rfc3339(m.expires_unix()),
                "size_vram": 0,
                "context_length": m.model.n_ctx,
                "slots": m.slots,
                "in_flight": m.in_flight(),
            })
        })
        .collect();
    Json(json!({ "models": models }))
}

#[derive(Deserialize)]
pub struct ModelRef {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
}

pub async fn show(
    State(state): State<AppState>,
    Json(req): Json<ModelRef>,
) -> Result<Response, ApiError> {
    let name = if req.model.is_empty() {
        req.name
    } else {
        req.model
    };
    let v = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let src = state.models.find(&name)?;
        let f = slm_gguf::GgufFile::open(&src.path)
            .map_err(|_| ApiError::Internal("the model file is not readable".into()))?;
        let s = slm_engine::info::summarize(f.header(), f.file_len());
        let arch = s.architecture.clone().unwrap_or_default();
        let mut modelfile = format!("FROM {}\n", src.key);
        if let Some(sys) = &src.system {
            modelfile.push_str(&format!("SYSTEM {}\n", serde_json::to_string(sys).unwrap_or_default()));
        }
        let mut parameters = String::new();
        for (k, v) in &src.params {
            let vals = match v {
                Value::Array(a) => a.clone(),
                v => vec![v.clone()],
            };
            for v in vals {
                let line = format!("{k} {}", v.as_str().map_or_else(|| v.to_string(), str::to_string));
                modelfile.push_str(&format!("PARAMETER {line}\n"));
                parameters.push_str(&line);
                parameters.push('\n');
            }
        }
        Ok(json!({
            "modelfile": modelfile,
            "parameters": parameters,
            "system": src.system,
            "template": f.get_str("tokenizer.chat_template").unwrap_or(slm_engine::loaded::FALLBACK_TEMPLATE),
            "details": details(&s),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": s.parameters,
                format!("{arch}.context_length"): s.context_length,
                format!("{arch}.embedding_length"): s.embedding_length,
                format!("{arch}.block_count"): s.block_count,
            },
            "capabilities": ["completion"],
        }))
    })
    .await
    .map_err(|_| ApiError::Internal("show failed".into()))??;
    Ok(Json(v).into_response())
}

pub async fn version() -> impl IntoResponse {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

#[derive(Deserialize)]
pub struct TokenizeRequest {
    #[serde(default)]
    model: String,
    #[serde(default, alias = "content", alias = "text")]
    prompt: String,
}

pub async fn tokenize(
    State(state): State<AppState>,
    Json(req): Json<TokenizeRequest>,
) -> Result<Response, ApiError> {
    let m = state.model(&req.model).await?;
    let tokens = m
        .model
        .tokenizer
        .encode(&req.prompt, false, true)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(json!({ "model": m.name, "tokens": tokens })).into_response())
}

#[derive(Deserialize)]
pub struct DetokenizeRequest {
    #[serde(default)]
    model: String,
    tokens: Vec<u32>,
}

pub async fn detokenize(
    State(state): State<AppState>,
    Json(req): Json<DetokenizeRequest>,
) -> Result<Response, ApiError> {
    let m = state.model(&req.model).await?;
    let n_vocab = m.model.tokenizer.n_vocab();
    if let Some(bad) = req.tokens.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(ApiError::BadRequest(format!(
            "token id {bad} is outside the vocabulary ({n_vocab})"
        )));
    }
    Ok(
        Json(json!({ "model": m.name, "text": m.model.tokenizer.decode(&req.tokens) }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_083_200), "2026-12-01T00:00:00Z");
    }
}
