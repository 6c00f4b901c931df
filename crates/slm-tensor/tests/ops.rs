//! Each float op against a naive f64 implementation written from the formula, over several
//! shapes and pseudo-random inputs.

use slm_tensor::ops::{self, KvRows, RopeParams, RopeStyle};

/// Deterministic pseudo-random values in [-amp, amp) (xorshift).
fn rand_vec(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn rms_norm_matches_f64() {
    for (n, seed) in [(1, 1), (7, 2), (640, 3), (2048, 4)] {
        let x = rand_vec(n, seed, 3.0);
        let w = rand_vec(n, seed + 100, 2.0);
        let eps = 1e-6f64;
        let ms: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n as f64;
        let want: Vec<f64> = x
            .iter()
            .zip(&w)
            .map(|(&a, &b)| f64::from(a) / (ms + eps).sqrt() * f64::from(b))
            .collect();
        let mut out = vec![0.0; n];
        ops::rms_norm(&x, &w, eps as f32, &mut out);
        assert_close(&out, &want, 1e-5, "rms_norm");
        let mut rows: Vec<f32> = x.iter().chain(&x).copied().collect();
        ops::rms_norm_rows(&mut rows, &w, eps as f32);
        assert_close(&rows[..n], &want, 1e-5, "rms_norm_rows[0]");
        assert_close(&rows[n..], &want, 1e-5, "rms_norm_rows[1]");
    }
}

fn rope_ref(x: &[f32], head_dim: usize, p: &RopeParams, pos: u32) -> Vec<f64> {
    let mut out: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let half = p.n_rot / 2;
    for h in 0..x.len() / head_dim {
        let b = h * head_dim;
        for i in 0..half {
            let theta = f64::from(pos)
                * f64::from(p.freq_scale)
                * f64::from(p.freq_base).powf(-2.0 * i as f64 / p.n_rot as f64);
            let (i0, i1) = match p.style {
                RopeStyle::Normal => (b + 2 * i, b + 2 * i + 1),
                RopeStyle::Neox => (b + i, b + i + half),
            };
            let (x0, x1) = (f64::from(x[i0]), f64::from(x[i1]));
            out[i0] = x0 * theta.cos() - x1 * theta.sin();
            out[i1] = x0 * theta.sin() + x1 * theta.cos();
        }
    }
    out
}

#[test]
fn rope_matches_f64_both_styles() {
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        for (n_heads, head_dim, n_rot, base, scale, pos) in [
            (4, 256, 256, 10_000.0, 1.0, 0),
            (4, 256, 256, 1_000_000.0, 1.0, 37),
            (2, 64, 32, 10_000.0, 0.125, 5000),
            (3, 128, 128, 500_000.0, 1.0, 31_999),
        ] {
            let p = RopeParams {
                style,
                n_rot,
                freq_base: base,
                freq_scale: scale,
            };
            let x = rand_vec(n_heads * head_dim, pos as u64 + 9, 2.0);
            let want = rope_ref(&x, head_dim, &p, pos);
            let mut cs = vec![0.0; n_rot];
            p.table(pos, &mut cs);
            let mut got = x.clone();
            p.apply(&mut got, head_dim, &cs);
            assert_close(&got, &want, 2e-5, &format!("rope {style:?} pos {pos}"));
        }
    }
}

