//! Ollama registries (v2 distribution protocol): `ollama.com/library/NAME:TAG`,
//! `registry.ollama.ai/...`, or any `host[:port]/NS/NAME:TAG`. The manifest
//! (`/v2/NS/NAME/manifests/TAG`) names the config and layers by digest and media type; each blob
//! comes from `/v2/NS/NAME/blobs/<digest>` and is verified. A 401 with a `Bearer` challenge is
//! answered by fetching a token from the challenge's realm (https, or loopback) and retrying; the
//! token goes to the registry host only.

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{HubError, Result};
use crate::http::{check_url, host_of, Auth, Http};
use crate::manifest::{Layer, MAX_MANIFEST_BYTES};
use crate::name::ModelName;

/// Manifest media types accepted.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// Layer media types kept (others are refused: we do not know what they would do).
pub const KNOWN_MEDIA: &[&str] = &[
    "application/vnd.ollama.image.model",
    "application/vnd.ollama.image.template",
    "application/vnd.ollama.image.system",
    "application/vnd.ollama.image.params",
    "application/vnd.ollama.image.license",
    "application/vnd.ollama.image.messages",
    "application/vnd.ollama.image.projector",
    "application/vnd.ollama.image.adapter",
    "application/vnd.docker.container.image.v1+json",
];

/// A registry reference.
#[derive(Clone, Debug)]
pub struct OllamaRef {
    /// The name stored locally (`registry.ollama.ai/library/gemma3:270m`).
    pub name: ModelName,
    /// `https://host` (or `http://127.0.0.1:port` for a loopback registry).
    pub base: String,
    /// `NS/NAME`.
    pub repository: String,
    pub tag: String,
}

/// Whether the first component looks like a registry host.
fn is_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Parse a registry reference; `None` when the input has no host component.
pub fn parse_ref(input: &str) -> Option<Result<OllamaRef>> {
    let first = input.split('/').next()?;
    if !input.contains('/') || !is_host(first) {
        return None;
    }
    Some((|| {
        let input = match input.strip_prefix("ollama.com/") {
            Some(rest) => format!("registry.ollama.ai/{rest}"),
            None => input.to_string(),
        };
        let name = ModelName::parse(&input)?;
        let parts = name.parts();
        let (host, path) = parts.split_first().ok_or_else(|| HubError::InvalidName {
            input: input.clone(),
            reason: "no repository".into(),
        })?;
        if path.is_empty() {
            return Err(HubError::InvalidName {
                input: input.clone(),
                reason: "want HOST/NAMESPACE/NAME:TAG".into(),
            });
        }
        let path: Vec<String> = if path.len() == 1 {
            vec!["library".to_string(), path.join("/")]
        } else {
            path.to_vec()
        };
        let hostname = host.split(':').next().unwrap_or(host);
        let scheme = if hostname == "localhost" || hostname.starts_with("127.") {
            "http"
        } else {
            "https"
        };
        let base = format!("{scheme}://{host}");
        check_url(&base)?;
        let name = ModelName::parse(&format!("{host}/{}:{}", path.join("/"), name.tag()))?;
        Ok(OllamaRef {
            tag: name.tag().to_string(),
            name,
            base,
            repository: path.join("/"),
        })
    })())
}

#[derive(Deserialize)]
struct RemoteManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(default)]
    config: Option<RemoteLayer>,
    layers: Vec<RemoteLayer>,
}

#[derive(Deserialize)]
struct RemoteLayer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Parse `Bearer realm="...",service="...",scope="..."`.
fn parse_challenge(c: &str) -> Option<(String, Vec<(String, String)>)> {
    let rest = c.trim().strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut params = Vec::new();
    for kv in rest.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "realm" => realm = Some(v),
            k => params.push((k.to_string(), v)),
        }
    }
    Some((realm?, params))
}

/// The client state of one pull: the token once obtained.
pub struct Registry<'a> {
    http: &'a Http,
    r: &'a OllamaRef,
    pub auth: Option<Auth>,
}

impl<'a> Registry<'a> {
    pub fn new(http: &'a Http, r: &'a OllamaRef) -> Registry<'a> {
        Registry {
            http,
            r,
            auth: None,
        }
    }

    fn host(&self) -> String {
        url::Url::parse(&self.r.base)
            .map(|u| host_of(&u))
            .unwrap_or_default()
    }

    fn fetch_token(&mut self, challenge: &str) -> Result<()> {
        let (realm, params) = parse_challenge(challenge).ok_or_else(|| {
            HubError::Other(format!(
                "unsupported auth challenge {:?}",
                challenge.chars().take(100).collect::<String>()
            ))
        })?;
        let mut u = check_url(&realm)?;
        for (k, v) in params {
            u.query_pairs_mut().append_pair(&k, &v);
        }
        let reply: TokenReply = self.http.get_json(u.as_str(), &[], None, 64 << 10)?;
        let token = reply
            .token
            .or(reply.access_token)
            .ok_or_else(|| HubError::Other("no token in the auth reply".into()))?;
        self.auth = Some(Auth {
            host: self.host(),
            token,
        });
        Ok(())
    }

    /// GET with one token round-trip on 401.
    fn get_bounded(&mut self, url: &str, headers: &[(&str, &str)], limit: u64) -> Result<Vec<u8>> {
        match self.http.with_retries(|| {
            self.http
                .get(url, headers, self.auth.as_ref())?
                .read_bounded(limit)
        }) {
            Err(HubError::Unauthorized {
                challenge: Some(c), ..
            }) if self.auth.is_none() => {
                self.fetch_token(&c)?;
                self.http.with_retries(|| {
                    self.http
                        .get(url, headers, self.auth.as_ref())?
                        .read_bounded(limit)
                })
            }
            other => other,
        }
    }

    /// Fetch and validate the manifest: every digest through `Digest::parse`, known media types,
    /// exactly one model layer.
    pub fn manifest(&mut self) -> Result<Vec<Layer>> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.r.base, self.r.repository, self.r.tag
        );
        let body = self.get_bounded(&url, &[("Accept", ACCEPT)], MAX_MANIFEST_BYTES as u64)?;
        let what = self.r.name.to_string();
        let bad = |reason: String| HubError::InvalidManifest {
            what: what.clone(),
            reason,
        };
        let m: RemoteManifest = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        if m.schema_version != 2 {
            return Err(bad(format!("schemaVersion {}", m.schema_version)));
        }
        if m.layers.is_empty() || m.layers.len() > 64 {
            return Err(bad(format!("{} layers", m.layers.len())));
        }
        let mut out = Vec::new();
        for l in m.config.into_iter().chain(m.layers) {
            let digest = Digest::parse(&l.digest)?;
            if !KNOWN_MEDIA.contains(&l.media_type.as_str()) {
                return Err(bad(format!(
                    "unknown media type {:?}",
                    l.media_type.chars().take(100).collect::<String>()
                )));
            }
            out.push(Layer {
                media_type: l.media_type,
                digest,
                size: l.size,
                filename: None,
            });
        }
        let models = out
            .iter()
            .filter(|l| l.media_type == crate::manifest::MEDIA_MODEL)
            .count();
        if models != 1 {
            return Err(bad(format!("{models} model layers (want 1)")));
        }
        Ok(out)
    }

    /// The URL of a blob.
    pub fn blob_url(&self, d: &Digest) -> String {
        format!("{}/v2/{}/blobs/{d}", self.r.base, self.r.repository)
    }
}
