//! `slm list`, `slm rm`, `slm cp`, `slm import`, `slm gc`: the local model store.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use slm_hub::recommend::human;
use slm_hub::{local_name, ModelName, Store};

#[derive(Args)]
#[command(about = "List the models in the local store ($SLM_HOME, default ~/.slm)")]
pub struct ListArgs {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
    /// Also list models found in Ollama's directory and the Hugging Face cache (used in place;
    /// run them as `slm run ollama:NAME:TAG` or `slm run hf-cache:ORG/REPO/FILE`)
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
#[command(about = "Remove models from the store (blobs no other model uses are deleted)")]
pub struct RmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
#[command(about = "Give a stored model another name (no data is copied)")]
pub struct CpArgs {
    pub source: String,
    pub destination: String,
}

#[derive(Args)]
#[command(
    about = "Add a local GGUF file, or a bundle made by `slm export`, to the store",
    after_help = "A GGUF file is hard-linked into the store when it is on the same file system (no copy), \
else copied while hashing; it needs --name. A bundle (tar) brings its own names; every blob is verified \
against its sha256 before anything is published.\n\n\
Examples:\n  slm import ./model.gguf --name mymodel:q4\n  slm import models.tar"
)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// NAME[:TAG] to store a GGUF file under
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args)]
#[command(
    about = "Write models (manifests and blobs) to a tar bundle for air-gapped machines",
    after_help = "Example: slm export gemma3:270m smollm2:135m -o models.tar; then on the other machine: slm import models.tar"
)]
pub struct ExportArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The bundle to write
    #[arg(long, short = 'o')]
    pub output: PathBuf,
}

#[derive(Args)]
#[command(about = "Delete blobs no model references (and, with --partials, unfinished downloads)")]
pub struct GcArgs {
    /// Also delete partial downloads (they could otherwise be resumed)
    #[arg(long)]
    pub partials: bool,
}

pub fn list(args: &ListArgs) -> Result<()> {
    let store = Store::open_default()?;
    let entries = store.list()?;
    let external = if args.all {
        slm_hub::external::scan_all()
    } else {
        Vec::new()
    };
    if args.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name.to_string(),
                    "size": e.manifest.total_size(),
                    "digest": e.manifest.model_layer().map(|l| l.digest.to_string()),
                    "source": e.manifest.source,
                    "complete": store.is_complete(&e.name).unwrap_or(false),
                })
            })
            .chain(external.iter().map(|m| {
                serde_json::json!({"name": m.name, "size": m.size, "path": m.path, "complete": true})
            }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{:<48} {:<14} {:>10}  SOURCE", "NAME", "ID", "SIZE");
    for e in &entries {
        let id = e
            .manifest
            .model_layer()
            .map(|l| l.digest.hex()[..12].to_string())
            .unwrap_or_default();
        let complete = store.is_complete(&e.name).unwrap_or(false);
        println!(
            "{:<48} {:<14} {:>10}  {}{}",
            e.name.to_string(),
            id,
            human(e.manifest.total_size()),
            e.manifest.source.as_deref().unwrap_or(""),
            if complete { "" } else { "  (incomplete)" }
        );
    }
    for m in &external {
        println!(
            "{:<48} {:<14} {:>10}  {}",
            m.name,
            "-",
            human(m.size),
            m.path.display()
        );
    }
    Ok(())
}

pub fn rm(args: &RmArgs) -> Result<()> {
    let store = Store::open_default()?;
    for n in &args.names {
        let name = local_name(n)?;
        let freed = store.remove(&name).with_context(|| format!("rm {n}"))?;
        println!("deleted {name} ({} freed)", human(freed));
    }
    Ok(())
}

pub fn cp(args: &CpArgs) -> Result<()> {
    let store = Store::open_default()?;
    let src = local_name(&args.source)?;
    let dst = ModelName::parse(&args.destination)?;
    store.copy(&src, &dst)?;
    println!("copied {src} to {dst}");
    Ok(())
}

pub fn import(args: &ImportArgs) -> Result<()> {
    let store = Store::open_default()?;
    if slm_hub::bundle::is_bundle(&args.file) {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("open {}", args.file.display()))?;
        let names = slm_hub::bundle::import(&store, std::io::BufReader::new(f))
            .with_context(|| format!("import {}", args.file.display()))?;
        for n in names {
            println!("imported {n} (verified)");
        }
        return Ok(());
    }
    let Some(name) = &args.name else {
        anyhow::bail!(
            "{} is not a bundle: give --name NAME:TAG to import a GGUF file",
            args.file.display()
        );
    };
    let name = ModelName::parse(name)?;
    let m = store
        .import_file(&args.file, &name)
        .with_context(|| format!("import {}", args.file.display()))?;
    if let Some(l) = m.model_layer() {
        println!(
            "imported {} as {name} ({}, {})",
            args.file.display(),
            l.digest,
            human(l.size)
        );
    }
    Ok(())
}

pub fn export(args: &ExportArgs) -> Result<()> {
    let store = Store::open_default()?;
    let names = args
        .names
        .iter()
        .map(|n| local_name(n))
        .collect::<slm_hub::Result<Vec<_>>>()?;
    let tmp = args.output.with_extension("tar.partial");
    let f = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let n = slm_hub::bundle::export(&store, &names, std::io::BufWriter::new(f))?;
    std::fs::rename(&tmp, &args.output)?;
    println!(
        "wrote {} ({} model(s), {} of blobs)",
        args.output.display(),
        names.len(),
        human(n)
    );
    Ok(())
}

pub fn gc(args: &GcArgs) -> Result<()> {
    let store = Store::open_default()?;
    let r = store.gc(args.partials)?;
    println!(
        "removed {} unreferenced blob(s), {} freed; {} partial/temp file(s) removed; {} blob(s) kept",
        r.removed.len(),
        human(r.freed_bytes),
        r.partials_removed,
        r.kept
    );
    Ok(())
}

#[derive(Args)]
#[command(
    about = "Create a model from an Ollama-style Modelfile",
    after_help = "Supported: FROM (a stored model name or a GGUF file), PARAMETER (num_ctx, temperature, top_k, \
top_p, min_p, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty, seed, num_predict, stop), \
TEMPLATE, SYSTEM, MESSAGE, LICENSE; values bare, \"quoted\" or \"\"\"multi-line\"\"\". ADAPTER is not supported.\n\n\
Example: slm create mybot -f Modelfile"
)]
pub struct CreateArgs {
    /// NAME[:TAG] of the new model
    pub name: String,
    /// The Modelfile
    #[arg(long, short = 'f', default_value = "Modelfile")]
    pub file: PathBuf,
}

pub fn create(args: &CreateArgs) -> Result<()> {
    let store = Store::open_default()?;
    let name = ModelName::parse(&args.name)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("read {}", args.file.display()))?;
    let mf = slm_hub::modelfile::parse(&text)?;
    let base = args.file.parent().map(PathBuf::from).unwrap_or_default();
    let m = slm_hub::modelfile::create(&store, &name, &mf, &base)?;
    let kinds: Vec<&str> = m
        .layers
        .iter()
        .map(|l| l.media_type.rsplit('.').next().unwrap_or(""))
        .collect();
    println!("created {name} ({})", kinds.join(", "));
    Ok(())
}
