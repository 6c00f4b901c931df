//! Hand-written splitters for the pre-tokenizer patterns that need lookahead, with the exact
//! behaviour of llama.cpp's `unicode_regex_split_custom_{gpt2,llama3,qwen2,qwen35}` (src/unicode.cpp):
//!
//! - GPT-2:   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! - Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! - Qwen2:   as Llama 3 with `\p{N}` (one digit) instead of `\p{N}{1,3}`
//! - Qwen3.5: as Qwen2 with `[\p{L}\p{M}]` for letters and `[^\s\p{L}\p{M}\p{N}]` for the rest

use crate::unicode::Flags;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gpt2,
    Llama3,
    Qwen2,
    Qwen35,
}

/// One code point of the chunk being split.
struct Cp {
    byte: usize,
    c: char,
    f: Flags,
}

struct Chunk {
    cps: Vec<Cp>,
    end_byte: usize,
}

const OUT: char = '\u{10FFFF}'; // stands for "outside the chunk"; never compared as text

impl Chunk {
    fn c(&self, i: usize) -> Option<char> {
        self.cps.get(i).map(|p| p.c)
    }
    /// Flags of position `i`; all false outside the chunk.
    fn f(&self, i: usize) -> Flags {
        self.cps.get(i).map(|p| p.f).unwrap_or_default()
    }
    fn in_range(&self, i: usize) -> bool {
        i < self.cps.len()
    }
    fn byte(&self, i: usize) -> usize {
        self.cps.get(i).map(|p| p.byte).unwrap_or(self.end_byte)
    }
}

/// ASCII lower-casing is enough: only the ASCII letters of the contractions are compared.
fn lower(c: Option<char>) -> char {
    c.map(|c| c.to_ascii_lowercase()).unwrap_or(OUT)
}

/// Split `chunk` (which starts at byte `base` of the whole text) and append the word ranges.
pub fn split(kind: Kind, chunk: &str, base: usize, out: &mut Vec<(usize, usize)>) {
    let ch = Chunk {
        cps: chunk
            .char_indices()
            .map(|(b, c)| Cp {
                byte: base + b,
                c,
                f: Flags::of(c),
            })
            .collect(),
        end_byte: base + chunk.len(),
    };
    let n = ch.cps.len();
    let mut prev_end = 0usize; // code point index
    let mut add = |end: usize, prev_end: &mut usize| -> usize {
        let len = end - *prev_end;
        if len > 0 {
            out.push((ch.byte(*prev_end), ch.byte(end)));
        }
        *prev_end = end;
        len
    };
    let letterish = |f: Flags| -> bool {
        if kind == Kind::Qwen35 {
            f.letter || f.accent_mark
        } else {
            f.letter
        }
    };
    let other = |f: Flags, i: usize| -> bool {
        // [^\s\p{L}\p{N}] (Qwen3.5 also excludes \p{M}); nothing outside the chunk.
        ch.in_range(i) && !(f.whitespace || letterish(f) || f.number)
    };

    let mut pos = 0usize;
    while pos < n {
        let cpt = ch.c(pos);
        let flags = ch.f(pos);

        // contractions
        if cpt == Some('\'') && pos + 1 < n {
            let (c1, c2) = match kind {
                Kind::Gpt2 => (ch.c(pos + 1).unwrap_or(OUT), ch.c(pos + 2).unwrap_or(OUT)),
                _ => (lower(ch.c(pos + 1)), lower(ch.c(pos + 2))),
            };
            if matches!(c1, 's' | 't' | 'm' | 'd') {
                pos += add(pos + 2, &mut prev_end);
                continue;
            }
            if pos + 2 < n && matches!((c1, c2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                pos += add(pos + 3, &mut prev_end);
                continue;
            }
        }

        if kind == Kind::Gpt2 {
            let is_space = cpt == Some(' ');
            let mut f2 = if is_space { ch.f(pos + 1) } else { flags };
            let i2 = if is_space { pos + 1 } else { pos };
            // <space>?\p{L}+
            if f2.letter {
                pos += usize::from(is_space);
                while f2.letter {
                    pos += 1;
                    f2 = ch.f(pos);
                }
                add(pos, &mut prev_end);
                continue;
            }
            // <space>?\p{N}+
            if f2.number {
                pos += usize::from(is_space);
                while f2.number {
                    pos += 1;
                    f2 = ch.f(pos);
                }
                add(pos, &mut prev_end);
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+
            if other(f2, i2) {
                pos += usize::from(is_space);
                while other(ch.f(pos), pos) {
                    pos += 1;
                }
                add(pos, &mut prev_end);
                continue;
            }
        } else {
            // [^\r\n\p{L}\p{N}]?\p{L}+   (Qwen3.5: [\p{L}\p{M}]+)
            if !(cpt == Some('\r') || cpt == Some('\n') || flags.number)
                && (letterish(flags) || letterish(ch.f(pos + 1)))
            {
                pos += 1;
                while letterish(ch.f(pos)) {
                    pos += 1;
                }
                add(pos, &mut prev_end);
                continue;
            }
            // \p{N}{1,3} (Llama 3) or \p{N} (Qwen)
            if flags.number {
                if kind == Kind::Llama3 {
                    let mut ini = pos;
                    while ch.f(pos).number {
                        pos += 1;
                        if pos - ini >= 3 {
                            add(pos, &mut prev_end);
                            ini = pos;
                        }
                    }
                    add(pos, &mut prev_end);
                } else {
                    pos += 1;
                    add(pos, &mut prev_end);
                }
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            let is_space = cpt == Some(' ');
            let i2 = if is_space { pos + 1 } else { pos };
            if other(ch.f(i2), i2) {
                pos += usize::from(is_space);
                while other(ch.f(pos), pos) {
                    pos += 1;
                }
                while matches!(ch.c(pos), Some('\r') | Some('\n')) {
                    pos += 1;
                }
                add(pos, &mut prev_end);
                continue;
            }
        }

        let mut num_ws = 0usize;
        let mut last_end_r_or_n = 0usize;
        while ch.f(pos + num_ws).whitespace {
            if kind != Kind::Gpt2 && matches!(ch.c(pos + num_ws), Some('\r') | Some('\n')) {
                last_end_r_or_n = pos + num_ws + 1;
            }
            num_ws += 1;
        }
        // \s*[\r\n]+
        if last_end_r_or_n > 0 {
            pos = last_end_r_or_n;
            add(pos, &mut prev_end);
            continue;
        }
        // \s+(?!\S)
        if num_ws > 1 && ch.in_range(pos + num_ws) {
            pos += num_ws - 1;
            add(pos, &mut prev_end);
            continue;
        }
        // \s+
        if num_ws > 0 {
            pos += num_ws;
            add(pos, &mut prev_end);
            continue;
        }
        // no match: one code point alone
        pos += 1;
        add(pos, &mut prev_end);
    }
}
