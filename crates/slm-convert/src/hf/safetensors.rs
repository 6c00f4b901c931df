//! Hardened safetensors reader over a memory map (reliability guide 2.2, safetensors cases).
//!
//! Layout: `u64` little-endian header length `N`, `N` bytes of UTF-8 JSON (an object whose
//! keys are tensor names, plus an optional `__metadata__` object of strings), then the data
//! section. Each tensor entry is `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}`
//! with offsets relative to the data section.
//!
//! Everything is validated once, at open time: the header length against the file and a cap,
//! the JSON (duplicate names rejected, unlike the reference which keeps the last), every dtype,
//! shape (no zero dims, no overflow), byte length (= elements x dtype size) and offsets, which
//! must tile the data section exactly (first at 0, no gap, no overlap, last end = data length).
//! Nothing is allocated from a declared size: the JSON parser only grows with the header bytes
//! that exist, and tensor bytes are borrowed from the map.
//!
//! [`HfTensors`] (in `shards.rs`) opens a model folder: `model.safetensors`, or the shards
//! named by `model.safetensors.index.json`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::hf::shards::HfTensors;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use slm_mmap::Mapped;

use crate::error::{Error, Result};

/// Largest JSON header accepted (the reference implementation's cap).
pub const MAX_HEADER: u64 = 100_000_000;
/// Most tensors in one file.
pub const MAX_TENSORS: usize = 1 << 20;
/// Most dimensions of one tensor.
pub const MAX_DIMS: usize = 8;
/// Largest `model.safetensors.index.json` accepted.
pub const MAX_INDEX: u64 = 64 << 20;

/// What is wrong with a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StProblem {
    #[error("file of {0} bytes is shorter than the 8-byte header length")]
    TooShort(u64),
    #[error("header length {0} is below 2 (the smallest JSON object)")]
    HeaderTooSmall(u64),
    #[error("header length {len} exceeds the cap of {MAX_HEADER} bytes")]
    HeaderTooLarge { len: u64 },
    #[error("header length {len} runs past the end of the {file_len}-byte file")]
    HeaderPastEnd { len: u64, file_len: u64 },
    #[error("header is not UTF-8")]
    HeaderNotUtf8,
    #[error("header does not start with '{{'")]
    HeaderNotObject,
    #[error("header JSON: {0}")]
    Json(String),
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),
    #[error("__metadata__ is not an object of strings")]
    BadMetadata,
    #[error("more than {MAX_TENSORS} tensors")]
    TooManyTensors,
    #[error("tensor {tensor:?}: unknown dtype {dtype:?}")]
    UnknownDtype { tensor: String, dtype: String },
    #[error("tensor {tensor:?}: dtype {dtype} has elements smaller than a byte")]
    SubByteDtype { tensor: String, dtype: String },
    #[error("tensor {tensor:?}: {n} dimensions (at most {MAX_DIMS})")]
    TooManyDims { tensor: String, n: usize },
    #[error("tensor {tensor:?}: dimension {index} is 0")]
    ZeroDim { tensor: String, index: usize },
    #[error("tensor {tensor:?}: size overflows")]
    SizeOverflow { tensor: String },
    #[error("tensor {tensor:?}: data_offsets [{begin}, {end}] are reversed")]
    ReversedOffsets {
        tensor: String,
        begin: u64,
        end: u64,
    },
    #[error("tensor {tensor:?}: {actual} bytes, but dtype x shape needs {expected}")]
    ByteLength {
        tensor: String,
        expected: u64,
        actual: u64,
    },
    #[error("tensor {tensor:?}: starts at {begin}, expected {expected} (gap or overlap)")]
    NotContiguous {
        tensor: String,
        begin: u64,
        expected: u64,
    },
    #[error("tensor {tensor:?}: ends at {end}, past the {data_len}-byte data section")]
    PastEnd {
        tensor: String,
        end: u64,
        data_len: u64,
    },
    #[error("data section has {data_len} bytes, tensors cover {covered}")]
    TrailingBytes { data_len: u64, covered: u64 },
}

/// Element type of a safetensors tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "F8_E5M2" => Dtype::F8E5M2,
            "F8_E4M3" => Dtype::F8E4M3,
            "I16" => Dtype::I16,
            "U16" => Dtype::U16,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I32" => Dtype::I32,
            "U32" => Dtype::U32,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            "U64" => Dtype::U64,
            _ => return None,
        })
    }

    /// The name as safetensors spells it.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E5M2 | Dtype::F8E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One validated tensor entry. `shape` is in safetensors (row-major, outermost first) order;
