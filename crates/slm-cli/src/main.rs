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
    Convert(cmd::convert::ConvertArgs),
    ExportHf(cmd::export_hf::ExportHfArgs),
    Bench(cmd::bench::BenchArgs),
    Compare(cmd::compare::CompareArgs),
    Imatrix(cmd::imatrix::ImatrixArgs),
    Quantize(cmd::quantize::QuantizeArgs),
    Serve(cmd::serve::ServeArgs),
    Pull(cmd::pull::PullArgs),
    List(cmd::store::ListArgs),
    Rm(cmd::store::RmArgs),
    Cp(cmd::store::CpArgs),
    Import(cmd::store::ImportArgs),
    Export(cmd::store::ExportArgs),
    Create(cmd::store::CreateArgs),
    Gc(cmd::store::GcArgs),
    Catalog(cmd::catalog::CatalogArgs),
    Recommend(cmd::catalog::RecommendArgs),
    Keys(cmd::keys::KeysArgs),
    Audit(cmd::keys::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(cmd::bench::llama_bench_args(std::env::args_os()));
    let result = match cli.command {
        Command::Show(args) => cmd::show::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Chat(args) => cmd::chat::run(&args),
        Command::Perplexity(args) => cmd::perplexity::run(&args),
        Command::Convert(args) => cmd::convert::run(&args),
        Command::ExportHf(args) => cmd::export_hf::run(&args),
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Compare(args) => cmd::compare::run(&args),
        Command::Imatrix(args) => cmd::imatrix::run(&args),
        Command::Quantize(args) => cmd::quantize::run(&args),
        Command::Serve(args) => cmd::serve::run(&args),
        Command::Pull(a) => cmd::pull::run(&a),
        Command::List(a) => cmd::store::list(&a),
        Command::Rm(a) => cmd::store::rm(&a),
        Command::Cp(a) => cmd::store::cp(&a),
        Command::Import(a) => cmd::store::import(&a),
        Command::Export(a) => cmd::store::export(&a),
        Command::Create(a) => cmd::store::create(&a),
        Command::Gc(a) => cmd::store::gc(&a),
        Command::Catalog(a) => cmd::catalog::catalog(&a),
        Command::Recommend(a) => cmd::catalog::recommend_cmd(&a),
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
