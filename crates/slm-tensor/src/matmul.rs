//! Quantized matrix multiply: `y = x · Wᵀ` for a weight matrix in any ggml type that has a dot
//! kernel (see `slm_quant::kernels`), on a [`ThreadPool`].
//!
//! ```ignore
//! use slm_tensor::{matmul::{matmul, QMatrix}, pool::ThreadPool};
//! let pool = ThreadPool::new(2);
//! // W: (rows = out features, cols = in features), ggml layout, each row contiguous.
//! let w = QMatrix::new(GgmlType::Q4_K, rows, cols, bytes)?;
//! matmul(&pool, &w, &x /* (n_tokens, cols) */, &mut y /* (n_tokens, rows) */, n_tokens)?;
//! ```
//!
//! - [`matmul_many`] runs several matrices over the same input (Q/K/V, FFN gate/up) with one
//!   activation quantization and one pool call.
//! - Activations are converted once per call to the weight type's activation format
//!   (Q8_0 / Q8_1 / Q8_K; F32 weights use `x` as is), in parallel over tokens.
//! - Work is split over chunks of rows (decode: about 32 per thread, prefill: about 8), taken
//!   dynamically by the threads in guided runs of consecutive chunks ([`ThreadPool::run_ranges`]:
//!   long contiguous streams first, small grabs at the end), so a thread slowed by other load
//!   does not hold up the call.
//! - Decode (`n_tokens == 1`) streams each weight row once, each thread writing its rows'
//!   results in place (`ThreadPool::run_ranges_mut`, no per-chunk bookkeeping). Prefill walks each chunk in tiles
//!   of rows that fit in L2 (48 KiB of weights) and runs every token over a tile before moving
//!   on, so weights are read from memory once per call; where the level has one, a 4-token
//!   kernel (`Kernels::vec_dot4`) unpacks each weight block once for 4 tokens.
//! - Results equal the scalar reference kernels up to float summation order (integer block sums
//!   are exact); see `tests/matmul.rs` for the tolerances against an f64 reference.
//! - The kernel level is the process-wide one (`SLM_SIMD`); [`matmul_with`] takes a table
//!   explicitly (tests run every level).
//!
//! Errors are returned for shapes that do not fit (`MatmulError`); nothing panics on bad input.

use crate::pool::ThreadPool;
use slm_quant::kernels::{f32_as_bytes, ActType, Kernels, VecDot4Fn, VecDotFn};
use slm_quant::GgmlType;
use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};

/// Shape and type errors of [`matmul`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatmulError {
    #[error("no dot kernel for weight type {0}")]
    Unsupported(GgmlType),
    #[error("{ty}: {cols} columns are not a whole number of {block}-element blocks")]
    Cols {
        ty: GgmlType,
        cols: usize,
        block: usize,
    },
    #[error("{ty} matrix ({rows}, {cols}) needs {expected} bytes, got {actual}")]
    DataLength {
        ty: GgmlType,
        rows: usize,
        cols: usize,
        expected: usize,
        actual: usize,
    },
    #[error("tensor {name} has dims {dims:?}; a matrix needs 2 (ggml order: cols, rows)")]
    NotMatrix { name: String, dims: Vec<u64> },
    #[error("matmul_many: {matrices} matrices but {outputs} outputs")]
    Outputs { matrices: usize, outputs: usize },
    #[error("matmul_many: matrices must share cols and activation format: {first:?} vs {other:?}")]
    Mismatch {
        first: (GgmlType, usize),
        other: (GgmlType, usize),
    },
    #[error("{what} has {actual} values, expected {expected} ({n_tokens} tokens)")]
    Buffer {
        what: &'static str,
        n_tokens: usize,
        expected: usize,
        actual: usize,
    },
}

