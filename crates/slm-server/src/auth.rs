//! Deny-by-default access control, before any body is read: every (method, path) the router
//! serves is listed in [`crate::ROUTES`] with who may call it; anything else is a 404. When the
//! key store holds active keys, callers must send `Authorization: Bearer KEY` with a role at least
//! the route's; failures are 401/403 and go to the audit log. The Host header must name the
//! loopback interface when the server is bound to it (DNS-rebinding defence).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::audit::{AuditLog, AuditRecord};
use crate::keys::{KeyStore, Role};
use crate::state::{unix_now, AppState};

/// Who made a request that passed the guard (anonymous when no keys are configured); handlers
/// of state-changing routes put it in their audit record.
#[derive(Clone, Debug, Default)]
pub struct Principal {
    pub key_id: Option<String>,
    pub role: Option<Role>,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    Min(Role),
}

pub struct Auth {
    key_file: Option<PathBuf>,
    store: Mutex<(Option<SystemTime>, KeyStore)>,
    pub audit: Option<AuditLog>,
    /// Accept only loopback Host headers.
    pub loopback_only: bool,
}

impl Auth {
    /// No keys, no audit log: everything allowed except foreign Host headers.
    pub fn open_loopback() -> Auth {
        Auth {
            key_file: None,
            store: Mutex::new((None, KeyStore::default())),
            audit: None,
            loopback_only: true,
        }
    }

    pub fn new(key_file: Option<PathBuf>, audit: Option<AuditLog>, loopback_only: bool) -> Auth {
        let store = key_file
            .as_deref()
            .and_then(|p| KeyStore::load(p).ok())
            .unwrap_or_default();
        let mtime = key_file
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok());
        Auth {
            key_file,
            store: Mutex::new((mtime, store)),
            audit,
            loopback_only,
        }
    }

    /// Whether keys are enforced (the store holds at least one active key).
    pub fn keys_required(&self) -> bool {
        self.with_store(|s| s.active().next().is_some())
    }

    /// Run `f` on the current key store, reloading it when the file changed (so revocation takes
    /// effect on the next request, without a restart).
    fn with_store<T>(&self, f: impl FnOnce(&KeyStore) -> T) -> T {
        let mut guard = match self.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(path) = &self.key_file {
            let mtime = std::fs::metadata(path).ok().and_then(|m| m.modified().ok());
            if mtime != guard.0 {
                guard.1 = KeyStore::load(path).unwrap_or_default();
                guard.0 = mtime;
            }
        }
        f(&guard.1)
    }

    fn audit(
        &self,
        key: Option<(&str, Role)>,
        method: &str,
        route: &str,
        decision: &str,
        status: StatusCode,
    ) {
        self.record(key, method, route, decision, status.as_u16(), None);
    }

    /// Append one audit record (a state-changing request, with the model it concerned).
    pub fn record(
        &self,
        key: Option<(&str, Role)>,
        method: &str,
        route: &str,
        decision: &str,
        status: u16,
        model: Option<&str>,
    ) {
        if let Some(log) = &self.audit {
            let model: Option<String> = model.map(|m| m.chars().take(200).collect());
            let rec = AuditRecord {
                time: unix_now(),
                key_id: key.map(|k| k.0),
                role: key.map(|k| k.1.name()),
                method,
                route,
                decision,
                status,
                model: model.as_deref(),
            };
            if let Err(e) = log.append(&rec) {
                tracing::error!("audit log: {e}");
            }
        }
    }
}

fn deny(status: StatusCode, msg: &str) -> Response {
    let mut r = (
        status,
        Json(serde_json::json!({"error": {"message": msg, "type": "authentication_error", "code": status.as_u16()}})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

fn loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty()
                && !host.ends_with(']')
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            h
        }
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The guard middleware.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth: &Arc<Auth> = &state.auth;
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if auth.loopback_only {
        let hosts: Vec<_> = req.headers().get_all("host").iter().collect();
        let ok = hosts.len() == 1 && hosts[0].to_str().is_ok_and(loopback_host);
        if !ok {
            auth.audit(None, &method, &path, "deny-host", StatusCode::FORBIDDEN);
            return deny(
                StatusCode::FORBIDDEN,
                "this server only answers requests addressed to localhost",
            );
        }
    }
    let Some(&(_, _, access)) = crate::ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
    else {
        return crate::error::ApiError::NotFound.into_response();
    };
    let Access::Min(required) = access else {
        return next.run(req).await;
    };
    if !auth.keys_required() {
        req.extensions_mut().insert(Principal::default());
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(key) = bearer else {
        auth.audit(
            None,
            &method,
            &path,
            "deny-no-key",
            StatusCode::UNAUTHORIZED,
        );
        return deny(
            StatusCode::UNAUTHORIZED,
            "an API key is required (Authorization: Bearer KEY)",
        );
    };
    let found = auth.with_store(|s| s.authenticate(key).map(|k| (k.id.clone(), k.role)));
    let Some((id, role)) = found else {
        auth.audit(
            None,
            &method,
            &path,
            "deny-bad-key",
            StatusCode::UNAUTHORIZED,
        );
        return deny(StatusCode::UNAUTHORIZED, "invalid or revoked API key");
    };
    if role < required {
        auth.audit(
            Some((&id, role)),
            &method,
            &path,
            "deny-role",
            StatusCode::FORBIDDEN,
        );
        return deny(
            StatusCode::FORBIDDEN,
            "this key's role may not call this endpoint",
        );
    }
    req.extensions_mut().insert(Principal {
        key_id: Some(id),
        role: Some(role),
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:80",
        ] {
            assert!(super::loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil",
            "127.0.0.2",
            "localhost:80/x",
            "",
            "localhost@evil",
            "127.0.0.1 ",
        ] {
            assert!(!super::loopback_host(bad), "{bad}");
        }
    }
}
