//! BPE pre-tokenizers: split text into words before merging, chosen by `tokenizer.ggml.pre`.
//!
//! Mirrors llama.cpp's `llm_tokenizer_bpe` regex lists and `unicode_regex_split`: each vocabulary
//! type has a list of patterns applied in turn, every pattern splitting each piece left by the one
//! before into its matches and the text between them. The GPT-2, Llama 3, Qwen2 and Qwen3.5 patterns
//! use lookahead (`\s+(?!\S)`), so, like llama.cpp, we run hand-written splitters for them
//! (`custom.rs`); the other patterns have no lookahead and run on the `regex` crate.

mod custom;

use regex::Regex;

use crate::error::TokenizerError;

/// One pattern of a pre-tokenizer.
#[derive(Clone, Debug)]
enum Step {
    Custom(custom::Kind),
    /// `[^\n]+|[\n]+`: runs of newlines and runs of anything else.
    Newlines,
    Regex(Regex),
}

/// A pre-tokenizer: the ordered pattern list of one `tokenizer.ggml.pre` type.
#[derive(Clone, Debug)]
pub struct PreTokenizer {
    steps: Vec<Step>,
}

fn rx(p: &str) -> Result<Step, TokenizerError> {
    // The patterns are constants of this file; a failure here is a bug, reported as unsupported.
    Regex::new(p)
        .map(Step::Regex)
        .map_err(|_| TokenizerError::UnsupportedPreTokenizer(p.to_string()))
}

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value ("" = llama.cpp's default).
    pub fn for_pre(pre: &str) -> Result<PreTokenizer, TokenizerError> {
        use custom::Kind::*;
        let steps = match pre {
            "" | "default" => vec![
                rx(r"[\p{P}\$\+<=>\^~\|]+")?,
                Step::Custom(Gpt2),
                rx(r"\p{N}+")?,
                rx(r"[0-9][0-9][0-9]")?,
            ],
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
            | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => vec![Step::Custom(Llama3)],
            "deepseek-llm" => vec![
                rx("[\r\n]")?,
                rx("\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+")?,
                rx("\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+")?,
                rx("\\s+$")?,
                rx("[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+")?,
                rx("\\p{N}+")?,
            ],
            "deepseek-coder" => vec![
                rx("[\r\n]")?,
                rx(r"\s?\p{L}+")?,
                rx(r"\s?\p{P}+")?,
                rx("[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+")?,
                rx(r"\p{N}")?,
            ],
            "falcon" => vec![
                rx(r"[\p{P}\$\+<=>\^~\|`]+")?,
                Step::Custom(Gpt2),
                rx(r"[0-9][0-9][0-9]")?,
            ],
            "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
            | "mellum2" => vec![rx(r"\p{N}")?, Step::Custom(Gpt2)],
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
            | "a.x-4.0" | "mellum" | "modern-bert" | "exaone4" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" => vec![Step::Custom(Gpt2)],
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" | "hunyuan"
            | "solar-open" | "grok-2" => vec![Step::Custom(Qwen2)],
            "qwen35" => vec![Step::Custom(Qwen35)],
            "gemma4" => vec![Step::Newlines],
            other => return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string())),
        };
        Ok(PreTokenizer { steps })
    }

    /// Split `text` into words, returned as byte ranges in order, covering the whole text.
    pub fn split(&self, text: &str) -> Vec<(usize, usize)> {
        let mut pieces = vec![(0, text.len())];
        if text.is_empty() {
            return Vec::new();
        }
        for step in &self.steps {
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for &(s, e) in &pieces {
                let chunk = &text[s..e];
                match step {
                    Step::Custom(kind) => custom::split(*kind, chunk, s, &mut next),
                    Step::Newlines => {
                        let b = chunk.as_bytes();
                        let mut i = 0;
                        while i < b.len() {
                            let nl = b[i] == b'\n';
                            let run = b[i..].iter().take_while(|&&x| (x == b'\n') == nl).count();
                            next.push((s + i, s + i + run));
                            i += run;
                        }
                    }
                    Step::Regex(re) => {
                        let mut last = 0;
                        for m in re.find_iter(chunk) {
                            if m.start() > last {
                                next.push((s + last, s + m.start()));
                            }
                            if m.end() > m.start() {
                                next.push((s + m.start(), s + m.end()));
                            }
                            last = m.end();
                        }
                        if last < chunk.len() {
                            next.push((s + last, e));
                        }
                    }
                }
            }
            pieces = next;
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::for_pre(pre).unwrap();
        p.split(text)
            .iter()
            .map(|&(s, e)| text[s..e].to_string())
            .collect()
    }

    #[test]
    fn gpt2_splits_like_the_regex() {
        assert_eq!(words("gpt-2", "Hello world"), ["Hello", " world"]);
        assert_eq!(
            words("gpt-2", "I've  got 123"),
            ["I", "'ve", " ", " got", " 123"]
        );
        assert_eq!(words("gpt-2", "a   "), ["a", "   "]);
        assert_eq!(words("gpt-2", "a   b"), ["a", "  ", " b"]);
    }

    #[test]
    fn llama3_groups_digits_and_newlines() {
        assert_eq!(
            words("llama-bpe", "12345 x\n\n y"),
            ["123", "45", " x", "\n\n", " y"]
        );
        assert_eq!(words("llama-bpe", "HE'S"), ["HE", "'S"]);
        assert_eq!(words("qwen2", "123"), ["1", "2", "3"]);
    }

    #[test]
    fn starcoder_splits_every_digit_first() {
        assert_eq!(words("starcoder", "a 123"), ["a", " ", "1", "2", "3"]);
    }

    #[test]
    fn unknown_pre_is_an_error() {
        assert!(matches!(
            PreTokenizer::for_pre("no-such-pre"),
            Err(TokenizerError::UnsupportedPreTokenizer(_))
        ));
    }
}
