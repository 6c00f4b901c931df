//! `slm serve` over a store (temp SLM_HOME): the Ollama admin calls (copy, create, delete, pull
//! from a local registry speaking the real v2 protocol) and models loaded on demand with
//! keep_alive and a memory budget, driven by the real `ollama` Python client
//! (tools/golden/serve_models.py).

mod serve_support;

use serve_support::{material, python, slm_in, start_in, temp_home};

#[test]
fn store_admin_pull_and_keep_alive_with_the_ollama_client() {
    let gemma = material("gemma-3-270m-q4_k_m.gguf");
    let smol = material("SmolLM2-135M-Instruct.Q4_1.gguf");
    let home = temp_home("models");
    slm_in(
        &home,
        &["import", gemma.to_str().unwrap(), "--name", "g3:test"],
    );
    let server = start_in(&home, &["-c", "512", "--slots", "2"]);
    python(
        "serve_models.py",
        &["admin", &server.base, "g3:test", smol.to_str().unwrap()],
    );
    drop(server);
    // One audit record per admin request: copy x2, create x3, delete x2, pull x3.
    let verified = slm_in(
        &home,
        &[
            "audit",
            "verify",
            home.join("audit.jsonl").to_str().unwrap(),
        ],
    );
    assert!(verified.contains("10 records"), "{verified}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn memory_budget_evicts_the_least_recently_used_idle_model() {
    let gemma = material("gemma-3-270m-q4_k_m.gguf");
    let smol = material("SmolLM2-135M-Instruct.Q4_1.gguf");
    let home = temp_home("lru");
    slm_in(
        &home,
        &["import", gemma.to_str().unwrap(), "--name", "g3:test"],
    );
    slm_in(
        &home,
        &["import", smol.to_str().unwrap(), "--name", "smol:test"],
    );
    // 300 MiB holds either model (253 / 98 MB of weights + a small KV cache), not both.
    let server = start_in(
        &home,
        &["--max-memory", "300MB", "-c", "256", "--slots", "1"],
    );
    python(
        "serve_models.py",
        &["lru", &server.base, "g3:test", "smol:test"],
    );
    let _ = std::fs::remove_dir_all(&home);
}
