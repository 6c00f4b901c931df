//! llama.cpp's IQ1_S and IQ1_M quantizers (`quantize_row_iq1_s_impl`,
//! `quantize_row_iq1_m_impl`): an exhaustive search of the two boundaries that split a block's
//! sorted values into the levels -1, 0, +1 (shifted by ±`IQ1S_DELTA`), then a snap of each group
//! of 8 to the 2048-entry grid. IQ1_S needs an imatrix (weights `x^2` are not allowed by
//! llama.cpp); IQ1_M falls back to `x^2`.

use std::sync::OnceLock;

use half::f16;

use super::iq1::{BlockIQ1_M, BlockIQ1_S, IQ1S_DELTA};
use super::iq2_quant::ones;
use super::iq_grids::IQ1S_GRID;
use super::lattice::Lattice;
use super::search::nearest_int;
use super::{Quantize, QK_K};

const GROUP_MAX_EPS_IQ1_S: f32 = 1e-12;
const GROUP_MAX_EPS_IQ1_M: f32 = 1e-7;
const X_P: [f32; 3] = [-1.0 + IQ1S_DELTA, IQ1S_DELTA, 1.0 + IQ1S_DELTA];
const X_M: [f32; 3] = [-1.0 - IQ1S_DELTA, -IQ1S_DELTA, 1.0 - IQ1S_DELTA];

fn iq1_lattice() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&IQ1S_GRID, 8, 2, &[0xff, 0x00, 0x01], 43692, 3))
}

/// Indices of `xb` sorted by value, stable (ties keep index order), with ggml's
/// `iq1_sort_helper` comparison (`a < b`, `a > b`, else equal).
fn sorted_indices<const N: usize>(xb: &[f32]) -> [usize; N] {
    let mut idx: [usize; N] = std::array::from_fn(|i| i);
    for i in 1..N {
        let mut j = i;
        while j > 0 && xb[idx[j]] < xb[idx[j - 1]] {
            idx.swap(j, j - 1);
            j -= 1;
        }
    }
    idx
}

/// `iq1_find_best_neighbour2`: the neighbour of the (off-grid) key of `l` with the least
/// weighted error when its levels map to `xx` at `scale`; writes its levels to `l`.
fn best_neighbour2(
    lat: &Lattice,
    l: &mut [i8],
    xval: &[f32],
    weight: &[f32],
    scale: f32,
    xx: &[f32; 3],
) -> usize {
    let mut best_score = f32::MAX;
    let mut best = None;
    for &j in lat.neighbours_of(l) {
        let pg = &lat.levels[usize::from(j)];
        let mut d2 = 0.0f32;
        for i in 0..8 {
            let q = xx[usize::from(pg[i])];
            let diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if d2 < best_score {
            best_score = d2;
            best = Some(usize::from(j));
        }
    }
    // ggml falls back to the whole grid (only reachable with NaN input); take the first entry.
    let best = best.unwrap_or(0);
    for (li, &g) in l.iter_mut().zip(&lat.levels[best][..8]) {
        *li = g as i8;
    }
    best
}

/// Assigns levels 0/1/2 by the split `(i1, i2)` of the sorted order.
fn split_levels<const N: usize>(idx: &[usize; N], i1: usize, i2: usize) -> [i8; N] {
    let mut l = [0i8; N];
    for (j, &i) in idx.iter().enumerate() {
        l[i] = if j < i1 {
            0
        } else if j < i2 {
            1
        } else {
            2
        };
    }
    l
}

/// `quantize_row_iq1_s_impl` for one super-block.
fn quantize_iq1_s_block(xbl: &[f32], qwbl: &[f32]) -> BlockIQ1_S {
    let lat = iq1_lattice();
    let mut y = BlockIQ1_S {
        d: f16::ZERO,
        qs: [0; 32],
        qh: [0; 8],
    };
    let mut scales = [0.0f32; 8];
    let mut shifts = [1i8; 8];
    let mut weight = [0.0f32; 32];
    let mut max_scale = 0.0f32;
    let mut sumx2 = 0.0f32;
    for &v in &xbl[..QK_K] {
        sumx2 += v * v;
    }
    let sigma2 = 2.0 * sumx2 / QK_K as f32;
    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let qw = &qwbl[32 * ib..32 * ib + 32];
        for i in 0..32 {
            weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
        }
        let mut max = xb[0].abs();
        for &v in &xb[1..] {
            max = if max > v.abs() { max } else { v.abs() };
        }
        if max < GROUP_MAX_EPS_IQ1_S {
            scales[ib] = 0.0;
            shifts[ib] = 1;
            continue;
        }
        let idx = sorted_indices::<32>(xb);
        let (mut sumx, mut sumw) = ([0.0f32; 33], [0.0f32; 33]);
        for j in 0..32 {
            let i = idx[j];
            sumx[j + 1] = sumx[j] + weight[i] * xb[i];
            sumw[j + 1] = sumw[j] + weight[i];
        }
        let mut best_score = -f32::MAX;
        let mut scale = max;
        let (mut besti1, mut besti2, mut best_shift) = (usize::MAX, usize::MAX, 0i8);
        for i1 in 0..=32 {
            for i2 in i1..=32 {
                for (xs, shift) in [(&X_P, 1i8), (&X_M, -1i8)] {
                    let sumqx = (sumx[i1] - sumx[0]) * xs[0]
                        + (sumx[i2] - sumx[i1]) * xs[1]
                        + (sumx[32] - sumx[i2]) * xs[2];
                    let sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0]
                        + (sumw[i2] - sumw[i1]) * xs[1] * xs[1]
                        + (sumw[32] - sumw[i2]) * xs[2] * xs[2];
                    if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                        scale = sumqx / sumq2;
                        best_score = scale * sumqx;
                        (besti1, besti2, best_shift) = (i1, i2, shift);
                    }
                }
            }
        }
        if besti1 == usize::MAX || best_shift == 0 {
            scales[ib] = 0.0;
            shifts[ib] = 1;
            continue;
        }
        let mut l = split_levels(&idx, besti1, besti2);
        if scale < 0.0 {
            for v in l.iter_mut() {
                *v = 2 - *v;
            }
            scale = -scale;
            best_shift = -best_shift;
        }
        let xx = if best_shift == 1 { &X_P } else { &X_M };
        let mut index = [0usize; 4];
        let mut all_on_grid = true;
        for k in 0..4 {
            let r = 8 * k..8 * k + 8;
            index[k] = match lat.index(&l[r.clone()]) {
                Some(i) => i,
                None => {
                    all_on_grid = false;
                    best_neighbour2(
                        lat,
                        &mut l[r.clone()],
                        &xb[r.clone()],
                        &weight[r],
                        scale,
                        xx,
                    )
                }
            };
        }
        if !all_on_grid {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for k in 0..4 {
                let pg = &lat.levels[index[k]];
                for j in 0..8 {
                    let w = weight[8 * k + j];
                    let q = xx[usize::from(pg[j])];
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if sumqx > 0.0 && sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        let mut h = 0u16;
        for k in 0..4 {
            y.qs[4 * ib + k] = (index[k] & 255) as u8;
            h |= ((index[k] >> 8) as u16) << (3 * k);
        }
        y.qh[ib] = h;
        scales[ib] = scale;
        shifts[ib] = best_shift;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        return y;
    }
    let d = max_scale / 15.0;
    y.d = f16::from_f32(d * 1.125);
    let id = 1.0 / d;
    for ib in 0..8 {
        let mut lv = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7) as u16;
        if shifts[ib] == -1 {
            lv |= 8;
        }
        y.qh[ib] |= lv << 12;
    }
    y
}

