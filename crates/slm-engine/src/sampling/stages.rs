//! The stages of the sampling chain and the candidate list they work on.
//!
//! Semantics follow llama.cpp's `llama-sampling.cpp` (penalties, top-k, top-p, min-p, temp),
//! with one deliberate difference: every ordering is total (logit descending, then id
//! ascending), so equal logits resolve to the lowest id and results never depend on the sort
//! algorithm.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};

/// One candidate token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
}

/// The candidate list the stages filter.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    /// (n_candidates,)
    pub data: Vec<Candidate>,
    /// `data` is in [`order`] (logit descending, id ascending).
    pub sorted: bool,
    /// `data[i].id == i` for every i (the full vocabulary in id order).
    pub identity: bool,
}

/// The chain's total order: higher logit first, then lower id.
pub fn order(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

impl Candidates {
    /// Resets to the whole vocabulary of `logits` (n_vocab,) in id order. NaN becomes -inf.
    pub fn fill(&mut self, logits: &[f32]) {
        self.data.clear();
        self.data
            .extend(logits.iter().enumerate().map(|(i, &l)| Candidate {
                id: i as u32,
                logit: if l.is_nan() { f32::NEG_INFINITY } else { l },
            }));
        self.sorted = false;
        self.identity = true;
    }

    /// A candidate list from explicit entries (tests).
    pub fn from_logits(logits: &[f32]) -> Self {
        let mut c = Candidates::default();
        c.fill(logits);
        c
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Sorts all candidates in [`order`] if they are not already.
    pub fn sort(&mut self) {
        if !self.sorted {
            self.data.sort_unstable_by(order);
            self.sorted = true;
            self.identity = false;
        }
    }

    /// Keeps the first `n` candidates in [`order`], sorted; O(len + n log n).
    pub fn keep_top(&mut self, n: usize) {
        if n == 0 {
            self.data.clear();
        } else if n < self.data.len() {
            if self.sorted {
                self.data.truncate(n);
            } else if n.saturating_mul(64) <= self.data.len() {
                self.data = top_n_scan(&self.data, n);
            } else {
                self.data.select_nth_unstable_by(n - 1, order);
                self.data.truncate(n);
                self.data.sort_unstable_by(order);
            }
        } else {
            self.data.sort_unstable_by(order);
        }
        self.sorted = true;
        self.identity = false;
    }

    /// Softmax probabilities of the current candidates, in their current order, (len,).
    pub fn probs(&self) -> Vec<f64> {
        let max = self
            .data
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            // All -inf (or empty): uniform.
            let n = self.data.len().max(1) as f64;
            return vec![1.0 / n; self.data.len()];
        }
        let mut p: Vec<f64> = self
            .data
            .iter()
            .map(|c| f64::from(c.logit - max).exp())
            .collect();
        let sum: f64 = p.iter().sum();
        for x in &mut p {
            *x /= sum;
        }
        p
    }

    /// The highest logit, ties to the lowest id. 0 when empty.
    pub fn argmax(&self) -> u32 {
        let mut it = self.data.iter();
        let Some(first) = it.next() else {
            return 0;
        };
        let mut best = *first;
        for c in it {
            if c.logit > best.logit || (c.logit == best.logit && c.id < best.id) {
                best = *c;
            }
        }
        best.id
    }

    /// Draws from the softmax of the candidates with `u` uniform in `[0, 1)`.
    pub fn draw(&self, u: f64) -> u32 {
        let p = self.probs();
        let target = u * p.iter().sum::<f64>();
        let mut acc = 0.0;
        for (c, &pi) in self.data.iter().zip(&p) {
            acc += pi;
            if acc > target && pi > 0.0 {
                return c.id;
            }
        }
        // Rounding left `target` past the end: the last candidate with mass.
        self.data
            .iter()
            .zip(&p)
            .rev()
            .find(|(_, &pi)| pi > 0.0)
            .map_or_else(|| self.argmax(), |(c, _)| c.id)
    }

    /// A log-softmax snapshot of the current candidates (for log-probabilities).
    pub fn log_softmax_view(&self) -> LogDist {
        let max = self
            .data
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = if max == f32::NEG_INFINITY {
            self.data.len() as f64
        } else {
            self.data
                .iter()
                .map(|c| f64::from(c.logit - max).exp())
                .sum()
        };
        let max = if max == f32::NEG_INFINITY { 0.0 } else { max };
        LogDist {
            data: self.data.clone(),
            lse: f64::from(max) + sum.ln(),
        }
    }
}

/// The `n` first candidates of `data` in [`order`], sorted, in one pass: a small sorted buffer
/// with a quick reject against its worst entry (for small `n` over a whole vocabulary).
fn top_n_scan(data: &[Candidate], n: usize) -> Vec<Candidate> {
    let mut best: Vec<Candidate> = Vec::with_capacity(n + 1);
    for c in data {
        if best.len() == n {
            let worst = best[n - 1];
            if c.logit < worst.logit || order(c, &worst) != Ordering::Less {
                continue;
            }
        }
        let at = best.partition_point(|b| order(b, c) == Ordering::Less);
        best.insert(at, *c);
        best.truncate(n);
    }
    best
}

/// Log-probabilities of a candidate list: `logprob(id) = logit(id) - lse`.
#[derive(Clone, Debug)]
pub struct LogDist {
    data: Vec<Candidate>,
    lse: f64,
}

impl LogDist {
    /// Log-probability of `id` (`-inf` if it is not a candidate).
    pub fn logprob(&self, id: u32) -> f32 {
        let c = match self.data.get(id as usize) {
            Some(c) if c.id == id => Some(*c),
            _ => self.data.iter().find(|c| c.id == id).copied(),
        };
        c.map_or(f32::NEG_INFINITY, |c| {
            (f64::from(c.logit) - self.lse) as f32
        })
    }

    /// The `n` most likely tokens, most likely first, ties to the lowest id.
    pub fn top(&self, n: usize) -> Vec<super::TokenLogprob> {
        let mut c = Candidates {
            data: self.data.clone(),
            sorted: false,
            identity: false,
        };
        c.keep_top(n);
        c.data
            .iter()
            .map(|c| super::TokenLogprob {
                id: c.id,
                logprob: (f64::from(c.logit) - self.lse) as f32,
            })
            .collect()
    }
}

/// One stage of the chain.
pub trait Stage: Send {
    /// Short name for debugging.
    fn name(&self) -> &'static str;
    /// Filters or reshapes the candidates.
    fn apply(&mut self, cands: &mut Candidates);
    /// Sees the token that was chosen.
    fn accept(&mut self, _token: u32) {}
    /// Forgets per-sequence state.
    fn reset(&mut self) {}
}

/// Repetition, frequency and presence penalties over the last `last_n` accepted tokens
/// (llama.cpp `penalties`): for a token seen `count > 0` times,
/// `logit = logit <= 0 ? logit * repeat : logit / repeat`, then
/// `logit -= count * frequency + presence`.
#[derive(Clone, Debug)]
pub struct Penalties {
    /// `None`: unbounded window.
    last_n: Option<usize>,
    repeat: f32,
    frequency: f32,
    presence: f32,
    /// The window, oldest first.
    history: VecDeque<u32>,
    counts: HashMap<u32, u32>,
}

impl Penalties {
    /// `last_n < 0` means every accepted token; `0` disables the stage.
    pub fn new(last_n: i32, repeat: f32, frequency: f32, presence: f32) -> Self {
        Penalties {
            last_n: usize::try_from(last_n).ok(),
            repeat,
            frequency,
            presence,
            history: VecDeque::new(),
            counts: HashMap::new(),
        }
    }

    /// Whether the stage changes anything.
    pub fn is_active(&self) -> bool {
        self.last_n != Some(0)
            && (self.repeat != 1.0 || self.frequency != 0.0 || self.presence != 0.0)
    }

    fn penalize(&self, logit: f32, count: u32) -> f32 {
        let l = if logit <= 0.0 {
            logit * self.repeat
        } else {
            logit / self.repeat
        };
        l - count as f32 * self.frequency - self.presence
    }
}

impl Stage for Penalties {
    fn name(&self) -> &'static str {
        "penalties"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if !self.is_active() || self.counts.is_empty() {
            return;
        }
        if cands.identity {
            for (&id, &count) in &self.counts {
                if let Some(c) = cands.data.get_mut(id as usize) {
                    c.logit = self.penalize(c.logit, count);
                }
            }
        } else {
            for c in &mut cands.data {
                if let Some(&count) = self.counts.get(&c.id) {
                    c.logit = self.penalize(c.logit, count);
                }
            }
        }
        cands.sorted = false;
    }

    fn accept(&mut self, token: u32) {
        if self.last_n == Some(0) {
            return;
        }
        self.history.push_back(token);
        *self.counts.entry(token).or_insert(0) += 1;
        if self.last_n.is_some_and(|n| self.history.len() > n) {
            if let Some(old) = self.history.pop_front() {
                if let Some(c) = self.counts.get_mut(&old) {
                    *c -= 1;
                    if *c == 0 {
                        self.counts.remove(&old);
                    }
                }
            }
        }
    }

    fn reset(&mut self) {
        self.history.clear();
        self.counts.clear();
    }
}

