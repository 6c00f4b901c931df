//! Data-parallel helpers over the persistent [`ThreadPool`] of `slm_tensor`. Work is split into
//! contiguous chunks of an output buffer, one per thread, so no two threads write the same
//! memory (each chunk is handed out through its own uncontended mutex: no `unsafe` here).

use std::sync::{Arc, Mutex, PoisonError};

use slm_tensor::pool::ThreadPool;

/// One thread's share: index of its first unit and its run of the output.
type Slot<'a, T> = Mutex<Option<(usize, &'a mut [T])>>;

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
        let per = n_units.div_ceil(self.n().min(n_units).max(1)).max(1);
        let slots = out
            .chunks_mut(per * unit)
            .enumerate()
            .map(|(i, c)| Mutex::new(Some((i * per, c))))
            .collect();
        self.run_slots(slots, f);
    }

    /// Like [`Threads::for_units`], but the split balances `cost[u]` (one entry per unit)
    /// instead of unit counts: causal attention rows grow with position.
    pub fn for_units_weighted<T, F>(&self, out: &mut [T], unit: usize, cost: &[usize], f: F)
    where
        T: Send,
        F: Fn(usize, &mut [T]) + Sync,
    {
        let unit = unit.max(1);
        let n_units = (out.len() / unit).min(cost.len());
        let n_chunks = self.n().min(n_units);
        let total: usize = cost.iter().take(n_units).map(|&c| c.max(1)).sum();
        let mut slots: Vec<Slot<'_, T>> = Vec::with_capacity(n_chunks);
        let (mut rest, mut first, mut acc, mut k) = (out, 0usize, 0usize, 1usize);
        for (u, &c) in cost.iter().enumerate().take(n_units) {
            acc += c.max(1);
            let last = u + 1 == n_units;
            if last || (k < n_chunks && acc * n_chunks >= total * k) {
                let take = if last {
                    rest.len()
                } else {
                    (u + 1 - first) * unit
                };
                let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(take);
                rest = tail;
                slots.push(Mutex::new(Some((first, chunk))));
                first = u + 1;
                k += 1;
            }
        }
        self.run_slots(slots, f);
    }

    /// Run `f` on every slot, one slot per pool thread (inline when there is one slot).
    fn run_slots<'a, T, F>(&self, slots: Vec<Slot<'a, T>>, f: F)
    where
        T: Send,
        F: Fn(usize, &mut [T]) + Sync,
    {
        fn take<'a, T>(m: &Slot<'a, T>) -> Option<(usize, &'a mut [T])> {
            m.lock().unwrap_or_else(PoisonError::into_inner).take()
        }
        if slots.len() <= 1 {
            if let Some((first, c)) = slots.first().and_then(take) {
                f(first, c);
            }
            return;
        }
        self.pool.run(|i, _| {
            if let Some((first, c)) = slots.get(i).and_then(take) {
                f(first, c);
            }
        });
    }
}
