//! Sampling chain: exact expectations for each stage (hand-computed from llama.cpp's formulas),
//! seeded determinism, greedy ties, log-probabilities, stop strings, and speed on a 262,144-entry
//! vocabulary.

use std::time::Instant;

use slm_engine::sampling::{
    Candidates, MinP, Penalties, Rng, Sampler, SamplingParams, Stage, StopMatcher, Temperature,
    TopK, TopP,
};

fn ids(c: &Candidates) -> Vec<u32> {
    c.data.iter().map(|c| c.id).collect()
}

/// Logits whose softmax is exactly `probs` (up to rounding).
fn logits_of(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|p| p.ln() as f32).collect()
}

#[test]
fn top_k_keeps_exactly_k_ties_to_lowest_id() {
    let logits = [1.0, 5.0, 3.0, 5.0, 2.0, 0.0, 3.0];
    let mut c = Candidates::from_logits(&logits);
    TopK::new(3).apply(&mut c);
    assert_eq!(ids(&c), vec![1, 3, 2]);
    let mut c = Candidates::from_logits(&logits);
    TopK::new(1).apply(&mut c);
    assert_eq!(ids(&c), vec![1]);
    // k larger than the vocabulary keeps everything, sorted.
    let mut c = Candidates::from_logits(&logits);
    TopK::new(100).apply(&mut c);
    assert_eq!(ids(&c), vec![1, 3, 2, 6, 4, 0, 5]);
    // k = 0 disables.
    let mut c = Candidates::from_logits(&logits);
    TopK::new(0).apply(&mut c);
    assert_eq!(c.len(), 7);
}

#[test]
fn top_p_keeps_the_token_that_crosses_p() {
    let logits = logits_of(&[0.05, 0.5, 0.15, 0.3]);
    let run = |p: f32, min_keep: usize| {
        let mut c = Candidates::from_logits(&logits);
        TopP::new(p, min_keep).apply(&mut c);
        ids(&c)
    };
    assert_eq!(run(0.49, 0), vec![1]);
    assert_eq!(run(0.51, 0), vec![1, 3]);
    assert_eq!(run(0.79, 0), vec![1, 3]);
    assert_eq!(run(0.81, 0), vec![1, 3, 2]);
    assert_eq!(run(0.96, 0), vec![1, 3, 2, 0]);
    assert_eq!(run(1.0, 0).len(), 4);
    assert_eq!(run(0.1, 3), vec![1, 3, 2]);
}

#[test]
fn min_p_threshold_is_relative_to_the_top_probability() {
    let logits = logits_of(&[0.05, 0.5, 0.15, 0.3]);
    let run = |p: f32, min_keep: usize| {
        let mut c = Candidates::from_logits(&logits);
        MinP::new(p, min_keep).apply(&mut c);
        let mut v = ids(&c);
        v.sort();
        v
    };
    // threshold = p * 0.5
    assert_eq!(run(0.61, 0), vec![1]); // 0.305 > 0.3
    assert_eq!(run(0.59, 0), vec![1, 3]); // 0.295
    assert_eq!(run(0.29, 0), vec![1, 2, 3]); // 0.145
    assert_eq!(run(0.09, 0), vec![0, 1, 2, 3]); // 0.045
    assert_eq!(run(0.0, 0), vec![0, 1, 2, 3]);
    assert_eq!(run(0.99, 2), vec![1, 3]);
}

