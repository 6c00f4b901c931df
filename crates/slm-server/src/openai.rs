//! OpenAI-compatible endpoints: `/v1/chat/completions`, `/v1/completions` (streaming SSE and
//! not) and `/v1/models`.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use slm_engine::sampling::{Sampled, SamplingParams};
use slm_engine::Event;
use slm_tokenizer::template::ChatMessage;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ApiError;
use crate::generate::{collect, finish_name, start, Options, MAX_N};
use crate::state::{unix_now, AppState, ServedModel};

#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Default)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Fields common to both completion endpoints.
#[derive(Deserialize, Default)]
pub struct CommonParams {
    #[serde(default)]
    model: String,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i64>,
    min_p: Option<f32>,
    n: Option<i64>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    stop: Option<OneOrMany>,
    seed: Option<i64>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    repeat_penalty: Option<f32>,
    response_format: Option<Value>,
    /// llama-server's and vLLM's extension.
    #[serde(default)]
    ignore_eos: bool,
}

#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(flatten)]
    common: CommonParams,
    messages: Vec<Value>,
    #[serde(default)]
    logprobs: bool,
    top_logprobs: Option<i64>,
}

#[derive(Deserialize)]
pub struct CompletionRequest {
    #[serde(flatten)]
    common: CommonParams,
    prompt: OneOrMany,
    /// Legacy completions: number of top log-probabilities per token.
    logprobs: Option<i64>,
}

fn openai_default_sampling() -> SamplingParams {
    // OpenAI's defaults: temperature 1, top_p 1, no top-k/min-p filtering.
    SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..SamplingParams::default()
    }
}

fn message_text(content: &Value) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push_str(t),
                    (Some(other), _) => {
                        return Err(ApiError::BadRequest(format!(
                            "content part type {other:?} is not supported"
                        )))
                    }
                    _ => return Err(ApiError::BadRequest("malformed content part".into())),
                }
            }
            Ok(out)
        }
        _ => Err(ApiError::BadRequest(
            "message content must be a string or a list of parts".into(),
        )),
    }
}

fn options(c: &CommonParams, logprobs: Option<usize>) -> Result<(Options, usize), ApiError> {
    let json = match c
        .response_format
        .as_ref()
        .map(|rf| rf.get("type").and_then(Value::as_str))
    {
        None | Some(Some("text")) => None,
        Some(Some("json_object")) => Some(true),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "response_format {} is not supported (text and json_object are)",
                other.unwrap_or("without a type")
            )))
        }
    };
    let n = c.n.unwrap_or(1);
    if n < 1 || n as usize > MAX_N {
        return Err(ApiError::BadRequest(format!("n must be in 1..={MAX_N}")));
    }
    Ok((
        Options {
            max_tokens: c.max_completion_tokens.or(c.max_tokens),
            temperature: c.temperature,
            top_p: c.top_p,
            top_k: c.top_k,
            min_p: c.min_p,
            repeat_penalty: c.repeat_penalty,
            repeat_last_n: None,
            presence_penalty: c.presence_penalty,
            frequency_penalty: c.frequency_penalty,
            seed: c.seed,
            stop: c.stop.clone().map(OneOrMany::into_vec).unwrap_or_default(),
            logprobs,
            json,
            ignore_eos: c.ignore_eos,
        },
        n as usize,
    ))
}

impl Clone for OneOrMany {
    fn clone(&self) -> Self {
        match self {
            OneOrMany::One(s) => OneOrMany::One(s.clone()),
            OneOrMany::Many(v) => OneOrMany::Many(v.clone()),
        }
    }
}

fn token_logprob(served: &ServedModel, id: u32, logprob: f32) -> Value {
    let bytes = served.model.tokenizer.token_to_piece(id);
    json!({
        "token": String::from_utf8_lossy(&bytes),
        "logprob": logprob,
        "bytes": bytes,
    })
}

fn chat_logprobs(served: &ServedModel, lps: &[Sampled]) -> Value {
    let content: Vec<Value> = lps
        .iter()
        .map(|s| {
            let mut v = token_logprob(served, s.token, s.logprob);
            v["top_logprobs"] = Value::Array(
                s.top
                    .iter()
                    .map(|t| token_logprob(served, t.id, t.logprob))
                    .collect(),
            );
            v
        })
        .collect();
    json!({ "content": content })
}

