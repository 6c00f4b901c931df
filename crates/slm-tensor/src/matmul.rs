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
//! - Activations are converted once per call to the weight type's activation format
//!   (Q8_0 / Q8_1 / Q8_K; F32 weights use `x` as is), in parallel over tokens.
//! - Work is split over chunks of rows (about 8 per thread), taken dynamically by the threads
//!   ([`ThreadPool::run_chunks`]), so a thread slowed by other load does not hold up the call.
//! - Decode (`n_tokens == 1`) streams each weight row once. Prefill walks each chunk in tiles
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
use slm_quant::kernels::{f32_as_bytes, ActType, Kernels};
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
    let rb = w.row_bytes()?;
    let (rows, cols) = (w.rows, w.cols);
    check_len("x", n_tokens, n_tokens.saturating_mul(cols), x.len())?;
    check_len("y", n_tokens, n_tokens.saturating_mul(rows), y.len())?;
    if n_tokens == 0 || rows == 0 {
        return Ok(());
    }
    if cols == 0 {
        y.fill(0.0);
        return Ok(());
    }
    let act = ActType::for_weight(w.ty).ok_or(MatmulError::Unsupported(w.ty))?;
    let dot = kernels
        .vec_dot(w.ty)
        .ok_or(MatmulError::Unsupported(w.ty))?;
    let arb = act.row_bytes(cols);

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
        let dot4 = kernels.vec_dot4(w.ty);
        compute(pool, w, rb, acts, arb, y, n_tokens, dot, dot4);
    });
    Ok(())
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

/// The output pieces of one chunk of rows: `pieces[t]` = y[t][r0..r1].
struct Chunk<'y> {
    r0: usize,
    pieces: Vec<&'y mut [f32]>,
}

#[allow(clippy::too_many_arguments)]
fn compute(
    pool: &ThreadPool,
    w: &QMatrix,
    rb: usize,
    acts: &[u8],
    arb: usize,
    y: &mut [f32],
    n_tokens: usize,
    dot: slm_quant::kernels::VecDotFn,
    dot4: Option<slm_quant::kernels::VecDot4Fn>,
) {
    let (rows, cols) = (w.rows, w.cols);
    let nt = pool.n_threads();
    // Chunks: several per thread for dynamic balance; rows per chunk a multiple of 4.
    let target = if nt == 1 { 1 } else { nt * 8 };
    let chunk_rows = rows.div_ceil(target).next_multiple_of(4).max(4);
    let n_chunks = rows.div_ceil(chunk_rows);
    let mut chunks: Vec<Chunk> = (0..n_chunks)
        .map(|c| Chunk {
            r0: c * chunk_rows,
            pieces: Vec::with_capacity(n_tokens),
        })
        .collect();
    for yt in y.chunks_exact_mut(rows) {
        let mut rest = yt;
        for ch in chunks.iter_mut() {
            let take = chunk_rows.min(rest.len());
            let (head, tail) = rest.split_at_mut(take);
            ch.pieces.push(head);
            rest = tail;
        }
    }
    let chunks: Vec<Mutex<Chunk>> = chunks.into_iter().map(Mutex::new).collect();
    let tile_rows = (TILE_BYTES / rb.max(1)).clamp(1, chunk_rows);
    pool.run_chunks(chunks.len(), |c| {
        let Some(chunk) = chunks.get(c) else { return };
        let mut g = chunk.lock().unwrap_or_else(PoisonError::into_inner);
        let ch = &mut *g;
        let n_rows = ch.pieces.first().map_or(0, |p| p.len());
        if n_tokens == 1 {
            let a = &acts[..arb];
            for (k, o) in ch.pieces[0].iter_mut().enumerate() {
                *o = dot(cols, w.row(ch.r0 + k, rb), a);
            }
            return;
        }
        let mut r0 = 0;
        while r0 < n_rows {
            let r1 = (r0 + tile_rows).min(n_rows);
            let mut t = 0;
            if let Some(dot4) = dot4 {
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
    });
}
