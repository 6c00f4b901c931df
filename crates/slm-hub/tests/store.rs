//! Store rules: atomic publish, shared blobs stored once, import (hard link or copy), list/rm/cp,
//! gc, and the symlink cases of reliability guide 2.3 (nothing followed out of the store).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Cursor;
use std::path::Path;

use slm_hub::{Digest, HubError, Manifest, ModelName, Store};

fn gguf_bytes(seed: u8, len: usize) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

fn name(s: &str) -> ModelName {
    ModelName::parse(s).unwrap()
}

/// Every file under the store's blobs/ must hash to its name.
fn assert_blobs_verified(store: &Store) {
    for e in fs::read_dir(store.blobs_dir()).unwrap() {
        let e = e.unwrap();
        let fname = e.file_name().to_string_lossy().into_owned();
        let d = Digest::from_file_name(&fname).unwrap_or_else(|| panic!("stray file {fname}"));
        let data = fs::read(e.path()).unwrap();
        assert_eq!(
            Digest::of_bytes(&data),
            d,
            "{fname} does not hash to its name"
        );
    }
}

#[test]
fn put_blob_verifies_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let data = gguf_bytes(1, 5000);
    let d = Digest::of_bytes(&data);
    // Wrong expected digest: nothing becomes visible, the temp file is gone.
    let wrong = Digest::of_bytes(b"other");
    let err = store
        .put_blob(Cursor::new(&data), Some(&wrong), None)
        .unwrap_err();
    assert!(matches!(err, HubError::DigestMismatch { .. }), "{err}");
    let err = store
        .put_blob(Cursor::new(&data), Some(&d), Some(1))
        .unwrap_err();
    assert!(matches!(err, HubError::SizeMismatch { .. }), "{err}");
    assert_eq!(fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    let (got, n) = store
        .put_blob(Cursor::new(&data), Some(&d), Some(data.len() as u64))
        .unwrap();
    assert_eq!((got, n), (d, data.len() as u64));
    assert!(store.has_blob(&d, Some(n)).unwrap());
    assert_blobs_verified(&store);
}

#[test]
fn manifest_needs_its_blobs_and_shared_blobs_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = gguf_bytes(2, 3000);
    let d = Digest::of_bytes(&data);
    let m = Manifest::single_model(d, data.len() as u64, None, "test".into());
    let err = store.write_manifest(&name("a:1"), &m).unwrap_err();
    assert!(matches!(err, HubError::MissingBlob { .. }), "{err}");
    store.put_blob(Cursor::new(&data), Some(&d), None).unwrap();
    store.put_blob(Cursor::new(&data), Some(&d), None).unwrap();
    store.write_manifest(&name("a:1"), &m).unwrap();
    store
        .copy(&name("a:1"), &name("hf.co/org/b:Q4_K_M"))
        .unwrap();
    assert_eq!(
        fs::read_dir(store.blobs_dir()).unwrap().count(),
        1,
        "one blob for two names"
    );
    let names: Vec<String> = store
        .list()
        .unwrap()
        .iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(names, ["a:1", "hf.co/org/b:Q4_K_M"]);
    assert_eq!(store.model_path(&name("a:1")).unwrap(), store.blob_path(&d));
    // rm of one name keeps the shared blob; rm of the last frees it.
    assert_eq!(store.remove(&name("a:1")).unwrap(), 0);
    assert!(store.has_blob(&d, None).unwrap());
    assert_eq!(
        store.remove(&name("hf.co/org/b:Q4_K_M")).unwrap(),
        data.len() as u64
    );
    assert!(!store.has_blob(&d, None).unwrap());
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(
        store.read_manifest(&name("a:1")),
        Err(HubError::NotFound { .. })
    ));
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let keep = gguf_bytes(3, 100);
    let drop_ = gguf_bytes(4, 200);
    let (dk, nk) = store.put_blob(Cursor::new(&keep), None, None).unwrap();
    let (dd, _) = store.put_blob(Cursor::new(&drop_), None, None).unwrap();
    store
        .write_manifest(
            &name("keep:1"),
            &Manifest::single_model(dk, nk, None, "t".into()),
        )
        .unwrap();
    fs::write(
        store.tmp_dir().join(format!("{}.part", dd.hex())),
        b"partial",
    )
    .unwrap();
    fs::write(store.blobs_dir().join("not-a-blob"), b"x").unwrap();
    let r = store.gc(true).unwrap();
    assert_eq!(r.removed, vec![dd]);
    assert_eq!(r.freed_bytes, drop_.len() as u64);
    assert_eq!(r.partials_removed, 1);
    assert!(store.has_blob(&dk, Some(nk)).unwrap());
    assert!(
        store.blobs_dir().join("not-a-blob").exists(),
        "files that are not ours stay"
    );
    // A corrupt manifest stops gc (it might reference anything).
    fs::write(store.root().join("manifests/keep/2"), b"{not json").unwrap();
    assert!(store.gc(false).is_err());
    assert!(store.has_blob(&dk, Some(nk)).unwrap());
}

