//! Sweep tests of reliability guide 2.2 over a valid synthetic GGUF of exactly 64 KiB: truncate
//! at every byte offset (65,536 parses), flip every bit of the first 4 KiB (32,768 parses),
//! overwrite every 8-byte-aligned u64 of the header with {0, 1, -1, 2^31, 2^63}. Every parse
//! gives Ok or a typed parse error (never a panic), with at most 16 MiB of extra heap and no
//! allocation the file cannot justify; all sweeps together take at most 60 s.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]

mod harness;

use std::panic::catch_unwind;
use std::time::{Duration, Instant};

use harness::{allocation_limit, measure, Counting, HeapUse, HEAP_LIMIT};
use slm_gguf::{Array, GgmlType, Gguf, GgufBuilder, GgufError, Result, Value};

#[global_allocator]
static ALLOC: Counting = Counting;

const FILE_LEN: usize = 64 << 10;

fn synthetic(filler: u64) -> Vec<u8> {
    let mut b = GgufBuilder::new();
    let tokens: Vec<String> = (0..600)
        .map(|i| format!("tok{i}_{}", "x".repeat(i % 9)))
        .collect();
    b.kv("general.architecture", Value::String("llama".into()))
        .unwrap();
    b.kv("general.alignment", Value::U32(32)).unwrap();
    b.kv("llama.context_length", Value::U32(2048)).unwrap();
    b.kv("llama.rope.freq_base", Value::F32(10000.0)).unwrap();
    b.kv("general.file_type", Value::U64(3)).unwrap();
    b.kv("tokenizer.add_bos", Value::Bool(true)).unwrap();
    b.kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
        .unwrap();
    b.kv(
        "tokenizer.ggml.scores",
        Value::Array(Array::F32((0..600).map(|i| -(i as f32)).collect())),
    )
    .unwrap();
    b.kv(
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![1; 600])),
    )
    .unwrap();
    b.kv(
        "tokenizer.ggml.flags",
        Value::Array(Array::Bool(vec![true, false])),
    )
    .unwrap();
    let tensors: Vec<(&str, Vec<u64>, GgmlType)> = vec![
        ("token_embd.weight", vec![64, 40], GgmlType::Q8_0),
        ("blk.0.attn_q.weight", vec![256, 16], GgmlType::Q4_K),
        ("blk.0.attn_norm.weight", vec![64], GgmlType::F32),
        ("blk.0.ffn_up.weight", vec![32, 3, 2, 2], GgmlType::F16),
        ("blk.0.ffn_down.weight", vec![32, 24], GgmlType::Q4_0),
        ("filler", vec![filler], GgmlType::I8),
    ];
    for (name, dims, ty) in &tensors {
        b.tensor(name, dims, *ty).unwrap();
    }
    let mut w = b.write_header(Vec::new()).unwrap();
    for (i, (_, dims, ty)) in tensors.iter().enumerate() {
        let n: u64 = dims.iter().product();
        let len = (n / ty.block_size() * ty.type_size()) as usize;
        w.write_tensor(&(0..len).map(|j| (j * 31 + i) as u8).collect::<Vec<_>>())
            .unwrap();
    }
    w.finish().unwrap()
}

/// The 64 KiB file: the I8 filler tensor is sized so the file is exactly `FILE_LEN` bytes.
fn file() -> Vec<u8> {
    let first = synthetic(32);
    let filler = 32 + (FILE_LEN - first.len()) as u64;
    let f = synthetic(filler);
    assert_eq!(f.len(), FILE_LEN);
    f
}

/// A typed parse error: a variant that describes the bytes (not I/O, writer or lookup errors).
fn is_parse_error(e: &GgufError) -> bool {
    !matches!(
        e,
        GgufError::Io { .. }
            | GgufError::Write(_)
            | GgufError::Writer(_)
            | GgufError::MissingKey { .. }
            | GgufError::WrongType { .. }
    )
}

#[derive(Default)]
struct Stats {
    parses: u64,
    ok: u64,
    worst: HeapUse,
}

