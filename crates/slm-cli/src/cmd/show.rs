//! `slm show FILE`: what a GGUF model is and what it needs to run.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use slm_engine::info::{summarize, ModelSummary};
use slm_gguf::{GgufError, GgufFile};

#[derive(Args)]
#[command(
    about = "Show a GGUF model: architecture, parameters, size class, types, memory needed",
    after_help = "Size classes: tiny < 100M, micro 100M-1.4B, small 1.5B-13.9B, medium 14B-30B, large > 30B \
parameters (parameters = the exact sum of tensor elements, rounded to 0.1B for the class).\n\n\
Memory estimate: weights + KV cache, where\n  \
weights = bytes of all tensors in the file (mapped as stored),\n  \
KV(n)   = sum over layers of 2 x n_layer_ctx x n_head_kv x head_dim x 2 bytes (f16 K and V),\n  \
          with n_layer_ctx = min(n, sliding_window) on sliding-window layers and n on the others.\n\
It is shown for n = 4096 tokens and for the model's full context length, for one sequence; compute \
buffers (activations, logits) add a few tens of MiB on top."
)]
pub struct ShowArgs {
    /// Path to a GGUF file, or a model name (gemma3:270m, hf.co/..., ollama:NAME:TAG), pulled when missing
    pub file: PathBuf,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
    /// List every tensor (name, type, shape, bytes)
    #[arg(long)]
    pub tensors: bool,
}

fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

fn human_params(p: u64) -> String {
    if p >= 1_000_000_000 {
        format!("{:.2}B", p as f64 / 1e9)
    } else {
        format!("{:.0}M", p as f64 / 1e6)
    }
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn run(args: &ShowArgs) -> Result<()> {
    let path = super::pull::resolve_model_arg(&args.file)?;
    let file = GgufFile::open(&path).map_err(|e| {
        let what = match e {
            GgufError::Truncated { .. }
            | GgufError::TensorOutOfBounds { .. }
            | GgufError::DataPastEnd { .. } => "is truncated or corrupt",
            _ => "is not a readable GGUF model",
        };
        anyhow::Error::new(e).context(format!("{} {what}", args.file.display()))
    })?;
    let summary = summarize(file.header(), file.file_len());
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        if args.tensors {
            let tensors: Vec<_> = file
                .tensors()
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name, "type": t.ty.name(), "dims": t.dims,
                        "elements": t.n_elements, "bytes": t.n_bytes, "offset": t.offset,
                    })
                })
                .collect();
            v["tensor_list"] = serde_json::Value::Array(tensors);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_text(&summary);
    if args.tensors {
        println!("\ntensors:");
        for t in file.tensors() {
            let shape: Vec<String> = t.dims.iter().map(u64::to_string).collect();
            println!(
                "  {:<40} {:<6} {:<18} {:>12}",
                t.name,
                t.ty.name(),
                shape.join(" x "),
                human_bytes(t.n_bytes)
            );
        }
    }
    Ok(())
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".to_string(), T::to_string)
}

fn print_text(s: &ModelSummary) {
    println!("model         {}", s.name.as_deref().unwrap_or("-"));
    println!("architecture  {}", s.architecture.as_deref().unwrap_or("-"));
    println!(
        "parameters    {} ({})",
        group_digits(s.parameters),
        human_params(s.parameters)
    );
    println!(
        "size class    {} ({})",
        s.size_class.name(),
        s.size_class.range()
    );
    println!("file type     {}", s.file_type.as_deref().unwrap_or("-"));
    println!(
        "file size     {} ({} bytes), GGUF v{}",
        human_bytes(s.file_bytes),
        group_digits(s.file_bytes),
        s.gguf_version
    );
    println!(
        "weights       {} in {} tensors, {:.2} bits per weight",
        human_bytes(s.tensor_bytes),
        s.tensor_count,
        s.bits_per_weight
    );
    println!("context       {}", opt(&s.context_length));
    println!(
        "layers        {}  embedding {}  heads {}/{} (q/kv){}",
        opt(&s.block_count),
        opt(&s.embedding_length),
        opt(&s.head_count),
        opt(&s.head_count_kv),
        s.sliding_window
            .map_or(String::new(), |w| format!("  sliding window {w}"))
    );
    println!("vocabulary    {}", opt(&s.vocab_size));
    println!("tokenizer     {}", s.tokenizer.as_deref().unwrap_or("-"));
    println!(
        "chat template {}",
        if s.chat_template { "yes" } else { "no" }
    );
    println!("\ntensor types:");
    println!(
        "  {:<8} {:>7} {:>16} {:>12} {:>6}",
        "type", "tensors", "elements", "bytes", "bpw"
    );
    for (ty, st) in &s.types {
        let bpw = if st.elements == 0 {
            0.0
        } else {
            st.bytes as f64 * 8.0 / st.elements as f64
        };
        println!(
            "  {:<8} {:>7} {:>16} {:>12} {:>6.2}",
            ty,
            st.tensors,
            group_digits(st.elements),
            human_bytes(st.bytes),
            bpw
        );
    }
    if !s.memory.is_empty() {
        println!("\nmemory to run (weights + f16 KV cache, one sequence):");
        for m in &s.memory {
            println!(
                "  ctx {:>7}: {} = {} weights + {} KV",
                m.n_ctx,
                human_bytes(m.total_bytes),
                human_bytes(m.weights_bytes),
                human_bytes(m.kv_bytes)
            );
        }
    }
}
