//! Native artefacts for the benchmarks: each distinct contract compiled once
//! per run through the real path (object, `cc -shared`, validating loader),
//! with its compile phases, artefact size and cache-hit load time: the
//! artefact is also published into a private [`ArtifactCache`] and looked up
//! there, through the path the sequencer takes on a hit.

use crate::discover::Case;
use evmc_compiler::{CompileError, CompileOptions, SpecId, Timings, B256};
use evmc_runtime::cache::{ArtifactCache, CacheKey, CompiledFile, Manifest};
use evmc_runtime::loader::{Expect, Loader, Source};
use evmc_runtime::{LoadedArtifact, Registry};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One contract of the run.
pub struct Contract {
    pub code_hash: B256,
    pub code_len: usize,
    pub spec: SpecId,
    pub outcome: Result<Compiled, NotCompiled>,
}

pub struct Compiled {
    pub artifact: Arc<LoadedArtifact>,
    pub path: PathBuf,
    /// Size of the `.so` file.
    pub size: u64,
    pub timings: Timings,
    /// Wall time of the whole compile, file writes included.
    pub wall: Duration,
    /// Median of repeated cache hits, [`ArtifactCache::get`]: read and check
    /// the manifest, read the artifact and check its size and content hash,
    /// validate it, map it, find its symbols. What a user waits for.
    pub load: Duration,
    /// Median of repeated [`evmc_runtime::Loader::load`]s of the plain file: the
    /// same without the manifest and content hash.
    pub file_load: Duration,
    /// The part of `file_load` that reads and validates the file (median).
    pub validate: Duration,
    /// Taken from [`CompileSettings::cache_dir`], not compiled in this
    /// run: `wall` is the compile time its manifest records, `timings`
    /// has only its optimisation level.
    pub cached: bool,
}

#[derive(Clone, Debug)]
pub enum NotCompiled {
    /// Above the compile limit: stays interpreted, by design.
    TooLarge(String),
    /// Too short for compiled code to pay its entries
    /// (`evmc_compiler::analysis::too_short`): stays interpreted, by design.
    TooShort(String),
    /// A compile or load failure: a bug to report.
    Failed(String),
}

impl std::fmt::Display for NotCompiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotCompiled::TooLarge(e) | NotCompiled::TooShort(e) => {
                write!(f, "stays interpreted: {e}")
            }
            NotCompiled::Failed(e) => write!(f, "compile failed: {e}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CompileSettings {
    pub opt_level: u8,
    pub max_code_size: usize,
    /// See `evmc_compiler::CompileOptions::opt_budget`.
    pub opt_budget: usize,
    /// Loads timed per contract for the cache-hit load median.
    pub load_reps: usize,
    /// An artefact cache to take compiled contracts from and publish new
    /// ones into (default: a private one, removed at the end).
    pub cache_dir: Option<PathBuf>,
    /// Contracts that run fewer instructions than this per entry into
    /// compiled code (loop-free, or looping only through CALL/CREATE) stay
    /// interpreted, as where a node picks contracts
    /// to compile
    /// (`evmc_compiler::analysis::MIN_NATIVE_RUN`); 0 compiles every one.
    pub min_native_run: usize,
    /// Time native runs with the safety net on (see
    /// `evmc_runtime::safety_net`): what a node gets. Correctness checks
    /// always run every compiled frame natively.
    pub safety_net: bool,
}

impl Default for CompileSettings {
    fn default() -> Self {
        Self {
            opt_level: 2,
            max_code_size: evmc_compiler::DEFAULT_MAX_CODE_SIZE,
            opt_budget: evmc_compiler::DEFAULT_OPT_BUDGET,
            load_reps: 15,
            min_native_run: evmc_compiler::analysis::MIN_NATIVE_RUN,
            cache_dir: None,
            safety_net: true,
        }
    }
}

/// Compiles on demand, each (code hash, spec) once.
pub struct Compiler {
    settings: CompileSettings,
    dir: tempfile::TempDir,
    /// Every artefact is also published here, to time real cache hits.
    cache: ArtifactCache,
    done: HashMap<(B256, SpecId), Arc<Contract>>,
}

