//! A tiny random-weight Gemma 3 written with the GGUF builder: load-time sanity checks (typed
//! errors for bad hyperparameters and tensors), batch validation, the sliding-window mask,
//! KV-cache trimming/truncation and batched == sequential, bit for bit.

use std::sync::Arc;

use slm_gguf::{GgmlType, GgufBuilder, GgufFile, Value};
use slm_model::{Batch, Model, ModelError};

struct Tiny {
    n_layer: u32,
    n_head: u32,
    n_head_kv: u32,
    window: u32,
    swa_pattern: u32,
    /// Dims to override for one tensor (name, dims).
    bad_shape: Option<(&'static str, Vec<u64>)>,
    skip_tensor: Option<&'static str>,
    /// Extra metadata keys.
    extra: Vec<(&'static str, Value)>,
}

const E: u64 = 32;
const HD: u64 = 16;
const FF: u64 = 64;
const V: u64 = 50;

impl Default for Tiny {
    fn default() -> Self {
        Tiny {
            n_layer: 3,
            n_head: 4,
            n_head_kv: 2,
            window: 4,
            swa_pattern: 2,
            bad_shape: None,
            skip_tensor: None,
            extra: Vec::new(),
        }
    }
}

fn rand_f32(n: u64, seed: u64, amp: f32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n as usize * 4);
    for _ in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let x = ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn build(t: &Tiny) -> Result<Model, ModelError> {
    let mut b = GgufBuilder::new();
    let kv = |b: &mut GgufBuilder, k: &str, v: Value| {
        b.kv(k, v).expect("kv");
    };
    kv(
        &mut b,
        "general.architecture",
        Value::String("gemma3".into()),
    );
    kv(&mut b, "gemma3.context_length", Value::U32(256));
    kv(&mut b, "gemma3.embedding_length", Value::U32(E as u32));
    kv(&mut b, "gemma3.block_count", Value::U32(t.n_layer));
    kv(&mut b, "gemma3.feed_forward_length", Value::U32(FF as u32));
    kv(&mut b, "gemma3.attention.head_count", Value::U32(t.n_head));
    kv(
        &mut b,
        "gemma3.attention.head_count_kv",
        Value::U32(t.n_head_kv),
    );
    kv(&mut b, "gemma3.attention.key_length", Value::U32(HD as u32));
    kv(
        &mut b,
        "gemma3.attention.value_length",
        Value::U32(HD as u32),
    );
    kv(
        &mut b,
        "gemma3.attention.layer_norm_rms_epsilon",
        Value::F32(1e-6),
    );
    kv(&mut b, "gemma3.rope.freq_base", Value::F32(1e6));
    kv(
        &mut b,
        "gemma3.attention.sliding_window",
        Value::U32(t.window),
    );
    kv(
        &mut b,
        "gemma3.attention.sliding_window_pattern",
        Value::U32(t.swa_pattern),
    );
    for (k, v) in &t.extra {
        kv(&mut b, k, v.clone());
    }
    let (nh, nkv) = (u64::from(t.n_head.max(1)), u64::from(t.n_head_kv.max(1)));
    let mut tensors: Vec<(String, Vec<u64>, f32)> = vec![
        ("token_embd.weight".into(), vec![E, V], 1.0),
        ("output_norm.weight".into(), vec![E], 0.0),
    ];
    for il in 0..t.n_layer {
        let p = |n: &str| format!("blk.{il}.{n}.weight");
        tensors.extend([
            (p("attn_norm"), vec![E], 0.0),
            (p("attn_q"), vec![E, nh * HD], 0.3),
            (p("attn_k"), vec![E, nkv * HD], 0.3),
            (p("attn_v"), vec![E, nkv * HD], 0.3),
            (p("attn_q_norm"), vec![HD], 0.0),
            (p("attn_k_norm"), vec![HD], 0.0),
            (p("attn_output"), vec![nh * HD, E], 0.3),
            (p("post_attention_norm"), vec![E], 0.0),
            (p("ffn_norm"), vec![E], 0.0),
            (p("ffn_gate"), vec![E, FF], 0.3),
            (p("ffn_up"), vec![E, FF], 0.3),
            (p("ffn_down"), vec![FF, E], 0.3),
            (p("post_ffw_norm"), vec![E], 0.0),
        ]);
    }
    tensors.retain(|(n, _, _)| Some(n.as_str()) != t.skip_tensor);
    for (n, dims, _) in tensors.iter_mut() {
        if let Some((bn, bd)) = &t.bad_shape {
            if n == bn {
                *dims = bd.clone();
            }
        }
    }
    for (n, dims, _) in &tensors {
        b.tensor(n, dims, GgmlType::F32).expect("tensor");
    }
    let mut w = b.write_header(Vec::new()).expect("header");
    for (i, (_, dims, amp)) in tensors.iter().enumerate() {
        let n: u64 = dims.iter().product();
        // Norm weights (amp 0): 1 + noise, like a converted Gemma norm.
        let data = if *amp == 0.0 {
            rand_f32(n, i as u64 + 1, 0.2)
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) + 1.0).to_le_bytes())
                .collect()
        } else {
            rand_f32(n, i as u64 + 1, *amp)
        };
        w.write_tensor(&data).expect("write");
    }
    let bytes = w.finish().expect("finish");
    let file = GgufFile::from_vec(bytes).expect("parse");
    let mut m = Model::from_file(Arc::new(file))?;
    m.set_threads(2);
    Ok(m)
}