#[test]
fn penalties_follow_llama_cpp_formula() {
    // llama.cpp: logit <= 0 ? logit * rp : logit / rp; then logit -= count * freq + (count > 0) * pres
    let logits = [2.0f32, -1.0, 0.5, 3.0];
    let mut pen = Penalties::new(64, 1.5, 0.1, 0.2);
    for t in [0, 1, 0] {
        pen.accept(t);
    }
    let mut c = Candidates::from_logits(&logits);
    pen.apply(&mut c);
    let got: Vec<f32> = c.data.iter().map(|c| c.logit).collect();
    let want = [
        2.0 / 1.5 - 2.0 * 0.1 - 0.2,
        -1.5 - 0.1 - 0.2, // -1.0 * 1.5 - 0.1 - 0.2
        0.5,
        3.0,
    ];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
    // A window of 2 sees only [1, 0].
    let mut pen = Penalties::new(2, 1.5, 0.1, 0.2);
    for t in [0, 1, 0] {
        pen.accept(t);
    }
    let mut c = Candidates::from_logits(&logits);
    pen.apply(&mut c);
    assert!((c.data[0].logit - (2.0 / 1.5 - 0.1 - 0.2)).abs() < 1e-6);
    assert!((c.data[1].logit - (-1.5 - 0.1 - 0.2)).abs() < 1e-6);
    // The same on a non-identity (sorted) list.
    let mut c = Candidates::from_logits(&logits);
    c.sort();
    pen.apply(&mut c);
    let l0 = c.data.iter().find(|c| c.id == 0).map(|c| c.logit);
    assert!((l0.unwrap_or(0.0) - (2.0 / 1.5 - 0.1 - 0.2)).abs() < 1e-6);
    // reset forgets the history.
    pen.reset();
    let mut c = Candidates::from_logits(&logits);
    pen.apply(&mut c);
    assert_eq!(c.data[0].logit, 2.0);
    // The disabled configuration.
    assert!(!Penalties::new(64, 1.0, 0.0, 0.0).is_active());
    assert!(!Penalties::new(0, 1.3, 0.0, 0.0).is_active());
}

#[test]
fn temperature_divides_logits() {
    let mut c = Candidates::from_logits(&[1.0, -2.0, 4.0]);
    Temperature::new(0.5).apply(&mut c);
    let got: Vec<f32> = c.data.iter().map(|c| c.logit).collect();
    assert_eq!(got, vec![2.0, -4.0, 8.0]);
}

