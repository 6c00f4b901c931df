//! API errors: one type, rendered in OpenAI's JSON shape (`{"error": {"message", "type", "code"}}`),
//! which Ollama clients also read (`error` is present). Messages carry no paths or addresses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("model {0:?} not found")]
    ModelNotFound(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    NotFoundMsg(String),
    #[error("{0}")]
    Upstream(String),
    #[error("server busy: {0}")]
    Busy(String),
    #[error("insufficient memory: {0}")]
    InsufficientMemory(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::ModelNotFound(_) | ApiError::NotFound | ApiError::NotFoundMsg(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientMemory(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request_error",
            ApiError::ModelNotFound(_) | ApiError::NotFound | ApiError::NotFoundMsg(_) => {
                "not_found_error"
            }
            ApiError::Upstream(_) => "upstream_error",
            ApiError::Busy(_) => "server_busy",
            ApiError::InsufficientMemory(_) => "insufficient_memory",
            ApiError::Internal(_) => "server_error",
        }
    }
}

impl From<slm_engine::EngineError> for ApiError {
    fn from(e: slm_engine::EngineError) -> Self {
        use slm_engine::EngineError as E;
        match e {
            E::QueueFull(_) | E::Stopped => ApiError::Busy(e.to_string()),
            E::Model(m) => ApiError::Internal(m),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<slm_hub::HubError> for ApiError {
    fn from(e: slm_hub::HubError) -> Self {
        use slm_hub::HubError as H;
        match e {
            H::InvalidName { .. } | H::InvalidDigest { .. } | H::InvalidFileName { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            H::NotFound { .. } | H::NotInCatalog { .. } | H::Offline { .. } => {
                ApiError::NotFoundMsg(e.to_string())
            }
            H::HttpStatus { status: 404, .. } => ApiError::NotFoundMsg(e.to_string()),
            H::Other(m) => ApiError::BadRequest(m),
            // Registry and network failures: the upstream failed, not this server; no paths.
            H::Io { .. } | H::Symlink { .. } => ApiError::Internal("the model store failed".into()),
            other => ApiError::Upstream(other.to_string()),
        }
    }
}

impl From<slm_engine::LoadError> for ApiError {
    fn from(e: slm_engine::LoadError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "error": { "message": self.to_string(), "type": self.kind(), "code": status.as_u16() }
        });
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Give every 4xx answer that is not JSON (axum's extractor rejections: malformed JSON, wrong
/// content type, body too large) the same JSON error shape as the server's own errors.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let body = serde_json::json!({
        "error": {"message": text, "type": "invalid_request_error", "code": status.as_u16()}
    });
    let mut out = (status, Json(body)).into_response();
    for (k, v) in parts.headers.iter() {
        if k != "content-type" && k != "content-length" {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Handler panics caught so far (each answered 500 instead of dropping the connection).
pub static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Catch a panicking handler: count it, log it, answer 500 (reliability guide: per-request
/// `catch_unwind`, the counter stays 0 in the fuzz tests).
pub async fn catch_panics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!("a request handler panicked");
            ApiError::Internal("internal error".into()).into_response()
        }
    }
}
