//! JSON mode (`response_format: json_object`, Ollama `format: "json"`): a byte-level validator
//! of JSON prefixes, used to mask the candidates so the output is always a prefix of a valid
//! JSON value, and to stop once the value is complete.
//!
//! The validator is a pushdown automaton over bytes (RFC 8259 grammar); strings may hold any
//! UTF-8 bytes (a token may carry part of a character).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Object,
    Array,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Expecting a value (top level, after `:` or `,` in an array, or the first array element).
    Value,
    /// After `[`: a value or `]`.
    ArrayStart,
    /// After `{`: a key string or `}`.
    ObjectStart,
    /// After `,` in an object: a key string.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a complete value inside a container: `,` or the closer.
    AfterValue,
    /// Inside a string (`key` tells whether it is an object key).
    Str {
        key: bool,
    },
    StrEscape {
        key: bool,
    },
    StrHex {
        key: bool,
        left: u8,
    },
    /// Number parts.
    NumMinus,
    NumZero,
    NumInt,
    NumDot,
    NumFrac,
    NumE,
    NumESign,
    NumExp,
    /// Inside `true`/`false`/`null`: the rest still expected.
    Lit {
        rest: &'static [u8],
    },
    /// The top-level value is complete.
    Done,
}

/// Validator state: the open containers and where inside the grammar we are.
#[derive(Clone, Debug)]
pub struct JsonPrefix {
    stack: Vec<Ctx>,
    st: St,
    /// Only an object is accepted at the top level (OpenAI's json_object).
    object_only: bool,
}

const MAX_DEPTH: usize = 64;

impl JsonPrefix {
    pub fn new(object_only: bool) -> JsonPrefix {
        JsonPrefix {
            stack: Vec::new(),
            st: St::Value,
            object_only,
        }
    }

    /// Whether a complete value has been read.
    pub fn is_complete(&self) -> bool {
        self.st == St::Done
            || (self.stack.is_empty()
                && matches!(self.st, St::NumZero | St::NumInt | St::NumFrac | St::NumExp))
    }

    fn value_done(&mut self) {
        self.st = if self.stack.is_empty() {
            St::Done
        } else {
            St::AfterValue
        };
    }

    fn start_value(&mut self, b: u8) -> bool {
        let top = self.stack.is_empty();
        if top && self.object_only && b != b'{' && !b.is_ascii_whitespace() {
            return false;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => true,
            b'{' | b'[' => {
                if self.stack.len() >= MAX_DEPTH {
                    return false;
                }
                if b == b'{' {
                    self.stack.push(Ctx::Object);
                    self.st = St::ObjectStart;
                } else {
                    self.stack.push(Ctx::Array);
                    self.st = St::ArrayStart;
                }
                true
            }
            b'"' => {
                self.st = St::Str { key: false };
                true
            }
            b'-' => {
                self.st = St::NumMinus;
                true
            }
            b'0' => {
                self.st = St::NumZero;
                true
            }
            b'1'..=b'9' => {
                self.st = St::NumInt;
                true
            }
            b't' => {
                self.st = St::Lit { rest: b"rue" };
                true
            }
            b'f' => {
                self.st = St::Lit { rest: b"alse" };
                true
            }
            b'n' => {
                self.st = St::Lit { rest: b"ull" };
                true
            }
            _ => false,
        }
    }

    fn close(&mut self, b: u8) -> bool {
        let want = match self.stack.last() {
            Some(Ctx::Object) => b'}',
            Some(Ctx::Array) => b']',
            None => return false,
        };
        if b != want {
            return false;
        }
        self.stack.pop();
        self.value_done();
        true
    }

    /// After a number ends on a non-number byte, that byte continues as after a value.
    fn end_number(&mut self, b: u8) -> bool {
        self.value_done();
        self.feed_byte(b)
    }

