//! The sampling chain: logits in, one token id out.
//!
//! A [`Sampler`] is a chain of small [`Stage`]s in llama.cpp's default order
//! (penalties, top-k, top-p, min-p, temperature) followed by the final pick: greedy (argmax,
//! ties to the lowest id) when `temperature <= 0`, otherwise a seeded random draw from the
//! softmax of what is left. Each stage has `apply` (filter / reshape the candidates), `accept`
//! (see the token that was chosen) and `reset` (forget the sequence's history).
//!
//! Also here: top-n log-probabilities of the post-penalty, pre-temperature distribution
//! ([`Sampler::sample_with_logprobs`]) and the stop-string matcher for streamed text
//! ([`StopMatcher`]).

#![forbid(unsafe_code)]

mod rng;
mod stages;
mod stop;

pub use rng::Rng;
pub use stages::{Candidate, Candidates, MinP, Penalties, Stage, Temperature, TopK, TopP};
pub use stop::StopMatcher;

/// Sampling parameters, named as llama.cpp names them (`temperature` is llama.cpp's `temp`), with
/// llama.cpp's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// `<= 0` means greedy (argmax, ties to the lowest id).
    pub temperature: f32,
    /// `<= 0` disables top-k.
    pub top_k: i32,
    /// `>= 1` disables top-p.
    pub top_p: f32,
    /// `<= 0` disables min-p.
    pub min_p: f32,
    /// Multiplicative repetition penalty (llama.cpp `repeat_penalty`); `1.0` disables it.
    pub repeat_penalty: f32,
    /// How many of the last accepted tokens the penalties look at; `0` disables the penalties,
    /// `-1` means all accepted tokens.
    pub repeat_last_n: i32,
    /// Subtracted once per occurrence in the window (OpenAI `frequency_penalty`).
    pub frequency_penalty: f32,
    /// Subtracted once if present in the window (OpenAI `presence_penalty`).
    pub presence_penalty: f32,
    /// Seed of the random pick. [`DEFAULT_SEED`] (llama.cpp's `LLAMA_DEFAULT_SEED`) means "draw a
    /// fresh seed"; every other value gives a reproducible sequence.
    pub seed: u64,
    /// The least number of candidates top-p and min-p keep (llama.cpp `min_keep`, default 0).
    pub min_keep: usize,
}

/// llama.cpp's `LLAMA_DEFAULT_SEED`: ask for a random seed.
pub const DEFAULT_SEED: u64 = 0xFFFF_FFFF;

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: DEFAULT_SEED,
            min_keep: 0,
        }
    }
}

impl SamplingParams {
    /// Checks that every value is finite and in its range (for request validation): temperature
    /// finite, `top_p` and `min_p` in [0, 1], `repeat_penalty` in (0, 100], frequency and
    /// presence penalties in [-2, 2] (OpenAI's range), `repeat_last_n >= -1`.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        check(self.temperature.is_finite(), "temperature must be finite")?;
        check((0.0..=1.0).contains(&self.top_p), "top_p must be in [0, 1]")?;
        check((0.0..=1.0).contains(&self.min_p), "min_p must be in [0, 1]")?;
        check(
            self.repeat_penalty > 0.0 && self.repeat_penalty <= 100.0,
            "repeat_penalty must be in (0, 100]",
        )?;
        check(
            (-2.0..=2.0).contains(&self.frequency_penalty),
            "frequency_penalty must be in [-2, 2]",
        )?;
        check(
            (-2.0..=2.0).contains(&self.presence_penalty),
            "presence_penalty must be in [-2, 2]",
        )?;
        check(self.repeat_last_n >= -1, "repeat_last_n must be >= -1")
    }

    /// Greedy decoding with no penalties.
    pub fn greedy() -> Self {
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        }
    }
}

/// One token's log-probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenLogprob {
    pub id: u32,
    pub logprob: f32,
}

/// A sampled token with log-probabilities from the post-penalty, pre-temperature distribution
/// over the whole vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    pub token: u32,
    /// Log-probability of `token`.
    pub logprob: f32,
    /// The `n_top` most likely tokens, most likely first (ties to the lowest id).
    pub top: Vec<TokenLogprob>,
}

