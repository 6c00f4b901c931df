//! Streaming GGUF v3 writer. The header (metadata and tensor infos with their offsets) is fixed
//! first by a [`GgufBuilder`]; then tensor data is streamed in declared order through a
//! [`TensorDataWriter`], which pads each tensor to the alignment and checks every size, so a
//! quantizer never holds more than one tensor in memory.

use std::collections::HashSet;
use std::io::Write;

use crate::error::{GgufError, Result};
use crate::reader::{
    DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_ALIGNMENT, MAX_ARRAY_LEN, MAX_KEY_LEN, MAX_KV,
    MAX_STRING_LEN, MAX_TENSORS, MAX_TENSOR_NAME,
};
use crate::value::{Array, Value};
use crate::GgmlType;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    n_bytes: u64,
}

/// Collects metadata and tensor declarations, then writes the header.
pub struct GgufBuilder {
    alignment: u64,
    kv: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
}

impl Default for GgufBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn werr(msg: impl Into<String>) -> GgufError {
    GgufError::Writer(msg.into())
}

fn pad_len(pos: u64, alignment: u64) -> u64 {
    match pos.checked_rem(alignment) {
        Some(0) | None => 0,
        Some(rem) => alignment.saturating_sub(rem),
    }
}

impl GgufBuilder {
    pub fn new() -> Self {
        GgufBuilder {
            alignment: DEFAULT_ALIGNMENT,
            kv: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// Add a metadata entry. Setting `general.alignment` (a u32 power of two) changes the
    /// alignment of the data section.
    pub fn kv(&mut self, key: &str, value: Value) -> Result<&mut Self> {
        // Validate everything before recording anything: a refused entry leaves no trace.
        if key.is_empty() {
            return Err(werr("empty metadata key"));
        }
        if key.len() as u64 > MAX_KEY_LEN {
            return Err(werr(format!(
                "metadata key of {} bytes (at most {MAX_KEY_LEN})",
                key.len()
            )));
        }
        if self.keys.contains(key) {
            return Err(GgufError::DuplicateKey {
                key: key.to_string(),
            });
        }
        check_readable(key, &value)?;
        let mut alignment = self.alignment;
        if key == "general.alignment" {
            match value {
                Value::U32(a) if a != 0 && a.is_power_of_two() && u64::from(a) <= MAX_ALIGNMENT => {
                    alignment = u64::from(a)
                }
                _ => {
                    return Err(GgufError::BadAlignment {
                        value: format!("{value:?}"),
                    })
                }
            }
        }
        self.alignment = alignment;
        self.keys.insert(key.to_string());
        self.kv.push((key.to_string(), value));
        Ok(self)
    }

    /// Declare a tensor (ggml dims order: `dims[0]` contiguous). Data is written later in the
    /// same order as declared.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType) -> Result<&mut Self> {
        if name.is_empty() || name.len() as u64 > MAX_TENSOR_NAME {
            return Err(GgufError::BadTensorName {
                offset: 0,
                len: name.len() as u64,
            });
        }
        if dims.is_empty() || dims.len() > 4 {
            return Err(GgufError::BadDimCount {
                tensor: name.to_string(),
                n_dims: u32::try_from(dims.len()).unwrap_or(u32::MAX),
            });
        }
        if let Some(index) = dims.iter().position(|&d| d == 0) {
            return Err(GgufError::BadDim {
                tensor: name.to_string(),
                index,
                value: 0,
            });
        }
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| GgufError::SizeOverflow {
                tensor: name.to_string(),
            })?;
        if n_elements > i64::MAX as u64 {
            return Err(GgufError::SizeOverflow {
                tensor: name.to_string(),
            });
        }
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0.checked_rem(ty.block_size()) != Some(0) {
            return Err(GgufError::NotBlockMultiple {
                tensor: name.to_string(),
                ne0,
                ty,
                block: ty.block_size(),
            });
        }
        let row = ty.row_bytes(ne0).ok_or_else(|| GgufError::SizeOverflow {
            tensor: name.to_string(),
        })?;
        let n_bytes = row
            .checked_mul(n_elements.checked_div(ne0).unwrap_or(0))
            .ok_or_else(|| GgufError::SizeOverflow {
                tensor: name.to_string(),
            })?;
        if !self.names.insert(name.to_string()) {
            return Err(GgufError::DuplicateTensor {
                name: name.to_string(),
            });
        }
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            n_bytes,
        });
        Ok(self)
    }

    /// Write the header to `w` and return the writer for the tensor data.
    pub fn write_header<W: Write>(self, mut w: W) -> Result<TensorDataWriter<W>> {
        if self.tensors.len() as u64 > MAX_TENSORS || self.kv.len() as u64 > MAX_KV {
            return Err(werr(format!(
                "{} tensors and {} metadata entries (slm reads at most {MAX_TENSORS} and {MAX_KV})",
                self.tensors.len(),
                self.kv.len()
            )));
        }
        let mut out = Vec::new();
        out.extend_from_slice(GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            put_str(&mut out, k);
            out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut sizes = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&u32::try_from(t.dims.len()).unwrap_or(4).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            sizes.push((t.name.clone(), t.n_bytes));
            offset = offset
                .checked_add(t.n_bytes)
                .and_then(|o| o.checked_add(pad_len(t.n_bytes, self.alignment)))
                .ok_or_else(|| werr("data section size overflows"))?;
        }
        let pad = pad_len(out.len() as u64, self.alignment);
        out.resize(
            out.len().saturating_add(usize::try_from(pad).unwrap_or(0)),
            0,
        );
        w.write_all(&out).map_err(GgufError::Write)?;
        Ok(TensorDataWriter {
            w,
            alignment: self.alignment,
            sizes,
            next: 0,
        })
    }
}

