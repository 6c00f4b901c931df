//! Dot-product kernels and run-time dispatch: see the crate header.
