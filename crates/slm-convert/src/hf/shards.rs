//! The safetensors of a model folder: `model.safetensors`, or the shards named by
//! `model.safetensors.index.json` (at most [`MAX_INDEX`] bytes; shard names must be plain
//! `.safetensors` file names inside the folder; the weight map must match the shards' contents
//! exactly, and a tensor name may appear in one shard only).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::hf::safetensors::{SafeTensors, StProblem, StTensor, MAX_INDEX};

/// Every tensor of a model folder, over one or several safetensors files.
pub struct HfTensors {
    files: Vec<SafeTensors>,
    /// (file index, tensor index) in conversion order: files sorted by name, tensors by offset.
    order: Vec<(usize, usize)>,
    by_name: HashMap<String, (usize, usize)>,
}

/// A shard name from the index: a plain file name in the folder, nothing else.
fn check_shard_name(index: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.ends_with(".safetensors")
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::HfConfig {
            file: index.to_string(),
            why: format!("weight_map names {name:?}, which is not a plain .safetensors file name"),
        })
    }
}

#[derive(Deserialize)]
struct Index {
    weight_map: HashMap<String, String>,
}

impl HfTensors {
    /// Open the safetensors of the model folder `dir`.
    pub fn open(dir: &Path) -> Result<HfTensors> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut files = Vec::new();
        let mut expected: Option<HashMap<String, String>> = None;
        if index_path.is_file() {
            let ip = index_path.display().to_string();
            let len = std::fs::metadata(&index_path)
                .map_err(|source| Error::Io {
                    path: ip.clone(),
                    source,
                })?
                .len();
            if len > MAX_INDEX {
                return Err(Error::HfConfig {
                    file: ip,
                    why: format!("{len} bytes, above the {MAX_INDEX}-byte cap"),
                });
            }
            let text = std::fs::read(&index_path).map_err(|source| Error::Io {
                path: ip.clone(),
                source,
            })?;
            let index: Index = serde_json::from_slice(&text).map_err(|e| Error::HfConfig {
                file: ip.clone(),
                why: e.to_string(),
            })?;
            let mut names: Vec<&String> = index.weight_map.values().collect();
            names.sort();
            names.dedup();
            for n in names {
                check_shard_name(&ip, n)?;
                files.push(SafeTensors::open(&dir.join(n))?);
            }
            expected = Some(index.weight_map);
        } else if single.is_file() {
            files.push(SafeTensors::open(&single)?);
        } else {
            return Err(Error::MissingFile {
                path: single.display().to_string(),
                what: "model.safetensors or model.safetensors.index.json".into(),
            });
        }
        Self::from_files(files, expected)
    }

    /// Tensors of already opened files; `expected` (from an index) maps every tensor name to
    /// its file name and must match the files exactly.
    pub fn from_files(
        files: Vec<SafeTensors>,
        expected: Option<HashMap<String, String>>,
    ) -> Result<HfTensors> {
        let mut order = Vec::new();
        let mut by_name = HashMap::new();
        for (fi, f) in files.iter().enumerate() {
            for (ti, t) in f.tensors().iter().enumerate() {
                if by_name.insert(t.name.clone(), (fi, ti)).is_some() {
                    return Err(Error::Safetensors {
                        file: f.path().display().to_string(),
                        problem: StProblem::DuplicateTensor(t.name.clone()),
                    });
                }
                if let Some(exp) = &expected {
                    let file_name = f.path().file_name().and_then(|n| n.to_str());
                    if exp.get(&t.name).map(String::as_str) != file_name {
                        return Err(Error::HfConfig {
                            file: "model.safetensors.index.json".into(),
                            why: format!(
                                "tensor {:?} is in {} but the weight map says {:?}",
                                t.name,
                                f.path().display(),
                                exp.get(&t.name)
                            ),
                        });
                    }
                }
                order.push((fi, ti));
            }
        }
        if let Some(exp) = &expected {
            if let Some(missing) = exp.keys().find(|k| !by_name.contains_key(*k)) {
                return Err(Error::HfConfig {
                    file: "model.safetensors.index.json".into(),
                    why: format!("tensor {missing:?} of the weight map is in no shard"),
                });
            }
        }
        Ok(HfTensors {
            files,
            order,
            by_name,
        })
    }

    /// Tensors in conversion order with their bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&StTensor, &[u8])> {
        self.order.iter().filter_map(|&(fi, ti)| {
            let f = self.files.get(fi)?;
            let t = f.tensors().get(ti)?;
            Some((t, f.data(t)))
        })
    }

    pub fn get(&self, name: &str) -> Option<(&StTensor, &[u8])> {
        let &(fi, ti) = self.by_name.get(name)?;
        let f = self.files.get(fi)?;
        let t = f.tensors().get(ti)?;
        Some((t, f.data(t)))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