/// Refuse values slm's own reader would reject (strings and arrays above its limits).
fn check_readable(key: &str, value: &Value) -> Result<()> {
    let too_long = |what: &str, len: usize, max: u64| {
        werr(format!(
            "{key:?}: {what} of length {len} (slm reads at most {max})"
        ))
    };
    match value {
        Value::String(s) if s.len() as u64 > MAX_STRING_LEN => {
            Err(too_long("string", s.len(), MAX_STRING_LEN))
        }
        Value::Array(a) if a.len() as u64 > MAX_ARRAY_LEN => {
            Err(too_long("array", a.len(), MAX_ARRAY_LEN))
        }
        Value::Array(Array::String(v)) => {
            match v.iter().find(|s| s.len() as u64 > MAX_STRING_LEN) {
                Some(s) => Err(too_long("array string", s.len(), MAX_STRING_LEN)),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            macro_rules! each {
                ($v:expr) => {
                    for x in $v {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                };
            }
            match a {
                Array::U8(v) => out.extend_from_slice(v),
                Array::I8(v) => each!(v),
                Array::U16(v) => each!(v),
                Array::I16(v) => each!(v),
                Array::U32(v) => each!(v),
                Array::I32(v) => each!(v),
                Array::F32(v) => each!(v),
                Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
                Array::String(v) => {
                    for s in v {
                        put_str(out, s);
                    }
                }
                Array::U64(v) => each!(v),
                Array::I64(v) => each!(v),
                Array::F64(v) => each!(v),
            }
        }
    }
}

/// Streams tensor data in declared order, padding each tensor to the alignment.
pub struct TensorDataWriter<W: Write> {
    w: W,
    alignment: u64,
    sizes: Vec<(String, u64)>,
    next: usize,
}

impl<W: Write> TensorDataWriter<W> {
    /// Name and byte size of the next tensor to write, if any.
    pub fn next_tensor(&self) -> Option<(&str, u64)> {
        self.sizes.get(self.next).map(|(n, s)| (n.as_str(), *s))
    }

    /// Write the next tensor's bytes; their length must equal its declared size.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<()> {
        let (name, size) = self
            .sizes
            .get(self.next)
            .ok_or_else(|| werr("more tensors written than declared"))?;
        if data.len() as u64 != *size {
            return Err(werr(format!(
                "tensor {name:?}: {} bytes given, {size} declared",
                data.len()
            )));
        }
        self.w.write_all(data).map_err(GgufError::Write)?;
        let pad = usize::try_from(pad_len(*size, self.alignment)).unwrap_or(0);
        self.w
            .write_all(&vec![0u8; pad])
            .map_err(GgufError::Write)?;
        self.next = self.next.saturating_add(1);
        Ok(())
    }

    /// Finish: every declared tensor must have been written. Returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        if self.next != self.sizes.len() {
            return Err(werr(format!(
                "{} of {} tensors written",
                self.next,
                self.sizes.len()
            )));
        }
        self.w.flush().map_err(GgufError::Write)?;
        Ok(self.w)
    }
}
