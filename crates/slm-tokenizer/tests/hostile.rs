//! Untrusted vocabulary metadata (reliability guide 2.2, data/model-level cases): every malformed
//! vocabulary gives a specific typed error, never a panic.

use slm_gguf::{Array, Gguf, GgufBuilder, Value};
use slm_tokenizer::{Tokenizer, TokenizerError};

type Kv = Vec<(&'static str, Value)>;

fn strings(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| s.to_string()).collect()))
}

/// A small valid SPM vocabulary.
fn spm() -> Kv {
    let toks = [
        "<unk>", "<s>", "</s>", "<0x41>", "<0xC3>", "<0xA9>", "▁", "a", "b", "▁a", "ab", "▁ab",
    ];
    let n = toks.len();
    let mut types = vec![1i32; n];
    types[0] = 2;
    types[1] = 3;
    types[2] = 3;
    types[3] = 6;
    types[4] = 6;
    types[5] = 6;
    let scores: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
    vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", strings(&toks)),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
    ]
}

/// A small valid byte-level BPE vocabulary (every byte's GPT-2 character is a token).
fn bpe() -> Kv {
    let mut toks: Vec<String> = (0..=255u8).map(gpt2_char).collect();
    toks.extend(["ab".to_string(), "Ġa".to_string(), "<|end|>".to_string()]);
    let n = toks.len();
    let mut types = vec![1i32; n];
    types[n - 1] = 3;
    vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("gpt-2".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(toks))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.merges", strings(&["a b", "Ġ a"])),
        ("tokenizer.ggml.eos_token_id", Value::U32(n as u32 - 1)),
    ]
}

fn gpt2_char(b: u8) -> String {
    let keep = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let b = b as u32;
    let cp = if keep(b) {
        b
    } else {
        256 + (0..b).filter(|&x| !keep(x)).count() as u32
    };
    char::from_u32(cp).unwrap().to_string()
}

fn set(mut kv: Kv, key: &'static str, v: Value) -> Kv {
    kv.retain(|(k, _)| *k != key);
    kv.push((key, v));
    kv
}

fn without(mut kv: Kv, key: &str) -> Kv {
    kv.retain(|(k, _)| *k != key);
    kv
}

fn build(kv: Kv) -> Result<Tokenizer, TokenizerError> {
    let mut b = GgufBuilder::new();
    for (k, v) in kv {
        b.kv(k, v).unwrap();
    }
    let bytes = b.write_header(Vec::new()).unwrap().finish().unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    Tokenizer::from_gguf(&g)
}

fn err(kv: Kv) -> TokenizerError {
    match build(kv) {
        Ok(_) => panic!("malformed vocabulary accepted"),
        Err(e) => e,
    }
}

#[test]
fn valid_vocabularies_load_and_encode() {
    let t = build(spm()).unwrap();
    assert_eq!(t.n_vocab(), 12);
    // "ab" -> ▁ab (space prefix), unknown 'é' -> byte fallback <0xC3><0xA9>, 'A' -> <0x41>
    assert_eq!(t.encode("ab", false, false).unwrap(), [11]);
    assert_eq!(t.encode("ab", true, false).unwrap(), [1, 11]);
    assert_eq!(t.encode("é", false, false).unwrap(), [6, 4, 5]);
    assert_eq!(t.encode("A", false, false).unwrap(), [6, 3]);
    assert_eq!(t.decode(&[1, 11, 4, 5]), "abé");
    assert!(t.is_eog(2) && !t.is_eog(1));

    let t = build(bpe()).unwrap();
    assert_eq!(t.encode("ab a", false, false).unwrap(), [256, 257]);
    assert_eq!(t.decode(&[256, 257]), "ab a");
    assert!(t.is_eog(258));
    assert_eq!(
        t.encode("x<|end|>", false, true).unwrap(),
        [b'x' as u32, 258]
    );
    assert_eq!(t.encode("", true, true).unwrap(), Vec::<u32>::new());
}

#[test]
fn empty_vocab() {
    let kv = set(spm(), "tokenizer.ggml.tokens", strings(&[]));
    let kv = without(
        without(kv, "tokenizer.ggml.scores"),
        "tokenizer.ggml.token_type",
    );
    let kv = without(
        without(kv, "tokenizer.ggml.bos_token_id"),
        "tokenizer.ggml.eos_token_id",
    );
    assert_eq!(err(kv), TokenizerError::EmptyVocab);
}

#[test]
fn special_ids_outside_the_vocab() {
    for key in [
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.eot_token_id",
    ] {
        let e = err(set(spm(), key, Value::U32(12)));
        assert!(
            matches!(
                e,
                TokenizerError::SpecialTokenOutOfRange {
                    id: 12,
                    n_vocab: 12,
                    ..
                }
            ),
            "{key}: {e}"
        );
        let e = err(set(spm(), key, Value::U64(u64::MAX)));
        assert!(
            matches!(e, TokenizerError::SpecialTokenOutOfRange { .. }),
            "{key}: {e}"
        );
        let e = err(set(spm(), key, Value::I32(-1)));
        assert!(
            matches!(e, TokenizerError::SpecialTokenOutOfRange { id: -1, .. }),
            "{key}: {e}"
        );
    }
    let e = err(set(
        spm(),
        "tokenizer.ggml.bos_token_id",
        Value::String("1".into()),
    ));
    assert!(matches!(e, TokenizerError::WrongType { .. }));
}

