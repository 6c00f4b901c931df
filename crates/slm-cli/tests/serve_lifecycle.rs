//! `slm serve` under load and at shutdown (reliability guide 2.8, 2.10): SIGTERM during a stream
//! drains it and exits 0 with the audit chain intact; many concurrent streaming clients, some
//! hanging up mid-stream, get no 5xx but 503 and leave no slot, stream or memory behind.

mod serve_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serve_support::{material, metric_sum, request, rss, slm_in, start_in, temp_home};

/// Open a streaming /api/generate; returns the status and the reader positioned at the body.
fn open_stream(addr: &str, body: &str) -> (u16, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    let _ = r.read_line(&mut status_line);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    loop {
        let mut h = String::new();
        match r.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h == "\r\n" => break,
            Ok(_) => {}
        }
    }
    (status, r)
}

/// The next NDJSON object of a chunked body (chunk-size lines skipped), `None` at the end.
fn next_json(r: &mut BufReader<TcpStream>) -> Option<serde_json::Value> {
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let t = line.trim();
        if t.starts_with('{') {
            return serde_json::from_str(t).ok();
        }
    }
}

#[test]
fn sigterm_drains_a_running_stream_and_exits_zero() {
    let model = material("gemma-3-270m-q4_k_m.gguf");
    let home = temp_home("term");
    let audit = home.join("audit.jsonl");
    let mut server = start_in(
        &home,
        &[
            model.to_str().unwrap(),
            "--alias",
            "g",
            "-c",
            "512",
            "--shutdown-timeout",
            "3",
        ],
    );
    let addr = server.addr();
    // A state-changing request leaves an audit record before the shutdown.
    let (code, _) = request(
        &addr,
        "DELETE",
        "/api/delete",
        "localhost",
        None,
        r#"{"model":"nope:x"}"#,
    );
    assert_eq!(code, 404);
    // A short stream finishes normally during the drain; a long one is ended at the timeout.
    let long = r#"{"model":"g","prompt":"Count from one to a thousand.","options":{"num_predict":400,"temperature":0}}"#;
    let short = r#"{"model":"g","prompt":"Hi","options":{"num_predict":6,"temperature":0}}"#;
    let (s1, mut long_r) = open_stream(&addr, long);
    assert_eq!(s1, 200);
    assert!(next_json(&mut long_r).is_some(), "the long stream started");
    let (s2, mut short_r) = open_stream(&addr, short);
    assert_eq!(s2, 200);
    let t_signal = Instant::now();
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // New connections are refused (or answered 503) soon after the signal.
    std::thread::sleep(Duration::from_millis(300));
    if TcpStream::connect(&addr).is_ok() {
        let (code, _) = open_stream(&addr, short);
        assert!(
            code == 0 || code == 503,
            "a new request during the drain got {code}"
        );
    }
    let mut last = None;
    while let Some(v) = next_json(&mut short_r) {
        last = Some(v);
    }
    let last = last.expect("short stream records");
    assert_eq!(last["done"], true, "{last}");
    let mut last = None;
    let mut n = 0;
    while let Some(v) = next_json(&mut long_r) {
        n += 1;
        last = Some(v);
    }
    let last = last.expect("long stream records");
    assert_eq!(
        last["done"], true,
        "the long stream ends with a final record: {last}"
    );
    assert_eq!(last["done_reason"], "length", "{last}");
    assert!(
        n < 399,
        "the long stream was cut by the drain ({n} records)"
    );
    // Exits 0 within the timeout plus a margin.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "slm serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(t_signal.elapsed() < Duration::from_secs(3 + 5));
    let verified = slm_in(&home, &["audit", "verify", audit.to_str().unwrap()]);
    assert!(verified.contains("1 records"), "{verified}");
    let _ = std::fs::remove_dir_all(&home);
}

