//! Kernel tests: every SIMD level against the scalar reference (dots at byte offsets 0/1/3, the
//! four-row prefill kernels, activation quantizers), the activation quantizers against the
//! `formats` reference quantizers (bytes, incl. exact rounding ties), the scalar dots against an
//! f64 dot of `formats::dequantize_row` outputs, and the `SLM_SIMD` override (in a subprocess).
//!
//! Tolerances: SIMD vs scalar dot: |simd - scalar| <= 1e-5 * S + 1e-6, where S is the sum over
//! blocks of |block dot| + |block scale terms| (the integer part is exact in both; only float
//! summation order differs). Scalar vs f64 dequantized dot: 1e-5 * sum |w_i * a_i| + 1e-6.

use slm_quant::kernels::half::f32_to_f16;
use slm_quant::kernels::{f32_as_bytes, ActType, Kernels, SimdLevel};
use slm_quant::GgmlType;

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

fn put_f16(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
}

/// Offsets of the f16 scale fields of one block (d first), so random blocks have sane scales.
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

/// A random row of `n` weights of type `ty`: random quant bits, scales in +-[1e-3, 2e-2].
fn random_row(rng: &mut fastrand::Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let bytes = ty.row_bytes(n as u64).expect("whole blocks") as usize;
    match ty {
        GgmlType::F32 => (0..n)
            .flat_map(|_| (rng.f32() * 2.0 - 1.0).to_le_bytes())
            .collect(),
        GgmlType::F16 => (0..n)
            .flat_map(|_| f32_to_f16(rng.f32() * 2.0 - 1.0).to_le_bytes())
            .collect(),
        GgmlType::BF16 => (0..n)
            .flat_map(|_| (((rng.f32() * 2.0 - 1.0).to_bits() >> 16) as u16).to_le_bytes())
            .collect(),
        _ => {
            let mut v: Vec<u8> = (0..bytes).map(|_| rng.u8(..)).collect();
            let bb = ty.type_size() as usize;
            for blk in v.chunks_exact_mut(bb) {
                for (k, &off) in scale_fields(ty).iter().enumerate() {
                    let mag = 1e-3 + rng.f32() * 2e-2;
                    // Mins of the "1" and K types are stored positive; d may have either sign.
                    let s = if k == 0 && rng.bool() { -mag } else { mag };
                    put_f16(blk, off, s);
                }
            }
            v
        }
    }
}

fn random_f32(rng: &mut fastrand::Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| (rng.f32() * 2.0 - 1.0) * 3.0).collect()
}

fn quantize_act(k: &Kernels, ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let act = ActType::for_weight(ty).expect("kernel type");
    let mut out = vec![0u8; act.compute_bytes(x.len())];
    (k.quantize(act))(x, &mut out);
    out
}

fn lengths(ty: GgmlType) -> Vec<usize> {
    let bs = ty.block_size() as usize;
    let mut v = vec![bs, 2 * bs, 3 * bs, 2048, 4864, 8192];
    if bs == 32 {
        v.extend([640, 896, 96]);
    } else if bs == 1 {
        v.extend([7, 33, 640, 1000]);
    }
    v.retain(|n| n % bs == 0);
    v
}

/// Four random activation rows for weight type `ty` (scalar quantizer), back to back: the
/// buffer and its stride.
fn four_act_rows(rng: &mut fastrand::Rng, ty: GgmlType, n: usize) -> (Vec<u8>, usize) {
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    let stride = ActType::for_weight(ty)
        .expect("kernel type")
        .compute_bytes(n);
    let mut a = vec![0u8; 4 * stride];
    for j in 0..4 {
        let q = quantize_act(scalar, ty, &random_f32(rng, n));
        a[j * stride..(j + 1) * stride].copy_from_slice(&q);
    }
    (a, stride)
}

/// Sum over blocks of |scalar dot of that block alone|: the scale of the rounding error.
fn block_abs_sum(ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    let dot = scalar.vec_dot(ty).expect("kernel");
    let act = ActType::for_weight(ty).expect("kernel type");
    let bs = ty.block_size() as usize;
    let step = if bs == 1 { 1 } else { bs.max(act.block_size()) };
    let wb = ty.row_bytes(step as u64).expect("blocks") as usize;
    let ab = act.row_bytes(step);
    (0..n / step)
        .map(|b| dot(step, &w[b * wb..(b + 1) * wb], &a[b * ab..(b + 1) * ab]).abs())
        .sum()
}

