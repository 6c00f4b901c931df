//! Every SIMD level against the scalar reference on the real tensors of the three models
//! (material from `tools/material.py`; missing material fails the test): real scales, mins
//! and sign patterns that random blocks may not hit.

#[path = "formats_support/mod.rs"]
mod formats_support;

use formats_support::material;
use slm_gguf::GgufFile;
use slm_quant::kernels::{ActType, Kernels, SimdLevel};

#[test]
fn every_level_matches_scalar_on_real_rows() {
    let scalar = Kernels::for_level(SimdLevel::Scalar).expect("scalar");
    let mut rng = fastrand::Rng::with_seed(11);
    let mut bad = Vec::new();
    let mut checked = 0usize;
    for model in [
        "gemma-3-270m-q4_k_m.gguf",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ] {
        let file = GgufFile::open(&material(model)).expect("open model");
        for info in file.tensors() {
            let Some(act) = ActType::for_weight(info.ty) else {
                continue;
            };
            if info.dims.len() != 2 || act == ActType::F32 {
                continue;
            }
            let n = info.dims[0] as usize;
            let rows = info.dims[1] as usize;
            let row_bytes = info.ty.row_bytes(n as u64).expect("row bytes") as usize;
            let data = file.tensor_data(info);
            let x: Vec<f32> = (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let mut a = vec![0u8; act.compute_bytes(n)];
            (scalar.quantize(act))(&x, &mut a);
            for r in [0, rows / 3, rows - 1] {
                let w = &data[r * row_bytes..(r + 1) * row_bytes];
                let want = (scalar.vec_dot(info.ty).expect("scalar kernel"))(n, w, &a);
                for level in SimdLevel::available() {
                    let k = Kernels::for_level(level).expect("level");
                    let got = (k.vec_dot(info.ty).expect("kernel"))(n, w, &a);
                    checked += 1;
                    if (got - want).abs() > 1e-4 * want.abs().max(1.0) {
                        bad.push(format!(
                            "{model} {} ({}) row {r} {level:?}: {got} vs scalar {want}",
                            info.name, info.ty
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} dots checked");
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
