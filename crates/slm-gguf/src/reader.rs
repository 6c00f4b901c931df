//! Hardened GGUF v2/v3 reader over a byte buffer (a memory map in practice).
//!
//! Every count and length read from the file is checked against the bytes that remain before
//! anything is allocated for it (reliability guide 1.1), all arithmetic is checked, and every
//! tensor is validated (dims, type, block multiple, alignment, bounds, overlap) before a view of
//! its bytes can be taken. Tensor data is never copied: [`GgufFile::tensor_data`] returns a
//! slice of the map.

use std::collections::HashMap;
use std::path::Path;

use slm_mmap::Mapped;

use crate::error::{GgufError, Result};
use crate::value::{Array, Value, ValueType};
use crate::GgmlType;

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest tensor name ggml accepts (GGML_MAX_NAME is 64 including the NUL).
pub const MAX_TENSOR_NAME: u64 = 63;
pub const MAX_TENSORS: u64 = 1 << 20;
pub const MAX_KV: u64 = 1 << 20;
pub const MAX_KEY_LEN: u64 = 1 << 16;
pub const MAX_STRING_LEN: u64 = 16 << 20;
pub const MAX_ARRAY_LEN: u64 = 1 << 28;
pub const MAX_ALIGNMENT: u64 = 1 << 20;

/// One tensor's header entry, validated against the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data, relative to the start of the data section.
    pub offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
}

/// The parsed header of a GGUF file: metadata in file order and tensor infos.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub alignment: u64,
    /// Absolute offset of the data section in the file.
    pub data_offset: u64,
    /// Length of the data section (file length minus `data_offset`).
    pub data_len: u64,
    kv: Vec<(String, Value)>,
    kv_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        self.buf.len().saturating_sub(self.pos) as u64
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let truncated = || GgufError::Truncated {
            what,
            offset: self.pos as u64,
            need: n,
            have: self.remaining(),
        };
        let n_us = usize::try_from(n).map_err(|_| truncated())?;
        let end = self.pos.checked_add(n_us).ok_or_else(truncated)?;
        let s = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length then bytes, which must be UTF-8.
    fn string(&mut self, what: &'static str, max: u64) -> Result<String> {
        let offset = self.offset();
        let len = self.u64(what)?;
        if len > max {
            return Err(GgufError::LengthTooLarge {
                what,
                offset,
                len,
                max,
            });
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what, offset })
    }

    /// Check that `count` elements of at least `min_size` bytes each can still be in the file.
    fn check_count(&self, what: &'static str, count: u64, min_size: u64, cap: u64) -> Result<()> {
        let max = self.remaining().checked_div(min_size).unwrap_or(0).min(cap);
        if count > max {
            return Err(GgufError::CountTooLarge { what, count, max });
        }
        Ok(())
    }
}

fn read_scalar(c: &mut Cursor<'_>, ty: ValueType, key: &str) -> Result<Value> {
    Ok(match ty {
        ValueType::U8 => Value::U8(u8::from_le_bytes(c.array("u8 value")?)),
        ValueType::I8 => Value::I8(i8::from_le_bytes(c.array("i8 value")?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(c.array("u16 value")?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(c.array("i16 value")?)),
        ValueType::U32 => Value::U32(c.u32("u32 value")?),
        ValueType::I32 => Value::I32(i32::from_le_bytes(c.array("i32 value")?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(c.array("f32 value")?)),
        ValueType::U64 => Value::U64(c.u64("u64 value")?),
        ValueType::I64 => Value::I64(i64::from_le_bytes(c.array("i64 value")?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(c.array("f64 value")?)),
        ValueType::Bool => {
            let [b] = c.array::<1>("bool value")?;
            match b {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                byte => {
                    return Err(GgufError::InvalidBool {
                        key: key.to_string(),
                        byte,
                    })
                }
            }
        }
        ValueType::String => Value::String(c.string("string value", MAX_STRING_LEN)?),
        ValueType::Array => read_array(c, key)?,
    })
}

fn read_array(c: &mut Cursor<'_>, key: &str) -> Result<Value> {
    let type_id = c.u32("array type")?;
    let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::BadValueType {
        key: key.to_string(),
        type_id,
    })?;
    if ty == ValueType::Array {
        return Err(GgufError::NestedArray {
            key: key.to_string(),
        });
    }
    let count = c.u64("array length")?;
    c.check_count(
        "array elements",
        count,
        ty.min_encoded_size(),
        MAX_ARRAY_LEN,
    )?;
    // check_count bounds count by the bytes left, so it fits in usize.
    let n = usize::try_from(count).map_err(|_| GgufError::CountTooLarge {
        what: "array elements",
        count,
        max: MAX_ARRAY_LEN,
    })?;
    macro_rules! fixed {
        ($variant:ident, $t:ty) => {{
            let width = std::mem::size_of::<$t>();
            let bytes = c.take((n as u64).saturating_mul(width as u64), "array data")?;
            Array::$variant(
                bytes
                    .chunks_exact(width)
                    .map(|ch| {
                        let mut a = [0u8; std::mem::size_of::<$t>()];
                        a.copy_from_slice(ch);
                        <$t>::from_le_bytes(a)
                    })
                    .collect(),
            )
        }};
    }
    let arr = match ty {
        ValueType::U8 => Array::U8(c.take(count, "array data")?.to_vec()),
        ValueType::I8 => fixed!(I8, i8),
        ValueType::U16 => fixed!(U16, u16),
        ValueType::I16 => fixed!(I16, i16),
        ValueType::U32 => fixed!(U32, u32),
        ValueType::I32 => fixed!(I32, i32),
        ValueType::F32 => fixed!(F32, f32),
        ValueType::U64 => fixed!(U64, u64),
        ValueType::I64 => fixed!(I64, i64),
        ValueType::F64 => fixed!(F64, f64),
        ValueType::Bool => {
            let bytes = c.take(count, "array data")?;
            let mut v = Vec::with_capacity(n);
            for &b in bytes {
                match b {
                    0 => v.push(false),
                    1 => v.push(true),
                    byte => {
                        return Err(GgufError::InvalidBool {
                            key: key.to_string(),
                            byte,
                        })
                    }
                }
            }
            Array::Bool(v)
        }
        ValueType::String => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(c.string("array string", MAX_STRING_LEN)?);
            }
            Array::String(v)
        }
        ValueType::Array => {
            return Err(GgufError::NestedArray {
                key: key.to_string(),
            })
        }
    };
    Ok(Value::Array(arr))
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    let rem = x.checked_rem(a)?;
    if rem == 0 {
        Some(x)
    } else {
        x.checked_add(a.checked_sub(rem)?)
    }
}

fn parse_alignment(v: &Value) -> Result<u64> {
    let bad = || GgufError::BadAlignment {
        value: format!("{v:?}"),
    };
    match *v {
        Value::U32(a) => {
            let a = u64::from(a);
            if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
                Err(bad())
            } else {
                Ok(a)
            }
        }
        _ => Err(bad()),
    }
}

