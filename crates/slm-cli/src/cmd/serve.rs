//! `slm serve [MODEL...]`: the OpenAI- and Ollama-compatible HTTP server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use slm_engine::{EngineConfig, LoadOptions};
use slm_server::audit::AuditLog;
use slm_server::auth::Auth;
use slm_server::{keys, AppState, KeepAlive, Limits, ModelConfig, Models};

use super::load::default_threads;

#[derive(Args)]
#[command(
    about = "Serve models over OpenAI- and Ollama-compatible HTTP APIs",
    after_help = "Endpoints: /v1/chat/completions, /v1/completions, /v1/models (OpenAI); /api/generate, \
/api/chat, /api/tags, /api/show, /api/ps, /api/version, /api/tokenize, /api/detokenize, and for \
admins /api/pull, /api/copy, /api/create, /api/delete (Ollama); /health and /metrics (Prometheus).\n\n\
Models: a request's \"model\" is a GGUF file given on the command line (by its file name or \
--alias; kept loaded) or a model in the store ($SLM_HOME, see `slm list`), loaded on first use and \
unloaded after its keep-alive (Ollama's keep_alive: \"5m\", seconds, 0 = now, negative = never; \
default --keep-alive). Loaded models share --max-memory (weights + KV cache of their slots): the \
least recently used idle model is evicted to make room, and a model gets fewer slots when only \
those fit.\n\n\
Each model runs on its own engine thread with --slots sequences batched together (continuous \
batching: requests join and leave the running batch between steps; long prompts are processed in \
chunks of --batch-size tokens). Requests beyond the slots wait in a bounded queue; when it is full \
the server answers 503 with Retry-After.\n\n\
Security: the server binds 127.0.0.1 by default and answers only requests whose Host is localhost. \
When the key file holds active keys (`slm keys add --role user`), every endpoint but /health needs \
`Authorization: Bearer KEY` with a role allowed there (viewer: list/show/metrics; user: also \
generate/chat/tokenize; admin: everything). Binding another address is refused unless keys exist. \
Auth failures are appended to a hash-chained audit log (`slm audit verify`).\n\n\
Connections: a request head may have at most 100 headers and 16 KiB (else 431) and must arrive \
within --header-timeout; a kept-alive connection idle for 60 s is closed; beyond \
--max-connections the connection idle longest is closed, or the new one refused with 503 when \
all are busy.\n\n\
Example:\n  slm serve gemma-3-270m-q4_k_m.gguf --port 8080\n  \
curl localhost:8080/v1/chat/completions -d '{\"model\":\"gemma-3-270m-q4_k_m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'"
)]
pub struct ServeArgs {
    /// GGUF model files to serve (each is named after its file name without .gguf); others
    /// are loaded from the store on demand
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
    /// Rotate the audit log when it reaches this size (e.g. 10MB; the hash chain continues)
    #[arg(long = "audit-max-size", default_value = "10MB")]
    pub audit_max_size: String,
    /// Memory all loaded models may use (weights + KV cache), e.g. 4GB (default: 3/4 of RAM)
    #[arg(long = "max-memory")]
    pub max_memory: Option<String>,
    /// How long a store model stays loaded after its last request (Ollama's keep_alive)
    #[arg(long = "keep-alive", default_value = "5m")]
    pub keep_alive: String,
    /// Wall-clock cap of one generation in seconds (it then ends with finish reason "length")
    #[arg(long = "max-request-seconds", default_value_t = 600)]
    pub max_request_seconds: u64,
    /// Seconds running generations may finish in after SIGTERM/SIGINT before they are ended
    #[arg(long = "shutdown-timeout", default_value_t = 10)]
    pub shutdown_timeout: u64,
    /// Never use the network (/api/pull only finds models already in the store)
    #[arg(long)]
    pub offline: bool,
    /// Most open HTTP connections; at the cap a new connection closes the one idle (or still
    /// sending its headers) the longest, and is refused with 503 only when all are busy
    #[arg(long = "max-connections", default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a client has to send a complete request head (request line and headers); slower
    /// clients are disconnected
    #[arg(long = "header-timeout", default_value_t = 10)]
    pub header_timeout: u64,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let key_file = args.keys.clone().unwrap_or_else(keys::default_key_file);
    let audit_path = args
        .audit_log
        .clone()
        .unwrap_or_else(|| keys::slm_home().join("audit.jsonl"));
    let audit_max = slm_hub::recommend::parse_memory(&args.audit_max_size)?;
    let audit = AuditLog::open(&audit_path)
        .with_context(|| format!("cannot open the audit log {}", audit_path.display()))?
        .with_rotation(audit_max);
    if audit.dropped_torn_bytes() > 0 {
        eprintln!(
            "warning: the audit log {} ended in an incomplete record ({} bytes, from an earlier crash); it was cut away",
            audit_path.display(),
            audit.dropped_torn_bytes()
        );
    }
    let auth = Auth::new(Some(key_file.clone()), Some(audit), args.host.is_loopback());
    if !args.host.is_loopback() && !auth.keys_required() {
        bail!(
            "refusing to bind {}: no API keys in {} (add one with `slm keys add --role user`)",
            args.host,
            key_file.display()
        );
    }
    let load = LoadOptions {
        threads: args.threads.unwrap_or_else(default_threads),
        n_ctx: args.ctx_size,
        slots: args.slots.max(1),
        engine: EngineConfig {
            n_batch: args.batch_size.max(1),
            max_queue: args.max_queue.max(1),
        },
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (i, path) in args.models.iter().enumerate() {
        let name = match args.alias.get(i) {
            Some(a) => a.clone(),
            None => path
                .file_name()
                .map(|f| f.to_string_lossy().trim_end_matches(".gguf").to_string())
                .unwrap_or_else(|| format!("model{i}")),
        };
        if files.iter().any(|(n, _)| *n == name) {
            bail!("two models are named {name:?}; give one an --alias");
        }
        if !path.is_file() {
            bail!("no model file {}", path.display());
        }
        files.push((name, path.clone()));
    }
    let max_memory = match &args.max_memory {
        Some(m) => slm_hub::recommend::parse_memory(m)?,
        None => slm_server::models::default_max_memory(),
    };
    let default_keep_alive =
        KeepAlive::parse(&args.keep_alive).map_err(|e| anyhow::anyhow!("--keep-alive: {e}"))?;
    let store = match slm_hub::Store::open_default() {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("slm serve: no model store ({e}); serving the given files only");
            None
        }
    };
    let offline = args.offline || slm_hub::PullOptions::from_env(false).offline;
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let models = Models::new(
        files,
        store,
        ModelConfig {
            load,
            max_memory,
            default_keep_alive,
            offline,
        },
    );
    let limits = Limits {
        max_request: (args.max_request_seconds > 0)
            .then(|| Duration::from_secs(args.max_request_seconds)),
        ..Default::default()
    };
    let state = AppState::new(models, auth, limits);
    let shutdown_timeout = Duration::from_secs(args.shutdown_timeout);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        for name in &names {
            let m = state
                .models
                .acquire(name, None)
                .await
                .map_err(|e| anyhow::anyhow!("cannot load {name}: {e}"))?;
            eprintln!(
                "loaded {name} ({} ctx x {} slots, {} threads, {} MiB of the {} MiB budget)",
                m.model.n_ctx,
                m.slots,
                m.model.threads,
                m.size >> 20,
                max_memory >> 20
            );
        }
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
            .await
            .with_context(|| format!("cannot bind {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        eprintln!("slm serve: listening on http://{addr}");
        let conn_limits = slm_server::ConnLimits {
            max_connections: args.max_connections.max(1),
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            ..Default::default()
        };
        slm_server::serve_on(listener, state, shutdown_timeout, conn_limits).await?;
        eprintln!("slm serve: stopped");
        Ok(())
    })
}