fn tiny() -> Model {
    build(&Tiny::default()).expect("tiny model")
}

fn last_logits(m: &mut Model, tokens: &[u32]) -> Vec<f32> {
    let mut kv = m.new_kv_cache(0);
    let l = m
        .forward(&Batch::sequence(tokens, 0, 0), &mut kv)
        .expect("forward");
    l.last().expect("logits").to_vec()
}

#[test]
fn bad_hparams_are_typed_errors() {
    let bad = |t: Tiny| build(&t).err().expect("must fail");
    assert!(matches!(
        bad(Tiny {
            n_layer: 0,
            ..Tiny::default()
        }),
        ModelError::BadHparam { .. }
    ));
    assert!(matches!(
        bad(Tiny {
            n_head: 0,
            ..Tiny::default()
        }),
        ModelError::BadHparam { .. }
    ));
    assert!(matches!(
        bad(Tiny {
            n_head: 4,
            n_head_kv: 3,
            ..Tiny::default()
        }),
        ModelError::BadHparam { .. }
    ));
    assert!(matches!(
        bad(Tiny { skip_tensor: Some("blk.1.ffn_up.weight"), ..Tiny::default() }),
        ModelError::MissingTensor(n) if n == "blk.1.ffn_up.weight"
    ));
    assert!(matches!(
        bad(Tiny {
            bad_shape: Some(("blk.2.attn_k.weight", vec![E, 3 * HD])),
            ..Tiny::default()
        }),
        ModelError::TensorShape { .. }
    ));
}

#[test]
fn bad_batches_are_typed_errors_and_leave_the_cache_alone() {
    let mut m = tiny();
    let mut kv = m.new_kv_cache(64);
    m.forward(&Batch::sequence(&[1, 2, 3], 0, 0), &mut kv)
        .expect("prefill");
    let gap = m.forward(&Batch::sequence(&[4], 5, 0), &mut kv);
    assert!(matches!(
        gap,
        Err(ModelError::PositionGap {
            expected: 3,
            got: 5,
            ..
        })
    ));
    let oov = m.forward(&Batch::sequence(&[V as u32], 3, 0), &mut kv);
    assert!(matches!(oov, Err(ModelError::TokenOutOfRange { .. })));
    assert!(matches!(
        m.forward(&Batch::new(), &mut kv),
        Err(ModelError::EmptyBatch)
    ));
    assert_eq!(kv.seq_len(0), 3);
    let full = m.forward(&Batch::sequence(&vec![1; 62], 3, 0), &mut kv);
    assert!(matches!(full, Err(ModelError::ContextFull { .. })));
    assert_eq!(kv.seq_len(0), 3);
}

#[test]
fn sliding_window_sees_exactly_window_positions() {
    // One sliding layer (pattern > n_layer): the last token sees positions p-W+1 ..= p only.
    let t = Tiny {
        n_layer: 1,
        window: 4,
        swa_pattern: 100,
        ..Tiny::default()
    };
    let mut m = build(&t).expect("model");
    let base: Vec<u32> = (0..10).map(|i| (i * 7 % 50) as u32).collect();
    let want = last_logits(&mut m, &base);
    // Position 5 = p - W for p = 9: outside the window, no effect.
    let mut outside = base.clone();
    outside[5] = 1;
    assert_eq!(last_logits(&mut m, &outside), want);
    // Position 6 = p - W + 1: inside.
    let mut inside = base.clone();
    inside[6] = 1;
    assert_ne!(last_logits(&mut m, &inside), want);
    // A global model sees everything.
    let mut g = build(&Tiny {
        n_layer: 1,
        swa_pattern: 1,
        ..Tiny::default()
    })
    .expect("model");
    let gw = last_logits(&mut g, &base);
    assert_ne!(last_logits(&mut g, &outside), gw);
}