#[test]
fn every_level_matches_the_scalar_dot() {
    let mut rng = fastrand::Rng::with_seed(7);
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    let levels = SimdLevel::available();
    eprintln!("levels on this CPU: {levels:?}");
    for &ty in TYPES {
        for n in lengths(ty) {
            for _ in 0..3 {
                let w = random_row(&mut rng, ty, n);
                let x = random_f32(&mut rng, n);
                let a = quantize_act(scalar, ty, &x);
                let want = (scalar.vec_dot(ty).expect("kernel"))(n, &w, &a);
                let tol = 1e-5 * block_abs_sum(ty, n, &w, &a) + 1e-6;
                for &level in &levels {
                    let k = Kernels::for_level(level).expect("available");
                    // Rows in a GGUF mmap start at any byte offset: test misaligned copies too.
                    for off in [0usize, 1, 3] {
                        let mut wb = vec![0u8; off + w.len()];
                        wb[off..].copy_from_slice(&w);
                        let mut ab = vec![0u8; off + a.len()];
                        ab[off..].copy_from_slice(&a);
                        let got = (k.vec_dot(ty).expect("kernel"))(n, &wb[off..], &ab[off..]);
                        assert!(
                            (got - want).abs() <= tol,
                            "{ty} n={n} {level:?} offset {off}: {got} vs scalar {want} (tol {tol})"
                        );
                    }
                }
            }
        }
    }
}

/// Rows of whole groups of four blocks plus a partial group (the Q8_0-activation kernels take
/// the group path, then the per-block tail), at every level, single-row and four-token.
#[test]
fn q8_0_kernels_handle_partial_groups() {
    let mut rng = fastrand::Rng::with_seed(15);
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::IQ4_NL,
    ] {
        for n in [160usize, 224, 480, 4896] {
            let w = random_row(&mut rng, ty, n);
            let (a, stride) = four_act_rows(&mut rng, ty, n);
            for level in SimdLevel::available() {
                let k = Kernels::for_level(level).expect("available");
                let dot = k.vec_dot(ty).expect("kernel");
                let mut out = [0f32; 4];
                if let Some(dot4) = k.vec_dot4(ty) {
                    dot4(n, &w, &a, stride, &mut out);
                }
                for (j, &got4) in out.iter().enumerate() {
                    let aj = &a[j * stride..(j + 1) * stride];
                    let want = (scalar.vec_dot(ty).expect("kernel"))(n, &w, aj);
                    let got = dot(n, &w, aj);
                    let tol = 1e-5 * block_abs_sum(ty, n, &w, aj) + 1e-6;
                    assert!(
                        (got - want).abs() <= tol,
                        "{ty} n={n} {level:?} row {j}: {got} vs scalar {want} (tol {tol})"
                    );
                    if k.vec_dot4(ty).is_some() {
                        assert_eq!(got4.to_bits(), got.to_bits(), "{ty} n={n} {level:?} dot4");
                    }
                }
            }
        }
    }
}

#[test]
fn four_row_kernels_match_the_scalar_dot() {
    let mut rng = fastrand::Rng::with_seed(8);
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    let mut covered = 0;
    for level in SimdLevel::available() {
        let k = Kernels::for_level(level).expect("available");
        for &ty in TYPES {
            let Some(dot4) = k.vec_dot4(ty) else { continue };
            covered += 1;
            let act = ActType::for_weight(ty).expect("kernel type");
            for n in lengths(ty) {
                let w = random_row(&mut rng, ty, n);
                // Four activation rows in one buffer, with padding between them.
                let stride = act.compute_bytes(n) + 7;
                let mut a = vec![0u8; 3 * stride + act.compute_bytes(n)];
                let xs: Vec<Vec<f32>> = (0..4).map(|_| random_f32(&mut rng, n)).collect();
                for (j, x) in xs.iter().enumerate() {
                    let q = quantize_act(scalar, ty, x);
                    a[j * stride..j * stride + q.len()].copy_from_slice(&q);
                }
                let mut out = [0f32; 4];
                dot4(n, &w, &a, stride, &mut out);
                for (j, &got) in out.iter().enumerate() {
                    let aj = &a[j * stride..j * stride + act.compute_bytes(n)];
                    let want = (scalar.vec_dot(ty).expect("kernel"))(n, &w, aj);
                    let tol = 1e-5 * block_abs_sum(ty, n, &w, aj) + 1e-6;
                    assert!(
                        (got - want).abs() <= tol,
                        "{ty} n={n} {level:?} row {j}: {got} vs scalar {want} (tol {tol})"
                    );
                }
            }
        }
    }
    if SimdLevel::Avx2.is_supported() {
        assert!(covered >= 9, "AVX2 four-row kernels missing");
    }
}

