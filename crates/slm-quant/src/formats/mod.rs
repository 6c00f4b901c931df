//! Quantization formats: see the crate header.
