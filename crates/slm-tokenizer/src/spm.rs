//! SentencePiece BPE (`tokenizer.ggml.model = llama`), following llama.cpp's
//! `llm_tokenizer_spm_session`: the text (spaces already escaped to `▁`) is split into UTF-8
//! characters; the adjacent pair whose concatenation is a token with the highest score (then the
//! leftmost) is merged until no pair is a token; a final symbol that is no token is emitted as byte
//! tokens (`<0xHH>`, byte fallback).
//!
//! Speed: one heap over a long text is slow (cache misses), so the text is first cut where two
//! adjacent characters occur next to each other in no token at all: no merge can ever cross such a
//! cut, and the merge order within each piece is the global order restricted to it, so encoding the
//! pieces separately gives exactly the same ids.
//!
//! llama.cpp also keeps a `rev_merge` map to re-split symbols that are not tokens; it only ever holds
//! texts that are tokens, so that path never runs, and we leave it out.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashSet;

use crate::error::TokenizerError;
use crate::vocab::Vocab;

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

#[derive(Clone, Copy)]
struct Bigram {
    score: f32,
    left: i32,
    right: i32,
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the smaller left index.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

/// Reusable buffers for SPM encoding.
#[derive(Default)]
pub struct Session {
    syms: Vec<Sym>,
    heap: BinaryHeap<Bigram>,
}

/// Byte-fallback ids for the 256 byte values, computed once at load.
pub type ByteTokens = [Option<u32>; 256];

/// Byte-fallback ids as llama.cpp's `byte_to_token` finds them: `<0xHH>`, else the one-byte text.
pub fn byte_tokens(vocab: &Vocab) -> ByteTokens {
    let mut t = [None; 256];
    for (b, slot) in t.iter_mut().enumerate() {
        let hex = format!("<0x{b:02X}>");
        *slot = vocab.id(&hex).or_else(|| {
            let b = b as u8;
            if b.is_ascii() && b != 0 {
                vocab.id(std::str::from_utf8(&[b]).unwrap_or(""))
            } else {
                None
            }
        });
    }
    t
}

/// Every pair of characters that stand next to each other inside some token.
pub fn adjacent_pairs(vocab: &Vocab) -> FxHashSet<(char, char)> {
    let mut set = FxHashSet::default();
    for t in &vocab.texts {
        let mut it = t.chars();
        let Some(mut prev) = it.next() else { continue };
        for c in it {
            set.insert((prev, c));
            prev = c;
        }
    }
    set
}

impl Session {
    /// Encode `text` (whitespace already escaped) and append the ids. `pairs` is
    /// [`adjacent_pairs`] of the vocabulary.
    pub fn encode(
        &mut self,
        text: &str,
        vocab: &Vocab,
        bytes: &ByteTokens,
        pairs: &FxHashSet<(char, char)>,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let mut start = 0usize;
        let mut prev: Option<char> = None;
        for (i, c) in text.char_indices() {
            if let Some(p) = prev {
                if !pairs.contains(&(p, c)) {
                    self.encode_piece(&text[start..i], vocab, bytes, out)?;
                    start = i;
                }
            }
            prev = Some(c);
        }
        self.encode_piece(&text[start..], vocab, bytes, out)
    }

    fn encode_piece(
        &mut self,
        text: &str,
        vocab: &Vocab,
        bytes: &ByteTokens,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        self.syms.clear();
        self.heap.clear();
        let n_bytes = text.len();
        for (k, (i, c)) in text.char_indices().enumerate() {
            let l = c.len_utf8();
            self.syms.push(Sym {
                start: i as u32,
                len: l as u32,
                prev: k as i32 - 1,
                next: if i + l == n_bytes { -1 } else { k as i32 + 1 },
            });
        }
        for k in 1..self.syms.len() {
            self.try_add(text, k as i32 - 1, k as i32, vocab);
        }
        while let Some(bg) = self.heap.pop() {
            let (l, r) = (self.syms[bg.left as usize], self.syms[bg.right as usize]);
            if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
                continue;
            }
            self.syms[bg.left as usize].len += r.len;
            self.syms[bg.left as usize].next = r.next;
            self.syms[bg.right as usize].len = 0;
            if r.next >= 0 {
                self.syms[r.next as usize].prev = bg.left;
            }
            let (lp, ln) = (
                self.syms[bg.left as usize].prev,
                self.syms[bg.left as usize].next,
            );
            self.try_add(text, lp, bg.left, vocab);
            self.try_add(text, bg.left, ln, vocab);
        }
        if self.syms.is_empty() {
            return Ok(());
        }
        let mut i = 0i32;
        while i != -1 {
            let s = self.syms[i as usize];
            let piece = &text[s.start as usize..(s.start + s.len) as usize];
            match vocab.id(piece) {
                Some(id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        match bytes[b as usize].or(vocab.special.unk) {
                            Some(id) => out.push(id),
                            None => return Err(TokenizerError::NoByteToken(b)),
                        }
                    }
                }
            }
            i = s.next;
        }
        Ok(())
    }

    fn try_add(&mut self, text: &str, left: i32, right: i32, vocab: &Vocab) {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (self.syms[left as usize], self.syms[right as usize]);
        let joined = &text[l.start as usize..(l.start + l.len + r.len) as usize];
        if let Some(id) = vocab.id(joined) {
            self.heap.push(Bigram {
                score: vocab.scores[id as usize],
                left,
                right,
                size: l.len + r.len,
            });
        }
    }
}
