//! A model ready to generate: the mapped file, its tokenizer and chat template, and the engine
//! thread running it. What both the CLI and the server load.

use std::path::Path;
use std::sync::Arc;

use slm_gguf::GgufFile;
use slm_model::Model;
use slm_tokenizer::template::{ChatMessage, ChatTemplate};
use slm_tokenizer::Tokenizer;

use crate::engine::{Engine, EngineConfig};
use crate::info::{summarize, ModelSummary};
use crate::model::ModelRunner;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path} is not a readable GGUF model: {source}")]
    Gguf {
        path: String,
        #[source]
        source: slm_gguf::GgufError,
    },
    #[error("cannot build the tokenizer: {0}")]
    Tokenizer(#[from] slm_tokenizer::TokenizerError),
    #[error("cannot load the model: {0}")]
    Model(#[from] slm_model::ModelError),
    #[error("the model's chat template does not compile: {0}")]
    Template(#[from] slm_tokenizer::template::TemplateError),
}

/// The template used for models that carry none (llama.cpp's server does the same): ChatML.
pub const FALLBACK_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub threads: usize,
    /// Context per sequence; `None` = the model's, capped at 4096; `Some(0)` = the model's full context.
    pub n_ctx: Option<usize>,
    /// Sequences served at once (KV-cache slots).
    pub slots: usize,
    pub engine: EngineConfig,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            n_ctx: None,
            slots: 1,
            engine: EngineConfig::default(),
        }
    }
}

pub struct LoadedModel {
    pub file: Arc<GgufFile>,
    pub tokenizer: Arc<Tokenizer>,
    /// The model's chat template, or ChatML when it has none (see `template_is_fallback`).
    pub template: ChatTemplate,
    pub template_is_fallback: bool,
    pub engine: Engine,
    pub n_ctx: usize,
    pub threads: usize,
    pub summary: ModelSummary,
}

impl LoadedModel {
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedModel, LoadError> {
        let file = Arc::new(GgufFile::open(path).map_err(|source| LoadError::Gguf {
            path: path.display().to_string(),
            source,
        })?);
        let tokenizer = Arc::new(Tokenizer::from_gguf(file.header())?);
        let mut model = Model::from_file(file.clone())?;
        let threads = opts.threads.max(1);
        model.set_threads(threads);
        let n_train = model.hparams().n_ctx_train as usize;
        let n_ctx = match opts.n_ctx {
            Some(0) => n_train,
            Some(n) => n.min(n_train),
            None => n_train.min(4096),
        };
        let piece = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token_text(i))
                .unwrap_or("")
                .to_string()
        };
        let own = file.get_str("tokenizer.chat_template");
        let template_is_fallback = own.is_none();
        let template = ChatTemplate::new(
            own.unwrap_or(FALLBACK_TEMPLATE),
            &piece(tokenizer.bos()),
            &piece(tokenizer.eos()),
        )?;
        let summary = summarize(file.header(), file.file_len());
        let runner = ModelRunner::new(model, n_ctx, opts.slots);
        let engine = Engine::spawn(Box::new(runner), tokenizer.clone(), opts.engine.clone());
        Ok(LoadedModel {
            file,
            tokenizer,
            template,
            template_is_fallback,
            engine,
            n_ctx,
            threads,
            summary,
        })
    }

    /// Tokenize raw text the way llama.cpp does (BOS per metadata, special tokens parsed).
    pub fn tokenize_raw(&self, text: &str) -> Result<Vec<u32>, LoadError> {
        Ok(self.tokenizer.encode(text, true, true)?)
    }

    /// Stop strings a chat request needs on top of the model's end-of-generation tokens: the
    /// fallback template's end-of-turn marker, which such models do not know as a token.
    pub fn chat_stops(&self) -> Vec<String> {
        if self.template_is_fallback {
            vec!["<|im_end|>".to_string()]
        } else {
            Vec::new()
        }
    }

    /// Render `messages` with the chat template and tokenize the result. Templates usually emit
    /// BOS themselves; a doubled BOS is dropped.
    pub fn tokenize_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, LoadError> {
        let text = self.template.render(messages, true)?;
        let mut ids = self.tokenizer.encode(&text, true, true)?;
        if let (Some(bos), [a, b, ..]) = (self.tokenizer.bos(), ids.as_slice()) {
            if *a == bos && *b == bos {
                ids.remove(0);
            }
        }
        Ok(ids)
    }
}
