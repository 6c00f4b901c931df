//! Test harness of the hardening tests: a counting global allocator (per thread: current bytes,
//! peak, largest single allocation) and a raw GGUF byte builder that can express malformed files
//! (any count, length, type id or offset, truncated or unpadded).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![allow(clippy::cast_possible_truncation)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---------------------------------------------------------------------------------------------
// Counting allocator

pub struct Counting;

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    static PEAK: Cell<u64> = const { Cell::new(0) };
    static LARGEST: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let size = size as u64;
    let _ = CURRENT.try_with(|c| {
        let now = c.get().saturating_add(size);
        c.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

fn note_free(size: usize) {
    let _ = CURRENT.try_with(|c| c.set(c.get().saturating_sub(size as u64)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping only touches
// const-initialised thread-locals of `Cell<u64>` (no allocation, no destructor, `try_with`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note_free(layout.size());
            note_alloc(new_size);
        }
        p
    }
}

/// Heap use of one measured call, on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapUse {
    /// Peak bytes live during the call above what was live before it.
    pub peak_extra: u64,
    /// Largest single allocation (or reallocation target) during the call.
    pub largest: u64,
}

pub fn measure<R>(f: impl FnOnce() -> R) -> (R, HeapUse) {
    let start = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(start));
    LARGEST.with(|l| l.set(0));
    let r = f();
    let peak = PEAK.with(Cell::get);
    let largest = LARGEST.with(Cell::get);
    (
        r,
        HeapUse {
            peak_extra: peak.saturating_sub(start),
            largest,
        },
    )
}

pub const HEAP_LIMIT: u64 = 16 << 20;

/// The largest single allocation a parse of `file_len` bytes may make: the parser may hold
/// decoded copies of what it read (a `String` per 8-byte empty string: 3x), never more.
pub fn allocation_limit(file_len: usize) -> u64 {
    4 * file_len as u64 + (64 << 10)
}

// ---------------------------------------------------------------------------------------------
// Raw GGUF builder

pub mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

pub mod gt {
    pub const F32: u32 = 0;
    pub const F16: u32 = 1;
    pub const Q4_0: u32 = 2;
    pub const Q8_0: u32 = 8;
    pub const Q4_K: u32 = 12;
    pub const F64: u32 = 28;
}

/// A GGUF string: u64 length then the bytes.
pub fn s(x: &str) -> Vec<u8> {
    raw(x.len() as u64, x.as_bytes())
}

/// A string with a declared length that need not match its bytes.
pub fn raw(len: u64, bytes: &[u8]) -> Vec<u8> {
    let mut v = len.to_le_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[derive(Clone, Debug)]
pub struct Kv {
    /// The encoded key (length prefix and bytes).
    pub key: Vec<u8>,
    pub ty: u32,
    /// The encoded value.
    pub val: Vec<u8>,
}

pub fn kv(key: &str, ty: u32, val: Vec<u8>) -> Kv {
    Kv {
        key: s(key),
        ty,
        val,
    }
}

pub fn kv_u32(key: &str, v: u32) -> Kv {
    kv(key, vt::U32, v.to_le_bytes().to_vec())
}

pub fn kv_str(key: &str, v: &str) -> Kv {
    kv(key, vt::STRING, s(v))
}

pub fn str_array(items: &[&str]) -> Vec<u8> {
    let mut v = vt::STRING.to_le_bytes().to_vec();
    v.extend_from_slice(&(items.len() as u64).to_le_bytes());
    for i in items {
        v.extend_from_slice(&s(i));
    }
    v
}

#[derive(Clone, Debug)]
pub struct Ti {
    /// The encoded name (length prefix and bytes).
    pub name: Vec<u8>,
    pub n_dims: u32,
    pub dims: Vec<u64>,
    pub ty: u32,
    pub offset: u64,
}

pub fn ti(name: &str, dims: &[u64], ty: u32, offset: u64) -> Ti {
    Ti {
        name: s(name),
        n_dims: dims.len() as u32,
        dims: dims.to_vec(),
        ty,
        offset,
    }
}

#[derive(Clone, Debug)]
pub struct G {
    pub magic: Vec<u8>,
    pub version: u32,
    /// Declared counts; `None` writes the real number of entries.
    pub n_tensors: Option<u64>,
    pub n_kv: Option<u64>,
    pub kvs: Vec<Kv>,
    pub tis: Vec<Ti>,
    /// Alignment used to pad the header (what the file claims may differ).
    pub align: u64,
    pub pad: bool,
    pub data: Vec<u8>,
}

impl G {
    /// A small valid file: 3 metadata entries, an F32 [8, 2] tensor at 0 and a Q4_0 [32, 2]
    /// tensor at 64 (36 bytes), a 128-byte data section.
    pub fn base() -> G {
        G {
            magic: b"GGUF".to_vec(),
            version: 3,
            n_tensors: None,
            n_kv: None,
            kvs: vec![
                kv_str("general.architecture", "llama"),
                kv_u32("llama.context_length", 128),
                kv(
                    "tokenizer.ggml.tokens",
                    vt::ARRAY,
                    str_array(&["a", "b", "c"]),
                ),
            ],
            tis: vec![
                ti("a", &[8, 2], gt::F32, 0),
                ti("b", &[32, 2], gt::Q4_0, 64),
            ],
            align: 32,
            pad: true,
            data: (0..128u32).map(|i| (i * 7 + 3) as u8).collect(),
        }
    }

    /// Only metadata, nothing after it.
    pub fn kv_only(kvs: Vec<Kv>) -> G {
        G {
            kvs,
            tis: vec![],
            pad: false,
            data: vec![],
            ..G::base()
        }
    }

    pub fn with(mut self, f: impl FnOnce(&mut G)) -> G {
        f(&mut self);
        self
    }

    pub fn header(&self) -> Vec<u8> {
        let mut v = self.magic.clone();
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(
            &self
                .n_tensors
                .unwrap_or(self.tis.len() as u64)
                .to_le_bytes(),
        );
        v.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for k in &self.kvs {
            v.extend_from_slice(&k.key);
            v.extend_from_slice(&k.ty.to_le_bytes());
            v.extend_from_slice(&k.val);
        }
        for t in &self.tis {
            v.extend_from_slice(&t.name);
            v.extend_from_slice(&t.n_dims.to_le_bytes());
            for d in &t.dims {
                v.extend_from_slice(&d.to_le_bytes());
            }
            v.extend_from_slice(&t.ty.to_le_bytes());
            v.extend_from_slice(&t.offset.to_le_bytes());
        }
        v
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut v = self.header();
        if self.pad {
            while !(v.len() as u64).is_multiple_of(self.align) {
                v.push(0);
            }
        }
        v.extend_from_slice(&self.data);
        v
    }
}
