//! The engine thread's loop: take commands, admit queued requests into free slots (reusing the
//! longest cached prefix of each slot), build one batch of decode tokens and prompt chunks, run
//! the model, sample, match stop strings and stream events; cancelled or finished sequences
//! leave between steps.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::json_mode::{mask_logits, JsonPrefix};
use crate::model::BatchToken;
use crate::sampling::{Sampler, StopMatcher};

struct Seq {
    slot: u32,
    prompt: Vec<u32>,
    /// Prompt tokens already evaluated (or reused from the slot's cache).
    n_done: usize,
    /// Prompt tokens reused from the slot's cache.
    n_cached: usize,
    /// Tokens in the KV cache for this sequence.
    n_past: usize,
    /// The last sampled token, to be evaluated next.
    last: Option<u32>,
    generated: usize,
    max_tokens: usize,
    ignore_eos: bool,
    logprobs: Option<usize>,
    json: Option<JsonPrefix>,
    sampler: Sampler,
    stop: StopMatcher,
    utf8: Vec<u8>,
    tx: Sender<Event>,
    cancel: Arc<AtomicBool>,
    t_admit: Instant,
    t_first: Option<Instant>,
}

pub(super) struct Worker {
    model: Box<dyn StepModel>,
    detok: Arc<dyn Detokenizer>,
    config: EngineConfig,
    stats: Arc<EngineStats>,
    queue: VecDeque<Pending>,
    active: Vec<Seq>,
    /// Token ids whose K/V each slot holds (positions 0..len): what a new request sharing a
    /// prefix with them need not recompute.
    cached: Vec<Vec<u32>>,
}

/// Take the longest complete UTF-8 prefix of `buf`, replacing invalid bytes with U+FFFD and
/// keeping an incomplete trailing character for later.
fn take_utf8(buf: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0;
    loop {
        let rest = buf.get(start..).unwrap_or(&[]);
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                start = buf.len();
                break;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..valid]).unwrap_or(""));
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start += valid + n;
                    }
                    None => {
                        start += valid;
                        break;
                    }
                }
            }
        }
    }
    buf.drain(..start);
    out
}

impl Worker {
    pub(super) fn new(
        model: Box<dyn StepModel>,
        detok: Arc<dyn Detokenizer>,
        config: EngineConfig,
        stats: Arc<EngineStats>,
    ) -> Worker {
        let slots = model.max_seqs();
        Worker {
            model,
            detok,
            config,
            stats,
            queue: VecDeque::new(),
            active: Vec::new(),
            cached: vec![Vec::new(); slots],
        }
    }

