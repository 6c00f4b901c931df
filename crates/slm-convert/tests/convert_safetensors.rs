//! Malformed safetensors files (reliability guide 2.2, safetensors cases): each must give its
//! specific typed error, quickly, without panicking; plus valid files written by the PyPI
//! `safetensors` package layout (8-byte length, JSON, data) and by our own writer.

use std::time::Instant;

use slm_convert::hf::safetensors::{
    parse_header, write_f32, HfTensors, SafeTensors, StProblem, MAX_HEADER,
};
use slm_convert::Error;

/// A file from a header string and a data section.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn problem(bytes: &[u8]) -> StProblem {
    let t = Instant::now();
    let r = parse_header(bytes);
    assert!(
        t.elapsed().as_millis() < 1000,
        "parse took {:?}",
        t.elapsed()
    );
    match r {
        Ok(h) => panic!("accepted: {:?}", h.tensors),
        Err(p) => p,
    }
}

fn one(dtype: &str, shape: &str, offsets: &str, data_len: usize) -> Vec<u8> {
    file(
        &format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#),
        &vec![0u8; data_len],
    )
}

#[test]
fn header_length_cases() {
    assert_eq!(problem(&[]), StProblem::TooShort(0));
    assert_eq!(problem(&[1, 0, 0, 0, 0, 0, 0]), StProblem::TooShort(7));
    assert_eq!(problem(&0u64.to_le_bytes()), StProblem::HeaderTooSmall(0));
    // N = 8 with a valid 8-byte header is fine; N = 8 past the end is not.
    assert!(parse_header(&file("{}      ", &[])).is_ok());
    assert_eq!(
        problem(&8u64.to_le_bytes()),
        StProblem::HeaderPastEnd {
            len: 8,
            file_len: 8
        }
    );
    let big = MAX_HEADER + 1;
    assert_eq!(
        problem(&big.to_le_bytes()),
        StProblem::HeaderTooLarge { len: big }
    );
    // 4 GB declared in a tiny file (attack 2): refused before any allocation.
    let mut v = (4u64 << 30).to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    assert_eq!(problem(&v), StProblem::HeaderTooLarge { len: 4 << 30 });
    let mut v = 1000u64.to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    assert_eq!(
        problem(&v),
        StProblem::HeaderPastEnd {
            len: 1000,
            file_len: 10
        }
    );
    assert_eq!(
        problem(&u64::MAX.to_le_bytes()),
        StProblem::HeaderTooLarge { len: u64::MAX }
    );
}

