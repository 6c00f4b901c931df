//! Ollama registry v2 (and plain URL) protocol tests against local servers, including the
//! hostile-registry cases of reliability guide 2.3: traversal digests, digest and size lies,
//! Content-Length lies, ignored Range, redirects off-host (Authorization dropped), bad schemes.
//! After every failure: no unverified blob under a final name, no manifest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{assert_blobs_verified, bytes, fast_http, ranged, serve, Reply, Req, Server};
use serde_json::json;
use slm_hub::http::Auth;
use slm_hub::progress::Silent;
use slm_hub::{pull, Digest, HubError, PullOptions, Store};

const MODEL: &str = "application/vnd.ollama.image.model";

fn manifest_json(layers: &[(&str, String, u64)]) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": layers[0].1, "size": layers[0].2},
        "layers": layers.iter().skip(1).map(|(m, d, s)| json!({"mediaType": m, "digest": d, "size": s})).collect::<Vec<_>>(),
    })
}

/// A registry serving `manifest` for library/tiny:v1 and `blobs` by digest string, through `blob`
/// (which may lie).
fn registry(
    manifest: serde_json::Value,
    blob: impl Fn(&Req, &[u8]) -> Reply + Send + Sync + 'static,
    blobs: HashMap<String, Vec<u8>>,
) -> Server {
    serve(move |req| {
        if req.path == "/v2/library/tiny/manifests/v1" {
            return Reply::json(manifest.clone());
        }
        if let Some(d) = req.path.strip_prefix("/v2/library/tiny/blobs/") {
            if let Some(data) = blobs.get(d) {
                return blob(req, data);
            }
        }
        Reply::new(404, "not found")
    })
}

struct Fixture {
    model: Vec<u8>,
    config: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
    manifest: serde_json::Value,
}

fn fixture(len: usize) -> Fixture {
    let model = bytes(1, len);
    let config = br#"{"model_format":"gguf"}"#.to_vec();
    let (dm, dc) = (
        Digest::of_bytes(&model).to_string(),
        Digest::of_bytes(&config).to_string(),
    );
    let manifest = manifest_json(&[
        ("", dc.clone(), config.len() as u64),
        (MODEL, dm.clone(), model.len() as u64),
    ]);
    let blobs = HashMap::from([(dm, model.clone()), (dc, config.clone())]);
    Fixture {
        model,
        config,
        blobs,
        manifest,
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path().join("home")).unwrap();
    (d, s)
}

fn pull_tiny(store: &Store, srv: &Server) -> slm_hub::Result<slm_hub::Pulled> {
    pull(
        store,
        &fast_http(),
        &format!("127.0.0.1:{}/library/tiny:v1", srv.port),
        &PullOptions::default(),
        &mut Silent,
    )
}

/// After a failed pull: nothing published, nothing listed.
fn assert_nothing_visible(store: &Store) {
    assert_blobs_verified(store);
    assert!(store.list().unwrap().is_empty(), "a manifest was written");
}

#[test]
fn registry_pull_happy_path_and_offline() {
    let f = fixture(300_000);
    let srv = registry(f.manifest.clone(), ranged, f.blobs.clone());
    let (_d, store) = store();
    let name = format!("127.0.0.1:{}/library/tiny:v1", srv.port);
    let err = pull(
        &store,
        &fast_http(),
        &name,
        &PullOptions {
            offline: true,
            ..Default::default()
        },
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    assert!(srv.requests().is_empty(), "offline touched the network");
    let p = pull_tiny(&store, &srv).unwrap();
    assert_eq!(p.received, (f.model.len() + f.config.len()) as u64);
    let path = store.model_path(&p.name).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), f.model);
    assert_blobs_verified(&store);
    // Second pull: nothing fetched; offline works now.
    let again = pull(
        &store,
        &fast_http(),
        &name,
        &PullOptions {
            offline: true,
            ..Default::default()
        },
        &mut Silent,
    )
    .unwrap();
    assert!(again.already);
}

