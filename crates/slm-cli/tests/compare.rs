//! `slm compare` on tiny settings: the real SmolLM2 Q4_1 as the base and two variants made
//! from it by `slm quantize` (Q8_0, close to the base; Q4_0, further), one chunk of 128 tokens
//! of botchan.txt. Checks the JSON against the files and against `slm perplexity` (the same
//! chunks give the same perplexity), the expected quality order and Pareto front, the table,
//! and that the SVG picture parses as XML and carries every model's label.

mod common;
use common::{material, ok_stdout};

use std::path::Path;

use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn perplexity(model: &Path, text: &Path) -> f64 {
    let out = ok_stdout(&[
        "perplexity",
        s(model),
        "-f",
        s(text),
        "-c",
        "128",
        "--chunks",
        "1",
        "-t",
        "2",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["ppl"].as_f64().unwrap()
}

#[test]
fn compare_smollm2_q8_0_and_q4_0_against_q4_1() {
    let base = material("SmolLM2-135M-Instruct.Q4_1.gguf");
    let text = material("botchan.txt");
    let dir = std::env::temp_dir().join(format!("slm-compare-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let q8 = dir.join("smollm2-q8_0.gguf");
    let q4 = dir.join("smollm2-q4_0.gguf");
    for (out, ty) in [(&q8, "Q8_0"), (&q4, "Q4_0")] {
        ok_stdout(&[
            "quantize",
            s(&base),
            s(out),
            ty,
            "--allow-requantize",
            "--quiet",
        ]);
    }
    let svg = dir.join("report.svg");
    let common = [
        "-f",
        s(&text),
        "-c",
        "128",
        "--chunks",
        "1",
        "-p",
        "16",
        "-n",
        "4",
        "-r",
        "1",
        "-t",
        "2",
    ];
    let json = ok_stdout(
        &[
            &["compare", s(&base), s(&q8), s(&q4), "--json", "-o", s(&svg)][..],
            &common[..],
        ]
        .concat(),
    );
    let report: Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["n_chunks"].as_u64(), Some(1));
    assert_eq!(report["n_ctx"].as_u64(), Some(128));
    assert_eq!(report["n_scored"].as_u64(), Some(63));
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["SmolLM2-135M-Instruct.Q4_1", "smollm2-q8_0", "smollm2-q4_0"]
    );
    assert_eq!(rows[0]["is_base"], true);
    assert!(rows[0]["quality"].is_null());
    let types: Vec<&str> = rows
        .iter()
        .map(|r| r["file_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Q4_1", "Q8_0", "Q4_0"]);

    let base_bytes = std::fs::metadata(&base).unwrap().len() as f64;
    for (row, path) in rows.iter().zip([&base, &q8, &q4]) {
        let bytes = std::fs::metadata(path).unwrap().len();
        assert_eq!(row["file_bytes"].as_u64(), Some(bytes));
        let red = row["size_reduction_pct"].as_f64().unwrap();
        assert!((red - 100.0 * (1.0 - bytes as f64 / base_bytes)).abs() < 1e-9);
        assert!(row["bits_per_weight"].as_f64().unwrap() > 3.0);
        for key in ["pp_ts", "tg_ts", "ppl"] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key} of {row}");
        }
        assert!(row["peak_rss_bytes"].as_u64().unwrap() > 0);
        // The same chunk gives the same perplexity as `slm perplexity`.
        let ppl = row["ppl"].as_f64().unwrap();
        let want = perplexity(path, &text);
        assert!(
            (ppl - want).abs() < 1e-4 * want,
            "{}: compare {ppl} vs perplexity {want}",
            path.display()
        );
    }
    let bpw = |i: usize| rows[i]["bits_per_weight"].as_f64().unwrap();
    assert!(bpw(1) > bpw(0) && bpw(0) > bpw(2));

    let q = |i: usize, k: &str| rows[i]["quality"][k].as_f64().unwrap();
    // Q8_0 of a Q4_1 grid is close to lossless (llama.cpp measures ~0.01 for Q8_0 of this
    // model); Q4_0 drops Q4_1's offsets and lands an order of magnitude further.
    assert!(q(1, "kld_mean") >= 0.0 && 5.0 * q(1, "kld_mean") < q(2, "kld_mean"));
    assert!(q(1, "kld_mean") < 0.05, "Q8_0 KLD {}", q(1, "kld_mean"));
    assert!(q(1, "same_top") >= 0.9 && q(1, "same_top") <= 1.0);
    assert!(q(2, "same_top") > 0.5 && q(2, "same_top") <= 1.0);
    for i in 1..3 {
        let dppl = q(i, "delta_ppl");
        let want = rows[i]["ppl"].as_f64().unwrap() - rows[0]["ppl"].as_f64().unwrap();
        // ΔPPL comes from the stored 16-bit base log-probabilities: close, not equal.
        assert!((dppl - want).abs() < 0.01 * rows[0]["ppl"].as_f64().unwrap());
        assert_eq!(rows[i]["quality"]["n_scored"].as_u64(), Some(63));
    }
    // The base (smallest KLD) and Q4_0 (smallest file) are on the front; Q8_0 is bigger than
    // the Q4_1 base and further from it, so it is not.
    let front: Vec<bool> = rows
        .iter()
        .map(|r| r["pareto"].as_bool().unwrap())
        .collect();
    assert_eq!(front, [true, false, true]);

    // The picture: XML with a text label per model.
    let svg_text = std::fs::read_to_string(&svg).expect("SVG written");
    let doc = roxmltree::Document::parse(&svg_text).expect("SVG parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "SmolLM2-135M-Instruct.Q4_1 (base, KLD 0)"),
        "{texts:?}"
    );
    for name in ["smollm2-q8_0", "smollm2-q4_0"] {
        assert!(texts.iter().any(|t| t == name), "{name} in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("file size (MiB)")));
    assert!(texts.iter().any(|t| t.contains("KL divergence")));
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count()
            >= 3
    );

    // The table: a header, a separator and one line per model.
    let table = ok_stdout(&[&["compare", s(&base), s(&q8), s(&q4)][..], &common[..]].concat());
    let lines: Vec<&str> = table.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].contains("KLD") && lines[0].contains("top-1") && lines[0].contains("pp16"));
    assert!(lines[2].contains("(base)"));
    assert!(lines[3].contains("smollm2-q8_0") && lines[4].contains("smollm2-q4_0"));
    std::fs::remove_dir_all(&dir).ok();
}