#[test]
fn softmax_and_softcap_match_f64() {
    for (n, amp) in [(1, 1.0), (5, 30.0), (1000, 8.0)] {
        let x = rand_vec(n, n as u64, amp);
        let m = x
            .iter()
            .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
        let e: Vec<f64> = x.iter().map(|&v| (f64::from(v) - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let want: Vec<f64> = e.iter().map(|v| v / s).collect();
        let mut got = x.clone();
        ops::softmax(&mut got);
        assert_close(&got, &want, 1e-6, "softmax");

        let cap = 50.0f64;
        let want: Vec<f64> = x
            .iter()
            .map(|&v| cap * (f64::from(v) / cap).tanh())
            .collect();
        let mut got = x.clone();
        ops::softcap(&mut got, cap as f32);
        assert_close(&got, &want, 1e-6, "softcap");
    }
}

#[test]
fn gated_activations_match_f64() {
    let n = 2048;
    let g = rand_vec(n, 11, 6.0);
    let u = rand_vec(n, 12, 3.0);
    let gelu = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    let silu = |x: f64| x / (1.0 + (-x).exp());
    let want: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(&a, &b)| gelu(f64::from(a)) * f64::from(b))
        .collect();
    let mut got = g.clone();
    ops::geglu_exact(&mut got, &u);
    assert_close(&got, &want, 1e-5, "geglu_exact");
    // ggml's f16-table GeGLU: within f16 rounding of input and output (~2^-10 relative).
    let mut got = g.clone();
    ops::geglu(&mut got, &u);
    assert_close(&got, &want, 4e-3, "geglu (f16 table)");
    let want: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(&a, &b)| silu(f64::from(a)) * f64::from(b))
        .collect();
    let mut got = g.clone();
    ops::swiglu(&mut got, &u);
    assert_close(&got, &want, 1e-5, "swiglu");
}

#[test]
fn attention_matches_f64() {
    // Two KV heads interleaved in each cached row; attend with head 1.
    for (n_keys, d, cap) in [(1, 8, None), (17, 64, None), (300, 256, Some(50.0f32))] {
        let stride = 2 * d;
        let k = rand_vec(n_keys * stride, 21 + n_keys as u64, 1.0);
        let v = rand_vec(n_keys * stride, 22 + n_keys as u64, 1.0);
        let q = rand_vec(d, 23, 1.0);
        let scale = 1.0 / (d as f32).sqrt();
        let mut s: Vec<f64> = (0..n_keys)
            .map(|j| {
                let dotp: f64 = (0..d)
                    .map(|i| f64::from(q[i]) * f64::from(k[j * stride + d + i]))
                    .sum();
                let x = dotp * f64::from(scale);
                match cap {
                    Some(c) => f64::from(c) * (x / f64::from(c)).tanh(),
                    None => x,
                }
            })
            .collect();
        let m = s.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = s.iter().map(|x| (x - m).exp()).sum();
        for x in s.iter_mut() {
            *x = (*x - m).exp() / sum;
        }
        let want: Vec<f64> = (0..d)
            .map(|i| {
                (0..n_keys)
                    .map(|j| s[j] * f64::from(v[j * stride + d + i]))
                    .sum()
            })
            .collect();
        fn rows(data: &[f32], d: usize, stride: usize, n: usize) -> KvRows<'_> {
            KvRows {
                data: &data[d..],
                stride,
                dim: d,
                n,
            }
        }
        let mut scores = vec![0.0; n_keys];
        let mut out = vec![0.0; d];
        ops::attend(
            &q,
            rows(&k, d, stride, n_keys),
            rows(&v, d, stride, n_keys),
            scale,
            cap,
            &mut scores,
            &mut out,
        );
        assert_close(&out, &want, 1e-5, "attend");
    }
}

#[test]
fn weighted_rows_has_the_bits_of_axpy_row_by_row() {
    // Widths with 64-blocks, 8-blocks and a scalar tail; strides wider than a row (interleaved
    // KV heads). Compared with zeroing and one `axpy` per row, bit for bit, at the process level.
    for (n, d, stride) in [
        (1, 8, 8),
        (7, 256, 512),
        (300, 72, 80),
        (33, 70, 140),
        (5, 3, 3),
    ] {
        let rows = rand_vec((n - 1) * stride + d, 41 + n as u64, 1.0);
        let w = rand_vec(n, 42, 1.0);
        let mut want = vec![0.0f32; d];
        for j in 0..n {
            ops::axpy(w[j], &rows[j * stride..j * stride + d], &mut want);
        }
        let mut got = vec![f32::NAN; d];
        ops::simd::weighted_rows(&w, &rows, stride, &mut got);
        let same = want
            .iter()
            .zip(&got)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{n} rows of {d} at stride {stride}: bits differ from axpy"
        );
        let mut want_scalar = vec![0.0f32; d];
        for j in 0..n {
            ops::simd::axpy_scalar(w[j], &rows[j * stride..j * stride + d], &mut want_scalar);
        }
        let mut scalar = vec![f32::NAN; d];
        ops::simd::weighted_rows_scalar(&w, &rows, stride, &mut scalar);
        let same = want_scalar
            .iter()
            .zip(&scalar)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{n} rows of {d}: scalar bits differ from axpy_scalar");
    }
}

