//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): merges by rank, following llama.cpp's
//! `llm_tokenizer_bpe_session`. Each pre-tokenized word is byte-encoded (GPT-2 printable
//! characters), split into characters, and the adjacent pair with the lowest merge rank (then the
//! leftmost) is merged until no pair has a rank.
//!
//! Merges are looked up by token-id pair. llama.cpp looks them up by text pair; the two agree because
//! loading refuses merges whose sides are not tokens, so a symbol that is not a token can take part
//! in no merge under either scheme.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
use slm_gguf::{Array, Gguf, Value};

use crate::error::TokenizerError;
use crate::unicode::byte_to_char;
use crate::vocab::Vocab;

/// The merge table: (left id, right id) -> (rank, id of the merged text if it is a token).
#[derive(Clone, Debug)]
pub struct Merges {
    map: FxHashMap<(u32, u32), (u32, Option<u32>)>,
    /// token id of each single GPT-2 character, by byte value
    byte_char_id: [Option<u32>; 256],
}

impl Merges {
    pub fn from_gguf(g: &Gguf, vocab: &Vocab) -> Result<Merges, TokenizerError> {
        const KEY: &str = "tokenizer.ggml.merges";
        let list = match g.get(KEY) {
            None => return Err(TokenizerError::MissingKey(KEY)),
            Some(Value::Array(Array::String(v))) => v,
            Some(_) => {
                return Err(TokenizerError::WrongType {
                    key: KEY,
                    expected: "array of string",
                })
            }
        };
        let mut map = FxHashMap::default();
        map.reserve(list.len());
        let mut joined = String::new();
        for (index, m) in list.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte.
            let pos = m
                .as_bytes()
                .iter()
                .skip(1)
                .position(|&b| b == b' ')
                .map(|p| p + 1);
            let Some(pos) = pos else {
                return Err(TokenizerError::MalformedMerge {
                    index,
                    merge: m.clone(),
                });
            };
            let (a, b) = (&m[..pos], &m[pos + 1..]);
            let (Some(ia), Some(ib)) = (vocab.id(a), vocab.id(b)) else {
                return Err(TokenizerError::MergeUnknownToken {
                    index,
                    merge: m.clone(),
                });
            };
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let merged = vocab.id(&joined);
            let rank = u32::try_from(index).unwrap_or(u32::MAX);
            map.entry((ia, ib)).or_insert((rank, merged));
        }
        let mut byte_char_id = [None; 256];
        let mut buf = [0u8; 4];
        for (b, slot) in byte_char_id.iter_mut().enumerate() {
            *slot = if vocab.byte_level {
                vocab.id(byte_to_char(b as u8).encode_utf8(&mut buf))
            } else {
                vocab.id(&format!("<0x{b:02X}>"))
            };
        }
        Ok(Merges { map, byte_char_id })
    }

    /// Token id standing for byte `b` (its GPT-2 character, or `<0xHH>` for Gemma 4), if any.
    pub fn byte_token(&self, b: u8) -> Option<u32> {
        self.byte_char_id[b as usize]
    }
}

#[derive(Clone, Copy)]
struct Sym {
    /// token id of the symbol's text, if it is a token
    id: Option<u32>,
    /// first byte of the symbol within the word
    start: u32,
    /// length in bytes of the raw (not byte-encoded) text
    len: u32,
    prev: i32,
    next: i32,
}

/// Reusable buffers for encoding words.
#[derive(Default)]
pub struct Session {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, i32, i32, u32)>>,
    encoded: String,
}

