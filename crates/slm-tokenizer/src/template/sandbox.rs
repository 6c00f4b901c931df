//! The one sandboxed minijinja environment of the codebase (CI greps that the environment
//! constructor, `new` or `empty`, is called exactly once in the codebase: here).
//!
//! Limits: fuel (instructions and bytes), recursion depth, no loader (so `include`, `import`
//! and `extends` can only fail), an output-size cap enforced by the writer, bounded `tojson`.
//! Semantics follow Hugging Face `transformers`: jinja2 with `trim_blocks=True,
//! lstrip_blocks=True`, the loop-controls extension, `raise_exception`, `strftime_now`, its own
//! `tojson`, Python string/dict/list methods, and Python spellings of `None`/`True`/`False`.

use std::io;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};

use super::{pyjson, strftime};

/// Fuel budget of one render. One fuel is one VM instruction or 64 bytes of data, so this also
/// bounds what a render can allocate (500,000 x 64 B = 32 MB). Calibrated in
/// tests/template_real.rs: real templates rendering 200 messages and 64 tools use at most 10%
/// of it (the worst, Gemma 4's, about 42,600).
pub const FUEL: u64 = 500_000;

/// Largest rendered prompt, in bytes.
pub const MAX_OUTPUT: usize = 1 << 20;

/// minijinja recursion limit (a for/if level costs 1, a macro call 4, an include 10).
pub const RECURSION_LIMIT: usize = 64;

/// Largest template source accepted, in bytes.
pub const MAX_SOURCE: usize = 256 * 1024;

/// The name the template is registered under (never resolvable by `include`: there is no
/// loader, and including itself hits the recursion limit).
pub(crate) const NAME: &str = "chat_template";

/// The error a template's `raise_exception(msg)` raises, carried as the error's source.
#[derive(Debug)]
pub(crate) struct Raised(pub String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// Builds the sandboxed environment holding `source` as [`NAME`].
pub(crate) fn environment(source: String) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(python_formatter);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |fmt: String| -> Result<Value, Error> {
        if fmt.len() > 256 {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "strftime_now: format too long",
            ));
        }
        Ok(Value::from(strftime::strftime_now(&fmt)))
    });
    env.add_filter(
        "tojson",
        |state: &State, value: Value, args: Rest<Value>, kwargs: Kwargs| {
            pyjson::tojson_filter(state, &value, &args, &kwargs, MAX_OUTPUT)
        },
    );
    env.add_filter("wordcount", |s: &str| -> Value {
        Value::from(wordcount(s))
    });
    // Nothing in the sandbox reaches the host: no loader, no debug dump.
    env.remove_global("debug");
    env.add_template_owned(NAME, source)?;
    Ok(env)
}

/// jinja2's `wordcount`: the number of maximal runs of word characters (`\w+`).
fn wordcount(s: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for c in s.chars() {
        let w = c.is_alphanumeric() || c == '_';
        if w && !in_word {
            n += 1;
        }
        in_word = w;
    }
    n
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, "raise_exception").with_source(Raised(msg)))
}

/// Prints values as Python's `str()` does where it differs from minijinja: `None`, `True`,
/// `False`, floats (`1e+20`); undefined prints nothing (jinja2's default `Undefined`).
fn python_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.write_str("None").map_err(Error::from),
        ValueKind::Bool => out
            .write_str(if value.is_true() { "True" } else { "False" })
            .map_err(Error::from),
        ValueKind::Number if !value.is_integer() => {
            out.write_str(&pyjson::number(value)).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// An `io::Write` that refuses to grow past `cap` bytes.
pub(crate) struct CappedWriter {
    pub buf: Vec<u8>,
    pub cap: usize,
    pub overflowed: bool,
}

impl CappedWriter {
    pub fn new(cap: usize) -> Self {
        CappedWriter {
            buf: Vec::new(),
            cap,
            overflowed: false,
        }
    }
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.cap {
            self.overflowed = true;
            return Err(io::Error::other("output size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