    /// Feed one byte; false if the prefix is no longer valid (the state is then unspecified).
    pub fn feed_byte(&mut self, b: u8) -> bool {
        use St::*;
        match self.st {
            Value => self.start_value(b),
            ArrayStart => {
                if b == b']' {
                    self.close(b)
                } else {
                    self.start_value(b)
                }
            }
            ObjectStart | Key => match b {
                b' ' | b'\t' | b'\n' | b'\r' => true,
                b'"' => {
                    self.st = Str { key: true };
                    true
                }
                b'}' if self.st == ObjectStart => self.close(b),
                _ => false,
            },
            Colon => match b {
                b' ' | b'\t' | b'\n' | b'\r' => true,
                b':' => {
                    self.st = Value;
                    true
                }
                _ => false,
            },
            AfterValue => match b {
                b' ' | b'\t' | b'\n' | b'\r' => true,
                b',' => {
                    self.st = match self.stack.last() {
                        Some(Ctx::Object) => Key,
                        _ => Value,
                    };
                    true
                }
                b'}' | b']' => self.close(b),
                _ => false,
            },
            Str { key } => match b {
                b'"' => {
                    if key {
                        self.st = Colon;
                    } else {
                        self.value_done();
                    }
                    true
                }
                b'\\' => {
                    self.st = StrEscape { key };
                    true
                }
                0x00..=0x1f => false,
                _ => true,
            },
            StrEscape { key } => match b {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                    self.st = Str { key };
                    true
                }
                b'u' => {
                    self.st = StrHex { key, left: 4 };
                    true
                }
                _ => false,
            },
            StrHex { key, left } => {
                if !b.is_ascii_hexdigit() {
                    return false;
                }
                self.st = if left == 1 {
                    Str { key }
                } else {
                    StrHex {
                        key,
                        left: left - 1,
                    }
                };
                true
            }
            NumMinus => match b {
                b'0' => {
                    self.st = NumZero;
                    true
                }
                b'1'..=b'9' => {
                    self.st = NumInt;
                    true
                }
                _ => false,
            },
            NumZero => match b {
                b'.' => {
                    self.st = NumDot;
                    true
                }
                b'e' | b'E' => {
                    self.st = NumE;
                    true
                }
                _ => self.end_number(b),
            },
            NumInt => match b {
                b'0'..=b'9' => true,
                b'.' => {
                    self.st = NumDot;
                    true
                }
                b'e' | b'E' => {
                    self.st = NumE;
                    true
                }
                _ => self.end_number(b),
            },
            NumDot => {
                if b.is_ascii_digit() {
                    self.st = NumFrac;
                    true
                } else {
                    false
                }
            }
            NumFrac => match b {
                b'0'..=b'9' => true,
                b'e' | b'E' => {
                    self.st = NumE;
                    true
                }
                _ => self.end_number(b),
            },
            NumE => match b {
                b'+' | b'-' => {
                    self.st = NumESign;
                    true
                }
                b'0'..=b'9' => {
                    self.st = NumExp;
                    true
                }
                _ => false,
            },
            NumESign => {
                if b.is_ascii_digit() {
                    self.st = NumExp;
                    true
                } else {
                    false
                }
            }
            NumExp => {
                if b.is_ascii_digit() {
                    true
                } else {
                    self.end_number(b)
                }
            }
            Lit { rest } => match rest.split_first() {
                Some((&c, tail)) if c == b => {
                    if tail.is_empty() {
                        self.value_done();
                    } else {
                        self.st = Lit { rest: tail };
                    }
                    true
                }
                _ => false,
            },
            Done => false,
        }
    }

    /// Feed a token's bytes; false if they break the prefix (self is then unchanged).
    pub fn accepts(&self, bytes: &[u8]) -> Option<JsonPrefix> {
        let mut next = self.clone();
        for &b in bytes {
            if !next.feed_byte(b) {
                return None;
            }
        }
        Some(next)
    }
}

