/*!
The plugins tenants run: the built-ins (loaded once at start) and the
components tenants upload. An upload is checked exactly as `icmp-host run`
checks a file ([`Runtime::load`]: a valid component importing only the
contract), compiled once on the blocking pool, and stored by its SHA-256.
Compiles take one core each, at most one per core at once, and each
tenant has at most one upload in progress: a tenant uploading expensive
components back to back holds one lane, never all of them. Identical bytes uploaded by two tenants are
compiled once; each tenant sees only its own uploads, bounded in number
and size.
*/

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::config::Tenant;
use crate::builtin;
use crate::runtime::{LoadError, Plugin, Runtime, sha256_hex};
use crate::sys::clock::thread_cpu_ns;

/// An uploaded component, compiled.
pub struct Upload {
    /// Its SHA-256, lowercase hexadecimal.
    pub sha256: String,
    /// Its size, bytes.
    pub size: usize,
    /// It, ready to instantiate.
    pub plugin: Arc<Plugin>,
}

/// What the API shows of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadInfo {
    /// `sha256:<hex>`, the name to run it by.
    pub sha256: String,
    /// Size, bytes.
    pub size: usize,
    /// The interfaces it imports.
    pub imports: Vec<String>,
}

impl From<&Upload> for UploadInfo {
    fn from(u: &Upload) -> UploadInfo {
        UploadInfo {
            sha256: format!("sha256:{}", u.sha256),
            size: u.size,
            imports: u.plugin.imports().iter().map(|i| i.name.clone()).collect(),
        }
    }
}

/// Why a plugin cannot be run or stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// A built-in the tenant is not given.
    #[error("plugin {0:?} is not among this tenant's plugins")]
    NotAllowed(String),
    /// No such built-in, or no such upload of this tenant.
    #[error("{0}")]
    NotFound(String),
    /// Not a component, or not one of the contract.
    #[error("{0}")]
    Invalid(String),
    /// The tenant is uploading already (one upload at a time each, so
    /// that upload bodies in memory stay bounded).
    #[error("an upload of this tenant is in progress; one at a time")]
    Busy,
    /// The tenant keeps as many uploads as it may.
    #[error("this tenant already keeps {0} uploads, its limit (DELETE /v1/plugins/<sha256> first)")]
    Quota(usize),
}

#[derive(Default)]
struct Store {
    uploads: HashMap<String, Arc<Upload>>,
    owned: HashMap<String, BTreeSet<String>>,
}

impl Store {
    /// Forgets uploads nobody owns any more.
    fn collect(&mut self) {
        let owned: BTreeSet<&String> = self.owned.values().flatten().collect();
        self.uploads.retain(|sha, _| owned.contains(sha));
    }
}

/// Built-ins and uploads.
pub struct Plugins {
    builtins: BTreeMap<&'static str, Arc<Plugin>>,
    store: Mutex<Store>,
    compiling: tokio::sync::Semaphore,
    uploading: Mutex<BTreeSet<String>>,
}

/// A tenant's one upload in progress; ends on drop.
pub struct Uploading<'a> {
    plugins: &'a Plugins,
    tenant: String,
}

impl Drop for Uploading<'_> {
    fn drop(&mut self) {
        self.plugins
            .uploading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.tenant);
    }
}

