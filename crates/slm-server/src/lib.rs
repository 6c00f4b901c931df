//! `slm serve`: an OpenAI- and Ollama-compatible HTTP API over loaded models. Each model runs on
//! its own engine thread (continuous batching over its KV-cache slots); handlers translate API
//! requests into [`slm_engine::GenerateRequest`]s and engine events into JSON, SSE or NDJSON.
//! Async stops at the engine handle: a request's events cross from the engine's thread to the
//! handler through a channel, and a client that goes away cancels its generation. Models load on
//! demand by name (`models`) within a memory budget; admin routes manage the store (`admin`).
#![forbid(unsafe_code)]

mod admin;
pub mod audit;
pub mod auth;
mod conn;
mod error;
mod generate;
pub mod keep_alive;
pub mod keys;
mod metrics;
pub mod models;
mod ollama;
mod openai;
mod state;

use std::time::{Duration, Instant};

use axum::routing::{delete, get, post};
use axum::Router;

pub use conn::ConnLimits;
pub use error::ApiError;
pub use keep_alive::KeepAlive;
pub use models::{ModelConfig, Models};
pub use state::{unix_now, AppState, Limits, ServedModel};

use auth::Access;
use keys::Role;

/// Every route the server serves and who may call it: the router is built from this table and
/// the guard denies anything not in it, so a route cannot exist without a policy.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/health", Access::Public),
    ("GET", "/metrics", Access::Min(Role::Viewer)),
    ("GET", "/v1/models", Access::Min(Role::Viewer)),
    ("POST", "/v1/chat/completions", Access::Min(Role::User)),
    ("POST", "/v1/completions", Access::Min(Role::User)),
    ("POST", "/api/generate", Access::Min(Role::User)),
    ("POST", "/api/chat", Access::Min(Role::User)),
    ("GET", "/api/tags", Access::Min(Role::Viewer)),
    ("POST", "/api/show", Access::Min(Role::Viewer)),
    ("GET", "/api/ps", Access::Min(Role::Viewer)),
    ("GET", "/api/version", Access::Min(Role::Viewer)),
    ("POST", "/api/tokenize", Access::Min(Role::User)),
    ("POST", "/api/detokenize", Access::Min(Role::User)),
    ("POST", "/api/pull", Access::Min(Role::Admin)),
    ("POST", "/api/copy", Access::Min(Role::Admin)),
    ("POST", "/api/create", Access::Min(Role::Admin)),
    ("DELETE", "/api/delete", Access::Min(Role::Admin)),
];

/// The application router (testable without binding a port).
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for &(method, path, _) in ROUTES {
        let handler = match (method, path) {
            ("GET", "/health") => get(state::health),
            ("GET", "/metrics") => get(metrics::metrics),
            ("GET", "/v1/models") => get(openai::models),
            ("POST", "/v1/chat/completions") => post(openai::chat_completions),
            ("POST", "/v1/completions") => post(openai::completions),
            ("POST", "/api/generate") => post(ollama::generate),
            ("POST", "/api/chat") => post(ollama::chat),
            ("GET", "/api/tags") => get(ollama::tags),
            ("POST", "/api/show") => post(ollama::show),
            ("GET", "/api/ps") => get(ollama::ps),
            ("GET", "/api/version") => get(ollama::version),
            ("POST", "/api/tokenize") => post(ollama::tokenize),
            ("POST", "/api/detokenize") => post(ollama::detokenize),
            ("POST", "/api/pull") => post(admin::pull),
            ("POST", "/api/copy") => post(admin::copy),
            ("POST", "/api/create") => post(admin::create),
            ("DELETE", "/api/delete") => delete(admin::delete),
            // A policy row without a handler is caught by the route-table test (it answers 404).
            _ => continue,
        };
        r = r.route(path, handler);
    }
    r.fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(8 << 20))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn(error::catch_panics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// Serve on a bound listener until Ctrl-C or SIGTERM, then drain: stop accepting, refuse new
/// generations, let running ones finish for up to `shutdown_timeout` (then end them with a
/// final `length` record), and return once every connection has closed (or 2 s after the
/// drain, closing what is left). Idle models are unloaded by a reaper in the meantime.
/// Connections are held to `limits` (header size and count, header and idle timeouts, the
/// connection cap; see [`ConnLimits`]).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown_timeout: Duration,
    limits: ConnLimits,
) -> std::io::Result<()> {
    serve_until(listener, state, shutdown_timeout, limits, shutdown_signal()).await
}

/// [`serve_on`] with the shutdown trigger given by the caller (tests) instead of the signals.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown_timeout: Duration,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let models = state.models.clone();
    let reaper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            models.reap(None).await;
        }
    });
    let drain = state.limits.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining for up to {shutdown_timeout:?}");
        *drain
            .drain_deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + shutdown_timeout);
    };
    let r = conn::serve(
        listener,
        router(state),
        limits,
        signal,
        shutdown_timeout + Duration::from_secs(2),
    )
    .await;
    reaper.abort();
    r
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
