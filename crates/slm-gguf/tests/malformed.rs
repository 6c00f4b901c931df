//! The malformed-GGUF corpus of reliability guide 2.2 (container part): named cases, each built
//! by the raw builder of `harness`, each asserting the SPECIFIC typed error, within 100 ms, with
//! at most 16 MiB of extra heap and no allocation larger than the file can justify (counting
//! global allocator). Valid edge cases must parse. Set `SLM_WRITE_CORPUS=DIR` to also write every
//! case to `DIR/<name>.gguf` (e.g. to seed the fuzzer).
//!
//! The guide's data/model-level cases (block_count, head_count, n_embd, context_length, vocab,
//! special ids, byte tokens, scores/merges/token types, required tensors, shapes vs hparams) are
//! model-loading checks, not container checks, and are not here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]

mod harness;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::{
    allocation_limit, cat, gt, kv, kv_str, kv_u32, measure, raw, s, str_array, ti, vt, Counting,
    Kv, G, HEAP_LIMIT,
};
use slm_gguf::{Gguf, GgufError as E, Result};

#[global_allocator]
static ALLOC: Counting = Counting;

type Check = Box<dyn Fn(&Result<Gguf>) -> bool>;

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    want: &'static str,
    check: Check,
}

macro_rules! err {
    ($name:expr, $bytes:expr, $pat:pat) => {
        Case {
            name: $name,
            bytes: $bytes,
            want: stringify!($pat),
            check: Box::new(|r: &Result<Gguf>| matches!(r, Err($pat))),
        }
    };
}

fn base_with(f: impl FnOnce(&mut G)) -> Vec<u8> {
    G::base().with(f).bytes()
}

/// The base file with one more metadata entry.
fn base_plus(k: Kv) -> Vec<u8> {
    base_with(|g| g.kvs.push(k))
}

/// The base file with tensor 0 changed.
fn t0(f: impl FnOnce(&mut harness::Ti)) -> Vec<u8> {
    base_with(|g| f(&mut g.tis[0]))
}

fn t1(f: impl FnOnce(&mut harness::Ti)) -> Vec<u8> {
    base_with(|g| f(&mut g.tis[1]))
}

fn kv_only(kvs: Vec<Kv>) -> Vec<u8> {
    G::kv_only(kvs).bytes()
}

fn u32le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn u64le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The header part of a file with 4-dim tensors and no data, cut `k` bytes before its end.
fn cut_tensor_info(k: usize) -> Vec<u8> {
    let g = G::base().with(|g| {
        g.tis = vec![
            ti("first", &[8, 2, 1, 1], gt::F32, 0),
            ti("second", &[8, 2, 1, 1], gt::F32, 64),
        ];
    });
    let mut h = g.header();
    h.truncate(h.len() - k);
    h
}

