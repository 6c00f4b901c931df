//! Matmul throughput per weight type, against this machine's measured memory bandwidth.
//!
//! `cargo bench -p slm-tensor --bench matmul [-- --mib 256 --types Q4_K,Q8_0 --threads 1,2]`
//!
//! - bandwidth: a 256 MiB read (sum of u64) split over the pool's threads, best of 3;
//! - decode: n_tokens = 1 over a stack of copies of a real-shaped matrix (Qwen2.5 0.5B
//!   ffn_down 896x4864 and Gemma 3 270M ffn_down 640x2048) filling `--mib` MiB, so every call
//!   streams its weights from memory, and Gemma 3 270M's output matrix 262144x640 (one call per
//!   pass; only types with 32-element blocks, if it fits in `--mib`); GB/s counts weight bytes, % is of the measured bandwidth
//!   with the same thread count;
//! - prefill: n_tokens = 64 over 1/16 of the stack, best of 2; GFLOP/s = 2 * rows * cols * tokens / s;
//! - `call GB/s`: the fastest single decode call of all rounds (weights still from memory: each
//!   call reads another copy). On a loaded machine whole passes are rarely undisturbed but
//!   single calls often are, so this column is the one to compare there (A/B in one run).
//! - `hot GB/s`: one matrix decoded again and again (in cache when it fits in two cores'
//!   caches, up to 4 MiB): the speed of kernels plus pool without memory waits. When it is
//!   not well above `dec GB/s`, the kernel, not memory, is the limit.

use slm_quant::kernels::half::f32_to_f16;
use slm_quant::kernels::Kernels;
use slm_quant::GgmlType;
use slm_tensor::matmul::{matmul, QMatrix};
use slm_tensor::pool::ThreadPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Rounds per measurement (best taken).
const ROUNDS: usize = 5;
/// In-cache calls per matrix for the `hot GB/s` column (best taken), and the largest matrix
/// measured that way (larger ones cannot stay in the caches of two cores).
const HOT_CALLS: usize = 200;
const HOT_MAX_BYTES: usize = 4 << 20;

const DEFAULT_TYPES: &[GgmlType] = &[
    GgmlType::Q4_K,
    GgmlType::Q5_0,
    GgmlType::Q6_K,
    GgmlType::Q8_0,
    GgmlType::Q4_1,
    GgmlType::F16,
    GgmlType::F32,
    GgmlType::Q4_0,
    GgmlType::Q5_1,
    GgmlType::Q5_K,
    GgmlType::Q3_K,
    GgmlType::Q2_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::TQ2_0,
    GgmlType::TQ1_0,
    GgmlType::BF16,
];

fn scale_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType as T;
    match ty {
        T::Q4_0 | T::Q5_0 | T::Q8_0 | T::IQ4_NL | T::IQ4_XS => &[0],
        T::Q4_1 | T::Q5_1 | T::Q4_K | T::Q5_K => &[0, 2],
        T::Q2_K => &[80, 82],
        T::Q3_K => &[108],
        T::Q6_K => &[208],
        T::TQ1_0 => &[52],
        T::TQ2_0 => &[64],
        _ => &[],
    }
}

/// Makes `buf` valid data of `ty`: sane f16 scales, finite floats.
fn sanitize(buf: &mut [u8], ty: GgmlType) {
    match ty {
        GgmlType::F32 => buf.chunks_exact_mut(4).for_each(|c| c[3] &= 0x3f),
        GgmlType::F16 | GgmlType::BF16 => buf.chunks_exact_mut(2).for_each(|c| c[1] &= 0x3b),
        _ => {
            let h = f32_to_f16(0.01).to_le_bytes();
            for blk in buf.chunks_exact_mut(ty.type_size() as usize) {
                for &off in scale_fields(ty) {
                    blk[off..off + 2].copy_from_slice(&h);
                }
            }
        }
    }
}

fn bandwidth_gbs(pool: &ThreadPool, buf: &[u8], reps: usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..reps {
        let sink = AtomicU64::new(0);
        let t = Instant::now();
        pool.run(|i, n| {
            let per = buf.len().div_ceil(n);
            let part = &buf[(i * per).min(buf.len())..((i + 1) * per).min(buf.len())];
            let mut acc = [0u64; 8];
            for c in part.chunks_exact(64) {
                for (k, a) in acc.iter_mut().enumerate() {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&c[8 * k..8 * k + 8]);
                    *a = a.wrapping_add(u64::from_le_bytes(w));
                }
            }
            sink.fetch_add(acc.iter().fold(0, |s, v| s ^ v), Ordering::Relaxed);
        });
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(sink.load(Ordering::Relaxed));
        best = best.max(buf.len() as f64 / s / 1e9);
    }
    best
}

