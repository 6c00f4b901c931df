//! A persistent thread pool for data-parallel kernels (matmul, attention over heads).
//!
//! `ThreadPool::new(n)` starts `n - 1` worker threads; the calling thread is worker 0 of every
//! [`ThreadPool::run`]. `run(f)` calls `f(i, n)` once on each of the `n` threads and returns when
//! all have finished (so `f` may borrow the caller's stack). Idle workers spin for a short time
//! (so back-to-back calls, as in decoding, wake them without a syscall) and then park on a
//! condition variable (so an idle engine does not burn CPU). A panic in `f` on any thread is
//! re-raised on the caller after every thread is done; the pool stays usable.
//!
//! [`ThreadPool::run_chunks`] is the work-sharing form: `f(chunk)` for every chunk index, each
//! taken by whichever thread asks first (an atomic counter). A worker that wakes up after the
//! caller has finished the last chunk does not join at all, so on a loaded machine a call never
//! waits for a thread that was not scheduled (it only waits for threads running a chunk).
//! [`ThreadPool::run_ranges`] is the same with guided self-scheduling: each grab takes a range
//! of consecutive items, 1/(2n) of those left (at least one), so every thread streams long
//! contiguous runs first and the grabs shrink towards the end for balance.
//! [`ThreadPool::run_ranges_mut`] also hands each range its own part of an output slice.
//!
//! None is re-entrant: calling the same pool from inside `f` deadlocks. Calls from different
//! threads are serialized.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker (or a caller waiting for workers) spins before parking.
const SPIN: Duration = Duration::from_micros(100);

type Job = dyn Fn(usize, usize) + Sync;

/// The base of a slice that `run_ranges_mut` splits into disjoint parts for its threads.
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: only used to rebuild disjoint sub-slices of a `&mut [T]` (with `T: Send`) that
// outlives the pool call; see `run_ranges_mut`.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// A type-erased pointer to the current job; only dereferenced while `run` is blocked.
#[derive(Clone, Copy)]
struct JobPtr(*const Job);

/// The published job: its generation, pointer, and whether late workers may skip it.
#[derive(Clone, Copy)]
struct Slot {
    generation: u64,
    job: JobPtr,
    skippable: bool,
}

/// `join` word of a skippable job: generation (low 32 bits) << 32 | CLOSED | active workers.
const CLOSED: u64 = 1 << 31;
const ACTIVE: u64 = CLOSED - 1;
// SAFETY: the pointee is `Sync` (shared calls from several threads are allowed) and `run` keeps
// it alive until every worker has finished with it.
unsafe impl Send for JobPtr {}