/// A weight matrix in ggml layout: `rows` (output features) rows of `cols` (input features)
/// values each, every row `ty.row_bytes(cols)` contiguous bytes.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// (rows, row_bytes(cols)) bytes.
    pub data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// A checked matrix view (type has a kernel, whole blocks, exact byte length).
    pub fn new(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<Self, MatmulError> {
        let m = QMatrix {
            ty,
            rows,
            cols,
            data,
        };
        m.row_bytes()?;
        Ok(m)
    }

    /// The matrix view of a GGUF tensor (`dims = [cols, rows]` in ggml order; trailing dims of
    /// 1 allowed) and its data, checked like [`QMatrix::new`].
    pub fn from_tensor(info: &slm_gguf::TensorInfo, data: &'a [u8]) -> Result<Self, MatmulError> {
        let not_matrix = || MatmulError::NotMatrix {
            name: info.name.clone(),
            dims: info.dims.clone(),
        };
        if info.dims.len() < 2 || info.dims[2..].iter().any(|&d| d != 1) {
            return Err(not_matrix());
        }
        let cols = usize::try_from(info.dims[0]).map_err(|_| not_matrix())?;
        let rows = usize::try_from(info.dims[1]).map_err(|_| not_matrix())?;
        QMatrix::new(info.ty, rows, cols, data)
    }

    /// Bytes of one row, after checking the whole matrix.
    pub fn row_bytes(&self) -> Result<usize, MatmulError> {
        let ty = self.ty;
        let act = ActType::for_weight(ty).ok_or(MatmulError::Unsupported(ty))?;
        let block = (ty.block_size() as usize).max(act.block_size());
        let rb = ty
            .row_bytes(self.cols as u64)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|_| self.cols.is_multiple_of(block))
            .ok_or(MatmulError::Cols {
                ty,
                cols: self.cols,
                block,
            })?;
        let expected = rb.saturating_mul(self.rows);
        if self.data.len() != expected {
            return Err(MatmulError::DataLength {
                ty,
                rows: self.rows,
                cols: self.cols,
                expected,
                actual: self.data.len(),
            });
        }
        Ok(rb)
    }

    /// The bytes of row `r`.
    fn row(&self, r: usize, rb: usize) -> &'a [u8] {
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// `y[t][r] = sum_c x[t][c] * W[r][c]` for `t < n_tokens`, with the process-wide kernels.
/// `x` is (n_tokens, cols) row-major, `y` is (n_tokens, rows) row-major.
pub fn matmul(
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    y: &mut [f32],
    n_tokens: usize,
) -> Result<(), MatmulError> {
    matmul_with(Kernels::get(), pool, w, x, y, n_tokens)
}

/// Weight bytes a prefill tile aims for (fits in L2 next to the activations).
const TILE_BYTES: usize = 48 * 1024;

thread_local! {
    /// Per-thread scratch for quantized activations (reused across calls).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Per-thread scratch for the decode outputs of several matrices.
    static OUT_SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// [`matmul`] with an explicit kernel table.
pub fn matmul_with(
    kernels: &Kernels,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    y: &mut [f32],
    n_tokens: usize,
) -> Result<(), MatmulError> {
    matmul_many_with(
        kernels,
        pool,
        std::slice::from_ref(w),
        x,
        &mut [y],
        n_tokens,
    )
}

/// Several products of the same input: `ys[i] = x · ws[i]ᵀ` (e.g. Q/K/V or FFN gate/up).
/// The activations are quantized once and all matrices share one pool call, which saves a
/// synchronisation per matrix and balances small matrices across threads. Every matrix must
/// have the same `cols` and activation format (e.g. Q4_K with Q6_K, Q5_0 with Q8_0).
pub fn matmul_many(
    pool: &ThreadPool,
    ws: &[QMatrix],
    x: &[f32],
    ys: &mut [&mut [f32]],
    n_tokens: usize,
) -> Result<(), MatmulError> {
    matmul_many_with(Kernels::get(), pool, ws, x, ys, n_tokens)
}

/// [`matmul_many`] with an explicit kernel table.
pub fn matmul_many_with(
    kernels: &Kernels,
    pool: &ThreadPool,
    ws: &[QMatrix],
    x: &[f32],
    ys: &mut [&mut [f32]],
    n_tokens: usize,
) -> Result<(), MatmulError> {
    let Some(first) = ws.first() else {
        return Ok(());
    };
    let cols = first.cols;
    let act = ActType::for_weight(first.ty).ok_or(MatmulError::Unsupported(first.ty))?;
    check_len("x", n_tokens, n_tokens.saturating_mul(cols), x.len())?;
    if ys.len() != ws.len() {
        return Err(MatmulError::Outputs {
            matrices: ws.len(),
            outputs: ys.len(),
        });
    }
    let mut mats = Vec::with_capacity(ws.len());
    for (w, y) in ws.iter().zip(ys.iter()) {
        let rb = w.row_bytes()?;
        if w.cols != cols || ActType::for_weight(w.ty) != Some(act) {
            return Err(MatmulError::Mismatch {
                first: (first.ty, cols),
                other: (w.ty, w.cols),
            });
        }
        check_len("y", n_tokens, n_tokens.saturating_mul(w.rows), y.len())?;
        let dot = kernels
            .vec_dot(w.ty)
            .ok_or(MatmulError::Unsupported(w.ty))?;
        mats.push(Prepared {
            w: *w,
            rb,
            dot,
            dot4: kernels.vec_dot4(w.ty),
        });
    }
    if n_tokens == 0 {
        return Ok(());
    }
    if cols == 0 {
        ys.iter_mut().for_each(|y| y.fill(0.0));
        return Ok(());
    }
    let arb = act.compute_bytes(cols);
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let acts: &[u8] = if act == ActType::F32 {
            f32_as_bytes(x)
        } else {
            scratch.clear();
            scratch.resize(n_tokens * arb, 0);
            quantize_activations(kernels, act, pool, x, &mut scratch, cols, arb, n_tokens);
            &scratch[..]
        };
        compute(pool, &mats, acts, arb, ys, n_tokens);
    });
    Ok(())
}

