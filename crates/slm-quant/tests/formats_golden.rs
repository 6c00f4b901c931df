//! Bit-exactness of slm-quant's formats against llama.cpp's own code, through
//! `tools/golden/quant_ref.py`: dequantization against PyPI `gguf` 0.19.0
//! (`gguf.quants.dequantize`, ggml's algorithms in numpy), quantization against PyPI `libgguf`
//! 0.2.2 (`quantize_rows`: llama.cpp's C `ggml_quantize_chunk`, with and without imatrix) and
//! against `gguf.quants.quantize` for the types it has. Rows of several distributions and
//! lengths. Needs `python3` with those packages; a missing reference fails the test.

mod formats_support;

use formats_support::{reference_batch, Job};
use slm_quant::{dequantize_row, quantize_rows, GgmlType};

/// Deterministic test rows: (label, values, n_per_row).
fn test_rows(seed: u64) -> Vec<(&'static str, Vec<f32>, usize)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut normal = move || -> f32 {
        // Box-Muller in f64, then to f32.
        let u1 = rng.f64().max(1e-300);
        let u2 = rng.f64();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    let mut rng2 = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let mut out = Vec::new();
    for &n in &[256usize, 512, 4096] {
        out.push(("normal", (0..4 * n).map(|_| normal() * 0.02).collect(), n));
    }
    out.push((
        "uniform",
        (0..4 * 512).map(|_| rng2.f32() * 2.0 - 1.0).collect(),
        512,
    ));
    out.push((
        "positive",
        (0..2 * 512).map(|_| rng2.f32() * 3.0 + 0.5).collect(),
        512,
    ));
    let mut outl: Vec<f32> = (0..4 * 1024).map(|_| normal()).collect();
    for i in (0..outl.len()).step_by(97) {
        outl[i] *= 60.0;
    }
    out.push(("outliers", outl, 1024));
    out.push(("zeros", vec![0.0; 2 * 512], 512));
    let mut sparse = vec![0.0f32; 2 * 512];
    for i in (0..sparse.len()).step_by(37) {
        sparse[i] = normal();
    }
    out.push(("sparse", sparse, 512));
    out.push(("tiny", (0..512).map(|_| normal() * 1e-6).collect(), 512));
    out.push((
        "ternary",
        (0..2 * 512)
            .map(|_| (rng2.u8(0..3) as f32 - 1.0) * 0.7)
            .collect(),
        512,
    ));
    out
}

/// Importance weights like llama-imatrix's (positive, spread over orders of magnitude).
fn imatrix(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| (rng.f32() * 6.0 - 3.0).exp()).collect()
}

fn block_elems(ty: GgmlType) -> usize {
    ty.block_size() as usize
}

/// Compares our bytes with the reference; reports the first differing block.
fn assert_same_bytes(ty: GgmlType, what: &str, ours: &[u8], theirs: &[u8]) {
    assert_eq!(ours.len(), theirs.len(), "{ty} {what}: length");
    if ours != theirs {
        let bs = ty.type_size() as usize;
        let nbad = ours
            .chunks(bs)
            .zip(theirs.chunks(bs))
            .filter(|(a, b)| a != b)
            .count();
        let first = ours
            .chunks(bs)
            .zip(theirs.chunks(bs))
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{ty} {what}: {nbad} of {} blocks differ, first #{first}:\n ours   {:?}\n theirs {:?}",
            ours.len() / bs,
            &ours[first * bs..(first + 1) * bs],
            &theirs[first * bs..(first + 1) * bs]
        );
    }
}

fn quantize(ty: GgmlType, x: &[f32], n: usize, im: Option<&[f32]>) -> Vec<u8> {
    let row_bytes = ty.row_bytes(n as u64).expect("row bytes") as usize;
    let mut dst = vec![0u8; x.len() / n * row_bytes];
    quantize_rows(ty, x, n, &mut dst, im).expect("quantize");
    dst
}

/// Row kinds on which libgguf's IQ1_M (a C port, not ggml itself) breaks exact ties between
/// the +/- delta choices differently from ggml: there ggml's own `quantize_iq1_m` (llama.cpp as
/// vendored by llama-cpp-python 0.3.36, compiled locally for a one-off check) gives our bytes,
/// not libgguf's, so these rows are left out of the libgguf comparison.
const LIBGGUF_IQ1_M_DIFFERS: &[&str] = &["sparse", "ternary"];

