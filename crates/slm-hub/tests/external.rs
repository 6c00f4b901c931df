//! Ollama model directories and the Hugging Face cache, read in place; hostile entries (traversal
//! digests, symlinks out of the cache) are skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::json;
use slm_hub::external::{scan_hf_cache, scan_ollama};
use slm_hub::Digest;

#[test]
fn ollama_dir_is_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let model = b"GGUF fake model".to_vec();
    let d = Digest::of_bytes(&model);
    fs::create_dir_all(root.join("blobs")).unwrap();
    fs::write(root.join("blobs").join(d.file_name()), &model).unwrap();
    let man = |digest: &str| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest, "size": 2},
               "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": model.len()}]})
        .to_string()
    };
    let lib = root.join("manifests/registry.ollama.ai/library/gemma3");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("270m"), man(&d.to_string())).unwrap();
    let other = root.join("manifests/example.com/me/tiny");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("v1"), man(&d.to_string())).unwrap();
    // Hostile: a traversal digest, and a manifest naming a missing blob.
    fs::write(lib.join("evil"), man("sha256:../../../../etc/passwd")).unwrap();
    fs::write(
        lib.join("missing"),
        man(&Digest::of_bytes(b"nope").to_string()),
    )
    .unwrap();
    let found = scan_ollama(root);
    let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["ollama:example.com/me/tiny:v1", "ollama:gemma3:270m"]
    );
    assert!(found
        .iter()
        .all(|m| m.path == root.join("blobs").join(d.file_name())));
    assert!(found.iter().all(|m| m.size == model.len() as u64));
}

#[test]
fn hf_cache_is_read_in_place_without_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = root.join("models--org--tiny-GGUF");
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("snapshots/abc123")).unwrap();
    fs::write(repo.join("blobs/etag1"), b"GGUF q4").unwrap();
    symlink(
        "../../blobs/etag1",
        repo.join("snapshots/abc123/tiny-Q4_K_M.gguf"),
    )
    .unwrap();
    // Hostile: a snapshot link pointing outside the repo.
    let secret = root.join("secret.gguf");
    fs::write(&secret, b"secret").unwrap();
    symlink(&secret, repo.join("snapshots/abc123/evil.gguf")).unwrap();
    symlink(
        "../../../../../../etc/passwd",
        repo.join("snapshots/abc123/passwd.gguf"),
    )
    .unwrap();
    fs::write(repo.join("snapshots/abc123/README.md"), b"x").unwrap();
    let found = scan_hf_cache(root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "hf-cache:org/tiny-GGUF/tiny-Q4_K_M.gguf");
    assert_eq!(
        found[0].path,
        fs::canonicalize(repo.join("blobs/etag1")).unwrap()
    );
    assert_eq!(found[0].size, 7);
}
