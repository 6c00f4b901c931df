//! llama.cpp's IQ3_XXS and IQ3_S quantizers (`quantize_row_iq3_xxs_impl` with the 256-entry
//! grid, `quantize_row_iq3_s_impl` with the 512-entry grid and 32-value blocks), with or without
//! imatrix (without: weights `x^2`). Groups of 4 values snap to the D4-lattice grid.

use std::sync::OnceLock;

use half::f16;

use super::iq2_quant::{even_signs, sums, weights};
use super::iq3::{BlockIQ3_S, BlockIQ3_XXS};
use super::iq_grids::{IQ3S_GRID, IQ3XXS_GRID};
use super::lattice::Lattice;
use super::search::nearest_int;
use super::{Quantize, QK_K};

/// ggml's `GROUP_MAX_EPS_IQ3_XXS`.
const GROUP_MAX_EPS_IQ3_XXS: f32 = 1e-8;
const KMAXQ: i32 = 8;

fn iq3xxs_lattice() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| {
        let values = [0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3e];
        Lattice::build(&IQ3XXS_GRID, 4, 3, &values, 4096, 2)
    })
}

fn iq3s_lattice() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| {
        let values = [0x01, 0x03, 0x05, 0x07, 0x09, 0x0b, 0x0d, 0x0f];
        Lattice::build(&IQ3S_GRID, 4, 3, &values, 4096, 3)
    })
}

/// Levels `clamp(nearest_int(0.5 (id x - 1)), 0, 7)` of 4 values.
fn levels4(id: f32, xval: &[f32], l: &mut [i8]) {
    for i in 0..4 {
        l[i] = nearest_int(0.5 * (id * xval[i] - 1.0)).clamp(0, KMAXQ - 1) as i8;
    }
}

fn block_weights(
    xb: &[f32],
    qw: Option<&[f32]>,
    sigma2: f32,
    weight: &mut [f32],
    waux: &mut [f32],
) {
    match qw {
        Some(qw) => weights(xb, qw, sigma2, weight, waux),
        None => {
            for i in 0..weight.len() {
                weight[i] = xb[i] * xb[i];
            }
            for i in 0..weight.len() {
                waux[i] = weight[i].sqrt();
            }
        }
    }
}

fn sigma2x2(x: &[f32]) -> f32 {
    let mut sumx2 = 0.0f32;
    for &v in &x[..QK_K] {
        sumx2 += v * v;
    }
    2.0 * sumx2 / QK_K as f32
}

