//! Cases in the metadata key/value section: keys, types, lengths, arrays, nesting.

use super::*;
use slm_gguf::GgufError as E;

pub fn cases() -> Vec<Case> {
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
