//! `slm serve` killed and restarted (reliability guide 2.10, last bullet; 2.7 "after SIGKILL"):
//! the real server is SIGKILLed at a random moment while admin requests change the store
//! (copy, create with large new layers, delete) and bad keys write auth-failure records, then
//! restarted; `SLM_RESTART_ITERS` times (default 50; `SLM_RESTART_SEED` replays a run). After
//! every kill: every manifest lists and has all its blobs, every final-named blob hashes to its
//! name (partial files live only under tmp/), `slm audit verify` passes, every request that was
//! answered has its audit record and no more records exist than requests were sent. Every 5th
//! kill also tears the log's last line (a write cut short, which a SIGKILL between two small
//! writes cannot produce reliably): verify must ignore it and say so. After the restart /health
//! answers within 5 s, one more auth failure is appended and the chain still verifies with
//! exactly one more record; every 10th restart also serves a generation from the store.
//!
//! Also: `ignore_eos` makes gemma-3-270m generate exactly max_tokens / num_predict tokens on the
//! OpenAI and Ollama APIs, where it otherwise stops at its end of turn.

#![cfg(unix)]

mod serve_support;

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serve_support::{material, request, slm_in, slm_try, start_in, temp_home, try_request};
use slm_hub::{Digest, Hasher, Store};

const BAD_KEY: &str = "slm-not-a-valid-key-0000000000000000";
/// The cold-start target without model load (the restarted server loads models on demand).
const READY_WITHIN: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(30);

/// xorshift64*: the kill moments, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    answered: AtomicU64,
}

