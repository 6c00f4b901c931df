//! `slm-hub`: model names -> manifests -> downloads -> the local content-addressed store. The only
//! crate of the workspace that does network I/O.
//!
//! - [`Store`]: blobs by sha256 plus one manifest per `name:tag` under `SLM_HOME` (default `~/.slm`).
//! - [`Digest`] / [`ModelName`]: the validated strings a path may be built from.

#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
mod fsutil;
pub mod manifest;
pub mod name;
pub mod store;

pub use digest::{Digest, Hasher};
pub use error::{HubError, Result};
pub use manifest::{Layer, Manifest};
pub use name::{validate_remote_file_name, ModelName};
pub use store::{GcReport, ListEntry, Store};
