//! Admin endpoints over the slm-hub store, Ollama-shaped: `/api/pull` (NDJSON progress:
//! `status`, `digest`, `total`, `completed`), `/api/delete`, `/api/copy`, `/api/create` (`from`
//! a stored model plus template / system / parameters / messages / license). Each request
//! leaves one audit record with its outcome. Names are store names, never file paths or URLs.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use slm_hub::modelfile::Modelfile;
use slm_hub::progress::Progress;
use slm_hub::{Digest, Http, HttpConfig, PullOptions, Store};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

fn audit(
    state: &AppState,
    p: &Option<Extension<Principal>>,
    method: &Method,
    route: &str,
    status: u16,
    model: &str,
) {
    let anonymous = Principal::default();
    let p = p.as_ref().map_or(&anonymous, |e| &e.0);
    let key = match (&p.key_id, p.role) {
        (Some(id), Some(role)) => Some((id.as_str(), role)),
        _ => None,
    };
    let decision = if status < 400 {
        "allow"
    } else {
        "allow-failed"
    };
    state
        .auth
        .record(key, method.as_str(), route, decision, status, Some(model));
}

fn store(state: &AppState) -> Result<Store, ApiError> {
    state
        .models
        .store()
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("this server has no model store".into()))
}

fn pick(model: String, name: String) -> Result<String, ApiError> {
    let n = if model.is_empty() { name } else { model };
    if n.is_empty() || n.len() > 512 {
        return Err(ApiError::BadRequest("a model name is required".into()));
    }
    if n.contains("://") {
        return Err(ApiError::BadRequest(
            "pull a model by name (catalog, hf.co/..., or registry reference), not by URL".into(),
        ));
    }
    Ok(n)
}

fn ndjson_lines(s: impl futures_util::Stream<Item = Value> + Send + 'static) -> Response {
    let body = s.map(|v| Ok::<_, Infallible>(format!("{v}\n")));
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| ApiError::Internal("response".into()).into_response())
}

/// Pull progress as Ollama's NDJSON lines.
struct Lines {
    tx: UnboundedSender<Value>,
    digest: Option<String>,
    total: Option<u64>,
    done: u64,
    sent: Instant,
}

impl Lines {
    fn line(&mut self) {
        let mut v = json!({"status": "pulling"});
        if let Some(d) = &self.digest {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            v["status"] = json!(format!("pulling {}", &hex[..hex.len().min(12)]));
            v["digest"] = json!(d);
        }
        if let Some(t) = self.total {
            v["total"] = json!(t);
        }
        v["completed"] = json!(self.done);
        let _ = self.tx.send(v);
        self.sent = Instant::now();
    }
}

impl Progress for Lines {
    fn blob(&mut self, digest: &Digest, size: Option<u64>) {
        self.digest = Some(digest.to_string());
        self.total = size;
        self.done = 0;
    }
    fn start(&mut self, _label: &str, total: Option<u64>, done: u64) {
        self.total = total.or(self.total);
        self.done = done;
        self.line();
    }
    fn inc(&mut self, n: u64) {
        self.done += n;
        if self.sent.elapsed() >= Duration::from_millis(100) {
            self.line();
        }
    }
    fn reset(&mut self, done: u64) {
        self.done = done;
    }
    fn finish(&mut self, _msg: &str) {
        if let Some(t) = self.total {
            self.done = t;
        }
        self.line();
    }
    fn note(&mut self, msg: &str) {
        let _ = self
            .tx
            .send(json!({ "status": msg.chars().take(300).collect::<String>() }));
    }
}

#[derive(Deserialize)]
pub struct PullRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    stream: Option<bool>,
    /// Ollama's flag; plain http is allowed to loopback registries only, whatever it says.
    #[serde(default)]
    #[allow(dead_code)]
    insecure: bool,
}