/// `begin..end` is relative to the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub n_elements: u64,
    pub begin: u64,
    pub end: u64,
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// The header as parsed: entries in file order, duplicates refused while parsing.
struct RawHeader {
    entries: Vec<(String, RawEntry)>,
    metadata: Vec<(String, String)>,
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a safetensors header object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawHeader, A::Error> {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        let mut metadata = None;
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("\u{0}dup:{key}")));
            }
            if key == "__metadata__" {
                let m: Option<serde_json::Map<String, serde_json::Value>> = map.next_value()?;
                let mut out = Vec::new();
                for (k, v) in m.unwrap_or_default() {
                    match v {
                        serde_json::Value::String(s) => out.push((k, s)),
                        _ => return Err(de::Error::custom("\u{0}meta")),
                    }
                }
                metadata = Some(out);
            } else {
                if entries.len() >= MAX_TENSORS {
                    let _: IgnoredAny = map.next_value()?;
                    return Err(de::Error::custom("\u{0}many"));
                }
                entries.push((key, map.next_value::<RawEntry>()?));
            }
        }
        Ok(RawHeader {
            entries,
            metadata: metadata.unwrap_or_default(),
        })
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<RawHeader, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

/// A parsed header: tensors sorted by data offset, metadata, where the data starts.
#[derive(Debug, Clone)]
pub struct Header {
    pub tensors: Vec<StTensor>,
    pub metadata: Vec<(String, String)>,
    /// Offset of the data section in the file (8 + header length).
    pub data_start: u64,
}

fn json_problem(e: serde_json::Error) -> StProblem {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("\u{0}dup:") {
        // serde_json appends " at line L column C"; keep just the name.
        let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
        return StProblem::DuplicateTensor(name.to_string());
    }
    if msg.starts_with("\u{0}meta") {
        return StProblem::BadMetadata;
    }
    if msg.starts_with("\u{0}many") {
        return StProblem::TooManyTensors;
    }
    StProblem::Json(msg)
}

/// Parse and validate the header of a safetensors file held in `buf`.
pub fn parse_header(buf: &[u8]) -> std::result::Result<Header, StProblem> {
    let file_len = buf.len() as u64;
    let len_bytes: [u8; 8] = buf
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(StProblem::TooShort(file_len))?;
    let n = u64::from_le_bytes(len_bytes);
    if n < 2 {
        return Err(StProblem::HeaderTooSmall(n));
    }
    if n > MAX_HEADER {
        return Err(StProblem::HeaderTooLarge { len: n });
    }
    let data_start = n
        .checked_add(8)
        .filter(|&e| e <= file_len)
        .ok_or(StProblem::HeaderPastEnd { len: n, file_len })?;
    let header = usize::try_from(data_start)
        .ok()
        .and_then(|e| buf.get(8..e))
        .ok_or(StProblem::HeaderPastEnd { len: n, file_len })?;
    let text = std::str::from_utf8(header).map_err(|_| StProblem::HeaderNotUtf8)?;
    if !text.starts_with('{') {
        return Err(StProblem::HeaderNotObject);
    }
    // The writer pads the header with trailing spaces; serde_json accepts trailing whitespace.
    let raw: RawHeader = serde_json::from_str(text).map_err(json_problem)?;
    let data_len = file_len.saturating_sub(data_start);

    let mut tensors = Vec::with_capacity(raw.entries.len());
    for (name, e) in raw.entries {
        let dtype = match Dtype::parse(&e.dtype) {
            Some(d) => d,
            None if matches!(e.dtype.as_str(), "F4" | "F6_E2M3" | "F6_E3M2" | "F8_E8M0") => {
                return Err(StProblem::SubByteDtype {
                    tensor: name,
                    dtype: e.dtype,
                })
            }
            None => {
                return Err(StProblem::UnknownDtype {
                    tensor: name,
                    dtype: e.dtype,
                })
            }
        };
        if e.shape.len() > MAX_DIMS {
            return Err(StProblem::TooManyDims {
                tensor: name,
                n: e.shape.len(),
            });
        }
        if let Some(index) = e.shape.iter().position(|&d| d == 0) {
            return Err(StProblem::ZeroDim {
                tensor: name,
                index,
            });
        }
        let n_elements = e.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let nbytes = n_elements.and_then(|n| n.checked_mul(dtype.size()));
        let (Some(n_elements), Some(nbytes)) = (n_elements, nbytes) else {
            return Err(StProblem::SizeOverflow { tensor: name });
        };
        let [begin, end] = e.data_offsets;
        if end < begin {
            return Err(StProblem::ReversedOffsets {
                tensor: name,
                begin,
                end,
            });
        }
        let actual = end.saturating_sub(begin);
        if actual != nbytes {
            return Err(StProblem::ByteLength {
                tensor: name,
                expected: nbytes,
                actual,
            });
        }
        tensors.push(StTensor {
            name,
            dtype,
            shape: e.shape,
            n_elements,
            begin,
            end,
        });
    }
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut expected = 0u64;
    for t in &tensors {
        if t.begin != expected {
            return Err(StProblem::NotContiguous {
                tensor: t.name.clone(),
                begin: t.begin,
                expected,
            });
        }
        if t.end > data_len {
            return Err(StProblem::PastEnd {
                tensor: t.name.clone(),
                end: t.end,
                data_len,
            });
        }
        expected = t.end;
    }
    if expected != data_len {
        return Err(StProblem::TrailingBytes {
            data_len,
            covered: expected,
        });
    }
    Ok(Header {
        tensors,
        metadata: raw.metadata,
        data_start,
    })
}