#[test]
fn greedy_picks_argmax_with_ties_to_lowest_id() {
    let mut s = Sampler::new(&SamplingParams::greedy());
    assert_eq!(s.sample(&[1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(s.sample(&[f32::NAN, 0.5, f32::NAN, 0.5, 0.1]), 1);
    assert_eq!(s.sample(&[-1.0, -1.0]), 0);
    // Negative temperature is greedy too.
    let p = SamplingParams {
        temperature: -1.0,
        ..SamplingParams::default()
    };
    assert_eq!(Sampler::new(&p).sample(&[0.0, 0.1, 9.0, 9.0]), 2);
}

#[test]
fn greedy_sees_the_penalties() {
    let p = SamplingParams {
        temperature: 0.0,
        repeat_penalty: 2.0,
        ..SamplingParams::default()
    };
    let mut s = Sampler::new(&p);
    let logits = [0.0, 3.0, 2.0];
    assert_eq!(s.sample(&logits), 1);
    s.accept(1);
    // 3.0 / 2 = 1.5 < 2.0
    assert_eq!(s.sample(&logits), 2);
    s.reset();
    assert_eq!(s.sample(&logits), 1);
}

#[test]
fn seeded_sampling_is_deterministic_and_matches_the_distribution() {
    let logits = logits_of(&[0.1, 0.6, 0.3]);
    let params = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 1234,
        ..SamplingParams::default()
    };
    let run = |seed: u64| {
        let mut s = Sampler::new(&SamplingParams {
            seed,
            ..params.clone()
        });
        (0..20_000).map(|_| s.sample(&logits)).collect::<Vec<u32>>()
    };
    let a = run(1234);
    assert_eq!(a, run(1234));
    assert_ne!(a, run(1235));
    let n = a.len() as f64;
    for (id, want) in [(0u32, 0.1), (1, 0.6), (2, 0.3)] {
        let f = a.iter().filter(|&&t| t == id).count() as f64 / n;
        assert!((f - want).abs() < 0.015, "token {id}: {f} vs {want}");
    }
    // The generator itself is fixed by the seed.
    let mut r = Rng::new(42);
    let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
    let mut r2 = Rng::new(42);
    assert_eq!(first, (0..3).map(|_| r2.next_u64()).collect::<Vec<_>>());
}

#[test]
fn default_chain_only_draws_from_the_filtered_set() {
    // top-k 40 of a 1000-token vocabulary: draws never leave the 40 best.
    let logits: Vec<f32> = (0..1000)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
        .collect();
    let mut best: Vec<u32> = (0..1000).collect();
    best.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    best.truncate(40);
    let mut s = Sampler::new(&SamplingParams {
        seed: 7,
        ..SamplingParams::default()
    });
    for _ in 0..2000 {
        let t = s.sample(&logits);
        assert!(best.contains(&t));
    }
}

#[test]
fn logprobs_are_post_penalty_pre_temperature() {
    let logits = [1.0f32, 2.0, 0.5, 2.0];
    let p = SamplingParams {
        temperature: 0.0,
        repeat_penalty: 2.0,
        ..SamplingParams::default()
    };
    let mut s = Sampler::new(&p);
    s.accept(1);
    let out = s.sample_with_logprobs(&logits, 3);
    // Penalized logits: [1.0, 1.0, 0.5, 2.0].
    let pen = [1.0f64, 1.0, 0.5, 2.0];
    let lse = pen.iter().map(|x| x.exp()).sum::<f64>().ln();
    assert_eq!(out.token, 3);
    assert!((f64::from(out.logprob) - (2.0 - lse)).abs() < 1e-6);
    let top: Vec<u32> = out.top.iter().map(|t| t.id).collect();
    assert_eq!(top, vec![3, 0, 1]);
    assert!((f64::from(out.top[1].logprob) - (1.0 - lse)).abs() < 1e-6);
    // Temperature does not change the reported distribution.
    let mut hot = Sampler::new(&SamplingParams {
        temperature: 0.3,
        seed: 1,
        ..SamplingParams::default()
    });
    let o = hot.sample_with_logprobs(&logits, 1);
    let lse = logits.iter().map(|&x| f64::from(x).exp()).sum::<f64>().ln();
    assert!((f64::from(o.top[0].logprob) - (2.0 - lse)).abs() < 1e-6);
}

fn stops(v: &[&str]) -> StopMatcher {
    StopMatcher::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn stop_string_split_across_pushes_is_never_emitted() {
    let mut m = stops(&["</s>", "STOP"]);
    assert_eq!(m.push("Hello <"), ("Hello ".to_string(), false));
    assert_eq!(m.push("/"), (String::new(), false));
    assert_eq!(m.push("s> more"), (String::new(), true));
    assert_eq!(m.push("after"), (String::new(), true));
    assert_eq!(m.flush(), "");
}

#[test]
fn stop_prefix_that_diverges_is_released() {
    let mut m = stops(&["STOP"]);
    assert_eq!(m.push("ST"), (String::new(), false));
    assert_eq!(m.push("OX"), ("STOX".to_string(), false));
    assert_eq!(m.push("S"), (String::new(), false));
    assert_eq!(m.flush(), "S");
    // The earliest occurrence of any stop string wins.
    let mut m = stops(&["b", "abc"]);
    assert_eq!(m.push("xxabc"), ("xx".to_string(), true));
    let mut m = stops(&["abc", "b"]);
    assert_eq!(m.push("xxab"), ("xxa".to_string(), true));
    // No stop strings: everything passes through.
    let mut m = stops(&[]);
    assert_eq!(m.push("a</s>"), ("a</s>".to_string(), false));
}

#[test]
fn stop_matcher_respects_char_boundaries() {
    let mut m = stops(&["é!"]);
    assert_eq!(m.push("café"), ("caf".to_string(), false));
    assert_eq!(m.push("?"), ("é?".to_string(), false));
    assert_eq!(m.push("né"), ("n".to_string(), false));
    assert_eq!(m.push("!x"), (String::new(), true));
}

#[test]
fn sampling_a_262144_vocabulary_is_fast() {
    let n = 262_144;
    let mut x: u32 = 12345;
    let logits: Vec<f32> = (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 8) as f32 / (1u32 << 24) as f32 * 20.0 - 10.0
        })
        .collect();
    let mut s = Sampler::new(&SamplingParams {
        seed: 3,
        repeat_penalty: 1.1,
        ..SamplingParams::default()
    });
    for t in 0..64 {
        s.accept(t);
    }
    let iters = 50;
    let t0 = Instant::now();
    for _ in 0..iters {
        let t = s.sample(&logits);
        s.accept(t);
    }
    let per = t0.elapsed().as_secs_f64() / iters as f64;
    let mut g = Sampler::new(&SamplingParams::greedy());
    let t0 = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(g.sample(&logits));
    }
    let per_greedy = t0.elapsed().as_secs_f64() / iters as f64;
    eprintln!(
        "sample(262144, default chain): {:.3} ms; greedy: {:.3} ms",
        per * 1e3,
        per_greedy * 1e3
    );
    assert!(per < 0.02, "sampling took {per} s per token");
}