/// A checked matrix with its kernels.
struct Prepared<'a> {
    w: QMatrix<'a>,
    rb: usize,
    dot: VecDotFn,
    dot4: Option<VecDot4Fn>,
}

fn check_len(
    what: &'static str,
    n_tokens: usize,
    expected: usize,
    actual: usize,
) -> Result<(), MatmulError> {
    if expected != actual {
        return Err(MatmulError::Buffer {
            what,
            n_tokens,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Quantizes the (n_tokens, cols) activations into `out` (n_tokens, arb) bytes, tokens split
/// over the threads when there are several.
#[allow(clippy::too_many_arguments)]
fn quantize_activations(
    kernels: &Kernels,
    act: ActType,
    pool: &ThreadPool,
    x: &[f32],
    out: &mut [u8],
    cols: usize,
    arb: usize,
    n_tokens: usize,
) {
    let q = kernels.quantize(act);
    if n_tokens < 4 || pool.n_threads() == 1 {
        for (xr, o) in x.chunks_exact(cols).zip(out.chunks_exact_mut(arb)) {
            q(xr, o);
        }
        return;
    }
    let per = n_tokens.div_ceil(4 * pool.n_threads());
    let parts: Vec<Mutex<(&[f32], &mut [u8])>> = x
        .chunks(per * cols)
        .zip(out.chunks_mut(per * arb))
        .map(Mutex::new)
        .collect();
    pool.run_chunks(parts.len(), |i| {
        if let Some(p) = parts.get(i) {
            let mut g = p.lock().unwrap_or_else(PoisonError::into_inner);
            let (xs, os) = &mut *g;
            for (xr, o) in xs.chunks_exact(cols).zip(os.chunks_exact_mut(arb)) {
                q(xr, o);
            }
        }
    });
}

/// One chunk of rows of matrix `m`: its output pieces `pieces[t]` = y_m[t][r0..r0 + len].
struct Chunk<'p, 'y> {
    m: usize,
    r0: usize,
    pieces: &'p mut [&'y mut [f32]],
}

fn compute(
    pool: &ThreadPool,
    mats: &[Prepared],
    acts: &[u8],
    arb: usize,
    ys: &mut [&mut [f32]],
    n_tokens: usize,
) {
    if n_tokens == 1 {
        return decode(pool, mats, &acts[..arb], ys);
    }
    let cols = mats[0].w.cols;
    let nt = pool.n_threads();
    // Prefill chunks: a multiple of 4 rows, about 8 per thread, each tiled below, handed out
    // in guided runs of consecutive chunks.
    let total_rows: usize = mats.iter().map(|p| p.w.rows).sum();
    let target = if nt == 1 { mats.len() } else { nt * 8 };
    let chunk_rows = total_rows
        .div_ceil(target.max(1))
        .next_multiple_of(4)
        .max(4);
    // (matrix, first row) of every chunk, and their output pieces chunk-major.
    let mut heads: Vec<(usize, usize)> = Vec::new();
    let mut pieces: Vec<&mut [f32]> = Vec::new();
    for (m, (p, y)) in mats.iter().zip(ys.iter_mut()).enumerate() {
        let rows = p.w.rows;
        if rows == 0 {
            continue;
        }
        let n_chunks = rows.div_ceil(chunk_rows);
        let first = pieces.len();
        let mut per_token: Vec<std::slice::ChunksMut<'_, f32>> = y
            .chunks_exact_mut(rows)
            .map(|yt| yt.chunks_mut(chunk_rows))
            .collect();
        for c in 0..n_chunks {
            heads.push((m, c * chunk_rows));
            for it in per_token.iter_mut() {
                if let Some(piece) = it.next() {
                    pieces.push(piece);
                }
            }
        }
        debug_assert_eq!(pieces.len() - first, n_chunks * n_tokens);
    }
    let chunks: Vec<Mutex<Chunk>> = heads
        .iter()
        .zip(pieces.chunks_mut(n_tokens))
        .map(|(&(m, r0), pieces)| Mutex::new(Chunk { m, r0, pieces }))
        .collect();
    pool.run_ranges(chunks.len(), |range| {
        for chunk in &chunks[range] {
            let mut g = chunk.lock().unwrap_or_else(PoisonError::into_inner);
            run_chunk(&mut g, mats, acts, arb, cols, n_tokens);
        }
    });
}

/// Decode (one token): the rows of all matrices, concatenated, in chunks of a multiple of 4
/// rows (about 32 per thread) handed out in guided runs, each thread writing its results in
/// place ([`ThreadPool::run_ranges_mut`]: no lock or bookkeeping per chunk, which matters for
/// small matrices). Several matrices go through one scratch row, copied out at the end.
fn decode(pool: &ThreadPool, mats: &[Prepared], a: &[u8], ys: &mut [&mut [f32]]) {
    let cols = mats[0].w.cols;
    let nt = pool.n_threads();
    let total_rows: usize = mats.iter().map(|p| p.w.rows).sum();
    let target = if nt == 1 { 1 } else { nt * 32 };
    let chunk_rows = total_rows.div_ceil(target).next_multiple_of(4).max(4);
    // Rows r0.. of the concatenation into `out`, matrix by matrix.
    let rows_into = |r0: usize, out: &mut [f32]| {
        let (mut g, mut out, mut m0) = (r0, out, 0usize);
        for p in mats {
            let m1 = m0 + p.w.rows;
            if g < m1 && !out.is_empty() {
                let n = (m1 - g).min(out.len());
                let (head, tail) = out.split_at_mut(n);
                for (k, y) in head.iter_mut().enumerate() {
                    *y = (p.dot)(cols, p.w.row(g - m0 + k, p.rb), a);
                }
                g += n;
                out = tail;
            }
            m0 = m1;
        }
    };
    if let [y] = ys {
        pool.run_ranges_mut(y, chunk_rows, |r, out| rows_into(r.start * chunk_rows, out));
        return;
    }
    OUT_SCRATCH.with(|cell| {
        let mut tmp = cell.borrow_mut();
        tmp.clear();
        tmp.resize(total_rows, 0.0);
        pool.run_ranges_mut(&mut tmp, chunk_rows, |r, out| {
            rows_into(r.start * chunk_rows, out)
        });
        let mut off = 0;
        for y in ys.iter_mut() {
            let n = y.len();
            y.copy_from_slice(&tmp[off..off + n]);
            off += n;
        }
    });
}

/// All products of one chunk of rows with every token (prefill).
fn run_chunk(
    ch: &mut Chunk,
    mats: &[Prepared],
    acts: &[u8],
    arb: usize,
    cols: usize,
    n_tokens: usize,
) {
    let p = &mats[ch.m];
    let (w, rb, dot) = (&p.w, p.rb, p.dot);
    let n_rows = ch.pieces.first().map_or(0, |x| x.len());
    let tile_rows = (TILE_BYTES / rb.max(1)).clamp(1, n_rows.max(1));
    let mut r0 = 0;
    while r0 < n_rows {
        let r1 = (r0 + tile_rows).min(n_rows);
        let mut t = 0;
        if let Some(dot4) = p.dot4 {
            let mut out = [0f32; 4];
            while t + 4 <= n_tokens {
                let a = &acts[t * arb..(t + 4) * arb];
                for k in r0..r1 {
                    dot4(cols, w.row(ch.r0 + k, rb), a, arb, &mut out);
                    for (j, &v) in out.iter().enumerate() {
                        ch.pieces[t + j][k] = v;
                    }
                }
                t += 4;
            }
        }
        for (tt, piece) in ch.pieces.iter_mut().enumerate().skip(t) {
            let a = &acts[tt * arb..(tt + 1) * arb];
            for k in r0..r1 {
                piece[k] = dot(cols, w.row(ch.r0 + k, rb), a);
            }
        }
        r0 = r1;
    }
}
