//! Quantization formats (one file per format under `formats/`: block struct, bit-layout doc,
//! reference quantize/dequantize) and the compute kernels (`kernels/`: dot products of each
//! weight type with its activation format, scalar reference plus per-ISA versions chosen once at
//! run time).

pub mod formats;
pub mod kernels;
