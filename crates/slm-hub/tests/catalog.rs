//! The catalog against the real model files of `$SLM_MATERIAL` (metadata read by a small Python
//! walk of the GGUF header): sizes, sha256 pins, KV geometry and the KV bytes `slm show` prints; size classes;
//! `recommend` picks and arithmetic; memory-size parsing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slm_hub::catalog::{self, Capability, CATALOG};
use slm_hub::recommend::{parse_memory, recommend, Estimate, OVERHEAD_BASE};
use slm_hub::ModelName;

fn material() -> std::path::PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slm-material")
        });
    assert!(
        dir.is_dir(),
        "test material missing at {}: run `python3 tools/material.py`",
        dir.display()
    );
    dir
}

/// (block_count, head_count_kv, head_dim, sliding_window or 0) read from the file by Python.
fn geometry(path: &std::path::Path) -> (u64, u64, u64, u64) {
    // A minimal GGUF metadata walk (struct module only): the `gguf` package's reader takes tens of
    // seconds on these files because it materializes every vocabulary string.
    let script = r#"
import struct, sys
f = open(sys.argv[1], 'rb')
def rd(fmt):
    return struct.unpack('<' + fmt, f.read(struct.calcsize('<' + fmt)))[0]
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
FMT = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
def rstr():
    return f.read(rd('Q')).decode('utf-8', 'replace')
def value(t):
    if t == 8:
        return rstr()
    if t == 9:
        et, n = rd('I'), rd('Q')
        if et == 8:
            for _ in range(n):
                f.seek(rd('Q'), 1)
        else:
            f.seek(SIZES[et] * n, 1)
        return None
    return rd(FMT[t])
assert f.read(4) == b'GGUF'
rd('I'); rd('Q'); n_kv = rd('Q')
kv = {}
for _ in range(n_kv):
    k = rstr()
    kv[k] = value(rd('I'))
arch = kv['general.architecture']
def get(k, d=0):
    return kv.get(arch + '.' + k, d)
n_head = get('attention.head_count')
print(get('block_count'), get('attention.head_count_kv', n_head), get('attention.key_length', get('embedding_length') // n_head), get('attention.sliding_window'))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("python3 is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1], v[2], v[3])
}

#[test]
fn catalog_matches_the_real_files() {
    let dir = material();
    // (catalog name, file, KV bytes at 4096 as printed by `slm show --json`)
    for (name, file, kv4096) in [
        ("gemma3:270m", "gemma-3-270m-q4_k_m.gguf", 20_447_232u64),
        (
            "smollm2:135m",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            94_371_840,
        ),
        (
            "qwen2.5-coder:0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            50_331_648,
        ),
    ] {
        let m = catalog::find(name).unwrap();
        let q = &m.quants[0];
        let path = dir.join(file);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        assert_eq!(q.size, len, "{name} size");
        assert!(q.exact && q.sha256.is_some());
        let (n_layer, n_head_kv, head_dim, window) = geometry(&path);
        assert_eq!(
            (m.kv.n_layer, m.kv.n_head_kv, m.kv.head_dim),
            (n_layer, n_head_kv, head_dim),
            "{name} geometry"
        );
        assert_eq!(m.kv.window.unwrap_or(0), window, "{name} window");
        assert_eq!(m.kv.kv_bytes(4096), kv4096, "{name} KV at 4096");
    }
    // The pinned sha256 of the smallest file, recomputed.
    let data = std::fs::read(dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    assert_eq!(
        Some(slm_hub::Digest::of_bytes(&data).hex().as_str()),
        catalog::find("smollm2:135m").unwrap().quants[0].sha256
    );
}

#[test]
fn catalog_is_complete_and_consistent() {
    for want in [
        "gemma3:270m",
        "gemma3:1b",
        "gemma3:4b",
        "qwen3:0.6b",
        "qwen3:1.7b",
        "qwen3:4b",
        "phi4-mini:3.8b",
        "llama3.1:8b",
        "smollm2:135m",
        "smollm2:360m",
        "smollm2:1.7b",
        "bitnet-b1.58:2b",
        "qwen2.5-coder:0.5b",
        "qwen2.5-coder:1.5b",
    ] {
        let m = catalog::find(want).unwrap_or_else(|| panic!("{want} missing"));
        assert!(!m.quants.is_empty() && !m.capabilities.is_empty());
        for q in m.quants {
            assert!(!q.sources.is_empty(), "{want} {} has no source", q.quant);
            if let Some(h) = q.sha256 {
                slm_hub::Digest::from_hex(h).unwrap();
            }
        }
        ModelName::parse(m.name).unwrap();
    }
    let class = |n: &str| catalog::find(n).unwrap().size_class();
    assert_eq!(class("smollm2:135m"), "micro");
    assert_eq!(class("qwen3:0.6b"), "micro");
    assert_eq!(class("gemma3:1b"), "micro");
    assert_eq!(class("qwen2.5-coder:1.5b"), "small");
    assert_eq!(class("smollm2:1.7b"), "small");
    assert_eq!(class("llama3.1:8b"), "small");
    let names: std::collections::HashSet<_> = CATALOG.iter().map(|m| m.name).collect();
    assert_eq!(names.len(), CATALOG.len(), "duplicate names");
}

#[test]
fn short_names_resolve() {
    let r =
        |s: &str| catalog::resolve(&ModelName::parse(s).unwrap()).map(|(m, q)| (m.name, q.quant));
    assert_eq!(r("gemma3:270m"), Some(("gemma3:270m", "Q4_K_M")));
    assert_eq!(r("gemma3:270m-Q8_0"), Some(("gemma3:270m", "Q8_0")));
    assert_eq!(r("smollm2:135m"), Some(("smollm2:135m", "Q4_1")));
    assert_eq!(
        r("qwen2.5-coder:1.5b"),
        Some(("qwen2.5-coder:1.5b", "Q4_K_M"))
    );
    assert_eq!(r("gemma3"), Some(("gemma3:270m", "Q4_K_M")));
    assert_eq!(r("gemma3:270m-q2_k"), None);
    assert_eq!(r("gemma3:999b"), None);
    assert_eq!(r("hf.co/x/gemma3:270m"), None);
}

#[test]
fn memory_sizes_parse() {
    assert_eq!(parse_memory("4GB").unwrap(), 4 << 30);
    assert_eq!(parse_memory("4GiB").unwrap(), 4 << 30);
    assert_eq!(parse_memory("4g").unwrap(), 4 << 30);
    assert_eq!(parse_memory("512MB").unwrap(), 512 << 20);
    assert_eq!(parse_memory("1.5GB").unwrap(), 3 << 29);
    assert_eq!(parse_memory("1000").unwrap(), 1000);
    for bad in ["", "GB", "4XB", "-1GB", "1e400GB", "4 G B"] {
        assert!(parse_memory(bad).is_err(), "{bad}");
    }
}

#[test]
fn recommend_picks_the_largest_model_that_fits() {
    let r = recommend(4 << 30, Capability::Chat, 4096);
    let p = r.pick.unwrap();
    assert_eq!(
        (p.model.name, p.quant.quant),
        ("qwen3:4b", "Q4_K_M"),
        "{}",
        r.why
    );
    assert_eq!(p.total, p.weights + p.kv + p.overhead);
    assert_eq!(p.kv, 36 * 4096 * 8 * 128 * 2 * 2);
    assert_eq!(p.overhead, OVERHEAD_BASE + p.weights / 50);
    assert!(p.total <= 4 << 30);
    assert!(r.why.contains("qwen3:4b"), "{}", r.why);
    let p = recommend(1 << 30, Capability::Chat, 4096).pick.unwrap();
    assert_eq!(p.model.name, "gemma3:1b");
    let p = recommend(2 << 30, Capability::Code, 4096).pick.unwrap();
    assert_eq!(p.model.name, "qwen2.5-coder:1.5b");
    let p = recommend(1 << 30, Capability::Embed, 2048).pick.unwrap();
    assert_eq!(p.model.name, "embeddinggemma:300m");
    // A longer context costs KV memory: at 128k tokens qwen3:4b is capped at its 40k context.
    let e = Estimate::new(
        catalog::find("qwen3:4b").unwrap(),
        &catalog::find("qwen3:4b").unwrap().quants[0],
        131_072,
    );
    assert_eq!(e.ctx, 40_960);
    let none = recommend(100 << 20, Capability::Chat, 4096);
    assert!(none.pick.is_none() && none.why.contains("nothing"));
    // Sliding-window KV: Gemma 3 grows slowly with context.
    let g = catalog::find("gemma3:270m").unwrap();
    assert_eq!(
        g.kv.kv_bytes(32_768),
        108_527_616,
        "as printed by `slm show --json`"
    );
}
