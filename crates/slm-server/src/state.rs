//! Server state: the model manager, counters, limits and the drain deadline, and `/health`.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;

pub use crate::models::ServedModel;
use crate::models::{Lease, Models};

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
    /// Generations cut by the per-request wall-clock cap or the shutdown drain.
    pub timeouts: AtomicU64,
    /// Generation streams running now.
    pub streams: AtomicU64,
}

/// Per-request limits and the shutdown drain.
#[derive(Default)]
pub struct Limits {
    /// Wall-clock cap of one generation.
    pub max_request: Option<Duration>,
    /// Set at shutdown: generations still running then are ended.
    pub drain_deadline: Mutex<Option<Instant>>,
}

impl Limits {
    pub fn drain_deadline(&self) -> Option<Instant> {
        *self
            .drain_deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
pub struct AppState {
    pub models: Arc<Models>,
    pub auth: Arc<crate::auth::Auth>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    pub started: Instant,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AppState {
    pub fn new(models: Models, auth: crate::auth::Auth, limits: Limits) -> AppState {
        AppState {
            models: Arc::new(models),
            auth: Arc::new(auth),
            metrics: Arc::new(Metrics::default()),
            limits: Arc::new(limits),
            started: Instant::now(),
        }
    }

    /// The model for `name` (loading it when needed), with the server's default keep-alive.
    pub async fn model(&self, name: &str) -> Result<Lease, crate::ApiError> {
        self.models.acquire(name, None).await
    }
}

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "models": state.models.loaded().len(),
        "uptime_s": state.started.elapsed().as_secs(),
    }))
}
