//! Cases in the tensor-info section: names, dims, types, offsets.

use super::*;
use slm_gguf::GgufError as E;

pub fn cases() -> Vec<Case> {
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
