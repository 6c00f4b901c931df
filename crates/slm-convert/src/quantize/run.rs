//! Runs a [`Plan`]: writes the GGUF exactly as llama.cpp's `llama_model_quantize` does
//! (metadata in the input's order with `general.quantization_version` and `general.file_type`
//! moved to the end and split keys dropped, tensors in llama.cpp's order, each padded to the
//! alignment) and converts tensor data on a few worker threads.
//!
//! Work per tensor: slabs of rows (at most [`SLAB_ELEMENTS`] values, never across an expert
//! matrix, so each slab has one importance vector) are dequantized to f32 and quantized in
//! chunks of rows taken from a shared queue by scoped threads. Rows are independent, so the
//! bytes do not depend on the thread count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use slm_gguf::{GgmlType, GgufBuilder, GgufFile, Value};

use super::plan::{plan, TensorPlan};
use super::{QuantizeOptions, QuantizeReport, QUANTIZATION_VERSION};
use crate::error::{Error, Result};

/// Values converted per slab (256 MiB of f32).
const SLAB_ELEMENTS: usize = 64 << 20;
/// Values per work item handed to one thread (llama.cpp's `min_chunk_size`).
const CHUNK_ELEMENTS: usize = 32 * 512;

/// Metadata keys llama.cpp drops (split files are written whole).
const DROPPED_KEYS: &[&str] = &["split.no", "split.count", "split.tensors.count"];
const KEY_QUANTIZATION_VERSION: &str = "general.quantization_version";
const KEY_FILE_TYPE: &str = "general.file_type";

/// Where a quantization stands, given to the progress callback after each tensor.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    /// Tensors done (1-based index of the one just written).
    pub done: usize,
    pub total: usize,
    pub tensor: &'a TensorPlan,
    /// Elements written so far and in all.
    pub elements_done: u64,
    pub elements_total: u64,
}

/// Quantizes `input` into `output` (see the crate docs); the report says what was done.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    opts: &QuantizeOptions,
) -> Result<QuantizeReport> {
    quantize_file_with_progress(input, output, opts, &mut |_| {})
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// [`quantize_file`] calling `progress` after each tensor is written.
pub fn quantize_file_with_progress(
    input: &Path,
    output: &Path,
    opts: &QuantizeOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<QuantizeReport> {
    let start = Instant::now();
    let file = GgufFile::open(input)?;
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(Error::Quantize(format!(
                "the output {} is the input: choose another file name",
                output.display()
            )));
        }
    }
    let plan = plan(&file, opts)?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };

    // gguf_set_val_*: a key set again leaves its place and goes to the end.
    let mut kv: Vec<(String, Value)> = file.metadata().to_vec();
    let mut set = |key: &str, value: Value| {
        kv.retain(|(k, _)| k != key);
        kv.push((key.to_string(), value));
    };
    set(KEY_QUANTIZATION_VERSION, Value::U32(QUANTIZATION_VERSION));
    set(KEY_FILE_TYPE, Value::U32(opts.ftype.id()));
    kv.retain(|(k, _)| !DROPPED_KEYS.contains(&k.as_str()));
    for (key, value) in &opts.kv_overrides {
        kv.retain(|(k, _)| k != key);
        kv.push((key.clone(), value.clone()));
    }
    let mut builder = GgufBuilder::new();
    for (key, value) in kv {
        builder.kv(&key, value)?;
    }
    for t in &plan.tensors {
        builder.tensor(&t.name, &t.dims, t.dst_type)?;
    }

    // Write beside the target and rename at the end: no half-written model under its name.
    let part = part_path(output);
    let out = File::create(&part).map_err(io_err(&part))?;
    let result = write_all(&file, &plan.tensors, builder, out, opts, threads, progress);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, output).map_err(io_err(output))?;
    let output_file_bytes = std::fs::metadata(output).map_err(io_err(output))?.len();

    let mut type_counts: Vec<(GgmlType, usize)> = Vec::new();
    for t in &plan.tensors {
        match type_counts.iter_mut().find(|(ty, _)| *ty == t.dst_type) {
            Some((_, n)) => *n += 1,
            None => type_counts.push((t.dst_type, 1)),
        }
    }
    type_counts.sort_by_key(|(ty, _)| ty.id());
    Ok(QuantizeReport {
        ftype: opts.ftype,
        n_tensors: plan.tensors.len(),
        n_converted: plan.tensors.iter().filter(|t| t.converts()).count(),
        n_fallback: plan.n_fallback,
        n_elements: plan.tensors.iter().map(TensorPlan::n_elements).sum(),
        input_file_bytes: file.file_len(),
        output_file_bytes,
        input_tensor_bytes: plan.tensors.iter().map(|t| t.src_bytes).sum(),
        output_tensor_bytes: plan.tensors.iter().map(|t| t.dst_bytes).sum(),
        seconds: start.elapsed().as_secs_f64(),
        threads,
        type_counts,
        tensors: plan.tensors,
    })
}

fn part_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    output.with_file_name(name)
}

