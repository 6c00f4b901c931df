//! Scheduler invariants with a scripted fake model: the fake model checks that every sequence's
//! positions arrive in order with no gaps (what a KV cache needs), and its logits depend on the
//! whole history of the sequence, so any mix-up between sequences changes the output.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slm_engine::sampling::SamplingParams;
use slm_engine::{
    BatchToken, Detokenizer, Engine, EngineConfig, EngineError, Event, FinishReason,
    GenerateRequest, StepModel,
};

const N_VOCAB: usize = 50;
const EOG: u32 = 0;

struct FakeModel {
    n_ctx: usize,
    max_seqs: usize,
    history: Vec<Vec<u32>>,
    /// Tokens evaluated per slot (shared with the test).
    evaluated: Arc<Mutex<Vec<usize>>>,
    /// Slow each step down (to test cancellation timing).
    delay: Duration,
    steps: Arc<AtomicUsize>,
}

impl FakeModel {
    fn new(max_seqs: usize) -> Self {
        FakeModel {
            n_ctx: 256,
            max_seqs,
            history: vec![Vec::new(); max_seqs],
            evaluated: Arc::new(Mutex::new(vec![0; max_seqs])),
            delay: Duration::ZERO,
            steps: Arc::new(AtomicUsize::new(0)),
        }
    }
}

fn next_token(history: &[u32]) -> u32 {
    // A deterministic function of the whole history; never EOG unless the history says so.
    let mut h: u64 = 1469598103934665603;
    for &t in history {
        h = (h ^ u64::from(t)).wrapping_mul(1099511628211);
    }
    if history.last() == Some(&7) {
        return EOG;
    }
    1 + (h % (N_VOCAB as u64 - 1)) as u32
}

impl StepModel for FakeModel {
    fn n_vocab(&self) -> usize {
        N_VOCAB
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn max_seqs(&self) -> usize {
        self.max_seqs
    }
    fn forward(&mut self, batch: &[BatchToken]) -> Result<Vec<f32>, String> {
        std::thread::sleep(self.delay);
        self.steps.fetch_add(1, Ordering::SeqCst);
        let mut out = Vec::new();
        for t in batch {
            let h = &mut self.history[t.seq as usize];
            if t.pos as usize != h.len() {
                return Err(format!(
                    "seq {} got pos {} but holds {}",
                    t.seq,
                    t.pos,
                    h.len()
                ));
            }
            h.push(t.token);
            self.evaluated.lock().unwrap()[t.seq as usize] += 1;
            if t.logits {
                let mut l = vec![0.0f32; N_VOCAB];
                l[next_token(h) as usize] = 10.0;
                out.extend(l);
            }
        }
        Ok(out)
    }
    fn clear_seq(&mut self, seq: u32) {
        self.history[seq as usize].clear();
    }
    fn truncate_seq(&mut self, seq: u32, n_keep: u32) -> bool {
        self.history[seq as usize].truncate(n_keep as usize);
        true
    }
}

struct FakeDetok;
impl Detokenizer for FakeDetok {
    fn piece(&self, id: u32) -> Vec<u8> {
        format!("<{id}>").into_bytes()
    }
    fn is_eog(&self, id: u32) -> bool {
        id == EOG
    }
}

fn greedy() -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        ..SamplingParams::default()
    }
}

fn request(prompt: Vec<u32>, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt,
        sampling: greedy(),
        max_tokens,
        stop: Vec::new(),
        ignore_eos: false,
        logprobs: None,
        json: None,
    }
}

fn collect(g: slm_engine::Generation) -> (Vec<u32>, String, FinishReason) {
    let (ids, text, finish, _) = collect_done(g);
    (ids, text, finish)
}