fn header_cases() -> Vec<Case> {
    let small = G::base().bytes().len() as u64;
    vec![
        err!(
            "header-bad-magic",
            base_with(|g| g.magic = b"GGUX".to_vec()),
            E::BadMagic { .. }
        ),
        err!(
            "header-magic-lowercase",
            base_with(|g| g.magic = b"gguf".to_vec()),
            E::BadMagic { .. }
        ),
        err!("header-empty-file", vec![], E::BadMagic { .. }),
        err!("header-3-byte-file", b"GGU".to_vec(), E::BadMagic { .. }),
        err!(
            "cve-2024-39720-magic-only",
            b"GGUF".to_vec(),
            E::Truncated {
                what: "version",
                ..
            }
        ),
        err!(
            "header-no-counts",
            cat(&[b"GGUF", &u32le(3)]),
            E::Truncated {
                what: "tensor count",
                ..
            }
        ),
        err!(
            "header-no-kv-count",
            cat(&[b"GGUF", &u32le(3), &u64le(0)]),
            E::Truncated {
                what: "metadata count",
                ..
            }
        ),
        err!(
            "header-version-0",
            base_with(|g| g.version = 0),
            E::UnsupportedVersion { version: 0, .. }
        ),
        err!(
            "header-version-1",
            base_with(|g| g.version = 1),
            E::UnsupportedVersion { version: 1, .. }
        ),
        err!(
            "header-version-4",
            base_with(|g| g.version = 4),
            E::UnsupportedVersion { version: 4, .. }
        ),
        err!(
            "header-version-u32-max",
            base_with(|g| g.version = u32::MAX),
            E::UnsupportedVersion {
                version: u32::MAX,
                ..
            }
        ),
        err!(
            "header-version-big-endian",
            base_with(|g| g.version = 3u32.swap_bytes()),
            E::UnsupportedVersion {
                hint: "; this looks like a big-endian file",
                ..
            }
        ),
        err!(
            "header-n-tensors-minus-1",
            base_with(|g| g.n_tensors = Some(u64::MAX)),
            E::CountTooLarge {
                what: "tensors",
                ..
            }
        ),
        err!(
            "header-n-tensors-2pow40",
            base_with(|g| g.n_tensors = Some(1 << 40)),
            E::CountTooLarge {
                what: "tensors",
                ..
            }
        ),
        err!(
            "header-n-tensors-above-file-size-div-24",
            base_with(|g| g.n_tensors = Some(small / 24 + 1)),
            E::CountTooLarge {
                what: "tensors",
                ..
            }
        ),
        err!(
            "header-n-kv-minus-1",
            base_with(|g| g.n_kv = Some(u64::MAX)),
            E::CountTooLarge {
                what: "metadata entries",
                ..
            }
        ),
        err!(
            "header-n-kv-2pow40",
            base_with(|g| g.n_kv = Some(1 << 40)),
            E::CountTooLarge {
                what: "metadata entries",
                ..
            }
        ),
        err!(
            "header-n-kv-1-nothing-follows",
            cat(&[b"GGUF", &u32le(3), &u64le(0), &u64le(1)]),
            E::CountTooLarge {
                what: "metadata entries",
                ..
            }
        ),
    ]
}