/// `SLM_SOAK_SECS` (default 60) of 8 streaming clients on 4 slots with a queue of 4; every
/// fifth request hangs up after its first line.
#[test]
fn soak_8_streaming_clients_with_disconnects() {
    let secs: u64 = std::env::var("SLM_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let model = material("gemma-3-270m-q4_k_m.gguf");
    let home = temp_home("soak");
    let server = start_in(
        &home,
        &[
            model.to_str().unwrap(),
            "--alias",
            "g",
            "-c",
            "512",
            "--slots",
            "4",
            "--max-queue",
            "4",
        ],
    );
    let addr = server.addr();
    let pid = server.child.id();
    let body = |i: u64| {
        format!(
            r#"{{"model":"g","prompt":"Write a short story number {}.","options":{{"num_predict":24,"temperature":0.8,"seed":{i}}}}}"#,
            i % 7
        )
    };
    // Warm-up: every slot used once (KV caches grow to their working size).
    let warm: Vec<_> = (0..4)
        .map(|i| {
            let (addr, b) = (addr.clone(), body(i));
            std::thread::spawn(move || {
                let (_, mut r) = open_stream(&addr, &b);
                while next_json(&mut r).is_some() {}
            })
        })
        .collect();
    for t in warm {
        t.join().unwrap();
    }
    let baseline = rss(pid);
    let ok = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let hung_up = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let end = Instant::now() + Duration::from_secs(secs);
    let clients: Vec<_> = (0..8u64)
        .map(|c| {
            let (addr, ok, busy, hung_up, bad) = (
                addr.clone(),
                ok.clone(),
                busy.clone(),
                hung_up.clone(),
                bad.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0u64;
                while Instant::now() < end {
                    i += 1;
                    let (status, mut r) = open_stream(&addr, &body(c * 1000 + i));
                    match status {
                        200 if i.is_multiple_of(5) => {
                            let _ = next_json(&mut r);
                            drop(r);
                            hung_up.fetch_add(1, Ordering::Relaxed);
                        }
                        200 => {
                            let mut last = None;
                            while let Some(v) = next_json(&mut r) {
                                last = Some(v);
                            }
                            match last {
                                Some(v) if v["done"] == true => {
                                    ok.fetch_add(1, Ordering::Relaxed);
                                }
                                other => bad.lock().unwrap().push(format!("{other:?}")),
                            }
                        }
                        503 => {
                            busy.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        s => bad.lock().unwrap().push(format!("status {s}")),
                    }
                }
            })
        })
        .collect();
    // Health stays responsive throughout.
    let mut worst_health = Duration::ZERO;
    while Instant::now() < end {
        let t = Instant::now();
        let (code, _) = request(&addr, "GET", "/health", "localhost", None, "");
        assert_eq!(code, 200);
        worst_health = worst_health.max(t.elapsed());
        std::thread::sleep(Duration::from_secs(1));
    }
    for t in clients {
        t.join().unwrap();
    }
    let bad = bad.lock().unwrap().clone();
    assert!(bad.is_empty(), "unexpected answers: {bad:?}");
    let (ok, busy, hung_up) = (
        ok.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
        hung_up.load(Ordering::Relaxed),
    );
    eprintln!(
        "soak {secs}s: {ok} completed, {hung_up} hung up, {busy} x 503; worst /health {worst_health:?}"
    );
    assert!(ok > 0 && hung_up > 0, "{ok} completed, {hung_up} hung up");
    assert!(worst_health < Duration::from_secs(1), "{worst_health:?}");
    // No leaked slots, queue entries or streams.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, m) = request(&addr, "GET", "/metrics", "localhost", None, "");
        let left = metric_sum(&m, "slm_active_sequences")
            + metric_sum(&m, "slm_queue_depth")
            + metric_sum(&m, "slm_streams_active")
            + metric_sum(&m, "slm_model_requests_in_flight");
        if left == 0 {
            assert!(metric_sum(&m, "slm_request_errors_total") <= busy, "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "leaked sequences/streams:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = rss(pid);
    eprintln!(
        "RSS baseline {} MiB, after {} MiB",
        baseline >> 20,
        after >> 20
    );
    assert!(
        after <= baseline + baseline / 20 + (32 << 20),
        "RSS grew from {} MiB to {} MiB",
        baseline >> 20,
        after >> 20
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}
