//! Chat templates: renders a model's `tokenizer.chat_template` (GGUF metadata) the way Hugging
//! Face `transformers` does (jinja2, `trim_blocks`, `lstrip_blocks`, `raise_exception`,
//! `strftime_now`, Python's `json.dumps` as `tojson`, Python string/dict methods), inside a
//! sandbox: fuel, recursion limit, no loader, a 1 MiB output cap (reliability guide 1.4, 2.5).
//!
//! ```
//! use slm_tokenizer::template::{ChatMessage, ChatTemplate};
//! let t = ChatTemplate::new(
//!     "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}",
//!     "<s>",
//!     "</s>",
//! )
//! .unwrap();
//! let out = t.render(&[ChatMessage::new("user", "hi")], false).unwrap();
//! assert_eq!(out, "<user>hi\n");
//! ```

#![forbid(unsafe_code)]

mod pyjson;
mod sandbox;
mod strftime;

use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

pub use sandbox::{FUEL, MAX_OUTPUT, MAX_SOURCE, RECURSION_LIMIT};

/// Extra template variables a request may set (`chat_template_kwargs`); anything else is
/// refused with [`TemplateError::KwargNotAllowed`].
pub const ALLOWED_KWARGS: &[&str] = &[
    "enable_thinking",
    "reasoning_effort",
    "thinking",
    "date_string",
    "tools_in_user_message",
    "builtin_tools",
    "documents",
    "add_vision_id",
];

/// Most characters of a `raise_exception` message passed on to the client.
const MAX_RAISED_CHARS: usize = 256;

/// Why a template could not be compiled or rendered. Messages never contain host paths or the
/// template source.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    #[error("chat template is {len} bytes, more than the {max} allowed")]
    SourceTooLarge { len: usize, max: usize },
    #[error("chat template syntax error: {0}")]
    Syntax(String),
    /// The template called `raise_exception(msg)`: the request is invalid for this model (a
    /// client error, HTTP 400). The message is sanitized and shortened.
    #[error("chat template rejected the conversation: {0}")]
    Raised(String),
    #[error("chat template used up its fuel ({0})")]
    OutOfFuel(u64),
    #[error("chat template output is larger than {0} bytes")]
    OutputTooLarge(usize),
    #[error("chat template tried to load another template (include/import/extends are disabled)")]
    LoadForbidden,
    #[error("chat template argument {0:?} is not allowed")]
    KwargNotAllowed(String),
    #[error("chat template input is invalid: {0}")]
    BadInput(String),
    #[error("chat template failed: {0}")]
    Render(String),
}

/// One chat message with plain text content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// What one render used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderStats {
    /// Fuel consumed, out of [`FUEL`].
    pub fuel_used: u64,
}

/// A compiled, sandboxed chat template. `Send + Sync`: one per model, shared by requests.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (a jinja2 chat template) in the sandbox.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, TemplateError> {
        if source.len() > MAX_SOURCE {
            return Err(TemplateError::SourceTooLarge {
                len: source.len(),
                max: MAX_SOURCE,
            });
        }
        let env = sandbox::environment(rewrite_generation_tags(source))
            .map_err(|e| map_error(&e, None))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// Renders plain-text `messages`; `add_generation_prompt` opens the assistant's turn.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let messages = Value::from(Serde(messages));
        self.render_value(messages, add_generation_prompt, Value::from(()), &[])
            .map(|(s, _)| s)
    }

    /// Renders OpenAI-style JSON messages (content may be a list of parts, `tool_calls`, ...),
    /// optional `tools` (a JSON array, passed as is) and allowlisted extra variables
    /// ([`ALLOWED_KWARGS`]). Returns the prompt and what the render used.
    pub fn render_json(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        tools: Option<&serde_json::Value>,
        kwargs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(String, RenderStats), TemplateError> {
        if !messages.is_array() {
            return Err(TemplateError::BadInput("messages must be an array".into()));
        }
        let mut extra = Vec::with_capacity(kwargs.len());
        for (k, v) in kwargs {
            if !ALLOWED_KWARGS.contains(&k.as_str()) {
                return Err(TemplateError::KwargNotAllowed(k.clone()));
            }
            extra.push((k.clone(), Value::from(Serde(v))));
        }
        let tools = tools.map_or(Value::from(()), |t| Value::from(Serde(t)));
        self.render_value(
            Value::from(Serde(messages)),
            add_generation_prompt,
            tools,
            &extra,
        )
    }

    fn render_value(
        &self,
        messages: Value,
        add_generation_prompt: bool,
        tools: Value,
        extra: &[(String, Value)],
    ) -> Result<(String, RenderStats), TemplateError> {
        let mut ctx: Vec<(String, Value)> = vec![
            ("messages".into(), messages),
            (
                "add_generation_prompt".into(),
                Value::from(add_generation_prompt),
            ),
            ("bos_token".into(), Value::from(self.bos_token.as_str())),
            ("eos_token".into(), Value::from(self.eos_token.as_str())),
            ("tools".into(), tools),
            ("documents".into(), Value::from(())),
        ];
        for (k, v) in extra {
            match ctx.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.clone(),
                None => ctx.push((k.clone(), v.clone())),
            }
        }
        let ctx = Value::from_pairs(ctx);
        let tmpl = self
            .env
            .get_template(sandbox::NAME)
            .map_err(|e| map_error(&e, None))?;
        let mut w = sandbox::CappedWriter::new(MAX_OUTPUT);
        let result = tmpl.render_captured_to(ctx, &mut w);
        match result {
            Ok(captured) => {
                let fuel_used = captured.state().fuel_levels().map_or(0, |(used, _)| used);
                let out = String::from_utf8(w.buf)
                    .map_err(|_| TemplateError::Render("output is not UTF-8".into()))?;
                Ok((out, RenderStats { fuel_used }))
            }
            Err(e) => Err(map_error(&e, Some(w.overflowed))),
        }
    }
}

