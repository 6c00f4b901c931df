//! From an API request to engine events: parameter validation (the bounds of reliability guide
//! 2.6), the bridge from the engine's thread to async handlers, and collecting a whole answer for
//! non-streaming responses.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use slm_engine::sampling::{Sampled, SamplingParams, DEFAULT_SEED};
use slm_engine::{Done, Event, FinishReason, GenerateRequest};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::models::Lease;
use crate::state::AppState;

pub const MAX_TOKENS_CAP: usize = 4096;
pub const MAX_N: usize = 4;
pub const MAX_TOP_LOGPROBS: usize = 20;
pub const MAX_STOP: usize = 16;
pub const MAX_STOP_BYTES: usize = 256;

/// Sampling and length options common to both APIs (already mapped from their names).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub max_tokens: Option<i64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub repeat_last_n: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Vec<String>,
    pub logprobs: Option<usize>,
    /// JSON mode: `Some(true)` for a JSON object only.
    pub json: Option<bool>,
    /// Keep generating past end-of-generation tokens (llama-server's and vLLM's extension; for
    /// benchmarks that need a fixed number of tokens).
    pub ignore_eos: bool,
}

fn finite(name: &str, v: Option<f32>, lo: f32, hi: f32) -> Result<(), ApiError> {
    match v {
        Some(x) if !x.is_finite() || x < lo || x > hi => Err(ApiError::BadRequest(format!(
            "{name} must be a number in [{lo}, {hi}]"
        ))),
        _ => Ok(()),
    }
}

