//! Importance-matrix files: llama.cpp's GGUF imatrix format (and its legacy `.dat`), read and
//! written.
//!
//! The GGUF format (llama.cpp `tools/imatrix/imatrix.cpp`, `common/imatrix-loader.cpp`):
//! - metadata `general.type = "imatrix"`, `imatrix.datasets` (array of strings),
//!   `imatrix.chunk_count` (u32), `imatrix.chunk_size` (u32, tokens per chunk);
//! - per weight `W` (e.g. `blk.0.attn_q.weight`), in name order, two F32 tensors:
//!   `W.in_sum2` with dims `(ne0, n_mat)`: the raw sum over every activation row `x` fed to `W`
//!   of `x[j]^2`, per column `j` and per matrix (expert) of a 3-D weight; and `W.counts` with
//!   dims `(1, n_mat)`: how many rows were summed for each matrix.
//!
//! The legacy `.dat` format: `i32 n_entries`, then per entry `i32 len, name, i32 ncall,
//! i32 nval, f32 values[nval]` where values are `(sum / count) * ncall`, then optionally
//! `i32 chunk_count, i32 len, dataset`.
//!
//! [`read`] gives what llama.cpp's quantizer uses (`tools/quantize/quantize.cpp`,
//! `load_imatrix`): per weight the mean square activation per column, `in_sum2 / counts`
//! (1.0 for a matrix with no rows); [`load`] and [`write`] keep the raw sums.

use std::collections::BTreeMap;
use std::path::Path;

use slm_gguf::{Array, GgmlType, GgufBuilder, GgufFile, Value};

use crate::error::{Error, Result};

/// Metadata key: the text files the matrix was computed from.
pub const KEY_DATASETS: &str = "imatrix.datasets";
/// Metadata key: the number of chunks processed.
pub const KEY_CHUNK_COUNT: &str = "imatrix.chunk_count";
/// Metadata key: the tokens per chunk.
pub const KEY_CHUNK_SIZE: &str = "imatrix.chunk_size";

const SUFFIX_SUMS: &str = ".in_sum2";
const SUFFIX_COUNTS: &str = ".counts";
/// Refuse legacy files declaring more entries or values than this (hostile-file bound).
const MAX_LEGACY_ENTRIES: usize = 1 << 20;

/// The raw statistics of one weight.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    /// (n_mat, ne0) row-major: sum of squared activations per matrix and column.
    pub sums: Vec<f32>,
    /// (n_mat): activation rows summed per matrix. One element for an ordinary 2-D weight.
    pub counts: Vec<i64>,
}

impl Entry {
    /// Columns per matrix (`ne0`), 0 when empty.
    pub fn ne0(&self) -> usize {
        self.sums.len().checked_div(self.counts.len()).unwrap_or(0)
    }
}

/// A whole imatrix file, raw (as llama.cpp's `common_imatrix`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImatrixData {
    /// Weight name (`blk.0.ffn_down.weight`) -> statistics.
    pub entries: BTreeMap<String, Entry>,
    pub datasets: Vec<String>,
    pub chunk_count: u32,
    /// Tokens per chunk; 0 for a legacy file.
    pub chunk_size: u32,
    /// Read from the legacy `.dat` format (sums already normalized, see the module header).
    pub is_legacy: bool,
    /// The three `imatrix.*` keys were present (llama.cpp's quantizer requires it for GGUF).
    pub has_metadata: bool,
}

/// Per-weight importance as llama.cpp's quantizer sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Importance {
    /// Weight name -> (n_mat * ne0) mean squared activation per column (per expert for 3-D).
    pub tensors: BTreeMap<String, Vec<f32>>,
    pub datasets: Vec<String>,
    pub chunk_count: u32,
}

