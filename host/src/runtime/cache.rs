//! The on-disk cache of compiled plugins. It holds native code the host
//! will run, so it is trusted only when its directories belong to the
//! effective user and nobody else can write them, and every artifact is
//! checked against the SHA-256 stored with it before it is loaded.
#![allow(unsafe_code)]

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// A cache directory for one engine configuration.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// The default location: `$XDG_CACHE_HOME/icmp-host`, else `~/.cache/icmp-host`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("icmp-host"))
}

/// Why the cache cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A directory is not safe to load native code from.
    #[error("{path}: {reason}; not loading compiled code from it")]
    Untrusted {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An IO failure.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates (0700) or checks a directory: owned by us, not group/world writable.
fn trusted_dir(path: &Path) -> Result<(), CacheError> {
    if !path.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io_err(path))?;
    }
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    let untrusted = |reason: &str| CacheError::Untrusted {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if !meta.is_dir() {
        return Err(untrusted("not a directory"));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(untrusted("owned by another user"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted("writable by group or others"));
    }
    Ok(())
}

impl Cache {
    /// Opens the cache under `root` for `engine`'s compatibility hash.
    pub fn open(root: &Path, engine: &wasmtime::Engine) -> Result<Cache, CacheError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let dir = root.join(format!("wasmtime-48-{:016x}", h.finish()));
        trusted_dir(root)?;
        trusted_dir(&dir)?;
        Ok(Cache { dir })
    }

    fn path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}.cwasm"))
    }

    /// The compiled component for `wasm_sha256`, if cached and intact.
    pub fn load(&self, engine: &wasmtime::Engine, wasm_sha256: &str) -> Option<Component> {
        let path = self.path(wasm_sha256);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file()
            || meta.uid() != nix::unistd::geteuid().as_raw()
            || meta.mode() & 0o022 != 0
        {
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        let (stored, artifact) = bytes.split_at_checked(32)?;
        if Sha256::digest(artifact).as_slice() != stored {
            let _ = fs::remove_file(&path); // corrupt: recompile
            return None;
        }
        // SAFETY: `deserialize` runs native code from these bytes. They come
        // from a file in a directory only this user can write, produced by
        // `store` below with this engine configuration (the directory name
        // carries its compatibility hash), and match the SHA-256 written
        // with them, so they are the output of our own compilation.
        unsafe { Component::deserialize(engine, artifact) }.ok()
    }

    /// Stores a compiled component atomically (write, then rename).
    pub fn store(&self, component: &Component, wasm_sha256: &str) -> Result<(), CacheError> {
        let artifact = component.serialize().map_err(|e| CacheError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = self.path(wasm_sha256);
        let tmp = self
            .dir
            .join(format!(".{wasm_sha256}.{}.tmp", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(&Sha256::digest(&artifact))
            .and_then(|()| f.write_all(&artifact))
            .and_then(|()| f.sync_all())
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))
    }
}

/// Hex SHA-256 of plugin bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