fn kv_cases() -> Vec<Case> {
    let arr = |ty: u32, count: u64, body: &[u8]| cat(&[&u32le(ty), &u64le(count), body]);
    let align = |k: Kv| {
        base_plus(Kv {
            key: s("general.alignment"),
            ..k
        })
    };
    vec![
        err!(
            "kv-key-length-minus-1",
            kv_only(vec![Kv {
                key: raw(u64::MAX, b"k"),
                ty: vt::U32,
                val: u32le(1)
            }]),
            E::LengthTooLarge {
                what: "metadata key",
                ..
            }
        ),
        err!(
            "kv-empty-key-24263",
            kv_only(vec![Kv {
                key: raw(0, b""),
                ty: vt::U32,
                val: u32le(1)
            }]),
            E::EmptyKey { .. }
        ),
        err!(
            "kv-key-length-2pow20",
            kv_only(vec![Kv {
                key: raw(1 << 20, b"k"),
                ty: vt::U32,
                val: u32le(1)
            }]),
            E::LengthTooLarge {
                what: "metadata key",
                ..
            }
        ),
        err!(
            "kv-key-length-65537",
            kv_only(vec![Kv {
                key: raw(65537, b"k"),
                ty: vt::U32,
                val: u32le(1)
            }]),
            E::LengthTooLarge {
                what: "metadata key",
                ..
            }
        ),
        err!(
            "kv-key-longer-than-file",
            kv_only(vec![Kv {
                key: raw(1000, b"abc"),
                ty: vt::U32,
                val: u32le(1)
            }]),
            E::Truncated {
                what: "metadata key",
                ..
            }
        ),
        err!(
            "kv-key-not-utf8",
            kv_only(vec![Kv {
                key: raw(3, &[b'a', 0xC3, 0x28]),
                ty: vt::U32,
                val: u32le(1)
            }]),
            E::InvalidUtf8 {
                what: "metadata key",
                ..
            }
        ),
        err!(
            "kv-duplicate-key-19856",
            base_plus(kv_u32("llama.context_length", 256)),
            E::DuplicateKey { .. }
        ),
        err!(
            "kv-value-type-13",
            base_plus(kv("x.y", 13, u32le(0))),
            E::BadValueType { type_id: 13, .. }
        ),
        err!(
            "kv-value-type-minus-1",
            base_plus(kv("x.y", u32::MAX, u32le(0))),
            E::BadValueType {
                type_id: u32::MAX,
                ..
            }
        ),
        err!(
            "kv-value-type-missing",
            kv_only(vec![Kv {
                key: s("abcdefghij"),
                ty: vt::U32,
                val: vec![]
            }])
            .split_at(4 + 4 + 16 + 18)
            .0
            .to_vec(),
            E::Truncated {
                what: "value type",
                ..
            }
        ),
        err!(
            "kv-nested-array",
            base_plus(kv(
                "x.y",
                vt::ARRAY,
                arr(vt::ARRAY, 1, &arr(vt::U8, 1, &[7]))
            )),
            E::NestedArray { .. }
        ),
        err!(
            "kv-array-elem-type-99",
            base_plus(kv("x.y", vt::ARRAY, arr(99, 1, &[7]))),
            E::BadValueType { type_id: 99, .. }
        ),
        err!(
            "kv-string-length-2pow63",
            base_plus(kv("x.y", vt::STRING, raw(1 << 63, b"abc"))),
            E::LengthTooLarge {
                what: "string value",
                ..
            }
        ),
        err!(
            "kv-string-longer-than-file",
            kv_only(vec![kv("x.y", vt::STRING, raw(4096, b"abc"))]),
            E::Truncated {
                what: "string value",
                ..
            }
        ),
        err!(
            "kv-array-2pow62-i64",
            base_plus(kv("x.y", vt::ARRAY, arr(vt::I64, 1 << 62, &[0; 16]))),
            E::CountTooLarge {
                what: "array elements",
                ..
            }
        ),
        err!(
            "kv-array-u64max-u8",
            base_plus(kv("x.y", vt::ARRAY, arr(vt::U8, u64::MAX, &[0; 16]))),
            E::CountTooLarge {
                what: "array elements",
                ..
            }
        ),
        err!(
            "kv-array-u32-past-end",
            kv_only(vec![kv("x.y", vt::ARRAY, arr(vt::U32, 10, &[0; 20]))]),
            E::CountTooLarge {
                what: "array elements",
                ..
            }
        ),
        err!(
            "kv-array-strings-count-past-end",
            kv_only(vec![kv("x.y", vt::ARRAY, arr(vt::STRING, 1000, &s("ab")))]),
            E::CountTooLarge {
                what: "array elements",
                ..
            }
        ),
        err!(
            "kv-array-of-strings-one-truncated",
            kv_only(vec![kv(
                "x.y",
                vt::ARRAY,
                arr(vt::STRING, 3, &cat(&[&s("a"), &s("b"), &raw(50, b"cd")]))
            )]),
            E::Truncated {
                what: "array string",
                ..
            }
        ),
        err!(
            "kv-array-string-length-2pow40",
            base_plus(kv(
                "x.y",
                vt::ARRAY,
                arr(vt::STRING, 1, &raw(1 << 40, b"cd"))
            )),
            E::LengthTooLarge {
                what: "array string",
                ..
            }
        ),
        err!(
            "kv-array-string-not-utf8",
            base_plus(kv("x.y", vt::ARRAY, arr(vt::STRING, 1, &raw(1, &[0xFF])))),
            E::InvalidUtf8 {
                what: "array string",
                ..
            }
        ),
        err!(
            "kv-string-not-utf8",
            base_plus(kv("x.y", vt::STRING, raw(2, &[0xED, 0xA0]))),
            E::InvalidUtf8 {
                what: "string value",
                ..
            }
        ),
        err!(
            "kv-bool-2",
            base_plus(kv("x.y", vt::BOOL, vec![2])),
            E::InvalidBool { byte: 2, .. }
        ),
        err!(
            "kv-bool-array-7",
            base_plus(kv("x.y", vt::ARRAY, arr(vt::BOOL, 3, &[1, 0, 7]))),
            E::InvalidBool { byte: 7, .. }
        ),
        err!(
            "kv-u64-value-truncated",
            kv_only(vec![kv("x.y", vt::U64, vec![1, 2, 3])]),
            E::Truncated {
                what: "u64 value",
                ..
            }
        ),
        err!(
            "kv-f64-value-truncated",
            kv_only(vec![kv("x.y", vt::F64, vec![1, 2, 3, 4, 5])]),
            E::Truncated {
                what: "f64 value",
                ..
            }
        ),
        err!(
            "cve-2025-0317-alignment-0",
            align(kv_u32("", 0)),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-alignment-3",
            align(kv_u32("", 3)),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-alignment-13",
            align(kv_u32("", 13)),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-alignment-2pow30",
            align(kv_u32("", 1 << 30)),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-alignment-typed-i32",
            align(kv("", vt::I32, 32i32.to_le_bytes().to_vec())),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-alignment-typed-u64",
            align(kv("", vt::U64, u64le(32))),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-alignment-typed-string",
            align(kv_str("", "32")),
            E::BadAlignment { .. }
        ),
        err!(
            "kv-chat-template-64mib",
            base_plus(kv(
                "tokenizer.chat_template",
                vt::STRING,
                raw(64 << 20, b"{{ x }}")
            )),
            E::LengthTooLarge {
                what: "string value",
                ..
            }
        ),
        Case {
            name: "kv-chat-template-not-a-string",
            bytes: base_plus(kv_u32("tokenizer.chat_template", 5)),
            want: "Ok, then require_str -> WrongType",
            check: Box::new(|r: &Result<Gguf>| {
                matches!(
                    r.as_ref().map(|g| g.require_str("tokenizer.chat_template")),
                    Ok(Err(E::WrongType { .. }))
                )
            }),
        },
    ]
}

