//! llama.cpp's IQ2_XXS and IQ2_XS quantizers (`quantize_row_iq2_xxs_impl`,
//! `quantize_row_iq2_xs_impl`) and the lattice tables they search (`iq2xs_init_impl`): the map
//! from a group's 8 two-bit levels to its grid entry, and for points off the grid the list of
//! nearest grid entries. Both need importance weights; llama.cpp refuses to run them without an
//! imatrix, and [`super::quantize_rows`] reports [`crate::QuantError::ImatrixRequired`].

use std::sync::OnceLock;

use half::f16;

use super::iq2::{BlockIQ2_S, BlockIQ2_XS, BlockIQ2_XXS};
use super::iq_grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID};
use super::lattice::Lattice;
use super::search::{make_qp_quants, nearest_int, GROUP_MAX_EPS};
use super::{Quantize, QK_K};

fn iq2xxs_lattice() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&IQ2XXS_GRID, 8, 2, &[0x08, 0x19, 0x2b], 43692, 2))
}

fn iq2xs_lattice() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&IQ2XS_GRID, 8, 2, &[0x08, 0x19, 0x2b], 43692, 2))
}

fn iq2s_lattice() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&IQ2S_GRID, 8, 2, &[0x08, 0x19, 0x2b], 43692, 1))
}