/// `transformers` templates may mark assistant text with `{% generation %}` ...
/// `{% endgeneration %}` (its `AssistantTracker` extension), which renders the body unchanged.
/// minijinja has no such tag, so each becomes `{% if true %}` / `{% endif %}`, keeping the
/// whitespace-control markers (`-`, `+`) as written.
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        let (before, tag) = rest.split_at(at);
        out.push_str(before);
        let inner = &tag[2..];
        let marker_len = usize::from(inner.starts_with('-') || inner.starts_with('+'));
        let after_marker = &inner[marker_len..];
        let body = after_marker.trim_start();
        let word_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let word = &body[..word_len];
        let tail = body[word_len..].trim_start();
        let closes = ["%}", "-%}", "+%}"].iter().find(|c| tail.starts_with(**c));
        match (word, closes) {
            ("generation" | "endgeneration", Some(close)) => {
                out.push_str("{%");
                out.push_str(&inner[..marker_len]);
                out.push_str(if word == "generation" {
                    " if true "
                } else {
                    " endif "
                });
                out.push_str(close);
                let consumed = tag.len() - tail.len() + close.len();
                rest = &tag[consumed..];
            }
            _ => {
                out.push_str("{%");
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Maps a minijinja error to a sanitized [`TemplateError`].
fn map_error(e: &minijinja::Error, overflowed: Option<bool>) -> TemplateError {
    // raise_exception's message rides in the source chain.
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<sandbox::Raised>() {
            return TemplateError::Raised(sanitize(&r.0, MAX_RAISED_CHARS));
        }
        src = s.source();
    }
    if overflowed == Some(true) {
        return TemplateError::OutputTooLarge(MAX_OUTPUT);
    }
    let detail = sanitize(e.detail().unwrap_or(""), 512);
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    match e.kind() {
        ErrorKind::OutOfFuel => TemplateError::OutOfFuel(FUEL),
        ErrorKind::TemplateNotFound | ErrorKind::BadInclude => TemplateError::LoadForbidden,
        ErrorKind::SyntaxError => TemplateError::Syntax(format!("{detail}{line}")),
        kind => {
            let d = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            TemplateError::Render(format!("{kind}{d}{line}"))
        }
    }
}

/// Drops control characters and cuts to `max` characters.
fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_spellings_and_tojson() {
        let t = ChatTemplate::new(
            "{{ none }} {{ true }} {{ {'b': [1, 2.5, 'é\"\\n'], 'a': none}|tojson }} {{ x }}|{{ 1e20|tojson }} {{ [1]|tojson(indent=2) }}",
            "",
            "",
        )
        .unwrap();
        let out = t.render(&[], false).unwrap();
        assert_eq!(
            out,
            "None True {\"b\": [1, 2.5, \"é\\\"\\n\"], \"a\": null} |1e+20 [\n  1\n]"
        );
    }

    #[test]
    fn generation_tags_become_plain_blocks() {
        assert_eq!(
            rewrite_generation_tags("a{% generation %}b{%- endgeneration -%}c{%+ generation%}"),
            "a{% if true %}b{%- endif -%}c{%+ if true %}"
        );
        assert_eq!(
            rewrite_generation_tags("{% if x %}{{ '{%' }}{% endif %}{%"),
            "{% if x %}{{ '{%' }}{% endif %}{%"
        );
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (123.456, "123.456"),
            (1.5e300, "1.5e+300"),
        ] {
            assert_eq!(pyjson::float_repr(f), s);
        }
    }

    #[test]
    fn kwargs_go_through_the_allowlist() {
        let t = ChatTemplate::new("{{ enable_thinking }}", "", "").unwrap();
        let msgs = serde_json::json!([]);
        let mut kw = serde_json::Map::new();
        kw.insert("enable_thinking".into(), serde_json::json!(false));
        assert_eq!(t.render_json(&msgs, false, None, &kw).unwrap().0, "False");
        kw.insert("messages".into(), serde_json::json!([]));
        assert_eq!(
            t.render_json(&msgs, false, None, &kw),
            Err(TemplateError::KwargNotAllowed("messages".into()))
        );
    }
}