struct Shared {
    n_threads: usize,
    /// Bumped (under `park`) once per job; workers run a job when they see a new value.
    generation: AtomicU64,
    job: Mutex<Option<Slot>>,
    /// Workers that have not finished the current (non-skippable) job.
    pending: AtomicUsize,
    /// Join state of the current skippable job (see `CLOSED`).
    join: AtomicU64,
    shutdown: AtomicBool,
    /// Workers parked on `wake` (changed only under `park`), so `publish` skips the futex
    /// syscall of `notify_all` while every worker is still spinning.
    sleepers: AtomicUsize,
    /// Whether the caller is parked on `done` (changed only under `done_lock`), so a finishing
    /// worker skips `notify_one` while the caller spins.
    caller_waiting: AtomicBool,
    park: Mutex<()>,
    wake: Condvar,
    done_lock: Mutex<()>,
    done: Condvar,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Jobs run outside every lock, so a poisoned lock holds no broken state.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Persistent worker threads; see the module header.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    run_lock: Mutex<()>,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in all (the caller plus `n_threads - 1` workers);
    /// 0 is taken as 1.
    pub fn new(n_threads: usize) -> Self {
        let n = n_threads.max(1);
        let shared = Arc::new(Shared {
            n_threads: n,
            generation: AtomicU64::new(0),
            job: Mutex::new(None),
            pending: AtomicUsize::new(0),
            join: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            caller_waiting: AtomicBool::new(false),
            park: Mutex::new(()),
            wake: Condvar::new(),
            done_lock: Mutex::new(()),
            done: Condvar::new(),
            panic: Mutex::new(None),
        });
        let workers = (1..n)
            .map(|idx| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("slm-pool-{idx}"))
                    .spawn(move || worker(&s, idx))
                    .unwrap_or_else(|e| panic!("cannot spawn pool thread {idx}: {e}"))
            })
            .collect();
        ThreadPool {
            shared,
            workers,
            run_lock: Mutex::new(()),
        }
    }

    /// A pool with one thread per available CPU.
    pub fn with_available_parallelism() -> Self {
        ThreadPool::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// Calls `f(thread_index, n_threads)` on every thread of the pool (index 0 on the caller)
    /// and returns when all calls have returned. Panics (after all threads finish) if any call
    /// panicked.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, f: F) {
        let n = self.shared.n_threads;
        if n == 1 {
            f(0, 1);
            return;
        }
        let _serial = lock(&self.run_lock);
        let s = &*self.shared;
        s.pending.store(n - 1, Ordering::Release);
        let job: &(dyn Fn(usize, usize) + Sync + '_) = &f;
        self.publish(job, false);
        let mine = catch_unwind(AssertUnwindSafe(|| f(0, n)));
        wait_until(s, || s.pending.load(Ordering::Acquire) == 0);
        self.finish(mine);
    }

    /// Calls `f(chunk)` for every `chunk < n_chunks`, spread over the threads that are free
    /// (the caller always takes part); returns when every chunk is done. Panics (after all
    /// running chunks finish) if any call panicked.
    pub fn run_chunks<F: Fn(usize) + Sync>(&self, n_chunks: usize, f: F) {
        let n = self.shared.n_threads;
        if n == 1 || n_chunks <= 1 {
            (0..n_chunks).for_each(f);
            return;
        }
        let next = AtomicUsize::new(0);
        self.run_shared(&|_: usize, _: usize| loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= n_chunks {
                break;
            }
            f(c);
        });
    }

    /// Calls `f(range)` over ranges that together cover `0..n_items` exactly once, handed out
    /// by guided self-scheduling (see the module header); otherwise as [`ThreadPool::run_chunks`].
    pub fn run_ranges<F: Fn(std::ops::Range<usize>) + Sync>(&self, n_items: usize, f: F) {
        let n = self.shared.n_threads;
        if n == 1 || n_items <= 1 {
            if n_items > 0 {
                f(0..n_items);
            }
            return;
        }
        let next = AtomicUsize::new(0);
        let grab = || {
            let mut cur = next.load(Ordering::Relaxed);
            loop {
                if cur >= n_items {
                    return None;
                }
                let take = ((n_items - cur) / (2 * n)).max(1);
                match next.compare_exchange_weak(
                    cur,
                    cur + take,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(cur..cur + take),
                    Err(v) => cur = v,
                }
            }
        };
        self.run_shared(&|_: usize, _: usize| {
            while let Some(r) = grab() {
                f(r);
            }
        });
    }

    /// [`ThreadPool::run_ranges`] over the items of `out` in units of `unit` elements (item `i`
    /// is `out[i * unit..]`, the last one possibly shorter): `f(range, part)` gets the items'
    /// range and exactly their elements, so threads write their results in place with no lock
    /// or copy per item.
    pub fn run_ranges_mut<T, F>(&self, out: &mut [T], unit: usize, f: F)
    where
        T: Send,
        F: Fn(std::ops::Range<usize>, &mut [T]) + Sync,
    {
        let unit = unit.max(1);
        let len = out.len();
        let n_items = len.div_ceil(unit);
        let base = SendPtr(out.as_mut_ptr());
        self.run_ranges(n_items, |r| {
            let start = (r.start * unit).min(len);
            let end = (r.end * unit).min(len);
            // SAFETY: `run_ranges` hands out every item exactly once, so the element ranges
            // given to concurrent calls are disjoint; they lie within `out` (clamped to `len`),
            // which is borrowed mutably for the whole call, and `run_ranges` returns only after
            // every call has finished.
            let part =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(r, part);
        });
    }

    /// Runs `body` on the caller and on every worker that wakes before the caller is done with
    /// it (a skippable job), and waits for the workers that joined.
    fn run_shared(&self, body: &(dyn Fn(usize, usize) + Sync + '_)) {
        let n = self.shared.n_threads;
        let _serial = lock(&self.run_lock);
        let s = &*self.shared;
        self.publish(body, true);
        let mine = catch_unwind(AssertUnwindSafe(|| body(0, n)));
        // Close the job to late workers, then wait for those that joined.
        s.join.fetch_or(CLOSED, Ordering::AcqRel);
        wait_until(s, || s.join.load(Ordering::Acquire) & ACTIVE == 0);
        self.finish(mine);
    }

    /// Publishes `job` as a new generation and wakes the workers.
    fn publish(&self, job: &(dyn Fn(usize, usize) + Sync + '_), skippable: bool) {
        let s = &*self.shared;
        // SAFETY: erases the lifetime of `job`; `run`/`run_chunks` do not return before every
        // worker that may call it is done (pending == 0, or the job closed with no active
        // joiner), and a worker only calls a job of the generation it joined.
        let ptr: *const Job = unsafe {
            std::mem::transmute::<&(dyn Fn(usize, usize) + Sync + '_), &'static Job>(job)
        };
        let _g = lock(&s.park);
        let generation = s.generation.load(Ordering::Acquire) + 1;
        s.join
            .store((generation & 0xffff_ffff) << 32, Ordering::Release);
        *lock(&s.job) = Some(Slot {
            generation,
            job: JobPtr(ptr),
            skippable,
        });
        s.generation.store(generation, Ordering::Release);
        // A worker registers as a sleeper under `park` before re-checking the generation, so
        // one that is not counted here will see the new generation without a wake-up.
        if s.sleepers.load(Ordering::Relaxed) > 0 {
            s.wake.notify_all();
        }
    }

    /// Clears the job and re-raises a panic of any thread.
    fn finish(&self, mine: std::thread::Result<()>) {
        let s = &*self.shared;
        *lock(&s.job) = None;
        if let Some(p) = lock(&s.panic).take() {
            resume_unwind(p);
        }
        if let Err(p) = mine {
            resume_unwind(p);
        }
    }
}

/// Spins briefly, then sleeps on `done` until `cond` holds (workers signal after each exit).
fn wait_until(s: &Shared, cond: impl Fn() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            let mut g = lock(&s.done_lock);
            s.caller_waiting.store(true, Ordering::Relaxed);
            while !cond() {
                g = s.done.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
            s.caller_waiting.store(false, Ordering::Relaxed);
            return;
        }
        std::hint::spin_loop();
    }
}

fn worker(s: &Shared, idx: usize) {
    let mut seen = 0u64;
    loop {
        // Wait for a new generation (or shutdown): spin, then park.
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            let g = s.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
                break;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                let mut guard = lock(&s.park);
                s.sleepers.fetch_add(1, Ordering::Relaxed);
                while s.generation.load(Ordering::Acquire) == seen
                    && !s.shutdown.load(Ordering::Acquire)
                {
                    guard = s.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
                }
                s.sleepers.fetch_sub(1, Ordering::Relaxed);
                drop(guard);
                continue;
            }
            std::hint::spin_loop();
        }
        let Some(slot) = *lock(&s.job) else { continue };
        // A newer job than the generation seen may already be published: take that one (an
        // older skippable job was closed; an older `run` job cannot be pending, since `run`
        // waits for every worker before returning).
        seen = slot.generation;
        if slot.skippable {
            // Join unless the caller has closed the job (or it is another generation's).
            let tag = (slot.generation & 0xffff_ffff) << 32;
            let mut cur = s.join.load(Ordering::Acquire);
            let joined = loop {
                if cur & !(CLOSED | ACTIVE) != tag || cur & CLOSED != 0 {
                    break false;
                }
                match s.join.compare_exchange_weak(
                    cur,
                    cur + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break true,
                    Err(v) => cur = v,
                }
            };
            if !joined {
                continue;
            }
            call(s, slot.job, idx);
            if s.join.fetch_sub(1, Ordering::AcqRel) & ACTIVE == 1 {
                signal_done(s);
            }
        } else {
            call(s, slot.job, idx);
            if s.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                signal_done(s);
            }
        }
    }
}