/// Mask `logits` so only tokens that keep the output a valid JSON prefix remain. Candidates are
/// tried in descending logit order until `keep` valid ones are found; the rest become -inf.
/// End-of-generation tokens stay only once the value is complete. Returns false if no token fits.
pub fn mask_logits(
    state: &JsonPrefix,
    logits: &mut [f32],
    piece: &dyn Fn(u32) -> Vec<u8>,
    is_eog: &dyn Fn(u32) -> bool,
    keep: usize,
) -> bool {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        logits[b as usize]
            .partial_cmp(&logits[a as usize])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let complete = state.is_complete();
    let mut allowed = Vec::with_capacity(keep);
    for &t in &order {
        if allowed.len() >= keep {
            break;
        }
        let ok = if is_eog(t) {
            complete
        } else {
            let p = piece(t);
            !p.is_empty() && state.accepts(&p).is_some()
        };
        if ok {
            allowed.push(t);
        }
    }
    if allowed.is_empty() {
        return false;
    }
    let mut masked = vec![f32::NEG_INFINITY; logits.len()];
    for &t in &allowed {
        masked[t as usize] = logits[t as usize];
    }
    logits.copy_from_slice(&masked);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_prefix(s: &str, object_only: bool) -> bool {
        JsonPrefix::new(object_only).accepts(s.as_bytes()).is_some()
    }

    fn complete(s: &str) -> bool {
        JsonPrefix::new(false)
            .accepts(s.as_bytes())
            .is_some_and(|j| j.is_complete())
    }

    #[test]
    fn accepts_json_and_its_prefixes() {
        let docs = [
            r#"{"a": [1, -2.5e+3, true, false, null, "x\"\u00e9"], "b": {}}"#,
            r#"[]"#,
            r#"  {"k":0}"#,
            r#""héllo""#,
            "12",
        ];
        for d in docs {
            for i in 0..=d.len() {
                if d.is_char_boundary(i) {
                    assert!(valid_prefix(&d[..i], false), "{:?}", &d[..i]);
                }
            }
            assert!(complete(d), "{d}");
            // Cross-checked with serde_json.
            assert!(serde_json::from_str::<serde_json::Value>(d).is_ok());
        }
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "{a",
            "[1,]",
            "{\"a\" 1}",
            "tru e",
            "01",
            "1.",
            "-",
            "{\"a\":1}}",
            "\"\x01\"",
            "[1 2]",
            "{\"a\":1,}",
            "nul1",
        ] {
            let whole = JsonPrefix::new(false).accepts(bad.as_bytes());
            assert!(whole.is_none_or(|j| !j.is_complete()), "{bad:?}");
        }
        for bad in [
            "{a",
            "[1,]",
            "{\"a\" 1}",
            "tru e",
            "01",
            "{\"a\":1}}",
            "[1 2]",
            "{\"a\":1,}",
        ] {
            assert!(!valid_prefix(bad, false), "{bad:?}");
        }
        assert!(!valid_prefix("[1]", true), "object only");
        assert!(valid_prefix(" {", true));
    }

    #[test]
    fn masking_keeps_only_valid_tokens() {
        let vocab = ["{", "}", "\"a\"", ":", "1", "x", "<eos>"];
        let piece = |t: u32| {
            if t == 6 {
                Vec::new()
            } else {
                vocab[t as usize].as_bytes().to_vec()
            }
        };
        let eog = |t: u32| t == 6;
        let mut logits = vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert!(mask_logits(
            &JsonPrefix::new(true),
            &mut logits,
            &piece,
            &eog,
            8
        ));
        let allowed: Vec<usize> = (0..7).filter(|&i| logits[i].is_finite()).collect();
        assert_eq!(allowed, vec![0]);
        let done = JsonPrefix::new(true).accepts(b"{\"a\":1}").unwrap();
        let mut logits = vec![0.0; 7];
        assert!(mask_logits(&done, &mut logits, &piece, &eog, 8));
        let allowed: Vec<usize> = (0..7).filter(|&i| logits[i].is_finite()).collect();
        assert_eq!(allowed, vec![6]);
    }
}
