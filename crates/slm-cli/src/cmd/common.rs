//! Flags shared by the commands that generate text, with llama.cpp's names and defaults.

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Number of threads (default: all cores)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Context size in tokens (default: the model's, capped at 4096; 0 = the model's full context)
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<usize>,
}

#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Tokens to generate (-1 = until end of generation or the context is full)
    #[arg(short = 'n', long = "n-predict", default_value_t = -1, allow_negative_numbers = true)]
    pub n_predict: i64,
    /// Temperature (0 = greedy)
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temp: f32,
    /// Top-k sampling (0 = off)
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (nucleus) sampling (1.0 = off)
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p sampling (0.0 = off)
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalize repeated tokens (1.0 = off)
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Last N tokens the repeat penalty looks at (0 = off, -1 = context size)
    #[arg(
        long = "repeat-last-n",
        default_value_t = 64,
        allow_negative_numbers = true
    )]
    pub repeat_last_n: i64,
    /// Presence penalty (0.0 = off)
    #[arg(long = "presence-penalty", default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// Frequency penalty (0.0 = off)
    #[arg(long = "frequency-penalty", default_value_t = 0.0)]
    pub frequency_penalty: f32,
    /// Random seed (default: random); the same seed gives the same output
    #[arg(short = 's', long = "seed")]
    pub seed: Option<u64>,
    /// Stop when this string appears (repeatable)
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens
    #[arg(long = "ignore-eos")]
    pub ignore_eos: bool,
}