#[test]
fn hostile_manifest_digests_are_rejected() {
    for bad in [
        "sha256:../../../../etc/passwd",
        "sha256:../../../../../../../../../../../../../../../../../../../../../tmp/x",
        &format!("sha256:{}", "A".repeat(64)),
        "sha256-0000000000000000000000000000000000000000000000000000000000000000",
        "sha512:00",
        "",
    ] {
        let f = fixture(1000);
        let mut m = f.manifest.clone();
        m["layers"][0]["digest"] = json!(bad);
        let srv = registry(m, ranged, f.blobs.clone());
        let (_d, store) = store();
        let err = pull_tiny(&store, &srv).unwrap_err();
        assert!(
            matches!(err, HubError::InvalidDigest { .. }),
            "{bad}: {err}"
        );
        assert_nothing_visible(&store);
        assert!(
            srv.requests().iter().all(|r| !r.path.contains("/blobs/")),
            "fetched a blob for {bad}"
        );
    }
}

#[test]
fn hostile_manifest_shapes_are_rejected() {
    let f = fixture(1000);
    let dm = Digest::of_bytes(&f.model).to_string();
    let cases: Vec<serde_json::Value> = vec![
        {
            let mut m = f.manifest.clone();
            m["layers"][0]["mediaType"] = json!("application/x-executable");
            m
        },
        {
            let mut m = f.manifest.clone();
            m["layers"] = json!([{"mediaType": MODEL, "digest": dm, "size": 1000}, {"mediaType": MODEL, "digest": dm, "size": 1000}]);
            m
        },
        {
            let mut m = f.manifest.clone();
            m["layers"] = json!([]);
            m
        },
        {
            let mut m = f.manifest.clone();
            m["schemaVersion"] = json!(1);
            m
        },
        {
            let mut m = f.manifest.clone();
            m["padding"] = json!("x".repeat(2 << 20));
            m
        },
        json!("not a manifest"),
    ];
    for (i, m) in cases.into_iter().enumerate() {
        let srv = registry(m, ranged, f.blobs.clone());
        let (_d, store) = store();
        let err = pull_tiny(&store, &srv).unwrap_err();
        assert!(
            matches!(
                err,
                HubError::InvalidManifest { .. } | HubError::BodyTooLarge { .. }
            ),
            "case {i}: {err}"
        );
        assert_nothing_visible(&store);
    }
}

#[test]
fn blob_digest_mismatch_publishes_nothing() {
    let f = fixture(50_000);
    let srv = registry(
        f.manifest.clone(),
        |req, data| {
            let mut d = data.to_vec();
            if d.len() > 1000 {
                d[999] ^= 0xff;
            }
            ranged(req, &d)
        },
        f.blobs.clone(),
    );
    let (_d, store) = store();
    let err = pull_tiny(&store, &srv).unwrap_err();
    assert!(matches!(err, HubError::DigestMismatch { .. }), "{err}");
    assert_nothing_visible(&store);
    let dm = Digest::of_bytes(&f.model);
    assert!(!store.partial_path(&dm).exists(), "corrupt partial kept");
}

#[test]
fn oversized_body_is_cut_off() {
    let f = fixture(50_000);
    let srv = registry(
        f.manifest.clone(),
        |req, data| {
            let mut d = data.to_vec();
            d.extend_from_slice(&[0u8; 4096]);
            ranged(req, &d)
        },
        f.blobs.clone(),
    );
    let (_d, store) = store();
    let err = pull_tiny(&store, &srv).unwrap_err();
    assert!(matches!(err, HubError::SizeMismatch { .. }), "{err}");
    assert_nothing_visible(&store);
}

