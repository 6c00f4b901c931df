//! The `Tokenizer`: text <-> token ids for a GGUF vocabulary. Splits out special tokens first
//! (llama.cpp's `tokenizer_st_partition`), encodes the text between them with SPM or BPE, adds
//! BOS/EOS per metadata, and renders ids back to bytes (llama.cpp's `token_to_piece`).

use aho_corasick::AhoCorasick;
use slm_gguf::Gguf;

use crate::bpe::{self, Merges};
use crate::error::TokenizerError;
use crate::pretok::PreTokenizer;
use crate::spm;
use crate::unicode::char_to_byte;
use crate::vocab::{attr, Vocab, VocabKind};

/// Longest text one `encode` call accepts (512 MiB): symbol positions are 32-bit, and SPM's
/// space escaping can triple the length.
pub const MAX_TEXT_BYTES: usize = (i32::MAX as usize) / 4;

/// The family-specific part.
#[derive(Clone, Debug)]
enum Model {
    Spm {
        bytes: spm::ByteTokens,
        pairs: rustc_hash::FxHashSet<(char, char)>,
    },
    Bpe {
        merges: Merges,
        pre: PreTokenizer,
    },
}

/// A tokenizer built from GGUF metadata. Immutable after loading; share it with `Arc`.
#[derive(Clone)]
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    /// Control, user-defined and unknown tokens, longest text first (then lowest id): the order in
    /// which they are split out of the text.
    special_tokens: Vec<u32>,
    /// Finds which of `special_tokens` occur in a text at all (index into `special_tokens`).
    special_finder: Option<AhoCorasick>,
    /// Rendered bytes of every token (control and unknown tokens as their text), back to back;
    /// token `i` is `pieces[piece_ends[i - 1]..piece_ends[i]]`.
    pieces: Vec<u8>,
    piece_ends: Vec<usize>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("pre", &self.vocab.pre)
            .field("n_vocab", &self.vocab.n_tokens())
            .field("special", &self.vocab.special)
            .field("add_bos", &self.vocab.add_bos)
            .field("add_eos", &self.vocab.add_eos)
            .field("eog", &self.vocab.eog)
            .finish_non_exhaustive()
    }
}

/// A stretch of the input: raw text (byte range) or an already chosen token.
#[derive(Clone, Copy, Debug)]
enum Fragment {
    Text(usize, usize),
    Token(u32),
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl Tokenizer {
    /// Build the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(g: &Gguf) -> Result<Tokenizer, TokenizerError> {
        let vocab = Vocab::from_gguf(g)?;
        let model = match vocab.kind {
            VocabKind::Spm => Model::Spm {
                bytes: spm::byte_tokens(&vocab),
                pairs: spm::adjacent_pairs(&vocab),
            },
            VocabKind::Bpe => Model::Bpe {
                merges: Merges::from_gguf(g, &vocab)?,
                pre: PreTokenizer::for_pre(&vocab.pre)?,
            },
        };
        let mut special_tokens: Vec<u32> = (0..vocab.n_tokens() as u32)
            .filter(|&id| {
                vocab.attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        special_tokens.sort_by(|&a, &b| {
            let (ta, tb) = (&vocab.texts[a as usize], &vocab.texts[b as usize]);
            tb.len().cmp(&ta.len()).then(a.cmp(&b))
        });
        let special_finder = if special_tokens.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .build(
                    special_tokens
                        .iter()
                        .map(|&id| vocab.texts[id as usize].as_bytes()),
                )
                .ok()
        };
        let mut t = Tokenizer {
            vocab,
            model,
            special_tokens,
            special_finder,
            pieces: Vec::new(),
            piece_ends: Vec::new(),
        };
        let mut pieces = Vec::new();
        let mut ends = Vec::with_capacity(t.vocab.n_tokens());
        for id in 0..t.vocab.n_tokens() as u32 {
            t.render(id, &mut pieces);
            ends.push(pieces.len());
        }
        t.pieces = pieces;
        t.piece_ends = ends;
        Ok(t)
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.n_tokens()
    }

    pub fn bos(&self) -> Option<u32> {
        self.vocab.special.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.vocab.special.eos
    }

    /// End-of-turn token (`<end_of_turn>`, `<|im_end|>`, `<|eot_id|>` ...), if any.
    pub fn eot(&self) -> Option<u32> {
        self.vocab.special.eot
    }

    /// All special ids read or detected from the metadata.
    pub fn special_ids(&self) -> &crate::vocab::SpecialIds {
        &self.vocab.special
    }

    /// Whether `encode(.., add_special = true, ..)` puts BOS first / EOS last.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// Whether generation stops at `id` (llama.cpp's `llama_vocab_is_eog`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.binary_search(&id).is_ok()
    }