/// Makes each group of 8 have an even number of negatives (flipping the least important value)
/// and returns `xval = |x|` (with that one value negated) and the 7-bit sign codes.
pub(crate) fn even_signs(xb: &[f32], weight: &[f32], xval: &mut [f32], signs: &mut [u8]) {
    for (k, sk) in signs.iter_mut().enumerate() {
        let mut nflip = 0;
        let mut s = 0u8;
        for i in 0..8 {
            let v = xb[8 * k + i];
            if v >= 0.0 {
                xval[8 * k + i] = v;
            } else {
                xval[8 * k + i] = -v;
                nflip += 1;
                s |= 1 << i;
            }
        }
        if nflip % 2 == 1 {
            let mut imin = 0;
            let mut min = weight[8 * k] * xb[8 * k] * xb[8 * k];
            for i in 1..8 {
                let ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if ax < min {
                    min = ax;
                    imin = i;
                }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s ^= 1 << imin;
        }
        *sk = s & 127;
    }
}

/// `sum w x q`, `sum w q q` with `q = 2 l + 1`.
pub(crate) fn sums(weight: &[f32], xval: &[f32], l: &[i8]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for i in 0..weight.len() {
        let w = weight[i];
        let q = (2 * i32::from(l[i]) + 1) as f32;
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// Levels `clamp(nearest_int(0.5 (id x - 1)), 0, 2)` of 8 values.
fn levels8(id: f32, xval: &[f32], l: &mut [i8]) {
    for i in 0..8 {
        l[i] = nearest_int(0.5 * (id * xval[i] - 1.0)).clamp(0, 2) as i8;
    }
}

const KMAXQ: i32 = 3;

/// Per-block weights `qw * sqrt(sigma2 + x^2)` and their square roots.
pub(crate) fn weights(xb: &[f32], qw: &[f32], sigma2: f32, weight: &mut [f32], waux: &mut [f32]) {
    for i in 0..weight.len() {
        weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
    }
    for i in 0..weight.len() {
        waux[i] = weight[i].sqrt();
    }
}

fn sigma2_256(x: &[f32]) -> f32 {
    let mut sumx2 = 0.0f32;
    for &v in &x[..QK_K] {
        sumx2 += v * v;
    }
    sumx2 / QK_K as f32
}

/// `quantize_row_iq2_xxs_impl` for one super-block.
fn quantize_iq2_xxs_block(xbl: &[f32], qwbl: &[f32]) -> BlockIQ2_XXS {
    let lat = iq2xxs_lattice();
    let mut q2 = [0u32; 16];
    let mut scales = [0.0f32; 8];
    let (mut weight, mut waux, mut xval) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
    let mut laux = [0i8; 32];
    let mut block_signs = [0u8; 4];
    let mut max_scale = 0.0f32;
    let sigma2 = sigma2_256(xbl);
    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        weights(
            xb,
            &qwbl[32 * ib..32 * ib + 32],
            sigma2,
            &mut weight,
            &mut waux,
        );
        even_signs(xb, &weight, &mut xval, &mut block_signs);
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut lu = [0u8; 32];
        let mut scale = make_qp_quants(KMAXQ + 1, &xval, &mut lu, &weight);
        let mut l = lu.map(|v| v as i8);
        let eff_max = scale * KMAXQ as f32;
        if eff_max <= 0.0 {
            scales[ib] = 0.0;
            continue;
        }
        let mut best = 0.0f32;
        for is in -6i32..=6 {
            let id = ((2 * KMAXQ - 1) as f32 + is as f32 * 0.1) / eff_max;
            let this_scale = 1.0 / id;
            for k in 0..4 {
                let r = 8 * k..8 * k + 8;
                levels8(id, &xval[r.clone()], &mut laux[r.clone()]);
                lat.snap(&mut laux[r.clone()], &xval[r.clone()], &waux[r], this_scale);
            }
            let (sumqx, sumq2) = sums(&weight, &xval, &laux);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                l = laux;
            }
        }
        if scale > 0.0 {
            let id = 1.0 / scale;
            for k in 0..4 {
                let r = 8 * k..8 * k + 8;
                let mut lk = [0i8; 8];
                levels8(id, &xval[r.clone()], &mut lk);
                let gi = lat.snap(&mut lk, &xval[r.clone()], &waux[r.clone()], scale);
                for (li, &g) in l[r].iter_mut().zip(&lat.levels[gi][..8]) {
                    *li = g as i8;
                }
            }
            let (sumqx, sumq2) = sums(&weight, &xval, &l);
            if sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        if scale < 0.0 {
            scale = -scale;
            for s in block_signs.iter_mut() {
                *s = !*s & 127;
            }
        }
        for k in 0..4 {
            // llama.cpp aborts if a point is off the grid here; it cannot happen for finite input.
            let gi = lat.index(&l[8 * k..8 * k + 8]).unwrap_or(0) as u32;
            q2[2 * ib] |= gi << (8 * k);
            q2[2 * ib + 1] |= u32::from(block_signs[k]) << (7 * k);
        }
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    let mut y = BlockIQ2_XXS {
        d: f16::ZERO,
        qs: [0; 32],
    };
    if max_scale == 0.0 {
        return y;
    }
    let d = max_scale / 31.0;
    y.d = f16::from_f32(d);
    let id = 1.0 / d;
    for ib in 0..8 {
        let lv = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        q2[2 * ib + 1] |= (lv as u32) << 28;
    }
    for (i, w) in q2.iter().enumerate() {
        y.qs[2 * i] = (*w & 0xFFFF) as u16;
        y.qs[2 * i + 1] = (*w >> 16) as u16;
    }
    y
}

/// The scale search of one 16-value block of IQ2_XS / IQ2_S: 19 trial scales, snapping each
/// group of 8 to the grid, then a refit of the groups that were off the grid. Returns the
/// scale; `l` gets the levels.
fn search16(
    lat: &Lattice,
    xval: &[f32; 16],
    weight: &[f32; 16],
    waux: &[f32; 16],
    max: f32,
    l: &mut [i8; 16],
) -> f32 {
    let mut laux = [0i8; 16];
    let mut best = 0.0f32;
    let mut scale = max / (2 * KMAXQ - 1) as f32;
    let mut on_grid = [true; 2];
    for is in -9i32..=9 {
        let id = ((2 * KMAXQ - 1) as f32 + is as f32 * 0.1) / max;
        let this_scale = 1.0 / id;
        let mut on_grid_aux = [true; 2];
        for k in 0..2 {
            let r = 8 * k..8 * k + 8;
            levels8(id, &xval[r.clone()], &mut laux[r.clone()]);
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
        for k in 0..2 {
            if on_grid[k] {
                continue;
            }
            let r = 8 * k..8 * k + 8;
            levels8(id, &xval[r.clone()], &mut l[r.clone()]);
            lat.snap(&mut l[r.clone()], &xval[r.clone()], &waux[r], scale);
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// `quantize_row_iq2_xs_impl` for one super-block.
fn quantize_iq2_xs_block(xbl: &[f32], qwbl: &[f32]) -> BlockIQ2_XS {
    let lat = iq2xs_lattice();
    let mut y = BlockIQ2_XS {
        d: f16::ZERO,
        qs: [0; 32],
        scales: [0; 8],
    };
    let mut q2 = [0u16; 32];
    let mut scales = [0.0f32; 16];
    let (mut weight, mut waux, mut xval) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
    let mut block_signs = [0u8; 2];
    let mut max_scale = 0.0f32;
    let sigma2 = sigma2_256(xbl);
    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        weights(
            xb,
            &qwbl[16 * ib..16 * ib + 16],
            sigma2,
            &mut weight,
            &mut waux,
        );
        even_signs(xb, &weight, &mut xval, &mut block_signs);
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        let mut l = [0i8; 16];
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut scale = search16(lat, &xval, &weight, &waux, max, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in block_signs.iter_mut() {
                *s = !*s & 127;
            }
        }
        for k in 0..2 {
            let gi = lat.index(&l[8 * k..8 * k + 8]).unwrap_or(0) as u16;
            q2[2 * ib + k] = gi | (u16::from(block_signs[k]) << 9);
        }
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        return y;
    }
    let d = max_scale / 31.0;
    y.d = f16::from_f32(d);
    let id = 1.0 / d;
    for ib in 0..16 {
        let lv = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        if ib % 2 == 0 {
            y.scales[ib / 2] = lv;
        } else {
            y.scales[ib / 2] |= lv << 4;
        }
    }
    y.qs = q2;
    y
}

/// ggml's `GROUP_MAX_EPS_IQ2_S`.
const GROUP_MAX_EPS_IQ2_S: f32 = 1e-8;

/// `quantize_row_iq2_s_impl` for one super-block (without imatrix: weights
/// `0.25 sigma2 + x^2`).
fn quantize_iq2_s_block(xbl: &[f32], qwbl: Option<&[f32]>) -> BlockIQ2_S {
    let lat = iq2s_lattice();
    let mut y = BlockIQ2_S {
        d: f16::ZERO,
        qs: [0; 64],
        qh: [0; 8],
        scales: [0; 8],
    };
    let mut scales = [0.0f32; 16];
    let (mut weight, mut waux, mut xval) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
    let mut block_signs = [0u8; 2];
    let mut max_scale = 0.0f32;
    let sigma2 = 2.0 * sigma2_256(xbl);
    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        match qwbl {
            Some(qw) => weights(
                xb,
                &qw[16 * ib..16 * ib + 16],
                sigma2,
                &mut weight,
                &mut waux,
            ),
            None => {
                for i in 0..16 {
                    weight[i] = 0.25 * sigma2 + xb[i] * xb[i];
                }
                for i in 0..16 {
                    waux[i] = weight[i].sqrt();
                }
            }
        }
        for (k, bs) in block_signs.iter_mut().enumerate() {
            let mut sgn = 0u8;
            for i in 0..8 {
                let v = xb[8 * k + i];
                if v >= 0.0 {
                    xval[8 * k + i] = v;
                } else {
                    xval[8 * k + i] = -v;
                    sgn |= 1 << i;
                }
            }
            *bs = sgn;
        }
        let mut max = xval[0];
        for &v in &xval[1..] {
            max = if max > v { max } else { v };
        }
        let mut l = [0i8; 16];
        if max < GROUP_MAX_EPS_IQ2_S {
            scales[ib] = 0.0;
            continue;
        }
        let mut scale = search16(lat, &xval, &weight, &waux, max, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for sgn in block_signs.iter_mut() {
                *sgn = !*sgn;
            }
        }
        for k in 0..2 {
            let gi = lat.index(&l[8 * k..8 * k + 8]).unwrap_or(0);
            let i8 = 2 * ib + k;
            y.qs[i8] = (gi & 255) as u8;
            y.qh[i8 / 4] |= ((gi >> 8) as u8) << (2 * (i8 % 4));
            y.qs[QK_K / 8 + i8] = block_signs[k];
        }
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        return y;
    }
    let d = max_scale / 31.0;
    y.d = f16::from_f32(d * 0.9875);
    let id = 1.0 / d;
    for ib in 0..16 {
        let lv = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        if ib % 2 == 0 {
            y.scales[ib / 2] = lv;
        } else {
            y.scales[ib / 2] |= lv << 4;
        }
    }
    y
}

impl Quantize for BlockIQ2_S {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq2_s_block(xb, qw);
        }
    }
}

/// Without an imatrix (llama.cpp refuses) all weights are 1.
pub(crate) fn ones() -> &'static [f32] {
    &[1.0; QK_K]
}

impl Quantize for BlockIQ2_XXS {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map_or(ones(), |w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq2_xxs_block(xb, qw);
        }
    }
}

impl Quantize for BlockIQ2_XS {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map_or(ones(), |w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq2_xs_block(xb, qw);
        }
    }
}