/// The hexadecimal digest of `sha256:<hex>` or `<hex>`, lowercase.
pub fn digest(name: &str) -> Option<String> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Compiles going at once: one per core, at least two (so that one tenant,
/// limited to one upload at a time, cannot hold them all).
fn compile_lanes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

impl Plugins {
    /// Loads every built-in.
    pub fn new(runtime: &Runtime) -> Result<Plugins, LoadError> {
        let builtins = builtin::BUILT_INS
            .iter()
            .map(|b| Ok((b.name, Arc::new(runtime.load_builtin(b)?))))
            .collect::<Result<_, LoadError>>()?;
        Ok(Plugins {
            builtins,
            store: Mutex::default(),
            compiling: tokio::sync::Semaphore::new(compile_lanes()),
            uploading: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plugin `name` (a built-in or `sha256:<hex>`) as `tenant` may run it.
    pub fn resolve(&self, tenant: &Tenant, name: &str) -> Result<Arc<Plugin>, PluginError> {
        if name.starts_with("sha256:") {
            let sha = digest(name).ok_or_else(|| {
                PluginError::NotFound(format!("{name:?} is not sha256:<64 hex digits>"))
            })?;
            let store = self.lock();
            return store
                .owned
                .get(&tenant.name)
                .filter(|owned| owned.contains(&sha))
                .and_then(|_| store.uploads.get(&sha))
                .map(|u| Arc::clone(&u.plugin))
                .ok_or_else(|| {
                    PluginError::NotFound(format!("no upload {name} (POST /v1/plugins first)"))
                });
        }
        let plugin = self.builtins.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.builtins.keys().copied().collect();
            PluginError::NotFound(format!(
                "unknown plugin {name:?}: built-ins are {}; uploads are sha256:<hex>",
                known.join(", ")
            ))
        })?;
        if !tenant.plugins.contains(name) {
            return Err(PluginError::NotAllowed(name.to_owned()));
        }
        Ok(Arc::clone(plugin))
    }

    /// Starts an upload of `tenant`'s, unless one is in progress.
    pub fn begin_upload(&self, tenant: &str) -> Result<Uploading<'_>, PluginError> {
        let fresh = self
            .uploading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.to_owned());
        if !fresh {
            return Err(PluginError::Busy);
        }
        Ok(Uploading {
            plugins: self,
            tenant: tenant.to_owned(),
        })
    }

    /// Checks, compiles and stores `wasm` for `tenant`: the CPU time the
    /// host spent on it (checks and compiling, whether they succeeded or
    /// not: a refused upload is charged too), and whether it is new to the
    /// tenant and what it is.
    pub async fn upload(
        &self,
        runtime: &Arc<Runtime>,
        tenant: &Tenant,
        wasm: bytes::Bytes,
    ) -> (Duration, Result<(bool, UploadInfo), PluginError>) {
        let sha = sha256_hex(&wasm);
        let existing = {
            let store = self.lock();
            let owned = store.owned.get(&tenant.name);
            if let Some(u) = store.uploads.get(&sha)
                && owned.is_some_and(|o| o.contains(&sha))
            {
                return (Duration::ZERO, Ok((false, UploadInfo::from(&**u))));
            }
            if owned.map_or(0, BTreeSet::len) >= tenant.max_uploads {
                return (Duration::ZERO, Err(PluginError::Quota(tenant.max_uploads)));
            }
            store.uploads.get(&sha).cloned()
        };
        let (upload, cpu) = match existing {
            Some(u) => (u, Duration::ZERO),
            None => {
                // A lane per core: uploads cannot take every core from the
                // runs, nor one tenant every lane from the others.
                let _permit = self.compiling.acquire().await;
                let runtime = Arc::clone(runtime);
                let name = format!("sha256:{sha}");
                let sha = sha.clone();
                // The service's runtime compiles on the loading thread
                // alone: its CPU clock measures the whole load.
                let compiled = tokio::task::spawn_blocking(move || {
                    let start = thread_cpu_ns();
                    let loaded = runtime.load(&name, &wasm);
                    let cpu = Duration::from_nanos(thread_cpu_ns().saturating_sub(start));
                    (loaded, wasm.len(), cpu)
                })
                .await;
                let (loaded, size, cpu) = match compiled {
                    Ok(done) => done,
                    Err(e) => {
                        let error = PluginError::Invalid(format!("compiling failed: {e}"));
                        return (Duration::ZERO, Err(error));
                    }
                };
                let plugin = match loaded {
                    Ok(plugin) => plugin,
                    Err(e) => return (cpu, Err(PluginError::Invalid(e.to_string()))),
                };
                let upload = Arc::new(Upload {
                    sha256: sha,
                    size,
                    plugin: Arc::new(plugin),
                });
                (upload, cpu)
            }
        };
        let mut store = self.lock();
        let owned = store.owned.entry(tenant.name.clone()).or_default();
        // Checked again: another upload of this tenant may have finished meanwhile.
        if !owned.contains(&upload.sha256) && owned.len() >= tenant.max_uploads {
            return (cpu, Err(PluginError::Quota(tenant.max_uploads)));
        }
        let new = owned.insert(upload.sha256.clone());
        let upload = Arc::clone(store.uploads.entry(upload.sha256.clone()).or_insert(upload));
        (cpu, Ok((new, UploadInfo::from(&*upload))))
    }

    /// `tenant`'s uploads, by digest.
    pub fn list(&self, tenant: &str) -> Vec<UploadInfo> {
        let store = self.lock();
        store
            .owned
            .get(tenant)
            .into_iter()
            .flatten()
            .filter_map(|sha| store.uploads.get(sha))
            .map(|u| UploadInfo::from(&**u))
            .collect()
    }

    /// `tenant`'s upload `name`.
    pub fn get(&self, tenant: &str, name: &str) -> Option<UploadInfo> {
        let sha = digest(name)?;
        self.list(tenant).into_iter().find(|u| u.sha256[7..] == sha)
    }

    /// Forgets `tenant`'s upload `name`; whether it had one.
    pub fn remove(&self, tenant: &str, name: &str) -> bool {
        let Some(sha) = digest(name) else {
            return false;
        };
        let mut store = self.lock();
        let removed = store
            .owned
            .get_mut(tenant)
            .is_some_and(|owned| owned.remove(&sha));
        store.collect();
        removed
    }

    /// Forgets the uploads of tenants not in `tenants` (after a reload).
    pub fn retain_tenants(&self, tenants: &BTreeSet<&str>) {
        let mut store = self.lock();
        store.owned.retain(|t, _| tenants.contains(t.as_str()));
        store.collect();
    }

    /// Uploads kept per tenant: (count, bytes).
    pub fn usage(&self) -> Vec<(String, usize, usize)> {
        let store = self.lock();
        store
            .owned
            .iter()
            .map(|(t, owned)| {
                let bytes = owned
                    .iter()
                    .filter_map(|s| store.uploads.get(s))
                    .map(|u| u.size)
                    .sum();
                (t.clone(), owned.len(), bytes)
            })
            .collect()
    }
}