/// One client, issuing requests until the server is gone. `kind` 0: copy then delete; 1: create
/// (two new layers of 64 KiB + a system prompt) then delete; 2: auth failures (bad key, no key).
/// Every request is counted as sent before it goes out and as answered once its status line
/// arrived (the server appends and syncs the audit record before it answers). An unexpected
/// status is an error.
fn client(
    addr: String,
    kind: u32,
    iter: usize,
    admin: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> Result<(), String> {
    let call = |method: &str, path: &str, key: Option<&str>, body: &str, want: u16| {
        counts.sent.fetch_add(1, Ordering::SeqCst);
        match try_request(&addr, method, path, key, body, TIMEOUT) {
            None => Ok(false),
            Some((code, resp)) => {
                counts.answered.fetch_add(1, Ordering::SeqCst);
                if code == want {
                    Ok(true)
                } else {
                    Err(format!(
                        "{method} {path} got {code}, expected {want}: {resp}"
                    ))
                }
            }
        }
    };
    let admin = Some(admin.as_str());
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let alive = match kind {
            0 => {
                let name = format!("cp{iter}-{n}:x");
                let copy = format!(r#"{{"source":"g3:base","destination":"{name}"}}"#);
                call("POST", "/api/copy", admin, &copy, 200)?
                    && call(
                        "DELETE",
                        "/api/delete",
                        admin,
                        &format!(r#"{{"model":"{name}"}}"#),
                        200,
                    )?
            }
            1 => {
                let name = format!("mk{iter}-{n}:x");
                // Unique contents: each create writes new blobs, none shared with another model.
                let filler = |tag: &str| format!("{tag} {iter} {n} {}", "x".repeat(64 << 10));
                let create = serde_json::json!({
                    "model": name, "from": "g3:base", "stream": false,
                    "system": format!("restart test {iter} {n}"),
                    "license": [filler("a"), filler("b")],
                });
                call("POST", "/api/create", admin, &create.to_string(), 200)?
                    && call(
                        "DELETE",
                        "/api/delete",
                        admin,
                        &format!(r#"{{"model":"{name}"}}"#),
                        200,
                    )?
            }
            _ => {
                let body = r#"{"source":"g3:base","destination":"never:x"}"#;
                call("POST", "/api/copy", Some(BAD_KEY), body, 401)?
                    && call("DELETE", "/api/delete", None, r#"{"model":"g3:base"}"#, 401)?
            }
        };
        if !alive {
            break;
        }
    }
    Ok(())
}

/// Blobs already hashed, by file name: (size, mtime ns, inode). A blob whose metadata changed is
/// hashed again.
type Hashed = HashMap<String, (u64, i64, u64)>;

fn sha256_of(path: &Path) -> Digest {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h.finish();
        }
        h.update(&buf[..n]);
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}

/// The store verifies: every manifest parses and has its blobs at their sizes, nothing but
/// manifests lies under manifests/, every file under blobs/ is named `sha256-<hex>` and hashes to
/// that name. Returns the number of models.
fn check_store(home: &Path, hashed: &mut Hashed) -> usize {
    let store = Store::open(home).unwrap();
    let models = store
        .list()
        .unwrap_or_else(|e| panic!("the store does not list: {e}"));
    assert_eq!(
        count_files(&home.join("manifests")),
        models.len(),
        "a file under manifests/ is not a manifest"
    );
    for m in &models {
        for l in &m.manifest.layers {
            assert!(
                store.has_blob(&l.digest, Some(l.size)).unwrap(),
                "{} names {} ({} bytes), which is missing or has the wrong size",
                m.name,
                l.digest,
                l.size
            );
        }
    }
    let mut seen = Vec::new();
    for e in std::fs::read_dir(store.blobs_dir()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        assert!(md.is_file(), "blobs/{name} is not a plain file");
        let digest = Digest::from_file_name(&name)
            .unwrap_or_else(|| panic!("blobs/{name}: a final directory holds a non-blob name"));
        let key = (
            md.len(),
            md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            md.ino(),
        );
        if hashed.get(&name) != Some(&key) {
            assert_eq!(
                sha256_of(&e.path()),
                digest,
                "blobs/{name} does not hash to its name"
            );
            hashed.insert(name.clone(), key);
        }
        seen.push(name);
    }
    hashed.retain(|k, _| seen.contains(k));
    models.len()
}

/// `slm audit verify` (the real CLI) must pass; returns its record count, which the library's
/// verify_log agrees with.
fn audit_records(home: &Path, log: &Path) -> usize {
    let (ok, out, err) = slm_try(home, &["audit", "verify", log.to_str().unwrap()]);
    assert!(ok, "slm audit verify failed: {err}\n{out}");
    let n: usize = out
        .split_whitespace()
        .rev()
        .skip_while(|w| !w.starts_with("records"))
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count in {out:?}"));
    let v = slm_server::audit::verify_log(log).unwrap();
    assert_eq!(v.records, n, "{v}");
    n
}

/// Cut the log's last record short and append it again without its newline, as a crash in the
/// middle of a write would leave it; returns the torn length.
fn tear(log: &Path, rng: &mut Rng) -> u64 {
    let text = std::fs::read_to_string(log).unwrap();
    let last = text.lines().last().expect("a record to tear");
    let cut = 1 + rng.below(last.len() as u64 - 1) as usize;
    let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    std::io::Write::write_all(&mut f, &last.as_bytes()[..cut]).unwrap();
    cut as u64
}

/// `slm serve` over `home`, store models only (loaded on demand); waits for /health.
fn restart(home: &Path, keys: &Path) -> (serve_support::Server, Duration) {
    let t0 = Instant::now();
    let server = start_in(
        home,
        &[
            "--keys",
            keys.to_str().unwrap(),
            "-c",
            "128",
            "--slots",
            "1",
        ],
    );
    loop {
        if let Some((200, _)) =
            try_request(&server.addr(), "GET", "/health", None, "", READY_WITHIN)
        {
            break;
        }
        assert!(
            t0.elapsed() < READY_WITHIN,
            "the restarted server did not answer /health within {READY_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (server, t0.elapsed())
}

#[test]
fn sigkill_during_admin_work_then_restart_keeps_store_and_audit_chain_valid() {
    let gemma = material("gemma-3-270m-q4_k_m.gguf");
    // 50 iterations take about 40 s on 2 shared cores (debug build), within the ~60 s budget.
    let iters = env_u64("SLM_RESTART_ITERS").unwrap_or(50) as usize;
    let seed = env_u64("SLM_RESTART_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }) | 1;
    eprintln!("serve_restart: {iters} iterations, SLM_RESTART_SEED={seed}");
    let mut rng = Rng(seed);
    let home = temp_home("restart");
    slm_in(
        &home,
        &["import", gemma.to_str().unwrap(), "--name", "g3:base"],
    );
    let keys = home.join("keys.json");
    let admin = slm_in(
        &home,
        &[
            "keys",
            "add",
            "--role",
            "admin",
            "--file",
            keys.to_str().unwrap(),
        ],
    );
    let log = home.join("audit.jsonl");
    let mut hashed = Hashed::new();
    check_store(&home, &mut hashed);
    let started = Instant::now();
    let (mut sent, mut answered, mut probes) = (0u64, 0u64, 0u64);
    let (mut records, mut torn, mut slowest) = (0usize, 0, Duration::ZERO);
    let mut models_seen = 0;
    for iter in 0..iters {
        let (mut server, ready) = restart(&home, &keys);
        slowest = slowest.max(ready);
        let addr = server.addr();
        // The chain goes on after the restart (after a torn line too): one record more.
        let (code, _) = request(
            &addr,
            "POST",
            "/api/copy",
            "localhost",
            Some(BAD_KEY),
            r#"{"source":"a:b","destination":"c:d"}"#,
        );
        assert_eq!(code, 401);
        probes += 1;
        let n = audit_records(&home, &log);
        assert_eq!(n, records + 1, "restart {iter}: the chain did not continue");
        if iter % 10 == 0 {
            // Serving, not only answering /health: a generation from the store's model.
            let t = Instant::now();
            let (code, body) = request(
                &addr,
                "POST",
                "/api/generate",
                "localhost",
                Some(&admin),
                r#"{"model":"g3:base","prompt":"Hi","stream":false,"options":{"num_predict":2,"temperature":0}}"#,
            );
            assert_eq!(code, 200, "generate after restart {iter}: {body}");
            eprintln!(
                "restart {iter}: model loaded and generated in {:?}",
                t.elapsed()
            );
        }
        // The work, killed at a random moment of it.
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let clients: Vec<_> = (0..3)
            .map(|kind| {
                let (addr, admin) = (addr.clone(), admin.clone());
                let (stop, counts) = (stop.clone(), counts.clone());
                std::thread::spawn(move || client(addr, kind, iter, admin, stop, counts))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            c.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("iteration {iter}: {e}"));
        }
        drop(server);
        sent += counts.sent.load(Ordering::SeqCst);
        answered += counts.answered.load(Ordering::SeqCst);
        // After the kill.
        models_seen = models_seen.max(check_store(&home, &mut hashed));
        if iter % 5 == 4 {
            let cut = tear(&log, &mut rng);
            let v = slm_server::audit::verify_log(&log).unwrap();
            assert_eq!(v.torn_bytes, cut, "{v}");
            assert!(v.to_string().contains("last line incomplete"), "{v}");
            torn += 1;
        }
        records = audit_records(&home, &log);
        assert!(
            records as u64 >= probes + answered,
            "iteration {iter}: {records} records, but {answered} worker requests and {probes} \
             probes were answered (an answered request lost its record)"
        );
        assert!(
            records as u64 <= probes + sent,
            "iteration {iter}: {records} records for {sent} requests sent and {probes} probes"
        );
    }
    // Finally every blob is hashed again, whatever its metadata says.
    check_store(&home, &mut Hashed::new());
    let (server, _) = restart(&home, &keys);
    drop(server);
    eprintln!(
        "serve_restart: {iters} kills in {:.1} s; slowest restart to /health {slowest:?}; \
         {sent} requests sent, {answered} answered, {records} audit records ({probes} probes), \
         {torn} torn lines ignored and cut, up to {models_seen} models in the store",
        started.elapsed().as_secs_f64()
    );
    assert!(answered > iters as u64, "the clients got little work done");
    let _ = std::fs::remove_dir_all(&home);
}

fn post_json(addr: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (code, resp) = request(addr, "POST", path, "localhost", None, &body.to_string());
    assert_eq!(code, 200, "{path}: {resp}");
    serde_json::from_str(&resp).unwrap_or_else(|e| panic!("{path}: {e}: {resp}"))
}

/// `ignore_eos` ends a generation only at max_tokens / num_predict, with finish reason "length",
/// where the model otherwise ends early: gemma-3-270m (no chat template of its own, so the
/// fallback ChatML one) at its end-of-turn string on /v1/chat/completions and /api/chat;
/// SmolLM2-135M-Instruct at its end-of-generation token on /api/generate. (On /api/generate
/// gemma gets the raw prompt, as a model without a template does in Ollama, and continues the
/// text past 24 tokens either way.)
#[test]
fn ignore_eos_generates_exactly_max_tokens_on_gemma_3_270m_and_smollm2() {
    let gemma = material("gemma-3-270m-q4_k_m.gguf");
    let smol = material("SmolLM2-135M-Instruct.Q4_1.gguf");
    let home = temp_home("eos");
    let server = start_in(
        &home,
        &[
            gemma.to_str().unwrap(),
            smol.to_str().unwrap(),
            "--alias",
            "g",
            "--alias",
            "s",
            "-c",
            "256",
            "--slots",
            "1",
        ],
    );
    let addr = server.addr();
    let story = "Write a short story about a lighthouse keeper.";
    let openai_chat = |ignore_eos: bool| {
        let v = post_json(
            &addr,
            "/v1/chat/completions",
            serde_json::json!({"model": "g", "temperature": 0, "max_tokens": 24,
                "ignore_eos": ignore_eos,
                "messages": [{"role": "user", "content": story}]}),
        );
        (
            v["usage"]["completion_tokens"].as_u64().unwrap(),
            v["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let ollama = |path: &str, model: &str, prompt: &str, ignore_eos: bool| {
        let mut body = serde_json::json!({"model": model, "stream": false,
            "options": {"temperature": 0, "num_predict": 24, "ignore_eos": ignore_eos}});
        if path == "/api/chat" {
            body["messages"] = serde_json::json!([{"role": "user", "content": prompt}]);
        } else {
            body["prompt"] = prompt.into();
        }
        let v = post_json(&addr, path, body);
        (
            v["eval_count"].as_u64().unwrap(),
            v["done_reason"].as_str().unwrap().to_string(),
        )
    };
    let early = |what: &str, (n, reason): (u64, String)| {
        assert!(
            n < 24 && reason == "stop",
            "{what}: without ignore_eos the model ends early, got {n} tokens, {reason}"
        );
    };
    let exact = (24, "length".to_string());
    early("chat completions", openai_chat(false));
    assert_eq!(openai_chat(true), exact, "chat completions");
    early("/api/chat", ollama("/api/chat", "g", story, false));
    assert_eq!(ollama("/api/chat", "g", story, true), exact, "/api/chat");
    let question = "What is 2+2?";
    early(
        "/api/generate",
        ollama("/api/generate", "s", question, false),
    );
    assert_eq!(
        ollama("/api/generate", "s", question, true),
        exact,
        "/api/generate"
    );
    assert_eq!(
        ollama("/api/generate", "g", story, true),
        exact,
        "/api/generate, gemma"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}