#[test]
fn malformed_byte_tokens() {
    for bad in ["<0x-1>", "<0xZZ>", "<0x100>", "<0x4>", "0x41", "<0x41"] {
        let mut kv = spm();
        let Value::Array(Array::String(toks)) = &mut kv[1].1 else {
            unreachable!()
        };
        toks[3] = bad.to_string();
        let e = err(kv);
        assert_eq!(
            e,
            TokenizerError::InvalidByteToken {
                id: 3,
                text: bad.to_string()
            },
            "{bad}"
        );
    }
}

#[test]
fn scores_and_types_of_the_wrong_length() {
    let e = err(set(
        spm(),
        "tokenizer.ggml.scores",
        Value::Array(Array::F32(vec![0.0; 11])),
    ));
    assert!(matches!(
        e,
        TokenizerError::LengthMismatch {
            expected: 12,
            actual: 11,
            ..
        }
    ));
    let e = err(set(
        spm(),
        "tokenizer.ggml.scores",
        Value::Array(Array::F32(vec![0.0; 13])),
    ));
    assert!(matches!(
        e,
        TokenizerError::LengthMismatch {
            expected: 12,
            actual: 13,
            ..
        }
    ));
    let e = err(set(
        spm(),
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![1; 5])),
    ));
    assert!(matches!(
        e,
        TokenizerError::LengthMismatch { actual: 5, .. }
    ));
    let e = err(set(spm(), "tokenizer.ggml.scores", strings(&["x"; 12])));
    assert!(matches!(e, TokenizerError::WrongType { .. }));
}

#[test]
fn token_type_outside_the_enum() {
    for ty in [7, -1, i32::MAX] {
        let mut types = vec![1i32; 12];
        types[9] = ty;
        let e = err(set(
            spm(),
            "tokenizer.ggml.token_type",
            Value::Array(Array::I32(types)),
        ));
        assert_eq!(
            e,
            TokenizerError::InvalidTokenType {
                id: 9,
                ty: ty as i64
            }
        );
    }
}

#[test]
fn merges_referencing_unknown_tokens() {
    let e = err(set(
        bpe(),
        "tokenizer.ggml.merges",
        strings(&["a b", "x zzz"]),
    ));
    assert!(
        matches!(e, TokenizerError::MergeUnknownToken { index: 1, .. }),
        "{e}"
    );
    let e = err(set(bpe(), "tokenizer.ggml.merges", strings(&["ab"])));
    assert!(
        matches!(e, TokenizerError::MalformedMerge { index: 0, .. }),
        "{e}"
    );
    let e = err(without(bpe(), "tokenizer.ggml.merges"));
    assert_eq!(e, TokenizerError::MissingKey("tokenizer.ggml.merges"));
}

#[test]
fn duplicate_tokens_and_wrong_types() {
    let mut kv = spm();
    let Value::Array(Array::String(toks)) = &mut kv[1].1 else {
        unreachable!()
    };
    toks[8] = "a".to_string();
    assert!(matches!(
        err(kv),
        TokenizerError::DuplicateToken {
            first: 7,
            second: 8,
            ..
        }
    ));

    let e = err(set(
        spm(),
        "tokenizer.ggml.tokens",
        Value::Array(Array::I32(vec![1, 2])),
    ));
    assert!(matches!(e, TokenizerError::WrongType { .. }));
    let e = err(set(
        spm(),
        "tokenizer.ggml.add_bos_token",
        Value::String("yes".into()),
    ));
    assert!(matches!(e, TokenizerError::WrongType { .. }));
}

#[test]
fn unknown_models_and_pre_tokenizers() {
    assert_eq!(
        err(without(spm(), "tokenizer.ggml.model")),
        TokenizerError::MissingKey("tokenizer.ggml.model")
    );
    assert!(matches!(
        err(set(
            spm(),
            "tokenizer.ggml.model",
            Value::String("t5".into())
        )),
        TokenizerError::UnsupportedModel(_)
    ));
    assert!(matches!(
        err(set(
            bpe(),
            "tokenizer.ggml.pre",
            Value::String("no-such".into())
        )),
        TokenizerError::UnsupportedPreTokenizer(_)
    ));
}

#[test]
fn missing_bos_is_an_encode_error_not_a_panic() {
    let kv = set(bpe(), "tokenizer.ggml.add_bos_token", Value::Bool(true));
    let t = build(kv).unwrap();
    // The BPE default BOS id 11 exists in this vocabulary, so BOS is 11.
    assert_eq!(t.encode("a", true, false).unwrap(), [11, b'a' as u32]);
    let kv = set(spm(), "tokenizer.ggml.add_eos_token", Value::Bool(true));
    let kv = without(kv, "tokenizer.ggml.eos_token_id");
    // SPM default EOS is 2.
    assert_eq!(
        build(kv).unwrap().encode("b", true, false).unwrap(),
        [1, 6, 8, 2]
    );
}

#[test]
fn out_of_range_ids_render_as_nothing() {
    let t = build(spm()).unwrap();
    assert!(t.token_to_piece(12).is_empty());
    assert!(t.token_to_piece(u32::MAX).is_empty());
    assert_eq!(t.token_text(u32::MAX), None);
    assert!(!t.is_eog(u32::MAX));
    assert_eq!(t.decode(&[u32::MAX, 7]), "a");
}

#[test]
fn tokenizer_is_shareable_across_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Tokenizer>();
    send_sync::<TokenizerError>();
}
