//! The HTTP client policy of every source: https only (plain http only to loopback, for tests and
//! local mirrors), redirects followed by hand with the `Authorization` header dropped whenever the
//! host changes, bounded reads of every non-blob body, timeouts that double as stall detection,
//! and retries with exponential back-off for transient failures.

use std::io::Read;
use std::time::Duration;

use url::Url;

use crate::error::{HubError, Result};

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 8;

/// A bearer token and the one host it may be sent to.
#[derive(Clone, Debug)]
pub struct Auth {
    pub host: String,
    pub token: String,
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    /// No byte for this long = a stalled transfer (the request fails and is retried/resumed).
    pub stall_timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(30),
            retries: 5,
            backoff: Duration::from_millis(500),
            user_agent: format!("slm/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A blocking HTTP client with the policy above.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    pub config: HttpConfig,
}

/// A response whose status is 2xx (or 416 for a Range request), with its final URL.
pub struct Response {
    pub status: u16,
    pub url: Url,
    /// `X-Linked-Etag` seen on any hop (Hugging Face puts the LFS sha256 there before redirecting).
    pub linked_etag: Option<String>,
    inner: ureq::Response,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.header(name)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn into_reader(self) -> Box<dyn Read + Send + Sync + 'static> {
        self.inner.into_reader()
    }

    /// Read the whole body, failing past `limit` bytes.
    pub fn read_bounded(self, limit: u64) -> Result<Vec<u8>> {
        let url = self.url.to_string();
        let mut buf = Vec::new();
        self.into_reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| HubError::Network {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if buf.len() as u64 > limit {
            return Err(HubError::BodyTooLarge { url, limit });
        }
        Ok(buf)
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

/// Parse a URL and apply the scheme policy: https, or http to a loopback host.
pub fn check_url(s: &str) -> Result<Url> {
    let refuse = |reason| HubError::RefusedUrl {
        url: s.chars().take(200).collect(),
        reason,
    };
    let u = Url::parse(s).map_err(|_| refuse("not a valid URL"))?;
    let host = u.host().ok_or_else(|| refuse("no host"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(refuse("credentials in URLs are not accepted"));
    }
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback(&host) => Ok(u),
        "http" => Err(refuse("plain http is only allowed to localhost")),
        _ => Err(refuse("only https URLs are fetched")),
    }
}

/// The host (with port) of a URL, for auth scoping.
pub fn host_of(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
    }
}

impl Http {
    pub fn new(config: HttpConfig) -> Http {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.stall_timeout)
            .user_agent(&config.user_agent)
            .build();
        Http { agent, config }
    }

    /// GET `url` with extra headers; `auth` is sent only while the request stays on its host.
    /// Returns 2xx responses (and 416); other statuses become `HttpStatus` errors.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&Auth>,
    ) -> Result<Response> {
        let mut u = check_url(url)?;
        let mut linked_etag = None;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.request_url("GET", &u);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = auth {
                if host_of(&u) == a.host {
                    req = req.set("Authorization", &format!("Bearer {}", a.token));
                }
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(416, r)) => r,
                Err(ureq::Error::Status(401, r)) => {
                    return Err(HubError::Unauthorized {
                        url: u.to_string(),
                        challenge: r
                            .header("www-authenticate")
                            .map(|c| c.chars().take(1000).collect()),
                    })
                }
                Err(ureq::Error::Status(code, _)) => {
                    return Err(HubError::HttpStatus {
                        url: u.to_string(),
                        status: code,
                    })
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(HubError::Network {
                        url: u.to_string(),
                        reason: t.to_string(),
                    })
                }
            };
            let status = resp.status();
            if let Some(e) = resp.header("x-linked-etag") {
                linked_etag = Some(
                    e.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .to_string(),
                );
            }
            if (300..400).contains(&status) {
                let loc = resp
                    .header("location")
                    .ok_or_else(|| HubError::HttpStatus {
                        url: u.to_string(),
                        status,
                    })?;
                let next = u.join(loc).map_err(|_| HubError::RefusedUrl {
                    url: loc.chars().take(200).collect(),
                    reason: "bad redirect location",
                })?;
                u = check_url(next.as_str())?;
                continue;
            }
            return Ok(Response {
                status,
                url: u,
                linked_etag,
                inner: resp,
            });
        }
        Err(HubError::Network {
            url: url.to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// GET and parse a JSON body of at most `limit` bytes.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&Auth>,
        limit: u64,
    ) -> Result<T> {
        let body = self.with_retries(|| self.get(url, headers, auth)?.read_bounded(limit))?;
        serde_json::from_slice(&body).map_err(|e| HubError::BadJson {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// Run `f`, retrying transient failures with exponential back-off.
    pub fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            match f() {
                Err(e) if e.is_transient() && attempt < self.config.retries => {
                    attempt += 1;
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2).min(Duration::from_secs(30));
                }
                other => return other,
            }
        }
    }
}
