//! The typed errors of GGUF reading and writing. Every variant says where (offset, key or
//! tensor name) and what was found, so a user sees one precise line.

use crate::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    #[error("not a GGUF file (starts with {found:02x?}, expected \"GGUF\")")]
    BadMagic { found: Vec<u8> },
    #[error("unsupported GGUF version {version} (slm reads versions 2 and 3{hint})")]
    UnsupportedVersion { version: u32, hint: &'static str },
    #[error("truncated file: {what} at offset {offset} needs {need} bytes, only {have} left")]
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        have: u64,
    },
    #[error("header declares {count} {what}, more than the file can hold (at most {max})")]
    CountTooLarge {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("{what} at offset {offset} declares length {len}, above the limit {max}")]
    LengthTooLarge {
        what: &'static str,
        offset: u64,
        len: u64,
        max: u64,
    },
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str, offset: u64 },
    #[error("empty metadata key at offset {offset}")]
    EmptyKey { offset: u64 },
    #[error("duplicate metadata key {key:?}")]
    DuplicateKey { key: String },
    #[error("metadata key {key:?} has unknown value type id {type_id}")]
    BadValueType { key: String, type_id: u32 },
    #[error("metadata key {key:?} holds a nested array, which slm does not accept")]
    NestedArray { key: String },
    #[error("metadata key {key:?} holds a bool byte {byte} (must be 0 or 1)")]
    InvalidBool { key: String, byte: u8 },
    #[error("general.alignment {value} is invalid (must be a u32 power of two, at most 1 MiB)")]
    BadAlignment { value: String },
    #[error("tensor name at offset {offset} has length {len} (must be 1..=63 bytes)")]
    BadTensorName { offset: u64, len: u64 },
    #[error("duplicate tensor name {name:?}")]
    DuplicateTensor { name: String },
    #[error("tensor {tensor:?} has {n_dims} dimensions (must be 1..=4)")]
    BadDimCount { tensor: String, n_dims: u32 },
    #[error("tensor {tensor:?} dimension {index} is {value} (must be >= 1 and the element count must fit in i64)")]
    BadDim {
        tensor: String,
        index: usize,
        value: u64,
    },
    #[error("tensor {tensor:?} has unknown ggml type id {type_id}")]
    UnknownType { tensor: String, type_id: u32 },
    #[error(
        "tensor {tensor:?}: row of {ne0} elements is not a whole number of {ty} blocks of {block}"
    )]
    NotBlockMultiple {
        tensor: String,
        ne0: u64,
        ty: GgmlType,
        block: u64,
    },
    #[error("tensor {tensor:?}: size in bytes overflows")]
    SizeOverflow { tensor: String },
    #[error(
        "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor {tensor:?}: bytes {offset}..{end} lie past the end of the data section ({data_len} bytes)")]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        end: u64,
        data_len: u64,
    },
    #[error("tensors {a:?} and {b:?} overlap in the data section")]
    TensorOverlap { a: String, b: String },
    #[error("data section starts at {data_offset}, past the end of the file ({file_len} bytes)")]
    DataPastEnd { data_offset: u64, file_len: u64 },
    #[error("metadata key {key:?} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key:?} is {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("writer: {0}")]
    Writer(String),
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
