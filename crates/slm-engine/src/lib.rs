//! The engine: a worker thread that owns the model and KV cache and serves requests over a
//! handle (`engine`), the model seam it drives (`model`), the sampling chain (`sampling`), and
//! the model summary with its memory plan (`info`).

pub mod bench;
pub mod engine;
pub mod info;
pub mod json_mode;
pub mod loaded;
pub mod model;
pub mod sampling;

pub use engine::{
    Done, Engine, EngineConfig, EngineError, EngineHandle, Event, FinishReason, GenerateRequest,
    Generation,
};
pub use loaded::{LoadError, LoadOptions, LoadedModel};
pub use model::{BatchToken, Detokenizer, ModelRunner, StepModel};