/// Searches the scale of one 32-value block (the `is` loop and the off-grid refit shared by
/// IQ3_XXS and IQ3_S). Returns the scale; `l` gets the final levels (all on the grid).
#[allow(clippy::too_many_arguments)]
fn search_block(
    lat: &Lattice,
    xval: &[f32; 32],
    weight: &[f32; 32],
    waux: &[f32; 32],
    max: f32,
    is_range: i32,
    on_grid_init: bool,
    refit_all: bool,
    l: &mut [i8; 32],
) -> f32 {
    let mut best = 0.0f32;
    let mut scale = max / (2 * KMAXQ - 1) as f32;
    let mut on_grid = [on_grid_init; 8];
    let mut laux = [0i8; 32];
    for is in -is_range..=is_range {
        let id = ((2 * KMAXQ - 1) as f32 + is as f32 * 0.2) / max;
        let this_scale = 1.0 / id;
        let mut on_grid_aux = [true; 8];
        for k in 0..8 {
            let r = 4 * k..4 * k + 4;
            levels4(id, &xval[r.clone()], &mut laux[r.clone()]);
            if lat.index(&laux[r.clone()]).is_none() {
                on_grid_aux[k] = false;
                lat.best_neighbour(&mut laux[r.clone()], &xval[r.clone()], &waux[r], this_scale);
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, &laux);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
            on_grid = on_grid_aux;
        }
    }
    if on_grid.contains(&false) && scale > 0.0 {
        let id = 1.0 / scale;
        for k in 0..8 {
            if on_grid[k] && !refit_all {
                continue;
            }
            let r = 4 * k..4 * k + 4;
            let mut lk = [0i8; 4];
            levels4(id, &xval[r.clone()], &mut lk);
            let gi = lat.snap(&mut lk, &xval[r.clone()], &waux[r.clone()], scale);
            for (li, &g) in l[r].iter_mut().zip(&lat.levels[gi][..4]) {
                *li = g as i8;
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// `quantize_row_iq3_xxs_impl(256, ...)` for one super-block.
fn quantize_iq3_xxs_block(xbl: &[f32], qwbl: Option<&[f32]>) -> BlockIQ3_XXS {
    let lat = iq3xxs_lattice();
    let mut q3 = [0u8; 96];
    let mut sas = [0u32; 8];
    let mut scales = [0.0f32; 8];
    let (mut weight, mut waux, mut xval) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
    let mut block_signs = [0u8; 4];
    let mut max_scale = 0.0f32;
    let sigma2 = sigma2x2(xbl);
    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        block_weights(
            xb,
            qwbl.map(|w| &w[32 * ib..32 * ib + 32]),
            sigma2,
            &mut weight,
            &mut waux,
        );
        even_signs(xb, &weight, &mut xval, &mut block_signs);
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        let mut l = [0i8; 32];
        if max < GROUP_MAX_EPS_IQ3_XXS {
            scales[ib] = 0.0;
            continue;
        }
        let mut scale = search_block(lat, &xval, &weight, &waux, max, 15, true, false, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in block_signs.iter_mut() {
                *s = !*s & 127;
            }
        }
        for k in 0..8 {
            q3[8 * ib + k] = lat.index(&l[4 * k..4 * k + 4]).unwrap_or(0) as u8;
        }
        sas[ib] = u32::from(block_signs[0])
            | (u32::from(block_signs[1]) << 7)
            | (u32::from(block_signs[2]) << 14)
            | (u32::from(block_signs[3]) << 21);
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    let mut y = BlockIQ3_XXS {
        d: f16::ZERO,
        qs: [0; 96],
    };
    if max_scale == 0.0 {
        return y;
    }
    let d = max_scale / 31.0;
    y.d = f16::from_f32(d * 1.0125);
    let id = 1.0 / d;
    for ib in 0..8 {
        let lv = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        sas[ib] |= (lv as u32) << 28;
    }
    y.qs[..64].copy_from_slice(&q3[..64]);
    for (ib, s) in sas.iter().enumerate() {
        y.qs[64 + 4 * ib..68 + 4 * ib].copy_from_slice(&s.to_le_bytes());
    }
    y
}

/// `quantize_row_iq3_s_impl(32, ...)` for one super-block, including llama.cpp's quirk that a
/// skipped (all-zero) block does not advance the `qs`/`signs` write position.
fn quantize_iq3_s_block(xbl: &[f32], qwbl: Option<&[f32]>) -> BlockIQ3_S {
    let lat = iq3s_lattice();
    let mut y = BlockIQ3_S {
        d: f16::ZERO,
        qs: [0; 64],
        qh: [0; 8],
        signs: [0; 32],
        scales: [0; 4],
    };
    let mut scales = [0.0f32; 8];
    let (mut weight, mut waux, mut xval) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
    let mut block_signs = [0u8; 4];
    let mut max_scale = 0.0f32;
    let (mut qs_pos, mut signs_pos) = (0usize, 0usize);
    let sigma2 = sigma2x2(xbl);
    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        block_weights(
            xb,
            qwbl.map(|w| &w[32 * ib..32 * ib + 32]),
            sigma2,
            &mut weight,
            &mut waux,
        );
        for (k, bs) in block_signs.iter_mut().enumerate() {
            let mut s = 0u8;
            for i in 0..8 {
                let v = xb[8 * k + i];
                if v >= 0.0 {
                    xval[8 * k + i] = v;
                } else {
                    xval[8 * k + i] = -v;
                    s |= 1 << i;
                }
            }
            *bs = s;
        }
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        let mut l = [0i8; 32];
        if max == 0.0 {
            scales[ib] = 0.0;
            continue;
        }
        let mut scale = search_block(lat, &xval, &weight, &waux, max, 9, false, true, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in block_signs.iter_mut() {
                *s = !*s;
            }
        }
        for k in 0..8 {
            let gi = lat.index(&l[4 * k..4 * k + 4]).unwrap_or(0);
            y.qs[qs_pos + k] = (gi & 255) as u8;
            y.qh[ib] |= ((gi >> 8) as u8) << k;
        }
        qs_pos += 8;
        y.signs[signs_pos..signs_pos + 4].copy_from_slice(&block_signs);
        signs_pos += 4;
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        return y;
    }
    let d = max_scale / 31.0;
    y.d = f16::from_f32(d * 1.033);
    let id = 1.0 / d;
    for ib in (0..8).step_by(2) {
        let l1 = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        let l2 = nearest_int(0.5 * (id * scales[ib + 1] - 1.0)).clamp(0, 15) as u8;
        y.scales[ib / 2] = l1 | (l2 << 4);
    }
    y
}

impl Quantize for BlockIQ3_XXS {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq3_xxs_block(xb, qw);
        }
    }
}

impl Quantize for BlockIQ3_S {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq3_s_block(xb, qw);
        }
    }
}
