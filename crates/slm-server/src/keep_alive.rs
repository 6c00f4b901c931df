//! Ollama's `keep_alive`: how long a model stays loaded after its last request. A number is
//! seconds, a string is a Go duration (`"5m"`, `"1h30m"`, `"500ms"`) or bare seconds; zero
//! unloads the model as soon as it is idle, a negative value keeps it loaded for ever.

use std::time::Duration;

use serde_json::Value;

use crate::error::ApiError;

/// How long an idle model stays loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    Forever,
    For(Duration),
}

/// Longest finite keep-alive (anything longer is for ever).
const MAX_SECS: f64 = 100.0 * 365.0 * 86_400.0;

impl KeepAlive {
    /// Ollama's default.
    pub const DEFAULT: KeepAlive = KeepAlive::For(Duration::from_secs(300));
    /// Unload as soon as idle.
    pub const ZERO: KeepAlive = KeepAlive::For(Duration::ZERO);

    fn from_secs(s: f64) -> Result<KeepAlive, ApiError> {
        if !s.is_finite() {
            return Err(ApiError::BadRequest("keep_alive must be finite".into()));
        }
        Ok(if !(0.0..=MAX_SECS).contains(&s) {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_secs_f64(s))
        })
    }

    /// `None` for an absent / null / empty value.
    pub fn from_json(v: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(KeepAlive::from_secs)
                .transpose()
                .map(|k| k.or(Some(KeepAlive::Forever))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => KeepAlive::parse(s).map(Some),
            Some(_) => Err(ApiError::BadRequest(
                "keep_alive must be a duration string or a number of seconds".into(),
            )),
        }
    }

    /// A Go duration (`"-1m"`, `"1h2m3.5s"`, `"250ms"`) or a bare number of seconds.
    pub fn parse(s: &str) -> Result<KeepAlive, ApiError> {
        let bad = || ApiError::BadRequest(format!("keep_alive: cannot parse {:?}", trunc(s)));
        let s = s.trim();
        if s.len() > 64 {
            return Err(bad());
        }
        if let Ok(n) = s.parse::<f64>() {
            return KeepAlive::from_secs(n);
        }
        let (neg, mut rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = 0.0f64;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            };
            total += n * scale;
            rest = &rest[unit_len..];
        }
        KeepAlive::from_secs(if neg { -total } else { total })
    }
}

fn trunc(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(s: u64) -> KeepAlive {
        KeepAlive::For(Duration::from_secs(s))
    }

    #[test]
    fn ollama_keep_alive_forms() {
        assert_eq!(KeepAlive::parse("5m").unwrap(), secs(300));
        assert_eq!(KeepAlive::parse("1h30m").unwrap(), secs(5400));
        assert_eq!(KeepAlive::parse("10s").unwrap(), secs(10));
        assert_eq!(
            KeepAlive::parse("500ms").unwrap(),
            KeepAlive::For(Duration::from_millis(500))
        );
        assert_eq!(KeepAlive::parse("0").unwrap(), secs(0));
        assert_eq!(KeepAlive::parse("0s").unwrap(), secs(0));
        assert_eq!(KeepAlive::parse("-1").unwrap(), KeepAlive::Forever);
        assert_eq!(KeepAlive::parse("-1m").unwrap(), KeepAlive::Forever);
        assert_eq!(KeepAlive::parse("300").unwrap(), secs(300));
        for bad in ["", "5x", "m", "1.2.3s", "--1s", "5 m", "NaN", "inf"] {
            assert!(KeepAlive::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            KeepAlive::from_json(Some(&json!(0))).unwrap(),
            Some(secs(0))
        );
        assert_eq!(
            KeepAlive::from_json(Some(&json!(60))).unwrap(),
            Some(secs(60))
        );
        assert_eq!(
            KeepAlive::from_json(Some(&json!(-1))).unwrap(),
            Some(KeepAlive::Forever)
        );
        assert_eq!(
            KeepAlive::from_json(Some(&json!(1e300))).unwrap(),
            Some(KeepAlive::Forever)
        );
        assert_eq!(KeepAlive::from_json(Some(&json!(null))).unwrap(), None);
        assert_eq!(KeepAlive::from_json(None).unwrap(), None);
        assert!(KeepAlive::from_json(Some(&json!([1]))).is_err());
    }
}
