//! On-disk, content-addressed cache of compiled artifacts.
//!
//! An entry is keyed by everything that changes the artifact or whether
//! this machine may run it ([`CacheKey`]), and carries a manifest with the
//! artifact's size and BLAKE3 hash. Nothing from the cache is mapped before
//! the bytes match their manifest and pass the validating loader; an entry
//! that does not is moved to `quarantine/` with the reason, reported through
//! [`ArtifactCache::take_rejections`], and treated as a miss, so the
//! contract runs interpreted (or is recompiled) instead of failing.
//!
//! Writers build an entry in a private directory and rename it into place:
//! processes and threads sharing a cache end with one good entry each.
//!
//! Trust: whoever can write the cache directory can make this process run
//! any code (a manifest is not signed). So an entry is refused unless its
//! artifact, its directory, `entries/` and the root can be changed only by
//! this process's user or root (see [`crate::loader::trust_problem`]).
//!
//! A cache that can be read but not written (shared read-only, a read-only
//! mount) serves hits; what would write to it fails instead: compiles
//! ([`CacheError::ReadOnly`], announced once), quarantine (refusals are
//! reported and the entry left in place), gc.

mod gc;
mod host_profile;
pub mod key;
pub mod manifest;
pub(crate) mod owner;
mod rejection;
mod store;

// The shared store tier: hooks below are marked `feature = "store"`.
#[cfg(feature = "store")]
pub mod remote;

pub use crate::compile_worker::{CompileFailure, CompileLimits, CompiledFile, WorkerCommand};
pub use gc::{EntryInfo, GcOptions, GcReport, VerifyReport};
pub use key::CacheKey;
pub use manifest::Manifest;
pub use rejection::{Rejection, RejectionLog};

#[cfg(feature = "compiler")]
use crate::compile_worker::compile_to_path;
use crate::loader::{Expect, LoadError, LoadedArtifact, Loader, OpenedArtifact, Pinned};
#[cfg(feature = "compiler")]
use evmc_compiler::CompileOptions;
use evmc_compiler::{SpecId, TargetSpec, B256};
use manifest::ARTIFACT_FILE;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use store::{EntryError, Layout};

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory cannot be created or read.
    #[error("{path}: cache directory is not usable: {reason}")]
    Unusable {
        /// The path concerned.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The compile failed.
    #[error(transparent)]
    Compile(#[from] CompileFailure),
    /// The compile of this key failed earlier in this process.
    #[error("{0} (failed earlier in this process; not retried)")]
    FailedBefore(CompileFailure),
    /// The freshly compiled artifact did not load.
    #[error("the freshly compiled artifact does not load: {0}")]
    Load(#[from] LoadError),
    /// The cache can be read but not written: hits are served, nothing
    /// new is stored.
    #[error("{path}: the artifact cache is read-only: {what}")]
    ReadOnly {
        /// The path concerned.
        path: PathBuf,
        /// What could not be done.
        what: &'static str,
    },
}

impl CacheError {
    /// The contract is above the compile size limit: it stays interpreted
    /// by design, which is not a failure.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            CacheError::Compile(CompileFailure::TooLarge { .. })
                | CacheError::FailedBefore(CompileFailure::TooLarge { .. })
        )
    }
}

/// Where [`ArtifactCache::lookup_or_compile`] found an artifact.
#[derive(Clone, Debug)]
pub enum Source {
    /// Found in the local cache.
    Hit,
    /// Downloaded from the shared store, checked and kept locally.
    Fetched,
    /// Compiled now (and published).
    Compiled(CompiledFile),
}