#[test]
fn content_length_lie_once_then_resume_with_range() {
    let f = fixture(400_000);
    let lied = Arc::new(Mutex::new(false));
    let l2 = lied.clone();
    let srv = registry(
        f.manifest.clone(),
        move |req, data| {
            let mut lied = l2.lock().unwrap();
            if data.len() > 1000 && !*lied {
                *lied = true;
                // Declares the full length, sends 40%, closes.
                let mut r = Reply::new(200, data[..data.len() * 2 / 5].to_vec());
                r.content_length = Some(data.len() as u64);
                return r;
            }
            ranged(req, data)
        },
        f.blobs.clone(),
    );
    let (_d, store) = store();
    let p = pull_tiny(&store, &srv).unwrap();
    assert_eq!(
        std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
        f.model
    );
    let ranges: Vec<String> = srv
        .requests()
        .iter()
        .filter_map(|r| r.header("range").map(String::from))
        .collect();
    assert_eq!(
        ranges,
        vec![format!("bytes={}-", f.model.len() * 2 / 5)],
        "resumed where it stopped"
    );
    // Bytes sent for the model: 40% + 60%, no re-download.
    let manifest_len = f.manifest.to_string().len();
    assert_eq!(
        srv.sent(),
        (f.model.len() + f.config.len() + manifest_len) as u64
    );
}

#[test]
fn content_length_lie_always_fails_cleanly() {
    let f = fixture(100_000);
    let srv = registry(
        f.manifest.clone(),
        |_req, data| {
            let mut r = Reply::new(200, data[..data.len() / 2].to_vec());
            r.content_length = Some(data.len() as u64);
            r
        },
        f.blobs.clone(),
    );
    let (_d, store) = store();
    assert!(pull_tiny(&store, &srv).is_err());
    assert_nothing_visible(&store);
}

#[test]
fn ok_200_to_a_range_request_restarts_from_zero() {
    let f = fixture(300_000);
    let n = Arc::new(Mutex::new(0));
    let n2 = n.clone();
    let srv = registry(
        f.manifest.clone(),
        move |_req, data| {
            let mut n = n2.lock().unwrap();
            *n += 1;
            if data.len() > 1000 && *n <= 2 {
                let mut r = Reply::new(200, data[..data.len() / 3].to_vec());
                r.content_length = Some(data.len() as u64);
                return r;
            }
            // Ignores Range: always the whole file with 200.
            Reply::new(200, data.to_vec())
        },
        f.blobs.clone(),
    );
    let (_d, store) = store();
    let p = pull_tiny(&store, &srv).unwrap();
    assert_eq!(
        std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
        f.model
    );
    assert_blobs_verified(&store);
}

#[test]
fn wrong_content_range_is_not_appended() {
    let f = fixture(200_000);
    let first = Arc::new(Mutex::new(true));
    let f2 = first.clone();
    let srv = registry(
        f.manifest.clone(),
        move |req, data| {
            if data.len() > 1000 && req.header("range").is_none() && *f2.lock().unwrap() {
                *f2.lock().unwrap() = false;
                let mut r = Reply::new(200, data[..1000].to_vec());
                r.content_length = Some(data.len() as u64);
                return r;
            }
            if req.header("range").is_some() {
                // Claims a range starting at 0 while we asked for 1000-.
                return Reply::new(206, data.to_vec()).header(
                    "Content-Range",
                    &format!("bytes 0-{}/{}", data.len() - 1, data.len()),
                );
            }
            Reply::new(200, data.to_vec())
        },
        f.blobs.clone(),
    );
    let (_d, store) = store();
    let p = pull_tiny(&store, &srv).unwrap();
    assert_eq!(
        std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
        f.model
    );
}

