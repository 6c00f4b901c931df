//! `matmul` against a naive f64 reference over `slm_quant::dequantize_row` weights, for every
//! weight type with a kernel, several shapes (incl. Gemma 3 270M's and Qwen2.5 0.5B's), token
//! counts and 1..=3 threads.
//!
//! Tolerances (per output element):
//! - against f64 over dequantized weights and dequantized *quantized* activations (what the
//!   kernels compute exactly in integers): 1e-5 * sum |w_i a_i| + 1e-6 (float order only);
//! - against f64 over dequantized weights and the original f32 activations: the activation
//!   rounding bound sum |w_i| * d_block(i) / 2 (d = amax/127 of the activation block; F32 types
//!   use 0) plus the same float term.
//! - Q4_1/Q5_1 (Q8_1 activations) add the f16 rounding of Q8_1's `s = d * sum(qs)` (as ggml
//!   stores it): sum over blocks |m_b| * (|s_b| * 2^-11 + 2^-25).

use slm_quant::kernels::half::f32_to_f16;
use slm_quant::kernels::{ActType, Kernels, SimdLevel};
use slm_quant::GgmlType;
use slm_tensor::matmul::{matmul, matmul_with, MatmulError, QMatrix};
use slm_tensor::pool::ThreadPool;

const TYPES: &[GgmlType] = &[
    GgmlType::Q4_K,
    GgmlType::Q5_0,
    GgmlType::Q6_K,
    GgmlType::Q8_0,
    GgmlType::Q4_1,
    GgmlType::F16,
    GgmlType::F32,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q5_1,
    GgmlType::Q5_K,
    GgmlType::Q3_K,
    GgmlType::Q2_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::TQ2_0,
    GgmlType::TQ1_0,
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

/// Random (rows, cols) weights: random quant bits with scales of magnitude 1e-3..2e-2.
fn random_matrix(rng: &mut fastrand::Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let n = rows * cols;
    match ty {
        GgmlType::F32 => (0..n)
            .flat_map(|_| (rng.f32() - 0.5).to_le_bytes())
            .collect(),
        GgmlType::F16 => (0..n)
            .flat_map(|_| f32_to_f16(rng.f32() - 0.5).to_le_bytes())
            .collect(),
        GgmlType::BF16 => (0..n)
            .flat_map(|_| ((((rng.f32() - 0.5).to_bits()) >> 16) as u16).to_le_bytes())
            .collect(),
        _ => {
            let bytes = ty.row_bytes(cols as u64).expect("blocks") as usize * rows;
            let mut v = vec![0u8; bytes];
            rng.fill(&mut v);
            for blk in v.chunks_exact_mut(ty.type_size() as usize) {
                for (k, &off) in scale_fields(ty).iter().enumerate() {
                    let mag = 1e-3 + rng.f32() * 2e-2;
                    let s = if k == 0 && rng.bool() { -mag } else { mag };
                    blk[off..off + 2].copy_from_slice(&f32_to_f16(s).to_le_bytes());
                }
            }
            v
        }
    }
}

fn dequant_row(ty: GgmlType, data: &[u8], r: usize, cols: usize) -> Vec<f32> {
    let rb = ty.row_bytes(cols as u64).expect("blocks") as usize;
    let mut out = vec![0f32; cols];
    slm_quant::dequantize_row(ty, &data[r * rb..(r + 1) * rb], &mut out).expect("dequantize");
    out
}

/// Activation values the kernels see (dequantized Q8 of `x`), and the per-element rounding
/// half-step d/2 of each activation.
fn quantized_acts(ty: GgmlType, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let act = ActType::for_weight(ty).expect("kernel");
    if act == ActType::F32 {
        return (x.to_vec(), vec![0.0; x.len()]);
    }
    let mut q = vec![0u8; act.row_bytes(x.len())];
    slm_quant::quantize_row(act.ggml_type(), x, &mut q, None).expect("quantize act");
    let mut deq = vec![0f32; x.len()];
    slm_quant::dequantize_row(act.ggml_type(), &q, &mut deq).expect("dequantize act");
    let bs = act.block_size();
    let mut half = vec![0f32; x.len()];
    for (h, xb) in half.chunks_mut(bs).zip(x.chunks(bs)) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        h.fill(amax / 127.0 / 2.0 * 1.001 + 1e-12);
    }
    (deq, half)
}

