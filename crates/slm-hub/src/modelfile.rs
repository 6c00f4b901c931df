//! Ollama's Modelfile syntax for `slm create NAME -f Modelfile`: `FROM`, `PARAMETER`, `TEMPLATE`,
//! `SYSTEM`, `MESSAGE`, `LICENSE` (values bare, `"quoted"` or `"""multi-line"""`; `#` comments;
//! instructions case-insensitive). `ADAPTER` and anything else is a clear error. The result is a
//! manifest: the model layer of `FROM` (a stored name or a GGUF file, imported) plus one blob per
//! template, system prompt, parameter set (JSON), message list (JSON) and license, with Ollama's
//! media types.

use std::io::Cursor;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{HubError, Result};
use crate::manifest::{Layer, Manifest, MEDIA_MANIFEST, MEDIA_MODEL};
use crate::name::ModelName;
use crate::store::{BlobPin, Store};

/// Largest Modelfile accepted.
pub const MAX_MODELFILE_BYTES: usize = 1 << 20;

/// A parsed Modelfile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Modelfile {
    pub from: String,
    pub parameters: Map<String, Value>,
    pub template: Option<String>,
    pub system: Option<String>,
    pub messages: Vec<(String, String)>,
    pub licenses: Vec<String>,
}

fn err(line: usize, msg: impl Into<String>) -> HubError {
    HubError::Other(format!("Modelfile line {line}: {}", msg.into()))
}

/// (type, repeatable) of the PARAMETERs we accept.
fn param_kind(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "num_ctx" | "top_k" | "seed" | "num_predict" | "repeat_last_n" | "mirostat"
        | "num_keep" => ("int", false),
        "temperature" | "top_p" | "min_p" | "repeat_penalty" | "presence_penalty"
        | "frequency_penalty" | "mirostat_eta" | "mirostat_tau" | "typical_p" => ("float", false),
        "stop" => ("string", true),
        _ => return None,
    })
}

/// Check a parameter map given as JSON (the `parameters` of an API create request) against the
/// PARAMETERs a Modelfile accepts: known names, integer / finite number / string (list) values.
pub fn check_parameters(params: &Map<String, Value>) -> Result<()> {
    for (name, v) in params {
        let bad = |why: &str| HubError::Other(format!("parameter {name}: {why}"));
        let (kind, repeat) = param_kind(name).ok_or_else(|| bad("not supported"))?;
        let ok_one = |v: &Value| match kind {
            "int" => v.as_i64().is_some(),
            "float" => v.as_f64().is_some_and(f64::is_finite),
            _ => v.as_str().is_some_and(|s| s.len() <= 256),
        };
        let ok = match v {
            Value::Array(a) if repeat => a.len() <= 16 && a.iter().all(ok_one),
            v => ok_one(v),
        };
        if !ok {
            return Err(bad(&format!(
                "wants a {kind}{}",
                if repeat { " or a list" } else { "" }
            )));
        }
    }
    Ok(())
}

/// Parse Modelfile text.
pub fn parse(text: &str) -> Result<Modelfile> {
    if text.len() > MAX_MODELFILE_BYTES {
        return Err(HubError::Other(format!(
            "Modelfile larger than {MAX_MODELFILE_BYTES} bytes"
        )));
    }
    let mut mf = Modelfile::default();
    let mut from = None;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines.get(i).copied().unwrap_or("").trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        // A value: """multi-line""", "quoted", or the rest of the line.
        let mut value = |rest: &str| -> Result<String> {
            if let Some(body) = rest.strip_prefix("\"\"\"") {
                if let Some(end) = body.find("\"\"\"") {
                    return Ok(body[..end].to_string());
                }
                let mut acc = body.to_string();
                while i < lines.len() {
                    let l = lines.get(i).copied().unwrap_or("");
                    i += 1;
                    if let Some(end) = l.find("\"\"\"") {
                        acc.push('\n');
                        acc.push_str(&l[..end]);
                        return Ok(acc);
                    }
                    acc.push('\n');
                    acc.push_str(l);
                }
                return Err(err(lineno, "unterminated \"\"\""));
            }
            if let Some(body) = rest.strip_prefix('"') {
                return body
                    .strip_suffix('"')
                    .map(|s| s.replace("\\\"", "\""))
                    .ok_or_else(|| err(lineno, "unterminated quote"));
            }
            Ok(rest.to_string())
        };
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => {
                if from.is_some() {
                    return Err(err(lineno, "more than one FROM"));
                }
                let v = value(rest)?;
                if v.is_empty() {
                    return Err(err(lineno, "FROM needs a model name or a GGUF file"));
                }
                from = Some(v);
            }
            "PARAMETER" => {
                let (name, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| err(lineno, "PARAMETER NAME VALUE"))?;
                let name = name.to_ascii_lowercase();
                let (kind, repeat) = param_kind(&name)
                    .ok_or_else(|| err(lineno, format!("unsupported PARAMETER {name}")))?;
                let v = value(v.trim())?;
                let parsed = match kind {
                    "int" => {
                        Value::from(v.parse::<i64>().map_err(|_| {
                            err(lineno, format!("{name} wants an integer, got {v:?}"))
                        })?)
                    }
                    "float" => {
                        Value::from(v.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(
                            || err(lineno, format!("{name} wants a number, got {v:?}")),
                        )?)
                    }
                    _ => Value::from(v),
                };
                if repeat {
                    match mf
                        .parameters
                        .entry(name)
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        Value::Array(a) => a.push(parsed),
                        _ => return Err(err(lineno, "bad repeated parameter")),
                    }
                } else if mf.parameters.insert(name.clone(), parsed).is_some() {
                    return Err(err(lineno, format!("PARAMETER {name} given twice")));
                }
            }
            "TEMPLATE" => mf.template = Some(value(rest)?),
            "SYSTEM" => mf.system = Some(value(rest)?),
            "LICENSE" => mf.licenses.push(value(rest)?),
            "MESSAGE" => {
                let (role, content) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| err(lineno, "MESSAGE ROLE TEXT"))?;
                let role = role.to_ascii_lowercase();
                if !matches!(role.as_str(), "system" | "user" | "assistant") {
                    return Err(err(
                        lineno,
                        format!("MESSAGE role {role:?}: want system, user or assistant"),
                    ));
                }
                mf.messages.push((role, value(content.trim())?));
            }
            "ADAPTER" => return Err(err(lineno, "ADAPTER (LoRA) is not supported yet")),
            other => {
                return Err(err(
                    lineno,
                    format!(
                        "unknown instruction {:?}",
                        other.chars().take(40).collect::<String>()
                    ),
                ))
            }
        }
    }
    mf.from = from.ok_or_else(|| HubError::Other("Modelfile has no FROM".into()))?;
    Ok(mf)
}

