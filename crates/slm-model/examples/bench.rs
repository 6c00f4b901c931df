//! Prefill and decode speed on a real model:
//! `cargo run --release -p slm-model --example bench -- MODEL.gguf [threads] [n_prompt] [n_gen]`.

use std::time::Instant;

use slm_model::{argmax, Batch, Model};

/// CPU seconds used by this process so far (Linux `/proc/self/stat`, 10 ms ticks; 0 elsewhere):
/// on a shared machine, tokens per CPU-second says more than wall-clock speed.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields after the command: state(skipped, not numeric) ... utime = 14th, stime = 15th of
    // the full line, i.e. indices 10 and 11 of the numeric fields that follow the state.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: bench MODEL.gguf [threads] [n_prompt] [n_gen]")?;
    let threads: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let n_prompt: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let n_gen: usize = args.get(4).map_or(Ok(64), |s| s.parse())?;
    let mut model = Model::load(std::path::Path::new(path))?;
    model.set_threads(threads);
    let n_vocab = model.hparams().n_vocab as u32;
    let prompt: Vec<u32> = (0..n_prompt as u32)
        .map(|i| 2 + (i * 7919) % (n_vocab - 2))
        .collect();
    let mut kv = model.new_kv_cache(4096);
    // Warm-up (page in the weights).
    model.forward(&Batch::sequence(&prompt[..8.min(n_prompt)], 0, 1), &mut kv)?;
    kv.clear();

    let (t0, c0) = (Instant::now(), cpu_seconds());
    let logits = model.forward(&Batch::sequence(&prompt, 0, 0), &mut kv)?;
    let t_prefill = t0.elapsed().as_secs_f64();
    let c_prefill = cpu_seconds() - c0;
    let mut next = argmax(logits.last().unwrap_or(&[]));
    let (t1, c1) = (Instant::now(), cpu_seconds());
    for i in 0..n_gen {
        let l = model.forward(&Batch::sequence(&[next], (n_prompt + i) as u32, 0), &mut kv)?;
        next = argmax(l.last().unwrap_or(&[]));
    }
    let t_gen = t1.elapsed().as_secs_f64();
    let c_gen = cpu_seconds() - c1;
    println!(
        "threads {threads}: prefill {n_prompt} tokens {:.1} tok/s ({:.3}s wall, {:.2} CPU-s), \
         decode {n_gen} tokens {:.1} tok/s ({:.3}s wall, {:.2} CPU-s)",
        n_prompt as f64 / t_prefill,
        t_prefill,
        c_prefill,
        n_gen as f64 / t_gen,
        t_gen,
        c_gen
    );
    Ok(())
}
