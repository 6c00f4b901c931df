//! The engine: a worker thread that owns the model and KV cache and serves requests over a
//! handle, the batch scheduler, the sampling chain (`sampling`), and the model summary with its
//! memory plan (`info`).

pub mod info;
pub mod sampling;
