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
    #[error("server busy: {0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::ModelNotFound(_) | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request_error",
            ApiError::ModelNotFound(_) | ApiError::NotFound => "not_found_error",
            ApiError::Busy(_) => "server_busy",
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
