//! The engine: a worker thread that owns the model and KV cache and serves requests over a
//! handle, the batch scheduler, and the sampling chain (`sampling`).

pub mod sampling;
