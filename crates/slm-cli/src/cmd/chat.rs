//! `slm chat MODEL`: an interactive multi-turn conversation through the model's chat template.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::Result;
use clap::Args;
use slm_engine::Event;
use slm_tokenizer::template::ChatMessage;

use super::common::{ModelArgs, SamplingArgs};
use super::load::{load, request, Interrupt};
use super::run::timings_line;

#[derive(Args)]
#[command(
    about = "Chat with a model in the terminal (multi-turn, through its chat template)",
    after_help = "Type a message and press Enter. Commands: /clear forgets the conversation, /exit \
(or Ctrl-D) quits. Ctrl-C stops the current answer; at the prompt it quits."
)]
pub struct ChatArgs {
    /// Path to a GGUF file, or a model name (gemma3:270m, hf.co/..., ollama:NAME:TAG), pulled when missing
    pub model: PathBuf,
    /// System prompt
    #[arg(long = "system", visible_alias = "sys")]
    pub system: Option<String>,
    /// Print timings after each answer
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub model_args: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: &ChatArgs) -> Result<()> {
    let loaded = load(
        &super::pull::resolve_model_arg(&args.model)?,
        &args.model_args,
    )?;
    if loaded.template_is_fallback {
        eprintln!(
            "note: {} has no chat template; using ChatML (a base model may not follow it)",
            args.model.display()
        );
    }
    let interrupt = Interrupt::install()?;
    let fresh = || -> Vec<ChatMessage> {
        args.system
            .iter()
            .map(|s| ChatMessage {
                role: "system".into(),
                content: s.clone(),
            })
            .collect()
    };
    let mut messages = fresh();
    eprintln!("slm chat: /clear to start over, /exit or Ctrl-D to quit, Ctrl-C stops an answer");
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        std::io::stderr().flush()?;
        let Some(line) = lines.next() else { break };
        let line = line?;
        let input = line.trim();
        match input {
            "" => continue,
            "/exit" | "/quit" => break,
            "/clear" => {
                messages = fresh();
                eprintln!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage {
            role: "user".into(),
            content: input.to_string(),
        });
        let ids = match loaded.tokenize_chat(&messages) {
            Ok(ids) => ids,
            Err(e) => {
                eprintln!("error: {e:#}");
                messages.pop();
                continue;
            }
        };
        let mut req = request(ids, &args.sampling, loaded.n_ctx);
        req.stop.extend(loaded.chat_stops());
        let generation = match loaded.engine.handle().generate(req) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("error: {e} (try /clear)");
                messages.pop();
                continue;
            }
        };
        let cancel = generation.cancel_flag();
        interrupt.watch(Some(cancel.clone()));
        let mut answer = String::new();
        let mut out = std::io::stdout().lock();
        for ev in generation {
            match ev {
                Event::Token { text, .. } => {
                    write!(out, "{text}")?;
                    out.flush()?;
                    answer.push_str(&text);
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Event::Done(d) => {
                    if args.verbose {
                        eprintln!("\n{}", timings_line(&d));
                    }
                    break;
                }
                Event::Error(e) => {
                    eprintln!("\nerror: {e}");
                    break;
                }
            }
        }
        interrupt.watch(None);
        writeln!(out)?;
        messages.push(ChatMessage {
            role: "assistant".into(),
            content: answer.trim().to_string(),
        });
    }
    Ok(())
}