/// Wakes the caller if it is parked in [`wait_until`]. The lock orders this against the
/// caller's re-check of its condition (made under the same lock after setting the flag).
fn signal_done(s: &Shared) {
    let _g = lock(&s.done_lock);
    if s.caller_waiting.load(Ordering::Relaxed) {
        s.done.notify_one();
    }
}

/// Runs a job on worker `idx`, recording a panic for the caller.
fn call(s: &Shared, job: JobPtr, idx: usize) {
    // SAFETY: the caller published this pointer and keeps the closure alive until this worker
    // has signalled completion (see `ThreadPool::publish`).
    let f = unsafe { &*job.0 };
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(idx, s.n_threads))) {
        lock(&s.panic).get_or_insert(e);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _g = lock(&self.shared.park);
            self.shared.shutdown.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.shared.n_threads)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_once_per_call() {
        for n in 1..=4 {
            let pool = ThreadPool::new(n);
            for _ in 0..200 {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run(|i, nt| {
                    assert_eq!(nt, n);
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn borrows_the_callers_stack_and_survives_parking() {
        let pool = ThreadPool::new(3);
        let data: Vec<u64> = (0..3000).collect();
        let total = AtomicU64::new(0);
        for round in 0..3 {
            if round == 1 {
                // Long enough for the workers to park.
                std::thread::sleep(Duration::from_millis(20));
            }
            pool.run(|i, n| {
                let s: u64 = data.iter().skip(i).step_by(n).sum();
                total.fetch_add(s, Ordering::Relaxed);
            });
        }
        assert_eq!(total.load(Ordering::Relaxed), 3 * 2999 * 3000 / 2);
    }

    #[test]
    fn run_chunks_covers_every_chunk_once() {
        for n in 1..=3 {
            let pool = ThreadPool::new(n);
            for n_chunks in [0usize, 1, 2, 5, 64] {
                for _ in 0..50 {
                    let hits: Vec<AtomicUsize> =
                        (0..n_chunks).map(|_| AtomicUsize::new(0)).collect();
                    pool.run_chunks(n_chunks, |c| {
                        hits[c].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                }
                // Interleave with `run` so generations of both kinds alternate.
                let count = AtomicUsize::new(0);
                pool.run(|_, _| {
                    count.fetch_add(1, Ordering::Relaxed);
                });
                assert_eq!(count.load(Ordering::Relaxed), n);
            }
        }
    }

    #[test]
    fn concurrent_callers_are_serialized() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ThreadPool>();
        let pool = ThreadPool::new(3);
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for i in 0..300 {
                        if i % 2 == 0 {
                            pool.run_chunks(7, |_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        } else {
                            pool.run(|_, _| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 3 * (150 * 7 + 150 * 3));
    }

    #[test]
    fn run_ranges_covers_every_item_once() {
        for n in 1..=3 {
            let pool = ThreadPool::new(n);
            for n_items in [0usize, 1, 2, 5, 64, 1000] {
                for _ in 0..50 {
                    let hits: Vec<AtomicUsize> =
                        (0..n_items).map(|_| AtomicUsize::new(0)).collect();
                    let grabs = AtomicUsize::new(0);
                    pool.run_ranges(n_items, |r| {
                        assert!(!r.is_empty() && r.end <= n_items);
                        grabs.fetch_add(1, Ordering::Relaxed);
                        r.for_each(|i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                    });
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                    // Guided: far fewer grabs than items once there are many.
                    if n > 1 && n_items == 1000 {
                        assert!(grabs.load(Ordering::Relaxed) < 100);
                    }
                }
            }
        }
    }

    #[test]
    fn run_ranges_mut_hands_each_element_to_its_items_call_once() {
        for n in 1..=3 {
            let pool = ThreadPool::new(n);
            for (len, unit) in [
                (0usize, 4usize),
                (1, 4),
                (10, 4),
                (640, 12),
                (1000, 1),
                (7, 100),
            ] {
                let mut out = vec![usize::MAX; len];
                pool.run_ranges_mut(&mut out, unit, |r, part| {
                    assert_eq!(part.len(), (r.end * unit).min(len) - r.start * unit);
                    for (k, v) in part.iter_mut().enumerate() {
                        assert_eq!(*v, usize::MAX, "element written twice");
                        *v = r.start * unit + k;
                    }
                });
                assert!(
                    out.iter().enumerate().all(|(i, &v)| v == i),
                    "len {len} unit {unit}"
                );
            }
        }
    }

    #[test]
    fn a_panicking_chunk_is_reraised() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run_chunks(8, |c| {
                if c == 5 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run_chunks(8, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn a_panicking_job_is_reraised_and_the_pool_stays_usable() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(|i, _| {
                if i == 1 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