#[allow(clippy::too_many_arguments)]
fn check(
    pool: &ThreadPool,
    kernels: Option<&Kernels>,
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n_tokens: usize,
    sample: &[usize],
    wrows: &[Vec<f32>],
) {
    let m = QMatrix::new(ty, rows, cols, w).expect("matrix");
    let mut y = vec![f32::NAN; n_tokens * rows];
    match kernels {
        Some(k) => matmul_with(k, pool, &m, x, &mut y, n_tokens),
        None => matmul(pool, &m, x, &mut y, n_tokens),
    }
    .expect("matmul");
    for t in 0..n_tokens {
        let xt = &x[t * cols..(t + 1) * cols];
        let (aq, half) = quantized_acts(ty, xt);
        for (&r, wr) in sample.iter().zip(wrows) {
            let got = y[t * rows + r] as f64;
            let mut exact_q = 0f64;
            let mut exact_x = 0f64;
            let mut mag = 0f64;
            let mut bound = 0f64;
            for c in 0..cols {
                let wv = wr[c] as f64;
                exact_q += wv * aq[c] as f64;
                exact_x += wv * xt[c] as f64;
                mag += (wv * aq[c] as f64).abs();
                bound += wv.abs() * half[c] as f64;
            }
            let mut tol = 1e-5 * mag + 1e-6;
            if ActType::for_weight(ty) == Some(ActType::Q8_1) {
                let rb = ty.row_bytes(cols as u64).expect("blocks") as usize;
                let row = &w[r * rb..(r + 1) * rb];
                for (b, blk) in row.chunks_exact(ty.type_size() as usize).enumerate() {
                    let m = slm_quant::kernels::half::rd_f16(blk, 2).abs() as f64;
                    let s: f64 = aq[32 * b..32 * b + 32].iter().map(|&v| v as f64).sum();
                    tol += m * (s.abs() * 2f64.powi(-11) + 2f64.powi(-25));
                }
            }
            let ctx = format!(
                "{ty} ({rows}x{cols}) tokens={n_tokens} threads={} level={:?} t={t} r={r}",
                pool.n_threads(),
                kernels.map(|k| k.level())
            );
            assert!(
                (got - exact_q).abs() <= tol,
                "{ctx}: {got} vs {exact_q} (tol {tol})"
            );
            assert!(
                (got - exact_x).abs() <= bound + tol,
                "{ctx}: {got} vs unquantized {exact_x} (bound {bound})"
            );
        }
    }
}

fn shapes(ty: GgmlType) -> Vec<(usize, usize)> {
    // (rows = out features, cols = in features)
    let all = [
        (37, 256), // odd row count
        (64, 512),
        (2048, 640), // Gemma 3 270M ffn_up/gate
        (640, 2048), // Gemma 3 270M ffn_down
        (896, 4864), // Qwen2.5 0.5B ffn_down
        (4864, 896), // Qwen2.5 0.5B ffn_up/gate
    ];
    let bs = (ty.block_size() as usize).max(ActType::for_weight(ty).expect("kernel").block_size());
    all.into_iter().filter(|&(_, c)| c % bs == 0).collect()
}

