//! `Digest`: a sha256 content address. The only constructors are `Digest::parse` (the canonical
//! `sha256:<64 lowercase hex>` form) and `Hasher::finish`, so a value of this type is always safe to
//! turn into a file name (`sha256-<hex>`), whatever string a registry sent.

use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::error::{HubError, Result};

/// A validated sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl Digest {
    /// Parse `sha256:<64 lowercase hex digits>`, exactly; nothing else is accepted (no upper case,
    /// no `sha256-` form, no whitespace, no other algorithm).
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = |reason| HubError::InvalidDigest {
            input: s.chars().take(100).collect(),
            reason,
        };
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("must start with sha256:"))?;
        Digest::from_hex(hex).map_err(|_| bad("want 64 lowercase hex digits after sha256:"))
    }

    /// Parse a bare 64-digit lowercase hex string (as in catalogs and PyPI indexes).
    pub fn from_hex(hex: &str) -> Result<Digest> {
        let bad = |reason| HubError::InvalidDigest {
            input: hex.chars().take(100).collect(),
            reason,
        };
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(bad("want 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (hi, lo) = match pair {
                [h, l] => (hex_val(*h), hex_val(*l)),
                _ => (None, None),
            };
            match (hi, lo) {
                (Some(h), Some(l)) => *o = (h << 4) | l,
                _ => return Err(bad("want lowercase hex digits 0-9a-f")),
            }
        }
        Ok(Digest(out))
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// The blob file name in the store: `sha256-<hex>` (Ollama's layout; no `:` for Windows).
    pub fn file_name(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// Parse a store blob file name back (`sha256-<hex>`).
    pub fn from_file_name(name: &str) -> Option<Digest> {
        Digest::from_hex(name.strip_prefix("sha256-")?).ok()
    }

    /// The sha256 of a byte slice.
    pub fn of_bytes(data: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 that ends in a `Digest`.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len = self.len.saturating_add(data.len() as u64);
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest(self.inner.finalize().into())
    }
}
