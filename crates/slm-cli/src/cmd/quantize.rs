//! `slm quantize IN.gguf OUT.gguf TYPE`: llama.cpp's quantization mixes, byte-identical to
//! `llama-quantize` (the work is `slm_convert::quantize`; this file parses flags, draws the
//! progress bar and prints the closing report).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use slm_convert::quantize::{self, FileType, QuantizeOptions, QuantizeReport};
use slm_gguf::GgmlType;

#[derive(Args)]
#[command(
    about = "Quantize a GGUF model to one of llama.cpp's types (Q4_K_M, Q8_0, ...), byte-identical to llama-quantize",
    after_help = "TYPE is a llama.cpp mix: F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 \
Q4_0 IQ4_NL IQ4_XS Q3_K_L Q3_K_M Q3_K_S IQ3_M IQ3_S IQ3_XS IQ3_XXS Q2_K Q2_K_S IQ2_M IQ2_S IQ2_XS IQ2_XXS \
IQ1_M IQ1_S TQ2_0 TQ1_0 MXFP4_MOE (Q4_K = Q4_K_M, Q5_K = Q5_K_M, Q3_K = Q3_K_M; or the numeric file type).\n\
Each tensor gets the type llama.cpp's rules give it: norms and other 1-D tensors stay as they are, \
output and token embeddings get more bits, some attn_v/ffn_down layers get more bits in the _M mixes, \
and rows that do not fit a type's block size fall back to a type that fits.\n\n\
Examples:\n  slm quantize model-f32.gguf model-q4_k_m.gguf Q4_K_M\n  \
slm quantize model-f16.gguf model-iq4_xs.gguf IQ4_XS --imatrix imatrix.gguf\n  \
slm quantize model-f32.gguf model-q4_0.gguf Q4_0 --tensor-type 'ffn_down=q8_0' --output-tensor-type q8_0"
)]
pub struct QuantizeArgs {
    /// Input GGUF (ideally F32, F16 or BF16)
    pub input: PathBuf,
    /// Output GGUF
    pub output: PathBuf,
    /// Quantization type / mix (e.g. Q4_K_M, Q8_0, Q4_0)
    #[arg(value_name = "TYPE")]
    pub ftype: String,
    /// Importance matrix file (GGUF from `slm imatrix` or llama-imatrix, or legacy .dat)
    #[arg(long)]
    pub imatrix: Option<PathBuf>,
    /// Override the type of tensors whose name matches a regex: PATTERN=TYPE (repeatable, first match wins)
    #[arg(long = "tensor-type", value_name = "PATTERN=TYPE")]
    pub tensor_type: Vec<String>,
    /// Allow requantizing tensors that are already quantized (loses quality)
    #[arg(long)]
    pub allow_requantize: bool,
    /// Give every quantized tensor the mix's default type (no per-tensor rules)
    #[arg(long)]
    pub pure: bool,
    /// Leave output.weight as it is
    #[arg(long)]
    pub leave_output_tensor: bool,
    /// Type of output.weight (e.g. q8_0)
    #[arg(long, value_name = "TYPE")]
    pub output_tensor_type: Option<String>,
    /// Type of token_embd.weight (e.g. q8_0)
    #[arg(long, value_name = "TYPE")]
    pub token_embedding_type: Option<String>,
    /// Number of threads (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

fn ggml_type(s: &str) -> Result<GgmlType> {
    GgmlType::from_name(s)
        .ok_or_else(|| anyhow!("unknown tensor type {s:?} (e.g. q8_0, q4_k, f16)"))
}

fn options(args: &QuantizeArgs) -> Result<QuantizeOptions> {
    let ftype = FileType::parse(&args.ftype).ok_or_else(|| {
        let names: Vec<&str> = FileType::all().map(FileType::name).collect();
        anyhow!("unknown type {:?}; one of: {}", args.ftype, names.join(" "))
    })?;
    let mut o = QuantizeOptions::new(ftype);
    o.threads = args.threads.unwrap_or(0);
    o.allow_requantize = args.allow_requantize;
    o.pure = args.pure;
    o.leave_output_tensor = args.leave_output_tensor;
    o.output_tensor_type = args
        .output_tensor_type
        .as_deref()
        .map(ggml_type)
        .transpose()?;
    o.token_embedding_type = args
        .token_embedding_type
        .as_deref()
        .map(ggml_type)
        .transpose()?;
    for spec in &args.tensor_type {
        let Some((pattern, ty)) = spec.split_once('=') else {
            bail!("--tensor-type {spec:?}: expected PATTERN=TYPE, e.g. attn_v=q8_0");
        };
        if pattern.is_empty() {
            bail!("--tensor-type {spec:?}: missing tensor name pattern");
        }
        // llama-quantize lower-cases the pattern.
        o.tensor_types
            .push((pattern.to_lowercase(), ggml_type(ty)?));
    }
    if let Some(path) = &args.imatrix {
        let im = slm_convert::imatrix::read(path)
            .with_context(|| format!("cannot read the importance matrix {}", path.display()))?;
        // The metadata llama-quantize adds, so that the files stay byte-identical.
        o.kv_overrides = quantize::imatrix_metadata(&path.to_string_lossy(), &im);
        o.imatrix = Some(im.tensors.into_iter().collect::<BTreeMap<_, _>>());
    }
    Ok(o)
}

pub fn run(args: &QuantizeArgs) -> Result<()> {
    let opts = options(args)?;
    let bar = if args.quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:36} {percent:>3}% {pos}/{len} tensors  {msg}",
        )
        .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let report =
        quantize::quantize_file_with_progress(&args.input, &args.output, &opts, &mut |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(format!(
                "{} {} -> {}",
                p.tensor.name, p.tensor.src_type, p.tensor.dst_type
            ));
        })
        .with_context(|| format!("quantizing {} to {}", args.input.display(), opts.ftype))?;
    bar.finish_and_clear();
    let text = if args.json {
        serde_json::to_string_pretty(&report_json(args, &report))? + "\n"
    } else {
        report_text(args, &report)
    };
    // A closed pipe (`| head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn report_text(args: &QuantizeArgs, r: &QuantizeReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "quantized {} -> {} ({})",
        args.input.display(),
        args.output.display(),
        r.ftype
    );
    let change = if r.output_file_bytes <= r.input_file_bytes {
        format!("{:.1}% smaller", r.reduction_percent())
    } else {
        format!(
            "{:.2}x larger",
            r.output_file_bytes as f64 / r.input_file_bytes.max(1) as f64
        )
    };
    let _ = writeln!(
        s,
        "  size      {:10.2} MiB -> {:10.2} MiB  ({change})",
        r.input_file_bytes as f64 / MIB,
        r.output_file_bytes as f64 / MIB,
    );
    let _ = writeln!(
        s,
        "  weights   {:10.2} bpw -> {:10.2} bpw  ({} weights in {} tensors)",
        r.bpw_before(),
        r.bpw_after(),
        r.n_elements,
        r.n_tensors
    );
    let counts: Vec<String> = r
        .type_counts
        .iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    let _ = writeln!(s, "  types     {}", counts.join(", "));
    let _ = writeln!(
        s,
        "  converted {} tensors, {} copied, {} with a fallback type for their row size",
        r.n_converted,
        r.n_tensors - r.n_converted,
        r.n_fallback
    );
    let _ = writeln!(s, "  time      {:.2} s on {} threads", r.seconds, r.threads);
    s
}

fn report_json(args: &QuantizeArgs, r: &QuantizeReport) -> serde_json::Value {
    let counts: serde_json::Map<String, serde_json::Value> = r
        .type_counts
        .iter()
        .map(|(t, n)| (t.name().to_string(), (*n).into()))
        .collect();
    let tensors: Vec<serde_json::Value> = r
        .tensors
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name, "dims": t.dims, "from": t.src_type.name(),
                "to": t.dst_type.name(), "bytes": t.dst_bytes,
            })
        })
        .collect();
    serde_json::json!({
        "input": args.input, "output": args.output, "type": r.ftype.name(),
        "file_type": r.ftype.id(),
        "input_bytes": r.input_file_bytes, "output_bytes": r.output_file_bytes,
        "reduction_percent": r.reduction_percent(),
        "bpw_before": r.bpw_before(), "bpw_after": r.bpw_after(),
        "n_elements": r.n_elements, "n_tensors": r.n_tensors, "n_converted": r.n_converted,
        "n_fallback": r.n_fallback, "seconds": r.seconds, "threads": r.threads,
        "type_counts": counts, "tensors": tensors,
    })
}
