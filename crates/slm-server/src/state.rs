//! Server state: the served models by name, counters, and the health and metrics endpoints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use slm_engine::LoadedModel;

use crate::error::ApiError;

/// A model the server answers for.
pub struct ServedModel {
    pub name: String,
    pub model: LoadedModel,
    /// When it was loaded (seconds since the Unix epoch).
    pub loaded_at: u64,
}

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    /// Sum and count of time to first token, microseconds.
    pub ttft_us_sum: AtomicU64,
    pub ttft_count: AtomicU64,
    /// Sum and count of inter-token latency, microseconds.
    pub itl_us_sum: AtomicU64,
    pub itl_count: AtomicU64,
}

#[derive(Clone)]
pub struct AppState {
    pub models: Arc<BTreeMap<String, ServedModel>>,
    pub auth: Arc<crate::auth::Auth>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AppState {
    pub fn new(models: Vec<ServedModel>, auth: crate::auth::Auth) -> AppState {
        AppState {
            models: Arc::new(models.into_iter().map(|m| (m.name.clone(), m)).collect()),
            auth: Arc::new(auth),
            metrics: Arc::new(Metrics::default()),
            started: Instant::now(),
        }
    }

    /// Find a model by name; `name:latest` and a bare name are the same model.
    pub fn model(&self, name: &str) -> Result<&ServedModel, ApiError> {
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        self.models
            .get(name)
            .or_else(|| self.models.get(bare))
            .or_else(|| {
                // With one model served, an empty name means that model.
                if name.is_empty() && self.models.len() == 1 {
                    self.models.values().next()
                } else {
                    None
                }
            })
            .ok_or_else(|| ApiError::ModelNotFound(name.to_string()))
    }
}

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "models": state.models.len(),
        "uptime_s": state.started.elapsed().as_secs(),
    }))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, u64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in lines {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    metric(
        "slm_requests_total",
        "counter",
        "Generation requests received.",
        vec![(String::new(), g(&m.requests))],
    );
    metric(
        "slm_request_errors_total",
        "counter",
        "Generation requests that failed.",
        vec![(String::new(), g(&m.errors))],
    );
    metric(
        "slm_prompt_tokens_total",
        "counter",
        "Prompt tokens processed.",
        vec![(String::new(), g(&m.prompt_tokens))],
    );
    metric(
        "slm_generated_tokens_total",
        "counter",
        "Tokens generated.",
        vec![(String::new(), g(&m.generated_tokens))],
    );
    metric(
        "slm_time_to_first_token_us_sum",
        "counter",
        "Sum of time to first token (us).",
        vec![(String::new(), g(&m.ttft_us_sum))],
    );
    metric(
        "slm_time_to_first_token_count",
        "counter",
        "Requests with a first token.",
        vec![(String::new(), g(&m.ttft_count))],
    );
    metric(
        "slm_inter_token_latency_us_sum",
        "counter",
        "Sum of inter-token latencies (us).",
        vec![(String::new(), g(&m.itl_us_sum))],
    );
    metric(
        "slm_inter_token_latency_count",
        "counter",
        "Inter-token gaps measured.",
        vec![(String::new(), g(&m.itl_count))],
    );
    let per_model = |f: &dyn Fn(&ServedModel) -> u64| {
        state
            .models
            .values()
            .map(|s| {
                (
                    format!("{{model=\"{}\"}}", s.name.replace(['"', '\\', '\n'], "_")),
                    f(s),
                )
            })
            .collect::<Vec<_>>()
    };
    metric(
        "slm_queue_depth",
        "gauge",
        "Requests waiting for a sequence slot.",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .queued
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_active_sequences",
        "gauge",
        "Sequences being generated.",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .active
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_prompt_tokens_reused_total",
        "counter",
        "Prompt tokens served from the prefix cache.",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .tokens_reused
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_engine_tokens_generated_total",
        "counter",
        "Tokens sampled by the engine (including cancelled requests).",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .tokens_generated
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_model_loaded",
        "gauge",
        "Loaded models.",
        per_model(&|_| 1),
    );
    metric(
        "slm_model_weights_bytes",
        "gauge",
        "Bytes of weights of each loaded model.",
        per_model(&|s| s.model.summary.tensor_bytes),
    );
    ([("content-type", "text/plain; version=0.0.4")], out)
}
