//! `slm serve` on the real Gemma 3 270M, driven over real HTTP by the real `openai` and `ollama`
//! Python clients (tools/golden/serve_clients.py), plus the server's refusals.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn material(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/slm-material"));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "test material {} is missing: run `python3 tools/material.py` first",
        p.display()
    );
    p
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slm"))
        .arg("serve")
        .args(args)
        .args(["--port", "0", "-t", "2"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start slm serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("slm serve exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("slm serve: listening on ") {
            break addr.trim().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

#[test]
fn real_openai_and_ollama_clients() {
    let model = material("gemma-3-270m-q4_k_m.gguf");
    let server = start(&[model.to_str().unwrap(), "--alias", "gemma3", "-c", "1024"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/golden/serve_clients.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&server.base)
        .arg("gemma3")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "client checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refuses_non_loopback_bind_without_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_slm"))
        .args(["serve", "/nonexistent.gguf", "--host", "0.0.0.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to bind 0.0.0.0"));
}