#[test]
fn trimming_and_truncation_do_not_change_results() {
    let mut m = tiny();
    let toks: Vec<u32> = (0..40).map(|i| (i * 13 % 50) as u32).collect();
    // Token by token with aggressive trimming vs the whole prompt at once.
    let mut kv = m.new_kv_cache(0);
    kv.set_keep_extra(0);
    let mut step = Vec::new();
    for (i, &t) in toks.iter().enumerate() {
        let l = m
            .forward(&Batch::sequence(&[t], i as u32, 3), &mut kv)
            .expect("step");
        step = l.last().expect("logits").to_vec();
    }
    assert!(
        kv.memory_bytes() < 40 * 2 * 2 * 32 * 4 * 3,
        "sliding layers were trimmed"
    );
    let whole = last_logits(&mut m, &toks);
    let max_diff = step
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        max_diff < 1e-4,
        "token-by-token vs prefill differ by {max_diff}"
    );

    // Truncate back and replay: same logits; going back past the trimmed window is an error.
    let mut kv = m.new_kv_cache(0);
    m.forward(&Batch::sequence(&toks[..30], 0, 1), &mut kv)
        .expect("prefill");
    kv.truncate_seq(1, 20).expect("truncate within kept rows");
    assert_eq!(kv.seq_len(1), 20);
    let l = m
        .forward(&Batch::sequence(&toks[20..], 20, 1), &mut kv)
        .expect("replay");
    let replay = l.last().expect("logits").to_vec();
    let d = replay
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d < 1e-4, "replay after truncation differs by {d}");
    let mut kv = m.new_kv_cache(0);
    kv.set_keep_extra(0);
    for (i, &t) in toks.iter().enumerate() {
        m.forward(&Batch::sequence(&[t], i as u32, 0), &mut kv)
            .expect("step");
    }
    assert!(matches!(
        kv.truncate_seq(0, 10),
        Err(ModelError::WindowHistoryLost { .. })
    ));
    kv.clear_seq(0);
    assert_eq!(kv.seq_len(0), 0);
    assert_eq!(kv.memory_bytes(), 0);
}

#[test]
fn batched_equals_sequential_bitwise() {
    let mut m = tiny();
    let prompts: Vec<Vec<u32>> = vec![vec![1, 2, 3, 4, 5, 6, 7], vec![9, 8], vec![3; 12], vec![44]];
    let alone: Vec<Vec<f32>> = prompts.iter().map(|p| last_logits(&mut m, p)).collect();
    // Interleave the sequences token by token in one batch.
    let mut kv = m.new_kv_cache(0);
    let mut b = Batch::new();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for (s, p) in prompts.iter().enumerate() {
            if let Some(&t) = p.get(i) {
                b.push(t, i as u32, s as u32, i + 1 == p.len());
            }
        }
    }
    let l = m.forward(&b, &mut kv).expect("batched");
    for (s, p) in prompts.iter().enumerate() {
        let idx = b
            .tokens
            .iter()
            .position(|t| t.seq == s as u32 && t.pos as usize + 1 == p.len())
            .expect("last token");
        let got = l.get(idx).expect("logits");
        let d = got
            .iter()
            .zip(&alone[s])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "sequence {s}: batched and alone differ by {d}");
    }
}

#[test]
fn tracer_sees_named_activations() {
    use slm_model::{Recorder, Tracer};
    use std::sync::{Arc as StdArc, Mutex};
    /// Shares the recorder with the test after the model took the box.
    struct Shared(StdArc<Mutex<Recorder>>);
    impl Tracer for Shared {
        fn record(&mut self, name: &str, layer: Option<usize>, row_len: usize, data: &[f32]) {
            self.0
                .lock()
                .expect("lock")
                .record(name, layer, row_len, data);
        }
    }
    let mut m = tiny();
    let rec = StdArc::new(Mutex::new(Recorder::default()));
    m.set_tracer(Some(Box::new(Shared(rec.clone()))));
    let mut kv = m.new_kv_cache(0);
    let l = m
        .forward(&Batch::sequence(&[1, 2, 3], 0, 0), &mut kv)
        .expect("forward");
    let rec = rec.lock().expect("lock");
    for key in [
        "inp_scaled",
        "attn_norm-0",
        "Qcur-1",
        "kqv_out-2",
        "l_out-2",
        "result_norm",
    ] {
        assert!(rec.entries.contains_key(key), "missing trace {key}");
    }
    let (row_len, data) = &rec.entries["attn_norm-0"];
    assert_eq!((*row_len, data.len()), (E as usize, 3 * E as usize));
    // The last layer keeps only the rows that want logits; result_output is the logits.
    assert_eq!(rec.entries["l_out-2"].1.len(), E as usize);
    assert_eq!(rec.entries["result_output"].1, l.data);
}

#[test]
fn rope_scaling_keys() {
    let linear = Tiny {
        extra: vec![
            ("gemma3.rope.scaling.type", Value::String("linear".into())),
            ("gemma3.rope.scaling.factor", Value::F32(8.0)),
        ],
        ..Tiny::default()
    };
    let m = build(&linear).expect("model");
    assert_eq!(m.hparams().rope_freq_scale, 0.125);
    assert_eq!(tiny().hparams().rope_freq_scale, 1.0);
    let yarn = Tiny {
        extra: vec![("gemma3.rope.scaling.type", Value::String("yarn".into()))],
        ..Tiny::default()
    };
    assert!(matches!(
        build(&yarn).err(),
        Some(ModelError::BadHparam { .. })
    ));
    // Global layers use the scaled frequencies, local ones do not: results differ from the
    // unscaled model only through the global layer (pattern 2: layer 1 is global).
    let toks = [1u32, 5, 9, 13, 17, 21];
    let (mut a, mut b) = (tiny(), build(&linear).expect("model"));
    assert_ne!(last_logits(&mut a, &toks), last_logits(&mut b, &toks));
}

#[test]
fn model_and_cache_can_move_to_an_engine_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Model>();
    assert_send::<slm_model::KvCache>();
}
