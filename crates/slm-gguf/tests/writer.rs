//! The writer refuses what slm's reader would reject (so slm never writes a file it cannot read)
//! and checks what is streamed against what was declared.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use slm_gguf::{Array, GgmlType, GgufBuilder, GgufError as E, GgufFile, Value};

fn err<T>(r: Result<T, E>) -> E {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn metadata_the_reader_would_reject_is_refused() {
    let mut b = GgufBuilder::new();
    assert!(matches!(err(b.kv("", Value::U8(1))), E::Writer(_)));
    b.kv("a", Value::U8(1)).unwrap();
    assert!(matches!(
        err(b.kv("a", Value::U8(2))),
        E::DuplicateKey { .. }
    ));
    assert!(matches!(
        err(b.kv(&"k".repeat(65537), Value::U8(1))),
        E::Writer(_)
    ));
    for bad in [
        Value::U32(0),
        Value::U32(3),
        Value::U32(2 << 20),
        Value::U64(32),
        Value::I32(32),
    ] {
        assert!(matches!(
            err(b.kv("general.alignment", bad)),
            E::BadAlignment { .. }
        ));
    }
    let huge = "x".repeat((16 << 20) + 1);
    assert!(matches!(
        err(b.kv("s", Value::String(huge.clone()))),
        E::Writer(_)
    ));
    assert!(matches!(
        err(b.kv("s", Value::Array(Array::String(vec![huge])))),
        E::Writer(_)
    ));
    b.kv("general.alignment", Value::U32(1 << 20)).unwrap();
}

#[test]
fn tensors_the_reader_would_reject_are_refused() {
    let mut b = GgufBuilder::new();
    assert!(matches!(
        err(b.tensor("", &[4], GgmlType::F32)),
        E::BadTensorName { .. }
    ));
    assert!(matches!(
        err(b.tensor(&"n".repeat(64), &[4], GgmlType::F32)),
        E::BadTensorName { len: 64, .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[], GgmlType::F32)),
        E::BadDimCount { .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[1, 1, 1, 1, 1], GgmlType::F32)),
        E::BadDimCount { .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[4, 0], GgmlType::F32)),
        E::BadDim { index: 1, .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[33], GgmlType::Q4_0)),
        E::NotBlockMultiple { ne0: 33, .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[1 << 61], GgmlType::F64)),
        E::SizeOverflow { .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[1 << 32, 1 << 32], GgmlType::I8)),
        E::SizeOverflow { .. }
    ));
    assert!(matches!(
        err(b.tensor("t", &[1 << 62, 2], GgmlType::I8)),
        E::SizeOverflow { .. }
    ));
    b.tensor(&"n".repeat(63), &[4], GgmlType::F32).unwrap();
    assert!(matches!(
        err(b.tensor(&"n".repeat(63), &[4], GgmlType::F32)),
        E::DuplicateTensor { .. }
    ));
}

#[test]
fn streamed_data_must_match_the_declaration() {
    let mut b = GgufBuilder::new();
    b.tensor("a", &[3], GgmlType::F32).unwrap();
    b.tensor("b", &[32], GgmlType::Q8_0).unwrap();
    let mut w = b.write_header(Vec::new()).unwrap();
    assert_eq!(w.next_tensor(), Some(("a", 12)));
    assert!(matches!(err(w.write_tensor(&[0; 11])), E::Writer(_)));
    w.write_tensor(&[1; 12]).unwrap();
    assert_eq!(w.next_tensor(), Some(("b", 34)));
    let mut b2 = GgufBuilder::new();
    b2.tensor("a", &[3], GgmlType::F32).unwrap();
    let w2 = b2.write_header(Vec::new()).unwrap();
    assert!(matches!(err(w2.finish()), E::Writer(_)));
    w.write_tensor(&[2; 34]).unwrap();
    assert!(matches!(err(w.write_tensor(&[])), E::Writer(_)));
    let out = w.finish().unwrap();
    let f = GgufFile::from_vec(out).unwrap();
    assert_eq!(f.tensor("a").unwrap().1, &[1; 12]);
    assert_eq!(f.tensor("b").unwrap().1, &[2; 34]);
    assert_eq!(f.tensor("b").unwrap().0.offset, 32);
}
