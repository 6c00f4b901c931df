//! The named cases of the malformed-GGUF corpus (see `malformed.rs`), one file per section of
//! the container: header, metadata, tensor infos, data; plus valid edge cases that must parse.

use super::harness::{self, cat, gt, kv, kv_str, kv_u32, raw, s, str_array, ti, vt, Kv, G};
use slm_gguf::{Gguf, Result};

macro_rules! err {
    ($name:expr, $bytes:expr, $pat:pat) => {
        $crate::malformed_cases::Case {
            name: $name,
            bytes: $bytes,
            want: stringify!($pat),
            check: Box::new(|r: &slm_gguf::Result<slm_gguf::Gguf>| matches!(r, Err($pat))),
        }
    };
}

mod in_data;
mod in_header;
mod in_kv;
mod in_tensors;

pub type Check = Box<dyn Fn(&Result<Gguf>) -> bool>;

pub struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub want: &'static str,
    pub check: Check,
}

pub fn base_with(f: impl FnOnce(&mut G)) -> Vec<u8> {
    G::base().with(f).bytes()
}

/// The base file with one more metadata entry.
pub fn base_plus(k: Kv) -> Vec<u8> {
    base_with(|g| g.kvs.push(k))
}

/// The base file with tensor 0 changed.
pub fn t0(f: impl FnOnce(&mut harness::Ti)) -> Vec<u8> {
    base_with(|g| f(&mut g.tis[0]))
}

pub fn t1(f: impl FnOnce(&mut harness::Ti)) -> Vec<u8> {
    base_with(|g| f(&mut g.tis[1]))
}

pub fn kv_only(kvs: Vec<Kv>) -> Vec<u8> {
    G::kv_only(kvs).bytes()
}

pub fn u32le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub fn u64le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The header part of a file with 4-dim tensors and no data, cut `k` bytes before its end.
pub fn cut_tensor_info(k: usize) -> Vec<u8> {
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

/// Valid edge cases: these must parse.
pub fn valid_cases() -> Vec<(&'static str, Vec<u8>)> {
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

pub fn all_cases() -> Vec<Case> {
    [
        in_header::cases(),
        in_kv::cases(),
        in_tensors::cases(),
        in_data::cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
