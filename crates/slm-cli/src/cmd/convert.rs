//! `slm convert HF_DIR -o out.gguf --outtype f16`: a Hugging Face model folder (safetensors,
//! config.json, tokenizer files) to GGUF, with llama.cpp's converter's keys, names and layouts
//! (`slm_convert::hf`).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use slm_convert::hf::{plan, ConvertOptions};
use slm_gguf::GgmlType;

#[derive(Args)]
#[command(
    about = "Convert a Hugging Face model folder (safetensors) to GGUF, like llama.cpp's convert_hf_to_gguf.py",
    after_help = "Architectures: LlamaForCausalLM (Llama 2/3, SmolLM2), Qwen2ForCausalLM, Qwen3ForCausalLM, \
Phi3ForCausalLM, Gemma3ForCausalLM, Gemma3TextModel (EmbeddingGemma). Reads model.safetensors or the \
shards of model.safetensors.index.json (F32/F16/BF16), config.json, and tokenizer.model (SentencePiece) \
or tokenizer.json (BPE) with tokenizer_config.json. 1-D tensors and norms stay F32.\n\n\
Examples:\n  slm convert ./SmolLM2-135M -o smollm2-f16.gguf\n  slm convert ./Qwen3-0.6B -o qwen3-q8_0.gguf --outtype q8_0\n  \
slm convert ./model --dry-run --json"
)]
pub struct ConvertArgs {
    /// The Hugging Face model folder
    pub dir: PathBuf,
    /// Output GGUF file (default: <folder name>-<outtype>.gguf next to the folder)
    #[arg(short = 'o', long = "outfile")]
    pub outfile: Option<PathBuf>,
    /// Type of the weight matrices: f32, f16, bf16, q8_0 (or another type slm can quantize to without an imatrix, e.g. q4_0)
    #[arg(long, default_value = "f16")]
    pub outtype: String,
    /// BPE pre-tokenizer name for tokenizer.json vocabularies slm does not recognise (llama.cpp's tokenizer.ggml.pre)
    #[arg(long = "vocab-pre")]
    pub vocab_pre: Option<String>,
    /// Print the metadata and tensors that would be written, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let outtype = GgmlType::from_name(&args.outtype.to_uppercase())
        .ok_or_else(|| anyhow!("unknown --outtype {:?}", args.outtype))?;
    let opts = ConvertOptions {
        outtype,
        pre: args.vocab_pre.clone(),
    };
    let p = plan(&args.dir, &opts)?;
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&p.to_json())?);
        } else {
            println!("architecture: {}", p.arch.gguf_name());
            for (k, v) in &p.meta.kv {
                println!("  {k} = {}", slm_convert::hf::convert::value_json(v));
            }
            println!("{} tensors:", p.tensors.len());
            for t in &p.tensors {
                println!("  {:<32} {:<5} {:?}", t.name, t.ty.name(), t.dims);
            }
        }
        return Ok(());
    }
    if args.json {
        bail!("--json goes with --dry-run");
    }
    let out = match &args.outfile {
        Some(o) => o.clone(),
        None => {
            let name = args
                .dir
                .canonicalize()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            args.dir
                .join("..")
                .join(format!("{name}-{}.gguf", args.outtype.to_lowercase()))
        }
    };
    let bar = ProgressBar::new(p.tensors.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tensors {elapsed} {msg}")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    p.write(&out, &mut |i, _, name| {
        bar.set_position(i as u64);
        bar.set_message(name.to_string());
    })?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} ({} tensors, {})",
        out.display(),
        p.tensors.len(),
        p.arch.gguf_name()
    );
    Ok(())
}
