//! The engine: one worker thread owns the model and its KV cache and runs a continuous-batching
//! loop; callers talk to it through a cloneable [`EngineHandle`]. Each step gathers one token from
//! every decoding sequence plus chunks of pending prompts (chunked prefill, up to `n_batch`
//! tokens), runs one forward pass, samples, and streams [`Event`]s back. Requests join and leave
//! the running batch between steps; dropping a [`Generation`] cancels it before the next step.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::json_mode::{mask_logits, JsonPrefix};
use crate::model::{BatchToken, Detokenizer, StepModel};
use crate::sampling::{Sampled, Sampler, SamplingParams, StopMatcher};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the engine has stopped")]
    Stopped,
    #[error("the request queue is full ({0} waiting); retry later")]
    QueueFull(usize),
    #[error("prompt of {prompt} tokens does not fit the context of {n_ctx} tokens")]
    PromptTooLong { prompt: usize, n_ctx: usize },
    #[error("empty prompt")]
    EmptyPrompt,
    #[error("prompt token id {id} is outside the vocabulary ({n_vocab})")]
    BadToken { id: u32, n_vocab: usize },
    #[error("model error: {0}")]
    Model(String),
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub sampling: SamplingParams,
    /// Stop after this many generated tokens (the context length also stops generation).
    pub max_tokens: usize,
    /// Stop strings: generation ends before the first occurrence, which is not emitted.
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens.
    pub ignore_eos: bool,
    /// Report the log-probability of each sampled token and this many top alternatives.
    pub logprobs: Option<usize>,
    /// Constrain the output to JSON (`Some(true)`: a JSON object only); generation stops when
    /// the value is complete.
    pub json: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context length.
    Length,
}

/// Counts and timings of one finished generation.
#[derive(Clone, Debug)]
pub struct Done {
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV was reused from an earlier request in the same slot.
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    /// From admission to the first sampled token (prompt processing).
    pub prompt_time: Duration,
    /// From the first sampled token to the end.
    pub gen_time: Duration,
}

#[derive(Clone, Debug)]
pub enum Event {
    /// A sampled token and the text it completes (may be empty while a UTF-8 character or a
    /// possible stop string is pending), with log-probabilities when asked for.
    Token {
        id: u32,
        text: String,
        logprobs: Option<Sampled>,
    },
    Done(Done),
    Error(EngineError),
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Most tokens in one forward pass (prompt chunks plus one token per decoding sequence).
    pub n_batch: usize,
    /// Most requests waiting for a free sequence slot before `QueueFull`.
    pub max_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            n_batch: 512,
            max_queue: 64,
        }
    }
}

/// Counters readable from any thread.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub steps: AtomicUsize,
    pub tokens_evaluated: AtomicUsize,
    pub tokens_generated: AtomicUsize,
    /// Prompt tokens not recomputed thanks to prefix reuse.
    pub tokens_reused: AtomicUsize,
    pub active: AtomicUsize,
    pub queued: AtomicUsize,
}

enum Command {
    Generate(Box<Pending>),
    Shutdown,
}

struct Pending {
    req: GenerateRequest,
    tx: Sender<Event>,
    cancel: Arc<AtomicBool>,
}

/// A running generation: iterate it for events. Dropping it cancels the request.
pub struct Generation {
    rx: Receiver<Event>,
    cancel: Arc<AtomicBool>,
}

impl Generation {
    /// Stop this generation; the engine frees its slot before its next step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The cancel flag, for a Ctrl-C handler.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// The next event, waiting at most `timeout`: `Ok(None)` when none came in time, `Err(())`
    /// when the engine dropped the request (stopped, or the generation already ended).
    #[allow(clippy::result_unit_err)]
    pub fn next_timeout(&self, timeout: Duration) -> Result<Option<Event>, ()> {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => Ok(Some(ev)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
        }
    }
}

impl Iterator for Generation {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.rx.recv().ok()
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Cloneable handle to the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: SyncSender<Command>,
    stats: Arc<EngineStats>,
    n_ctx: usize,
    n_vocab: usize,
    max_queue: usize,
}

impl EngineHandle {
    /// Submit a request; events arrive on the returned [`Generation`].
    pub fn generate(&self, req: GenerateRequest) -> Result<Generation, EngineError> {
        if req.prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if req.prompt.len() >= self.n_ctx {
            return Err(EngineError::PromptTooLong {
                prompt: req.prompt.len(),
                n_ctx: self.n_ctx,
            });
        }
        if let Some(&id) = req.prompt.iter().find(|&&t| t as usize >= self.n_vocab) {
            return Err(EngineError::BadToken {
                id,
                n_vocab: self.n_vocab,
            });
        }
        let queued = self.stats.queued.load(Ordering::Relaxed);
        if queued >= self.max_queue {
            return Err(EngineError::QueueFull(queued));
        }
        let (tx, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Command::Generate(Box::new(Pending {
                req,
                tx,
                cancel: cancel.clone(),
            })))
            .map_err(|_| EngineError::Stopped)?;
        Ok(Generation { rx, cancel })
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Ask the engine thread to stop after the current step.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

/// The engine thread and its handle.
pub struct Engine {
    handle: EngineHandle,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Start the engine thread with `model` (which owns its KV cache).
    pub fn spawn(
        model: Box<dyn StepModel>,
        detok: Arc<dyn Detokenizer>,
        config: EngineConfig,
    ) -> Engine {
        let (tx, rx) = mpsc::sync_channel(config.max_queue.max(1));
        let stats = Arc::new(EngineStats::default());
        let handle = EngineHandle {
            tx,
            stats: stats.clone(),
            n_ctx: model.n_ctx(),
            n_vocab: model.n_vocab(),
            max_queue: config.max_queue,
        };
        let thread = std::thread::Builder::new()
            .name("slm-engine".into())
            .spawn(move || {
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
                .run(rx)
            })
            .ok();
        Engine { handle, thread }
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

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

struct Worker {
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
    fn run(mut self, rx: Receiver<Command>) {
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