impl Compiler {
    pub fn new(settings: CompileSettings) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("evmc-bench-")
            .tempdir()
            .map_err(|e| format!("temporary directory for artefacts: {e}"))?;
        let cache_dir = match &settings.cache_dir {
            Some(d) => d.clone(),
            None => dir.path().join("cache"),
        };
        let cache = ArtifactCache::open(&cache_dir)
            .map_err(|e| format!("artefact cache for the load times: {e}"))?;
        Ok(Self {
            settings,
            dir,
            cache,
            done: HashMap::new(),
        })
    }

    /// The contract for `code` under `spec`, compiled and loaded on first use.
    pub fn contract(&mut self, code: &[u8], spec: SpecId) -> Arc<Contract> {
        let key = (evmc_compiler::code_hash(code), spec);
        if let Some(c) = self.done.get(&key) {
            return c.clone();
        }
        let contract = Arc::new(Contract {
            code_hash: key.0,
            code_len: code.len(),
            spec,
            outcome: self.compile(code, spec, key.0),
        });
        self.done.insert(key, contract.clone());
        contract
    }

    /// Compiles every contract of `cases` now, on `jobs` threads, largest
    /// first. With more than one job, contracts compiled at the same time
    /// slow each other down: their phase and load times are less exact.
    pub fn compile_all(&mut self, cases: &[Case], jobs: usize) {
        let mut seen = HashSet::new();
        let mut todo: Vec<(B256, SpecId, Vec<u8>)> = Vec::new();
        for case in cases {
            let spec = case.spec();
            for code in case.codes() {
                let hash = evmc_compiler::code_hash(&code);
                if !self.done.contains_key(&(hash, spec)) && seen.insert((hash, spec)) {
                    todo.push((hash, spec, code));
                }
            }
        }
        todo.sort_by_key(|(_, _, code)| std::cmp::Reverse(code.len()));
        let next = AtomicUsize::new(0);
        let finished = Mutex::new(Vec::with_capacity(todo.len()));
        let this = &*self;
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, todo.len().max(1)) {
                s.spawn(|| {
                    while let Some((hash, spec, code)) =
                        todo.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let contract = Contract {
                            code_hash: *hash,
                            code_len: code.len(),
                            spec: *spec,
                            outcome: this.compile(code, *spec, *hash),
                        };
                        finished
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(contract);
                    }
                });
            }
        });
        for c in finished.into_inner().unwrap_or_else(|e| e.into_inner()) {
            self.done.insert((c.code_hash, c.spec), Arc::new(c));
        }
    }

    /// The contracts of `case`, and a registry of those that compiled.
    pub fn prepare(&mut self, case: &Case) -> (Vec<Arc<Contract>>, Arc<Registry>) {
        let spec = case.spec();
        let contracts: Vec<Arc<Contract>> = case
            .codes()
            .iter()
            .map(|c| self.contract(c, spec))
            .collect();
        let registry = Registry::new();
        registry.set_safety_net(self.settings.safety_net);
        for c in &contracts {
            if let Ok(a) = &c.outcome {
                // Compiled for `spec` just above.
                let _ = registry.register(spec, a.artifact.clone());
            }
        }
        (contracts, registry)
    }

    /// Every contract compiled so far.
    pub fn contracts(&self) -> impl Iterator<Item = &Arc<Contract>> {
        self.done.values()
    }

    fn compile(&self, code: &[u8], spec: SpecId, hash: B256) -> Result<Compiled, NotCompiled> {
        if let Some(run) = evmc_compiler::analysis::too_short(code, self.settings.min_native_run) {
            return Err(NotCompiled::TooShort(format!(
                "{} (--min-native-run {})",
                evmc_compiler::analysis::too_short_why(run),
                self.settings.min_native_run
            )));
        }
        let mut opts = CompileOptions::new(spec);
        opts.opt_level = self.settings.opt_level;
        opts.max_code_size = self.settings.max_code_size;
        opts.opt_budget = self.settings.opt_budget;
        let spec_name = evmc_compiler::spec_name(spec);
        let path = self.dir.path().join(format!(
            "{hash:x}-{spec_name}-O{}.so",
            self.settings.opt_level
        ));
        let key = CacheKey::for_compile(hash, &opts);
        let cached = match self.settings.cache_dir {
            Some(_) => self.cached(&key, &path)?,
            None => None,
        };
        let is_cached = cached.is_some();
        let (size, timings, wall) = match cached {
            Some(c) => c,
            None => self.compile_and_publish(code, &opts, &key, &path)?,
        };
        let loader = Loader::new(Expect {
            code_hash: hash,
            spec: spec_name.to_string(),
        });
        // The copy that runs is loaded from its bytes (a private copy), so
        // that neither the file nor the cache entry timed below is loaded
        // already (the loader would then load a private copy of it too).
        let loaded = std::fs::read(&path)
            .map_err(|e| NotCompiled::Failed(format!("{}: {e}", path.display())))
            .and_then(|b| {
                let source = Source::Bytes {
                    path: &path,
                    bytes: &b,
                };
                loader
                    .load(source)
                    .map_err(|e| NotCompiled::Failed(e.to_string()))
            })?;
        let hit = || -> Result<Arc<LoadedArtifact>, NotCompiled> {
            match self.cache.get_key(&key) {
                Ok(Some(a)) => Ok(a),
                Ok(None) => Err(NotCompiled::Failed(format!(
                    "cache miss right after publishing: {:?}",
                    self.cache.take_rejections()
                ))),
                Err(e) => Err(NotCompiled::Failed(format!("cache lookup: {e}"))),
            }
        };
        drop(hit()?);
        let reps = self.settings.load_reps;
        let (mut hits, mut loads, mut validations) = (
            Vec::with_capacity(reps),
            Vec::with_capacity(reps),
            Vec::with_capacity(reps),
        );
        for _ in 0..reps {
            let start = Instant::now();
            let again = hit();
            hits.push(start.elapsed());
            drop(again?);
            let start = Instant::now();
            let again = loader.load(&path);
            loads.push(start.elapsed());
            drop(again);
            let start = Instant::now();
            let checked = std::fs::read(&path).map(|b| {
                let source = Source::Bytes {
                    path: &path,
                    bytes: &b,
                };
                loader.validate(source).is_ok()
            });
            validations.push(start.elapsed());
            std::hint::black_box(checked.ok());
        }
        Ok(Compiled {
            artifact: Arc::new(loaded),
            path,
            size,
            timings,
            wall,
            load: crate::measure::median(&hits),
            file_load: crate::measure::median(&loads),
            validate: crate::measure::median(&validations),
            cached: is_cached,
        })
    }

    /// The artefact of `key` from the cache the user named, copied to
    /// `path` for the plain-file load times: its size and what its
    /// manifest says of its compile; `None` on a miss.
    fn cached(
        &self,
        key: &CacheKey,
        path: &Path,
    ) -> Result<Option<(u64, Timings, Duration)>, NotCompiled> {
        match self.cache.get_key(key) {
            Ok(Some(_)) => {}
            // A refused entry was moved aside: compiled again.
            Ok(None) => return Ok(None),
            Err(e) => return Err(NotCompiled::Failed(format!("cache lookup: {e}"))),
        }
        // The documented entry layout: entries/<key digest>/.
        let entry = self.cache.dir().join("entries").join(key.digest_hex());
        let failed = |e: String| NotCompiled::Failed(format!("{}: {e}", entry.display()));
        let manifest = std::fs::read(entry.join("manifest.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| Manifest::from_json(&b))
            .map_err(failed)?;
        std::fs::copy(entry.join("artifact.so"), path).map_err(|e| failed(e.to_string()))?;
        let timings = Timings {
            opt_level: manifest.effective_opt_level,
            ..Timings::default()
        };
        let wall = Duration::from_secs_f64(manifest.compile_ms.max(0.0) / 1e3);
        Ok(Some((manifest.artifact_size, timings, wall)))
    }

    /// Compiles to `path` (timed) and publishes the artefact under `key`.
    fn compile_and_publish(
        &self,
        code: &[u8],
        opts: &CompileOptions,
        key: &CacheKey,
        path: &Path,
    ) -> Result<(u64, Timings, Duration), NotCompiled> {
        let start = Instant::now();
        let timeout = evmc_runtime::compile_worker::DEFAULT_COMPILE_TIMEOUT;
        let artifact = evmc_runtime::compile_worker::compile_on_thread(code, opts, path, timeout)
            .map_err(|e| NotCompiled::Failed(e.to_string()))?
            .map_err(|e| match e {
                e @ CompileError::TooLarge { .. } => NotCompiled::TooLarge(e.to_string()),
                e => NotCompiled::Failed(e.to_string()),
            })?;
        let wall = start.elapsed();
        let published = CompiledFile {
            size: artifact.size,
            compile_ms: wall.as_secs_f64() * 1e3,
            effective_opt_level: artifact.timings.opt_level,
            ir_instructions: artifact.timings.ir_instructions,
        };
        self.cache
            .insert(key, path, code.len(), &published)
            .map_err(|e| NotCompiled::Failed(format!("cannot publish into the cache: {e}")))?;
        Ok((artifact.size, artifact.timings, wall))
    }
}
