//! `slm serve`: an OpenAI- and Ollama-compatible HTTP API over loaded models. Each model runs on
//! its own engine thread (continuous batching over its KV-cache slots); handlers translate API
//! requests into [`slm_engine::GenerateRequest`]s and engine events into JSON, SSE or NDJSON.
//! Async stops at the engine handle: a request's events cross from the engine's thread to the
//! handler through a channel, and a client that goes away cancels its generation.
#![forbid(unsafe_code)]

mod error;
mod generate;
mod ollama;
mod openai;
mod state;

use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use state::{unix_now, AppState, ServedModel};

/// Every route the server registers, with the methods it accepts (the policy table's input).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/api/generate"),
    ("POST", "/api/chat"),
    ("GET", "/api/tags"),
    ("POST", "/api/show"),
    ("GET", "/api/ps"),
    ("GET", "/api/version"),
    ("POST", "/api/tokenize"),
    ("POST", "/api/detokenize"),
];

/// The application router (testable without binding a port).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(state::health))
        .route("/metrics", get(state::metrics))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/api/generate", post(ollama::generate))
        .route("/api/chat", post(ollama::chat))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(ollama::show))
        .route("/api/ps", get(ollama::ps))
        .route("/api/version", get(ollama::version))
        .route("/api/tokenize", post(ollama::tokenize))
        .route("/api/detokenize", post(ollama::detokenize))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(8 << 20))
        .with_state(state)
}

/// Serve on a bound listener until Ctrl-C or SIGTERM.
pub async fn serve_on(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