/// The artifact cache of one directory. `Send + Sync`; share it in an `Arc`.
pub struct ArtifactCache {
    layout: Layout,
    /// The target `get` keys on: this machine's, computed once (asked of
    /// LLVM, or recorded in the cache by a process that could ask it), or
    /// the one given to [`Self::with_target`].
    host: Option<TargetSpec>,
    worker: Option<WorkerCommand>,
    limits: CompileLimits,
    rejections: RejectionLog,
    /// Refusals left in place (read-only cache, untrusted cache directory)
    /// already reported: each is reported once, not at every lookup.
    reported: Mutex<HashSet<(PathBuf, String)>>,
    /// Writes fail (found at open, or when a write was refused since).
    read_only: AtomicBool,
    /// One compile per key at a time in this process; the others wait and hit.
    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    inflight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Keys whose compile failed for a reason retrying will not fix (too
    /// large, compiler error, over the time or memory cap): a hot contract
    /// must not cost a full timeout on every lookup.
    failed: Mutex<HashMap<String, CompileFailure>>,
    /// The shared store behind the local directory, if any.
    #[cfg(feature = "store")]
    remote: Option<remote::RemoteTier>,
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCache")
            .field("dir", &self.layout.root)
            .field("worker", &self.worker)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ArtifactCache {
    /// `$EVMC_NATIVE_CACHE`, else `$XDG_CACHE_HOME/evmc-native`, else
    /// `~/.cache/evmc-native` (relative `.cache/evmc-native` without a home).
    pub fn default_dir() -> PathBuf {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = var("EVMC_NATIVE_CACHE") {
            return PathBuf::from(dir);
        }
        if let Some(xdg) = var("XDG_CACHE_HOME").map(PathBuf::from) {
            // The XDG spec ignores relative values.
            if xdg.is_absolute() {
                return xdg.join("evmc-native");
            }
        }
        var("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/evmc-native")
    }

    /// Opens (creating if needed) the cache at `dir`; a directory that
    /// cannot be created or read is a clear [`CacheError::Unusable`]. One
    /// that can be read but not written opens read-only
    /// ([`Self::is_read_only`]). Temporary directories left in `tmp/` by
    /// processes that died mid-compile are removed.
    ///
    /// Without the `compiler` feature this process cannot ask LLVM for the
    /// host target: [`Self::get`] then keys on the target recorded for this
    /// machine in the cache (see `host_profile`), and misses if there is none.
    ///
    /// ```no_run
    /// use evmc_compiler::{CompileOptions, SpecId};
    /// use evmc_runtime::ArtifactCache;
    ///
    /// let cache = ArtifactCache::open(&ArtifactCache::default_dir())?;
    /// let code = [0x60, 0x01, 0x60, 0x02, 0x01, 0x00];
    /// let opts = CompileOptions::new(SpecId::OSAKA);
    /// // A hit loads the checked entry; a miss compiles, publishes and loads.
    /// let artifact = cache.get_or_compile(&code, &opts)?;
    /// assert!(cache.get(evmc_compiler::code_hash(&code), SpecId::OSAKA, opts.opt_level)?.is_some());
    /// # drop(artifact);
    /// # Ok::<(), evmc_runtime::CacheError>(())
    /// ```
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        let layout = Layout::new(dir);
        let writable = layout.create()?;
        if writable {
            for p in layout.remove_dead_temporaries() {
                tracing::debug!(path = %p.display(), "removed a dead process's build directory");
            }
        } else {
            tracing::warn!(
                cache = %layout.root.display(),
                "artifact cache is read-only: hits are served, nothing new is stored"
            );
        }
        #[cfg(feature = "compiler")]
        let host = {
            let target = evmc_compiler::host_target();
            if writable {
                host_profile::record(&layout, &target);
            }
            Some(target)
        };
        #[cfg(not(feature = "compiler"))]
        let host = host_profile::recorded(&layout);
        Ok(Self {
            layout,
            host,
            worker: None,
            limits: CompileLimits::default(),
            rejections: RejectionLog::default(),
            reported: Mutex::default(),
            read_only: AtomicBool::new(!writable),
            inflight: Mutex::default(),
            failed: Mutex::default(),
            #[cfg(feature = "store")]
            remote: None,
        })
    }

    /// Makes [`Self::get`] look up artefacts built for `target` (a named
    /// CPU, say) instead of this machine's own target.
    pub fn with_target(mut self, target: TargetSpec) -> Self {
        self.host = Some(target);
        self
    }

    /// The target [`Self::get`] looks up, if known.
    pub fn target(&self) -> Option<&TargetSpec> {
        self.host.as_ref()
    }

    /// Compiles in `worker` processes under `limits` instead of in-process.
    pub fn with_worker(mut self, worker: WorkerCommand, limits: CompileLimits) -> Self {
        self.worker = Some(worker);
        self.limits = limits;
        self
    }

    /// Limits for in-process compiles (only the size limit applies there).
    pub fn with_limits(mut self, limits: CompileLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The cache's root directory.
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }

    /// The limits compiles run under.
    pub fn limits(&self) -> &CompileLimits {
        &self.limits
    }

    /// The cache can be read but not written: lookups hit, compiles,
    /// quarantine and gc cannot store or move anything.
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    /// The error of a write refused by the file system: from now on the
    /// cache is read-only, which is announced once.
    fn write_refused(&self, e: CacheError) -> CacheError {
        let CacheError::Io { path, source } = &e else {
            return e;
        };
        if !store::is_read_only(source) {
            return e;
        }
        if !self.read_only.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                cache = %self.layout.root.display(),
                path = %path.display(),
                error = %source,
                "artifact cache became read-only: hits are served, nothing new is stored"
            );
        }
        self.read_only_error("new artifacts cannot be stored")
    }

    fn read_only_error(&self, what: &'static str) -> CacheError {
        CacheError::ReadOnly {
            path: self.layout.root.clone(),
            what,
        }
    }

    /// The key `get` looks up: default options at `opt_level`, the
    /// [`Self::target`], this compiler. `None` when the target is unknown.
    pub fn host_key(&self, code_hash: B256, spec: SpecId, opt_level: u8) -> Option<CacheKey> {
        let target = self.host.as_ref()?;
        Some(CacheKey::new(code_hash, spec, opt_level, target))
    }

    /// A valid entry, loaded; a corrupt/foreign one is moved aside (reason
    /// recorded) → `Ok(None)`. Errors only for trouble of the process
    /// itself (out of file descriptors or memory, no room for a private copy).
    pub fn get(
        &self,
        code_hash: B256,
        spec: SpecId,
        opt_level: u8,
    ) -> Result<Option<Arc<LoadedArtifact>>, CacheError> {
        match self.host_key(code_hash, spec, opt_level) {
            Some(key) => self.get_key(&key),
            None => Ok(None),
        }
    }

    /// [`Self::get`] for any key (e.g. artifacts built for another CPU).
    pub fn get_key(&self, key: &CacheKey) -> Result<Option<Arc<LoadedArtifact>>, CacheError> {
        let dir = self.layout.entry_dir(&key.digest_hex());
        let store::Entry {
            manifest,
            artifact,
            last_used,
        } = match self.layout.read_entry(&dir) {
            Ok(None) => return Ok(None),
            Ok(Some(e)) => e,
            Err(EntryError::Transient(e)) => return Err(e),
            Err(EntryError::Bad(reason)) => return Ok(self.reject(&dir, &reason)),
        };
        if &manifest.key != key {
            return Ok(self.reject(&dir, "manifest is for another key"));
        }
        // Checked after the entry was found: a miss costs no more.
        if let Some(reason) = self.layout.untrusted_dirs() {
            return Ok(self.refuse_in_place(&dir, reason));
        }
        if let Some(reason) = artifact.trust_problem() {
            let reason = format!("{ARTIFACT_FILE}: {reason}");
            return Ok(self.reject(&dir, &reason));
        }
        let path = dir.join(ARTIFACT_FILE);
        match load_entry(&manifest, artifact) {
            Ok(art) => {
                store::touch_unless_recent(&dir, last_used);
                Ok(Some(Arc::new(art)))
            }
            // The process is in trouble (no memory or descriptors, no room
            // for a private copy), not the entry.
            Err(LoadError::Io { path, source }) if store::is_transient(&source) => {
                Err(CacheError::Load(LoadError::Io { path, source }))
            }
            Err(e @ (LoadError::PrivateCopy { .. } | LoadError::Map { .. })) => {
                Err(CacheError::Load(e))
            }
            Err(e) => {
                let reason = e.to_string();
                let reason = reason
                    .strip_prefix(&format!("{}: ", path.display()))
                    .unwrap_or(&reason)
                    .to_string();
                Ok(self.reject(&dir, &reason))
            }
        }
    }

    /// Refuses the entry at `dir`: moved to quarantine, or left in place
    /// when the cache cannot be written.
    fn reject(&self, dir: &Path, reason: &str) -> Option<Arc<LoadedArtifact>> {
        if self.is_read_only() {
            return self.refuse_in_place(dir, reason.to_string());
        }
        let r = self.layout.quarantine(dir, reason);
        if r.moved_to.is_none() {
            return self.refuse_in_place(dir, reason.to_string());
        }
        self.rejections.push(r);
        None
    }

    /// Refuses the entry at `dir` without moving it; reported the first
    /// time only, as every lookup of it will refuse it again.
    fn refuse_in_place(&self, dir: &Path, reason: String) -> Option<Arc<LoadedArtifact>> {
        let new = self
            .reported
            .lock()
            .expect("not poisoned")
            .insert((dir.to_path_buf(), reason.clone()));
        if new {
            self.rejections.push(Rejection {
                entry: dir.to_path_buf(),
                reason,
                moved_to: None,
            });
        }
        None
    }

    /// Forgets the compile failures remembered so far (a timeout under a
    /// passing load spike, say), so those contracts are tried again.
    pub fn forget_failures(&self) {
        self.failed.lock().expect("not poisoned").clear();
    }

    /// Entries refused since the last call, with the reason and where they went.
    pub fn take_rejections(&self) -> Vec<Rejection> {
        self.rejections.take()
    }

    /// A handle on the refusals [`Self::take_rejections`] returns, to keep
    /// when the cache itself is handed over (to a compile backend, say).
    pub fn rejection_log(&self) -> RejectionLog {
        self.rejections.clone()
    }

    #[cfg(feature = "compiler")]
    /// Cache hit, or compile (worker or in-process) + atomic insert + load.
    pub fn get_or_compile(
        &self,
        code: &[u8],
        opts: &CompileOptions,
    ) -> Result<Arc<LoadedArtifact>, CacheError> {
        self.lookup_or_compile(code, opts).map(|(a, _)| a)
    }

    #[cfg(feature = "compiler")]
    /// [`Self::get_or_compile`], also saying where the artifact came from.
    pub fn lookup_or_compile(
        &self,
        code: &[u8],
        opts: &CompileOptions,
    ) -> Result<(Arc<LoadedArtifact>, Source), CacheError> {
        let key = CacheKey::for_compile(evmc_compiler::code_hash(code), opts);
        if let Some(a) = self.get_key(&key)? {
            return Ok((a, Source::Hit));
        }
        let digest = key.digest_hex();
        let gate = self
            .inflight
            .lock()
            .expect("not poisoned")
            .entry(digest.clone())
            .or_default()
            .clone();
        let _guard = gate.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.compile_locked(code, opts, &key, &digest);
        self.inflight.lock().expect("not poisoned").remove(&digest);
        result
    }

    #[cfg(feature = "compiler")]
    fn compile_locked(
        &self,
        code: &[u8],
        opts: &CompileOptions,
        key: &CacheKey,
        digest: &str,
    ) -> Result<(Arc<LoadedArtifact>, Source), CacheError> {
        // Another thread may have compiled it while we waited.
        if let Some(a) = self.get_key(key)? {
            return Ok((a, Source::Hit));
        }
        #[cfg(feature = "store")]
        if let Some(a) = self.fetch_remote(key)? {
            return Ok((a, Source::Fetched));
        }
        if let Some(f) = self.failed.lock().expect("not poisoned").get(digest) {
            return Err(CacheError::FailedBefore(f.clone()));
        }
        if self.is_read_only() {
            return Err(self.read_only_error("new artifacts cannot be stored"));
        }
        let build = self.layout.build_dir().map_err(|e| self.write_refused(e))?;
        let out = build.path().join(ARTIFACT_FILE);
        let compiled = match compile_to_path(code, opts, &out, self.worker.as_ref(), &self.limits) {
            Ok(c) => c,
            Err(f) => {
                if f.is_permanent() {
                    self.failed
                        .lock()
                        .expect("not poisoned")
                        .insert(digest.to_string(), f.clone());
                }
                return Err(f.into());
            }
        };
        let bytes = crate::loader::read_regular_file(&out, crate::loader::MAX_ARTIFACT_SIZE)?;
        let manifest = Manifest {
            key: key.clone(),
            format: key::LAYOUT_VERSION,
            artifact_blake3: manifest::blake3_hex(&bytes),
            artifact_xxh3: manifest::content_hash_hex(&bytes),
            artifact_size: bytes.len() as u64,
            code_size: code.len(),
            created_unix: store::now_unix(),
            compile_ms: compiled.compile_ms,
            effective_opt_level: compiled.effective_opt_level,
        };
        self.layout
            .publish(build, &manifest)
            .map_err(|e| self.write_refused(e))?;
        #[cfg(feature = "store")]
        self.publish_remote(&manifest, &bytes);
        let path = self.layout.entry_dir(digest).join(ARTIFACT_FILE);
        let source = crate::loader::Source::Bytes {
            path: &path,
            bytes: &bytes,
        };
        let art = Arc::new(entry_loader(&path, &manifest)?.load(source)?);
        Ok((art, Source::Compiled(compiled)))
    }

    /// Publishes an artifact compiled outside the cache (by
    /// `evmc_compiler::compile_to_file`) under `key`, as a compile through
    /// the cache would. Returns false when the key already had an entry
    /// (which stays). The artifact is checked only when it is looked up.
    pub fn insert(
        &self,
        key: &CacheKey,
        artifact: &Path,
        code_size: usize,
        compiled: &CompiledFile,
    ) -> Result<bool, CacheError> {
        let bytes = crate::loader::read_regular_file(artifact, crate::loader::MAX_ARTIFACT_SIZE)?;
        if self.is_read_only() {
            return Err(self.read_only_error("new artifacts cannot be stored"));
        }
        let build = self.layout.build_dir().map_err(|e| self.write_refused(e))?;
        let out = build.path().join(ARTIFACT_FILE);
        std::fs::write(&out, &bytes).map_err(|source| CacheError::Io {
            path: out.clone(),
            source,
        })?;
        let manifest = Manifest {
            key: key.clone(),
            format: key::LAYOUT_VERSION,
            artifact_blake3: manifest::blake3_hex(&bytes),
            artifact_xxh3: manifest::content_hash_hex(&bytes),
            artifact_size: bytes.len() as u64,
            code_size,
            created_unix: store::now_unix(),
            compile_ms: compiled.compile_ms,
            effective_opt_level: compiled.effective_opt_level,
        };
        let published = self
            .layout
            .publish(build, &manifest)
            .map_err(|e| self.write_refused(e))?;
        #[cfg(feature = "store")]
        self.publish_remote(&manifest, &bytes);
        Ok(published)
    }

    /// Every entry with its manifest, size and last use (no hashing).
    pub fn ls(&self) -> Result<Vec<EntryInfo>, CacheError> {
        gc::ls(&self.layout)
    }

    /// Checks every entry as a lookup would (who can change it, content
    /// hash, ELF checks, metadata; without loading) and moves bad ones
    /// aside; in a read-only cache only reports them.
    pub fn verify(&self) -> Result<VerifyReport, CacheError> {
        gc::verify(&self.layout, !self.is_read_only())
    }

    /// Removes stale temporary files and quarantined entries, then the
    /// least recently used entries until the cache is at most `max_size`
    /// bytes. A read-only cache is [`CacheError::ReadOnly`].
    pub fn gc(&self, max_size: Option<u64>) -> Result<GcReport, CacheError> {
        self.gc_with(GcOptions {
            max_size,
            other_builds: false,
        })
    }

    /// [`Self::gc`], and with [`GcOptions::other_builds`] first every
    /// entry another compiler build made (after an upgrade, all of the
    /// old binary's entries: they are never looked up again).
    pub fn gc_with(&self, opts: GcOptions) -> Result<GcReport, CacheError> {
        if self.is_read_only() {
            return Err(self.read_only_error("gc cannot remove anything"));
        }
        gc::gc(&self.layout, opts)
    }
}

