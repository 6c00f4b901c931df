//! Helpers shared by the `formats_*` integration tests: running `tools/golden/quant_ref.py`
//! (pinned PyPI `gguf` / `libgguf` references) and locating the real model material.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use slm_quant::GgmlType;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn tmp(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("slm-quant-golden-{}-{n}-{tag}", std::process::id()))
}

/// One call of quant_ref.py.
pub struct Job {
    pub op: &'static str,
    pub ty: GgmlType,
    pub n_per_row: usize,
    pub input: Vec<u8>,
    pub imatrix: Option<Vec<f32>>,
}

/// Runs the jobs in one python process (its start-up dominates) and returns their outputs.
pub fn reference_batch(jobs: &[Job]) -> Vec<Vec<u8>> {
    let mut lines = String::new();
    let mut files = Vec::new();
    let mut outs = Vec::new();
    for job in jobs {
        let (inp, out) = (tmp("in"), tmp("out"));
        std::fs::write(&inp, &job.input).expect("write input");
        let mut line = format!(
            "{} {} {} {} {}",
            job.op,
            job.ty.name(),
            job.n_per_row,
            inp.display(),
            out.display()
        );
        if let Some(w) = &job.imatrix {
            let imf = tmp("imatrix");
            std::fs::write(&imf, bytemuck::cast_slice::<f32, u8>(w)).expect("write imatrix");
            line.push_str(&format!(" {}", imf.display()));
            files.push(imf);
        }
        lines.push_str(&line);
        lines.push('\n');
        files.push(inp);
        outs.push(out);
    }
    let jobs_file = tmp("jobs");
    std::fs::write(&jobs_file, lines).expect("write jobs");
    let res = Command::new("python3")
        .arg(repo_root().join("tools/golden/quant_ref.py"))
        .arg("batch")
        .arg(&jobs_file)
        .output()
        .expect("python3 must be installed to run the golden tests");
    assert!(
        res.status.success(),
        "quant_ref.py failed (needs gguf==0.19.0, libgguf==0.2.2, numpy):\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let results = outs
        .iter()
        .map(|o| std::fs::read(o).expect("reference output"))
        .collect();
    for p in files.into_iter().chain(outs).chain([jobs_file]) {
        let _ = std::fs::remove_file(p);
    }
    results
}

/// The real-model material directory (`$SLM_MATERIAL`, default `~/.cache/slm-material`);
/// panics with instructions if `file` is not there.
pub fn material(file: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/slm-material")
        });
    let p = dir.join(file);
    assert!(
        p.is_file(),
        "test material {} is missing: run `python3 tools/material.py` first",
        p.display()
    );
    p
}
