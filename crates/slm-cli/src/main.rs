//! `slm`: one binary for the small-language-model workflow. This file holds the clap structs;
//! each subcommand is a short call into a library, in `cmd/`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "slm",
    version,
    about = "Small language models on edge devices: inspect, run, measure.",
    long_about = "slm inspects, runs and measures small language models (GGUF files) on your own machine.\n\
                  Run `slm <command> --help` for the details of each command."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Show(cmd::show::ShowArgs),
    Run(cmd::run::RunArgs),
    Chat(cmd::chat::ChatArgs),
    Perplexity(cmd::perplexity::PerplexityArgs),
    Serve(cmd::serve::ServeArgs),
    Keys(cmd::keys::KeysArgs),
    Audit(cmd::keys::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Show(args) => cmd::show::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Chat(args) => cmd::chat::run(&args),
        Command::Perplexity(args) => cmd::perplexity::run(&args),
        Command::Serve(args) => cmd::serve::run(&args),
        Command::Keys(args) => cmd::keys::run(&args),
        Command::Audit(args) => cmd::keys::run_audit(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}