/// IQ1_M weights of one 16-value block: imatrix-based or `x^2`.
fn iq1m_weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, weight: &mut [f32; 16]) {
    for i in 0..16 {
        weight[i] = match qw {
            Some(qw) => qw[i] * (sigma2 + xb[i] * xb[i]).sqrt(),
            None => xb[i] * xb[i],
        };
    }
}

/// The level values of group `k` (0 or 1) of a 16-value IQ1_M block with sign choice `shift`.
fn iq1m_xx(k: usize, shift: i8) -> &'static [f32; 3] {
    let plus = if k == 0 { shift < 2 } else { shift % 2 == 0 };
    if plus {
        &X_P
    } else {
        &X_M
    }
}

/// `quantize_row_iq1_m_impl` for one super-block.
fn quantize_iq1_m_block(xbl: &[f32], qwbl: Option<&[f32]>) -> BlockIQ1_M {
    const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];
    let lat = iq1_lattice();
    let mut y = BlockIQ1_M {
        qs: [0; 32],
        qh: [0; 16],
        scales: [0; 8],
    };
    let mut scales = [0.0f32; 16];
    let mut shifts = [0i8; 16];
    let mut weight = [0.0f32; 16];
    let mut max_scale = 0.0f32;
    let mut sumx2 = 0.0f32;
    for &v in &xbl[..QK_K] {
        sumx2 += v * v;
    }
    let sigma2 = 2.0 * sumx2 / QK_K as f32;
    let cp1 = X_P[0] * X_P[0] - X_P[1] * X_P[1];
    let cp2 = X_P[1] * X_P[1] - X_P[2] * X_P[2];
    let cm1 = X_M[0] * X_M[0] - X_M[1] * X_M[1];
    let cm2 = X_M[1] * X_M[1] - X_M[2] * X_M[2];
    let (p2, m2) = (X_P[2], X_M[2]);
    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        iq1m_weights(
            xb,
            qwbl.map(|w| &w[16 * ib..16 * ib + 16]),
            sigma2,
            &mut weight,
        );
        let mut max = xb[0].abs();
        for &v in &xb[1..] {
            max = if max > v.abs() { max } else { v.abs() };
        }
        if max < GROUP_MAX_EPS_IQ1_M {
            scales[ib] = 0.0;
            shifts[ib] = 0;
            continue;
        }
        let idx = sorted_indices::<16>(xb);
        let (mut px, mut pw) = ([[0.0f32; 17]; 2], [[0.0f32; 17]; 2]);
        for j in 0..16 {
            let i = idx[j];
            let h = usize::from(i >= 8);
            px[h][j + 1] = px[h][j] + weight[i] * xb[i];
            px[1 - h][j + 1] = px[1 - h][j];
            pw[h][j + 1] = pw[h][j] + weight[i];
            pw[1 - h][j + 1] = pw[1 - h][j];
        }
        let txs = [px[0][16], px[1][16]];
        let tws = [pw[0][16], pw[1][16]];
        let mut best_score = -f32::MAX;
        let mut scale = max;
        let (mut besti1, mut besti2, mut best_k) = (usize::MAX, usize::MAX, -1i8);
        for i1 in 0..=16 {
            for i2 in i1..=16 {
                let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) =
                    ([0f32; 2], [0f32; 2], [0f32; 2], [0f32; 2]);
                for h in 0..2 {
                    let sx = px[h][i1] + px[h][i2];
                    qx_p[h] = txs[h] * p2 - sx;
                    qx_m[h] = txs[h] * m2 - sx;
                    q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                    q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
                }
                let sumqx = [
                    qx_p[0] + qx_p[1],
                    qx_p[0] + qx_m[1],
                    qx_m[0] + qx_p[1],
                    qx_m[0] + qx_m[1],
                ];
                let sumq2 = [
                    q2_p[0] + q2_p[1],
                    q2_p[0] + q2_m[1],
                    q2_m[0] + q2_p[1],
                    q2_m[0] + q2_m[1],
                ];
                for k in 0..4 {
                    if sumq2[k] > 0.0 && sumqx[k] * sumqx[k] > best_score * sumq2[k] {
                        scale = sumqx[k] / sumq2[k];
                        best_score = scale * sumqx[k];
                        (besti1, besti2, best_k) = (i1, i2, k as i8);
                    }
                }
            }
        }
        if besti1 == usize::MAX || best_k < 0 {
            scales[ib] = 0.0;
            shifts[ib] = 0;
            continue;
        }
        let mut l = split_levels(&idx, besti1, besti2);
        if scale < 0.0 {
            for v in l.iter_mut() {
                *v = 2 - *v;
            }
            scale = -scale;
            best_k = 3 - best_k;
        }
        let mut index = [0usize; 2];
        let mut all_on_grid = true;
        for k in 0..2 {
            let xx = iq1m_xx(k, best_k);
            let r = 8 * k..8 * k + 8;
            index[k] = match lat.index(&l[r.clone()]) {
                Some(i) => i,
                None => {
                    all_on_grid = false;
                    best_neighbour2(
                        lat,
                        &mut l[r.clone()],
                        &xb[r.clone()],
                        &weight[r],
                        scale,
                        xx,
                    )
                }
            };
        }
        if !all_on_grid {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for k in 0..2 {
                let xx = iq1m_xx(k, best_k);
                let pg = &lat.levels[index[k]];
                for j in 0..8 {
                    let w = weight[8 * k + j];
                    let q = xx[usize::from(pg[j])];
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if sumqx > 0.0 && sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        y.qs[2 * ib] = (index[0] & 255) as u8;
        y.qs[2 * ib + 1] = (index[1] & 255) as u8;
        y.qh[ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
        scales[ib] = scale;
        shifts[ib] = best_k;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        return y;
    }
    let mut sc = [0u16; 4];
    let mut d = max_scale / 15.0;
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let lv = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
        sc[ib / 4] |= (lv as u16) << (3 * (ib % 4));
        y.qh[ib] |= MASKS[shifts[ib] as usize & 3];
        let xb = &xbl[16 * ib..16 * ib + 16];
        iq1m_weights(
            xb,
            qwbl.map(|w| &w[16 * ib..16 * ib + 16]),
            sigma2,
            &mut weight,
        );
        for k in 0..2 {
            let xx = iq1m_xx(k, shifts[ib]);
            let gi =
                usize::from(y.qs[2 * ib + k]) | ((usize::from(y.qh[ib]) << (8 - 4 * k)) & 0x700);
            let pg = &lat.levels[gi];
            for j in 0..8 {
                let w = weight[8 * k + j];
                let q = xx[usize::from(pg[j])] * (2 * lv + 1) as f32;
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
    }
    if sumq2 > 0.0 {
        d = sumqx / sumq2;
    }
    let s = f16::from_f32(d * 1.1125).to_bits();
    sc[0] |= (s & 0x000f) << 12;
    sc[1] |= (s & 0x00f0) << 8;
    sc[2] |= (s & 0x0f00) << 4;
    sc[3] |= s & 0xf000;
    for (k, v) in sc.iter().enumerate() {
        y.scales[2 * k..2 * k + 2].copy_from_slice(&v.to_le_bytes());
    }
    y
}

impl Quantize for BlockIQ1_S {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map_or(ones(), |w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq1_s_block(xb, qw);
        }
    }
}

impl Quantize for BlockIQ1_M {
    fn quantize_row(x: &[f32], out: &mut [Self], imatrix: Option<&[f32]>) {
        for (i, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
            let qw = imatrix.map(|w| &w[QK_K * i..QK_K * (i + 1)]);
            *b = quantize_iq1_m_block(xb, qw);
        }
    }
}