    pub(super) fn run(mut self, rx: Receiver<Command>) {
        loop {
            // Block when idle; otherwise take whatever arrived since the last step.
            if self.active.is_empty() && self.queue.is_empty() {
                match rx.recv() {
                    Ok(cmd) => {
                        if !self.command(cmd) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(cmd) => {
                        if !self.command(cmd) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if self.active.is_empty() && self.queue.is_empty() {
                            return;
                        }
                        break;
                    }
                }
            }
            self.reap_cancelled();
            self.admit();
            if !self.active.is_empty() {
                self.step();
            }
        }
    }

    fn command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Generate(p) => {
                self.queue.push_back(*p);
                true
            }
            Command::Shutdown => false,
        }
    }

    fn reap_cancelled(&mut self) {
        let mut i = 0;
        while i < self.active.len() {
            if self.active[i].cancel.load(Ordering::Relaxed) {
                // The slot keeps its cache for prefix reuse.
                self.active.swap_remove(i);
            } else {
                i += 1;
            }
        }
        let before = self.queue.len();
        self.queue.retain(|p| !p.cancel.load(Ordering::Relaxed));
        let gone = before - self.queue.len();
        self.stats.queued.fetch_sub(gone, Ordering::Relaxed);
        self.stats
            .active
            .store(self.active.len(), Ordering::Relaxed);
    }

    fn admit(&mut self) {
        while self.active.len() < self.model.max_seqs() {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            let used: Vec<u32> = self.active.iter().map(|s| s.slot).collect();
            // The free slot whose cache shares the longest prefix with the prompt (at least one
            // prompt token is always evaluated, to get logits).
            let prompt = &p.req.prompt;
            let mut best: Option<(u32, usize)> = None;
            for slot in (0..self.model.max_seqs() as u32).filter(|s| !used.contains(s)) {
                let cached = self
                    .cached
                    .get(slot as usize)
                    .map_or(&[][..], |v| v.as_slice());
                let lcp = cached
                    .iter()
                    .zip(prompt.iter())
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(prompt.len().saturating_sub(1));
                if best.is_none_or(|(_, l)| lcp > l) {
                    best = Some((slot, lcp));
                }
            }
            let Some((slot, mut reuse)) = best else {
                self.queue.push_front(p);
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                break;
            };
            if reuse > 0 && !self.model.truncate_seq(slot, reuse as u32) {
                reuse = 0;
            }
            if reuse == 0 {
                self.model.clear_seq(slot);
            }
            if let Some(c) = self.cached.get_mut(slot as usize) {
                c.truncate(reuse);
            }
            self.stats.tokens_reused.fetch_add(reuse, Ordering::Relaxed);
            self.active.push(Seq {
                slot,
                sampler: Sampler::new(&p.req.sampling),
                stop: StopMatcher::new(&p.req.stop),
                prompt: p.req.prompt,
                n_done: reuse,
                n_cached: reuse,
                n_past: reuse,
                last: None,
                generated: 0,
                max_tokens: p.req.max_tokens,
                ignore_eos: p.req.ignore_eos,
                logprobs: p.req.logprobs,
                json: p.req.json.map(JsonPrefix::new),
                utf8: Vec::new(),
                tx: p.tx,
                cancel: p.cancel,
                t_admit: Instant::now(),
                t_first: None,
            });
        }
        self.stats
            .active
            .store(self.active.len(), Ordering::Relaxed);
    }

    /// One forward pass over decode tokens plus prompt chunks, then sampling.
    fn step(&mut self) {
        let mut batch: Vec<BatchToken> = Vec::new();
        // Which sequence (index into `active`) each logits row belongs to.
        let mut rows: Vec<usize> = Vec::new();
        for (i, s) in self.active.iter().enumerate() {
            if let Some(tok) = s.last {
                batch.push(BatchToken {
                    token: tok,
                    pos: s.n_past as u32,
                    seq: s.slot,
                    logits: true,
                });
                rows.push(i);
            }
        }
        let mut budget = self.config.n_batch.saturating_sub(batch.len()).max(1);
        for (i, s) in self.active.iter().enumerate() {
            if s.last.is_some() || budget == 0 {
                continue;
            }
            let n = (s.prompt.len() - s.n_done).min(budget);
            for k in 0..n {
                let idx = s.n_done + k;
                let is_last = idx + 1 == s.prompt.len();
                batch.push(BatchToken {
                    token: s.prompt[idx],
                    pos: idx as u32,
                    seq: s.slot,
                    logits: is_last,
                });
                if is_last {
                    rows.push(i);
                }
            }
            budget -= n;
        }
        if batch.is_empty() {
            return;
        }
        let logits = match self.model.forward(&batch) {
            Ok(l) => l,
            Err(e) => {
                for s in self.active.drain(..) {
                    let _ = s.tx.send(Event::Error(EngineError::Model(e.clone())));
                    self.model.clear_seq(s.slot);
                    if let Some(c) = self.cached.get_mut(s.slot as usize) {
                        c.clear();
                    }
                }
                return;
            }
        };
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        self.stats
            .tokens_evaluated
            .fetch_add(batch.len(), Ordering::Relaxed);
        // Advance KV positions for everything evaluated.
        for t in &batch {
            if let Some(c) = self.cached.get_mut(t.seq as usize) {
                c.push(t.token);
            }
            if let Some(s) = self.active.iter_mut().find(|s| s.slot == t.seq) {
                s.n_past += 1;
                if s.last.is_none() {
                    s.n_done += 1;
                }
            }
        }
        // Decode tokens were evaluated: they are no longer pending.
        let n_vocab = self.model.n_vocab();
        let mut finished: Vec<usize> = Vec::new();
        for (row, &i) in rows.iter().enumerate() {
            let Some(l) = logits.get(row * n_vocab..(row + 1) * n_vocab) else {
                continue;
            };
            let n_ctx = self.model.n_ctx();
            let s = &mut self.active[i];
            let masked;
            let l = match &s.json {
                Some(state) => {
                    let detok = &self.detok;
                    let mut m = l.to_vec();
                    if !mask_logits(state, &mut m, &|t| detok.piece(t), &|t| detok.is_eog(t), 64) {
                        // No token continues the JSON: end here rather than emit invalid output.
                        m.fill(f32::NEG_INFINITY);
                    }
                    masked = m;
                    masked.as_slice()
                }
                None => l,
            };
            let (tok, logprobs) = match s.logprobs {
                Some(n_top) => {
                    let sampled = s.sampler.sample_with_logprobs(l, n_top);
                    (sampled.token, Some(sampled))
                }
                None => (s.sampler.sample(l), None),
            };
            let json_done = match &mut s.json {
                Some(state) => match state.accepts(&self.detok.piece(tok)) {
                    Some(next) => {
                        *state = next;
                        state.is_complete()
                    }
                    None => true,
                },
                None => false,
            };
            s.sampler.accept(tok);
            s.generated += 1;
            if s.t_first.is_none() {
                s.t_first = Some(Instant::now());
            }
            self.stats.tokens_generated.fetch_add(1, Ordering::Relaxed);
            let eog = !s.ignore_eos && self.detok.is_eog(tok);
            let mut text = String::new();
            let mut stop_hit = false;
            if !eog {
                s.utf8.extend_from_slice(&self.detok.piece(tok));
                let piece = take_utf8(&mut s.utf8);
                let (emit, hit) = s.stop.push(&piece);
                text = emit;
                stop_hit = hit;
            }
            let length = s.generated >= s.max_tokens || s.n_past + 1 >= n_ctx;
            let finish = if eog || stop_hit || json_done {
                Some(FinishReason::Stop)
            } else if length {
                Some(FinishReason::Length)
            } else {
                None
            };
            if finish.is_some() && !stop_hit {
                // Flush what the UTF-8 buffer and the stop matcher held back.
                let rest = String::from_utf8_lossy(&s.utf8).into_owned();
                s.utf8.clear();
                let (emit, _) = s.stop.push(&rest);
                text.push_str(&emit);
                text.push_str(&s.stop.flush());
            }
            if s.tx
                .send(Event::Token {
                    id: tok,
                    text,
                    logprobs,
                })
                .is_err()
            {
                s.cancel.store(true, Ordering::Relaxed);
            }
            if let Some(finish) = finish {
                let now = Instant::now();
                let first = s.t_first.unwrap_or(now);
                let _ = s.tx.send(Event::Done(Done {
                    finish,
                    prompt_tokens: s.prompt.len(),
                    cached_tokens: s.n_cached,
                    generated_tokens: s.generated,
                    prompt_time: first.duration_since(s.t_admit),
                    gen_time: now.duration_since(first),
                }));
                finished.push(i);
            } else {
                s.last = Some(tok);
            }
        }
        finished.sort_unstable();
        for i in finished.into_iter().rev() {
            // The slot keeps its cache for prefix reuse.
            self.active.swap_remove(i);
        }
        self.stats
            .active
            .store(self.active.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::take_utf8;

    #[test]
    fn utf8_assembly_holds_partial_characters() {
        let mut buf = vec![b'a', 0xE2, 0x82];
        assert_eq!(take_utf8(&mut buf), "a");
        buf.push(0xAC);
        assert_eq!(take_utf8(&mut buf), "€");
        let mut bad = vec![0xFF, b'b'];
        assert_eq!(take_utf8(&mut bad), "\u{FFFD}b");
        assert!(bad.is_empty());
    }
}
