//! llama.cpp's `--kl-divergence-base` file (`tools/perplexity/perplexity.cpp`: `perplexity()`
//! writes it, `kl_divergence()` reads it), so that either tool reads the other's:
//!
//! ```text
//! "_logits_"                      8 bytes
//! n_ctx    u32, n_vocab i32, n_chunk i32
//! tokens   i32 [n_chunk * n_ctx]  the text's tokens (not BOS-replaced)
//! per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them), one record of
//!   nv = 2 * ((n_vocab + 1) / 2) + 4 u16 values:
//!   [0..2) f32 scale, [2..4) f32 min_log_prob, [4..4 + n_vocab) q[i], then 0 padding
//! ```
//!
//! A record stores the log-softmax of one logits row in 16 bits: with `max`, `min` the row's
//! extremes, `min` raised to `max - 16`, `lse = ln Σ exp(l - max)`:
//! `scale = (max - min) / 65535`, `min_log_prob = min - max - lse`,
//! `q[i] = round((l_i - min) / scale)` for `l_i > min`, else 0; so
//! `log p_i ≈ scale * q[i] + min_log_prob`. All little-endian.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::error::{ModelError, Result};

const MAGIC: &[u8; 8] = b"_logits_";

/// u16 values per record for a vocabulary of `n_vocab`.
pub fn record_len(n_vocab: usize) -> usize {
    2 * n_vocab.div_ceil(2) + 4
}

/// Scored positions per chunk of `n_ctx`.
pub fn scored_per_chunk(n_ctx: usize) -> usize {
    n_ctx.saturating_sub(1).saturating_sub(n_ctx / 2)
}

