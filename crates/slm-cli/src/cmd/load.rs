//! Loading a model for the generating commands (`run`, `chat`): CLI flags to load options and
//! requests, and Ctrl-C handling.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use slm_engine::sampling::{SamplingParams, DEFAULT_SEED};
use slm_engine::{GenerateRequest, LoadOptions, LoadedModel};

use super::common::{ModelArgs, SamplingArgs};

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn load(path: &Path, args: &ModelArgs) -> Result<LoadedModel> {
    let opts = LoadOptions {
        threads: args.threads.unwrap_or_else(default_threads),
        n_ctx: args.ctx_size,
        ..LoadOptions::default()
    };
    LoadedModel::load(path, &opts).with_context(|| format!("cannot load {}", path.display()))
}

pub fn sampling_params(s: &SamplingArgs) -> SamplingParams {
    SamplingParams {
        temperature: s.temp,
        top_k: i32::try_from(s.top_k).unwrap_or(i32::MAX),
        top_p: s.top_p,
        min_p: s.min_p,
        repeat_penalty: s.repeat_penalty,
        repeat_last_n: i32::try_from(s.repeat_last_n).unwrap_or(-1),
        frequency_penalty: s.frequency_penalty,
        presence_penalty: s.presence_penalty,
        seed: s.seed.unwrap_or(DEFAULT_SEED),
        ..SamplingParams::default()
    }
}

pub fn request(prompt: Vec<u32>, s: &SamplingArgs, n_ctx: usize) -> GenerateRequest {
    let max_tokens = if s.n_predict < 0 {
        n_ctx
    } else {
        usize::try_from(s.n_predict).unwrap_or(n_ctx)
    };
    GenerateRequest {
        prompt,
        sampling: sampling_params(s),
        max_tokens,
        stop: s.stop.clone(),
        ignore_eos: s.ignore_eos,
        logprobs: None,
        json: None,
    }
}

/// Ctrl-C stops the current generation; with none running, it exits.
#[derive(Clone, Default)]
pub struct Interrupt {
    current: Arc<Mutex<Option<Arc<AtomicBool>>>>,
}

impl Interrupt {
    pub fn install() -> Result<Interrupt> {
        let it = Interrupt::default();
        let current = it.current.clone();
        ctrlc::set_handler(move || {
            let guard = current.lock();
            match guard.as_ref().ok().and_then(|g| g.as_ref().cloned()) {
                Some(flag) => flag.store(true, Ordering::Relaxed),
                None => std::process::exit(130),
            }
        })
        .context("cannot install the Ctrl-C handler")?;
        Ok(it)
    }

    pub fn watch(&self, flag: Option<Arc<AtomicBool>>) {
        if let Ok(mut g) = self.current.lock() {
            *g = flag;
        }
    }
}
