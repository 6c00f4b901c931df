//! `slm run MODEL [PROMPT]`: stream a continuation and print llama.cpp-style timings.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use slm_engine::{Done, Event, FinishReason};
use slm_tokenizer::template::ChatMessage;

use super::common::{ModelArgs, SamplingArgs};
use super::load::{load, request, Interrupt};

#[derive(Args)]
#[command(
    about = "Generate text from a prompt (argument or stdin), streaming as it comes",
    after_help = "By default the prompt is sent as one user message through the model's chat template \
(when it has one); --raw sends it as plain text. Timings go to stderr, text to stdout.\n\n\
Examples:\n  slm run gemma-3-270m-q4_k_m.gguf \"Once upon a time\" --raw -n 64\n  \
echo \"Write a haiku about rust\" | slm run model.gguf --temp 0.7 --json"
)]
pub struct RunArgs {
    /// Path to a GGUF file, or a model name (gemma3:270m, hf.co/..., ollama:NAME:TAG), pulled when missing
    pub model: PathBuf,
    /// The prompt (read from stdin when absent)
    pub prompt: Option<String>,
    /// Skip the chat template: continue the prompt text as is
    #[arg(long)]
    pub raw: bool,
    /// Print one JSON object (text, token ids and pieces, timings) instead of streaming
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model_args: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn timings_line(d: &Done) -> String {
    let p_ms = d.prompt_time.as_secs_f64() * 1e3;
    let g_ms = d.gen_time.as_secs_f64() * 1e3;
    // The first generated token is sampled at the end of prompt processing; the rest are decode steps.
    let n_eval = d.generated_tokens.saturating_sub(1);
    let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
    format!(
        "prompt eval: {p_ms:9.2} ms / {:5} tokens ({:8.2} ms per token, {:8.2} tokens per second)\n\
         \x20      eval: {g_ms:9.2} ms / {n_eval:5} runs   ({:8.2} ms per token, {:8.2} tokens per second)",
        d.prompt_tokens,
        if d.prompt_tokens > 0 { p_ms / d.prompt_tokens as f64 } else { 0.0 },
        rate(d.prompt_tokens, p_ms),
        if n_eval > 0 { g_ms / n_eval as f64 } else { 0.0 },
        rate(n_eval, g_ms),
    )
}

pub fn run(args: &RunArgs) -> Result<()> {
    let prompt = match &args.prompt {
        Some(p) => p.clone(),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the prompt from stdin")?;
            s
        }
    };
    let loaded = load(
        &super::pull::resolve_model_arg(&args.model)?,
        &args.model_args,
    )?;
    let use_template = !args.raw && !loaded.template_is_fallback;
    let ids = if use_template {
        loaded.tokenize_chat(&[ChatMessage {
            role: "user".into(),
            content: prompt.clone(),
        }])?
    } else {
        loaded.tokenize_raw(&prompt)?
    };
    let req = request(ids.clone(), &args.sampling, loaded.n_ctx);
    let interrupt = Interrupt::install()?;
    let generation = loaded.engine.handle().generate(req)?;
    interrupt.watch(Some(generation.cancel_flag()));
    let cancel = generation.cancel_flag();

    let mut out_ids = Vec::new();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut done = None;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    if !args.json && args.raw {
        write!(lock, "{prompt}")?;
    }
    for ev in generation {
        match ev {
            Event::Token { id, text: t, .. } => {
                out_ids.push(id);
                if !args.json {
                    write!(lock, "{t}")?;
                    lock.flush()?;
                }
                pieces.push(t.clone());
                text.push_str(&t);
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
            Event::Done(d) => {
                done = Some(d);
                break;
            }
            Event::Error(e) => bail!(e),
        }
    }
    interrupt.watch(None);
    let interrupted = done.is_none();
    if args.json {
        let (finish, timings) = match &done {
            Some(d) => (
                match d.finish {
                    FinishReason::Stop => "stop",
                    FinishReason::Length => "length",
                },
                serde_json::json!({
                    "prompt_ms": d.prompt_time.as_secs_f64() * 1e3,
                    "prompt_tokens": d.prompt_tokens,
                    "prompt_tokens_per_second": d.prompt_tokens as f64 / d.prompt_time.as_secs_f64().max(1e-9),
                    "gen_ms": d.gen_time.as_secs_f64() * 1e3,
                    "gen_tokens": d.generated_tokens,
                    "gen_tokens_per_second": d.generated_tokens.saturating_sub(1) as f64 / d.gen_time.as_secs_f64().max(1e-9),
                }),
            ),
            None => ("interrupted", serde_json::Value::Null),
        };
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "prompt": prompt,
            "chat_template": use_template,
            "prompt_ids": ids,
            "ids": out_ids,
            "pieces": pieces,
            "text": text,
            "finish_reason": finish,
            "threads": loaded.threads,
            "n_ctx": loaded.n_ctx,
            "timings": timings,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        writeln!(lock)?;
        if let Some(d) = &done {
            eprintln!("\n{}", timings_line(d));
        } else if interrupted {
            eprintln!("\n[interrupted]");
        }
    }
    Ok(())
}