/// A sampling chain for one sequence.
pub struct Sampler {
    /// Filters applied in order before the pick.
    stages: Vec<Box<dyn Stage>>,
    /// `None`: greedy.
    rng: Option<Rng>,
    /// Reused candidate buffer, (n_vocab,) after the first call.
    cands: Candidates,
    /// `stages[..n_pre_temp]` are the penalties: the distribution the logprobs report.
    n_pre_temp: usize,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.stages.iter().map(|s| s.name()).collect();
        f.debug_struct("Sampler")
            .field("stages", &names)
            .field("greedy", &self.rng.is_none())
            .finish()
    }
}

impl Sampler {
    /// Builds the default chain for `params`. Neutral stages are left out.
    pub fn new(params: &SamplingParams) -> Self {
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        let penalties = Penalties::new(
            params.repeat_last_n,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        );
        if penalties.is_active() {
            stages.push(Box::new(penalties));
        }
        let n_pre_temp = stages.len();
        let greedy = params.temperature.is_nan() || params.temperature <= 0.0;
        if !greedy {
            if params.top_k > 0 {
                stages.push(Box::new(TopK::new(params.top_k as usize)));
            }
            if params.top_p < 1.0 {
                stages.push(Box::new(TopP::new(params.top_p, params.min_keep)));
            }
            if params.min_p > 0.0 {
                stages.push(Box::new(MinP::new(params.min_p, params.min_keep)));
            }
            if params.temperature != 1.0 {
                stages.push(Box::new(Temperature::new(params.temperature)));
            }
        }
        let rng = (!greedy).then(|| Rng::from_seed_param(params.seed));
        Sampler {
            stages,
            rng,
            cands: Candidates::default(),
            n_pre_temp,
        }
    }

    /// Builds a chain from explicit stages (for tests and custom orders). `rng = None` means
    /// greedy pick.
    pub fn from_stages(stages: Vec<Box<dyn Stage>>, rng: Option<Rng>) -> Self {
        Sampler {
            n_pre_temp: 0,
            stages,
            rng,
            cands: Candidates::default(),
        }
    }

    /// Picks the next token from `logits` (n_vocab,). Does not call [`accept`](Self::accept).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.stages.is_empty() && self.rng.is_none() {
            return argmax(logits);
        }
        self.cands.fill(logits);
        for stage in &mut self.stages {
            stage.apply(&mut self.cands);
        }
        match &mut self.rng {
            None => self.cands.argmax(),
            Some(rng) => self.cands.draw(rng.next_f64()),
        }
    }

    /// Like [`sample`](Self::sample), and also returns the log-probability of the chosen token
    /// and the `n_top` most likely tokens of the distribution after the penalties, before
    /// top-k/top-p/min-p/temperature.
    pub fn sample_with_logprobs(&mut self, logits: &[f32], n_top: usize) -> Sampled {
        self.cands.fill(logits);
        for stage in &mut self.stages[..self.n_pre_temp] {
            stage.apply(&mut self.cands);
        }
        let dist = self.cands.log_softmax_view();
        for stage in &mut self.stages[self.n_pre_temp..] {
            stage.apply(&mut self.cands);
        }
        let token = match &mut self.rng {
            None => self.cands.argmax(),
            Some(rng) => self.cands.draw(rng.next_f64()),
        };
        let logprob = dist.logprob(token);
        Sampled {
            token,
            logprob,
            top: dist.top(n_top),
        }
    }

    /// Tells every stage which token was chosen (the penalties' history).
    pub fn accept(&mut self, token: u32) {
        for stage in &mut self.stages {
            stage.accept(token);
        }
    }

    /// Forgets the history (a new sequence). The random generator is not reseeded.
    pub fn reset(&mut self) {
        for stage in &mut self.stages {
            stage.reset();
        }
    }
}

/// Index of the highest logit, ties to the lowest id, NaN ignored; 0 when empty or all NaN.
pub fn argmax(logits: &[f32]) -> u32 {
    // Two passes: a branch-free max that vectorizes, then the first index holding it.
    let max = logits
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    logits.iter().position(|&l| l == max).unwrap_or(0) as u32
}