/// ggml's `nearest_int` for the values met here (0..=65535): round half to even.
fn nearest_int(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// Encode one logits row (n_vocab,) into `rec` (record_len(n_vocab),) as llama.cpp's
/// `log_softmax(n_vocab, logits, log_prob, tok)`; returns `-log p(target)` (f32 math, as there).
pub fn encode_row(logits: &[f32], target: u32, rec: &mut [u16]) -> f64 {
    let mut max = logits.first().copied().unwrap_or(0.0);
    let mut min = max;
    for &l in logits {
        max = max.max(l);
        min = min.min(l);
    }
    let min = min.max(max - 16.0);
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let lse = sum_exp.ln() as f32;
    let min_log_prob = min - max - lse;
    let scale = (max - min) / 65535.0;
    let (s, m) = (scale.to_bits(), min_log_prob.to_bits());
    rec[0] = s as u16;
    rec[1] = (s >> 16) as u16;
    rec[2] = m as u16;
    rec[3] = (m >> 16) as u16;
    let q = &mut rec[4..];
    q.fill(0);
    if scale != 0.0 {
        let inv = 1.0 / scale;
        for (o, &l) in q.iter_mut().zip(logits) {
            // C's int -> uint16_t conversion (modulo 2^16), as llama.cpp stores it.
            *o = if l > min {
                nearest_int(inv * (l - min)) as u16
            } else {
                0
            };
        }
    }
    let lt = logits
        .get(target as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    f64::from(max + lse - lt)
}

/// `(scale, min_log_prob, q)` of a record.
pub fn decode_record(rec: &[u16]) -> (f32, f32, &[u16]) {
    let word = |i: usize| u32::from(rec.get(i).copied().unwrap_or(0));
    let scale = f32::from_bits(word(0) | word(1) << 16);
    let min_log_prob = f32::from_bits(word(2) | word(3) << 16);
    (scale, min_log_prob, rec.get(4..).unwrap_or(&[]))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::LogitsFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Writes a base log-probability file chunk by chunk.
pub struct LogitsWriter {
    w: BufWriter<File>,
    path: std::path::PathBuf,
    n_ctx: usize,
    n_vocab: usize,
    chunks_left: usize,
}

impl LogitsWriter {
    /// Create `path` and write the header and `tokens` (n_chunk * n_ctx of them).
    pub fn create(path: &Path, n_ctx: usize, n_vocab: usize, tokens: &[u32]) -> Result<Self> {
        let n_chunk = tokens.len() / n_ctx.max(1);
        if n_ctx == 0 || n_chunk == 0 || !tokens.len().is_multiple_of(n_ctx) {
            return Err(bad(path, "tokens must be a whole number of chunks"));
        }
        let to_i32 = |v: usize, what: &str| {
            i32::try_from(v).map_err(|_| bad(path, format!("{what} {v} does not fit i32")))
        };
        let f = File::create(path).map_err(io_err(path))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut head = Vec::with_capacity(20 + tokens.len() * 4);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(to_i32(n_ctx, "n_ctx")? as u32).to_le_bytes());
        head.extend_from_slice(&to_i32(n_vocab, "n_vocab")?.to_le_bytes());
        head.extend_from_slice(&to_i32(n_chunk, "n_chunk")?.to_le_bytes());
        for &t in tokens {
            head.extend_from_slice(&to_i32(t as usize, "token")?.to_le_bytes());
        }
        w.write_all(&head).map_err(io_err(path))?;
        Ok(LogitsWriter {
            w,
            path: path.to_path_buf(),
            n_ctx,
            n_vocab,
            chunks_left: n_chunk,
        })
    }

    /// Write one chunk: `logits` (scored_per_chunk(n_ctx), n_vocab) and the token each row
    /// predicts. Returns each row's `-log p(target)`. Rows are encoded on `n_threads` threads.
    pub fn write_chunk(
        &mut self,
        logits: &[f32],
        targets: &[u32],
        n_threads: usize,
    ) -> Result<Vec<f64>> {
        let rows = scored_per_chunk(self.n_ctx);
        if self.chunks_left == 0 || logits.len() != rows * self.n_vocab || targets.len() < rows {
            return Err(bad(&self.path, "chunk does not match the header"));
        }
        let nv = record_len(self.n_vocab);
        let mut recs = vec![0u16; rows * nv];
        let mut nll = vec![0f64; rows];
        let per = rows.div_ceil(n_threads.max(1)).max(1);
        let n_vocab = self.n_vocab;
        std::thread::scope(|s| {
            for ((recs, nll), (logits, targets)) in recs
                .chunks_mut(per * nv)
                .zip(nll.chunks_mut(per))
                .zip(logits.chunks(per * n_vocab).zip(targets.chunks(per)))
            {
                s.spawn(move || {
                    for (((rec, v), row), &t) in recs
                        .chunks_exact_mut(nv)
                        .zip(nll.iter_mut())
                        .zip(logits.chunks_exact(n_vocab))
                        .zip(targets)
                    {
                        *v = encode_row(row, t, rec);
                    }
                });
            }
        });
        let bytes: Vec<u8> = recs.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.w.write_all(&bytes).map_err(io_err(&self.path))?;
        self.chunks_left -= 1;
        Ok(nll)
    }

    /// Flush; every chunk declared in the header must have been written.
    pub fn finish(mut self) -> Result<()> {
        if self.chunks_left != 0 {
            return Err(bad(
                &self.path,
                format!("{} chunks missing", self.chunks_left),
            ));
        }
        self.w.flush().map_err(io_err(&self.path))
    }
}

/// Reads a base log-probability file: header and tokens at open, then one chunk at a time.
pub struct LogitsReader {
    r: BufReader<File>,
    path: std::path::PathBuf,
    pub n_ctx: usize,
    pub n_vocab: usize,
    pub n_chunk: usize,
    /// (n_chunk * n_ctx): the text's tokens.
    pub tokens: Vec<u32>,
    chunks_read: usize,
}

impl LogitsReader {
    /// Open and check the header against the file's size.
    pub fn open(path: &Path) -> Result<LogitsReader> {
        let f = File::open(path).map_err(io_err(path))?;
        let len = f.metadata().map_err(io_err(path))?.len();
        let mut r = BufReader::with_capacity(1 << 20, f);
        let mut head = [0u8; 20];
        r.read_exact(&mut head)
            .map_err(|_| bad(path, "too short for a log-probability file"))?;
        if &head[..8] != MAGIC {
            return Err(bad(
                path,
                "does not look like a file containing log-probabilities",
            ));
        }
        let word = |i: usize| [head[i], head[i + 1], head[i + 2], head[i + 3]];
        let n_ctx = u32::from_le_bytes(word(8)) as usize;
        let n_vocab = i32::from_le_bytes(word(12));
        let n_chunk = i32::from_le_bytes(word(16));
        let (Ok(n_vocab), Ok(n_chunk)) = (usize::try_from(n_vocab), usize::try_from(n_chunk))
        else {
            return Err(bad(path, "negative n_vocab or n_chunk"));
        };
        if n_ctx < 4 || n_vocab == 0 || n_chunk == 0 {
            return Err(bad(
                path,
                format!("n_ctx {n_ctx}, n_vocab {n_vocab}, n_chunk {n_chunk}"),
            ));
        }
        let need = (|| {
            let toks = (n_chunk as u64).checked_mul(n_ctx as u64)?.checked_mul(4)?;
            let recs = (n_chunk as u64)
                .checked_mul(scored_per_chunk(n_ctx) as u64)?
                .checked_mul(record_len(n_vocab) as u64)?
                .checked_mul(2)?;
            20u64.checked_add(toks)?.checked_add(recs)
        })();
        match need {
            Some(n) if n <= len => {}
            _ => {
                return Err(bad(
                    path,
                    format!(
                        "{len} bytes, too short for {n_chunk} chunks of {n_ctx} tokens over {n_vocab} ids"
                    ),
                ))
            }
        }
        let mut raw = vec![0u8; n_chunk * n_ctx * 4];
        r.read_exact(&mut raw).map_err(io_err(path))?;
        let mut tokens = Vec::with_capacity(n_chunk * n_ctx);
        for c in raw.chunks_exact(4) {
            let t = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            match u32::try_from(t) {
                Ok(t) if (t as usize) < n_vocab => tokens.push(t),
                _ => return Err(bad(path, format!("token {t} outside the vocabulary"))),
            }
        }
        Ok(LogitsReader {
            r,
            path: path.to_path_buf(),
            n_ctx,
            n_vocab,
            n_chunk,
            tokens,
            chunks_read: 0,
        })
    }

    /// Read the next chunk's records into `out` (resized to
    /// (scored_per_chunk(n_ctx), record_len(n_vocab))).
    pub fn next_chunk(&mut self, out: &mut Vec<u16>) -> Result<()> {
        if self.chunks_read >= self.n_chunk {
            return Err(bad(&self.path, "no more chunks"));
        }
        let n = scored_per_chunk(self.n_ctx) * record_len(self.n_vocab);
        let mut raw = vec![0u8; n * 2];
        self.r.read_exact(&mut raw).map_err(io_err(&self.path))?;
        out.clear();
        out.extend(
            raw.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        );
        self.chunks_read += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_is_within_the_quantization_step() {
        let logits: Vec<f32> = (0..101)
            .map(|i| ((i * 37) % 23) as f32 * 0.7 - 5.0)
            .collect();
        let mut rec = vec![0u16; record_len(logits.len())];
        assert_eq!(rec.len(), 2 * 51 + 4);
        let nll = encode_row(&logits, 3, &mut rec);
        assert!((nll - super::super::nll(&logits, 3)).abs() < 1e-5);
        let (scale, min_lp, q) = decode_record(&rec);
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let lse = logits
            .iter()
            .map(|&l| f64::from(l - max).exp())
            .sum::<f64>()
            .ln();
        for (i, &l) in logits.iter().enumerate() {
            let exact = f64::from(l - max) - lse;
            if exact > -16.0 {
                let got = f64::from(scale * f32::from(q[i]) + min_lp);
                assert!((got - exact).abs() <= f64::from(scale) * 0.51 + 1e-5, "{i}");
            }
        }
        assert_eq!(q[logits.len()], 0); // padding
    }

    #[test]
    fn file_round_trip_and_hostile_header() {
        let dir = std::env::temp_dir().join(format!("slm-logits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("base.kld");
        let (n_ctx, n_vocab) = (8usize, 5usize);
        let tokens: Vec<u32> = (0..16).map(|i| i % 5).collect();
        let mut w = LogitsWriter::create(&p, n_ctx, n_vocab, &tokens).unwrap();
        let rows = scored_per_chunk(n_ctx);
        assert_eq!(rows, 3);
        let logits: Vec<f32> = (0..rows * n_vocab).map(|i| i as f32 * 0.1).collect();
        for _ in 0..2 {
            w.write_chunk(&logits, &tokens[5..8], 2).unwrap();
        }
        w.finish().unwrap();
        let mut r = LogitsReader::open(&p).unwrap();
        assert_eq!((r.n_ctx, r.n_vocab, r.n_chunk), (8, 5, 2));
        assert_eq!(r.tokens, tokens);
        let mut buf = Vec::new();
        r.next_chunk(&mut buf).unwrap();
        assert_eq!(buf.len(), rows * record_len(n_vocab));
        r.next_chunk(&mut buf).unwrap();
        assert!(r.next_chunk(&mut buf).is_err());
        // truncated file, huge declared chunk count: typed errors, no huge allocation
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            LogitsReader::open(&p),
            Err(ModelError::LogitsFile { .. })
        ));
        let mut evil = bytes.clone();
        evil[16..20].copy_from_slice(&i32::MAX.to_le_bytes());
        std::fs::write(&p, &evil).unwrap();
        assert!(matches!(
            LogitsReader::open(&p),
            Err(ModelError::LogitsFile { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