fn parse_checked(label: &str, bytes: &[u8], stats: &mut Stats) -> Result<Gguf> {
    let (r, heap) = measure(|| catch_unwind(|| Gguf::parse(bytes)));
    let r = r.unwrap_or_else(|_| panic!("{label}: parse panicked"));
    if let Err(e) = &r {
        assert!(is_parse_error(e), "{label}: untyped error {e:?}");
    }
    assert!(heap.peak_extra <= HEAP_LIMIT, "{label}: {heap:?}");
    assert!(
        heap.largest <= allocation_limit(bytes.len()),
        "{label}: {heap:?} for {} bytes",
        bytes.len()
    );
    stats.parses += 1;
    stats.ok += u64::from(r.is_ok());
    stats.worst.peak_extra = stats.worst.peak_extra.max(heap.peak_extra);
    stats.worst.largest = stats.worst.largest.max(heap.largest);
    r
}

fn truncation_sweep(f: &[u8], header_end: usize, data_end: usize) -> Stats {
    let mut st = Stats::default();
    for len in 0..f.len() {
        let r = parse_checked(&format!("truncated to {len}"), &f[..len], &mut st);
        // Which error, by where the cut is.
        match &r {
            Ok(_) => assert!(len >= data_end, "truncated to {len}: parsed"),
            Err(GgufError::BadMagic { .. }) => assert!(len < 4),
            Err(
                GgufError::Truncated { .. }
                | GgufError::CountTooLarge { .. }
                | GgufError::DataPastEnd { .. },
            ) => assert!((4..header_end).contains(&len), "truncated to {len}: {r:?}"),
            Err(GgufError::TensorOutOfBounds { .. }) => {
                assert!(
                    (header_end..data_end).contains(&len),
                    "truncated to {len}: {r:?}"
                )
            }
            Err(e) => panic!("truncated to {len}: unexpected {e:?}"),
        }
    }
    st
}

fn bitflip_sweep(f: &[u8]) -> Stats {
    let mut st = Stats::default();
    let mut m = f.to_vec();
    for byte in 0..4096 {
        for bit in 0..8 {
            m[byte] ^= 1 << bit;
            let _ = parse_checked(&format!("bit {bit} of byte {byte} flipped"), &m, &mut st);
            m[byte] ^= 1 << bit;
        }
    }
    st
}

fn u64_sweep(f: &[u8], header_end: usize) -> Stats {
    let mut st = Stats::default();
    let mut m = f.to_vec();
    for at in (0..header_end.saturating_sub(7)).step_by(8) {
        let saved: [u8; 8] = m[at..at + 8].try_into().unwrap();
        for v in [0u64, 1, u64::MAX, 1 << 31, 1 << 63] {
            m[at..at + 8].copy_from_slice(&v.to_le_bytes());
            let _ = parse_checked(&format!("u64 at {at} set to {v}"), &m, &mut st);
        }
        m[at..at + 8].copy_from_slice(&saved);
    }
    st
}

#[test]
fn sweeps_give_ok_or_typed_errors_within_budget() {
    let f = file();
    let g = Gguf::parse(&f).unwrap();
    let header_end = g.data_offset as usize; // padded header; cuts inside the padding are data cuts
    let data_end = g.data_offset as usize
        + g.tensors()
            .iter()
            .map(|t| (t.offset + t.n_bytes) as usize)
            .max()
            .unwrap();
    assert!(
        header_end > 4096 + 1024,
        "the header should be larger than the bit-flip window"
    );

    let t0 = Instant::now();
    let trunc = truncation_sweep(&f, header_end, data_end);
    let t1 = Instant::now();
    let flips = bitflip_sweep(&f);
    let t2 = Instant::now();
    let words = u64_sweep(&f, header_end);
    let t3 = Instant::now();

    assert_eq!(trunc.parses, 65_536);
    assert_eq!(flips.parses, 32_768);
    assert!(words.parses >= 5 * 500, "{}", words.parses);
    // Some mutants stay valid (flipped data bytes, names), most do not.
    assert!(flips.ok > 0 && flips.ok < flips.parses);
    eprintln!(
        "truncation: {} parses, {} ok, {:?}, worst heap {:?}\nbit flips: {} parses, {} ok, {:?}, worst heap {:?}\nu64 overwrite: {} parses, {} ok, {:?}, worst heap {:?}",
        trunc.parses, trunc.ok, t1 - t0, trunc.worst,
        flips.parses, flips.ok, t2 - t1, flips.worst,
        words.parses, words.ok, t3 - t2, words.worst,
    );
    assert!(
        t3 - t0 <= Duration::from_secs(60),
        "sweeps took {:?}",
        t3 - t0
    );
}
