//! The on-disk cache of compiled plugins. It holds native code the host
//! will run, so it is used only when its directories belong to the
//! effective user and nobody else can write them, and an artifact is only
//! ever written there by [`Cache::store`], right after compiling the
//! plugin whose SHA-256 names it (written whole, then renamed into place).
//! What makes an artifact trustworthy is where it is, checked on every
//! load; a CRC-32 of its bytes, also checked, catches a damaged file (a
//! flipped bit must not become a crash). Whoever could rewrite the file
//! could rewrite its checksum — or a digest — as well: only the owner can,
//! and the owner's plugins run with no more rights than the owner has —
//! which is why a binary that gains capabilities when executed (setcap,
//! setuid) keeps no cache at all (see `Runtime`).
//!
//! A plugin file seen before is found without reading or hashing it: the
//! cache remembers the SHA-256 of each file by its identity (device,
//! inode, size, modification and change times; a write changes the
//! change time, which no user can set back). Times are only as fine as
//! the file system's clock tick, so a file changed within the last
//! [`SETTLE`] is not remembered (git's "racy" rule): a same-size rewrite
//! in the tick it was read in cannot keep its old identity. What is
//! remembered is always code the host compiled itself from bytes it
//! checked; a file system that reports false identities (FUSE, NFS) can at
//! worst make it run an older plugin of the same user's.
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

/// Whether only the effective user can have written `meta`'s file.
fn ours(meta: &fs::Metadata) -> Result<(), &'static str> {
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err("owned by another user");
    }
    if meta.mode() & 0o022 != 0 {
        return Err("writable by group or others");
    }
    Ok(())
}

/// Creates (0700) or checks a directory: owned by us, not group/world writable.
fn trusted_dir(path: &Path) -> Result<(), CacheError> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(io_err(path))?;
            fs::symlink_metadata(path)
        }
        other => other,
    }
    .map_err(io_err(path))?;
    let untrusted = |reason: &str| CacheError::Untrusted {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if !meta.is_dir() {
        return Err(untrusted("not a directory"));
    }
    ours(&meta).map_err(untrusted)
}

/// Who a plugin file is, as far as the cache can tell without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    /// The identity of an open file.
    pub fn of(file: &fs::File) -> std::io::Result<FileIdentity> {
        let m = file.metadata()?;
        Ok(FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the file has not changed for [`SETTLE`]: a change now would
    /// give it a new change time.
    pub fn settled(&self) -> bool {
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(self.ctime.0).unwrap_or(0),
                u32::try_from(self.ctime.1).unwrap_or(0),
            );
        changed.elapsed().is_ok_and(|since| since >= SETTLE)
    }

    /// The record's file name: one per file, replaced when it changes.
    fn key(&self) -> String {
        format!("{:x}-{:x}", self.dev, self.ino)
    }

    /// The record's first line; the digest follows.
    fn stamp(&self) -> String {
        let FileIdentity {
            size, mtime, ctime, ..
        } = self;
        format!("{size} {}.{} {}.{}", mtime.0, mtime.1, ctime.0, ctime.1)
    }
}