impl Importance {
    /// The importance of a weight's columns, if the file has it.
    pub fn get(&self, weight_name: &str) -> Option<&[f32]> {
        self.tensors.get(weight_name).map(Vec::as_slice)
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Imatrix {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Read an imatrix file (GGUF or legacy `.dat`) and normalize it like llama.cpp's quantizer:
/// `sums / count` per matrix, 1.0 for matrices without data; legacy values divided by `ncall`.
/// A GGUF imatrix without the `imatrix.*` metadata is refused, as llama-quantize does.
pub fn read(path: &Path) -> Result<Importance> {
    let raw = load(path)?;
    if !raw.is_legacy && !raw.has_metadata {
        return Err(bad(path, "missing imatrix metadata (imatrix.* keys)"));
    }
    let mut tensors = BTreeMap::new();
    for (name, e) in &raw.entries {
        let mut v = vec![0f32; e.sums.len()];
        if raw.is_legacy {
            let ncall = e.counts.first().copied().unwrap_or(0);
            for (o, s) in v.iter_mut().zip(&e.sums) {
                *o = if ncall > 0 { s / ncall as f32 } else { *s };
            }
        } else {
            let ne0 = e.ne0();
            for (j, (out, sums)) in v
                .chunks_mut(ne0.max(1))
                .zip(e.sums.chunks(ne0.max(1)))
                .enumerate()
            {
                let count = e.counts.get(j).copied().unwrap_or(0) as f32;
                for (o, s) in out.iter_mut().zip(sums) {
                    *o = if count > 0.0 { s / count } else { 1.0 };
                }
            }
        }
        tensors.insert(name.clone(), v);
    }
    Ok(Importance {
        tensors,
        datasets: raw.datasets,
        chunk_count: raw.chunk_count,
    })
}

/// Read an imatrix file raw: GGUF first, the legacy `.dat` format when it is not GGUF.
pub fn load(path: &Path) -> Result<ImatrixData> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    if bytes.starts_with(b"GGUF") {
        let file = GgufFile::from_vec(bytes)?;
        load_gguf(path, &file)
    } else {
        load_legacy(path, &bytes)
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn load_gguf(path: &Path, file: &GgufFile) -> Result<ImatrixData> {
    let mut out = ImatrixData::default();
    if file.tensors().is_empty() {
        return Err(bad(path, "no tensors"));
    }
    if let Some(Array::String(d)) = file.get_array(KEY_DATASETS) {
        out.datasets = d.clone();
    }
    let count = file.get_u64(KEY_CHUNK_COUNT);
    let size = file.get_u64(KEY_CHUNK_SIZE);
    out.has_metadata = file.get(KEY_DATASETS).is_some() && count.is_some() && size.is_some();
    out.chunk_count = count.and_then(|c| u32::try_from(c).ok()).unwrap_or(0);
    out.chunk_size = size.and_then(|c| u32::try_from(c).ok()).unwrap_or(0);

    type Pair<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
    let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
    for t in file.tensors() {
        let (base, is_sums) = if let Some(b) = t.name.strip_suffix(SUFFIX_SUMS) {
            (b, true)
        } else if let Some(b) = t.name.strip_suffix(SUFFIX_COUNTS) {
            (b, false)
        } else {
            continue;
        };
        if t.ty != GgmlType::F32 {
            return Err(bad(
                path,
                format!("{}: type {}, F32 expected", t.name, t.ty.name()),
            ));
        }
        let slot = pairs.entry(base.to_string()).or_default();
        let data = Some(file.tensor_data(t));
        if is_sums {
            slot.0 = data;
        } else {
            slot.1 = data;
        }
    }
    for (name, (sums, counts)) in pairs {
        let (Some(sums), Some(counts)) = (sums, counts) else {
            return Err(bad(path, format!("mismatched sums and counts for {name}")));
        };
        let sums = f32s(sums);
        let counts: Vec<i64> = f32s(counts).iter().map(|c| c.round() as i64).collect();
        if counts.is_empty() || !sums.len().is_multiple_of(counts.len()) {
            return Err(bad(
                path,
                format!("{name}: {} sums for {} counts", sums.len(), counts.len()),
            ));
        }
        out.entries.insert(name, Entry { sums, counts });
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.i32()?).ok()
    }
}

fn load_legacy(path: &Path, buf: &[u8]) -> Result<ImatrixData> {
    let mut c = Cursor { buf, pos: 0 };
    let short = |what: &str| bad(path, format!("neither GGUF nor a legacy imatrix: {what}"));
    let n = c.len().ok_or_else(|| short("no entry count"))?;
    if !(1..=MAX_LEGACY_ENTRIES).contains(&n) {
        return Err(short("bad entry count"));
    }
    let mut out = ImatrixData {
        is_legacy: true,
        ..ImatrixData::default()
    };
    for i in 0..n {
        let trunc = || short(&format!("entry {i} truncated"));
        let len = c.len().ok_or_else(trunc)?;
        let name = c.take(len).ok_or_else(trunc)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| short("non-UTF-8 name"))?;
        let ncall = c.i32().ok_or_else(trunc)?;
        let nval = c.len().ok_or_else(trunc)?;
        if nval < 1 {
            return Err(trunc());
        }
        let bytes = c
            .take(nval.checked_mul(4).ok_or_else(trunc)?)
            .ok_or_else(trunc)?;
        out.entries.insert(
            name,
            Entry {
                sums: f32s(bytes),
                counts: vec![i64::from(ncall)],
            },
        );
    }
    if let Some(chunks) = c.i32() {
        out.chunk_count = u32::try_from(chunks).unwrap_or(0);
        if let Some(len) = c.len().filter(|l| *l > 0) {
            if let Some(d) = c.take(len) {
                out.datasets.push(String::from_utf8_lossy(d).into_owned());
            }
        }
    }
    Ok(out)
}

/// Write `data` as a GGUF imatrix exactly as llama-imatrix does (entries in name order,
/// `general.type`, the three `imatrix.*` keys).
pub fn write(path: &Path, data: &ImatrixData) -> Result<()> {
    let mut b = GgufBuilder::new();
    b.kv("general.type", Value::String("imatrix".into()))?;
    b.kv(
        KEY_DATASETS,
        Value::Array(Array::String(data.datasets.clone())),
    )?;
    b.kv(KEY_CHUNK_COUNT, Value::U32(data.chunk_count))?;
    b.kv(KEY_CHUNK_SIZE, Value::U32(data.chunk_size))?;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for (name, e) in &data.entries {
        let n_mat = e.counts.len();
        if n_mat == 0 || e.sums.is_empty() || !e.sums.len().is_multiple_of(n_mat) {
            return Err(bad(
                path,
                format!("{name}: {} sums for {n_mat} counts", e.sums.len()),
            ));
        }
        let ne0 = (e.sums.len() / n_mat) as u64;
        b.tensor(
            &format!("{name}{SUFFIX_SUMS}"),
            &[ne0, n_mat as u64],
            GgmlType::F32,
        )?;
        b.tensor(
            &format!("{name}{SUFFIX_COUNTS}"),
            &[1, n_mat as u64],
            GgmlType::F32,
        )?;
        blobs.push(e.sums.iter().flat_map(|v| v.to_le_bytes()).collect());
        blobs.push(
            e.counts
                .iter()
                .flat_map(|&c| (c as f32).to_le_bytes())
                .collect(),
        );
    }
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::create(path).map_err(io)?;
    let mut w = b.write_header(std::io::BufWriter::new(f))?;
    for blob in &blobs {
        w.write_tensor(blob)?;
    }
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImatrixData {
        let mut entries = BTreeMap::new();
        entries.insert(
            "blk.0.attn_q.weight".to_string(),
            Entry {
                sums: vec![2.0, 4.0, 6.0, 8.0],
                counts: vec![2],
            },
        );
        entries.insert(
            "blk.0.ffn_up_exps.weight".to_string(),
            Entry {
                sums: vec![3.0, 6.0, 5.0, 5.0],
                counts: vec![3, 0],
            },
        );
        ImatrixData {
            entries,
            datasets: vec!["botchan.txt".into()],
            chunk_count: 4,
            chunk_size: 512,
            is_legacy: false,
            has_metadata: true,
        }
    }

    #[test]
    fn gguf_round_trip_and_normalization() {
        let dir = std::env::temp_dir().join(format!("slm-imatrix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.gguf");
        let d = sample();
        write(&p, &d).unwrap();
        assert_eq!(load(&p).unwrap(), d);
        let imp = read(&p).unwrap();
        assert_eq!(imp.chunk_count, 4);
        assert_eq!(
            imp.get("blk.0.attn_q.weight").unwrap(),
            &[1.0, 2.0, 3.0, 4.0]
        );
        // second expert has no rows: importance 1.0 like llama-quantize
        assert_eq!(
            imp.get("blk.0.ffn_up_exps.weight").unwrap(),
            &[1.0, 2.0, 1.0, 1.0]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn legacy_dat_is_read_and_normalized_by_ncall() {
        let mut buf = Vec::new();
        buf.extend(1i32.to_le_bytes());
        let name = b"blk.0.ffn_down.weight";
        buf.extend((name.len() as i32).to_le_bytes());
        buf.extend(name);
        buf.extend(4i32.to_le_bytes()); // ncall
        buf.extend(2i32.to_le_bytes()); // nval
        buf.extend(8f32.to_le_bytes());
        buf.extend(2f32.to_le_bytes());
        buf.extend(7i32.to_le_bytes()); // chunk count
        buf.extend(3i32.to_le_bytes());
        buf.extend(b"a.t");
        let dir = std::env::temp_dir().join(format!("slm-imatrix-dat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.dat");
        std::fs::write(&p, &buf).unwrap();
        let imp = read(&p).unwrap();
        assert_eq!(imp.get("blk.0.ffn_down.weight").unwrap(), &[2.0, 0.5]);
        assert_eq!(imp.chunk_count, 7);
        assert_eq!(imp.datasets, vec!["a.t".to_string()]);
        // truncated: a typed error, not a panic
        std::fs::write(&p, &buf[..20]).unwrap();
        assert!(matches!(read(&p), Err(Error::Imatrix { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }
}