fn check_quant_vs_libgguf(ty: GgmlType, with_imatrix: bool) {
    let mut rows = test_rows(ty.id() as u64 + 7);
    if ty == GgmlType::IQ1_M {
        rows.retain(|r| !LIBGGUF_IQ1_M_DIFFERS.contains(&r.0));
    }
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for (_, x, n) in &rows {
        let im = with_imatrix.then(|| imatrix(*n, *n as u64));
        ours.push(quantize(ty, x, *n, im.as_deref()));
        let input = bytemuck::cast_slice(x).to_vec();
        jobs.push(Job {
            op: "quant",
            ty,
            n_per_row: *n,
            input,
            imatrix: im,
        });
    }
    let theirs = reference_batch(&jobs);
    let mut changed_by_imatrix = 0;
    for (((label, x, n), o), t) in rows.iter().zip(&ours).zip(&theirs) {
        let what = format!("{label} rows of {n}, imatrix {with_imatrix}");
        assert_same_bytes(ty, &what, o, t);
        if !slm_quant::requires_imatrix(ty) && *o != quantize(ty, x, *n, None) {
            changed_by_imatrix += 1;
        }
    }
    if with_imatrix && !slm_quant::requires_imatrix(ty) {
        // Otherwise the imatrix path would not be tested at all.
        assert!(changed_by_imatrix > 0, "{ty}: the imatrix changed no row");
    }
}

macro_rules! quant_tests {
    ($($name:ident: $ty:ident, $im:expr;)*) => {$(
        #[test]
        fn $name() {
            check_quant_vs_libgguf(GgmlType::$ty, $im);
        }
    )*};
}

quant_tests! {
    quant_q4_0: Q4_0, false;
    quant_q4_0_imatrix: Q4_0, true;
    quant_q4_1: Q4_1, false;
    quant_q4_1_imatrix: Q4_1, true;
    quant_q5_0: Q5_0, false;
    quant_q5_0_imatrix: Q5_0, true;
    quant_q5_1: Q5_1, false;
    quant_q5_1_imatrix: Q5_1, true;
    quant_q8_0: Q8_0, false;
    quant_q2_k: Q2_K, false;
    quant_q2_k_imatrix: Q2_K, true;
    quant_q3_k: Q3_K, false;
    quant_q3_k_imatrix: Q3_K, true;
    quant_q4_k: Q4_K, false;
    quant_q4_k_imatrix: Q4_K, true;
    quant_q5_k: Q5_K, false;
    quant_q5_k_imatrix: Q5_K, true;
    quant_q6_k: Q6_K, false;
    quant_q6_k_imatrix: Q6_K, true;
    quant_iq4_nl: IQ4_NL, false;
    quant_iq4_nl_imatrix: IQ4_NL, true;
    quant_iq4_xs: IQ4_XS, false;
    quant_iq4_xs_imatrix: IQ4_XS, true;
    quant_tq1_0: TQ1_0, false;
    quant_tq2_0: TQ2_0, false;
    quant_mxfp4: MXFP4, false;
    quant_iq2_xxs_imatrix: IQ2_XXS, true;
    quant_iq2_xs_imatrix: IQ2_XS, true;
    quant_iq2_s: IQ2_S, false;
    quant_iq1_s_imatrix: IQ1_S, true;
    quant_iq1_m: IQ1_M, false;
    quant_iq1_m_imatrix: IQ1_M, true;
    quant_iq2_s_imatrix: IQ2_S, true;
    quant_iq3_xxs: IQ3_XXS, false;
    quant_iq3_xxs_imatrix: IQ3_XXS, true;
    quant_iq3_s: IQ3_S, false;
    quant_iq3_s_imatrix: IQ3_S, true;
    quant_bf16: BF16, false;
}

/// The numpy quantizers of gguf-py (a second, independent port of the same C code).
#[test]
fn quant_vs_gguf_numpy() {
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
        GgmlType::BF16,
        GgmlType::F16,
    ] {
        let rows = test_rows(ty.id() as u64 + 99);
        let jobs: Vec<Job> = rows
            .iter()
            .map(|(_, x, n)| Job {
                op: "pyquant",
                ty,
                n_per_row: *n,
                input: bytemuck::cast_slice(x).to_vec(),
                imatrix: None,
            })
            .collect();
        let theirs = reference_batch(&jobs);
        for ((label, x, n), t) in rows.iter().zip(&theirs) {
            let ours = quantize(ty, x, *n, None);
            assert_same_bytes(ty, &format!("{label} rows of {n} (gguf numpy)"), &ours, t);
        }
    }
}

fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Random block bytes (every bit pattern, including f16 NaN/Inf scales) plus the blocks of
/// quantized random rows, dequantized by us, by gguf-py and (quantized types) by ggml's C code
/// in libgguf.
fn check_dequant(ty: GgmlType) {
    let n = 4096usize;
    let bytes_per_row = ty.row_bytes(n as u64).expect("row") as usize;
    let mut rng = fastrand::Rng::with_seed(ty.id() as u64);
    let mut raw: Vec<u8> = (0..4 * bytes_per_row).map(|_| rng.u8(..)).collect();
    if slm_quant::can_quantize(ty) {
        for (_, x, m) in test_rows(3) {
            if m == n {
                let ones = vec![1.0f32; n];
                let im = slm_quant::requires_imatrix(ty).then_some(&ones[..]);
                raw.extend(quantize(ty, &x, n, im));
            }
        }
    }
    let mut jobs = vec![Job {
        op: "dequant",
        ty,
        n_per_row: n,
        input: raw.clone(),
        imatrix: None,
    }];
    if ty.is_quantized() {
        jobs.push(Job {
            op: "cdequant",
            ty,
            n_per_row: n,
            input: raw.clone(),
            imatrix: None,
        });
    }
    let mut ours = vec![0f32; raw.len() / bytes_per_row * n];
    for (src, dst) in raw.chunks(bytes_per_row).zip(ours.chunks_mut(n)) {
        dequantize_row(ty, src, dst).expect("dequantize");
    }
    for (job, theirs_b) in jobs.iter().zip(reference_batch(&jobs)) {
        let theirs: &[f32] = bytemuck::cast_slice(&theirs_b);
        assert_eq!(ours.len(), theirs.len(), "{ty}: length");
        let bad: Vec<usize> = (0..ours.len())
            .filter(|&i| !same_f32(ours[i], theirs[i]))
            .collect();
        if let Some(&i) = bad.first() {
            panic!(
                "{ty} vs {}: {} of {} values differ, first at {i} (block {}): ours {} theirs {}",
                job.op,
                bad.len(),
                ours.len(),
                i / block_elems(ty),
                ours[i],
                theirs[i]
            );
        }
    }
}

macro_rules! dequant_tests {
    ($($name:ident: $ty:ident;)*) => {$(
        #[test]
        fn $name() {
            check_dequant(GgmlType::$ty);
        }
    )*};
}

dequant_tests! {
    dequant_f32: F32;
    dequant_f16: F16;
    dequant_bf16: BF16;
    dequant_q4_0: Q4_0;
    dequant_q4_1: Q4_1;
    dequant_q5_0: Q5_0;
    dequant_q5_1: Q5_1;
    dequant_q8_0: Q8_0;
    dequant_q2_k: Q2_K;
    dequant_q3_k: Q3_K;
    dequant_q4_k: Q4_K;
    dequant_q5_k: Q5_K;
    dequant_q6_k: Q6_K;
    dequant_iq4_nl: IQ4_NL;
    dequant_iq4_xs: IQ4_XS;
    dequant_tq1_0: TQ1_0;
    dequant_tq2_0: TQ2_0;
    dequant_mxfp4: MXFP4;
    dequant_iq2_xxs: IQ2_XXS;
    dequant_iq2_xs: IQ2_XS;
    dequant_iq2_s: IQ2_S;
    dequant_iq3_xxs: IQ3_XXS;
    dequant_iq3_s: IQ3_S;
    dequant_iq1_s: IQ1_S;
    dequant_iq1_m: IQ1_M;
}

/// Q8_K, Q8_1 and IQ1_M (on the rows where libgguf differs from ggml) against committed outputs
/// of ggml's own C code (`tests/data/ggml_ref/README.md`).
#[test]
fn ggml_reference_fixtures() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ggml_ref");
    let read_f32 = |name: &str| -> Vec<f32> {
        let b = std::fs::read(dir.join(name)).expect("fixture");
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let imatrix = read_f32("imatrix.f32");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).expect("MANIFEST");
    let mut checked = 0;
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ty = GgmlType::from_name(f[0]).expect("type");
        let x = read_f32(&format!("{}.f32", f[1]));
        let im = (f[2] == "1").then_some(&imatrix[..]);
        let theirs = std::fs::read(dir.join(f[3])).expect("reference bytes");
        let ours = quantize(ty, &x, 512, im);
        assert_same_bytes(ty, &format!("ggml fixture {}", f[3]), &ours, &theirs);
        checked += 1;
    }
    assert_eq!(checked, 14, "fixtures in MANIFEST");
}
