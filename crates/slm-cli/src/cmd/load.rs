//! Loading a model for generation: the file, its tokenizer and chat template, and the engine
//! thread that runs it. Shared by `run` and `chat`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use slm_engine::sampling::{SamplingParams, DEFAULT_SEED};
use slm_engine::{Engine, EngineConfig, GenerateRequest, ModelRunner};
use slm_gguf::GgufFile;
use slm_model::Model;
use slm_tokenizer::template::{ChatMessage, ChatTemplate};
use slm_tokenizer::Tokenizer;

use super::common::{ModelArgs, SamplingArgs};

pub struct Loaded {
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    pub engine: Engine,
    pub n_ctx: usize,
    pub threads: usize,
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn load(path: &Path, args: &ModelArgs) -> Result<Loaded> {
    let file = Arc::new(
        GgufFile::open(path)
            .with_context(|| format!("{} is not a readable GGUF model", path.display()))?,
    );
    let tokenizer = Arc::new(
        Tokenizer::from_gguf(file.header())
            .with_context(|| format!("{}: cannot build its tokenizer", path.display()))?,
    );
    let mut model = Model::from_file(file.clone())
        .with_context(|| format!("{}: cannot load the model", path.display()))?;
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    model.set_threads(threads);
    let n_train = model.hparams().n_ctx_train as usize;
    let n_ctx = match args.ctx_size {
        Some(0) => n_train,
        Some(n) => n.min(n_train),
        None => n_train.min(4096),
    };
    let template = match file.get_str("tokenizer.chat_template") {
        Some(src) => {
            let piece = |id: Option<u32>| {
                id.and_then(|i| tokenizer.token_text(i))
                    .unwrap_or("")
                    .to_string()
            };
            Some(
                ChatTemplate::new(src, &piece(tokenizer.bos()), &piece(tokenizer.eos()))
                    .context("the model's chat template does not compile")?,
            )
        }
        None => None,
    };
    let runner = ModelRunner::new(model, n_ctx, 1);
    let engine = Engine::spawn(
        Box::new(runner),
        tokenizer.clone(),
        EngineConfig::default(),
    );
    Ok(Loaded {
        tokenizer,
        template,
        engine,
        n_ctx,
        threads,
    })
}

impl Loaded {
    /// Tokenize a raw prompt the way llama.cpp does (BOS per metadata, special tokens parsed).
    pub fn tokenize_raw(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, true, true)?)
    }

    /// Render `messages` with the chat template and tokenize the result. Templates usually emit
    /// BOS themselves; a second BOS is dropped.
    pub fn tokenize_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let template = self
            .template
            .as_ref()
            .context("the model has no chat template (use --raw)")?;
        let text = template.render(messages, true)?;
        let mut ids = self.tokenizer.encode(&text, true, true)?;
        if let (Some(bos), [a, b, ..]) = (self.tokenizer.bos(), ids.as_slice()) {
            if *a == bos && *b == bos {
                ids.remove(0);
            }
        }
        Ok(ids)
    }
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
