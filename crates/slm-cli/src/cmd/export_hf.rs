//! `slm export-hf MODEL.gguf OUT_DIR`: a GGUF model to a Hugging Face folder (F32 safetensors,
//! config.json, tokenizer files) that `slm convert` turns back into the same model
//! (`slm_convert::hf::export_hf`).

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
#[command(
    about = "Export a GGUF model as a Hugging Face folder: every tensor dequantized to F32 safetensors, plus config.json and the tokenizer",
    after_help = "Undoes llama.cpp's layout changes (Llama's Q/K permutation, Gemma's norm +1). Architectures: \
llama, qwen2, qwen3, phi3, gemma3 (Llama 3 rope_freqs cannot be exported).\n\nExample:\n  \
slm export-hf SmolLM2-135M-Instruct.Q4_1.gguf ./smollm2-f32 && slm convert ./smollm2-f32 -o smollm2-f32.gguf --outtype f32"
)]
pub struct ExportHfArgs {
    /// The GGUF model file
    pub model: PathBuf,
    /// Output folder (created)
    pub out_dir: PathBuf,
}

pub fn run(args: &ExportHfArgs) -> Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tensors {elapsed} {msg}")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let s = slm_convert::hf::export_hf(&args.model, &args.out_dir, &mut |i, n, name| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
        bar.set_message(name.to_string());
    })?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} ({}, {} tensors, {} parameters)",
        args.out_dir.display(),
        s.arch,
        s.n_tensors,
        s.n_params
    );
    Ok(())
}
