//! The ordered metadata list a conversion writes (gguf-py semantics: setting a key again
//! replaces its value in place), and the `general.*` keys llama.cpp derives from the folder
//! name and parameter count (`Metadata.id_to_title`, `size_label`).

use slm_gguf::{Array, Value};

/// Metadata in write order.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub kv: Vec<(String, Value)>,
}

impl Meta {
    /// Set `key`: a new key is appended, an existing one keeps its place.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.kv.push((key.to_string(), value)),
        }
    }

    pub fn u32(&mut self, key: &str, v: u32) {
        self.set(key, Value::U32(v));
    }

    pub fn f32(&mut self, key: &str, v: f64) {
        self.set(key, Value::F32(v as f32));
    }

    pub fn str(&mut self, key: &str, v: &str) {
        self.set(key, Value::String(v.to_string()));
    }

    pub fn bool(&mut self, key: &str, v: bool) {
        self.set(key, Value::Bool(v));
    }

    pub fn strings(&mut self, key: &str, v: Vec<String>) {
        self.set(key, Value::Array(Array::String(v)));
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// llama.cpp's `Metadata.id_to_title`: words split on '-' and spaces, lower-case words
/// title-cased unless they look like a version or number.
pub fn id_to_title(s: &str) -> String {
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            let is_lower = w.chars().any(char::is_alphabetic)
                && !w.chars().any(|c| c.is_alphabetic() && !c.is_lowercase());
            let versionish = w.starts_with(|c: char| c.is_ascii_digit())
                || (w.starts_with('v')
                    && w.len() > 1
                    && w[1..].chars().all(|c| c.is_ascii_digit() || c == '.'));
            if is_lower && !versionish {
                title(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `str.title()`: upper-case the first letter of each run of letters.
fn title(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut prev_alpha = false;
    for c in w.chars() {
        if c.is_alphabetic() {
            if prev_alpha {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_alpha = true;
        } else {
            out.push(c);
            prev_alpha = false;
        }
    }
    out
}

/// gguf-py's `model_weight_count_rounded_notation(n, min_digits=2)`.
pub fn size_label(n: u64) -> String {
    let x = n as f64;
    let (scaled, suffix) = if x > 1e12 {
        (x * 1e-12, "T")
    } else if x > 1e9 {
        (x * 1e-9, "B")
    } else if x > 1e6 {
        (x * 1e-6, "M")
    } else {
        (x * 1e-3, "K")
    };
    let int_digits = format!("{}", scaled.round() as u64)
        .trim_start_matches('0')
        .len();
    let fix = 2usize.saturating_sub(int_digits);
    format!("{scaled:.fix$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_sizes_as_gguf_py() {
        assert_eq!(id_to_title("hf-llama"), "Hf Llama");
        assert_eq!(id_to_title("gemma-3-270m"), "Gemma 3 270m");
        assert_eq!(id_to_title("SmolLM2-135M"), "SmolLM2 135M");
        assert_eq!(size_label(82_240), "82K");
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(3_500), "3.5K");
        assert_eq!(size_label(268_098_176), "268M");
    }
}