#[test]
fn get_rows_dequantizes_only_requested_rows() {
    // An F32 table and a Q8_0 table built by hand: rows are id-dependent constants.
    let n_cols = 64;
    let n_rows = 10u32;
    let mut f32_bytes = Vec::new();
    for r in 0..n_rows {
        for c in 0..n_cols {
            f32_bytes.extend_from_slice(&(r as f32 * 100.0 + c as f32).to_le_bytes());
        }
    }
    let ids = [3u32, 0, 9, 3];
    let mut out = vec![0.0; ids.len() * n_cols];
    ops::get_rows(slm_gguf::GgmlType::F32, &f32_bytes, n_cols, &ids, &mut out).unwrap();
    for (k, &id) in ids.iter().enumerate() {
        for c in 0..n_cols {
            assert_eq!(out[k * n_cols + c], id as f32 * 100.0 + c as f32);
        }
    }
    // Q8_0: block = f16 scale + 32 i8. Scale 0.5 (f16 0x3800), quants = column index - 16.
    let mut q8 = Vec::new();
    for _ in 0..n_rows {
        for _ in 0..n_cols / 32 {
            q8.extend_from_slice(&0x3800u16.to_le_bytes());
            q8.extend((0..32).map(|i| (i as i8 - 16) as u8));
        }
    }
    ops::get_rows(slm_gguf::GgmlType::Q8_0, &q8, n_cols, &ids, &mut out).unwrap();
    for (c, &v) in out.iter().enumerate().take(n_cols) {
        assert_eq!(v, ((c % 32) as f32 - 16.0) * 0.5);
    }
    // A row id past the table is an error, not a panic.
    assert!(ops::get_rows(slm_gguf::GgmlType::F32, &f32_bytes, n_cols, &[10], &mut out).is_err());
}

#[test]
fn simd_dot_and_axpy_match_f64() {
    use slm_tensor::ops::simd;
    for n in [0usize, 1, 7, 8, 31, 32, 33, 256, 1000] {
        let a = rand_vec(n, 31 + n as u64, 2.0);
        let b = rand_vec(n, 32 + n as u64, 2.0);
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let tol = 1e-5 * (1.0 + n as f64).sqrt();
        assert_close(&[ops::dot(&a, &b)], &[want], tol, "dot (dispatched)");
        assert_close(&[simd::dot_scalar(&a, &b)], &[want], tol, "dot_scalar");
        let want: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(y) + 0.75 * f64::from(x))
            .collect();
        let mut y = b.clone();
        ops::axpy(0.75, &a, &mut y);
        assert_close(&y, &want, 1e-6, "axpy (dispatched)");
        let mut y = b.clone();
        simd::axpy_scalar(0.75, &a, &mut y);
        assert_close(&y, &want, 1e-6, "axpy_scalar");
    }
}

#[test]
fn f16_conversion_round_trips_and_rounds_to_even() {
    use slm_tensor::ops::activation::{f16_bits_to_f32, f32_to_f16_bits};
    for h in 0..=u16::MAX {
        let is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
        if !is_nan {
            assert_eq!(
                f32_to_f16_bits(f16_bits_to_f32(h)),
                h,
                "round trip of {h:#06x}"
            );
        }
    }
    assert_eq!(f16_bits_to_f32(0x3c00), 1.0);
    assert_eq!(f16_bits_to_f32(0x0001), 2f32.powi(-24));
    assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11)), 0x3c00); // tie -> even
    assert_eq!(f32_to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02); // tie -> even (up)
    assert_eq!(f32_to_f16_bits(65520.0), 0x7c00); // rounds up to infinity
    assert_eq!(f32_to_f16_bits(-2f32.powi(-25)), 0x8000); // tie -> even (zero)
    assert_eq!(f32_to_f16_bits(1e-8), 0x0000);
    assert_eq!(f32_to_f16_bits(3.0 * 2f32.powi(-25)), 0x0002); // subnormal tie -> even
}
