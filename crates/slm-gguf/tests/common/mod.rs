//! Shared helpers of the interop tests: running the Python reference (`tools/golden/gguf_interop.py`,
//! PyPI `gguf` 0.19.0) and building the same canonical JSON from slm's reader.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value as J};
use sha2::{Digest, Sha256};
use slm_gguf::{Array, GgufFile, Value};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run `python3 tools/golden/gguf_interop.py ARGS...` and return its stdout; panics with the
/// script's stderr on failure (a missing `gguf` package fails the test, it does not skip it).
pub fn interop(args: &[&str]) -> String {
    let script = repo_root().join("tools/golden/gguf_interop.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "python3 {} {:?} failed ({}):\n{}",
        script.display(),
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

/// `gguf.GGUFReader`'s view of each file, one JSON object per file.
pub fn python_dump(paths: &[&Path]) -> Vec<J> {
    let mut args = vec!["dump"];
    let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(strs.iter().map(String::as_str));
    interop(&args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("python dump is JSON"))
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn value_json(v: &Value) -> (String, J) {
    let t = v.value_type().name().to_string();
    let j = match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => json!(hex(&x.to_le_bytes())),
        Value::F64(x) => json!(hex(&x.to_le_bytes())),
        Value::Bool(x) => json!(x),
        Value::String(s) => json!(s),
        Value::Array(a) => {
            let items: Vec<J> = match a {
                Array::U8(v) => v.iter().map(|x| json!(x)).collect(),
                Array::I8(v) => v.iter().map(|x| json!(x)).collect(),
                Array::U16(v) => v.iter().map(|x| json!(x)).collect(),
                Array::I16(v) => v.iter().map(|x| json!(x)).collect(),
                Array::U32(v) => v.iter().map(|x| json!(x)).collect(),
                Array::I32(v) => v.iter().map(|x| json!(x)).collect(),
                Array::U64(v) => v.iter().map(|x| json!(x)).collect(),
                Array::I64(v) => v.iter().map(|x| json!(x)).collect(),
                Array::F32(v) => v.iter().map(|x| json!(hex(&x.to_le_bytes()))).collect(),
                Array::F64(v) => v.iter().map(|x| json!(hex(&x.to_le_bytes()))).collect(),
                Array::Bool(v) => v.iter().map(|x| json!(x)).collect(),
                Array::String(v) => v.iter().map(|x| json!(x)).collect(),
            };
            json!([a.elem_type().name(), items])
        }
    };
    (t, j)
}

/// slm's view of a file, in the canonical form of `gguf_interop.py dump`.
pub fn slm_json(f: &GgufFile) -> J {
    let kv: Vec<J> = f
        .metadata()
        .iter()
        .map(|(k, v)| {
            let (t, j) = value_json(v);
            json!([k, t, j])
        })
        .collect();
    let tensors: Vec<J> = f
        .tensors()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "type": t.ty.name(),
                "dims": t.dims,
                "n_elements": t.n_elements,
                "n_bytes": t.n_bytes,
                "offset": t.offset,
                "sha256": sha256_hex(f.tensor_data(t)),
            })
        })
        .collect();
    json!({
        "version": f.version,
        "alignment": f.alignment,
        "data_offset": f.data_offset,
        "kv": kv,
        "tensors": tensors,
    })
}

/// Compare two canonical dumps field by field, with messages that name the first difference.
pub fn assert_same(label: &str, slm: &J, py: &J) {
    for field in ["version", "alignment", "data_offset"] {
        assert_eq!(slm[field], py[field], "{label}: {field}");
    }
    let (a, b) = (slm["kv"].as_array().unwrap(), py["kv"].as_array().unwrap());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "{label}: metadata entry differs");
    }
    assert_eq!(a.len(), b.len(), "{label}: number of metadata entries");
    let (a, b) = (
        slm["tensors"].as_array().unwrap(),
        py["tensors"].as_array().unwrap(),
    );
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "{label}: tensor differs");
    }
    assert_eq!(a.len(), b.len(), "{label}: number of tensors");
    assert_eq!(slm, py, "{label}");
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slm-gguf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
