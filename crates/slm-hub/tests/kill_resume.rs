//! Kill/resume (issue "done when"): a child process pulling a 64 MiB blob from a local registry is
//! SIGKILLed at random moments 50 times; every restart resumes, nothing unverified ever appears
//! under a final name, the final blob verifies, and the bytes served stay under 1.5x the blob.
//!
//! The child is this same test binary re-run with `SLM_HUB_CHILD_PULL` set (see `child_entry`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_blobs_verified, bytes, fast_http, ranged, serve, Reply};
use serde_json::json;
use slm_hub::progress::Silent;
use slm_hub::{pull, Digest, ModelName, PullOptions, Store};

const SIZE: usize = 64 << 20;
const KILLS: usize = 50;

/// Not a test of its own: the entry point of the child process the kill test starts.
#[test]
fn child_entry() {
    let Ok(name) = std::env::var("SLM_HUB_CHILD_PULL") else {
        return;
    };
    let store = Store::open_default().unwrap();
    pull(
        &store,
        &fast_http(),
        &name,
        &PullOptions::default(),
        &mut Silent,
    )
    .unwrap();
}

/// xorshift, seeded from the clock (the seed is printed for a rerun).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn killed_fifty_times_resumes_and_verifies() {
    let model = bytes(64, SIZE);
    let config = b"{}".to_vec();
    let (dm, dc) = (Digest::of_bytes(&model), Digest::of_bytes(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": dc.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": dm.to_string(), "size": SIZE}],
    });
    let blobs = HashMap::from([
        (dm.to_string(), model.clone()),
        (dc.to_string(), config.clone()),
    ]);
    let srv = serve(move |req| {
        if req.path == "/v2/library/big/manifests/v1" {
            return Reply::json(manifest.clone());
        }
        match req
            .path
            .strip_prefix("/v2/library/big/blobs/")
            .and_then(|d| blobs.get(d))
        {
            Some(data) => {
                let mut r = ranged(req, data);
                r.throttle = Some((64 << 10, Duration::from_millis(12)));
                r
            }
            None => Reply::new(404, ""),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = Store::open(&home).unwrap();
    let name = format!("127.0.0.1:{}/library/big:v1", srv.port);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let child = || {
        Command::new(&exe)
            .args(["--exact", "child_entry", "--test-threads=1"])
            .env("SLM_HUB_CHILD_PULL", &name)
            .env("SLM_HOME", &home)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let started = Instant::now();
    let mut kills = 0;
    let mut finished_early = 0;
    while kills < KILLS {
        let mut c = child();
        let wait = Duration::from_millis(30 + rng.next() % 400);
        std::thread::sleep(wait);
        if c.try_wait().unwrap().is_some() {
            finished_early += 1;
            if store.has_blob(&dm, None).unwrap() {
                break;
            }
            continue;
        }
        c.kill().unwrap();
        c.wait().unwrap();
        kills += 1;
        // Invariants after every kill: only verified blobs under final names, and a manifest
        // only when all its blobs are there.
        assert_blobs_verified(&store);
        let n = ModelName::parse(&name).unwrap();
        if store.read_manifest(&n).is_ok() {
            assert!(store.is_complete(&n).unwrap());
        }
    }
    assert!(
        kills >= KILLS,
        "the pull finished after {kills} kills; make the server slower"
    );
    // A last, uninterrupted run completes it.
    let st = child().wait().unwrap();
    assert!(st.success(), "final child failed");
    let n = ModelName::parse(&name).unwrap();
    store.verify(&n).unwrap();
    assert_eq!(std::fs::read(store.model_path(&n).unwrap()).unwrap(), model);
    let ratio = srv.sent() as f64 / SIZE as f64;
    eprintln!(
        "{kills} kills ({finished_early} early exits) in {:.1}s; served {} bytes = {ratio:.3}x the blob",
        started.elapsed().as_secs_f64(),
        srv.sent()
    );
    assert!(ratio < 1.5, "served {ratio:.3}x the blob size");
}
