//! `slm serve` on the real Gemma 3 270M, driven over real HTTP by the real `openai` and `ollama`
//! Python clients (tools/golden/serve_clients.py), plus the server's refusals.

mod serve_support;

use std::path::PathBuf;
use std::process::Command;

use serve_support::{material, slm_in, start, start_in, temp_home};

#[test]
fn real_openai_and_ollama_clients() {
    let model = material("gemma-3-270m-q4_k_m.gguf");
    let server = start(&[model.to_str().unwrap(), "--alias", "gemma3", "-c", "1024"]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/golden/serve_clients.py");
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

/// One raw HTTP/1.1 request; returns the status code.
fn http(base: &str, method: &str, path: &str, host: &str, key: Option<&str>, body: &str) -> u16 {
    serve_support::request(
        base.trim_start_matches("http://"),
        method,
        path,
        host,
        key,
        body,
    )
    .0
}

fn slm_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_slm"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn keys_roles_hosts_paths_and_audit() {
    use slm_server::auth::Access;
    use slm_server::keys::Role;
    let dir = std::env::temp_dir().join(format!("slm-serve-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    let audit = dir.join("audit.jsonl");
    let kf = keys.to_str().unwrap();
    let viewer = slm_ok(&["keys", "add", "--role", "viewer", "--file", kf]);
    let user = slm_ok(&["keys", "add", "--role", "user", "--file", kf]);
    let admin = slm_ok(&["keys", "add", "--role", "admin", "--file", kf]);
    let revoked = slm_ok(&[
        "keys", "add", "--role", "admin", "--file", kf, "--name", "old",
    ]);
    let listed: serde_json::Value =
        serde_json::from_str(&slm_ok(&["keys", "list", "--json", "--file", kf])).unwrap();
    let old_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "old")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    slm_ok(&["keys", "revoke", &old_id, "--file", kf]);
    let stored = std::fs::read_to_string(&keys).unwrap();
    for k in [&viewer, &user, &admin, &revoked] {
        assert!(!stored.contains(k.as_str()), "a key is stored in clear");
    }

    let model = material("gemma-3-270m-q4_k_m.gguf");
    // The admin routes act on a store holding one model.
    let home = temp_home("auth");
    slm_in(
        &home,
        &["import", model.to_str().unwrap(), "--name", "mygemma:q4"],
    );
    let server = start_in(
        &home,
        &[
            model.to_str().unwrap(),
            "--alias",
            "gemma3",
            "-c",
            "256",
            "--keys",
            kf,
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    let body = |path: &str| match path {
        "/v1/chat/completions" => {
            r#"{"model":"gemma3","messages":[{"role":"user","content":"hi"}],"max_tokens":1}"#
        }
        "/v1/completions" => r#"{"model":"gemma3","prompt":"hi","max_tokens":1}"#,
        "/api/generate" => {
            r#"{"model":"gemma3","prompt":"hi","stream":false,"options":{"num_predict":1}}"#
        }
        "/api/chat" => {
            r#"{"model":"gemma3","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":1}}"#
        }
        "/api/show" => r#"{"model":"gemma3"}"#,
        "/api/tokenize" => r#"{"model":"gemma3","prompt":"hi"}"#,
        "/api/detokenize" => r#"{"model":"gemma3","tokens":[2]}"#,
        // In ROUTES order: pull (already complete), copy, create from the copy, delete the copy.
        "/api/pull" => r#"{"model":"mygemma:q4","stream":false}"#,
        "/api/copy" => r#"{"source":"mygemma:q4","destination":"copy1:x"}"#,
        "/api/create" => r#"{"model":"made1:x","from":"copy1:x","system":"hi","stream":false}"#,
        "/api/delete" => r#"{"model":"copy1:x"}"#,
        _ => "",
    };
    let principals: [(&str, Option<&str>, Option<Role>); 6] = [
        ("no key", None, None),
        ("bad key", Some("slm-not-a-key"), None),
        ("revoked", Some(&revoked), None),
        ("viewer", Some(&viewer), Some(Role::Viewer)),
        ("user", Some(&user), Some(Role::User)),
        ("admin", Some(&admin), Some(Role::Admin)),
    ];
    let mut denials = 0;
    let mut admin_calls = 0;
    let mut cases = 0;
    for &(method, path, access) in slm_server::ROUTES {
        for (who, key, role) in &principals {
            let want = match (access, role) {
                (Access::Public, _) => 200,
                (Access::Min(_), None) => 401,
                (Access::Min(need), Some(r)) if *r >= need => 200,
                (Access::Min(_), Some(_)) => 403,
            };
            let got = http(&server.base, method, path, "localhost", *key, body(path));
            assert_eq!(got, want, "{who} {method} {path}");
            if want != 200 {
                denials += 1;
            } else if access == Access::Min(Role::Admin) {
                // State-changing: audited when it runs.
                admin_calls += 1;
            }
            cases += 1;
        }
    }
    assert_eq!(cases, slm_server::ROUTES.len() * 6);
    assert_eq!(admin_calls, 4, "pull, copy, create, delete");
    // The admin calls did what they say.
    let listed = slm_in(&home, &["list"]);
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"made1:x") && !names.contains(&"copy1:x"),
        "{listed}"
    );
    // DNS rebinding: a foreign Host is refused even with a good key.
    assert_eq!(
        http(
            &server.base,
            "GET",
            "/v1/models",
            "evil.example",
            Some(&admin),
            ""
        ),
        403
    );
    assert_eq!(
        http(&server.base, "GET", "/health", "evil.example:80", None, ""),
        403
    );
    denials += 2;
    // Path variants never reach a handler with a different decision: they are not routes.
    for p in [
        "//v1/chat/completions",
        "/v1//chat/completions",
        "/v1/chat/completions/",
        "/V1/chat/completions",
        "/v1/%63hat/completions",
        "/v1%2Fchat%2Fcompletions",
        "/./v1/chat/completions",
        "/x/../v1/chat/completions",
        "/v1/chat/completions;x",
    ] {
        let got = http(
            &server.base,
            "POST",
            p,
            "localhost",
            None,
            body("/v1/chat/completions"),
        );
        assert!(got == 404 || got == 401, "{p}: {got}");
        if got == 401 {
            denials += 1;
        }
    }
    assert_eq!(
        http(
            &server.base,
            "OPTIONS",
            "/v1/chat/completions",
            "localhost",
            None,
            ""
        ),
        404
    );
    drop(server);
    let verified = slm_ok(&["audit", "verify", audit.to_str().unwrap()]);
    let records = denials + admin_calls;
    assert!(
        verified.contains(&format!("{records} records")),
        "{verified} (expected {records}: {denials} denials + {admin_calls} admin calls)"
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    for route in ["/api/pull", "/api/copy", "/api/create", "/api/delete"] {
        assert_eq!(
            log.lines()
                .filter(|l| l.contains(&format!("\"route\":\"{route}\""))
                    && l.contains("\"decision\":\"allow\""))
                .count(),
            1,
            "one allow record for {route}"
        );
    }
    let log = std::fs::read_to_string(&audit).unwrap();
    for k in [&viewer, &user, &admin, &revoked] {
        assert!(!log.contains(k.as_str()), "a key leaked into the audit log");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&home);
}
