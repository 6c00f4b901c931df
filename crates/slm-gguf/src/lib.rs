//! GGUF, the container slm's models come in: a hardened, zero-copy reader for versions 2 and 3
//! ([`GgufFile`], [`Gguf`]), a streaming writer ([`GgufBuilder`]), and the one ggml tensor type
//! table ([`GgmlType`]) through which every size in slm is computed.
//!
//! Files are untrusted input: parsing never panics, never allocates more than the file's own
//! bytes can justify, and reports every problem as a typed [`GgufError`].
#![forbid(unsafe_code)]

mod error;
mod reader;
mod types;
mod value;
mod writer;

pub use error::{GgufError, Result};
pub use reader::{
    Gguf, GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAX_ARRAY_LEN, MAX_STRING_LEN, MAX_TENSORS,
    MAX_TENSOR_NAME,
};
pub use types::GgmlType;
pub use value::{Array, Value, ValueType};
pub use writer::{GgufBuilder, TensorDataWriter};
