//! `slm serve MODEL...`: the OpenAI- and Ollama-compatible HTTP server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use slm_engine::{EngineConfig, LoadOptions, LoadedModel};
use slm_server::audit::AuditLog;
use slm_server::auth::Auth;
use slm_server::{keys, AppState, ServedModel};

use super::load::default_threads;

#[derive(Args)]
#[command(
    about = "Serve models over OpenAI- and Ollama-compatible HTTP APIs",
    after_help = "Endpoints: /v1/chat/completions, /v1/completions, /v1/models (OpenAI); /api/generate, \
/api/chat, /api/tags, /api/show, /api/ps, /api/version, /api/tokenize, /api/detokenize (Ollama); \
/health and /metrics (Prometheus).\n\n\
Each model runs on its own engine thread with --slots sequences batched together (continuous \
batching: requests join and leave the running batch between steps; long prompts are processed in \
chunks of --batch-size tokens). Requests beyond the slots wait in a bounded queue; when it is full \
the server answers 503 with Retry-After.\n\n\
Security: the server binds 127.0.0.1 by default and answers only requests whose Host is localhost. \
When the key file holds active keys (`slm keys add --role user`), every endpoint but /health needs \
`Authorization: Bearer KEY` with a role allowed there (viewer: list/show/metrics; user: also \
generate/chat/tokenize; admin: everything). Binding another address is refused unless keys exist. \
Auth failures are appended to a hash-chained audit log (`slm audit verify`).\n\n\
Example:\n  slm serve gemma-3-270m-q4_k_m.gguf --port 8080\n  \
curl localhost:8080/v1/chat/completions -d '{\"model\":\"gemma-3-270m-q4_k_m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'"
)]
pub struct ServeArgs {
    /// GGUF model files to serve (each is named after its file name without .gguf)
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    /// Name to serve the model under, in the order of the files (repeatable)
    #[arg(long = "alias")]
    pub alias: Vec<String>,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to bind (0 = any free port; the chosen one is printed)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Sequences each model serves at once (KV-cache slots)
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    /// Context size per sequence (default: the model's, capped at 4096)
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<usize>,
    /// Most tokens per forward pass (prompt chunks plus decoding tokens)
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    pub batch_size: usize,
    /// Requests that may wait for a slot before the server answers 503
    #[arg(long = "max-queue", default_value_t = 64)]
    pub max_queue: usize,
    /// Number of threads per model (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// API key file (default: $SLM_HOME/keys.json, SLM_HOME defaulting to ~/.slm)
    #[arg(long = "keys")]
    pub keys: Option<PathBuf>,
    /// Audit log file (default: $SLM_HOME/audit.jsonl)
    #[arg(long = "audit-log")]
    pub audit_log: Option<PathBuf>,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let key_file = args.keys.clone().unwrap_or_else(keys::default_key_file);
    let audit_path = args
        .audit_log
        .clone()
        .unwrap_or_else(|| keys::slm_home().join("audit.jsonl"));
    let audit = AuditLog::open(&audit_path)
        .with_context(|| format!("cannot open the audit log {}", audit_path.display()))?;
    let auth = Auth::new(Some(key_file.clone()), Some(audit), args.host.is_loopback());
    if !args.host.is_loopback() && !auth.keys_required() {
        bail!(
            "refusing to bind {}: no API keys in {} (add one with `slm keys add --role user`)",
            args.host,
            key_file.display()
        );
    }
    let opts = LoadOptions {
        threads: args.threads.unwrap_or_else(default_threads),
        n_ctx: args.ctx_size,
        slots: args.slots.max(1),
        engine: EngineConfig {
            n_batch: args.batch_size.max(1),
            max_queue: args.max_queue.max(1),
        },
    };
    let mut served = Vec::new();
    for (i, path) in args.models.iter().enumerate() {
        let name = match args.alias.get(i) {
            Some(a) => a.clone(),
            None => path
                .file_name()
                .map(|f| f.to_string_lossy().trim_end_matches(".gguf").to_string())
                .unwrap_or_else(|| format!("model{i}")),
        };
        if served.iter().any(|s: &ServedModel| s.name == name) {
            bail!("two models are named {name:?}; give one an --alias");
        }
        let model = LoadedModel::load(path, &opts)
            .with_context(|| format!("cannot load {}", path.display()))?;
        eprintln!(
            "loaded {name} ({}, {} ctx x {} slots, {} threads)",
            path.display(),
            model.n_ctx,
            opts.slots,
            model.threads
        );
        served.push(ServedModel {
            name,
            model,
            loaded_at: slm_server::unix_now(),
        });
    }
    let state = AppState::new(served, auth);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
            .await
            .with_context(|| format!("cannot bind {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        eprintln!("slm serve: listening on http://{addr}");
        slm_server::serve_on(listener, state).await?;
        Ok(())
    })
}