    /// The end-of-generation ids, sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.vocab.eog
    }

    /// The token's text as stored in the vocabulary (`▁` / GPT-2 characters not undone).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.texts.get(id as usize).map(String::as_str)
    }

    /// The token's llama.cpp attribute bits (see [`crate::attr`]); 0 for ids outside the vocabulary.
    pub fn token_attr(&self, id: u32) -> u32 {
        self.vocab.attrs.get(id as usize).copied().unwrap_or(0)
    }

    /// Whether the token is a control token (BOS, EOS, `<start_of_turn>` ...).
    pub fn is_control(&self, id: u32) -> bool {
        self.token_attr(id) & attr::CONTROL != 0
    }

    /// The token's id by its exact vocabulary text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// `tokenizer.ggml.model` family and `tokenizer.ggml.pre`.
    pub fn kind(&self) -> VocabKind {
        self.vocab.kind
    }

    pub fn pre(&self) -> &str {
        &self.vocab.pre
    }

    /// Encode `text`. `add_special`: BOS/EOS as the metadata asks. `parse_special`: control tokens
    /// written in the text (`<start_of_turn>`) become their ids; user-defined tokens always do.
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(TokenizerError::TextTooLong {
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let frags = self.partition(text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.vocab.add_bos {
            out.push(
                self.vocab
                    .special
                    .bos
                    .ok_or(TokenizerError::MissingSpecialToken("BOS"))?,
            );
        }
        match &self.model {
            Model::Spm { bytes, pairs } => {
                let mut session = spm::Session::default();
                let mut prev_special = true;
                let mut buf = String::new();
                for f in frags {
                    match f {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(s, e) => {
                            buf.clear();
                            if self.vocab.add_space_prefix && prev_special {
                                buf.push('▁');
                            }
                            for c in text[s..e].chars() {
                                buf.push(if c == ' ' { '▁' } else { c });
                            }
                            session.encode(&buf, &self.vocab, bytes, pairs, &mut out)?;
                            prev_special = false;
                        }
                    }
                }
            }
            Model::Bpe { merges, pre } => {
                let mut session = bpe::Session::default();
                let mut cache: rustc_hash::FxHashMap<String, (usize, usize)> = Default::default();
                let mut cached_ids: Vec<u32> = Vec::new();
                for f in frags {
                    match f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(s, e) => {
                            let escaped;
                            let frag = if self.vocab.byte_level {
                                &text[s..e]
                            } else {
                                escaped = text[s..e].replace(' ', "▁");
                                escaped.as_str()
                            };
                            for (ws, we) in pre.split(frag) {
                                let word = &frag[ws..we];
                                if let Some(&(a, b)) = cache.get(word) {
                                    out.extend_from_slice(&cached_ids[a..b]);
                                    continue;
                                }
                                let start = out.len();
                                session.encode_word(word.as_bytes(), &self.vocab, merges, &mut out);
                                if word.len() <= 64 {
                                    let a = cached_ids.len();
                                    cached_ids.extend_from_slice(&out[start..]);
                                    cache.insert(word.to_string(), (a, cached_ids.len()));
                                }
                            }
                        }
                    }
                }
            }
        }
        if add_special && self.vocab.add_eos {
            out.push(
                self.vocab
                    .special
                    .eos
                    .ok_or(TokenizerError::MissingSpecialToken("EOS"))?,
            );
        }
        Ok(out)
    }

    /// Split the special tokens out of `text`, longest token first, each claiming its leftmost
    /// non-overlapping occurrences in what is still raw text (llama.cpp's `tokenizer_st_partition`).
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(0, text.len()));
        let Some(finder) = &self.special_finder else {
            return frags;
        };
        // Which special tokens occur at all (overlapping search), so that only those are scanned.
        let mut present: Vec<usize> = finder
            .find_overlapping_iter(text)
            .map(|m| m.pattern().as_usize())
            .collect();
        present.sort_unstable();
        present.dedup();
        let bytes = text.as_bytes();
        for idx in present {
            let id = self.special_tokens[idx];
            let a = self.vocab.attrs[id as usize];
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let tok = self.vocab.texts[id as usize].as_str();
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Fragment::Text(mut s, e) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(p) = text[s..e].find(tok) {
                    let m = s + p;
                    let mut left_end = m;
                    if a & attr::LSTRIP != 0 {
                        while left_end > s && is_c_space(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > s {
                        next.push(Fragment::Text(s, left_end));
                    }
                    next.push(Fragment::Token(id));
                    s = m + tok.len();
                    if a & attr::RSTRIP != 0 {
                        while s < e && is_c_space(bytes[s]) {
                            s += 1;
                        }
                    }
                }
                if s < e {
                    next.push(Fragment::Text(s, e));
                }
            }
            frags = next;
        }
        frags
    }

    /// Render one token the way llama.cpp's `token_to_piece(.., special = true)` does, appending
    /// to `out`.
    fn render(&self, id: u32, out: &mut Vec<u8>) {
        let text = &self.vocab.texts[id as usize];
        let a = self.vocab.attrs[id as usize];
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            let gpt2_bytes = self.vocab.kind == VocabKind::Bpe && self.vocab.byte_level;
            match gpt2_bytes {
                false => {
                    let mut buf = [0u8; 4];
                    for c in text.chars() {
                        let c = if c == '▁' { ' ' } else { c };
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
                true => {
                    for c in text.chars() {
                        match char_to_byte(c) {
                            Some(b) => out.push(b),
                            None => {
                                out.extend_from_slice(b"[UNK_BYTE_0x");
                                let mut buf = [0u8; 4];
                                for b in c.encode_utf8(&mut buf).bytes() {
                                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                                }
                                out.extend_from_slice(text.as_bytes());
                                out.push(b']');
                            }
                        }
                    }
                }
            }
        } else if a & attr::BYTE != 0 {
            match crate::vocab::parse_byte_token(text) {
                Some(b) => out.push(b),
                // Byte tokens of a BPE vocabulary are not checked at load; render their text.
                None => out.extend_from_slice(text.as_bytes()),
            }
        }
    }

    /// Bytes of one token as shown to a user: control and unknown tokens render as nothing
    /// (llama.cpp's `token_to_piece(.., special = false)`); ids outside the vocabulary as nothing.
    pub fn token_to_piece(&self, id: u32) -> Vec<u8> {
        self.piece(id, false).to_vec()
    }

    /// As [`Tokenizer::token_to_piece`]; with `special`, control tokens render as their text.
    pub fn piece(&self, id: u32, special: bool) -> &[u8] {
        let i = id as usize;
        let Some(&end) = self.piece_ends.get(i) else {
            return &[];
        };
        if !special && self.vocab.attrs[i] & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return &[];
        }
        let start = if i == 0 { 0 } else { self.piece_ends[i - 1] };
        &self.pieces[start..end]
    }

    /// Text of a token sequence; invalid UTF-8 (a split multi-byte character) becomes U+FFFD.
    /// Control tokens render as nothing. When the vocabulary adds a space prefix (SPM
    /// `add_space_prefix`), the leading space of the first piece that renders anything is removed,
    /// so that `decode(encode(text, true, false)) == text`. llama.cpp's `llama_detokenize` removes it
    /// only from the very first token (so not after a BOS), and its optional
    /// `clean_up_tokenization_spaces` pass is not applied. For streaming, use [`crate::StreamDecoder`],
    /// which removes nothing.
    pub fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, false)).into_owned()
    }

    /// Raw bytes of a token sequence; with `special`, control tokens render as their text.
    pub fn decode_bytes(&self, ids: &[u32], special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut strip = self.vocab.add_space_prefix;
        for &id in ids {
            let p = self.piece(id, special);
            if p.is_empty() {
                continue;
            }
            if strip && p[0] == b' ' {
                out.extend_from_slice(&p[1..]);
            } else {
                out.extend_from_slice(p);
            }
            strip = false;
        }
        out
    }
}