#[test]
fn import_links_or_copies_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let src = dir.path().join("model.gguf");
    let data = gguf_bytes(5, 10_000);
    fs::write(&src, &data).unwrap();
    let m = store.import_file(&src, &name("local/model:v1")).unwrap();
    let l = m.model_layer().unwrap();
    assert_eq!(l.digest, Digest::of_bytes(&data));
    assert_eq!(l.size, data.len() as u64);
    assert_eq!(l.filename.as_deref(), Some("model.gguf"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Same file system: a hard link, no copy.
        assert_eq!(
            fs::metadata(&src).unwrap().ino(),
            fs::metadata(store.blob_path(&l.digest)).unwrap().ino()
        );
    }
    store.verify(&name("local/model:v1")).unwrap();
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    // Not a GGUF file: refused.
    let txt = dir.path().join("x.txt");
    fs::write(&txt, b"hello").unwrap();
    assert!(store.import_file(&txt, &name("x:1")).is_err());
}

#[test]
fn verify_detects_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = gguf_bytes(6, 4096);
    let (d, n) = store.put_blob(Cursor::new(&data), None, None).unwrap();
    store
        .write_manifest(
            &name("m:1"),
            &Manifest::single_model(d, n, None, "t".into()),
        )
        .unwrap();
    let mut bad = data.clone();
    bad[100] ^= 1;
    fs::write(store.blob_path(&d), &bad).unwrap();
    assert!(matches!(
        store.verify(&name("m:1")),
        Err(HubError::DigestMismatch { .. })
    ));
}

#[cfg(unix)]
mod symlinks {
    use super::*;
    use std::os::unix::fs::symlink;

    fn outside_is_empty(p: &Path) {
        assert_eq!(
            fs::read_dir(p).unwrap().count(),
            0,
            "something was written outside the store"
        );
    }

    #[test]
    fn symlinked_store_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let root = dir.path().join("home");
        fs::create_dir(&root).unwrap();
        symlink(&outside, root.join("blobs")).unwrap();
        assert!(matches!(Store::open(&root), Err(HubError::Symlink { .. })));
        outside_is_empty(&outside);
    }

    #[test]
    fn symlinked_root_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        symlink(&real, dir.path().join("link")).unwrap();
        let store = Store::open(dir.path().join("link")).unwrap();
        assert!(store.root().starts_with(fs::canonicalize(&real).unwrap()));
    }

    #[test]
    fn symlinked_blob_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("home")).unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, b"GGUF secret").unwrap();
        let d = Digest::of_bytes(b"GGUF secret");
        symlink(&secret, store.blob_path(&d)).unwrap();
        assert!(matches!(
            store.has_blob(&d, None),
            Err(HubError::Symlink { .. })
        ));
        assert!(matches!(store.open_blob(&d), Err(HubError::Symlink { .. })));
    }

    #[test]
    fn symlinked_manifest_dir_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("home")).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        symlink(&outside, store.root().join("manifests/evil")).unwrap();
        let (d, n) = store
            .put_blob(Cursor::new(gguf_bytes(7, 10)), None, None)
            .unwrap();
        let m = Manifest::single_model(d, n, None, "t".into());
        assert!(matches!(
            store.write_manifest(&name("evil:1"), &m),
            Err(HubError::Symlink { .. })
        ));
        assert!(matches!(
            store.read_manifest(&name("evil:1")),
            Err(HubError::Symlink { .. })
        ));
        outside_is_empty(&outside);
        // list does not follow it either.
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn symlinked_manifest_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("home")).unwrap();
        let (d, n) = store
            .put_blob(Cursor::new(gguf_bytes(8, 10)), None, None)
            .unwrap();
        let m = Manifest::single_model(d, n, None, "t".into());
        let target = dir.path().join("target.json");
        fs::write(&target, m.to_json()).unwrap();
        fs::create_dir(store.root().join("manifests/x")).unwrap();
        symlink(&target, store.root().join("manifests/x/1")).unwrap();
        assert!(matches!(
            store.read_manifest(&name("x:1")),
            Err(HubError::Symlink { .. })
        ));
        assert!(matches!(
            store.write_manifest(&name("x:1"), &m),
            Err(HubError::Symlink { .. })
        ));
        assert_eq!(fs::read(&target).unwrap(), m.to_json(), "target untouched");
    }
}