pub async fn models(State(state): State<AppState>) -> impl IntoResponse {
    let data: Vec<Value> = tokio::task::spawn_blocking(move || {
        state
            .models
            .available()
            .into_iter()
            .map(|m| json!({"id": m.name, "object": "model", "created": m.modified, "owned_by": "slm"}))
            .collect()
    })
    .await
    .unwrap_or_default();
    Json(json!({"object": "list", "data": data}))
}

fn completion_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{prefix}-{:x}{:06x}",
        unix_now(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn chat_completions(
    State(state): State<AppState>,
    Json(req): Json<ChatRequest>,
) -> Result<Response, ApiError> {
    let served = state.model(&req.common.model).await?;
    if req.messages.is_empty() || req.messages.len() > 1024 {
        return Err(ApiError::BadRequest(
            "messages must hold 1 to 1024 messages".into(),
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::BadRequest("each message needs a role".into()))?;
        messages.push(ChatMessage::new(
            role,
            message_text(m.get("content").unwrap_or(&Value::Null))?,
        ));
    }
    let prompt = served.model.tokenize_chat(&messages)?;
    let top = match (req.logprobs, req.top_logprobs) {
        (true, Some(n)) if n >= 0 => Some(n as usize),
        (true, None) => Some(0),
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(
                "top_logprobs requires logprobs: true".into(),
            ))
        }
        (true, Some(_)) => return Err(ApiError::BadRequest("top_logprobs must be >= 0".into())),
        (false, None) => None,
    };
    let (opts, n) = options(&req.common, top)?;
    let mut gen_req = opts.to_request(prompt, served.model.n_ctx, &openai_default_sampling())?;
    if !gen_req.ignore_eos {
        // The fallback template's end-of-turn text counts as end of generation.
        gen_req.stop.extend(served.model.chat_stops());
    }
    let id = completion_id("chatcmpl");
    let created = unix_now();
    let model = served.name.clone();
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        receivers.push(start(served.clone(), gen_req.clone(), &state)?);
    }
    if req.common.stream {
        let include_usage = req.common.stream_options.is_some_and(|o| o.include_usage);
        return Ok(sse(chat_stream(receivers, id, created, model, include_usage)).into_response());
    }
    let mut choices = Vec::new();
    let (mut prompt_tokens, mut completion_tokens, mut cached_tokens) = (0, 0, 0);
    for (index, rx) in receivers.into_iter().enumerate() {
        let c = collect(rx).await?;
        prompt_tokens = c.done.prompt_tokens;
        cached_tokens = c.done.cached_tokens;
        completion_tokens += c.done.generated_tokens;
        let mut choice = json!({
            "index": index,
            "message": {"role": "assistant", "content": c.text},
            "finish_reason": finish_name(c.done.finish),
            "logprobs": Value::Null,
        });
        if top.is_some() {
            choice["logprobs"] = chat_logprobs(&served, &c.logprobs);
        }
        choices.push(choice);
    }
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens,
                  "prompt_tokens_details": {"cached_tokens": cached_tokens}},
    }))
    .into_response())
}

fn sse(
    s: impl Stream<Item = Value> + Send + 'static,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = s
        .map(|v| Ok(SseEvent::default().data(v.to_string())))
        .chain(stream::once(async {
            Ok(SseEvent::default().data("[DONE]"))
        }));
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// The events of `n` generations, tagged with their choice index, as they arrive.
fn merged(receivers: Vec<mpsc::Receiver<Event>>) -> impl Stream<Item = (usize, Event)> + Send {
    stream::select_all(
        receivers
            .into_iter()
            .enumerate()
            .map(|(i, rx)| ReceiverStream::new(rx).map(move |ev| (i, ev))),
    )
}

/// Token totals of a streamed request, for the final usage chunk.
#[derive(Default)]
struct Totals {
    prompt: usize,
    completion: usize,
}

fn chat_stream(
    receivers: Vec<mpsc::Receiver<Event>>,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
) -> impl Stream<Item = Value> + Send + 'static {
    let chunk = move |index: usize, delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": Value::Null}],
        })
    };
    let firsts: Vec<Value> = (0..receivers.len())
        .map(|i| chunk(i, json!({"role": "assistant", "content": ""}), Value::Null))
        .collect();
    let totals = Arc::new(Mutex::new(Totals::default()));
    let t = totals.clone();
    let last = chunk.clone();
    let body = merged(receivers).filter_map(move |(i, ev)| {
        let out = match ev {
            Event::Token { text, .. } if text.is_empty() => None,
            Event::Token { text, .. } => Some(chunk(i, json!({"content": text}), Value::Null)),
            Event::Done(d) => {
                let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
                t.prompt = d.prompt_tokens;
                t.completion += d.generated_tokens;
                Some(chunk(i, json!({}), json!(finish_name(d.finish))))
            }
            Event::Error(e) => Some(json!({"error": {"message": e.to_string()}})),
        };
        async move { out }
    });
    let usage = stream::once(async move {
        let t = totals.lock().unwrap_or_else(|p| p.into_inner());
        let mut u = last(0, json!({}), Value::Null);
        u["choices"] = json!([]);
        u["usage"] = json!({
            "prompt_tokens": t.prompt,
            "completion_tokens": t.completion,
            "total_tokens": t.prompt + t.completion,
        });
        u
    })
    .filter(move |_| std::future::ready(include_usage));
    stream::iter(firsts).chain(body).chain(usage)
}

