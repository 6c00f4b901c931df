//! Eight concurrent pulls of one model coalesce into one download (per-digest lock), and a stalled
//! transfer is detected (read timeout), resumed with Range and completed; six kinds of corrupted
//! partial files are detected by the final hash and downloaded again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_blobs_verified, bytes, ranged, serve, Reply};
use serde_json::json;
use slm_hub::progress::Silent;
use slm_hub::{pull, Digest, Http, HttpConfig, PullOptions, Store};

fn registry(model: Vec<u8>, stall_once: bool) -> common::Server {
    let config = b"{}".to_vec();
    let (dm, dc) = (Digest::of_bytes(&model), Digest::of_bytes(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": dc.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": dm.to_string(), "size": model.len()}],
    });
    let blobs = HashMap::from([(dm.to_string(), model), (dc.to_string(), config)]);
    let stalled = Arc::new(AtomicBool::new(!stall_once));
    serve(move |req| {
        if req.path == "/v2/library/m/manifests/v1" {
            return Reply::json(manifest.clone());
        }
        match req
            .path
            .strip_prefix("/v2/library/m/blobs/")
            .and_then(|d| blobs.get(d))
        {
            Some(data) if data.len() > 100 && !stalled.swap(true, Ordering::SeqCst) => {
                // Half the body, then silence for longer than the client's stall timeout.
                let mut r = Reply::new(200, data[..data.len() / 2].to_vec());
                r.content_length = Some(data.len() as u64);
                r.throttle = Some((data.len() / 2, Duration::from_millis(1500)));
                r
            }
            Some(data) => {
                let mut r = ranged(req, data);
                r.throttle = Some((256 << 10, Duration::from_millis(5)));
                r
            }
            None => Reply::new(404, ""),
        }
    })
}

#[test]
fn concurrent_pulls_of_one_blob_download_it_once() {
    let model = bytes(3, 4 << 20);
    let srv = registry(model.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let name = format!("127.0.0.1:{}/library/m:v1", srv.port);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (home, name) = (home.clone(), name.clone());
            std::thread::spawn(move || {
                let store = Store::open(&home).unwrap();
                pull(
                    &store,
                    &Http::new(HttpConfig::default()),
                    &name,
                    &PullOptions::default(),
                    &mut Silent,
                )
                .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let store = Store::open(&home).unwrap();
    assert_blobs_verified(&store);
    let total: u64 = results.iter().map(|p| p.received).sum();
    assert_eq!(
        total,
        model.len() as u64 + 2,
        "the blob was fetched more than once"
    );
    let blob_gets = srv
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/sha256:"))
        .count();
    assert_eq!(blob_gets, 2, "one GET per blob");
}

#[test]
fn stalled_transfer_times_out_and_resumes() {
    let model = bytes(4, 1 << 20);
    let srv = registry(model.clone(), true);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let http = Http::new(HttpConfig {
        stall_timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(10),
        ..Default::default()
    });
    let name = format!("127.0.0.1:{}/library/m:v1", srv.port);
    let p = pull(&store, &http, &name, &PullOptions::default(), &mut Silent).unwrap();
    assert_eq!(
        std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
        model
    );
    let ranges: Vec<_> = srv
        .requests()
        .iter()
        .filter_map(|r| r.header("range").map(String::from))
        .collect();
    assert_eq!(ranges, vec![format!("bytes={}-", model.len() / 2)]);
}

#[test]
fn corrupted_partials_are_detected_and_redone() {
    let model = bytes(5, 1 << 20);
    let dm = Digest::of_bytes(&model);
    for (i, garbage) in [
        vec![0u8; 1000],                 // zeros where data should be
        bytes(99, 500_000),              // a prefix of another file
        bytes(98, (1 << 20) + 10),       // longer than the blob
        model[..(1 << 20) - 1].to_vec(), // a correct prefix: just finish it
        {
            let mut m = model.clone();
            m[12345] ^= 4;
            m
        }, // complete length, one bit wrong
        Vec::new(),                      // empty
    ]
    .into_iter()
    .enumerate()
    {
        let srv = registry(model.clone(), false);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::write(store.partial_path(&dm), &garbage).unwrap();
        let name = format!("127.0.0.1:{}/library/m:v1", srv.port);
        let p = pull(
            &store,
            &Http::new(HttpConfig::default()),
            &name,
            &PullOptions::default(),
            &mut Silent,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(
            std::fs::read(store.model_path(&p.name).unwrap()).unwrap(),
            model,
            "case {i}"
        );
        assert_blobs_verified(&store);
        assert!(!store.partial_path(&dm).exists());
    }
}
