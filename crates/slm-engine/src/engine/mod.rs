//! The engine: one worker thread owns the model and its KV cache and runs a continuous-batching
//! loop; callers talk to it through a cloneable [`EngineHandle`]. Each step gathers one token from
//! every decoding sequence plus chunks of pending prompts (chunked prefill, up to `n_batch`
//! tokens), runs one forward pass, samples, and streams [`Event`]s back. Requests join and leave
//! the running batch between steps; dropping a [`Generation`] cancels it before the next step.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

mod worker;
use worker::Worker;

use crate::model::{Detokenizer, StepModel};
use crate::sampling::{Sampled, SamplingParams};

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
            .spawn(move || Worker::new(model, detok, config, stats).run(rx))
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
