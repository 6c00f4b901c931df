//! Row-wise RMSNorm over the pool: rows are independent, so big batches split by rows;
//! small ones (decode) stay on the calling thread, where a pool dispatch would cost more than
//! the work.

use slm_tensor::ops;

use super::par::Threads;

/// Below this many floats the work stays on one thread.
const PAR_MIN: usize = 16 * 1024;

/// Normalize every row of `x` (n_rows, w.len()) in place with weight `w`.
pub fn rms_norm_rows(threads: &Threads, x: &mut [f32], w: &[f32], eps: f32) {
    if x.len() < PAR_MIN {
        ops::rms_norm_rows(x, w, eps);
    } else {
        threads.for_units(x, w.len(), |_, rows| ops::rms_norm_rows(rows, w, eps));
    }
}