pub async fn completions(
    State(state): State<AppState>,
    Json(req): Json<CompletionRequest>,
) -> Result<Response, ApiError> {
    let served = state.model(&req.common.model).await?;
    let prompt_text = match req.prompt {
        OneOrMany::One(s) => s,
        OneOrMany::Many(v) if v.len() == 1 => v.into_iter().next().unwrap_or_default(),
        OneOrMany::Many(_) => {
            return Err(ApiError::BadRequest(
                "one prompt per request is supported".into(),
            ))
        }
    };
    let prompt = served.model.tokenize_raw(&prompt_text)?;
    let top = match req.logprobs {
        Some(n) if !(0..=20).contains(&n) => {
            return Err(ApiError::BadRequest("logprobs must be in 0..=20".into()))
        }
        Some(n) => Some(n as usize),
        None => None,
    };
    let (opts, n) = options(&req.common, top)?;
    let gen_req = opts.to_request(prompt, served.model.n_ctx, &openai_default_sampling())?;
    let id = completion_id("cmpl");
    let created = unix_now();
    let model = served.name.clone();
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        receivers.push(start(served.clone(), gen_req.clone(), &state)?);
    }
    if req.common.stream {
        let s = merged(receivers).filter_map(move |(index, ev)| {
            let v = match ev {
                Event::Token { text, .. } if text.is_empty() => None,
                Event::Token { text, .. } => Some((text, Value::Null)),
                Event::Done(d) => Some((String::new(), json!(finish_name(d.finish)))),
                Event::Error(e) => {
                    return std::future::ready(Some(json!({"error": {"message": e.to_string()}})))
                }
            };
            std::future::ready(v.map(|(text, finish)| {
                json!({"id": id, "object": "text_completion", "created": created, "model": model,
                       "choices": [{"index": index, "text": text, "finish_reason": finish, "logprobs": Value::Null}]})
            }))
        });
        return Ok(sse(s).into_response());
    }
    let mut choices = Vec::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (index, rx) in receivers.into_iter().enumerate() {
        let c = collect(rx).await?;
        prompt_tokens = c.done.prompt_tokens;
        completion_tokens += c.done.generated_tokens;
        let logprobs = if top.is_some() {
            let tokens: Vec<Value> = c
                .logprobs
                .iter()
                .map(|s| {
                    json!(String::from_utf8_lossy(
                        &served.model.tokenizer.token_to_piece(s.token)
                    ))
                })
                .collect();
            let token_logprobs: Vec<f32> = c.logprobs.iter().map(|s| s.logprob).collect();
            let tops: Vec<Value> = c
                .logprobs
                .iter()
                .map(|s| {
                    let m: serde_json::Map<String, Value> = s
                        .top
                        .iter()
                        .map(|t| {
                            (
                                String::from_utf8_lossy(
                                    &served.model.tokenizer.token_to_piece(t.id),
                                )
                                .into_owned(),
                                json!(t.logprob),
                            )
                        })
                        .collect();
                    Value::Object(m)
                })
                .collect();
            json!({"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops})
        } else {
            Value::Null
        };
        choices.push(json!({"index": index, "text": c.text, "finish_reason": finish_name(c.done.finish), "logprobs": logprobs}));
    }
    Ok(Json(json!({
        "id": id, "object": "text_completion", "created": created, "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }))
    .into_response())
}