/// Keeps the `k` highest logits (ties to the lowest ids); `k = 0` keeps all.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK { k }
    }
}

impl Stage for TopK {
    fn name(&self) -> &'static str {
        "top-k"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.k == 0 {
            return;
        }
        cands.keep_top(self.k);
    }
}

/// Keeps the smallest prefix (by probability, descending) whose cumulative probability reaches
/// `p`, the token that crosses `p` included, and at least `min_keep` tokens.
#[derive(Clone, Debug)]
pub struct TopP {
    p: f32,
    min_keep: usize,
}

impl TopP {
    pub fn new(p: f32, min_keep: usize) -> Self {
        TopP { p, min_keep }
    }
}

impl TopP {
    /// Fast path for a large unsorted list: finds the kept prefix among the top 256, 1024, ...
    /// candidates (selected in O(n), then sorted) with probabilities normalized over the whole
    /// list, so the result equals sorting everything. Returns false if it did not apply.
    fn top_prefix(&self, cands: &mut Candidates) -> bool {
        let max = cands
            .data
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            return false;
        }
        let total: f64 = cands
            .data
            .iter()
            .map(|c| f64::from(c.logit - max).exp())
            .sum();
        let p = f64::from(self.p);
        let mut k = 256.max(self.min_keep);
        while k < cands.len() {
            cands.data.select_nth_unstable_by(k - 1, order);
            let head = &mut cands.data[..k];
            head.sort_unstable_by(order);
            let mut cum = 0.0;
            for (i, c) in head.iter().enumerate() {
                cum += f64::from(c.logit - max).exp() / total;
                if cum >= p && i + 1 >= self.min_keep {
                    cands.data.truncate(i + 1);
                    cands.sorted = true;
                    cands.identity = false;
                    return true;
                }
            }
            k = k.saturating_mul(4);
        }
        false
    }
}