/// How long a file must have stayed unchanged to be remembered by its
/// identity (comfortably more than any file system's time granularity).
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `s` looks like a hex SHA-256 (it names a file).
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Cache {
    /// Opens the cache under `root` for the compatibility hash of
    /// `compiler`, the engine that compiles what is stored.
    pub fn open(root: &Path, compiler: &wasmtime::Engine) -> Result<Cache, CacheError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        compiler.precompile_compatibility_hash().hash(&mut h);
        // `v2`: a CRC-32 before each artifact (v1 had a SHA-256 there).
        let dir = root.join(format!("wasmtime-48-v2-{:016x}", h.finish()));
        trusted_dir(root)?;
        trusted_dir(&dir)?;
        Ok(Cache { dir })
    }

    fn path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}.cwasm"))
    }

    fn files(&self) -> PathBuf {
        self.dir.join("files")
    }

    /// The compiled component for `wasm_sha256`, if cached and intact.
    pub fn load(&self, engine: &wasmtime::Engine, wasm_sha256: &str) -> Option<Component> {
        let path = self.path(wasm_sha256);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || ours(&meta).is_err() {
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        let (stored, artifact) = bytes.split_first_chunk::<4>()?;
        if u32::from_le_bytes(*stored) != crc32fast::hash(artifact) {
            let _ = fs::remove_file(&path); // damaged: compile again
            return None;
        }
        // SAFETY: `deserialize` runs native code from these bytes. Only
        // this user can write the directory (checked when opened) and the
        // file (checked above), only `store` writes artifacts there — this
        // engine configuration's compilation of the plugin with this
        // SHA-256 (the directory name carries the configuration's hash;
        // wasmtime checks it again) — and the bytes are the ones stored.
        unsafe { Component::deserialize(engine, artifact) }.ok()
    }

    /// Stores the artifact this process just compiled from the plugin
    /// with SHA-256 `wasm_sha256`, with its checksum, atomically (write,
    /// sync, then rename).
    pub fn store(&self, artifact: &[u8], wasm_sha256: &str) -> Result<(), CacheError> {
        let mut bytes = Vec::with_capacity(4 + artifact.len());
        bytes.extend_from_slice(&crc32fast::hash(artifact).to_le_bytes());
        bytes.extend_from_slice(artifact);
        self.write_atomically(&self.dir, &format!("{wasm_sha256}.cwasm"), &bytes)
    }

    /// The SHA-256 of the plugin file `identity`, if it was remembered and
    /// the file has not changed since.
    pub fn digest_of(&self, identity: &FileIdentity) -> Option<String> {
        let record = fs::read_to_string(self.files().join(identity.key())).ok()?;
        let (stamp, digest) = record.trim_end().rsplit_once(' ')?;
        (stamp == identity.stamp() && is_digest(digest)).then(|| digest.to_owned())
    }

    /// Remembers that the file `identity` has SHA-256 `wasm_sha256`.
    pub fn remember(&self, identity: &FileIdentity, wasm_sha256: &str) -> Result<(), CacheError> {
        let files = self.files();
        trusted_dir(&files)?;
        let record = format!("{} {wasm_sha256}\n", identity.stamp());
        self.write_atomically(&files, &identity.key(), record.as_bytes())
    }

    fn write_atomically(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CacheError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let written = f.write_all(bytes).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "icmp-host-cache-test-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn engine() -> wasmtime::Engine {
        wasmtime::Engine::new(&super::super::engine_config::config(
            super::super::DataInit::Mapped,
        ))
        .unwrap()
    }

    /// A tiny valid component.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn stores_and_loads_by_digest() {
        let root = scratch("roundtrip");
        let engine = engine();
        let cache = Cache::open(&root, &engine).unwrap();
        let artifact = engine.precompile_component(EMPTY_COMPONENT).unwrap();
        let sha = sha256_hex(EMPTY_COMPONENT);
        assert!(cache.load(&engine, &sha).is_none());
        cache.store(&artifact, &sha).unwrap();
        assert!(cache.load(&engine, &sha).is_some());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_damaged_artifact_is_dropped_not_loaded() {
        let root = scratch("damaged");
        let engine = engine();
        let cache = Cache::open(&root, &engine).unwrap();
        let artifact = engine.precompile_component(EMPTY_COMPONENT).unwrap();
        let sha = sha256_hex(EMPTY_COMPONENT);
        cache.store(&artifact, &sha).unwrap();
        let mut bytes = fs::read(cache.path(&sha)).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        fs::write(cache.path(&sha), bytes).unwrap();
        assert!(cache.load(&engine, &sha).is_none());
        assert!(!cache.path(&sha).exists(), "a damaged artifact is removed");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        let root = scratch("open");
        fs::create_dir_all(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let err = Cache::open(&root, &engine()).unwrap_err();
        assert!(
            err.to_string().contains("writable by group or others"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn ignores_an_artifact_others_can_write() {
        let root = scratch("artifact");
        let engine = engine();
        let cache = Cache::open(&root, &engine).unwrap();
        let sha = sha256_hex(EMPTY_COMPONENT);
        let artifact = engine.precompile_component(EMPTY_COMPONENT).unwrap();
        cache.store(&artifact, &sha).unwrap();
        fs::set_permissions(cache.path(&sha), fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.load(&engine, &sha).is_none());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn knows_a_file_until_it_changes() {
        let root = scratch("identity");
        let cache = Cache::open(&root, &engine()).unwrap();
        let plugin = root.join("plugin.wasm");
        fs::write(&plugin, b"one").unwrap();
        let before = FileIdentity::of(&fs::File::open(&plugin).unwrap()).unwrap();
        let sha = sha256_hex(b"one");
        cache.remember(&before, &sha).unwrap();
        assert_eq!(cache.digest_of(&before), Some(sha));
        // Rewritten with the same size: the change time moves on.
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(&plugin, b"two").unwrap();
        let after = FileIdentity::of(&fs::File::open(&plugin).unwrap()).unwrap();
        assert_ne!(before, after);
        assert_eq!(cache.digest_of(&after), None);
        let _ = fs::remove_dir_all(&root);
    }
}
