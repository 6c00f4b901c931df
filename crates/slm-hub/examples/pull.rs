//! Pull a model into the store (`SLM_HOME`) with progress bars: `cargo run -p slm-hub --example
//! pull -- gemma3:270m [--offline]`. The CLI's `slm pull` does the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slm_hub::progress::Bars;
use slm_hub::{pull, Http, HttpConfig, PullOptions, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let offline = args.iter().any(|a| a == "--offline");
    let store = Store::open_default()?;
    let http = Http::new(HttpConfig::default());
    for name in args.iter().filter(|a| !a.starts_with("--")) {
        let t = std::time::Instant::now();
        let p = pull(
            &store,
            &http,
            name,
            &PullOptions::from_env(offline),
            &mut Bars::new(),
        )?;
        let l = p.manifest.model_layer().ok_or("no model layer")?;
        println!(
            "{} {} {} bytes, {} received in {:.1}s{}",
            p.name,
            l.digest,
            l.size,
            p.received,
            t.elapsed().as_secs_f64(),
            if p.already {
                " (already in the store)"
            } else {
                ""
            }
        );
        println!("{}", store.model_path(&p.name)?.display());
    }
    Ok(())
}