impl Gguf {
    /// Parse and validate the header of a GGUF file held in `buf` (the whole file).
    pub fn parse(buf: &[u8]) -> Result<Gguf> {
        let mut c = Cursor { buf, pos: 0 };
        let magic = c.take(4, "magic").map_err(|_| GgufError::BadMagic {
            found: buf.iter().take(4).copied().collect(),
        })?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic {
                found: magic.to_vec(),
            });
        }
        let version = c.u32("version")?;
        if version != 2 && version != 3 {
            let hint = if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
                "; this looks like a big-endian file"
            } else {
                ""
            };
            return Err(GgufError::UnsupportedVersion { version, hint });
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        // Smallest encodings: a KV is key len (8) + 1 byte key + type (4) + 1 byte value; a tensor
        // info is name len (8) + 1 byte name + n_dims (4) + one dim (8) + type (4) + offset (8).
        c.check_count("metadata entries", n_kv, 14, MAX_KV)?;
        c.check_count("tensors", n_tensors, 33, MAX_TENSORS)?;

        let mut kv: Vec<(String, Value)> = Vec::new();
        let mut kv_index = HashMap::new();
        for _ in 0..n_kv {
            let offset = c.offset();
            let key = c.string("metadata key", MAX_KEY_LEN)?;
            if key.is_empty() {
                return Err(GgufError::EmptyKey { offset });
            }
            let type_id = c.u32("value type")?;
            let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::BadValueType {
                key: key.clone(),
                type_id,
            })?;
            let value = read_scalar(&mut c, ty, &key)?;
            if kv_index.contains_key(&key) {
                return Err(GgufError::DuplicateKey { key });
            }
            kv_index.insert(key.clone(), kv.len());
            kv.push((key, value));
        }

        let alignment = match kv_index.get("general.alignment").and_then(|&i| kv.get(i)) {
            Some((_, v)) => parse_alignment(v)?,
            None => DEFAULT_ALIGNMENT,
        };

        let mut tensors = Vec::new();
        let mut tensor_index = HashMap::new();
        for _ in 0..n_tensors {
            let offset = c.offset();
            let name_len = {
                let mut peek = Cursor { buf, pos: c.pos };
                peek.u64("tensor name length")?
            };
            if name_len == 0 || name_len > MAX_TENSOR_NAME {
                return Err(GgufError::BadTensorName {
                    offset,
                    len: name_len,
                });
            }
            let name = c.string("tensor name", MAX_TENSOR_NAME)?;
            let n_dims = c.u32("tensor n_dims")?;
            if !(1..=4).contains(&n_dims) {
                return Err(GgufError::BadDimCount {
                    tensor: name,
                    n_dims,
                });
            }
            let mut dims = Vec::with_capacity(4);
            let mut n_elements: u64 = 1;
            for index in 0..n_dims as usize {
                let d = c.u64("tensor dimension")?;
                let bad = GgufError::BadDim {
                    tensor: name.clone(),
                    index,
                    value: d,
                };
                if d == 0 {
                    return Err(bad);
                }
                n_elements = match n_elements.checked_mul(d) {
                    Some(n) if n <= i64::MAX as u64 => n,
                    _ => return Err(bad),
                };
                dims.push(d);
            }
            let type_id = c.u32("tensor type")?;
            let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownType {
                tensor: name.clone(),
                type_id,
            })?;
            let data_off = c.u64("tensor offset")?;
            let ne0 = dims.first().copied().unwrap_or(1);
            if ne0.checked_rem(ty.block_size()) != Some(0) {
                return Err(GgufError::NotBlockMultiple {
                    tensor: name,
                    ne0,
                    ty,
                    block: ty.block_size(),
                });
            }
            // A whole number of blocks: only the byte count can fail, by overflowing.
            let row = ty.row_bytes(ne0).ok_or_else(|| GgufError::SizeOverflow {
                tensor: name.clone(),
            })?;
            let n_rows = n_elements.checked_div(ne0).unwrap_or(0);
            let n_bytes = row
                .checked_mul(n_rows)
                .ok_or_else(|| GgufError::SizeOverflow {
                    tensor: name.clone(),
                })?;
            if data_off.checked_rem(alignment) != Some(0) {
                return Err(GgufError::MisalignedTensor {
                    tensor: name,
                    offset: data_off,
                    alignment,
                });
            }
            if tensor_index.contains_key(&name) {
                return Err(GgufError::DuplicateTensor { name });
            }
            tensor_index.insert(name.clone(), tensors.len());
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset: data_off,
                n_elements,
                n_bytes,
            });
        }

        let file_len = buf.len() as u64;
        let header_end = c.offset();
        let data_offset = align_up(header_end, alignment).ok_or(GgufError::DataPastEnd {
            data_offset: u64::MAX,
            file_len,
        })?;
        let data_len = if data_offset <= file_len {
            file_len.saturating_sub(data_offset)
        } else if tensors.is_empty() {
            0
        } else {
            return Err(GgufError::DataPastEnd {
                data_offset,
                file_len,
            });
        };

        // Bounds and overlap, in offset order.
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors.get(i).map(|t| t.offset));
        let mut prev: Option<(u64, usize)> = None;
        for &i in &order {
            let Some(t) = tensors.get(i) else { continue };
            let end = t
                .offset
                .checked_add(t.n_bytes)
                .filter(|&e| e <= data_len)
                .ok_or_else(|| GgufError::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    end: t.offset.saturating_add(t.n_bytes),
                    data_len,
                })?;
            if let Some((prev_end, j)) = prev {
                if t.offset < prev_end {
                    let a = tensors.get(j).map(|t| t.name.clone()).unwrap_or_default();
                    return Err(GgufError::TensorOverlap {
                        a,
                        b: t.name.clone(),
                    });
                }
            }
            prev = Some((end, i));
        }

        Ok(Gguf {
            version,
            alignment,
            data_offset,
            data_len,
            kv,
            kv_index,
            tensors,
            tensor_index,
        })
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.kv
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv_index
            .get(key)
            .and_then(|&i| self.kv.get(i))
            .map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// An integer value of any integer type, if non-negative.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    pub fn get_array(&self, key: &str) -> Option<&Array> {
        self.get(key).and_then(Value::as_array)
    }

    /// A required integer key, with a typed error naming the key.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        let v = self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })?;
        v.as_u64().ok_or_else(|| GgufError::WrongType {
            key: key.to_string(),
            expected: "a non-negative integer",
            found: v.value_type().name(),
        })
    }

    /// A required string key, with a typed error naming the key.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        let v = self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })?;
        v.as_str().ok_or_else(|| GgufError::WrongType {
            key: key.to_string(),
            expected: "a string",
            found: v.value_type().name(),
        })
    }

    /// `general.architecture`, if present.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// An architecture-scoped key, e.g. `arch_key("context_length")` -> `gemma3.context_length`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.get_u64(&format!("{arch}.{suffix}"))
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
    }
}

