//! Cases in the fixed header: magic, version, counts.

use super::*;
use slm_gguf::GgufError as E;

pub fn cases() -> Vec<Case> {
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