#[test]
fn header_text_cases() {
    let mut v = 4u64.to_le_bytes().to_vec();
    v.extend_from_slice(&[b'{', 0xff, 0xfe, b'}']);
    assert_eq!(problem(&v), StProblem::HeaderNotUtf8);
    assert_eq!(problem(&file(" {}", &[])), StProblem::HeaderNotObject);
    assert_eq!(problem(&file("[1,2]", &[])), StProblem::HeaderNotObject);
    assert!(matches!(
        problem(&file("{\"w\":{", &[])),
        StProblem::Json(_)
    ));
    // Nesting depth 10k: a parse error (serde_json's recursion limit), not a stack overflow.
    let deep = format!(
        "{{\"__metadata__\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(matches!(problem(&file(&deep, &[])), StProblem::Json(_)));
    // __metadata__ with a non-string value.
    assert_eq!(
        problem(&file(r#"{"__metadata__":{"format":1}}"#, &[])),
        StProblem::BadMetadata
    );
    // Duplicate tensor name: the reference keeps the last one; we refuse.
    let dup = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert_eq!(
        problem(&file(dup, &[0; 8])),
        StProblem::DuplicateTensor("a".into())
    );
}

#[test]
fn tensor_entry_cases() {
    assert!(matches!(
        problem(&one("Q4", "[2]", "[0,2]", 2)),
        StProblem::UnknownDtype { .. }
    ));
    assert!(matches!(
        problem(&one("F4", "[2]", "[0,1]", 1)),
        StProblem::SubByteDtype { .. }
    ));
    assert!(matches!(
        problem(&one("F6_E2M3", "[4]", "[0,3]", 3)),
        StProblem::SubByteDtype { .. }
    ));
    assert_eq!(
        problem(&one("F32", "[2,0]", "[0,0]", 0)),
        StProblem::ZeroDim {
            tensor: "w".into(),
            index: 1
        }
    );
    assert_eq!(
        problem(&one("F32", "[4294967296,4294967296,2]", "[0,8]", 8)),
        StProblem::SizeOverflow { tensor: "w".into() }
    );
    // Elements fit u64, bytes do not.
    assert_eq!(
        problem(&one("F32", "[4611686018427387904,2]", "[0,8]", 8)),
        StProblem::SizeOverflow { tensor: "w".into() }
    );
    assert!(matches!(
        problem(&one("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]", 4)),
        StProblem::TooManyDims { n: 9, .. }
    ));
    assert!(matches!(
        problem(&one("F32", "[2]", "[8,0]", 8)),
        StProblem::ReversedOffsets { .. }
    ));
    assert_eq!(
        problem(&one("F32", "[3]", "[0,8]", 8)),
        StProblem::ByteLength {
            tensor: "w".into(),
            expected: 12,
            actual: 8
        }
    );
    assert!(matches!(
        problem(&one("F32", "[2]", "[4,12]", 12)),
        StProblem::NotContiguous {
            begin: 4,
            expected: 0,
            ..
        }
    ));
    assert!(matches!(
        problem(&one("F32", "[2]", "[0,8]", 4)),
        StProblem::PastEnd {
            end: 8,
            data_len: 4,
            ..
        }
    ));
    assert_eq!(
        problem(&one("F32", "[2]", "[0,8]", 12)),
        StProblem::TrailingBytes {
            data_len: 12,
            covered: 8
        }
    );
    assert!(matches!(
        problem(&one("F32", "[-1]", "[0,4]", 4)),
        StProblem::Json(_)
    ));
    assert!(matches!(
        problem(&one("F32", "[1]", "[0,4,8]", 4)),
        StProblem::Json(_)
    ));
}

#[test]
fn offsets_must_tile_the_data() {
    let two = |a: &str, b: &str, len: usize| {
        file(
            &format!(
                r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":{a}}},"b":{{"dtype":"F32","shape":[2],"data_offsets":{b}}}}}"#
            ),
            &vec![0u8; len],
        )
    };
    // Valid, listed out of data order: accepted and sorted by offset.
    let h = parse_header(&two("[8,16]", "[0,8]", 16)).expect("valid");
    assert_eq!(h.tensors[0].name, "b");
    // Overlapping.
    assert!(matches!(
        problem(&two("[0,8]", "[4,12]", 12)),
        StProblem::NotContiguous {
            begin: 4,
            expected: 8,
            ..
        }
    ));
    // Aliasing the same bytes.
    assert!(matches!(
        problem(&two("[0,8]", "[0,8]", 8)),
        StProblem::NotContiguous { .. }
    ));
    // Gap.
    assert!(matches!(
        problem(&two("[0,8]", "[12,20]", 20)),
        StProblem::NotContiguous {
            begin: 12,
            expected: 8,
            ..
        }
    ));
}

#[test]
fn hundred_thousand_tensors_parse_quickly() {
    let mut h = String::from("{");
    for i in 0..100_000 {
        if i > 0 {
            h.push(',');
        }
        h.push_str(&format!(
            r#""t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{}]}}"#,
            i + 1
        ));
    }
    h.push('}');
    let bytes = file(&h, &vec![0u8; 100_000]);
    let t = Instant::now();
    let parsed = parse_header(&bytes).expect("valid");
    assert_eq!(parsed.tensors.len(), 100_000);
    assert!(t.elapsed().as_secs_f64() < 1.0, "{:?}", t.elapsed());
}

#[test]
fn truncation_sweep_never_panics() {
    let a: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let mut buf = Vec::new();
    write_f32(
        &mut buf,
        &[("a".into(), vec![2, 3], &a), ("b".into(), vec![2], &a[..2])],
        &[("format", "pt")],
    )
    .expect("write");
    assert!(parse_header(&buf).is_ok());
    for cut in 0..buf.len() {
        assert!(
            parse_header(&buf[..cut]).is_err(),
            "truncated at {cut} accepted"
        );
    }
    for i in 0..buf.len() {
        for bit in 0..8 {
            let mut b = buf.clone();
            b[i] ^= 1 << bit;
            let _ = parse_header(&b);
        }
    }
}

#[test]
fn written_file_round_trips_and_matches_python_layout() {
    let a: Vec<f32> = vec![1.0, -2.5, 3.25, 0.0];
    let mut buf = Vec::new();
    write_f32(&mut buf, &[("x.weight".into(), vec![2, 2], &a)], &[]).expect("write");
    let st = SafeTensors::from_vec("mem", buf.clone()).expect("parse");
    let t = &st.tensors()[0];
    assert_eq!(t.shape, vec![2, 2]);
    let vals = slm_convert::hf::safetensors::to_f32(t, st.data(t)).expect("f32");
    assert_eq!(vals, a);
    // The header is padded to 8 bytes like the reference writer.
    let n = u64::from_le_bytes(buf[..8].try_into().unwrap());
    assert_eq!(n % 8, 0);
}

#[test]
fn folder_errors_are_typed() {
    let dir = std::env::temp_dir().join(format!("slm-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = HfTensors::open(&dir).err().expect("empty folder");
    assert!(matches!(e, Error::MissingFile { .. }), "{e}");
    // An index naming a file outside the folder.
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"../evil.safetensors"}}"#,
    )
    .unwrap();
    let e = HfTensors::open(&dir).err().expect("bad shard name");
    assert!(matches!(e, Error::HfConfig { .. }), "{e}");
    // Sharded: two files, index must match contents exactly.
    let a = [1.0f32, 2.0];
    let mut f1 = Vec::new();
    write_f32(&mut f1, &[("a".into(), vec![2], &a)], &[]).unwrap();
    let mut f2 = Vec::new();
    write_f32(&mut f2, &[("b".into(), vec![2], &a)], &[]).unwrap();
    std::fs::write(dir.join("model-00001-of-00002.safetensors"), &f1).unwrap();
    std::fs::write(dir.join("model-00002-of-00002.safetensors"), &f2).unwrap();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let t = HfTensors::open(&dir).expect("sharded");
    let names: Vec<&str> = t.iter().map(|(t, _)| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let e = HfTensors::open(&dir).err().expect("mismatched index");
    assert!(matches!(e, Error::HfConfig { .. }), "{e}");
    // The same tensor in two shards.
    std::fs::write(dir.join("model-00002-of-00002.safetensors"), &f1).unwrap();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let e = HfTensors::open(&dir)
        .err()
        .expect("duplicate across shards");
    assert!(
        matches!(
            e,
            Error::Safetensors {
                problem: StProblem::DuplicateTensor(_),
                ..
            }
        ),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
