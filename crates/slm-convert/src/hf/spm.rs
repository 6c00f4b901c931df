//! SentencePiece `tokenizer.model` (a protobuf `ModelProto`): the pieces with their scores and
//! types, read with a small bounded protobuf walker (field 1 = repeated `SentencePiece
//! { 1: piece, 2: score, 3: type }`; every other field skipped), and written back for export.

use crate::error::{Error, Result};

/// SentencePiece piece types (also the GGUF token types llama.cpp writes).
pub const NORMAL: i32 = 1;
pub const UNKNOWN: i32 = 2;
pub const CONTROL: i32 = 3;
pub const USER_DEFINED: i32 = 4;
pub const UNUSED: i32 = 5;
pub const BYTE: i32 = 6;

/// One piece as stored in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: i32,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// (field number, wire type) of the next field, or None at the end.
    fn key(&mut self) -> Option<Option<(u64, u8)>> {
        if self.pos >= self.buf.len() {
            return Some(None);
        }
        let k = self.varint()?;
        Some(Some((k >> 3, (k & 7) as u8)))
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.bytes(8).map(|_| ()),
            2 => {
                let n = self.varint()?;
                self.bytes(n).map(|_| ())
            }
            5 => self.bytes(4).map(|_| ()),
            _ => None,
        }
    }
}

fn parse_piece(buf: &[u8]) -> Option<Piece> {
    let mut r = Reader { buf, pos: 0 };
    let mut p = Piece {
        piece: String::new(),
        score: 0.0,
        kind: NORMAL,
    };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => {
                let n = r.varint()?;
                p.piece = std::str::from_utf8(r.bytes(n)?).ok()?.to_string();
            }
            (2, 5) => {
                let b: [u8; 4] = r.bytes(4)?.try_into().ok()?;
                p.score = f32::from_le_bytes(b);
            }
            (3, 0) => p.kind = i32::try_from(r.varint()?).ok()?,
            _ => r.skip(wire)?,
        }
    }
    Some(p)
}

/// The pieces of a `tokenizer.model` (in id order).
pub fn parse_model(buf: &[u8], file: &str) -> Result<Vec<Piece>> {
    let bad = || Error::HfConfig {
        file: file.to_string(),
        why: "not a valid SentencePiece model (protobuf)".into(),
    };
    let mut r = Reader { buf, pos: 0 };
    let mut pieces = Vec::new();
    while let Some((field, wire)) = r.key().ok_or_else(bad)? {
        if field == 1 && wire == 2 {
            let n = r.varint().ok_or_else(bad)?;
            let body = r.bytes(n).ok_or_else(bad)?;
            pieces.push(parse_piece(body).ok_or_else(bad)?);
        } else {
            r.skip(wire).ok_or_else(bad)?;
        }
    }
    if pieces.is_empty() {
        return Err(bad());
    }
    Ok(pieces)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A minimal `ModelProto` with `pieces` and a trainer spec saying `model_type` (1 = unigram,
/// 2 = BPE), plus the normalizer spec llama-style models use (no normalization rule, the
/// dummy prefix `add_dummy_prefix`, whitespace kept).
pub fn write_model(pieces: &[Piece], model_type: u64, add_dummy_prefix: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        let mut body = Vec::new();
        body.push(0x0a);
        put_varint(&mut body, p.piece.len() as u64);
        body.extend_from_slice(p.piece.as_bytes());
        body.push(0x15);
        body.extend_from_slice(&p.score.to_le_bytes());
        if p.kind != NORMAL {
            body.push(0x18);
            put_varint(&mut body, p.kind as u64);
        }
        out.push(0x0a);
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
    }
    // trainer_spec (field 2): model_type (field 3), byte_fallback (field 35).
    let has_bytes = pieces.iter().any(|p| p.kind == BYTE);
    let mut ts = vec![0x18];
    put_varint(&mut ts, model_type);
    if has_bytes {
        put_varint(&mut ts, (35 << 3) as u64);
        ts.push(1);
    }
    out.push(0x12);
    put_varint(&mut out, ts.len() as u64);
    out.extend_from_slice(&ts);
    // normalizer_spec (field 3): name "identity" (1), add_dummy_prefix (3),
    // remove_extra_whitespaces (4) = false.
    let mut ns = vec![0x0a, 8];
    ns.extend_from_slice(b"identity");
    ns.extend_from_slice(&[0x18, u8::from(add_dummy_prefix), 0x20, 0]);
    out.push(0x1a);
    put_varint(&mut out, ns.len() as u64);
    out.extend_from_slice(&ns);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_parse() {
        let pieces = vec![
            Piece {
                piece: "<unk>".into(),
                score: 0.0,
                kind: UNKNOWN,
            },
            Piece {
                piece: "▁the".into(),
                score: -3.5,
                kind: NORMAL,
            },
            Piece {
                piece: "<0x0A>".into(),
                score: 0.0,
                kind: BYTE,
            },
        ];
        let bytes = write_model(&pieces, 2, true);
        assert_eq!(parse_model(&bytes, "m").unwrap(), pieces);
        for cut in 0..bytes.len() {
            let _ = parse_model(&bytes[..cut], "m");
        }
    }
}
