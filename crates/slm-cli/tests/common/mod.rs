//! Helpers shared by the `slm` command tests: test material, running the binary, the repo root.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A file of the real test material (`SLM_MATERIAL`, default `~/.cache/slm-material`); panics
/// with the command that fetches it when it is missing, so a test never passes without it.
pub fn material(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slm-material")
        });
    let p = dir.join(name);
    assert!(
        p.exists(),
        "test material {} is missing: run `python3 tools/material.py` first",
        p.display()
    );
    p
}

/// Run `slm ARGS`.
pub fn slm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slm"))
        .args(args)
        .output()
        .expect("run slm")
}

/// Run `slm ARGS`, panic with its stderr unless it succeeds, return its stdout.
pub fn ok_stdout(args: &[&str]) -> String {
    let out = slm(args);
    assert!(
        out.status.success(),
        "slm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
