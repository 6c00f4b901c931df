//! Data-parallel helpers over the persistent [`ThreadPool`] of `slm_tensor`. Work is split into
//! contiguous chunks of an output buffer, one per thread, so no two threads write the same
//! memory (each chunk is handed out through its own uncontended mutex: no `unsafe` here).

use std::sync::{Arc, Mutex, PoisonError};

use slm_tensor::pool::ThreadPool;

/// The thread pool a model computes with (cheap to clone).
#[derive(Clone)]
pub struct Threads {
    pool: Arc<ThreadPool>,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Threads({})", self.n())
    }
}

impl Threads {
    pub fn new(n: usize) -> Threads {
        Threads {
            pool: Arc::new(ThreadPool::new(n.max(1))),
        }
    }

    pub fn n(&self) -> usize {
        self.pool.n_threads()
    }

    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// Split `out` into at most `n` runs of whole units of `unit` elements and call
    /// `f(first_unit, run)` for each run on its own thread.
    pub fn for_units<T, F>(&self, out: &mut [T], unit: usize, f: F)
    where
        T: Send,
        F: Fn(usize, &mut [T]) + Sync,
    {
        let unit = unit.max(1);
        let n_units = out.len() / unit;
        if n_units == 0 {
            return;
        }
        let n_chunks = self.n().min(n_units);
        if n_chunks == 1 {
            f(0, out);
            return;
        }
        let per = n_units.div_ceil(n_chunks);
        let mut chunks: Vec<Mutex<Option<(usize, &mut [T])>>> = Vec::with_capacity(n_chunks);
        for (i, c) in out.chunks_mut(per * unit).enumerate() {
            chunks.push(Mutex::new(Some((i * per, c))));
        }
        self.pool.run(|i, _| {
            let job = chunks
                .get(i)
                .and_then(|m| m.lock().unwrap_or_else(PoisonError::into_inner).take());
            if let Some((first, c)) = job {
                f(first, c);
            }
        });
    }
}