/// The loader for an entry: the caller's expectations (the key's code
/// hash and spec) and everything its manifest pins.
fn entry_loader<'m>(path: &Path, m: &'m Manifest) -> Result<Loader<'m>, LoadError> {
    let invalid = |reason: &str| LoadError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let content_hash = manifest::parse_content_hash(&m.artifact_xxh3)
        .ok_or_else(|| invalid("manifest has a malformed content hash"))?;
    if m.key.interface_version != evmc_interface::INTERFACE_VERSION {
        return Err(LoadError::Mismatch {
            path: path.to_path_buf(),
            what: "interface version",
            found: m.key.interface_version.to_string(),
            expected: evmc_interface::INTERFACE_VERSION.to_string(),
        });
    }
    let expect = Expect {
        code_hash: m.key.code_hash,
        spec: m.key.spec.clone(),
    };
    Ok(Loader::new(expect).pinned(Pinned {
        content_hash,
        size: m.artifact_size,
        opt_level: m.key.opt_level,
        compiler_version: &m.key.compiler_version,
        target_cpu: &m.key.target_cpu,
        cpu_features: &m.key.cpu_features,
    }))
}

/// Loads the opened artifact file of an entry: read, hashed and checked
/// through its descriptor, loaded in place when it may be.
fn load_entry(m: &Manifest, file: OpenedArtifact) -> Result<LoadedArtifact, LoadError> {
    entry_loader(file.path(), m)?.load(file)
}

/// Every check [`load_entry`] makes, without loading.
fn validate_entry(m: &Manifest, file: OpenedArtifact) -> Result<(), LoadError> {
    entry_loader(file.path(), m)?.validate(file).map(|_| ())
}