impl Stage for TopP {
    fn name(&self) -> &'static str {
        "top-p"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.p >= 1.0 || cands.is_empty() {
            return;
        }
        if !cands.sorted && cands.len() > 4096 && self.top_prefix(cands) {
            return;
        }
        cands.sort();
        let probs = cands.probs();
        let p = f64::from(self.p);
        let mut cum = 0.0;
        let mut keep = cands.len();
        for (i, pi) in probs.iter().enumerate() {
            cum += pi;
            if cum >= p && i + 1 >= self.min_keep {
                keep = i + 1;
                break;
            }
        }
        cands.data.truncate(keep);
    }
}

/// Keeps tokens whose probability is at least `p` times the top probability
/// (`logit >= max_logit + ln p`), and at least `min_keep` tokens.
#[derive(Clone, Debug)]
pub struct MinP {
    p: f32,
    min_keep: usize,
}

impl MinP {
    pub fn new(p: f32, min_keep: usize) -> Self {
        MinP { p, min_keep }
    }
}

impl Stage for MinP {
    fn name(&self) -> &'static str {
        "min-p"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.p <= 0.0 || cands.is_empty() {
            return;
        }
        let max = cands
            .data
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        let min_logit = max + self.p.ln();
        let n_pass = cands.data.iter().filter(|c| c.logit >= min_logit).count();
        if n_pass >= self.min_keep {
            // `retain` keeps the order, so a sorted list stays sorted.
            let before = cands.len();
            cands.data.retain(|c| c.logit >= min_logit);
            cands.identity &= cands.len() == before;
        } else {
            cands.keep_top(self.min_keep);
        }
    }
}

/// Divides the logits by the temperature; `t <= 0` keeps only the best token.
#[derive(Clone, Debug)]
pub struct Temperature {
    t: f32,
}

impl Temperature {
    pub fn new(t: f32) -> Self {
        Temperature { t }
    }
}

impl Stage for Temperature {
    fn name(&self) -> &'static str {
        "temperature"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.t <= 0.0 {
            let best = cands.argmax();
            cands.data.retain(|c| c.id == best);
            cands.identity = false;
            cands.sorted = true;
            return;
        }
        for c in &mut cands.data {
            c.logit /= self.t;
        }
    }
}
