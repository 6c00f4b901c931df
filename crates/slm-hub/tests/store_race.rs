//! `Store::list` (and so `remove` and `gc`, which list to find referenced blobs) while other
//! threads remove models: a manifest or directory that vanishes mid-walk is skipped, never an
//! error. Found by `slm serve`'s restart test (crates/slm-cli/tests/serve_restart.rs), where
//! concurrent `/api/delete` requests failed with 500 or a 404 naming another model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use slm_hub::{ModelName, Store};

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
