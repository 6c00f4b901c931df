//! The store under concurrent mutation, by threads of one process and by several processes:
//!
//! - `Store::list` (and so `remove` and `gc`, which list to find referenced blobs) while other
//!   threads remove models: a manifest or directory that vanishes mid-walk is skipped, never an
//!   error. Found by `slm serve`'s restart test (crates/slm-cli/tests/serve_restart.rs), where
//!   concurrent `/api/delete` requests failed with 500 or a 404 naming another model.
//! - writes, copies, removes, gcs and lock-free reads on overlapping names and shared blobs, in
//!   threads and in two processes (the test binary re-runs itself as the child): every manifest's
//!   blobs exist and hash right afterwards, and nothing fails but a clean NotFound.
//! - a process SIGKILLed mid-work leaves the store neither locked nor pinned; a manifest being
//!   replaced is read, not refused as a symlink; `gc --partials` spares temp files being written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slm_hub::{Digest, HubError, Layer, Manifest, ModelName, Store};

#[test]
fn listing_while_models_are_removed_never_fails() {
    let root = std::env::temp_dir().join(format!("slm-hub-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = Store::open(&root).unwrap();
    let base = ModelName::parse("base:x").unwrap();
    let src = root.join("model.bin");
    std::fs::write(&src, b"GGUF not really, the store does not care").unwrap();
    store.import_file(&src, &base).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let churn: Vec<_> = (0..2)
        .map(|t| {
            let (store, base, done) = (store.clone(), base.clone(), done.clone());
            std::thread::spawn(move || {
                for n in 0..300 {
                    let name = ModelName::parse(&format!("c{t}-{n}:x")).unwrap();
                    store.copy(&base, &name).unwrap();
                    store
                        .remove(&name)
                        .unwrap_or_else(|e| panic!("remove {name}: {e}"));
                }
                done.store(true, Ordering::SeqCst);
            })
        })
        .collect();
    let mut lists = 0;
    while !done.load(Ordering::SeqCst) {
        let models = store.list().unwrap_or_else(|e| panic!("list: {e}"));
        assert!(models.iter().any(|m| m.name == base));
        lists += 1;
    }
    for c in churn {
        c.join().unwrap();
    }
    assert!(lists > 10, "only {lists} listings overlapped the removals");
    assert_eq!(store.list().unwrap().len(), 1);
    std::fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Writers, removers and collectors on overlapping names and shared blobs, in threads of one
// process and in two processes: afterwards every manifest's blobs exist and hash right, and no
// operation failed with anything but a clean NotFound for a name another worker removed. Without
// the store lock this failed within the 3 s: `write_manifest` into a directory a `remove` had just
// pruned (NotFound on manifests/.../m0), `remove` racing `remove` (an I/O NotFound on the
// manifest), a manifest replaced mid-read refused as a symlink, and `copy` writing a manifest
// whose blobs a `remove` had just deleted. With the lock but without pins, "pulls" (put blobs,
// then write the manifest) failed with MissingBlob when a `gc` came in between.

/// Environment variable that turns `two_processes_hammer_one_store` into its child worker.
const CHILD_ENV: &str = "SLM_STORE_RACE_CHILD_DIR";
const HAMMER: Duration = Duration::from_secs(3);

/// Shared blob contents (a few KiB each) and the names they are written under.
fn pool() -> Vec<Vec<u8>> {
    (0..6u8)
        .map(|i| {
            (0..4096u32 + u32::from(i) * 97)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
                .collect()
        })
        .collect()
}

fn names() -> Vec<ModelName> {
    let mut v = Vec::new();
    for ns in 0..2 {
        for m in 0..2 {
            for t in 0..2 {
                v.push(ModelName::parse(&format!("hub.example/ns{ns}/m{m}:t{t}")).unwrap());
            }
        }
    }
    v
}

#[derive(Default, Debug)]
struct Tally {
    writes: usize,
    removes: usize,
    copies: usize,
    gcs: usize,
    reads: usize,
    not_found: usize,
    errors: Vec<String>,
}

/// One worker: random writes ("pulls": pin, put blobs, write manifest), copies, removes, gcs and
/// listings on `store` until `deadline`.
fn hammer(store: &Store, seed: u64, deadline: Instant) -> Tally {
    let (blobs, names) = (pool(), names());
    let digests: Vec<Digest> = blobs.iter().map(|b| Digest::of_bytes(b)).collect();
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut t = Tally::default();
    while Instant::now() < deadline {
        let name = &names[next(names.len())];
        let op = next(12);
        let res: Result<(), HubError> = match op {
            0..=3 => (|| {
                let picks = [next(blobs.len()), next(blobs.len())];
                let picks = &picks[..1 + next(2)];
                let _pins = store.pin_all(picks.iter().map(|&i| &digests[i]))?;
                let mut layers = Vec::new();
                for &i in picks {
                    let (d, n) = store.put_blob(
                        &blobs[i][..],
                        Some(&digests[i]),
                        Some(blobs[i].len() as u64),
                    )?;
                    layers.push(Layer {
                        media_type: slm_hub::manifest::MEDIA_MODEL.to_string(),
                        digest: d,
                        size: n,
                        filename: None,
                    });
                }
                let m = Manifest {
                    schema_version: 2,
                    media_type: slm_hub::manifest::MEDIA_MANIFEST.to_string(),
                    layers,
                    source: Some(format!("race {seed}")),
                };
                store.write_manifest(name, &m)?;
                t.writes += 1;
                Ok(())
            })(),
            4..=5 => store
                .copy(&names[next(names.len())], name)
                .map(|()| t.copies += 1),
            6..=8 => store.remove(name).map(|_| t.removes += 1),
            // Lock-free readers: a manifest replaced or removed under them is not an error.
            9..=10 => store
                .list()
                .and_then(|_| store.read_manifest(name))
                .map(|_| t.reads += 1),
            _ => store
                .gc(false)
                .and_then(|_| store.list())
                .map(|_| t.gcs += 1),
        };
        match res {
            Ok(()) => {}
            // A copy's source or a removed name that another worker removed first.
            Err(HubError::NotFound { .. }) if op >= 4 => t.not_found += 1,
            Err(e) => t.errors.push(format!("op {op} on {name}: {e}")),
        }
    }
    t
}

/// Every manifest's blobs exist and hash to their digests; so does every blob file.
fn assert_store_whole(store: &Store) {
    let models = store.list().unwrap();
    for m in &models {
        store
            .verify(&m.name)
            .unwrap_or_else(|e| panic!("{} names a bad blob: {e}", m.name));
    }
    for entry in std::fs::read_dir(store.blobs_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let d = Digest::from_file_name(&name).unwrap();
        assert_eq!(Digest::of_bytes(&std::fs::read(entry.path()).unwrap()), d);
    }
    // With every pin gone, gc leaves exactly the referenced blobs.
    let r = store.gc(true).unwrap();
    assert_eq!(r.pinned, 0, "{r:?}");
    let referenced: std::collections::BTreeSet<_> = models
        .iter()
        .flat_map(|m| m.manifest.layers.iter().map(|l| l.digest))
        .collect();
    assert_eq!(r.kept, referenced.len());
}

fn check_tallies(who: &str, tallies: &[Tally]) {
    let errors: Vec<&String> = tallies.iter().flat_map(|t| &t.errors).collect();
    assert!(
        errors.is_empty(),
        "{who}: {} failed operations, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let sum = |f: fn(&Tally) -> usize| tallies.iter().map(f).sum::<usize>();
    let (w, r, c, g) = (
        sum(|t| t.writes),
        sum(|t| t.removes),
        sum(|t| t.copies),
        sum(|t| t.gcs),
    );
    eprintln!(
        "{who}: {w} writes, {r} removes, {c} copies, {g} gcs, {} reads, {} not found",
        sum(|t| t.reads),
        sum(|t| t.not_found)
    );
    assert!(
        w >= 20 && r >= 10 && g >= 3,
        "{who}: too little overlap ({tallies:?})"
    );
}

#[test]
fn threads_writing_removing_and_collecting_keep_every_manifest_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let deadline = Instant::now() + HAMMER;
    let tallies: Vec<Tally> = (0..6)
        .map(|seed| {
            let store = store.clone();
            std::thread::spawn(move || hammer(&store, seed, deadline))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_store_whole(&store);
    check_tallies("threads", &tallies);
}

/// In a child process (`CHILD_ENV` set): three threads hammer the parent's store for `time`, and
/// any failed operation fails the child. Returns whether this is the child.
fn child_worker(time: Duration) -> bool {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return false;
    };
    let store = Store::open(std::path::PathBuf::from(dir)).unwrap();
    let deadline = Instant::now() + time;
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for seed in 100..103 {
            let (store, errors) = (&store, &errors);
            s.spawn(move || {
                let t = hammer(store, seed, deadline);
                errors.lock().unwrap().extend(t.errors);
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "child: {errors:?}");
    true
}

/// This test binary again, running only `test` as the child worker on `store`.
fn spawn_child(test: &str, store: &Store) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env(CHILD_ENV, store.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_hammer_one_store() {
    if child_worker(HAMMER) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let child = spawn_child("two_processes_hammer_one_store", &store);
    let deadline = Instant::now() + HAMMER;
    let tallies: Vec<Tally> = (0..3)
        .map(|seed| {
            let store = store.clone();
            std::thread::spawn(move || hammer(&store, seed + 200, deadline))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "child process failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_store_whole(&store);
    check_tallies("parent of two processes", &tallies);
}

/// Lock-free readers of a manifest that another thread keeps replacing (write temp, rename):
/// the rename may land between the reader's no-follow check and its open, which must be looked at
/// again, not reported as a symlink.
#[test]
fn reading_a_manifest_while_it_is_rewritten_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let name = ModelName::parse("hub.example/ns/m:t").unwrap();
    let blobs = pool();
    let manifests: Vec<Manifest> = blobs[..2]
        .iter()
        .map(|b| {
            let (d, n) = store.put_blob(&b[..], None, None).unwrap();
            Manifest::single_model(d, n, None, "race".into())
        })
        .collect();
    store.write_manifest(&name, &manifests[0]).unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let (writes, reads) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0;
            while Instant::now() < deadline {
                store.write_manifest(&name, &manifests[n % 2]).unwrap();
                n += 1;
            }
            n
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let m = store
                            .read_manifest(&name)
                            .unwrap_or_else(|e| panic!("read during rewrite: {e}"));
                        assert!(manifests.contains(&m));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        (writer.join().unwrap(), reads)
    });
    assert!(writes > 20 && reads > 100, "{writes} writes, {reads} reads");
}

/// A process SIGKILLed while it writes, removes, collects and pins (it holds the store lock most of
/// the time) leaves the store unlocked and unpinned: the lock files remain, the locks do not.
#[test]
fn killed_process_leaves_the_store_unlocked() {
    if child_worker(Duration::from_secs(30)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    for round in 0..3 {
        let mut child = spawn_child("killed_process_leaves_the_store_unlocked", &store);
        std::thread::sleep(Duration::from_millis(400 + 150 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(store.root().join("locks/store.lock").exists());
        // Every mutation still goes through at once (a thread, so a hang fails instead of hanging).
        let (tx, rx) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::spawn(move || {
            let t = hammer(&s, round, Instant::now() + Duration::from_millis(200));
            tx.send(t).unwrap();
        });
        let t = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the store stayed locked after its holder was killed");
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        assert!(t.writes + t.removes + t.gcs > 0);
    }
    assert_store_whole(&store);
}

/// `gc --partials` while blobs are being put: it may clean temp files of writers that died, never
/// the one a live `put_blob` is writing (whose publish would then fail).
#[test]
fn gc_of_partials_leaves_temp_files_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let (puts, gcs) = std::thread::scope(|s| {
        let putter = s.spawn(|| {
            let mut n = 0u32;
            while Instant::now() < deadline {
                let data: Vec<u8> = (0..256u32 << 10)
                    .map(|i| (i ^ n.wrapping_mul(2_654_435_761)) as u8)
                    .collect();
                store
                    .put_blob(&data[..], Some(&Digest::of_bytes(&data)), None)
                    .unwrap_or_else(|e| panic!("put_blob during gc: {e}"));
                n += 1;
            }
            n
        });
        let mut gcs = 0;
        while Instant::now() < deadline {
            store.gc(true).unwrap();
            gcs += 1;
        }
        (putter.join().unwrap(), gcs)
    });
    assert!(puts > 5 && gcs > 20, "{puts} puts, {gcs} gcs");
    // A temp file left by a dead writer is still collected.
    std::fs::write(store.tmp_dir().join("blob-1-2-3.tmp"), b"junk").unwrap();
    assert_eq!(store.gc(true).unwrap().partials_removed, 1);
}
