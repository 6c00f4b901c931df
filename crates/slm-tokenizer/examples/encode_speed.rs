//! Time encoding a text file with a GGUF's tokenizer:
//! `cargo run --release -p slm-tokenizer --example encode_speed -- MODEL.gguf TEXT.txt`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model, text) = match args.as_slice() {
        [_, m, t] => (m, t),
        _ => return Err("usage: encode_speed MODEL.gguf TEXT.txt".into()),
    };
    let t0 = Instant::now();
    let file = slm_gguf::GgufFile::open(std::path::Path::new(model))?;
    let open = t0.elapsed();
    let t0 = std::time::Instant::now();
    let tok = slm_tokenizer::Tokenizer::from_gguf(&file)?;
    let load = t0.elapsed();
    let text = std::fs::read_to_string(text)?;
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..5 {
        let t1 = Instant::now();
        n = tok.encode(&text, false, false)?.len();
        best = best.min(t1.elapsed().as_secs_f64());
    }
    println!(
        "{model}: gguf open {:.0} ms, tokenizer build {:.0} ms, encode {} bytes -> {n} ids: best of 5 {:.1} ms ({:.1} MB/s)",
        open.as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e3,
        text.len(),
        best * 1e3,
        text.len() as f64 / best / 1e6
    );
    Ok(())
}