fn tensor_cases() -> Vec<Case> {
    let aliasing = G::base()
        .with(|g| {
            g.tis = (0..10_000)
                .map(|i| ti(&format!("t{i}"), &[8], gt::F32, 0))
                .collect();
        })
        .bytes();
    vec![
        err!(
            "ti-name-length-0",
            t0(|t| t.name = raw(0, b"")),
            E::BadTensorName { len: 0, .. }
        ),
        err!(
            "ti-name-length-64",
            t0(|t| t.name = s(&"n".repeat(64))),
            E::BadTensorName { len: 64, .. }
        ),
        err!(
            "ti-name-length-65",
            t0(|t| t.name = s(&"n".repeat(65))),
            E::BadTensorName { len: 65, .. }
        ),
        err!(
            "ti-name-length-2pow32",
            t0(|t| t.name = raw(1 << 32, b"abc")),
            E::BadTensorName {
                len: 4294967296,
                ..
            }
        ),
        err!(
            "ti-name-length-minus-1",
            t0(|t| t.name = raw(u64::MAX, b"abc")),
            E::BadTensorName { .. }
        ),
        err!(
            "ti-name-not-utf8",
            t0(|t| t.name = raw(2, &[0xFF, 0xFE])),
            E::InvalidUtf8 {
                what: "tensor name",
                ..
            }
        ),
        err!(
            "ti-duplicate-name",
            t1(|t| t.name = s("a")),
            E::DuplicateTensor { .. }
        ),
        err!(
            "ti-n-dims-0",
            t0(|t| t.n_dims = 0),
            E::BadDimCount { n_dims: 0, .. }
        ),
        err!(
            "ti-n-dims-5",
            t0(|t| t.n_dims = 5),
            E::BadDimCount { n_dims: 5, .. }
        ),
        err!(
            "ti-n-dims-8",
            t0(|t| t.n_dims = 8),
            E::BadDimCount { n_dims: 8, .. }
        ),
        err!(
            "cve-2024-21802-ndims-255",
            t0(|t| t.n_dims = 255),
            E::BadDimCount { n_dims: 255, .. }
        ),
        err!(
            "ti-n-dims-u32-max",
            t0(|t| t.n_dims = u32::MAX),
            E::BadDimCount {
                n_dims: u32::MAX,
                ..
            }
        ),
        err!(
            "ti-dim-0-24263",
            t0(|t| t.dims = vec![8, 0]),
            E::BadDim {
                index: 1,
                value: 0,
                ..
            }
        ),
        err!(
            "ti-dim-minus-1",
            t0(|t| t.dims = vec![u64::MAX, 2]),
            E::BadDim { index: 0, .. }
        ),
        err!(
            "ti-dim-2pow42-plus-1-18674",
            t0(|t| {
                t.n_dims = 1;
                t.dims = vec![(1 << 42) + 1]
            }),
            E::TensorOutOfBounds { .. }
        ),
        err!(
            "ti-dims-i64max-2-1-1-27203",
            t0(|t| {
                t.n_dims = 4;
                t.dims = vec![i64::MAX as u64, 2, 1, 1]
            }),
            E::BadDim { index: 1, .. }
        ),
        err!(
            "ti-elements-overflow-u64",
            t0(|t| t.dims = vec![1 << 32, 1 << 32]),
            E::BadDim { index: 1, .. }
        ),
        err!(
            "ti-bytes-overflow-not-elements",
            t0(|t| {
                t.ty = gt::F64;
                t.n_dims = 1;
                t.dims = vec![1 << 61]
            }),
            E::SizeOverflow { .. }
        ),
        err!(
            "ti-q4_0-ne0-33-25288",
            t1(|t| t.dims = vec![33, 2]),
            E::NotBlockMultiple {
                ne0: 33,
                block: 32,
                ..
            }
        ),
        err!(
            "ti-q4_k-ne0-896",
            t1(|t| {
                t.ty = gt::Q4_K;
                t.dims = vec![896, 1]
            }),
            E::NotBlockMultiple {
                ne0: 896,
                block: 256,
                ..
            }
        ),
        err!(
            "ti-q8_0-ne0-1",
            t1(|t| {
                t.ty = gt::Q8_0;
                t.dims = vec![1, 1]
            }),
            E::NotBlockMultiple { ne0: 1, .. }
        ),
        err!(
            "ti-type-4-removed",
            t0(|t| t.ty = 4),
            E::UnknownType { type_id: 4, .. }
        ),
        err!(
            "ti-type-31-removed",
            t0(|t| t.ty = 31),
            E::UnknownType { type_id: 31, .. }
        ),
        err!(
            "ti-type-42-unknown",
            t0(|t| t.ty = 42),
            E::UnknownType { type_id: 42, .. }
        ),
        err!(
            "ti-type-minus-1-19856",
            t0(|t| t.ty = u32::MAX),
            E::UnknownType {
                type_id: u32::MAX,
                ..
            }
        ),
        err!(
            "ti-offset-minus-1",
            t1(|t| t.offset = u64::MAX),
            E::MisalignedTensor { .. }
        ),
        err!(
            "ti-offset-unaligned",
            t1(|t| t.offset = 68),
            E::MisalignedTensor {
                offset: 68,
                alignment: 32,
                ..
            }
        ),
        err!(
            "ti-offset-u64max-minus-8",
            t1(|t| t.offset = u64::MAX - 8),
            E::MisalignedTensor { .. }
        ),
        err!(
            "ti-offset-u64max-minus-31-aligned",
            t1(|t| t.offset = u64::MAX - 31),
            E::TensorOutOfBounds { .. }
        ),
        err!(
            "ti-offset-equal-data-len",
            t1(|t| t.offset = 128),
            E::TensorOutOfBounds { offset: 128, .. }
        ),
        err!(
            "ti-offset-past-end-aligned",
            t1(|t| t.offset = 160),
            E::TensorOutOfBounds { offset: 160, .. }
        ),
        err!(
            "cve-2026-7482-offset-past-eof",
            t1(|t| t.offset = 1 << 40),
            E::TensorOutOfBounds { .. }
        ),
        err!(
            "ti-overlapping-tensors",
            t1(|t| t.offset = 32),
            E::TensorOverlap { .. }
        ),
        err!(
            "ti-same-offset",
            t1(|t| t.offset = 0),
            E::TensorOverlap { .. }
        ),
        err!(
            "ti-10000-tensors-aliasing",
            aliasing,
            E::TensorOverlap { .. }
        ),
        err!(
            "ti-bytes-past-data-section",
            t1(|t| t.offset = 96),
            E::TensorOutOfBounds {
                offset: 96,
                end: 132,
                ..
            }
        ),
        err!(
            "ti-name-truncated",
            cut_tensor_info(62 - 8 - 2),
            E::Truncated {
                what: "tensor name",
                ..
            }
        ),
        err!(
            "ti-dims-truncated",
            cut_tensor_info(20),
            E::Truncated {
                what: "tensor dimension",
                ..
            }
        ),
        err!(
            "ti-type-truncated",
            cut_tensor_info(10),
            E::Truncated {
                what: "tensor type",
                ..
            }
        ),
        err!(
            "ti-offset-truncated",
            cut_tensor_info(3),
            E::Truncated {
                what: "tensor offset",
                ..
            }
        ),
    ]
}

