//! `tojson` as Hugging Face `transformers` defines it for chat templates: Python's
//! `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)`
//! (so no HTML escaping, `", "`/`": "` separators, Python float repr), written under a byte
//! limit so that `indent=10**10` or deep nesting fails before allocating.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

/// Deepest nesting `tojson` walks.
const MAX_DEPTH: usize = 128;

/// Output options of [`dumps`].
pub(crate) struct JsonOptions {
    pub ensure_ascii: bool,
    /// `None`: one line. `Some(s)`: newline, then `s` repeated per level.
    pub indent: Option<String>,
    pub item_sep: String,
    pub key_sep: String,
    pub sort_keys: bool,
    /// Most bytes the result may have.
    pub limit: usize,
}

/// The `tojson` filter: `value|tojson(ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, positionally or by keyword, limited to `limit` bytes.
pub(crate) fn tojson_filter(
    state: &State,
    value: &Value,
    args: &[Value],
    kwargs: &Kwargs,
    limit: usize,
) -> Result<Value, Error> {
    let arg = |i: usize, name: &str| -> Result<Option<Value>, Error> {
        let kw: Option<Value> = kwargs.get(name)?;
        Ok(kw.or_else(|| args.get(i).cloned()))
    };
    if args.len() > 4 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let ensure_ascii = arg(0, "ensure_ascii")?.is_some_and(|v| v.is_true());
    let indent = match arg(1, "indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_string()),
        Some(v) => {
            let n = i64::try_from(v)?;
            // Python: a negative or zero indent still inserts newlines.
            let n = usize::try_from(n.max(0)).unwrap_or(0);
            if n > limit {
                return Err(too_large(limit));
            }
            Some(" ".repeat(n))
        }
    };
    let (item_sep, key_sep) = match arg(2, "separators")? {
        Some(v) if !v.is_none() => {
            let a = v.get_item_by_index(0)?;
            let b = v.get_item_by_index(1)?;
            match (a.as_str(), b.as_str()) {
                (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson separators must be two strings",
                    ))
                }
            }
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let sort_keys = arg(3, "sort_keys")?.is_some_and(|v| v.is_true());
    kwargs.assert_all_used()?;
    // What fuel is left bounds the result too (one fuel pays for 64 bytes).
    let limit = match state.fuel_levels() {
        Some((_, remaining)) => {
            limit.min(usize::try_from(remaining.saturating_mul(64)).unwrap_or(limit))
        }
        None => limit,
    };
    let opts = JsonOptions {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
        limit,
    };
    let mut out = String::new();
    dumps(&mut out, value, &opts, 0)?;
    Ok(Value::from(out))
}

fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("tojson result is larger than {limit} bytes"),
    )
}

fn push(out: &mut String, s: &str, opts: &JsonOptions) -> Result<(), Error> {
    if out.len().saturating_add(s.len()) > opts.limit {
        return Err(too_large(opts.limit));
    }
    out.push_str(s);
    Ok(())
}

fn newline(out: &mut String, opts: &JsonOptions, depth: usize) -> Result<(), Error> {
    if let Some(ind) = &opts.indent {
        let need = ind.len().saturating_mul(depth).saturating_add(1);
        if out.len().saturating_add(need) > opts.limit {
            return Err(too_large(opts.limit));
        }
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
    Ok(())
}

/// Writes `value` as Python's `json.dumps` would.
pub(crate) fn dumps(
    out: &mut String,
    value: &Value,
    opts: &JsonOptions,
    depth: usize,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    match value.kind() {
        ValueKind::None => push(out, "null", opts),
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            "tojson: Object of type Undefined is not JSON serializable",
        )),
        ValueKind::Bool => push(out, if value.is_true() { "true" } else { "false" }, opts),
        ValueKind::Number => push(out, &number(value), opts),
        ValueKind::String | ValueKind::Bytes => {
            let s = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            string(out, &s, opts)
        }
        ValueKind::Map => {
            let mut keys: Vec<(String, Value)> = Vec::new();
            for k in value.try_iter()? {
                let name = key_string(&k)?;
                keys.push((name, k));
            }
            if opts.sort_keys {
                keys.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if keys.is_empty() {
                return push(out, "{}", opts);
            }
            push(out, "{", opts)?;
            for (i, (name, k)) in keys.iter().enumerate() {
                if i > 0 {
                    push(out, &opts.item_sep, opts)?;
                }
                newline(out, opts, depth + 1)?;
                string(out, name, opts)?;
                push(out, &opts.key_sep, opts)?;
                dumps(out, &value.get_item(k)?, opts, depth + 1)?;
            }
            newline(out, opts, depth)?;
            push(out, "}", opts)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut first = true;
            push(out, "[", opts)?;
            for item in value.try_iter()? {
                if !first {
                    push(out, &opts.item_sep, opts)?;
                }
                newline(out, opts, depth + 1)?;
                first = false;
                dumps(out, &item, opts, depth + 1)?;
            }
            if !first {
                newline(out, opts, depth)?;
            }
            push(out, "]", opts)
        }
        _ => Err(Error::new(
            ErrorKind::BadSerialization,
            format!("tojson: a {} is not JSON serializable", value.kind()),
        )),
    }
}

fn key_string(k: &Value) -> Result<String, Error> {
    match k.kind() {
        ValueKind::String => Ok(k.as_str().unwrap_or("").to_string()),
        ValueKind::Number => Ok(number(k)),
        ValueKind::Bool => Ok(if k.is_true() { "true" } else { "false" }.to_string()),
        ValueKind::None => Ok("null".to_string()),
        _ => Err(Error::new(
            ErrorKind::BadSerialization,
            "tojson: keys must be str, int, float, bool or None",
        )),
    }
}

/// A number as Python prints it in JSON: ints in full, floats as `repr`.
pub(crate) fn number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) => float_repr(f),
        Err(_) => v.to_string(),
    }
}

/// Python's `float.__repr__` (as `json.dumps` uses it): the shortest round-trip digits,
/// positional for exponents in [-4, 16), scientific otherwise.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let s = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

fn string(out: &mut String, s: &str, opts: &JsonOptions) -> Result<(), Error> {
    // Worst case: every char becomes a 12-byte surrogate-pair escape.
    if out.len().saturating_add(s.len().saturating_add(2)) > opts.limit {
        return Err(too_large(opts.limit));
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (opts.ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
        if out.len() > opts.limit {
            return Err(too_large(opts.limit));
        }
    }
    push(out, "\"", opts)
}
