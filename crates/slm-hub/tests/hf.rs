//! Hugging Face protocol tests against a local server: model-info listing, quant pick, `resolve`
//! redirects to a CDN (the token stays on the endpoint host), hostile listings (traversal file
//! names, bad sha256), `X-Linked-Etag` mismatch refused before the body; reference parsing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_blobs_verified, bytes, fast_http, ranged, serve, Reply, Server};
use serde_json::json;
use slm_hub::hf::{self, HfConfig, HfRef};
use slm_hub::http::Auth;
use slm_hub::progress::Silent;
use slm_hub::{Digest, HubError, Store};

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path().join("home")).unwrap();
    (d, s)
}

fn hf_server(files: Vec<(String, Vec<u8>, Option<String>)>, cdn: Option<String>) -> Server {
    let listing: Vec<serde_json::Value> = files
        .iter()
        .map(|(name, data, sha)| {
            let sha = sha.clone().unwrap_or_else(|| Digest::of_bytes(data).hex());
            json!({"rfilename": name, "size": data.len(), "lfs": {"sha256": sha, "size": data.len(), "pointerSize": 134}})
        })
        .collect();
    serve(move |req| {
        if req.path.starts_with("/api/models/org/repo") {
            return Reply::json(json!({"id": "org/repo", "siblings": listing}));
        }
        if let Some(f) = req.path.strip_prefix("/org/repo/resolve/main/") {
            if let Some((_, data, _)) = files.iter().find(|(n, _, _)| n == f) {
                let etag = format!("\"{}\"", Digest::of_bytes(data).hex());
                return match &cdn {
                    Some(c) => Reply::redirect(&format!("{c}/{f}")).header("X-Linked-Etag", &etag),
                    None => ranged(req, data).header("X-Linked-Etag", &etag),
                };
            }
        }
        Reply::new(404, "")
    })
}

