//! Dot-kernel throughput per type and SIMD level on cache-resident rows (compute peak, no
//! memory traffic): `cargo bench -p slm-quant --bench kernels [-- --types Q4_K,Q8_0]
//! [--cols 4864]` (row length, a multiple of 256; 64 Ki weights per pass).
//!
//! Columns: weight GB/s and GMAC/s, ns per 256 weights (per token for `x4`) and the speed-up
//! over the scalar reference kernel. `x4` rows: the four-token prefill kernel (GMAC/s counts
//! all four tokens). Timing: many short windows (4 passes over 32 rows of 2048), kernels of one
//! type interleaved window by window, best window kept: a window that was preempted only gets
//! slower, so the best one is stable on a loaded machine (whole-run CPU or wall time is not).
//! To compare with an older version of the kernels, run this bench at both commits (the
//! in-cache figures of a kernel change are recorded in its module header).

use slm_quant::kernels::half::f32_to_f16;
use slm_quant::kernels::{ActType, Kernels, SimdLevel};
use slm_quant::GgmlType;
use std::time::Instant;

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

fn main() {
    let mut types = vec![
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
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--types") {
        if let Some(list) = args.get(i + 1) {
            types = list.split(',').filter_map(GgmlType::from_name).collect();
        }
    }
    let cols: usize = args
        .iter()
        .position(|a| a == "--cols")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .filter(|c: &usize| c.is_multiple_of(256))
        .unwrap_or(2048);
    let rows = 32 * 2048 / cols.max(1);
    println!(
        "{:<7} {:<9} {:>10} {:>8} {:>9} {:>9}",
        "type", "level", "GB/s(wts)", "GMAC/s", "ns/256w", "x scalar"
    );
    for ty in types {
        let k_any = Kernels::get();
        let (w, a, rb, x) = test_data(ty, rows, cols, k_any);
        let a4: Vec<u8> = a.iter().cycle().take(4 * a.len()).copied().collect();
        let mut runs: Vec<(String, usize, Run)> = Vec::new();
        for level in SimdLevel::available() {
            let k = Kernels::for_level(level).expect("available");
            let act = ActType::for_weight(ty).expect("kernel");
            let mut al = vec![0u8; act.compute_bytes(cols)];
            // Each level's own quantizer (bytes are identical across levels anyway).
            (k.quantize(act))(&x, &mut al);
            let dot = k.vec_dot(ty).expect("kernel");
            let (w, al2) = (&w, al.clone());
            runs.push((
                level.name().to_string(),
                1,
                Box::new(move || {
                    (0..rows)
                        .map(|r| dot(cols, &w[r * rb..(r + 1) * rb], &al2))
                        .sum()
                }),
            ));
            if let Some(dot4) = k.vec_dot4(ty) {
                let a4 = &a4;
                let stride = a.len();
                runs.push((
                    format!("{}x4", level.name()),
                    4,
                    Box::new(move || {
                        let mut out = [0f32; 4];
                        let mut s = 0f32;
                        for r in 0..rows {
                            dot4(cols, &w[r * rb..(r + 1) * rb], a4, stride, &mut out);
                            s += out[0];
                        }
                        s
                    }),
                ));
            }
        }
        let best = best_windows(&runs, 600);
        // ns per 256 weights and token.
        let per256: Vec<f64> = runs
            .iter()
            .zip(&best)
            .map(|((_, tokens, _), ns)| ns / (4 * rows * cols * tokens / 256) as f64)
            .collect();
        for (((label, tokens, _), ns), t256) in runs.iter().zip(&best).zip(&per256) {
            let calls = (4 * rows) as f64;
            println!(
                "{:<7} {:<9} {:>10} {:>8.2} {:>9.2} {:>9.1}",
                ty.name(),
                label,
                if *tokens == 1 {
                    format!("{:.2}", calls * rb as f64 / ns)
                } else {
                    "-".to_string()
                },
                calls * (cols * tokens) as f64 / ns,
                t256,
                per256[0] / t256
            );
        }
    }
}

/// One kernel run over all rows (labelled, with its tokens per call in the tuples above).
type Run<'a> = Box<dyn Fn() -> f32 + 'a>;

/// Runs every closure in windows of 4 calls, interleaved, `rounds` times; returns the best
/// window time of each, in ns.
fn best_windows(runs: &[(String, usize, Run)], rounds: usize) -> Vec<f64> {
    let mut best = vec![f64::MAX; runs.len()];
    let mut sink = 0f32;
    for _ in 0..rounds {
        for (k, (_, _, f)) in runs.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..4 {
                sink += f();
            }
            best[k] = best[k].min(t.elapsed().as_nanos() as f64);
        }
    }
    std::hint::black_box(sink);
    best
}

/// Random weight rows of `ty` with sane scales (finite floats for the float types), the
/// activation row `x` and its quantized form.
fn test_data(
    ty: GgmlType,
    rows: usize,
    cols: usize,
    k: &Kernels,
) -> (Vec<u8>, Vec<u8>, usize, Vec<f32>) {
    let mut rng = fastrand::Rng::with_seed(3);
    let rb = ty.row_bytes(cols as u64).expect("blocks") as usize;
    let mut w = vec![0u8; rb * rows];
    rng.fill(&mut w);
    match ty {
        GgmlType::F32 => w.chunks_exact_mut(4).for_each(|c| c[3] &= 0x3f),
        GgmlType::F16 | GgmlType::BF16 => w.chunks_exact_mut(2).for_each(|c| c[1] &= 0x3b),
        _ => {
            for blk in w.chunks_exact_mut(ty.type_size() as usize) {
                for &o in scale_fields(ty) {
                    blk[o..o + 2].copy_from_slice(&f32_to_f16(0.01).to_le_bytes());
                }
            }
        }
    }
    let x: Vec<f32> = (0..cols).map(|_| rng.f32() - 0.5).collect();
    let act = ActType::for_weight(ty).expect("kernel");
    let mut a = vec![0u8; act.compute_bytes(cols)];
    (k.quantize(act))(&x, &mut a);
    (w, a, rb, x)
}