fn data_cases() -> Vec<Case> {
    vec![
        err!(
            "data-one-byte-short",
            base_with(|g| g.data.truncate(99)),
            E::TensorOutOfBounds { end: 100, .. }
        ),
        err!(
            "data-section-empty",
            base_with(|g| g.data.clear()),
            E::TensorOutOfBounds { data_len: 0, .. }
        ),
        err!(
            "data-no-padding-no-data",
            base_with(|g| {
                g.data.clear();
                g.pad = false;
                g.kvs.push(kv_str("pad", "x"))
            }),
            E::DataPastEnd { .. }
        ),
        err!(
            "data-alignment-64-offsets-at-32",
            base_with(|g| {
                g.kvs.push(kv_u32("general.alignment", 64));
                g.tis[1].offset = 96;
                g.data.resize(160, 0)
            }),
            E::MisalignedTensor {
                offset: 96,
                alignment: 64,
                ..
            }
        ),
    ]
}

/// Valid edge cases: these must parse.
fn valid_cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("valid-base", G::base().bytes()),
        (
            "valid-empty-header",
            cat(&[b"GGUF", &u32le(3), &u64le(0), &u64le(0)]),
        ),
        ("valid-version-2", base_with(|g| g.version = 2)),
        (
            "valid-no-tensors-unpadded",
            base_with(|g| {
                g.tis.clear();
                g.pad = false;
                g.data.clear()
            }),
        ),
        (
            "valid-alignment-1-odd-offsets",
            base_with(|g| {
                g.kvs.push(kv_u32("general.alignment", 1));
                g.tis[1].offset = 65;
                g.pad = false
            }),
        ),
        ("valid-name-63", t0(|t| t.name = s(&"n".repeat(63)))),
        (
            "valid-4-dims",
            t0(|t| {
                t.n_dims = 4;
                t.dims = vec![4, 1, 2, 2]
            }),
        ),
        (
            "valid-empty-array-and-string",
            base_with(|g| {
                g.kvs.push(kv("e.a", vt::ARRAY, str_array(&[])));
                g.kvs.push(kv_str("e.s", ""))
            }),
        ),
        (
            "valid-every-scalar",
            base_with(|g| {
                for (i, (ty, n)) in [
                    (vt::U8, 1),
                    (vt::I8, 1),
                    (vt::U16, 2),
                    (vt::I16, 2),
                    (vt::I32, 4),
                    (vt::F32, 4),
                    (vt::BOOL, 1),
                    (vt::U64, 8),
                    (vt::I64, 8),
                    (vt::F64, 8),
                ]
                .into_iter()
                .enumerate()
                {
                    g.kvs.push(kv(&format!("s.{i}"), ty, vec![1; n]));
                }
            }),
        ),
        (
            "valid-f16-q4k-q8_0",
            base_with(|g| {
                g.tis = vec![
                    ti("h", &[4, 2], gt::F16, 0),
                    ti("k", &[256], gt::Q4_K, 32),
                    ti("q", &[32], gt::Q8_0, 192),
                ];
                g.data = vec![0; 256];
            }),
        ),
    ]
}