/// One mapped, validated safetensors file.
pub struct SafeTensors {
    path: PathBuf,
    map: Mapped,
    header: Header,
}

impl SafeTensors {
    /// Map and validate `path`.
    pub fn open(path: &Path) -> Result<SafeTensors> {
        let map = Mapped::open(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_mapped(path.to_path_buf(), map)
    }

    /// Validate bytes held in memory (tests, fuzzing); `name` is used in errors.
    pub fn from_vec(name: &str, bytes: Vec<u8>) -> Result<SafeTensors> {
        Self::from_mapped(PathBuf::from(name), Mapped::from_vec(bytes))
    }

    fn from_mapped(path: PathBuf, map: Mapped) -> Result<SafeTensors> {
        let header = parse_header(&map).map_err(|problem| Error::Safetensors {
            file: path.display().to_string(),
            problem,
        })?;
        Ok(SafeTensors { path, map, header })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in data order.
    pub fn tensors(&self) -> &[StTensor] {
        &self.header.tensors
    }

    pub fn metadata(&self) -> &[(String, String)] {
        &self.header.metadata
    }

    /// The bytes of `t` (validated at open time to lie inside the file).
    pub fn data(&self, t: &StTensor) -> &[u8] {
        let start = self.header.data_start.saturating_add(t.begin);
        let end = self.header.data_start.saturating_add(t.end);
        match (usize::try_from(start), usize::try_from(end)) {
            (Ok(s), Ok(e)) => self.map.get(s..e).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Values of a F32/F16/BF16 tensor as f32 (little-endian source bytes).
pub fn to_f32(t: &StTensor, bytes: &[u8]) -> Result<Vec<f32>> {
    let bad = |why: String| Error::HfTensor {
        tensor: t.name.clone(),
        why,
    };
    let out: Vec<f32> = match t.dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(bad(format!(
                "dtype {other} (slm convert reads F32, F16, BF16)"
            )))
        }
    };
    if out.len() as u64 != t.n_elements {
        return Err(bad(format!(
            "{} values for {} elements",
            out.len(),
            t.n_elements
        )));
    }
    Ok(out)
}

/// Write a safetensors header for F32 tensors `(name, shape)` whose data will follow in the
/// same order (offsets computed from the shapes), padded with spaces to a multiple of 8.
pub fn write_f32_header<W: std::io::Write>(
    mut w: W,
    tensors: &[(String, Vec<u64>)],
    metadata: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(m));
    }
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let n: u64 = shape.iter().product();
        let end = offset + n * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text =
        serde_json::to_string(&serde_json::Value::Object(header)).map_err(std::io::Error::other)?;
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    w.write_all(&(text.len() as u64).to_le_bytes())?;
    w.write_all(text.as_bytes())
}

/// Serialize tensors as a safetensors file (F32 data given as f32 slices), header keys and
/// data in the given order.
pub fn write_f32<W: std::io::Write>(
    mut w: W,
    tensors: &[(String, Vec<u64>, &[f32])],
    metadata: &[(&str, &str)],
) -> std::io::Result<()> {
    let shapes: Vec<(String, Vec<u64>)> = tensors
        .iter()
        .map(|(n, s, _)| (n.clone(), s.clone()))
        .collect();
    write_f32_header(&mut w, &shapes, metadata)?;
    for (_, _, data) in tensors {
        let mut buf = Vec::with_capacity(data.len() * 4);
        for x in data.iter() {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}
