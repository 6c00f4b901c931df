//! Streaming detokenizer: turns generated ids into text chunks that never end inside a UTF-8
//! character. Bytes of an unfinished character wait for the next token; bytes that can never form a
//! character become U+FFFD.

use crate::tokenizer::Tokenizer;

/// Accumulates token bytes and hands out complete UTF-8 text.
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u8>,
    special: bool,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder that renders control tokens as nothing (what a user should see).
    pub fn new(tok: &'a Tokenizer) -> Self {
        StreamDecoder {
            tok,
            pending: Vec::new(),
            special: false,
        }
    }

    /// A decoder that renders control tokens as their text when `special` is true.
    pub fn with_special(tok: &'a Tokenizer, special: bool) -> Self {
        StreamDecoder {
            tok,
            pending: Vec::new(),
            special,
        }
    }

    /// Add one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        let piece = self.tok.piece(id, self.special);
        self.push_bytes(piece)
    }

    /// Add raw bytes; returns the text that is now complete (possibly empty).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut start = 0usize;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix was just checked to be valid UTF-8.
                    out.push_str(&String::from_utf8_lossy(
                        &self.pending[start..start + valid],
                    ));
                    start += valid;
                    match e.error_len() {
                        // An unfinished character at the end: wait for more bytes.
                        None => break,
                        Some(n) => {
                            out.push('\u{FFFD}');
                            start += n;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }

    /// Bytes still waiting for the rest of their character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// End of stream: whatever is pending, with U+FFFD for an unfinished character.
    pub fn flush(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}
