//! `slm export NAME -o bundle.tar` / `slm import bundle.tar`: air-gapped transfer as a plain tar
//! (ustar; sizes past 8 GiB in GNU base-256) holding `slm-bundle.json` (names and manifests)
//! first, then `blobs/sha256-<hex>` members. On import every blob is streamed through the
//! store's verified writer against its name's digest, other member names are refused, and the
//! manifests are written last, after all their blobs are present.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{HubError, Result};
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::name::ModelName;
use crate::store::Store;

const INDEX: &str = "slm-bundle.json";

#[derive(Serialize, Deserialize)]
struct Index {
    models: BTreeMap<String, Manifest>,
}

fn header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, v: &[u8]| {
        for (d, s) in h.iter_mut().skip(off).zip(v) {
            *d = *s;
        }
    };
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    if size < 0o77777777777 {
        put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256: high bit set, big-endian value in the 12 bytes.
        let mut f = [0u8; 12];
        for (i, b) in size.to_be_bytes().iter().enumerate() {
            if let Some(d) = f.get_mut(4 + i) {
                *d = *b;
            }
        }
        f[0] = 0x80;
        put(&mut h, 124, &f);
    }
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 156, b"0");
    put(&mut h, 257, b"ustar\x0000");
    put(&mut h, 148, b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    h
}

fn pad(n: u64) -> usize {
    ((512 - (n % 512)) % 512) as usize
}

/// Write the models `names` (with their blobs, each once) as a tar to `out`.
pub fn export<W: Write>(store: &Store, names: &[ModelName], mut out: W) -> Result<u64> {
    let mut index = Index {
        models: BTreeMap::new(),
    };
    for n in names {
        index.models.insert(n.to_string(), store.read_manifest(n)?);
    }
    let json = serde_json::to_vec_pretty(&index).unwrap_or_default();
    let io = |e: io::Error| HubError::Other(format!("writing the bundle: {e}"));
    out.write_all(&header(INDEX, json.len() as u64))
        .map_err(io)?;
    out.write_all(&json).map_err(io)?;
    out.write_all(&vec![0u8; pad(json.len() as u64)])
        .map_err(io)?;
    let mut done = std::collections::BTreeSet::new();
    let mut total = 0u64;
    for m in index.models.values() {
        for l in &m.layers {
            if !done.insert(l.digest) {
                continue;
            }
            let mut f = store.open_blob(&l.digest)?;
            out.write_all(&header(&format!("blobs/{}", l.digest.file_name()), l.size))
                .map_err(io)?;
            let n = io::copy(&mut f, &mut out).map_err(io)?;
            if n != l.size {
                return Err(HubError::SizeMismatch {
                    what: l.digest.to_string(),
                    expected: l.size,
                    actual: n,
                });
            }
            out.write_all(&vec![0u8; pad(n)]).map_err(io)?;
            total = total.saturating_add(n);
        }
    }
    out.write_all(&[0u8; 1024]).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(total)
}

fn parse_size(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = 0u64;
        for (i, b) in f.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f)
        .ok()?
        .trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Read a bundle from `input` into the store; returns the names imported.
pub fn import<R: Read>(store: &Store, mut input: R) -> Result<Vec<ModelName>> {
    let bad = |reason: String| HubError::BadArchive {
        wheel: "bundle".into(),
        reason,
    };
    let io = |e: io::Error| HubError::Other(format!("reading the bundle: {e}"));
    let mut index: Option<Index> = None;
    let mut pins = Vec::new();
    loop {
        let mut h = [0u8; 512];
        input.read_exact(&mut h).map_err(io)?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name_end = h.iter().take(100).position(|&b| b == 0).unwrap_or(100);
        let name = std::str::from_utf8(h.get(..name_end).unwrap_or_default())
            .map_err(|_| bad("member name is not UTF-8".into()))?
            .to_string();
        let size = parse_size(h.get(124..136).unwrap_or_default())
            .ok_or_else(|| bad(format!("bad size for {name:?}")))?;
        let typeflag = h.get(156).copied().unwrap_or(0);
        if !(typeflag == b'0' || typeflag == 0) {
            return Err(bad(format!("member {name:?} is not a regular file")));
        }
        if name == INDEX {
            if size > MAX_MANIFEST_BYTES as u64 * 4 {
                return Err(bad("index too large".into()));
            }
            let mut buf = Vec::new();
            (&mut input).take(size).read_to_end(&mut buf).map_err(io)?;
            let ix: Index = serde_json::from_slice(&buf).map_err(|e| bad(format!("index: {e}")))?;
            index = Some(ix);
        } else if let Some(d) = name.strip_prefix("blobs/").and_then(Digest::from_file_name) {
            let ix = index
                .as_ref()
                .ok_or_else(|| bad("blob before the index".into()))?;
            let expected = ix
                .models
                .values()
                .flat_map(|m| &m.layers)
                .find(|l| l.digest == d);
            let want_size = expected
                .map(|l| l.size)
                .ok_or_else(|| bad(format!("blob {d} not named by any manifest")))?;
            if want_size != size {
                return Err(HubError::SizeMismatch {
                    what: d.to_string(),
                    expected: want_size,
                    actual: size,
                });
            }
            let mut member = (&mut input).take(size);
            let (_, _, pin) = store.put_blob_pinned(&mut member, Some(&d), Some(size))?;
            pins.push(pin);
        } else {
            return Err(bad(format!(
                "unexpected member {:?}",
                name.chars().take(100).collect::<String>()
            )));
        }
        let mut skip = vec![0u8; pad(size)];
        input.read_exact(&mut skip).map_err(io)?;
    }
    let ix = index.ok_or_else(|| bad("no index".into()))?;
    let mut names = Vec::new();
    for (n, m) in ix.models {
        let name = ModelName::parse(&n)?;
        store.write_manifest(&name, &m)?;
        names.push(name);
    }
    // The blobs stay pinned until every manifest naming them is written.
    drop(pins);
    Ok(names)
}

/// Whether `path` looks like a tar bundle (the ustar magic at offset 257).
pub fn is_bundle(path: &std::path::Path) -> bool {
    let mut h = [0u8; 263];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut h))
        .map(|_| h.get(257..262) == Some(b"ustar"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_in_octal_and_base256() {
        for size in [
            0u64,
            1,
            511,
            0o77777777776,
            0o77777777777,
            9 << 30,
            u64::MAX >> 1,
        ] {
            let h = header("x", size);
            assert_eq!(
                parse_size(h.get(124..136).unwrap_or_default()),
                Some(size),
                "{size}"
            );
            let sum: u32 = h
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        u32::from(b)
                    }
                })
                .sum();
            let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap_or(""), 8)
                .unwrap_or(0);
            assert_eq!(stored, sum, "checksum");
        }
    }
}