pub async fn pull(
    State(state): State<AppState>,
    who: Option<Extension<Principal>>,
    Json(req): Json<PullRequest>,
) -> Result<Response, ApiError> {
    const ROUTE: &str = "/api/pull";
    let fail = |e: ApiError, name: &str| {
        audit(
            &state,
            &who,
            &Method::POST,
            ROUTE,
            e.status().as_u16(),
            name,
        );
        e
    };
    let name = pick(req.model, req.name).map_err(|e| fail(e, ""))?;
    let store = store(&state).map_err(|e| fail(e, &name))?;
    let offline = state.models.config.offline;
    let (tx, rx) = unbounded_channel::<Value>();
    let input = name.clone();
    let task = tokio::task::spawn_blocking(move || {
        let _ = tx.send(json!({"status": "pulling manifest"}));
        let mut lines = Lines {
            tx: tx.clone(),
            digest: None,
            total: None,
            done: 0,
            sent: Instant::now(),
        };
        let http = Http::new(HttpConfig::default());
        let opts = PullOptions {
            offline,
            ..Default::default()
        };
        match slm_hub::pull(&store, &http, &input, &opts, &mut lines) {
            Ok(p) => {
                let _ = tx.send(json!({"status": "verifying sha256 digest"}));
                let _ = tx.send(json!({"status": "writing manifest"}));
                let _ = tx.send(json!({"status": "success"}));
                Ok(p.name.to_string())
            }
            Err(e) => {
                let e = ApiError::from(e);
                let _ = tx.send(json!({"error": e.to_string()}));
                Err(e)
            }
        }
    });
    let finished = {
        let state = state.clone();
        async move {
            let r = task
                .await
                .unwrap_or_else(|_| Err(ApiError::Internal("the pull failed".into())));
            let status = r.as_ref().map_or_else(|e| e.status().as_u16(), |_| 200);
            audit(&state, &who, &Method::POST, ROUTE, status, &name);
            if let Ok(key) = &r {
                // A re-pulled name may point to new blobs: reload on next use.
                state.models.forget(key).await;
            }
            r
        }
    };
    if req.stream.unwrap_or(true) {
        tokio::spawn(finished);
        return Ok(ndjson_lines(UnboundedReceiverStream::new(rx)));
    }
    finished.await?;
    Ok(Json(json!({"status": "success"})).into_response())
}

#[derive(Deserialize)]
pub struct DeleteRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
}

pub async fn delete(
    State(state): State<AppState>,
    who: Option<Extension<Principal>>,
    Json(req): Json<DeleteRequest>,
) -> Result<Response, ApiError> {
    let name = req.model.clone();
    let r = async {
        let input = pick(req.model, req.name)?;
        let store = store(&state)?;
        let key = state.models.store_name(&input)?;
        let k = key.clone();
        tokio::task::spawn_blocking(move || store.remove(&k))
            .await
            .map_err(|_| ApiError::Internal("delete failed".into()))??;
        state.models.forget(&key.to_string()).await;
        Ok::<_, ApiError>(())
    }
    .await;
    let status = r.as_ref().map_or_else(|e| e.status().as_u16(), |_| 200);
    audit(&state, &who, &Method::DELETE, "/api/delete", status, &name);
    r?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub struct CopyRequest {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
}

pub async fn copy(
    State(state): State<AppState>,
    who: Option<Extension<Principal>>,
    Json(req): Json<CopyRequest>,
) -> Result<Response, ApiError> {
    let target = format!(
        "{} -> {}",
        req.source.chars().take(100).collect::<String>(),
        req.destination.chars().take(100).collect::<String>()
    );
    let r = async {
        let src = state.models.store_name(&pick(req.source, String::new())?)?;
        let dst = state
            .models
            .store_name(&pick(req.destination, String::new())?)?;
        let store = store(&state)?;
        let d = dst.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
            if !store.is_complete(&src)? {
                return Err(ApiError::ModelNotFound(src.to_string()));
            }
            Ok(store.copy(&src, &d)?)
        })
        .await
        .map_err(|_| ApiError::Internal("copy failed".into()))??;
        state.models.forget(&dst.to_string()).await;
        Ok::<_, ApiError>(())
    }
    .await;
    let status = r.as_ref().map_or_else(|e| e.status().as_u16(), |_| 200);
    audit(&state, &who, &Method::POST, "/api/copy", status, &target);
    r?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    from: Option<String>,
    template: Option<String>,
    system: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    messages: Vec<Value>,
    license: Option<Value>,
    stream: Option<bool>,
    quantize: Option<Value>,
    files: Option<Value>,
    adapters: Option<Value>,
}