impl Session {
    /// Encode one pre-tokenized word (raw UTF-8 bytes) and append its ids.
    pub fn encode_word(&mut self, word: &[u8], vocab: &Vocab, merges: &Merges, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if vocab.ignore_merges {
            self.encoded.clear();
            self.encoded.extend(word.iter().map(|&b| byte_to_char(b)));
            if let Some(id) = vocab.id(&self.encoded) {
                out.push(id);
                return;
            }
        }
        if !vocab.byte_level {
            self.encode_word_utf8(word, vocab, merges, out);
            return;
        }
        // One symbol per character of the byte-encoded word, that is one per raw byte.
        self.syms.clear();
        let n = word.len();
        for (i, &b) in word.iter().enumerate() {
            self.syms.push(Sym {
                id: merges.byte_token(b),
                start: i as u32,
                len: 1,
                prev: i as i32 - 1,
                next: if i + 1 == n { -1 } else { i as i32 + 1 },
            });
        }
        self.merge(merges);
        for s in &self.syms {
            if s.len == 0 {
                continue;
            }
            match s.id {
                Some(id) => out.push(id),
                None => {
                    // llama.cpp: look each byte of the encoded text up as a one-byte token; only
                    // ASCII bytes can be one-byte tokens, and GPT-2 maps ASCII graphics to themselves.
                    let raw = &word[s.start as usize..(s.start + s.len) as usize];
                    for &b in raw {
                        let c = byte_to_char(b);
                        if c.is_ascii() {
                            let mut buf = [0u8; 4];
                            if let Some(id) = vocab.id(c.encode_utf8(&mut buf)) {
                                out.push(id);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Merge adjacent symbols by rank until no pair has one.
    fn merge(&mut self, merges: &Merges) {
        self.heap.clear();
        for k in 1..self.syms.len() {
            self.try_add(k as i32 - 1, k as i32, merges);
        }
        while let Some(Reverse((_, left, right, size))) = self.heap.pop() {
            let (l, r) = (self.syms[left as usize], self.syms[right as usize]);
            if l.len == 0 || r.len == 0 || l.len + r.len != size || l.next != right {
                continue;
            }
            let merged = merges
                .map
                .get(&(l.id.unwrap_or(u32::MAX), r.id.unwrap_or(u32::MAX)));
            let Some(&(_, merged_id)) = merged else {
                continue;
            };
            self.syms[left as usize].len += r.len;
            self.syms[left as usize].id = merged_id;
            self.syms[left as usize].next = r.next;
            self.syms[right as usize].len = 0;
            if r.next >= 0 {
                self.syms[r.next as usize].prev = left;
            }
            let lp = self.syms[left as usize].prev;
            let ln = self.syms[left as usize].next;
            self.try_add(lp, left, merges);
            self.try_add(left, ln, merges);
        }
    }

    /// Gemma 4: symbols are UTF-8 characters of the raw word (spaces already `▁`); a word of
    /// newlines only that is a token is taken whole (llama.cpp PR 21343); symbols that are no token
    /// become `<0xHH>` byte tokens.
    fn encode_word_utf8(
        &mut self,
        word: &[u8],
        vocab: &Vocab,
        merges: &Merges,
        out: &mut Vec<u32>,
    ) {
        let Ok(text) = std::str::from_utf8(word) else {
            return;
        };
        if text.bytes().all(|b| b == b'\n') {
            if let Some(id) = vocab.id(text) {
                out.push(id);
                return;
            }
        }
        self.syms.clear();
        let n = text.len();
        for (k, (i, c)) in text.char_indices().enumerate() {
            let l = c.len_utf8();
            self.syms.push(Sym {
                id: vocab.id(&text[i..i + l]),
                start: i as u32,
                len: l as u32,
                prev: k as i32 - 1,
                next: if i + l == n { -1 } else { k as i32 + 1 },
            });
        }
        self.merge(merges);
        for s in &self.syms {
            if s.len == 0 {
                continue;
            }
            match s.id {
                Some(id) => out.push(id),
                None => {
                    for &b in &word[s.start as usize..(s.start + s.len) as usize] {
                        if let Some(id) = merges.byte_token(b) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }

    fn try_add(&mut self, left: i32, right: i32, merges: &Merges) {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (self.syms[left as usize], self.syms[right as usize]);
        let (Some(a), Some(b)) = (l.id, r.id) else {
            return;
        };
        if let Some(&(rank, _)) = merges.map.get(&(a, b)) {
            self.heap.push(Reverse((rank, left, right, l.len + r.len)));
        }
    }
}