struct Args {
    mib: usize,
    types: Vec<GgmlType>,
    threads: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        mib: 256,
        types: DEFAULT_TYPES.to_vec(),
        threads: vec![1, 2],
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--mib" => a.mib = next.parse().unwrap_or(256),
            "--types" => a.types = next.split(',').filter_map(GgmlType::from_name).collect(),
            "--threads" => a.threads = next.split(',').filter_map(|s| s.parse().ok()).collect(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn main() {
    let a = args();
    let kernels = Kernels::get();
    println!(
        "slm matmul bench: kernels={} threads={:?} weights={} MiB per decode pass",
        kernels.level().name(),
        a.threads,
        a.mib
    );
    let mut raw = vec![0u8; a.mib << 20];
    fastrand::Rng::with_seed(1).fill(&mut raw);
    let pools: Vec<ThreadPool> = a.threads.iter().map(|&n| ThreadPool::new(n)).collect();
    for p in &pools {
        let b = bandwidth_gbs(p, &raw, 5);
        println!(
            "memory read bandwidth, {} thread(s): {b:.1} GB/s (best of 5)",
            p.n_threads()
        );
    }
    for p in &pools {
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            p.run_chunks(16, |c| {
                std::hint::black_box(c);
            });
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "pool overhead, {} thread(s): {us:.2} us per empty run_chunks(16)",
            p.n_threads()
        );
    }
    println!(
        "(each row below: best of {ROUNDS} rounds of [{} MiB read, decode pass]; % = decode / read)",
        a.mib
    );
    println!(
        "\n{:<7} {:>10} {:>3} | {:>7} | {:>8} {:>8} {:>6} | {:>14} | {:>9} {:>9}",
        "type",
        "shape",
        "thr",
        "bw GB/s",
        "dec GB/s",
        "GFLOP/s",
        "% bw",
        "prefill GFLOP/s",
        "call GB/s",
        "hot GB/s"
    );
    for &ty in &a.types {
        let mut buf = raw.clone();
        sanitize(&mut buf, ty);
        for (rows, cols) in [(896usize, 4864usize), (640, 2048), (262_144, 640)] {
            let Some(rb) = ty.row_bytes(cols as u64).map(|b| b as usize) else {
                continue;
            };
            let mat_bytes = rb * rows;
            let copies = buf.len() / mat_bytes;
            let mats: Vec<QMatrix> = (0..copies)
                .filter_map(|c| {
                    let d = buf.get(c * mat_bytes..(c + 1) * mat_bytes)?;
                    QMatrix::new(ty, rows, cols, d).ok()
                })
                .collect();
            if mats.is_empty() {
                continue;
            }
            let x: Vec<f32> = (0..64 * cols)
                .map(|i| ((i % 17) as f32 - 8.0) * 0.1)
                .collect();
            let mut y = vec![0f32; 64 * rows];
            for p in &pools {
                // Decode: best of ROUNDS passes over all copies, each after a bandwidth pass
                // (the machine may be shared: both see the same conditions).
                let mut best = f64::MAX;
                let mut best_call = f64::MAX;
                let mut b = 0f64;
                for _ in 0..ROUNDS {
                    b = b.max(bandwidth_gbs(p, &raw, 1));
                    let t = Instant::now();
                    for m in &mats {
                        let tc = Instant::now();
                        matmul(p, m, &x[..cols], &mut y[..rows], 1).expect("matmul");
                        best_call = best_call.min(tc.elapsed().as_secs_f64());
                    }
                    best = best.min(t.elapsed().as_secs_f64());
                }
                let bytes = (mat_bytes * mats.len()) as f64;
                let gbs = bytes / best / 1e9;
                let gflops = 2.0 * (rows * cols * mats.len()) as f64 / best / 1e9;
                // Prefill: 64 tokens over 1/16 of the copies, one pass.
                let n_pre = (mats.len() / 16).max(1);
                let mut best_pre = f64::MAX;
                for _ in 0..2 {
                    let t = Instant::now();
                    for m in &mats[..n_pre] {
                        matmul(p, m, &x, &mut y, 64).expect("matmul");
                    }
                    best_pre = best_pre.min(t.elapsed().as_secs_f64());
                }
                let pre = 2.0 * (rows * cols * 64 * n_pre) as f64 / best_pre / 1e9;
                // The same decode call on one matrix again and again (its weights stay in the
                // caches when they fit): what the kernels and the pool do without memory waits.
                let mut best_hot = f64::MAX;
                if mat_bytes <= HOT_MAX_BYTES {
                    for _ in 0..HOT_CALLS {
                        let t = Instant::now();
                        matmul(p, &mats[0], &x[..cols], &mut y[..rows], 1).expect("matmul");
                        best_hot = best_hot.min(t.elapsed().as_secs_f64());
                    }
                }
                println!(
                    "{:<7} {:>10} {:>3} | {:>7.1} | {:>8.2} {:>8.2} {:>5.0}% | {:>14.2} | {:>9.2} {:>9}",
                    ty.name(),
                    format!("{rows}x{cols}"),
                    p.n_threads(),
                    b,
                    gbs,
                    gflops,
                    100.0 * gbs / b,
                    pre,
                    mat_bytes as f64 / best_call / 1e9,
                    if best_hot < f64::MAX {
                        format!("{:.2}", mat_bytes as f64 / best_hot / 1e9)
                    } else {
                        "-".to_string()
                    }
                );
            }
        }
    }
}
