//! Where `run` and `statetest` put the contracts they compile: by default
//! a private temporary directory, compiled in this process, as before; with
//! `--cache-dir DIR` (or `$EVMC_NATIVE_CACHE`) the artefact cache, so that
//! what one run compiled the next one loads, and what `compile` or the
//! sequencer put there is used.
//!
//! Compiles into the cache stay in this process, as without it: these
//! commands compile thousands of small contracts, where a worker process
//! per contract would cost more than the compile (`compile` and the
//! sequencer, which take untrusted input at scale, use workers).

use crate::Failure;
use anyhow::anyhow;
use evmc_compiler::{CompileError, CompileOptions, SpecId};
use evmc_runtime::cache::Source;
use evmc_runtime::{ArtifactCache, CacheError, CompileLimits, LoadedArtifact};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Help text of the `--cache-dir` flag of `run`, `statetest` and `bench`.
pub(crate) const CACHE_DIR_HELP: &str = "Artifact cache to load compiled contracts from and \
     store new ones in [default: none: compile into a temporary directory removed at the end]";

/// Why a contract runs interpreted.
pub(crate) enum NotNative {
    /// Above the compile size limit: interpreted by design.
    TooLarge(String),
    /// A compile or load failure.
    Failed(String),
}

/// Where compiled contracts go and come from.
pub(crate) struct Artifacts {
    /// Plain files: `statetest --artifacts-dir`, or a temporary directory
    /// (also where a read-only cache's misses are compiled).
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    cache: Option<ArtifactCache>,
    /// The cache refused a write: said once, not per contract.
    read_only_said: AtomicBool,
}

impl Artifacts {
    /// The cache at `cache_dir`, else a temporary directory.
    pub(crate) fn open(cache_dir: Option<&Path>) -> Result<Self, Failure> {
        let t = tempfile::tempdir()
            .map_err(|e| Failure::Internal(anyhow!("temporary directory: {e}")))?;
        let cache = match cache_dir {
            Some(d) => Some(
                ArtifactCache::open(d)
                    .map_err(|e| Failure::Failed(anyhow!(e)))?
                    .with_limits(CompileLimits::default()),
            ),
            None => None,
        };
        Ok(Self {
            dir: t.path().to_path_buf(),
            _temp: Some(t),
            cache,
            read_only_said: AtomicBool::new(false),
        })
    }

    /// Plain `.so` files in `dir`, kept after the run.
    pub(crate) fn in_dir(dir: PathBuf) -> Self {
        Self {
            dir,
            _temp: None,
            cache: None,
            read_only_said: AtomicBool::new(false),
        }
    }

    /// `code` compiled for `spec` at `opt_level` (default options
    /// otherwise) and loaded: a cache hit, or compiled now.
    pub(crate) fn native(
        &self,
        code: &[u8],
        spec: SpecId,
        opt_level: u8,
    ) -> Result<Arc<LoadedArtifact>, NotNative> {
        if let Some(cache) = &self.cache {
            let mut opts = CompileOptions::new(spec);
            opts.opt_level = opt_level;
            match cache.lookup_or_compile(code, &opts) {
                Ok((a, source)) => {
                    let how = match source {
                        Source::Hit => "loaded from",
                        Source::Fetched => "fetched into",
                        Source::Compiled(_) => "compiled into",
                    };
                    tracing::info!(
                        "contract {:#x} for {}: {how} the artifact cache",
                        a.code_hash(),
                        a.spec()
                    );
                    return Ok(a);
                }
                Err(e) if e.is_too_large() => return Err(NotNative::TooLarge(e.to_string())),
                // Hits are served; a miss is compiled as without a cache.
                Err(e @ CacheError::ReadOnly { .. }) => {
                    if !self.read_only_said.swap(true, Ordering::Relaxed) {
                        tracing::warn!("{e}; compiling misses into a temporary directory");
                    }
                }
                Err(e) => return Err(NotNative::Failed(e.to_string())),
            }
        }
        evmc_runtime::compile_and_load(code, spec, opt_level, &self.dir).map_err(|e| match e {
            evmc_runtime::Error::Compile(e @ CompileError::TooLarge { .. }) => {
                NotNative::TooLarge(e.to_string())
            }
            e => NotNative::Failed(e.to_string()),
        })
    }

    /// Entries the cache refused (moved to quarantine, recompiled), on
    /// stderr.
    pub(crate) fn warn_rejections(&self) {
        if let Some(cache) = &self.cache {
            crate::cmd_cache::warn_rejections(&cache.take_rejections());
        }
    }
}