/// A GGUF file: its bytes (mapped) and its validated header.
pub struct GgufFile {
    bytes: Mapped,
    header: Gguf,
}

impl GgufFile {
    /// Map and parse a GGUF file.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let bytes = Mapped::open(path).map_err(|source| GgufError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let header = Gguf::parse(&bytes)?;
        Ok(GgufFile { bytes, header })
    }

    /// Parse a GGUF file held in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Result<GgufFile> {
        let bytes = Mapped::from_vec(bytes);
        let header = Gguf::parse(&bytes)?;
        Ok(GgufFile { bytes, header })
    }

    pub fn header(&self) -> &Gguf {
        &self.header
    }

    /// Length of the whole file in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The bytes of a tensor (validated at parse time to lie inside the data section).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = self.header.data_offset.saturating_add(t.offset);
        let end = start.saturating_add(t.n_bytes);
        match (usize::try_from(start), usize::try_from(end)) {
            (Ok(s), Ok(e)) => self.bytes.get(s..e).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// A tensor's info and bytes by name.
    pub fn tensor(&self, name: &str) -> Option<(&TensorInfo, &[u8])> {
        let t = self.header.tensor_info(name)?;
        Some((t, self.tensor_data(t)))
    }
}

impl std::ops::Deref for GgufFile {
    type Target = Gguf;
    fn deref(&self) -> &Gguf {
        &self.header
    }
}
