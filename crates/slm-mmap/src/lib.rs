//! Read-only file mapping: the only `unsafe` the file parsers depend on, kept in its own crate so
//! that `slm-gguf` (and later the safetensors reader) can `#![forbid(unsafe_code)]`.
//!
//! A [`Mapped`] is either a real memory map of a file or an owned buffer (for tests, fuzzing and
//! files that are read from a pipe); both deref to `&[u8]`.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// Bytes of a model file: memory-mapped when read from disk, owned otherwise.
pub enum Mapped {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    /// Map `path` read-only. An empty file maps to an empty buffer (mmap of length 0 is an error
    /// on some systems).
    pub fn open(path: &Path) -> io::Result<Mapped> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Mapped::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only. Another process truncating or rewriting the file while it is
        // mapped is outside what we can guard against in safe code (as for every mmap-based
        // model loader); the parsers bound every access by the length seen at map time.
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        Ok(Mapped::Map(map))
    }

    pub fn from_vec(bytes: Vec<u8>) -> Mapped {
        Mapped::Owned(bytes)
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Mapped::Map(m) => m,
            Mapped::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self
    }
}