#[test]
fn top_p_fast_path_equals_full_sort() {
    // 50,000 candidates (the fast path) against the same filter after a full sort.
    let mut x: u32 = 99;
    let logits: Vec<f32> = (0..50_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 8) as f32 / (1u32 << 24) as f32 * 12.0
        })
        .collect();
    for p in [0.1f32, 0.5, 0.9, 0.95, 0.999] {
        let mut fast = Candidates::from_logits(&logits);
        TopP::new(p, 0).apply(&mut fast);
        let mut slow = Candidates::from_logits(&logits);
        slow.sort();
        TopP::new(p, 0).apply(&mut slow);
        assert_eq!(ids(&fast), ids(&slow), "p = {p}");
        assert!(fast.len() > 1);
    }
}

#[test]
fn sampling_without_top_k_is_fast_enough() {
    let n = 262_144;
    let mut x: u32 = 7;
    let logits: Vec<f32> = (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 8) as f32 / (1u32 << 24) as f32 * 30.0
        })
        .collect();
    let mut s = Sampler::new(&SamplingParams {
        top_k: 0,
        seed: 5,
        ..SamplingParams::default()
    });
    let t0 = Instant::now();
    for _ in 0..10 {
        std::hint::black_box(s.sample(&logits));
    }
    let per = t0.elapsed().as_secs_f64() / 10.0;
    eprintln!(
        "sample(262144, top_k=0, top_p=0.95, min_p=0.05): {:.3} ms",
        per * 1e3
    );
    // A flat worst case (the nucleus holds ~26,000 tokens); generous bound for a shared machine.
    assert!(per < 0.25, "{per} s per token");
}

#[test]
fn params_validation_rejects_non_finite_and_out_of_range() {
    assert!(SamplingParams::default().validate().is_ok());
    assert!(SamplingParams::greedy().validate().is_ok());
    let bad = [
        SamplingParams {
            temperature: f32::NAN,
            ..SamplingParams::default()
        },
        SamplingParams {
            temperature: f32::INFINITY,
            ..SamplingParams::default()
        },
        SamplingParams {
            top_p: 1.5,
            ..SamplingParams::default()
        },
        SamplingParams {
            min_p: -0.1,
            ..SamplingParams::default()
        },
        SamplingParams {
            repeat_penalty: 0.0,
            ..SamplingParams::default()
        },
        SamplingParams {
            frequency_penalty: f32::NAN,
            ..SamplingParams::default()
        },
        SamplingParams {
            presence_penalty: 2.5,
            ..SamplingParams::default()
        },
        SamplingParams {
            repeat_last_n: -2,
            ..SamplingParams::default()
        },
    ];
    for p in bad {
        assert!(p.validate().is_err(), "{p:?}");
    }
}

#[test]
fn sampler_is_send() {
    fn send<T: Send>() {}
    send::<Sampler>();
    send::<StopMatcher>();
}

#[test]
fn top_k_scan_on_a_large_vocabulary_equals_full_sort() {
    // Many ties (values on a coarse grid) over 262,144 ids: the one-pass scan used for small k
    // must keep the same ids, in the same order, as a full sort.
    let mut x: u32 = 4242;
    let logits: Vec<f32> = (0..262_144)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((x >> 16) % 200) as f32 * 0.05
        })
        .collect();
    for k in [1usize, 40, 100] {
        let mut fast = Candidates::from_logits(&logits);
        TopK::new(k).apply(&mut fast);
        let mut slow = Candidates::from_logits(&logits);
        slow.sort();
        slow.data.truncate(k);
        assert_eq!(ids(&fast), ids(&slow), "k = {k}");
    }
}
