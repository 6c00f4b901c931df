//! API keys with roles, stored hashed (sha256) in `keys.json` under the slm home directory.
//! A key is shown once when created; only its hash, id and role are kept. Roles nest:
//! admin > user > viewer.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    User,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub role: Role,
    /// sha256 of the key, lowercase hex.
    pub sha256: String,
    pub created: u64,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyStore {
    pub keys: Vec<KeyRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the key store {0} is corrupt")]
    Corrupt(String),
    #[error("no key with id {0:?}")]
    NoSuchKey(String),
    #[error("cannot draw random bytes: {0}")]
    Random(String),
}

/// The slm home directory: `SLM_HOME`, else `~/.slm`.
pub fn slm_home() -> PathBuf {
    std::env::var_os("SLM_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".slm")
        })
}

pub fn default_key_file() -> PathBuf {
    slm_home().join("keys.json")
}

pub fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare two equal-length byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex(n: usize) -> Result<String, KeyError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl KeyStore {
    pub fn load(path: &Path) -> Result<KeyStore, KeyError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|_| KeyError::Corrupt(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyStore::default()),
            Err(source) => Err(KeyError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Write atomically (temp file, rename), readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        std::fs::write(&tmp, data).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Create a key; returns (record, the key itself, shown only now).
    pub fn add(&mut self, role: Role, name: &str) -> Result<(KeyRecord, String), KeyError> {
        let key = format!("slm-{}", random_hex(24)?);
        let rec = KeyRecord {
            id: format!("k{}", random_hex(4)?),
            role,
            sha256: sha256_hex(key.as_bytes()),
            created: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            revoked: false,
            name: name.to_string(),
        };
        self.keys.push(rec.clone());
        Ok((rec, key))
    }

    pub fn revoke(&mut self, id: &str) -> Result<(), KeyError> {
        let k = self
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::NoSuchKey(id.to_string()))?;
        k.revoked = true;
        Ok(())
    }

    pub fn active(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.iter().filter(|k| !k.revoked)
    }

    /// The active key record matching `key`, comparing hashes in constant time.
    pub fn authenticate(&self, key: &str) -> Option<&KeyRecord> {
        let h = sha256_hex(key.as_bytes());
        let mut found = None;
        for k in self.active() {
            if constant_time_eq(k.sha256.as_bytes(), h.as_bytes()) {
                found = Some(k);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abcd", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abce"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn add_authenticate_revoke() {
        let mut ks = KeyStore::default();
        let (rec, key) = ks.add(Role::User, "test").unwrap();
        assert!(!rec.sha256.contains(&key));
        assert_eq!(ks.authenticate(&key).map(|k| k.role), Some(Role::User));
        assert!(ks.authenticate("slm-wrong").is_none());
        ks.revoke(&rec.id).unwrap();
        assert!(ks.authenticate(&key).is_none());
        assert!(ks.revoke("nope").is_err());
    }
}
