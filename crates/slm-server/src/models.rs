//! Models on demand. A request's `model` resolves to a GGUF file named on the command line or to
//! a model in the slm-hub store; the model is loaded when first asked for and stays resident
//! while requests use it, then for its keep-alive. Resident models share a memory budget
//! (weights + KV cache of every slot): loading one that does not fit evicts the least recently
//! used idle models first, never one with requests in flight, and otherwise gets fewer slots
//! (the KV cache is sized from what is left) or a clean "insufficient memory" error.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use slm_engine::{LoadOptions, LoadedModel};
use slm_hub::{ModelName, Store};

use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::state::unix_now;

/// Where the models come from and how much memory they may use.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Threads, context, slots (the most per model) and engine settings of every load.
    pub load: LoadOptions,
    /// Bytes all resident models may use together (weights + KV cache).
    pub max_memory: u64,
    /// Keep-alive of a request that gives none (models named on the command line: for ever).
    pub default_keep_alive: KeepAlive,
    /// Never touch the network in `/api/pull`.
    pub offline: bool,
}

/// A loaded model the server answers with.
pub struct ServedModel {
    pub name: String,
    pub model: LoadedModel,
    /// When it was loaded (seconds since the Unix epoch).
    pub loaded_at: u64,
    /// Bytes it counts against the budget: weights + KV cache of its slots.
    pub size: u64,
    pub slots: usize,
    /// sha256 of its GGUF file when it comes from the store.
    pub digest: String,
    /// Defaults from the store manifest (`/api/create`): system prompt and PARAMETERs.
    pub system: Option<String>,
    pub params: Map<String, Value>,
    pinned: bool,
    in_flight: AtomicUsize,
    /// (last use, keep-alive) under one lock.
    life: Mutex<(Instant, KeepAlive)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServedModel {
    /// Requests using this model now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// When it will be unloaded if no request comes; `None` = not while busy or kept for ever.
    pub fn expires(&self) -> Option<Instant> {
        let (last, keep) = *lock(&self.life);
        match keep {
            KeepAlive::For(d) if self.in_flight() == 0 => Some(last + d),
            _ => None,
        }
    }

    /// Unix time of `expires` for `/api/ps` (far future when kept for ever or busy).
    pub fn expires_unix(&self) -> u64 {
        let (last, keep) = *lock(&self.life);
        match keep {
            KeepAlive::Forever => 32_503_680_000, // 3000-01-01
            KeepAlive::For(d) => {
                let from_now = (last + d).saturating_duration_since(Instant::now());
                let busy = if self.in_flight() > 0 { d } else { from_now };
                unix_now() + busy.as_secs()
            }
        }
    }

    fn last_used(&self) -> Instant {
        lock(&self.life).0
    }
}

/// A model in use by one request: it is not evicted while a lease exists; dropping the lease
/// starts its keep-alive.
pub struct Lease {
    model: Arc<ServedModel>,
}

impl Lease {
    fn new(model: Arc<ServedModel>, keep: Option<KeepAlive>, default: KeepAlive) -> Lease {
        model.in_flight.fetch_add(1, Ordering::SeqCst);
        {
            let mut life = lock(&model.life);
            life.0 = Instant::now();
            life.1 = keep.unwrap_or(if model.pinned {
                KeepAlive::Forever
            } else {
                default
            });
        }
        Lease { model }
    }
}

impl Clone for Lease {
    /// Another lease on the same model (one per choice of an `n > 1` request).
    fn clone(&self) -> Lease {
        self.model.in_flight.fetch_add(1, Ordering::SeqCst);
        Lease {
            model: self.model.clone(),
        }
    }
}

impl Deref for Lease {
    type Target = ServedModel;
    fn deref(&self) -> &ServedModel {
        &self.model
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.model.life).0 = Instant::now();
        self.model.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where a name points.
pub struct Source {
    /// The name it is loaded under.
    pub key: String,
    pub path: PathBuf,
    pub pinned: bool,
    pub digest: String,
    pub system: Option<String>,
    pub params: Map<String, Value>,
}

/// A model the server can serve, loaded or not (for `/api/tags` and `/v1/models`).
pub struct Available {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub digest: String,
    pub modified: u64,
}

/// The model manager.
pub struct Models {
    files: BTreeMap<String, PathBuf>,
    store: Option<Store>,
    pub config: ModelConfig,
    loaded: Mutex<BTreeMap<String, Arc<ServedModel>>>,
    load_lock: tokio::sync::Mutex<()>,
}

impl Models {
    /// `files`: models named on the command line (kept loaded unless a request says otherwise);
    /// `store`: the slm-hub store other names resolve through.
    pub fn new(files: Vec<(String, PathBuf)>, store: Option<Store>, config: ModelConfig) -> Models {
        Models {
            files: files.into_iter().collect(),
            store,
            config,
            loaded: Mutex::new(BTreeMap::new()),
            load_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The resident models.
    pub fn loaded(&self) -> Vec<Arc<ServedModel>> {
        lock(&self.loaded).values().cloned().collect()
    }

    /// Bytes the resident models use.
    pub fn used_bytes(&self) -> u64 {
        lock(&self.loaded).values().map(|m| m.size).sum()
    }

    fn lookup(&self, name: &str, keep: Option<KeepAlive>) -> Option<Lease> {
        let loaded = lock(&self.loaded);
        let m = if name.is_empty() {
            match (self.files.len(), loaded.len()) {
                (1, _) => self.files.keys().next().and_then(|k| loaded.get(k)),
                (0, 1) => loaded.values().next(),
                _ => None,
            }
        } else {
            let bare = name.strip_suffix(":latest").unwrap_or(name);
            loaded
                .get(name)
                .or_else(|| loaded.get(bare))
                .or_else(|| loaded.get(&format!("{name}:latest")))
        }?;
        // The lease is taken under the map lock, so eviction never races with it.
        Some(Lease::new(m.clone(), keep, self.config.default_keep_alive))
    }

    /// Resolve `name` to a file (no loading).
    pub fn find(&self, name: &str) -> Result<Source, ApiError> {
        let not_found = || ApiError::ModelNotFound(name.chars().take(200).collect());
        let file = |key: &String, path: &PathBuf| Source {
            key: key.clone(),
            path: path.clone(),
            pinned: true,
            digest: String::new(),
            system: None,
            params: Map::new(),
        };
        if name.is_empty() {
            return match self.files.iter().next() {
                Some((k, p)) if self.files.len() == 1 => Ok(file(k, p)),
                _ => Err(not_found()),
            };
        }
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        if let Some((k, p)) = self.files.get_key_value(name) {
            return Ok(file(k, p));
        }
        if let Some((k, p)) = self.files.get_key_value(bare) {
            return Ok(file(k, p));
        }
        let store = self.store.as_ref().ok_or_else(not_found)?;
        let mname = slm_hub::local_name(name).map_err(|_| not_found())?;
        if !store.is_complete(&mname).unwrap_or(false) {
            return Err(not_found());
        }
        let manifest = store.read_manifest(&mname).map_err(|_| not_found())?;
        let layer = manifest.model_layer().ok_or_else(not_found)?;
        let text = |media: &str| -> Option<String> {
            let l = manifest
                .layers
                .iter()
                .find(|l| l.media_type == format!("application/vnd.ollama.image.{media}"))?;
            let mut s = String::new();
            use std::io::Read;
            store
                .open_blob(&l.digest)
                .ok()?
                .take(1 << 20)
                .read_to_string(&mut s)
                .ok()?;
            Some(s)
        };
        let params = text("params")
            .and_then(|s| serde_json::from_str::<Map<String, Value>>(&s).ok())
            .unwrap_or_default();
        Ok(Source {
            key: mname.to_string(),
            path: store.model_path(&mname).map_err(|_| not_found())?,
            pinned: false,
            digest: layer.digest.to_string(),
            system: text("system"),
            params,
        })
    }

    /// The model for `name`, loading it (and evicting idle ones) when needed.
    pub async fn acquire(&self, name: &str, keep: Option<KeepAlive>) -> Result<Lease, ApiError> {
        if let Some(l) = self.lookup(name, keep) {
            return Ok(l);
        }
        let _loading = self.load_lock.lock().await;
        if let Some(l) = self.lookup(name, keep) {
            return Ok(l);
        }
        let src = self.find(name)?;
        if let Some(l) = self.lookup(&src.key, keep) {
            return Ok(l);
        }
        let (weights, kv_per_slot, n_ctx) = estimate(&src.path, &self.config.load)?;
        let slots = self.make_room(&src.key, weights, kv_per_slot).await?;
        let mut opts = self.config.load.clone();
        opts.slots = slots;
        opts.n_ctx = Some(n_ctx);
        let path = src.path.clone();
        let model = tokio::task::spawn_blocking(move || LoadedModel::load(&path, &opts))
            .await
            .map_err(|_| ApiError::Internal("the model load failed".into()))?
            .map_err(|e| {
                tracing::error!("loading {}: {e}", src.key);
                ApiError::Internal("the model could not be loaded".into())
            })?;
        tracing::info!(
            "loaded {} ({slots} slots, {} MB)",
            src.key,
            (weights + kv_per_slot * slots as u64) >> 20
        );
        let served = Arc::new(ServedModel {
            name: src.key.clone(),
            model,
            loaded_at: unix_now(),
            size: weights + kv_per_slot * slots as u64,
            slots,
            digest: src.digest,
            system: src.system,
            params: src.params,
            pinned: src.pinned,
            in_flight: AtomicUsize::new(0),
            life: Mutex::new((Instant::now(), KeepAlive::Forever)),
        });
        let lease = Lease::new(served.clone(), keep, self.config.default_keep_alive);
        lock(&self.loaded).insert(src.key, served);
        Ok(lease)
    }

    /// Evict least recently used idle models until `weights` plus the configured slots fit;
    /// returns how many slots fit (at least one) or why none does.
    async fn make_room(
        &self,
        key: &str,
        weights: u64,
        kv_per_slot: u64,
    ) -> Result<usize, ApiError> {
        let want = self.config.load.slots.max(1);
        let budget = self.config.max_memory;
        if weights + kv_per_slot > budget {
            return Err(ApiError::InsufficientMemory(format!(
                "model {key:?} needs {} MiB (weights + one sequence's KV cache), more than the server's memory budget of {} MiB",
                (weights + kv_per_slot) >> 20,
                budget >> 20
            )));
        }
        loop {
            let free = budget.saturating_sub(self.used_bytes());
            if free >= weights + kv_per_slot * want as u64 {
                return Ok(want);
            }
            let victim = {
                let mut loaded = lock(&self.loaded);
                let k = loaded
                    .iter()
                    .filter(|(_, m)| m.in_flight() == 0)
                    .min_by_key(|(_, m)| m.last_used())
                    .map(|(k, _)| k.clone());
                k.and_then(|k| loaded.remove(&k))
            };
            match victim {
                Some(v) => {
                    tracing::info!("evicting {} to make room for {key}", v.name);
                    drop_model(v).await;
                }
                None if free >= weights + kv_per_slot => {
                    return Ok((((free - weights) / kv_per_slot.max(1)) as usize).clamp(1, want))
                }
                None => {
                    return Err(ApiError::Busy(format!(
                        "no memory for model {key:?} while the loaded models are busy"
                    )))
                }
            }
        }
    }

    /// Unload idle models whose keep-alive has passed (and `name` now, when idle).
    pub async fn reap(&self, now_name: Option<&str>) {
        let now = Instant::now();
        let gone: Vec<Arc<ServedModel>> = {
            let mut loaded = lock(&self.loaded);
            let keys: Vec<String> = loaded
                .iter()
                .filter(|(k, m)| {
                    m.in_flight() == 0
                        && (m.expires().is_some_and(|t| t <= now) || now_name == Some(k.as_str()))
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| loaded.remove(k)).collect()
        };
        for m in gone {
            tracing::info!("unloading {}", m.name);
            drop_model(m).await;
        }
    }

    /// Unload `name` now if it is loaded and idle (Ollama's `keep_alive: 0` with no prompt).
    /// Returns whether it was loaded.
    pub async fn unload(&self, name: &str) -> bool {
        let key = match self.lookup(name, None) {
            Some(l) => l.name.clone(),
            None => return false,
        };
        self.reap(Some(&key)).await;
        true
    }

    /// Forget a model removed from the store (unloading it once idle).
    pub async fn forget(&self, key: &str) {
        let gone = {
            let mut loaded = lock(&self.loaded);
            match loaded.get(key) {
                Some(m) if m.in_flight() == 0 => loaded.remove(key),
                Some(m) => {
                    lock(&m.life).1 = KeepAlive::For(Duration::ZERO);
                    None
                }
                None => None,
            }
        };
        if let Some(m) = gone {
            drop_model(m).await;
        }
    }

    /// Everything servable: command-line files, then the store's models.
    pub fn available(&self) -> Vec<Available> {
        let mut out: Vec<Available> = self
            .files
            .iter()
            .map(|(k, p)| Available {
                name: k.clone(),
                path: p.clone(),
                size: std::fs::metadata(p).map_or(0, |m| m.len()),
                digest: String::new(),
                modified: std::fs::metadata(p)
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs()),
            })
            .collect();
        if let Some(store) = &self.store {
            for e in store.list().unwrap_or_default() {
                let (Some(l), Ok(path)) = (e.manifest.model_layer(), store.model_path(&e.name))
                else {
                    continue;
                };
                out.push(Available {
                    name: e.name.to_string(),
                    path,
                    size: e.manifest.total_size(),
                    digest: l.digest.hex(),
                    modified: e
                        .modified
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs()),
                });
            }
        }
        out
    }

    /// Whether `name` is a stored model (for `/api/delete` of a name not in the store).
    pub fn store_name(&self, name: &str) -> Result<ModelName, ApiError> {
        slm_hub::local_name(name).map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

/// Drop a model off the async threads (joining its engine thread, unmapping its file).
async fn drop_model(m: Arc<ServedModel>) {
    let _ = tokio::task::spawn_blocking(move || drop(m)).await;
}

/// (weights bytes, KV bytes per slot, context) of the GGUF at `path` under `opts`.
fn estimate(path: &std::path::Path, opts: &LoadOptions) -> Result<(u64, u64, usize), ApiError> {
    let f = slm_gguf::GgufFile::open(path).map_err(|e| {
        tracing::error!("{}: {e}", path.display());
        ApiError::Internal("the model file is not a readable GGUF".into())
    })?;
    let summary = slm_engine::info::summarize(f.header(), f.file_len());
    let n_train = summary.context_length.unwrap_or(4096) as usize;
    let n_ctx = match opts.n_ctx {
        Some(0) => n_train,
        Some(n) => n.min(n_train),
        None => n_train.min(4096),
    };
    let kv = slm_engine::info::kv_bytes_per_seq(f.header(), n_ctx as u64).unwrap_or(0);
    Ok((summary.tensor_bytes, kv, n_ctx))
}

/// Memory budget default: three quarters of the machine's RAM (8 GiB when unknown).
pub fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    total.map_or(8 << 30, |t| t / 4 * 3)
}