fn all_cases() -> Vec<Case> {
    [header_cases(), kv_cases(), tensor_cases(), data_cases()]
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn malformed_corpus_gives_the_specific_typed_error() {
    let cases = all_cases();
    let mut names = HashSet::new();
    let write_to = std::env::var_os("SLM_WRITE_CORPUS").map(std::path::PathBuf::from);
    let mut failures = Vec::new();
    for case in &cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        if let Some(dir) = &write_to {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{}.gguf", case.name)), &case.bytes).unwrap();
        }
        let t = Instant::now();
        let (r, heap) = measure(|| Gguf::parse(&case.bytes));
        let elapsed = t.elapsed();
        if !(case.check)(&r) {
            failures.push(format!(
                "{}: want {}, got {:?}",
                case.name,
                case.want,
                r.as_ref().map(|_| "Ok")
            ));
        }
        if elapsed > Duration::from_millis(100) {
            failures.push(format!("{}: took {elapsed:?}", case.name));
        }
        if heap.peak_extra > HEAP_LIMIT || heap.largest > allocation_limit(case.bytes.len()) {
            failures.push(format!(
                "{}: heap {heap:?} for {} bytes",
                case.name,
                case.bytes.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 80, "only {} malformed cases", cases.len());
}

#[test]
fn valid_edge_cases_parse() {
    for (name, bytes) in valid_cases() {
        let (r, heap) = measure(|| Gguf::parse(&bytes));
        let g = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(heap.peak_extra <= HEAP_LIMIT, "{name}: {heap:?}");
        if name == "valid-alignment-1-odd-offsets" {
            assert_eq!((g.alignment, g.tensors()[1].offset), (1, 65));
        }
    }
}

/// Every error names what it found in one line (the Display text is what users see).
#[test]
fn errors_display_one_line() {
    for case in all_cases() {
        if let Err(e) = Gguf::parse(&case.bytes) {
            let msg = e.to_string();
            assert!(
                !msg.is_empty() && !msg.contains('\n') && msg.len() < 400,
                "{}: {msg}",
                case.name
            );
        }
    }
}

/// The counting allocator counts: the heap limits above are not vacuous.
#[test]
fn counting_allocator_sees_allocations() {
    let (v, heap) = measure(|| vec![1u8; 3 << 20]);
    assert_eq!(v.len(), 3 << 20);
    assert!(
        heap.peak_extra >= 3 << 20 && heap.largest >= 3 << 20,
        "{heap:?}"
    );
    // A 10 MiB string actually present in the file is read (and counted).
    let big = G::base()
        .with(|g| g.kvs.push(kv_str("big", &"x".repeat(10 << 20))))
        .bytes();
    let (r, heap) = measure(|| Gguf::parse(&big));
    assert_eq!(r.unwrap().get_str("big").map(str::len), Some(10 << 20));
    assert!(heap.largest >= 10 << 20, "{heap:?}");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Inputs found by the fuzz targets (fuzz/), kept as regression tests.
#[test]
fn fuzz_regressions() {
    // gguf_header, 2026-11-27: an F64 NaN value (all bits set) under a key with a NUL in it. The
    // parser was right (Ok); the target compared values with `==`, and NaN != NaN. The value must
    // come back bit-exact.
    let bytes = unhex(concat!(
        "474755460300000000000000000000000200000000000000140000000000000067656e6572616c2e61726368",
        "69746563747572650800000008000000000000007465737461726368110000000000000067656e6572616c2e",
        "6100030000000000000c000000ffffffffffffffff00"
    ));
    let g = Gguf::parse(&bytes).unwrap();
    let (k, v) = &g.metadata()[1];
    assert_eq!(k, "general.a\0\u{3}\0\0\0\0\0\0");
    match v {
        slm_gguf::Value::F64(x) => assert_eq!(x.to_bits(), u64::MAX),
        other => panic!("{other:?}"),
    }
    assert!(std::ptr::eq(g.get(k).unwrap(), v));
}