#[test]
fn matmul_matches_f64_reference_for_every_type_shape_and_thread_count() {
    let mut rng = fastrand::Rng::with_seed(21);
    let pools: Vec<ThreadPool> = (1..=3).map(ThreadPool::new).collect();
    for &ty in TYPES {
        for (rows, cols) in shapes(ty) {
            let w = random_matrix(&mut rng, ty, rows, cols);
            // Check every row of small matrices, a spread of rows of large ones.
            let step = if rows * cols > 1 << 20 { 7 } else { 1 };
            let sample: Vec<usize> = (0..rows).step_by(step).chain([rows - 1]).collect();
            let wrows: Vec<Vec<f32>> = sample
                .iter()
                .map(|&r| dequant_row(ty, &w, r, cols))
                .collect();
            let token_counts: &[usize] = if rows * cols > 1 << 20 {
                &[1, 5]
            } else {
                &[1, 2, 7, 33]
            };
            for &n_tokens in token_counts {
                let x: Vec<f32> = (0..n_tokens * cols)
                    .map(|_| rng.f32() * 2.0 - 1.0)
                    .collect();
                for pool in &pools {
                    check(
                        pool, None, ty, &w, rows, cols, &x, n_tokens, &sample, &wrows,
                    );
                }
                if rows * cols <= 1 << 20 {
                    for level in SimdLevel::available() {
                        let k = Kernels::for_level(level).expect("available");
                        check(
                            &pools[1],
                            Some(k),
                            ty,
                            &w,
                            rows,
                            cols,
                            &x,
                            n_tokens,
                            &sample,
                            &wrows,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn gemma_lm_head_shape() {
    // Gemma 3 270M token embedding / output: 262144 rows of 640 (Q8_0 and Q5_0: 178 / 115 MB),
    // rows sampled every 4099.
    let mut rng = fastrand::Rng::with_seed(22);
    let (rows, cols) = (262_144, 640);
    for ty in [GgmlType::Q8_0, GgmlType::Q5_0] {
        let w = random_matrix(&mut rng, ty, rows, cols);
        let sample: Vec<usize> = (0..rows).step_by(4099).chain([rows - 1]).collect();
        let wrows: Vec<Vec<f32>> = sample
            .iter()
            .map(|&r| dequant_row(ty, &w, r, cols))
            .collect();
        for threads in 1..=3 {
            let pool = ThreadPool::new(threads);
            for n_tokens in [1, 3] {
                let x: Vec<f32> = (0..n_tokens * cols)
                    .map(|_| rng.f32() * 2.0 - 1.0)
                    .collect();
                check(
                    &pool, None, ty, &w, rows, cols, &x, n_tokens, &sample, &wrows,
                );
            }
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let pool = ThreadPool::new(2);
    let data = vec![0u8; 144 * 2];
    assert!(matches!(
        QMatrix::new(GgmlType::Q4_K, 2, 640, &data),
        Err(MatmulError::Cols { .. })
    ));
    assert!(matches!(
        QMatrix::new(GgmlType::Q4_K, 3, 256, &data),
        Err(MatmulError::DataLength { .. })
    ));
    assert!(matches!(
        QMatrix::new(GgmlType::IQ2_XXS, 1, 256, &data[..66]),
        Err(MatmulError::Unsupported(_))
    ));
    let m = QMatrix::new(GgmlType::Q4_K, 2, 256, &data).expect("ok");
    let mut y = vec![0f32; 2];
    assert!(matches!(
        matmul(&pool, &m, &[0.0; 255], &mut y, 1),
        Err(MatmulError::Buffer { what: "x", .. })
    ));
    assert!(matches!(
        matmul(&pool, &m, &[0.0; 256], &mut y[..1], 1),
        Err(MatmulError::Buffer { what: "y", .. })
    ));
    // Zero tokens is a no-op.
    matmul(&pool, &m, &[], &mut [], 0).expect("empty");
}

#[test]
fn matmul_many_equals_separate_calls() {
    use slm_tensor::matmul::matmul_many;
    let mut rng = fastrand::Rng::with_seed(23);
    let cols = 2048;
    let specs = [
        (GgmlType::Q4_K, 640),
        (GgmlType::Q6_K, 37),
        (GgmlType::Q4_K, 256),
    ];
    let data: Vec<Vec<u8>> = specs
        .iter()
        .map(|&(ty, rows)| random_matrix(&mut rng, ty, rows, cols))
        .collect();
    let ws: Vec<QMatrix> = specs
        .iter()
        .zip(&data)
        .map(|(&(ty, rows), d)| QMatrix::new(ty, rows, cols, d).expect("matrix"))
        .collect();
    for threads in 1..=3 {
        let pool = ThreadPool::new(threads);
        for n_tokens in [1usize, 6] {
            let x: Vec<f32> = (0..n_tokens * cols).map(|_| rng.f32() - 0.5).collect();
            let mut ys: Vec<Vec<f32>> = ws
                .iter()
                .map(|w| vec![f32::NAN; n_tokens * w.rows])
                .collect();
            let mut views: Vec<&mut [f32]> = ys.iter_mut().map(|v| v.as_mut_slice()).collect();
            matmul_many(&pool, &ws, &x, &mut views, n_tokens).expect("matmul_many");
            for (w, y) in ws.iter().zip(&ys) {
                let mut want = vec![0f32; n_tokens * w.rows];
                matmul(&pool, w, &x, &mut want, n_tokens).expect("matmul");
                assert!(
                    y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} rows={} threads={threads} tokens={n_tokens}",
                    w.ty,
                    w.rows
                );
            }
        }
    }
    // Mismatched activation formats or columns are errors.
    let q5 = random_matrix(&mut rng, GgmlType::Q5_0, 4, cols);
    let bad = [
        ws[0],
        QMatrix::new(GgmlType::Q5_0, 4, cols, &q5).expect("matrix"),
    ];
    let pool = ThreadPool::new(2);
    let (mut a, mut b) = (vec![0f32; 640], vec![0f32; 4]);
    let x = vec![0f32; cols];
    assert!(matches!(
        matmul_many(&pool, &bad, &x, &mut [&mut a, &mut b], 1),
        Err(MatmulError::Mismatch { .. })
    ));
    assert!(matches!(
        matmul_many(&pool, &ws[..1], &x, &mut [], 1),
        Err(MatmulError::Outputs { .. })
    ));
}

/// Batch invariance: each token's outputs are bit-identical whether it is multiplied alone
/// (decode) or among other tokens (prefill, batched decode), on every level and thread count,
/// so greedy output does not depend on the batch a request lands in.
#[test]
fn every_token_gets_the_same_bits_alone_and_in_a_batch() {
    let mut rng = fastrand::Rng::with_seed(21);
    let mut bad = Vec::new();
    for level in SimdLevel::available() {
        let k = Kernels::for_level(level).expect("level");
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads);
            for ty in [
                GgmlType::Q4_K,
                GgmlType::Q5_0,
                GgmlType::Q6_K,
                GgmlType::Q8_0,
                GgmlType::Q4_1,
            ] {
                let (rows, cols) = if ty.block_size() == 256 {
                    (96, 2048)
                } else {
                    (96, 640)
                };
                let w = random_matrix(&mut rng, ty, rows, cols);
                let m = QMatrix::new(ty, rows, cols, &w).expect("matrix");
                let n_tokens = 7;
                let x: Vec<f32> = (0..n_tokens * cols)
                    .map(|_| rng.f32() * 2.0 - 1.0)
                    .collect();
                let mut y = vec![0f32; n_tokens * rows];
                matmul_with(k, &pool, &m, &x, &mut y, n_tokens).expect("batch");
                for t in 0..n_tokens {
                    let mut y1 = vec![0f32; rows];
                    matmul_with(k, &pool, &m, &x[t * cols..(t + 1) * cols], &mut y1, 1)
                        .expect("alone");
                    let batch = &y[t * rows..(t + 1) * rows];
                    if let Some(r) = (0..rows).find(|&r| batch[r].to_bits() != y1[r].to_bits()) {
                        bad.push(format!(
                            "{level:?} {threads}t {ty} token {t} row {r}: {} vs {}",
                            batch[r], y1[r]
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "batched != alone:\n{}", bad.join("\n"));
}