/// Batch invariance: a token's dot with a weight row must not depend on whether it went
/// through the four-token kernel (prefill, batched decode) or the single-row one (decode of
/// one sequence), or greedy output would change with the batch a request lands in.
#[test]
fn four_row_kernels_equal_the_single_row_kernel_bitwise() {
    let mut rng = fastrand::Rng::with_seed(9);
    let mut bad = Vec::new();
    for level in SimdLevel::available() {
        let k = Kernels::for_level(level).expect("available");
        for &ty in TYPES {
            let Some(dot4) = k.vec_dot4(ty) else { continue };
            let dot = k.vec_dot(ty).expect("kernel");
            for n in lengths(ty) {
                let w = random_row(&mut rng, ty, n);
                let (a, stride) = four_act_rows(&mut rng, ty, n);
                let mut out = [0f32; 4];
                dot4(n, &w, &a, stride, &mut out);
                for (j, &got) in out.iter().enumerate() {
                    let want = dot(n, &w, &a[j * stride..(j + 1) * stride]);
                    if got.to_bits() != want.to_bits() {
                        bad.push(format!("{level:?} {ty} n={n} token {j}: {got} vs {want}"));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "dot4 differs from vec_dot:\n{}",
        bad.join("\n")
    );
}

#[test]
fn avx2_has_native_kernels_for_every_type() {
    for level in [SimdLevel::Avx2, SimdLevel::Avx512] {
        if let Some(k) = Kernels::for_level(level) {
            for &ty in TYPES {
                assert!(k.is_native(ty), "{level:?} {ty}");
            }
        }
    }
}

/// The `avx512` level must really run its own Q5_0 kernel (not the AVX2 one), or the level
/// tests above would not cover it.
#[test]
fn avx512_level_has_its_own_q5_0_kernel() {
    let (Some(k2), Some(k512)) = (
        Kernels::for_level(SimdLevel::Avx2),
        Kernels::for_level(SimdLevel::Avx512),
    ) else {
        eprintln!("no AVX-512 VNNI on this CPU: nothing to check");
        return;
    };
    let f2 = k2.vec_dot(GgmlType::Q5_0).expect("kernel") as usize;
    let f512 = k512.vec_dot(GgmlType::Q5_0).expect("kernel") as usize;
    assert_ne!(f2, f512);
}

fn act_inputs(rng: &mut fastrand::Rng, n: usize) -> Vec<Vec<f32>> {
    let mut v = vec![random_f32(rng, n), vec![0.0; n]];
    // Exact ties: with amax = 127 the Q8_0/Q8_1 scale is 1 and Q8_K's is -1, so k + 0.5 values
    // hit the rounding rule (half away from zero for Q8_0/Q8_1, half to even for Q8_K).
    let mut ties: Vec<f32> = (0..n).map(|i| (i % 40) as f32 - 20.5).collect();
    for c in ties.chunks_mut(32) {
        c[0] = 127.0;
    }
    v.push(ties);
    // Largest magnitude twice with opposite signs (Q8_K takes the first).
    let mut pm = random_f32(rng, n);
    for c in pm.chunks_mut(256) {
        c[3] = -5.0;
        c[9] = 5.0;
    }
    v.push(pm);
    // A mix of tiny and huge values.
    v.push(
        (0..n)
            .map(|i| if i % 7 == 0 { 1e4 } else { (i as f32) * 1e-6 })
            .collect(),
    );
    v
}

#[test]
fn activation_quantizers_are_byte_identical_on_every_level() {
    let mut rng = fastrand::Rng::with_seed(11);
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    for act in [ActType::Q8_0, ActType::Q8_1, ActType::Q8_K] {
        for n in [256usize, 512, 2048] {
            for x in act_inputs(&mut rng, n) {
                let mut want = vec![0u8; act.compute_bytes(n)];
                (scalar.quantize(act))(&x, &mut want);
                for level in SimdLevel::available() {
                    let k = Kernels::for_level(level).expect("available");
                    let mut got = vec![0u8; act.compute_bytes(n)];
                    (k.quantize(act))(&x, &mut got);
                    assert!(got == want, "{act:?} n={n} {level:?} differs from scalar");
                }
            }
        }
    }
}

#[test]
fn activation_quantizers_match_the_formats_reference() {
    let mut rng = fastrand::Rng::with_seed(12);
    for act in [ActType::Q8_0, ActType::Q8_1, ActType::Q8_K] {
        let ty = act.ggml_type();
        assert!(slm_quant::can_quantize(ty), "formats cannot quantize {ty}");
        for n in [256usize, 2048] {
            for x in act_inputs(&mut rng, n) {
                let mut want = vec![0u8; act.row_bytes(n)];
                slm_quant::quantize_row(ty, &x, &mut want, None).expect("quantize");
                if x.iter().all(|&v| v == 0.0) && ty == GgmlType::Q8_K {
                    // ggml leaves bsums of an all-zero block unwritten; compare d and qs only.
                    for level in SimdLevel::available() {
                        let k = Kernels::for_level(level).expect("available");
                        let mut got = vec![0u8; act.row_bytes(n)];
                        (k.quantize(act))(&x, &mut got);
                        assert!(got[..260] == want[..260], "{act:?} zero row {level:?}");
                    }
                    continue;
                }
                for level in SimdLevel::available() {
                    let k = Kernels::for_level(level).expect("available");
                    // The ggml row is the prefix of the compute layout (Q8_0: extras follow).
                    let mut got = vec![0u8; act.compute_bytes(n)];
                    (k.quantize(act))(&x, &mut got);
                    assert!(
                        got[..want.len()] == want[..],
                        "{act:?} n={n} {level:?} differs from formats::quantize_row"
                    );
                }
            }
        }
    }
}

#[test]
fn scalar_dot_matches_f64_of_dequantized_rows() {
    let mut rng = fastrand::Rng::with_seed(13);
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    for &ty in TYPES {
        assert!(
            slm_quant::can_dequantize(ty),
            "formats cannot dequantize {ty}"
        );
        let act = ActType::for_weight(ty).expect("kernel type");
        for n in lengths(ty) {
            let w = random_row(&mut rng, ty, n);
            let x = random_f32(&mut rng, n);
            let a = quantize_act(scalar, ty, &x);
            let mut wf = vec![0f32; n];
            slm_quant::dequantize_row(ty, &w, &mut wf).expect("dequantize weights");
            let af: Vec<f32> = if act == ActType::F32 {
                x.clone()
            } else {
                let mut v = vec![0f32; n];
                let ggml_row = &a[..act.row_bytes(n)];
                slm_quant::dequantize_row(act.ggml_type(), ggml_row, &mut v)
                    .expect("dequantize act");
                v
            };
            let exact: f64 = wf.iter().zip(&af).map(|(&p, &q)| p as f64 * q as f64).sum();
            let mag: f64 = wf
                .iter()
                .zip(&af)
                .map(|(&p, &q)| (p as f64 * q as f64).abs())
                .sum();
            let got = (scalar.vec_dot(ty).expect("kernel"))(n, &w, &a) as f64;
            assert!(
                (got - exact).abs() <= 1e-5 * mag + 1e-6,
                "{ty} n={n}: kernel {got} vs f64 {exact} (mag {mag})"
            );
        }
    }
}

#[test]
fn f32_as_bytes_is_little_endian() {
    let x = [1.0f32, -2.5];
    let b = f32_as_bytes(&x);
    assert_eq!(b.len(), 8);
    assert_eq!(&b[4..8], &(-2.5f32).to_le_bytes());
}

#[test]
fn env_override_names_parse() {
    assert_eq!(SimdLevel::from_name("scalar"), Some(SimdLevel::Scalar));
    assert_eq!(SimdLevel::from_name(" AVX2 "), Some(SimdLevel::Avx2));
    assert_eq!(SimdLevel::from_name("avx512"), Some(SimdLevel::Avx512));
    assert_eq!(SimdLevel::from_name("neon"), None);
    assert!(SimdLevel::available().contains(&SimdLevel::Scalar));
    assert!(SimdLevel::available().contains(&slm_quant::kernels::level()));
}

/// `SLM_SIMD` picks the level once per process: run this test binary again with the variable set
/// and check what it chose (an unknown or unsupported value falls back to the detected best).
#[test]
fn slm_simd_env_forces_the_level() {
    if let Ok(expect) = std::env::var("SLM_SIMD_EXPECT") {
        let got = slm_quant::kernels::level();
        assert_eq!(got.name(), expect);
        assert_eq!(Kernels::get().level(), got);
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut cases = vec![("scalar", "scalar"), ("bogus", SimdLevel::detect().name())];
    if SimdLevel::Avx2.is_supported() {
        cases.push(("avx2", "avx2"));
    } else {
        cases.push(("avx2", "scalar"));
    }
    if SimdLevel::Avx512.is_supported() {
        cases.push(("avx512", "avx512"));
    } else {
        cases.push(("avx512", SimdLevel::detect().name()));
    }
    for (value, expect) in cases {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "slm_simd_env_forces_the_level", "--nocapture"])
            .env("SLM_SIMD", value)
            .env("SLM_SIMD_EXPECT", expect)
            .output()
            .expect("spawn test binary");
        assert!(
            out.status.success(),
            "SLM_SIMD={value}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("1 passed"),
            "SLM_SIMD={value}: test did not run: {stdout}"
        );
    }
}

/// The Q8_0 activation extras (layout.rs): per whole group of 4 blocks, the i32 sums of each
/// block's first and second 16 quants and each block's scale as f32 (twice), recomputed here
/// from the ggml bytes; a plain-length destination gets the ggml row only.
#[test]
fn q8_0_activation_extras_hold_block_sums_and_scales() {
    let mut rng = fastrand::Rng::with_seed(14);
    let act = ActType::Q8_0;
    for level in SimdLevel::available() {
        let k = Kernels::for_level(level).expect("available");
        for n in [32usize, 96, 128, 160, 2048, 4864] {
            let x = random_f32(&mut rng, n);
            let mut a = vec![0u8; act.compute_bytes(n)];
            (k.quantize(act))(&x, &mut a);
            let nb = n / 32;
            assert_eq!(a.len(), nb * 34 + nb / 4 * 64, "n={n}");
            let mut plain = vec![0u8; act.row_bytes(n)];
            (k.quantize(act))(&x, &mut plain);
            assert!(
                plain[..] == a[..nb * 34],
                "{level:?} n={n}: plain row differs"
            );
            let word = |o: usize| [a[o], a[o + 1], a[o + 2], a[o + 3]];
            for g in 0..nb / 4 {
                let e = nb * 34 + 64 * g;
                for j in 0..4 {
                    let b = &a[(4 * g + j) * 34..(4 * g + j + 1) * 34];
                    let sum = |r: std::ops::Range<usize>| -> i32 {
                        b[r].iter().map(|&q| q as i8 as i32).sum()
                    };
                    let d = slm_quant::kernels::half::f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                    assert_eq!(
                        i32::from_le_bytes(word(e + 4 * j)),
                        sum(2..18),
                        "n={n} g={g}"
                    );
                    assert_eq!(i32::from_le_bytes(word(e + 16 + 4 * j)), sum(18..34));
                    assert_eq!(f32::from_le_bytes(word(e + 32 + 4 * j)), d);
                    assert_eq!(f32::from_le_bytes(word(e + 48 + 4 * j)), d);
                }
            }
        }
    }
}