fn write_all(
    file: &GgufFile,
    tensors: &[TensorPlan],
    builder: GgufBuilder,
    out: File,
    opts: &QuantizeOptions,
    threads: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<()> {
    let mut w = builder.write_header(BufWriter::with_capacity(1 << 20, out))?;
    let elements_total: u64 = tensors.iter().map(TensorPlan::n_elements).sum();
    let mut elements_done = 0u64;
    let mut buf = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        let info = file
            .tensor_info(&t.name)
            .ok_or_else(|| Error::Quantize(format!("tensor {} vanished", t.name)))?;
        let src = file.tensor_data(info);
        if t.converts() {
            let im = opts
                .imatrix
                .as_ref()
                .filter(|_| t.uses_imatrix)
                .and_then(|m| m.get(&t.name))
                .map(Vec::as_slice);
            buf.clear();
            buf.resize(usize_of(t.dst_bytes, &t.name)?, 0);
            convert(t, src, &mut buf, im, threads)?;
            w.write_tensor(&buf)?;
        } else {
            w.write_tensor(src)?;
        }
        elements_done += t.n_elements();
        progress(&Progress {
            done: i + 1,
            total: tensors.len(),
            tensor: t,
            elements_done,
            elements_total,
        });
    }
    let mut out = w.finish()?;
    out.flush()
        .map_err(|e| Error::Gguf(slm_gguf::GgufError::Write(e)))?;
    Ok(())
}

fn usize_of(n: u64, name: &str) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::Quantize(format!("tensor {name} is too large")))
}

/// Converts one tensor: per expert matrix, per slab of rows, dequantize then quantize.
fn convert(
    t: &TensorPlan,
    src: &[u8],
    dst: &mut [u8],
    imatrix: Option<&[f32]>,
    threads: usize,
) -> Result<()> {
    let name = t.name.as_str();
    let ne0 = usize_of(t.dims.first().copied().unwrap_or(1), name)?;
    let ne1 = usize_of(t.dims.get(1).copied().unwrap_or(1), name)?;
    let n_mat = usize_of(t.dims.iter().skip(2).product::<u64>(), name)?;
    let src_row = usize_of(t.src_type.row_bytes(ne0 as u64).unwrap_or(0), name)?;
    let dst_row = usize_of(t.dst_type.row_bytes(ne0 as u64).unwrap_or(0), name)?;
    let quant_err = |source| Error::Quant {
        tensor: name.to_string(),
        source,
    };
    let rows_per_slab = (SLAB_ELEMENTS / ne0.max(1)).clamp(1, ne1.max(1));
    let mut f32_buf = vec![0f32; rows_per_slab * ne0];
    for m in 0..n_mat {
        let im = imatrix.and_then(|w| w.get(m * ne0..(m + 1) * ne0));
        let mut r0 = 0;
        while r0 < ne1 {
            let rows = rows_per_slab.min(ne1 - r0);
            let row = m * ne1 + r0;
            let s = src
                .get(row * src_row..(row + rows) * src_row)
                .ok_or_else(|| Error::Quantize(format!("tensor {name}: data is short")))?;
            let d = dst
                .get_mut(row * dst_row..(row + rows) * dst_row)
                .ok_or_else(|| Error::Quantize(format!("tensor {name}: output is short")))?;
            let x = &mut f32_buf[..rows * ne0];
            parallel_rows(threads, ne0, s, src_row, x, ne0, &|s, x| {
                slm_quant::dequantize_row(t.src_type, s, x)
            })
            .map_err(quant_err)?;
            let x = &f32_buf[..rows * ne0];
            parallel_rows(threads, ne0, x, ne0, d, dst_row, &|x, d| {
                slm_quant::quantize_rows(t.dst_type, x, ne0, d, im)
            })
            .map_err(quant_err)?;
            r0 += rows;
        }
    }
    Ok(())
}

/// Work on one chunk of rows: (source rows, destination rows).
type RowsFn<'a, S, D> =
    dyn Fn(&[S], &mut [D]) -> std::result::Result<(), slm_quant::QuantError> + Sync + 'a;

/// Runs `f` over matching chunks of rows of `src` (`src_row` items a row) and `dst`
/// (`dst_row` items a row) on up to `threads` scoped threads, chunks taken from a shared queue.
fn parallel_rows<S: Sync, D: Send>(
    threads: usize,
    n_per_row: usize,
    src: &[S],
    src_row: usize,
    dst: &mut [D],
    dst_row: usize,
    f: &RowsFn<'_, S, D>,
) -> std::result::Result<(), slm_quant::QuantError> {
    let rows_per_chunk = CHUNK_ELEMENTS.div_ceil(n_per_row.max(1)).max(1);
    let n_rows = dst.len().checked_div(dst_row).unwrap_or(0);
    let n_chunks = n_rows.div_ceil(rows_per_chunk);
    let work = src
        .chunks(rows_per_chunk * src_row)
        .zip(dst.chunks_mut(rows_per_chunk * dst_row));
    let n_threads = threads.clamp(1, n_chunks.max(1));
    if n_threads == 1 {
        for (s, d) in work {
            f(s, d)?;
        }
        return Ok(());
    }
    let queue = Mutex::new(work);
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..n_threads {
            scope.spawn(|| loop {
                let item = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                let Some((s, d)) = item else { break };
                if let Err(e) = f(s, d) {
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}
