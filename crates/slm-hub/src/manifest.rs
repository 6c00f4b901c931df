//! The manifest of one `name:tag` in the store: its layers (blobs by digest) and where they came
//! from. The JSON follows the shape of an Ollama/OCI image manifest (`schemaVersion`, `layers`
//! of `mediaType`/`digest`/`size`) so that tools reading one can read the other.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{HubError, Result};

/// Media type of a GGUF model layer (Ollama's name for it).
pub const MEDIA_MODEL: &str = "application/vnd.ollama.image.model";
/// Media type of our manifests.
pub const MEDIA_MANIFEST: &str = "application/vnd.slm.manifest.v1+json";
/// Largest manifest accepted, local or remote.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// One blob of a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The file name it had at its source, for display only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// What a `name:tag` consists of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub layers: Vec<Layer>,
    /// Where it came from (`pypi:...`, `hf.co/...`, `import:...`), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Manifest {
    /// A manifest with one GGUF model layer.
    pub fn single_model(
        digest: Digest,
        size: u64,
        filename: Option<String>,
        source: String,
    ) -> Self {
        Manifest {
            schema_version: 2,
            media_type: MEDIA_MANIFEST.to_string(),
            layers: vec![Layer {
                media_type: MEDIA_MODEL.to_string(),
                digest,
                size,
                filename,
            }],
            source: Some(source),
        }
    }

    /// Parse and bound a manifest (every digest goes through `Digest::parse`).
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Manifest> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(HubError::InvalidManifest {
                what: what.to_string(),
                reason: format!("larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| HubError::InvalidManifest {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        if m.layers.is_empty() || m.layers.len() > 64 {
            return Err(HubError::InvalidManifest {
                what: what.to_string(),
                reason: format!("{} layers (want 1..=64)", m.layers.len()),
            });
        }
        Ok(m)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The GGUF model layer, if any.
    pub fn model_layer(&self) -> Option<&Layer> {
        self.layers.iter().find(|l| l.media_type == MEDIA_MODEL)
    }

    /// Sum of the layer sizes.
    pub fn total_size(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.size)
            .fold(0u64, u64::saturating_add)
    }
}
