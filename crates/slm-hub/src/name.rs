//! Model names (`gemma3:270m`, `hf.co/ORG/REPO:Q4_K_M`, `host:port/ns/model:tag`) and file names
//! from remote listings, validated before any of them can become part of a path.
//!
//! Rules (reliability guide 1.2, 2.3): at most 256 bytes; 1 to 4 `/`-separated components of
//! `[A-Za-z0-9._-]`, 1..=80 bytes each, starting with a letter or digit, not ending in `.`,
//! never `.`/`..`, never a Windows device name; a tag of `[A-Za-z0-9._-]`, 1..=80 bytes, starting
//! with a letter, digit or `_`; the first of several components may carry a `:port`. No NUL,
//! control characters, white space, `\`, `%`, absolute paths or empty components.

use std::fmt;
use std::path::PathBuf;

use crate::error::{HubError, Result};

/// Longest accepted full name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest accepted component or tag, in bytes.
pub const MAX_COMPONENT_LEN: usize = 80;
/// Most `/`-separated components in a name.
pub const MAX_COMPONENTS: usize = 4;

/// A validated model name with its tag (`latest` when none was given).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName {
    parts: Vec<String>,
    tag: String,
}

fn invalid(input: &str, reason: impl Into<String>) -> HubError {
    HubError::InvalidName {
        input: input.chars().take(100).collect(),
        reason: reason.into(),
    }
}

const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

fn check_component(input: &str, c: &str, what: &str) -> Result<()> {
    if c.is_empty() {
        return Err(invalid(input, format!("empty {what}")));
    }
    if c.len() > MAX_COMPONENT_LEN {
        return Err(invalid(
            input,
            format!("{what} longer than {MAX_COMPONENT_LEN} bytes"),
        ));
    }
    if let Some(bad) = c
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')))
    {
        return Err(invalid(
            input,
            format!("{what} has a forbidden character {bad:?}"),
        ));
    }
    let first = c.as_bytes().first().copied().unwrap_or(b'.');
    let first_ok = first.is_ascii_alphanumeric() || (what == "tag" && first == b'_');
    if !first_ok {
        return Err(invalid(
            input,
            format!("{what} must start with a letter or digit"),
        ));
    }
    if c.ends_with('.') {
        return Err(invalid(input, format!("{what} must not end with '.'")));
    }
    if c.contains("..") {
        return Err(invalid(input, format!("{what} must not contain '..'")));
    }
    let stem = c.split('.').next().unwrap_or(c).to_ascii_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return Err(invalid(input, format!("{what} is a reserved device name")));
    }
    Ok(())
}

impl ModelName {
    /// Parse and validate `[host[:port]/]part[/part...][:tag]`.
    pub fn parse(input: &str) -> Result<ModelName> {
        if input.is_empty() {
            return Err(invalid(input, "empty name"));
        }
        if input.len() > MAX_NAME_LEN {
            return Err(invalid(input, format!("longer than {MAX_NAME_LEN} bytes")));
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid(input, "control or white-space character"));
        }
        let (path, tag) = match input.rfind(':') {
            Some(i) if !input[i..].contains('/') => (&input[..i], &input[i + 1..]),
            _ => (input, "latest"),
        };
        check_component(input, tag, "tag")?;
        let mut parts: Vec<String> = Vec::new();
        for (i, comp) in path.split('/').enumerate() {
            if i >= MAX_COMPONENTS {
                return Err(invalid(
                    input,
                    format!("more than {MAX_COMPONENTS} components"),
                ));
            }
            let comp = if i == 0 && path.contains('/') {
                // A registry host may carry a port: `localhost:5000/ns/model`.
                match comp.split_once(':') {
                    Some((host, port)) => {
                        check_component(input, host, "host")?;
                        if port.is_empty()
                            || port.len() > 5
                            || !port.bytes().all(|b| b.is_ascii_digit())
                        {
                            return Err(invalid(input, "port must be 1-5 digits"));
                        }
                        parts.push(format!("{host}:{port}"));
                        continue;
                    }
                    None => comp,
                }
            } else {
                comp
            };
            check_component(input, comp, "name component")?;
            parts.push(comp.to_string());
        }
        Ok(ModelName {
            parts,
            tag: tag.to_string(),
        })
    }

    /// The `/`-separated components (the first may be `host:port`).
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The path component without the tag, as typed (`hf.co/org/repo`).
    pub fn repository(&self) -> String {
        self.parts.join("/")
    }

    /// The same name with another (validated) tag.
    pub fn with_tag(&self, tag: &str) -> Result<ModelName> {
        check_component(tag, tag, "tag")?;
        Ok(ModelName {
            parts: self.parts.clone(),
            tag: tag.to_string(),
        })
    }

    /// Relative path of this name's manifest under `manifests/`: one directory per component,
    /// then the tag. `:` in a host becomes `%3A` (`%` is never valid in a component, so the
    /// mapping cannot collide).
    pub fn manifest_rel_path(&self) -> PathBuf {
        let mut p = PathBuf::new();
        for part in &self.parts {
            p.push(part.replace(':', "%3A"));
        }
        p.push(&self.tag);
        p
    }

    /// Rebuild a name from a relative manifest path (the inverse of `manifest_rel_path`).
    pub fn from_rel_components(comps: &[String]) -> Result<ModelName> {
        let (tag, parts) = comps
            .split_last()
            .ok_or_else(|| invalid("", "empty manifest path"))?;
        let parts: Vec<String> = parts.iter().map(|p| p.replace("%3A", ":")).collect();
        ModelName::parse(&format!("{}:{tag}", parts.join("/")))
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.parts.join("/"), self.tag)
    }
}

impl fmt::Debug for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelName({self})")
    }
}

/// Validate a file name that came from a remote listing (a Hugging Face sibling, a wheel member)
/// before it is shown or used: a relative `/`-separated path of at most 8 components and 512
/// bytes whose components are non-empty, not `.`/`..`, free of `\`, `:`, NUL and control
/// characters. It never becomes a store path (blobs are named by digest); this only keeps a
/// hostile listing from smuggling a path into URLs, manifests and messages.
pub fn validate_remote_file_name(name: &str) -> Result<()> {
    let bad = |reason| HubError::InvalidFileName {
        input: name.chars().take(100).collect(),
        reason,
    };
    if name.is_empty() || name.len() > 512 {
        return Err(bad("empty or longer than 512 bytes"));
    }
    if name.starts_with('/') {
        return Err(bad("absolute path"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | ':' | '%' | '?' | '#'))
    {
        return Err(bad("forbidden character (control, \\, :, %, ?, #)"));
    }
    let comps: Vec<&str> = name.split('/').collect();
    if comps.len() > 8 {
        return Err(bad("more than 8 path components"));
    }
    for c in comps {
        if c.is_empty() || c == "." || c == ".." {
            return Err(bad("empty, '.' or '..' component"));
        }
        if c.starts_with(' ') || c.ends_with(' ') || c.ends_with('.') {
            return Err(bad(
                "component starts or ends with a space, or ends with '.'",
            ));
        }
    }
    Ok(())
}
