//! Byte sizes and offsets of the ggml block layouts the kernels read (the on-disk layout; the
//! kernels currently compute on it directly, see `repack` for where other compute layouts go).
//!
//! ```text
//! Q4_0   18 B / 32:  d:f16 | qs[16]  (elem j = low nibble of qs[j], elem j+16 = high nibble)
//! Q4_1   20 B / 32:  d:f16 m:f16 | qs[16]
//! Q5_0   22 B / 32:  d:f16 | qh:u32 (bit j = 5th bit of elem j) | qs[16]
//! Q5_1   24 B / 32:  d:f16 m:f16 | qh:u32 | qs[16]
//! Q8_0   34 B / 32:  d:f16 | qs[32]:i8
//! Q8_1   36 B / 32:  d:f16 s:f16 (= d * sum(qs)) | qs[32]:i8
//! IQ4_NL 18 B / 32:  d:f16 | qs[16] (4-bit indices into KVALUES_IQ4NL)
//! Q2_K   84 B / 256: scales[16] (lo 4 bits scale, hi 4 bits min) | qs[64] | d:f16 dmin:f16
//! Q3_K  110 B / 256: hmask[32] | qs[64] | scales[12] (16 x 6 bit) | d:f16
//! Q4_K  144 B / 256: d:f16 dmin:f16 | scales[12] (8 x 6-bit scale + 8 x 6-bit min) | qs[128]
//! Q5_K  176 B / 256: d:f16 dmin:f16 | scales[12] | qh[32] | qs[128]
//! Q6_K  210 B / 256: ql[128] | qh[64] | scales[16]:i8 | d:f16
//! Q8_K  292 B / 256: d:f32 | qs[256]:i8 | bsums[16]:i16 (sums of 16 consecutive qs)
//! IQ4_XS 136 B / 256: d:f16 | scales_h:u16 | scales_l[4] | qs[128]
//! TQ1_0  54 B / 256: qs[48] (5 trits/byte) | qh[4] (4 trits/byte) | d:f16
//! TQ2_0  66 B / 256: qs[64] (4 x 2 bits/byte) | d:f16
//! ```
//!
//! Q8_0 ACTIVATION rows (what `Kernels::quantize` writes, `ActType::compute_bytes` long) are
//! the `nb` Q8_0 blocks, byte for byte, followed by 64 bytes per whole group of four blocks
//! (group `g` = blocks `4g..4g + 4`; a last partial group has none), computed once per row and
//! shared by every weight row it is dotted with:
//!
//! ```text
//! sums[8]: i32  sum(qs[0..16]) of blocks 4g..4g+4, then sum(qs[16..32]) of the same blocks
//! d[8]:    f32  d of blocks 4g..4g+4 as f32, twice
//! ```
//!
//! The sums let the unsigned-quant kernels (Q4_0, Q5_0) remove their offset (8, 16) per group
//! instead of per element; the f32 scales spare a gather + convert per group. Both are laid out
//! like a four-block step's reduced lanes (`avx2_legacy::reduce4_epi32`).

/// Elements per block of the 32-element formats.
pub const QK: usize = 32;
/// Elements per super-block of the K-quants, IQ4_XS, TQ*_0 and Q8_K.
pub const QK_K: usize = 256;

pub const Q4_0_BYTES: usize = 18;
pub const Q4_1_BYTES: usize = 20;
pub const Q5_0_BYTES: usize = 22;
pub const Q5_1_BYTES: usize = 24;
pub const Q8_0_BYTES: usize = 34;
pub const Q8_1_BYTES: usize = 36;
pub const IQ4_NL_BYTES: usize = 18;
pub const Q2_K_BYTES: usize = 84;
pub const Q3_K_BYTES: usize = 110;
pub const Q4_K_BYTES: usize = 144;
pub const Q5_K_BYTES: usize = 176;
pub const Q6_K_BYTES: usize = 210;
pub const Q8_K_BYTES: usize = 292;
pub const IQ4_XS_BYTES: usize = 136;
pub const TQ1_0_BYTES: usize = 54;
pub const TQ2_0_BYTES: usize = 66;

/// Extra bytes of a Q8_0 activation row per whole group of four blocks (see the module doc).
pub const Q8_0_GROUP_EXTRA: usize = 64;

/// Bytes of a Q8_0 activation row of `nb` blocks with its per-group extras.
pub const fn q8_0_act_bytes(nb: usize) -> usize {
    nb * Q8_0_BYTES + nb / 4 * Q8_0_GROUP_EXTRA
}

/// Offset of `qs` in a Q8_K block.
pub const Q8K_QS: usize = 4;
/// Offset of `bsums` in a Q8_K block.
pub const Q8K_BSUMS: usize = 4 + QK_K;

/// The IQ4_NL / IQ4_XS non-linear code book (ggml's `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];
