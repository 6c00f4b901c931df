//! `matmul` on real model weights (every 2-D tensor type present in the material GGUFs: Q4_K,
//! Q5_0, Q6_K, Q8_0, Q4_1, and F32 where 2-D) against an f64 reference over
//! `slm_quant::dequantize_row`, on every SIMD level, 1..=3 threads, 1 and 4 tokens.
//! Tolerance as in `matmul.rs`: 1e-5 * sum |w_i a_i| + 1e-6 against the dequantized quantized
//! activations, plus the Q8_1 `s` rounding term for Q4_1.
//! Needs `$SLM_MATERIAL` (default ~/.cache/slm-material; `python3 tools/material.py`): FAILS
//! when it is missing.

use slm_gguf::GgufFile;
use slm_quant::kernels::half::rd_f16;
use slm_quant::kernels::{ActType, Kernels, SimdLevel};
use slm_quant::GgmlType;
use slm_tensor::matmul::{matmul_with, QMatrix};
use slm_tensor::pool::ThreadPool;
use std::path::PathBuf;

fn material(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLM_MATERIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/slm-material")
        });
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "test material {} is missing: run `python3 tools/material.py` (or set SLM_MATERIAL)",
        p.display()
    );
    p
}

#[test]
fn real_weights_match_the_f64_reference() {
    let files = [
        "gemma-3-270m-q4_k_m.gguf",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ];
    let pools: Vec<ThreadPool> = (1..=3).map(ThreadPool::new).collect();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut seen = Vec::new();
    for f in files {
        let file = GgufFile::open(&material(f)).expect("open gguf");
        for t in file.tensors() {
            if t.dims.len() != 2 || ActType::for_weight(t.ty).is_none() {
                continue;
            }
            if seen.contains(&(f, t.ty)) {
                continue;
            }
            seen.push((f, t.ty));
            let full = QMatrix::from_tensor(t, file.tensor_data(t)).expect("matrix");
            let cols = full.cols;
            let rows = full.rows.min(96);
            let rb = t.ty.row_bytes(cols as u64).expect("blocks") as usize;
            let data = &full.data[..rows * rb];
            let w = QMatrix::new(t.ty, rows, cols, data).expect("matrix");
            let wrows: Vec<Vec<f32>> = (0..rows)
                .map(|r| {
                    let mut v = vec![0f32; cols];
                    slm_quant::dequantize_row(t.ty, &data[r * rb..(r + 1) * rb], &mut v)
                        .expect("dequantize");
                    v
                })
                .collect();
            let act = ActType::for_weight(t.ty).expect("kernel");
            for n_tokens in [1usize, 4] {
                let x: Vec<f32> = (0..n_tokens * cols)
                    .map(|_| rng.f32() * 2.0 - 1.0)
                    .collect();
                // What the kernels see: the activations after the reference quantizer.
                let aq: Vec<Vec<f32>> = x
                    .chunks(cols)
                    .map(|xt| {
                        if act == ActType::F32 {
                            return xt.to_vec();
                        }
                        let mut q = vec![0u8; act.row_bytes(cols)];
                        slm_quant::quantize_row(act.ggml_type(), xt, &mut q, None)
                            .expect("quantize");
                        let mut d = vec![0f32; cols];
                        slm_quant::dequantize_row(act.ggml_type(), &q, &mut d).expect("dequantize");
                        d
                    })
                    .collect();
                for level in SimdLevel::available() {
                    let k = Kernels::for_level(level).expect("available");
                    for pool in &pools {
                        let mut y = vec![f32::NAN; n_tokens * rows];
                        matmul_with(k, pool, &w, &x, &mut y, n_tokens).expect("matmul");
                        for (tk, a) in aq.iter().enumerate() {
                            for (r, wr) in wrows.iter().enumerate() {
                                let exact: f64 =
                                    wr.iter().zip(a).map(|(&p, &q)| p as f64 * q as f64).sum();
                                let mag: f64 = wr
                                    .iter()
                                    .zip(a)
                                    .map(|(&p, &q)| (p as f64 * q as f64).abs())
                                    .sum();
                                let mut tol = 1e-5 * mag + 1e-6;
                                if act == ActType::Q8_1 {
                                    let row = &data[r * rb..(r + 1) * rb];
                                    for (b, blk) in
                                        row.chunks_exact(t.ty.type_size() as usize).enumerate()
                                    {
                                        let m = rd_f16(blk, 2).abs() as f64;
                                        let s: f64 =
                                            a[32 * b..32 * b + 32].iter().map(|&v| v as f64).sum();
                                        tol += m * (s.abs() * 2f64.powi(-11) + 2f64.powi(-25));
                                    }
                                }
                                let got = y[tk * rows + r] as f64;
                                assert!(
                                    (got - exact).abs() <= tol,
                                    "{f} {} ({}) {level:?} threads={} t={tk} r={r}: {got} vs {exact} (tol {tol})",
                                    t.name,
                                    t.ty,
                                    pool.n_threads()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    let types: Vec<GgmlType> = seen.iter().map(|s| s.1).collect();
    for want in [
        GgmlType::Q4_K,
        GgmlType::Q5_0,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
        GgmlType::Q4_1,
    ] {
        assert!(
            types.contains(&want),
            "no real {want} tensor was tested: {seen:?}"
        );
    }
}
