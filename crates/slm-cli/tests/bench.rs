//! `slm bench` on the real Gemma 3 270M (and SmolLM2 for the several-models table) with tiny
//! sizes: the JSON/CSV/markdown shapes, model size and parameter count against the reference
//! `gguf` package, and numbers that are positive and consistent with each other. No timing
//! thresholds: CI machines are busy.

mod common;
use common::{material, ok_stdout, slm};

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Tensor bytes and elements as the reference `gguf` package reads them.
fn reference_sizes(path: &PathBuf) -> (u64, u64) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/golden/gguf_summary.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "reference reader failed (pip install -r tools/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tensors = v["tensors"].as_object().unwrap();
    let bytes = tensors.values().map(|t| t["bytes"].as_u64().unwrap()).sum();
    let elements = tensors
        .values()
        .map(|t| t["elements"].as_u64().unwrap())
        .sum();
    (bytes, elements)
}

#[test]
fn gemma3_bench_json_rows_are_consistent() {
    let model = material("gemma-3-270m-q4_k_m.gguf");
    let m = model.to_str().unwrap();
    let stdout = ok_stdout(&[
        "bench", m, "-p", "16", "-n", "4", "-pg", "8,4", "-r", "2", "-t", "2", "-o", "json",
    ]);
    let rows: Vec<Value> = serde_json::from_str(&stdout).expect("JSON array");
    let (ref_bytes, ref_params) = reference_sizes(&model);
    let tests: Vec<(&str, u64, u64)> = vec![("pp16", 16, 0), ("tg4", 0, 4), ("pp8+tg4", 8, 4)];
    assert_eq!(rows.len(), tests.len(), "{stdout}");
    for (row, (name, p, n)) in rows.iter().zip(tests) {
        assert_eq!(row["test"], name);
        assert_eq!(row["n_prompt"].as_u64(), Some(p));
        assert_eq!(row["n_gen"].as_u64(), Some(n));
        assert_eq!(row["n_threads"].as_u64(), Some(2));
        assert_eq!(row["n_batch"].as_u64(), Some(2048));
        assert_eq!(row["model_size"].as_u64(), Some(ref_bytes));
        assert_eq!(row["model_n_params"].as_u64(), Some(ref_params));
        assert_eq!(
            row["file_bytes"].as_u64(),
            Some(std::fs::metadata(&model).unwrap().len())
        );
        let bpw = row["bits_per_weight"].as_f64().unwrap();
        assert!((bpw - ref_bytes as f64 * 8.0 / ref_params as f64).abs() < 1e-9);
        assert!(row["model_type"].as_str().unwrap().starts_with("gemma3 "));
        assert_eq!(row["file_type"], "Q4_K_M");
        // Two repetitions, each tokens/s = tokens / seconds.
        let ns: Vec<f64> = row["samples_ns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let ts: Vec<f64> = row["samples_ts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(ns.len(), 2);
        for (ns, ts) in ns.iter().zip(&ts) {
            assert!(*ns > 0.0 && *ts > 0.0);
            assert!((ts - 1e9 * (p + n) as f64 / ns).abs() < 1e-6 * ts);
        }
        let avg = row["avg_ts"].as_f64().unwrap();
        assert!((avg - (ts[0] + ts[1]) / 2.0).abs() < 1e-9 * avg);
        let sd = row["stddev_ts"].as_f64().unwrap();
        // The sample standard deviation of two values is |a - b| / sqrt(2).
        assert!((sd - (ts[0] - ts[1]).abs() / 2f64.sqrt()).abs() < 1e-6 * avg.max(1.0));
        let avg_ns = row["avg_ns"].as_f64().unwrap();
        assert!((avg_ns - (ns[0] + ns[1]) / 2.0).abs() <= 1.0);
        // The weights are mapped and every one of them is read by a forward pass.
        let peak = row["peak_rss_bytes"].as_u64().expect("peak RSS on Linux");
        assert!(
            peak > ref_bytes / 2 && peak < 8 << 30,
            "peak RSS {peak} for {ref_bytes} bytes of weights"
        );
        assert_eq!(row["peak_rss_scope"], "row");
    }
}

#[test]
fn bench_csv_and_markdown_shapes_with_two_models() {
    let gemma = material("gemma-3-270m-q4_k_m.gguf");
    let smol = material("SmolLM2-135M-Instruct.Q4_1.gguf");
    let (g, s) = (gemma.to_str().unwrap(), smol.to_str().unwrap());
    let args = ["-p", "16", "-n", "4", "-r", "1", "-t", "1,2", "--no-warmup"];

    let csv = ok_stdout(&[&["bench", g, s, "--csv"][..], &args[..]].concat());
    let lines: Vec<&str> = csv.lines().collect();
    // 2 models x 2 thread counts x 2 tests.
    assert_eq!(lines.len(), 1 + 8, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[0], "model_filename");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in &lines[1..] {
        let fields: Vec<String> = line
            .split("\",\"")
            .map(|f| f.trim_matches('"').to_string())
            .collect();
        assert_eq!(fields.len(), header.len(), "{line}");
        let ts: f64 = fields[col("avg_ts")].parse().unwrap();
        let ns: f64 = fields[col("avg_ns")].parse().unwrap();
        let tokens: f64 = fields[col("n_prompt")].parse::<f64>().unwrap()
            + fields[col("n_gen")].parse::<f64>().unwrap();
        // One repetition: the mean rate is exactly tokens / mean time.
        assert!((ts - 1e9 * tokens / ns).abs() < 1e-3 * ts, "{line}");
        assert!(fields[col("peak_rss_bytes")].parse::<u64>().unwrap() > 0);
    }
    let threads: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split("\",\"").nth(col("n_threads")).unwrap())
        .collect();
    assert_eq!(threads, ["1", "1", "2", "2", "1", "1", "2", "2"]);

    let md = ok_stdout(&[&["bench", g, s][..], &args[..]].concat());
    let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(lines.len(), 2 + 8, "{md}");
    assert!(
        lines[0].contains("model") && lines[0].contains("t/s") && lines[0].contains("peak RSS")
    );
    assert!(lines[1].starts_with("| ---"));
    let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{md}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("gemma-3-270m-q4_k_m"))
            .count(),
        4
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("SmolLM2-135M-Instruct.Q4_1"))
            .count(),
        4
    );
    assert_eq!(lines.iter().filter(|l| l.contains(" pp16 |")).count(), 4);
    assert_eq!(lines.iter().filter(|l| l.contains(" tg4 |")).count(), 4);
    assert!(lines
        .iter()
        .any(|l| l.contains(" Q4_1 ") && l.contains("MiB")));
}

#[test]
fn bench_rejects_bad_input_in_one_line() {
    let out = slm(&["bench", "/nonexistent/model.gguf", "-p", "8", "-n", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");

    let gemma = material("gemma-3-270m-q4_k_m.gguf");
    let out = slm(&["bench", gemma.to_str().unwrap(), "-p", "0", "-n", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to run"));

    let out = slm(&[
        "bench",
        gemma.to_str().unwrap(),
        "-r",
        "0",
        "-p",
        "8",
        "-n",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("repetitions"));

    let out = slm(&["bench", gemma.to_str().unwrap(), "-pg", "8"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROMPT,GEN"));
}
