//! AVX-512 (F + BW + VL + VNNI, on 256-bit vectors) kernels where they beat the AVX2 ones by
//! enough to matter; the `avx512` level uses the AVX2 kernels for everything else. Each matches
//! the scalar reference of the same name in `scalar.rs` (exact integer block sums; float
//! accumulation order differs).
//!
//! Q5_0 x Q8_0: the 32 fifth bits load straight into a mask register (`kmovd`) and are added
//! as 16 with one masked `vpaddb`; `vpdpbusd` does u8 x i8 -> i32 in one op, so the unsigned
//! values (0..31) are dotted directly; `16 * sum(y)` comes from the activation row's group
//! sums. Groups, scales and lane reduction as in `avx2_legacy::q5_0`, and the i32 lanes are
//! the same, so this kernel is bit-identical to the AVX2 one (and to its four-token form).
//!
//! Safety: the public functions are safe wrappers; they are only placed in the `avx512`
//! dispatch table, which exists only when the CPU reports every feature they enable, and they
//! check the row lengths before any raw-pointer read.

use super::avx2_legacy::{
    dd, dot_4blocks, group_scales, hsum_ps, reduce4_epi32, remove_offset, safe_wrapper_q8_0,
};
use super::layout::*;
use std::arch::x86_64::*;

safe_wrapper_q8_0!(vec_dot_q5_0_q8_0, q5_0, Q5_0_BYTES);
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q5_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    dot_4blocks!(
        nb,
        w,
        a,
        Q5_0_BYTES,
        q5_0_unpack,
        dot_dpbusd,
        reduce4_epi32,
        4,
        q5_0_block
    )
}

/// The 32 Q5_0 quants of the block at `x` as unsigned bytes (value + 16): the fifth bits
/// load straight into a mask register and add 16 with one masked `vpaddb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q5_0_unpack(x: *const u8) -> __m256i {
    let bits = _load_mask32(x.add(2) as *const __mmask32);
    let t = _mm256_broadcastsi128_si256(_mm_loadu_si128(x.add(6) as *const __m128i));
    let nib = _mm256_and_si256(
        _mm256_srlv_epi64(t, _mm256_setr_epi64x(0, 0, 4, 4)),
        _mm256_set1_epi8(0x0f),
    );
    _mm256_mask_add_epi8(nib, bits, nib, _mm256_set1_epi8(16))
}

/// u8 x i8 dot of unsigned weight bytes with the Q8_0 block at `y` (`vpdpbusd`: the same i32
/// lanes as `vpmaddubsw` + `vpmaddwd`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dot_dpbusd(u: __m256i, y: *const u8) -> __m256i {
    let qy = _mm256_loadu_si256(y.add(2) as *const __m256i);
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, qy)
}

/// Integer dot of one Q5_0 block at `x` with one Q8_0 block at `y` (8 i32 lanes), for blocks
/// past the last whole group: `16 * sum(y)` from a second `vpdpbusd`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q5_0_block(x: *const u8, y: *const u8) -> __m256i {
    let qy = _mm256_loadu_si256(y.add(2) as *const __m256i);
    let sy = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(16), qy);
    _mm256_sub_epi32(dot_dpbusd(q5_0_unpack(x), y), sy)
}
