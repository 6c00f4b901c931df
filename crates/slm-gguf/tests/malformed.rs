//! The malformed-GGUF corpus of reliability guide 2.2 (container part): named cases, each built
//! by the raw builder of `harness`, each asserting the SPECIFIC typed error, within 100 ms, with
//! at most 16 MiB of extra heap and no allocation larger than the file can justify (counting
//! global allocator). Valid edge cases must parse. Set `SLM_WRITE_CORPUS=DIR` to also write every
//! case to `DIR/<name>.gguf` (e.g. to seed the fuzzer).
//!
//! The guide's data/model-level cases (block_count, head_count, n_embd, context_length, vocab,
//! special ids, byte tokens, scores/merges/token types, required tensors, shapes vs hparams) are
//! model-loading checks, not container checks, and are not here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]

mod harness;
mod malformed_cases;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::{allocation_limit, kv_str, measure, Counting, G, HEAP_LIMIT};
use malformed_cases::{all_cases, valid_cases};
use slm_gguf::Gguf;

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn malformed_corpus_gives_the_specific_typed_error() {
    let cases = all_cases();
    let mut names = HashSet::new();
    let write_to = std::env::var_os("SLM_WRITE_CORPUS").map(std::path::PathBuf::from);
    let mut failures = Vec::new();
    for case in &cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        if let Some(dir) = &write_to {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{}.gguf", case.name)), &case.bytes).unwrap();
        }
        let t = Instant::now();
        let (r, heap) = measure(|| Gguf::parse(&case.bytes));
        let elapsed = t.elapsed();
        if !(case.check)(&r) {
            failures.push(format!(
                "{}: want {}, got {:?}",
                case.name,
                case.want,
                r.as_ref().map(|_| "Ok")
            ));
        }
        if elapsed > Duration::from_millis(100) {
            failures.push(format!("{}: took {elapsed:?}", case.name));
        }
        if heap.peak_extra > HEAP_LIMIT || heap.largest > allocation_limit(case.bytes.len()) {
            failures.push(format!(
                "{}: heap {heap:?} for {} bytes",
                case.name,
                case.bytes.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 80, "only {} malformed cases", cases.len());
}

#[test]
fn valid_edge_cases_parse() {
    for (name, bytes) in valid_cases() {
        let (r, heap) = measure(|| Gguf::parse(&bytes));
        let g = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(heap.peak_extra <= HEAP_LIMIT, "{name}: {heap:?}");
        if name == "valid-alignment-1-odd-offsets" {
            assert_eq!((g.alignment, g.tensors()[1].offset), (1, 65));
        }
    }
}

/// Every error names what it found in one line (the Display text is what users see).
#[test]
fn errors_display_one_line() {
    for case in all_cases() {
        if let Err(e) = Gguf::parse(&case.bytes) {
            let msg = e.to_string();
            assert!(
                !msg.is_empty() && !msg.contains('\n') && msg.len() < 400,
                "{}: {msg}",
                case.name
            );
        }
    }
}

/// The counting allocator counts: the heap limits above are not vacuous.
#[test]
fn counting_allocator_sees_allocations() {
    let (v, heap) = measure(|| vec![1u8; 3 << 20]);
    assert_eq!(v.len(), 3 << 20);
    assert!(
        heap.peak_extra >= 3 << 20 && heap.largest >= 3 << 20,
        "{heap:?}"
    );
    // A 10 MiB string actually present in the file is read (and counted).
    let big = G::base()
        .with(|g| g.kvs.push(kv_str("big", &"x".repeat(10 << 20))))
        .bytes();
    let (r, heap) = measure(|| Gguf::parse(&big));
    assert_eq!(r.unwrap().get_str("big").map(str::len), Some(10 << 20));
    assert!(heap.largest >= 10 << 20, "{heap:?}");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Inputs found by the fuzz targets (fuzz/), kept as regression tests.
#[test]
fn fuzz_regressions() {
    // gguf_header, 2026-11-27: an F64 NaN value (all bits set) under a key with a NUL in it. The
    // parser was right (Ok); the target compared values with `==`, and NaN != NaN. The value must
    // come back bit-exact.
    let bytes = unhex(concat!(
        "474755460300000000000000000000000200000000000000140000000000000067656e6572616c2e61726368",
        "69746563747572650800000008000000000000007465737461726368110000000000000067656e6572616c2e",
        "6100030000000000000c000000ffffffffffffffff00"
    ));
    let g = Gguf::parse(&bytes).unwrap();
    let (k, v) = &g.metadata()[1];
    assert_eq!(k, "general.a\0\u{3}\0\0\0\0\0\0");
    match v {
        slm_gguf::Value::F64(x) => assert_eq!(x.to_bits(), u64::MAX),
        other => panic!("{other:?}"),
    }
    assert!(std::ptr::eq(g.get(k).unwrap(), v));
}
