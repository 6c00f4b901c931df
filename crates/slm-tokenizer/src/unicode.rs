//! Code point classes used by the pre-tokenizers (letter, number, accent mark, whitespace) and the
//! GPT-2 byte <-> printable-character map used by byte-level BPE.
//!
//! llama.cpp generates its own tables (`unicode-data.cpp`); we take the categories from the
//! `unicode-general-category` crate, and whitespace from Rust's `char::is_whitespace`, which is the
//! Unicode `White_Space` property: exactly llama.cpp's `unicode_set_whitespace`.

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// The classes the hand-written splitters test. Mirrors llama.cpp's `unicode_cpt_flags`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub letter: bool,
    pub number: bool,
    pub accent_mark: bool,
    pub whitespace: bool,
}

impl Flags {
    /// Classes of one code point.
    pub fn of(c: char) -> Flags {
        if c.is_ascii() {
            return Flags {
                letter: c.is_ascii_alphabetic(),
                number: c.is_ascii_digit(),
                accent_mark: false,
                whitespace: c.is_ascii_whitespace() || c == '\x0b',
            };
        }
        let cat = get_general_category(c);
        Flags {
            letter: matches!(
                cat,
                G::UppercaseLetter
                    | G::LowercaseLetter
                    | G::TitlecaseLetter
                    | G::ModifierLetter
                    | G::OtherLetter
            ),
            number: matches!(cat, G::DecimalNumber | G::LetterNumber | G::OtherNumber),
            accent_mark: matches!(cat, G::NonspacingMark | G::SpacingMark | G::EnclosingMark),
            whitespace: c.is_whitespace(),
        }
    }
}

const fn kept(b: u32) -> bool {
    (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
}

/// GPT-2's byte -> code point table: printable Latin-1 bytes map to themselves, the other 68
/// bytes to U+0100.. in order.
const BYTE_TO_CP: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0u32;
    let mut b = 0u32;
    while b < 256 {
        table[b as usize] = if kept(b) {
            b
        } else {
            n += 1;
            255 + n
        };
        b += 1;
    }
    table
};

/// The inverse of `BYTE_TO_CP`, indexed by code point (all below 0x144); 0xFFFF = none.
const CP_TO_BYTE: [u16; 0x144] = {
    let mut table = [0xFFFFu16; 0x144];
    let mut b = 0usize;
    while b < 256 {
        table[BYTE_TO_CP[b] as usize] = b as u16;
        b += 1;
    }
    table
};

/// The GPT-2 printable character that stands for byte `b`.
pub fn byte_to_char(b: u8) -> char {
    // All table values are below 0x144: valid scalar values.
    char::from_u32(BYTE_TO_CP[b as usize]).unwrap_or('\u{FFFD}')
}

/// The byte a GPT-2 printable character stands for, if it is one.
pub fn char_to_byte(c: char) -> Option<u8> {
    match CP_TO_BYTE.get(c as usize) {
        Some(&v) if v != 0xFFFF => Some(v as u8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_round_trips_and_matches_gpt2() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(0), 'Ā');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        assert_eq!(byte_to_char(b'a'), 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }

    #[test]
    fn flags_match_categories() {
        assert!(Flags::of('é').letter);
        assert!(Flags::of('½').number);
        assert!(Flags::of('\u{0301}').accent_mark);
        assert!(Flags::of('\u{3000}').whitespace);
        assert!(Flags::of('\u{85}').whitespace);
        assert!(!Flags::of('\u{200d}').whitespace);
        assert!(Flags::of('\x0b').whitespace);
    }
}