impl Options {
    /// Check the bounds and build an engine request for `prompt`.
    pub fn to_request(
        &self,
        prompt: Vec<u32>,
        n_ctx: usize,
        default_sampling: &SamplingParams,
    ) -> Result<GenerateRequest, ApiError> {
        finite("temperature", self.temperature, 0.0, 2.0)?;
        finite("top_p", self.top_p, 0.0, 1.0)?;
        finite("min_p", self.min_p, 0.0, 1.0)?;
        finite("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        finite("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        finite("repeat_penalty", self.repeat_penalty, 0.0, 10.0)?;
        if self.stop.len() > MAX_STOP || self.stop.iter().any(|s| s.len() > MAX_STOP_BYTES) {
            return Err(ApiError::BadRequest(format!(
                "at most {MAX_STOP} stop strings of at most {MAX_STOP_BYTES} bytes"
            )));
        }
        if self.logprobs.is_some_and(|n| n > MAX_TOP_LOGPROBS) {
            return Err(ApiError::BadRequest(format!(
                "top_logprobs must be at most {MAX_TOP_LOGPROBS}"
            )));
        }
        let room = n_ctx.saturating_sub(prompt.len());
        if room == 0 {
            return Err(ApiError::BadRequest(format!(
                "the prompt ({} tokens) fills the context ({n_ctx} tokens)",
                prompt.len()
            )));
        }
        let limit = room.min(MAX_TOKENS_CAP);
        let max_tokens = match self.max_tokens {
            None | Some(-1) => limit,
            Some(n) if n < 1 => {
                return Err(ApiError::BadRequest(
                    "max_tokens must be a positive integer".into(),
                ))
            }
            Some(n) if n as u64 > limit as u64 => {
                return Err(ApiError::BadRequest(format!(
                    "max_tokens {n} exceeds the limit {limit} (context {n_ctx}, prompt {} tokens, cap {MAX_TOKENS_CAP})",
                    prompt.len()
                )))
            }
            Some(n) => n as usize,
        };
        let top_k = match self.top_k {
            Some(k) if k < 0 => return Err(ApiError::BadRequest("top_k must be >= 0".into())),
            Some(k) => i32::try_from(k).unwrap_or(i32::MAX),
            None => default_sampling.top_k,
        };
        let repeat_last_n = match self.repeat_last_n {
            Some(n) if n < -1 => {
                return Err(ApiError::BadRequest("repeat_last_n must be >= -1".into()))
            }
            Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
            None => default_sampling.repeat_last_n,
        };
        let seed = match self.seed {
            Some(s) if s < 0 => DEFAULT_SEED,
            Some(s) => s as u64,
            None => DEFAULT_SEED,
        };
        Ok(GenerateRequest {
            prompt,
            sampling: SamplingParams {
                temperature: self.temperature.unwrap_or(default_sampling.temperature),
                top_k,
                top_p: self.top_p.unwrap_or(default_sampling.top_p),
                min_p: self.min_p.unwrap_or(default_sampling.min_p),
                repeat_penalty: self
                    .repeat_penalty
                    .unwrap_or(default_sampling.repeat_penalty),
                repeat_last_n,
                frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
                presence_penalty: self.presence_penalty.unwrap_or(0.0),
                seed,
                ..default_sampling.clone()
            },
            max_tokens,
            stop: self.stop.clone(),
            ignore_eos: self.ignore_eos,
            logprobs: self.logprobs,
            json: self.json,
        })
    }
}

/// Start a generation; its events arrive on the returned channel. Dropping the receiver (the
/// client went away) cancels the generation before the engine's next step. The lease keeps the
/// model loaded until the generation ends. A generation that outlives the per-request wall-clock
/// cap, or the shutdown drain, is cancelled and ends with a `Length` finish.
pub fn start(
    served: Lease,
    req: GenerateRequest,
    state: &AppState,
) -> Result<mpsc::Receiver<Event>, ApiError> {
    let metrics = state.metrics.clone();
    let limits = state.limits.clone();
    metrics.requests.fetch_add(1, Ordering::Relaxed);
    if limits.drain_deadline().is_some() {
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::Busy("the server is shutting down".into()));
    }
    let prompt_tokens = req.prompt.len();
    let generation = served
        .model
        .engine
        .handle()
        .generate(req)
        .inspect_err(|_| {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
        })?;
    let (tx, rx) = mpsc::channel(256);
    metrics.streams.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("slm-stream".into())
        .spawn(move || {
            let _lease = served;
            let t0 = Instant::now();
            let cap = limits.max_request.map(|d| t0 + d);
            let mut last: Option<Instant> = None;
            let mut generated = 0usize;
            let mut first_at: Option<Instant> = None;
            loop {
                let now = Instant::now();
                let over = cap.is_some_and(|c| now >= c)
                    || limits.drain_deadline().is_some_and(|d| now >= d);
                let ev = if over {
                    // Wall-clock cap or shutdown drain: end the generation with a final record.
                    generation.cancel();
                    metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                    let first = first_at.unwrap_or(now);
                    Event::Done(Done {
                        finish: FinishReason::Length,
                        prompt_tokens,
                        cached_tokens: 0,
                        generated_tokens: generated,
                        prompt_time: first.duration_since(t0),
                        gen_time: now.duration_since(first),
                    })
                } else {
                    match generation.next_timeout(Duration::from_millis(100)) {
                        Ok(Some(ev)) => ev,
                        Ok(None) if tx.is_closed() => break,
                        Ok(None) => continue,
                        Err(()) => break,
                    }
                };
                match &ev {
                    Event::Token { .. } => {
                        generated += 1;
                        let now = Instant::now();
                        match last {
                            None => {
                                first_at = Some(now);
                                let us = now.duration_since(t0).as_micros() as u64;
                                metrics.ttft_us_sum.fetch_add(us, Ordering::Relaxed);
                                metrics.ttft_count.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(prev) => {
                                let us = now.duration_since(prev).as_micros() as u64;
                                metrics.itl_us_sum.fetch_add(us, Ordering::Relaxed);
                                metrics.itl_count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        last = Some(now);
                    }
                    Event::Done(d) => {
                        metrics
                            .prompt_tokens
                            .fetch_add(d.prompt_tokens as u64, Ordering::Relaxed);
                        metrics
                            .generated_tokens
                            .fetch_add(d.generated_tokens as u64, Ordering::Relaxed);
                    }
                    Event::Error(_) => {
                        metrics.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let end = !matches!(ev, Event::Token { .. });
                if tx.blocking_send(ev).is_err() || end {
                    break;
                }
            }
            drop(generation);
            metrics.streams.fetch_sub(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        state.metrics.streams.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::Internal(format!(
            "cannot start a stream thread: {e}"
        )));
    }
    Ok(rx)
}

/// A whole answer.
pub struct Collected {
    pub text: String,
    pub logprobs: Vec<Sampled>,
    pub done: Done,
}

pub async fn collect(mut rx: mpsc::Receiver<Event>) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token {
                text: t,
                logprobs: lp,
                ..
            } => {
                text.push_str(&t);
                if let Some(lp) = lp {
                    logprobs.push(lp);
                }
            }
            Event::Done(done) => {
                return Ok(Collected {
                    text,
                    logprobs,
                    done,
                })
            }
            Event::Error(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal("the generation ended early".into()))
}

pub fn finish_name(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}
