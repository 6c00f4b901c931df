//! Cases in alignment and the data section.

use super::*;
use slm_gguf::GgufError as E;

pub fn cases() -> Vec<Case> {
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