#[test]
fn token_auth_and_redirect_off_host_drops_authorization() {
    let f = fixture(20_000);
    // The CDN: records whether it saw an Authorization header.
    let cdn_blobs = f.blobs.clone();
    let cdn = serve(move |req| {
        let d = req.path.trim_start_matches("/cdn/");
        match cdn_blobs.get(d) {
            Some(data) => ranged(req, data),
            None => Reply::new(404, ""),
        }
    });
    let cdn_url = cdn.url();
    let manifest = f.manifest.clone();
    let reg_port = Arc::new(Mutex::new(0u16));
    let rp = reg_port.clone();
    let reg = serve(move |req| {
        if req.path.starts_with("/token") {
            return Reply::json(json!({"token": "s3cret"}));
        }
        if req.header("authorization") != Some("Bearer s3cret") {
            let realm = format!("http://127.0.0.1:{}/token", rp.lock().unwrap());
            return Reply::new(401, "").header(
                "WWW-Authenticate",
                &format!("Bearer realm=\"{realm}\",service=\"test\",scope=\"repository:library/tiny:pull\""),
            );
        }
        if req.path == "/v2/library/tiny/manifests/v1" {
            return Reply::json(manifest.clone());
        }
        if let Some(d) = req.path.strip_prefix("/v2/library/tiny/blobs/") {
            return Reply::redirect(&format!("{cdn_url}/cdn/{d}"));
        }
        Reply::new(404, "")
    });
    *reg_port.lock().unwrap() = reg.port;
    let (_d, store) = store();
    let p = pull_tiny(&store, &reg).unwrap();
    assert_eq!(
        std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
        f.model
    );
    let token_req = reg
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/token"))
        .unwrap();
    assert!(
        token_req
            .path
            .contains("scope=repository%3Alibrary%2Ftiny%3Apull"),
        "{}",
        token_req.path
    );
    assert!(token_req.header("authorization").is_none());
    assert!(!cdn.requests().is_empty());
    for r in cdn.requests() {
        assert!(
            r.header("authorization").is_none(),
            "token leaked to the CDN: {r:?}"
        );
    }
}

#[test]
fn redirects_to_bad_schemes_or_remote_http_are_refused() {
    for target in [
        "http://example.com/x",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/x",
    ] {
        let f = fixture(5000);
        let t = target.to_string();
        let srv = registry(
            f.manifest.clone(),
            move |_req, _data| Reply::redirect(&t),
            f.blobs.clone(),
        );
        let (_d, store) = store();
        let err = pull_tiny(&store, &srv).unwrap_err();
        assert!(
            matches!(err, HubError::RefusedUrl { .. }),
            "{target}: {err}"
        );
        assert_nothing_visible(&store);
    }
}

#[test]
fn auth_is_scoped_to_its_host() {
    let a = serve(|_| Reply::redirect("/final"));
    let seen = a.url();
    let http = fast_http();
    let auth = Auth {
        host: format!("127.0.0.1:{}", a.port),
        token: "t".into(),
    };
    let _ = http.get(&format!("{seen}/start"), &[], Some(&auth));
    assert!(
        a.requests()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer t")),
        "same host keeps it"
    );
    let b = serve(|_| Reply::new(200, "ok"));
    let _ = http
        .get(&format!("{}/x", b.url()), &[], Some(&auth))
        .unwrap();
    assert!(
        b.requests()[0].header("authorization").is_none(),
        "other host must not get it"
    );
}

#[test]
fn plain_url_needs_sha256_and_name() {
    let data = bytes(11, 70_000);
    let d2 = data.clone();
    let srv = serve(move |req| {
        if req.path == "/m/file-Q4_0.gguf" {
            ranged(req, &d2)
        } else {
            Reply::new(404, "")
        }
    });
    let url = format!("{}/m/file-Q4_0.gguf", srv.url());
    let (_d, store) = store();
    let err = pull(
        &store,
        &fast_http(),
        &url,
        &PullOptions::default(),
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, HubError::Other(_)), "{err}");
    let name = slm_hub::ModelName::parse("web/file:q4_0").unwrap();
    let wrong = PullOptions {
        sha256: Some(Digest::of_bytes(b"x")),
        name: Some(name.clone()),
        ..Default::default()
    };
    let err = pull(&store, &fast_http(), &url, &wrong, &mut Silent).unwrap_err();
    assert!(matches!(err, HubError::DigestMismatch { .. }), "{err}");
    assert_nothing_visible(&store);
    let ok = PullOptions {
        sha256: Some(Digest::of_bytes(&data)),
        name: Some(name.clone()),
        ..Default::default()
    };
    let p = pull(&store, &fast_http(), &url, &ok, &mut Silent).unwrap();
    assert_eq!(
        std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
        data
    );
    assert!(
        pull(&store, &fast_http(), &url, &ok, &mut Silent)
            .unwrap()
            .already
    );
    let remote_http = "http://example.com/x.gguf";
    assert!(matches!(
        pull(&store, &fast_http(), remote_http, &ok, &mut Silent),
        Err(HubError::RefusedUrl { .. })
    ));
}