fn collect_done(g: slm_engine::Generation) -> (Vec<u32>, String, FinishReason, usize) {
    let mut ids = Vec::new();
    let mut text = String::new();
    for ev in g {
        match ev {
            Event::Token { id, text: t, .. } => {
                ids.push(id);
                text.push_str(&t);
            }
            Event::Done(d) => {
                assert_eq!(d.generated_tokens, ids.len());
                return (ids, text, d.finish, d.cached_tokens);
            }
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
    panic!("stream ended without Done");
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![3, 4, 5],
        vec![9; 40],
        (1..30).filter(|&t| t != 7).collect(),
        vec![11, 12],
    ]
}

#[test]
fn batched_equals_sequential_with_chunked_prefill() {
    // Alone, one at a time.
    let mut alone = Vec::new();
    for p in prompts() {
        let engine = Engine::spawn(
            Box::new(FakeModel::new(1)),
            Arc::new(FakeDetok),
            EngineConfig::default(),
        );
        alone.push(collect(engine.handle().generate(request(p, 20)).unwrap()));
    }
    // Together, with a small batch so prompts are chunked and interleaved with decoding.
    let engine = Engine::spawn(
        Box::new(FakeModel::new(4)),
        Arc::new(FakeDetok),
        EngineConfig {
            n_batch: 8,
            max_queue: 16,
        },
    );
    let h = engine.handle();
    let gens: Vec<_> = prompts()
        .into_iter()
        .map(|p| h.generate(request(p, 20)).unwrap())
        .collect();
    let together: Vec<_> = gens.into_iter().map(collect).collect();
    assert_eq!(alone, together);
    // More requests than slots queue and still complete identically.
    let engine = Engine::spawn(
        Box::new(FakeModel::new(2)),
        Arc::new(FakeDetok),
        EngineConfig {
            n_batch: 5,
            max_queue: 16,
        },
    );
    let h = engine.handle();
    let gens: Vec<_> = prompts()
        .into_iter()
        .map(|p| h.generate(request(p, 20)).unwrap())
        .collect();
    let queued: Vec<_> = gens.into_iter().map(collect).collect();
    assert_eq!(alone, queued);
}

#[test]
fn finish_reasons_and_stop_strings() {
    let engine = Engine::spawn(
        Box::new(FakeModel::new(1)),
        Arc::new(FakeDetok),
        EngineConfig::default(),
    );
    let h = engine.handle();
    let (ids, text, finish) = collect(h.generate(request(vec![1, 2], 5)).unwrap());
    assert_eq!(ids.len(), 5);
    assert_eq!(finish, FinishReason::Length);
    let expect: String = ids.iter().map(|i| format!("<{i}>")).collect();
    assert_eq!(text, expect);

    // A prompt ending in 7 makes the fake model emit EOG at once.
    let (ids, text, finish) = collect(h.generate(request(vec![1, 7], 5)).unwrap());
    assert_eq!(
        (ids, text.as_str(), finish),
        (vec![EOG], "", FinishReason::Stop)
    );

    // A stop string made of the second token's text ends generation before it.
    let (ids, _, _) = collect(h.generate(request(vec![1, 2], 5)).unwrap());
    let stop = format!("<{}>", ids[1]);
    let mut req = request(vec![1, 2], 5);
    req.stop = vec![stop];
    let (ids2, text2, finish2) = collect(h.generate(req).unwrap());
    assert_eq!(finish2, FinishReason::Stop);
    assert_eq!(ids2.len(), 2);
    assert_eq!(text2, format!("<{}>", ids[0]));
}

#[test]
fn rejects_bad_requests() {
    let engine = Engine::spawn(
        Box::new(FakeModel::new(1)),
        Arc::new(FakeDetok),
        EngineConfig::default(),
    );
    let h = engine.handle();
    assert!(matches!(
        h.generate(request(vec![], 5)),
        Err(EngineError::EmptyPrompt)
    ));
    assert!(matches!(
        h.generate(request(vec![1; 256], 5)),
        Err(EngineError::PromptTooLong { .. })
    ));
    assert!(matches!(
        h.generate(request(vec![1, N_VOCAB as u32], 5)),
        Err(EngineError::BadToken { .. })
    ));
}

#[test]
fn cancelled_generation_stops_within_two_tokens() {
    let mut model = FakeModel::new(1);
    model.delay = Duration::from_millis(5);
    let evaluated = model.evaluated.clone();
    let engine = Engine::spawn(
        Box::new(model),
        Arc::new(FakeDetok),
        EngineConfig::default(),
    );
    let h = engine.handle();
    let mut g = h.generate(request(vec![1, 2, 3], 200)).unwrap();
    let mut seen = 0;
    for ev in g.by_ref() {
        if let Event::Token { .. } = ev {
            seen += 1;
            if seen == 5 {
                break;
            }
        }
    }
    let at_cancel = evaluated.lock().unwrap()[0];
    drop(g);
    std::thread::sleep(Duration::from_millis(100));
    let after = evaluated.lock().unwrap()[0];
    assert!(
        after - at_cancel <= 2,
        "{} tokens evaluated after cancel",
        after - at_cancel
    );
    assert_eq!(h.stats().active.load(Ordering::SeqCst), 0);
}

#[test]
fn prefix_reuse_skips_shared_prompt_tokens_and_keeps_results() {
    let model = FakeModel::new(2);
    let evaluated = model.evaluated.clone();
    let engine = Engine::spawn(
        Box::new(model),
        Arc::new(FakeDetok),
        EngineConfig::default(),
    );
    let h = engine.handle();
    let system: Vec<u32> = (10..40).collect();
    let mut first = system.clone();
    first.extend([41, 42]);
    let (a, _, _, cached_a) = collect_done(h.generate(request(first.clone(), 6)).unwrap());
    assert_eq!(cached_a, 0);
    // Same system prompt, different question: the shared 30 tokens come from the cache.
    let mut second = system.clone();
    second.extend([43, 44, 45]);
    let before: usize = evaluated.lock().unwrap().iter().sum();
    let (b, _, _, cached_b) = collect_done(h.generate(request(second.clone(), 6)).unwrap());
    let after: usize = evaluated.lock().unwrap().iter().sum();
    assert_eq!(cached_b, system.len());
    assert_eq!(
        after - before,
        3 + 5,
        "only the new prompt tokens and the decode steps run"
    );
    // Results equal a fresh engine's.
    let fresh = Engine::spawn(
        Box::new(FakeModel::new(1)),
        Arc::new(FakeDetok),
        EngineConfig::default(),
    );
    assert_eq!(
        collect(fresh.handle().generate(request(second.clone(), 6)).unwrap()).0,
        b
    );
    let fresh = Engine::spawn(
        Box::new(FakeModel::new(1)),
        Arc::new(FakeDetok),
        EngineConfig::default(),
    );
    assert_eq!(
        collect(fresh.handle().generate(request(first.clone(), 6)).unwrap()).0,
        a
    );
    // The last prompt again reuses all but its last token (which must run to give logits).
    let (c, _, _, cached_c) = collect_done(h.generate(request(second.clone(), 6)).unwrap());
    assert_eq!(cached_c, second.len() - 1);
    assert_eq!(c, b);
}
