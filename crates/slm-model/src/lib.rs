//! Model architectures and their forward pass over a batch of tokens from many sequences.
//!
//! - [`arch`]: the [`Architecture`] trait, the registry (one line per architecture) and
//!   [`Model`], which loads a GGUF file and runs batches.
//! - [`gemma3`]: Gemma 3, one file (its header lists its deviations from Llama).
//! - [`llama`]: the Llama decoder (SmolLM2, Llama 3) and the variants built on it, one file
//!   each: [`qwen2`] (q/k/v bias), [`qwen3`] (QK-norm), [`phi3`] (fused QKV and gate/up,
//!   partial rotary, LongRoPE).
//! - [`layers`]: shared blocks (threads, quantized linear, multi-sequence attention, gated FFN).
//! - [`batch`], [`kv_cache`]: the batch (token, position, sequence, logits wanted) and the
//!   multi-sequence KV cache with sliding-window trimming.
//! - [`config`]: hyperparameters from `{arch}.*` keys, sanity-checked.
//! - [`trace`]: named activations for layer-by-layer diffs.
//! - [`eval`]: llama.cpp-style perplexity, KL divergence against saved logits, greedy decoding.
//! - [`imatrix`]: importance-matrix collection (llama-imatrix) through the
//!   [`ActivationObserver`] hook on every weight matmul.

#![forbid(unsafe_code)]

pub mod arch;
pub mod batch;
pub mod config;
pub mod error;
pub mod eval;
pub mod gemma3;
pub mod imatrix;
pub mod kv_cache;
pub mod layers;
pub mod llama;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod trace;
pub mod weights;

pub use arch::{Architecture, ForwardCtx, Model, REGISTRY};
pub use batch::{argmax, Batch, BatchToken, Logits, SeqId};
pub use config::HParams;
pub use error::{ModelError, Result};
pub use kv_cache::{KvCache, KvSpec};
pub use trace::{ActivationObserver, Printer, Recorder, Tracer};