/// `slm create NAME -f Modelfile`: build and store the manifest. `FROM` is a name already in the
/// store, or a GGUF file (relative paths are relative to the Modelfile's directory), imported.
pub fn create(
    store: &Store,
    name: &ModelName,
    mf: &Modelfile,
    base_dir: &Path,
) -> Result<Manifest> {
    let path = base_dir.join(&mf.from);
    if path.is_file() {
        let (layer, pin) = store.import_blob_pinned(&path)?;
        return build(store, name, mf, Some(layer), vec![pin]);
    }
    let base = crate::pull::local_name(&mf.from)?;
    let model = store.read_manifest(&base)?.model_layer().cloned();
    let pins = pin_present(store, model.as_ref(), &mf.from)?;
    build(store, name, mf, model, pins)
}

/// Pins the base model's blob (so a concurrent `gc`/`rm` cannot delete it before the new
/// manifest names it), then checks it is still there.
fn pin_present(store: &Store, model: Option<&Layer>, from: &str) -> Result<Vec<BlobPin>> {
    let Some(layer) = model else {
        return Ok(Vec::new());
    };
    let pin = store.pin(&layer.digest)?;
    if !store.blob_path(&layer.digest).is_file() {
        return Err(HubError::NotFound {
            name: from.to_string(),
        });
    }
    Ok(vec![pin])
}

/// Like [`create`], but `FROM` must name a model already in the store (never a file): what a
/// server accepts from a remote caller.
pub fn create_from_store(store: &Store, name: &ModelName, mf: &Modelfile) -> Result<Manifest> {
    let base = crate::pull::local_name(&mf.from)?;
    if !store.is_complete(&base)? {
        return Err(HubError::NotFound {
            name: base.to_string(),
        });
    }
    let model = store.read_manifest(&base)?.model_layer().cloned();
    let pins = pin_present(store, model.as_ref(), &mf.from)?;
    build(store, name, mf, model, pins)
}

fn build(
    store: &Store,
    name: &ModelName,
    mf: &Modelfile,
    model: Option<Layer>,
    mut pins: Vec<BlobPin>,
) -> Result<Manifest> {
    let mut layers: Vec<Layer> = Vec::new();
    layers.push(model.ok_or_else(|| HubError::NotFound {
        name: mf.from.clone(),
    })?);
    let mut text = |media: &str, data: Vec<u8>| -> Result<()> {
        let (digest, size, pin) = store.put_blob_pinned(Cursor::new(data), None, None)?;
        pins.push(pin);
        layers.push(Layer {
            media_type: format!("application/vnd.ollama.image.{media}"),
            digest,
            size,
            filename: None,
        });
        Ok(())
    };
    if let Some(t) = &mf.template {
        text("template", t.clone().into_bytes())?;
    }
    if let Some(s) = &mf.system {
        text("system", s.clone().into_bytes())?;
    }
    if !mf.parameters.is_empty() {
        text(
            "params",
            serde_json::to_vec(&mf.parameters).unwrap_or_default(),
        )?;
    }
    if !mf.messages.is_empty() {
        let msgs: Vec<Value> = mf
            .messages
            .iter()
            .map(|(r, c)| serde_json::json!({"role": r, "content": c}))
            .collect();
        text("messages", serde_json::to_vec(&msgs).unwrap_or_default())?;
    }
    for l in &mf.licenses {
        text("license", l.clone().into_bytes())?;
    }
    debug_assert_eq!(
        layers.first().map(|l| l.media_type.as_str()),
        Some(MEDIA_MODEL)
    );
    let m = Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.to_string(),
        layers,
        source: Some(format!(
            "create FROM {}",
            mf.from.chars().take(200).collect::<String>()
        )),
    };
    store.write_manifest(name, &m)?;
    drop(pins);
    Ok(m)
}