const MAX_TEXT: usize = 256 << 10;

fn modelfile(req: &CreateRequest) -> Result<Modelfile, ApiError> {
    if req.quantize.is_some() || req.files.is_some() || req.adapters.is_some() {
        return Err(ApiError::BadRequest(
            "create supports `from` a stored model with template/system/parameters/messages/license \
             (quantize, files and adapters are not supported)"
                .into(),
        ));
    }
    let from = req
        .from
        .clone()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::BadRequest("`from` (a stored model) is required".into()))?;
    let too_long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_TEXT);
    if too_long(&req.template) || too_long(&req.system) {
        return Err(ApiError::BadRequest(format!(
            "template and system are limited to {MAX_TEXT} bytes"
        )));
    }
    let parameters = req.parameters.clone().unwrap_or_default();
    slm_hub::modelfile::check_parameters(&parameters)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if req.messages.len() > 1024 {
        return Err(ApiError::BadRequest("at most 1024 messages".into()));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        match (
            m.get("role").and_then(Value::as_str),
            m.get("content").and_then(Value::as_str),
        ) {
            (Some(r), Some(c)) if c.len() <= MAX_TEXT => messages.push((r.into(), c.into())),
            _ => {
                return Err(ApiError::BadRequest(
                    "each message needs a role and a content string".into(),
                ))
            }
        }
    }
    let licenses = match &req.license {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.len() <= 16 => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::BadRequest("license must be strings".into()))?,
        Some(_) => return Err(ApiError::BadRequest("license must be strings".into())),
    };
    if licenses.iter().any(|l| l.len() > MAX_TEXT) {
        return Err(ApiError::BadRequest("license too long".into()));
    }
    Ok(Modelfile {
        from,
        parameters,
        template: req.template.clone(),
        system: req.system.clone(),
        messages,
        licenses,
    })
}

pub async fn create(
    State(state): State<AppState>,
    who: Option<Extension<Principal>>,
    Json(req): Json<CreateRequest>,
) -> Result<Response, ApiError> {
    let target = if req.model.is_empty() {
        req.name.clone()
    } else {
        req.model.clone()
    };
    let stream = req.stream.unwrap_or(true);
    let r = async {
        let name = state
            .models
            .store_name(&pick(req.model.clone(), req.name.clone())?)?;
        let mf = modelfile(&req)?;
        let store = store(&state)?;
        let n = name.clone();
        tokio::task::spawn_blocking(move || slm_hub::modelfile::create_from_store(&store, &n, &mf))
            .await
            .map_err(|_| ApiError::Internal("create failed".into()))??;
        state.models.forget(&name.to_string()).await;
        Ok::<_, ApiError>(())
    }
    .await;
    let status = r.as_ref().map_or_else(|e| e.status().as_u16(), |_| 200);
    audit(&state, &who, &Method::POST, "/api/create", status, &target);
    r?;
    if stream {
        let lines = vec![
            json!({"status": "using existing layer"}),
            json!({"status": "writing manifest"}),
            json!({"status": "success"}),
        ];
        return Ok(ndjson_lines(futures_util::stream::iter(lines)));
    }
    Ok(Json(json!({"status": "success"})).into_response())
}