#[test]
fn hf_listing_quant_pick_token_and_cdn() {
    let q4 = bytes(7, 30_000);
    let q8 = bytes(8, 40_000);
    let (q4c, q8c) = (q4.clone(), q8.clone());
    let cdn = serve(move |req| {
        if req.path.ends_with("Q4_K_M.gguf") {
            ranged(req, &q4c)
        } else {
            ranged(req, &q8c)
        }
    });
    let srv = hf_server(
        vec![
            ("README.md".into(), b"readme".to_vec(), None),
            ("tiny-Q4_K_M.gguf".into(), q4.clone(), None),
            ("tiny-Q8_0.gguf".into(), q8.clone(), None),
            ("mmproj-tiny-f16.gguf".into(), b"GGUFmm".to_vec(), None),
        ],
        Some(cdn.url()),
    );
    let cfg = HfConfig {
        endpoint: srv.url(),
        auth: Some(Auth {
            host: format!("127.0.0.1:{}", srv.port),
            token: "hf_secret".into(),
        }),
    };
    let (_d, store) = store();
    for (quant, want) in [(None, &q4), (Some("q8_0"), &q8)] {
        let r = HfRef {
            repo: "org/repo".into(),
            quant: quant.map(String::from),
            file: None,
        };
        let f = hf::resolve(&fast_http(), &cfg, &r).unwrap();
        slm_hub::pull::fetch_hf_with(&store, &fast_http(), &cfg, &f, &mut Silent).unwrap();
        assert_eq!(&std::fs::read(store.blob_path(&f.digest)).unwrap(), want);
    }
    assert!(srv
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer hf_secret")));
    assert!(
        cdn.requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "HF token leaked to the CDN"
    );
    let missing = HfRef {
        repo: "org/repo".into(),
        quant: Some("Q2_K".into()),
        file: None,
    };
    assert!(matches!(
        hf::resolve(&fast_http(), &cfg, &missing),
        Err(HubError::NoSource { .. })
    ));
}

#[test]
fn hf_hostile_listing_and_etag() {
    let data = bytes(9, 10_000);
    let cfg = |srv: &Server| HfConfig {
        endpoint: srv.url(),
        auth: None,
    };
    let r = HfRef {
        repo: "org/repo".into(),
        quant: None,
        file: None,
    };
    // Traversal and odd file names in the listing.
    for bad in [
        "../../evil-Q4_K_M.gguf",
        "/abs-Q4_K_M.gguf",
        "a\\b-Q4_K_M.gguf",
        "x/../../y.gguf",
    ] {
        let srv = hf_server(vec![(bad.into(), data.clone(), None)], None);
        let err = hf::resolve(&fast_http(), &cfg(&srv), &r).unwrap_err();
        assert!(
            matches!(err, HubError::InvalidFileName { .. }),
            "{bad}: {err}"
        );
    }
    // Listing sha256 is not 64 hex.
    let srv = hf_server(
        vec![(
            "t-Q4_K_M.gguf".into(),
            data.clone(),
            Some("../../etc".into()),
        )],
        None,
    );
    assert!(matches!(
        hf::resolve(&fast_http(), &cfg(&srv), &r),
        Err(HubError::InvalidDigest { .. })
    ));
    // Listing sha256 differs from the content (and from X-Linked-Etag): refused before any body byte.
    let other = Digest::of_bytes(b"other").hex();
    let srv = hf_server(
        vec![("t-Q4_K_M.gguf".into(), data.clone(), Some(other))],
        None,
    );
    let (_d, store) = store();
    let f = hf::resolve(&fast_http(), &cfg(&srv), &r).unwrap();
    let err = slm_hub::pull::fetch_hf_with(&store, &fast_http(), &cfg(&srv), &f, &mut Silent)
        .unwrap_err();
    match &err {
        HubError::DigestMismatch { what, .. } => assert!(what.contains("X-Linked-Etag"), "{err}"),
        other => panic!("{other}"),
    }
    assert_blobs_verified(&store);
    assert_eq!(std::fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
}

#[test]
fn hf_and_registry_reference_parsing() {
    let ok = [
        (
            "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF",
            "bartowski/SmolLM2-135M-Instruct-GGUF",
            None,
            None,
        ),
        ("hf.co/org/repo:Q4_K_M", "org/repo", Some("Q4_K_M"), None),
        (
            "huggingface.co/org/repo/model-Q8_0.gguf",
            "org/repo",
            None,
            Some("model-Q8_0.gguf"),
        ),
    ];
    for (s, repo, q, f) in ok {
        let r = hf::parse_ref(s).unwrap().unwrap();
        assert_eq!(
            (r.repo.as_str(), r.quant.as_deref(), r.file.as_deref()),
            (repo, q, f),
            "{s}"
        );
    }
    for bad in [
        "hf.co/org",
        "hf.co/../repo",
        "hf.co/org/repo/../../x.gguf",
        "hf.co/org/repo/x.bin",
        "hf.co/org/re po",
        "hf.co/org/repo:../x",
    ] {
        assert!(hf::parse_ref(bad).unwrap().is_err(), "{bad} accepted");
    }
    assert!(hf::parse_ref("gemma3:270m").is_none());
    let (t, n) = slm_hub::pull::resolve("ollama.com/library/gemma3:270m").unwrap();
    assert!(matches!(t, slm_hub::pull::Target::Registry(_)));
    assert_eq!(n.to_string(), "registry.ollama.ai/library/gemma3:270m");
    let (_, n) = slm_hub::pull::resolve("gemma3").unwrap();
    assert_eq!(n.to_string(), "gemma3:270m");
    let (_, n) = slm_hub::pull::resolve("gemma3:270m-q8_0").unwrap();
    assert_eq!(n.to_string(), "gemma3:270m-q8_0");
    assert!(matches!(
        slm_hub::pull::resolve("nosuchmodel:1b"),
        Err(HubError::NotInCatalog { .. })
    ));
    assert!(slm_hub::pull::resolve("localhost:5000/../x:1").is_err());
}
