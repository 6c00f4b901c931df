//! Dot-kernel throughput per type and SIMD level on cache-resident rows (compute peak, no
//! memory traffic): `cargo bench -p slm-quant --bench kernels [-- --types Q4_K,Q8_0]`.
//!
//! `x4` rows: the four-token prefill kernel (GMAC/s counts all four tokens).
//! Time is this thread's CPU time (Linux `/proc/thread-self/schedstat`), falling back to wall
//! time, so a busy shared machine inflates the figures less.

use slm_quant::kernels::half::f32_to_f16;
use slm_quant::kernels::{ActType, Kernels, SimdLevel};
use slm_quant::GgmlType;
use std::time::Instant;

fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

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
    let (rows, cols) = (32usize, 2048usize);
    let mut rng = fastrand::Rng::with_seed(3);
    println!(
        "{:<7} {:<7} {:>12} {:>10}",
        "type", "level", "GB/s(wts)", "GMAC/s"
    );
    for ty in types {
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
        for level in SimdLevel::available() {
            let k = Kernels::for_level(level).expect("available");
            let act = ActType::for_weight(ty).expect("kernel");
            let mut a = vec![0u8; act.row_bytes(cols)];
            (k.quantize(act))(&x, &mut a);
            let dot = k.vec_dot(ty).expect("kernel");
            let reps = if level == SimdLevel::Scalar { 20 } else { 200 };
            let mut sink = 0f32;
            let (t0, c0) = (Instant::now(), cpu_ns());
            for _ in 0..reps {
                for r in 0..rows {
                    sink += dot(cols, &w[r * rb..(r + 1) * rb], &a);
                }
            }
            let secs = match (c0, cpu_ns()) {
                (Some(a0), Some(a1)) if a1 > a0 => (a1 - a0) as f64 * 1e-9,
                _ => t0.elapsed().as_secs_f64(),
            };
            std::hint::black_box(sink);
            let n = (reps * rows) as f64;
            println!(
                "{:<7} {:<7} {:>12.2} {:>10.2}",
                ty.name(),
                level.name(),
                n * rb as f64 / secs / 1e9,
                n * cols as f64 / secs / 1e9
            );
            // Four activation rows per weight row (prefill kernel), if the level has one.
            if let Some(dot4) = k.vec_dot4(ty) {
                let a4: Vec<u8> = a.iter().cycle().take(4 * a.len()).copied().collect();
                let mut out = [0f32; 4];
                let (t0, c0) = (Instant::now(), cpu_ns());
                for _ in 0..reps / 4 {
                    for r in 0..rows {
                        dot4(cols, &w[r * rb..(r + 1) * rb], &a4, a.len(), &mut out);
                        sink += out[0];
                    }
                }
                let secs = match (c0, cpu_ns()) {
                    (Some(a0), Some(a1)) if a1 > a0 => (a1 - a0) as f64 * 1e-9,
                    _ => t0.elapsed().as_secs_f64(),
                };
                std::hint::black_box(sink);
                let n4 = (reps / 4 * rows * 4) as f64;
                println!(
                    "{:<7} {:<7} {:>12} {:>10.2}",
                    ty.name(),
                    format!("{}x4", level.name()),
                    "-",
                    n4 * cols as f64 / secs / 1e9
                );
            }
        }
    }
}
