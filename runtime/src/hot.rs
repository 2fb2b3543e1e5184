//! Hot-contract detection and background compilation.
//!
//! [`HotCounters`] accumulate gas and calls per code hash. Each EVM keeps its
//! own [`FrameTally`] (no lock per frame) and flushes it into the shared,
//! sharded counters at transaction boundaries; a code hash whose totals
//! cross the configured threshold is queued as newly hot exactly once.
//! [`HotCompiler`] compiles queued contracts on a bounded set of background
//! threads through a pluggable [`CompileBackend`] and registers the result,
//! so that EVMs pick it up at their next transaction boundary. Failures go to
//! a negative list with the reason; those contracts stay interpreted.
//!
//! Dropping a [`HotCompiler`] cancels what is still queued and kills compile
//! worker processes that are running (through
//! [`with_cancel_flag`]); it waits
//! at most [`SHUTDOWN_WAIT`] for its threads, and leaves behind any still
//! inside an in-process compile, which cannot be interrupted.

use crate::compile_worker::with_cancel_flag;
use crate::loader::LoadedArtifact;
use crate::metrics::{InterpretReason, Metrics};
use crate::registry::{PrefixHasher, Registry};
use evmc_compiler::{SpecId, B256};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type HashKeyed<V> = HashMap<B256, V, BuildHasherDefault<PrefixHasher>>;

/// Gas spent in a contract's own frames (children excluded) and frames run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeStats {
    /// Gas (own frames, children excluded).
    pub gas: u64,
    /// Frames run.
    pub calls: u64,
}

/// When a contract counts as hot: either total reached.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Gas (own frames, children excluded).
    pub gas: u64,
    /// Frames run.
    pub calls: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            gas: 5_000_000,
            calls: u64::MAX,
        }
    }
}

const SHARDS: usize = 16;

/// Totals per code hash, shared by every EVM of a process.
pub struct HotCounters {
    shards: [Mutex<HashKeyed<CodeStats>>; SHARDS],
    /// When profiling (see [`HotCounters::with_profiles`]): per code hash,
    /// a bitmap of the pcs interpreted frames ran.
    ran: Option<Mutex<HashKeyed<Vec<u64>>>>,
    thresholds: Thresholds,
    newly_hot: Mutex<Vec<B256>>,
    /// Lets [`HotCounters::take_newly_hot`] return without locking when
    /// nothing crossed the threshold.
    has_new: AtomicBool,
}

impl std::fmt::Debug for HotCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCounters")
            .field("thresholds", &self.thresholds)
            .finish()
    }
}

impl HotCounters {
    /// Empty counters with these thresholds.
    pub fn new(thresholds: Thresholds) -> Arc<Self> {
        Self::build(thresholds, false)
    }

    fn build(thresholds: Thresholds, profiles: bool) -> Arc<Self> {
        Arc::new(Self {
            shards: Default::default(),
            ran: profiles.then(Mutex::default),
            thresholds,
            newly_hot: Mutex::new(Vec::new()),
            has_new: AtomicBool::new(false),
        })
    }

    /// Counters that also record which pcs interpreted frames run, per
    /// code hash ([`HotCounters::ran`]): what a compile of only the code
    /// that ran needs (`evmc_compiler::profile`). Every interpreted frame
    /// then runs a stepping loop that marks each pc, slower than the
    /// interpreter's own.
    pub fn with_profiles(thresholds: Thresholds) -> Arc<Self> {
        Self::build(thresholds, true)
    }

    /// Whether these counters record the pcs that run.
    pub fn profiling(&self) -> bool {
        self.ran.is_some()
    }

    /// The pcs interpreted frames of the code with hash `hash` ran, when
    /// profiling and any ran.
    pub fn ran(&self, hash: B256) -> Option<evmc_compiler::RanPcs> {
        let ran = self.ran.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        ran.get(&hash)
            .map(|words| evmc_compiler::RanPcs::from_bitmap(words))
    }

    fn merge_ran(&self, local: &mut HashKeyed<Vec<u64>>) {
        let Some(ran) = &self.ran else {
            return;
        };
        let mut ran = ran.lock().unwrap_or_else(|e| e.into_inner());
        for (hash, words) in local.drain() {
            let all = ran.entry(hash).or_default();
            if all.len() < words.len() {
                all.resize(words.len(), 0);
            }
            all.iter_mut().zip(&words).for_each(|(a, w)| *a |= w);
        }
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    fn shard(&self, hash: &B256) -> &Mutex<HashKeyed<CodeStats>> {
        &self.shards[hash[0] as usize % SHARDS]
    }

    /// Adds to the totals of `hash`.
    pub fn add(&self, hash: B256, delta: CodeStats) {
        let crossed = {
            let mut shard = self.shard(&hash).lock().unwrap_or_else(|e| e.into_inner());
            let s = shard.entry(hash).or_default();
            let was_hot = self.is_hot(s);
            s.gas = s.gas.saturating_add(delta.gas);
            s.calls = s.calls.saturating_add(delta.calls);
            !was_hot && self.is_hot(s)
        };
        if crossed {
            self.newly_hot
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(hash);
            self.has_new.store(true, Ordering::Release);
        }
    }

    fn is_hot(&self, s: &CodeStats) -> bool {
        s.gas >= self.thresholds.gas || s.calls >= self.thresholds.calls
    }

    /// Code hashes that became hot since the last call, in crossing order.
    pub fn take_newly_hot(&self) -> Vec<B256> {
        if !self.has_new.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.newly_hot.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The totals of the contract with code hash `hash`.
    pub fn get(&self, hash: B256) -> CodeStats {
        self.shard(&hash)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .copied()
            .unwrap_or_default()
    }

    /// Every code hash seen, most gas first.
    pub fn snapshot(&self) -> Vec<(B256, CodeStats)> {
        let mut all: Vec<_> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.iter().map(|(h, c)| (*h, *c)).collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| b.1.gas.cmp(&a.1.gas).then(a.0.cmp(&b.0)));
        all
    }
}

/// One EVM's frame counts since its last flush. A frame's inclusive gas
/// contains what it forwarded to its children; the children's inclusive gas
/// is subtracted so each contract is charged for its own work only.
pub struct FrameTally {
    counters: Arc<HotCounters>,
    local: HashKeyed<CodeStats>,
    /// The pcs run since the last flush, when the counters profile.
    ran: Option<HashKeyed<Vec<u64>>>,
    /// Inclusive gas of finished frames per depth, not yet taken by their
    /// parent.
    child_gas: Vec<u64>,
}

impl FrameTally {
    /// A tally for one transaction, adding up into `counters`.
    pub fn new(counters: Arc<HotCounters>) -> Self {
        Self {
            ran: counters.profiling().then(HashKeyed::default),
            counters,
            local: HashKeyed::default(),
            child_gas: Vec::new(),
        }
    }

    /// Where an interpreted frame of `hash` marks the pcs it runs (bit
    /// `pc % 64` of word `pc / 64`), when profiling.
    #[inline]
    pub fn ran_bitmap(&mut self, hash: Option<B256>) -> Option<&mut Vec<u64>> {
        Some(self.ran.as_mut()?.entry(hash?).or_default())
    }

    /// A frame at `depth` finished having spent `spent` gas including its
    /// children. Frames without a code hash (init code) pass their gas on
    /// to no one but still take their children's.
    #[inline]
    pub fn frame_finished(&mut self, hash: Option<B256>, depth: usize, spent: u64) {
        if self.child_gas.len() < depth + 2 {
            self.child_gas.resize(depth + 2, 0);
        }
        let children = std::mem::take(&mut self.child_gas[depth + 1]);
        self.child_gas[depth] += spent;
        if let Some(hash) = hash {
            let s = self.local.entry(hash).or_default();
            s.gas += spent.saturating_sub(children);
            s.calls += 1;
        }
    }

    /// Moves the local counts into the shared counters.
    pub fn flush(&mut self) {
        self.child_gas.iter_mut().for_each(|g| *g = 0);
        for (hash, delta) in self.local.drain() {
            self.counters.add(hash, delta);
        }
        if let Some(ran) = &mut self.ran {
            self.counters.merge_ran(ran);
        }
    }
}

/// Where compiled artifacts come from: a cache lookup, or a compile.
pub trait CompileBackend: Send + Sync {
    /// An artifact already available (a cache hit), without compiling.
    fn lookup(&self, code_hash: B256, spec: SpecId) -> Option<Arc<LoadedArtifact>>;
    /// Compiles `code` for `spec` and loads it.
    fn compile(&self, code: &[u8], spec: SpecId) -> Result<Arc<LoadedArtifact>, String>;
    /// The artefact of only the blocks of `code` whose first pc is in
    /// `ran` (`evmc_compiler::profile`), compiled unless the backend has
    /// it; with whether it had it. A backend without profiles compiles the
    /// whole contract (the results are the same).
    fn compile_ran(
        &self,
        code: &[u8],
        spec: SpecId,
        ran: &evmc_compiler::RanPcs,
    ) -> Result<(Arc<LoadedArtifact>, bool), String> {
        let _ = ran;
        lookup_or_compile(self, code, spec)
    }
}

/// The whole contract's artefact from `backend`: its own, else a compile
/// now; with whether it was its own.
pub(crate) fn lookup_or_compile<B: CompileBackend + ?Sized>(
    backend: &B,
    code: &[u8],
    spec: SpecId,
) -> Result<(Arc<LoadedArtifact>, bool), String> {
    match backend.lookup(evmc_compiler::code_hash(code), spec) {
        Some(art) => Ok((art, true)),
        None => Ok((backend.compile(code, spec)?, false)),
    }
}

/// The on-disk artifact cache as a compile backend: a restart finds what
/// an earlier run compiled, and compiles run wherever the cache runs them
/// (a capped worker process when it has one).
#[cfg(feature = "compiler")]
pub struct CacheBackend {
    cache: crate::ArtifactCache,
    opt_level: u8,
}

#[cfg(feature = "compiler")]
impl CacheBackend {
    /// Looks up and compiles through `cache` at `opt_level`.
    pub fn new(cache: crate::ArtifactCache, opt_level: u8) -> Self {
        Self { cache, opt_level }
    }

    /// The cache it looks up and compiles through.
    pub fn cache(&self) -> &crate::ArtifactCache {
        &self.cache
    }

    /// The optimisation level it looks up and compiles at.
    pub fn opt_level(&self) -> u8 {
        self.opt_level
    }
}

#[cfg(feature = "compiler")]
impl CompileBackend for CacheBackend {
    fn lookup(&self, code_hash: B256, spec: SpecId) -> Option<Arc<LoadedArtifact>> {
        self.cache
            .get(code_hash, spec, self.opt_level)
            .ok()
            .flatten()
    }
    fn compile(&self, code: &[u8], spec: SpecId) -> Result<Arc<LoadedArtifact>, String> {
        let mut opts = evmc_compiler::CompileOptions::new(spec);
        opts.opt_level = self.opt_level;
        self.cache
            .get_or_compile(code, &opts)
            .map_err(|e| e.to_string())
    }

    fn compile_ran(
        &self,
        code: &[u8],
        spec: SpecId,
        ran: &evmc_compiler::RanPcs,
    ) -> Result<(Arc<LoadedArtifact>, bool), String> {
        let (art, source) = self.ran_artifact(code, spec, ran)?;
        Ok((art, !matches!(source, crate::cache::Source::Compiled(_))))
    }
}

#[cfg(feature = "compiler")]
impl CacheBackend {
    /// The artefact of the blocks of `code` that `ran` names, at this
    /// backend's level, and where it came from: the cache, the cache's
    /// store, or a compile now.
    pub fn ran_artifact(
        &self,
        code: &[u8],
        spec: SpecId,
        ran: &evmc_compiler::RanPcs,
    ) -> Result<(Arc<LoadedArtifact>, crate::cache::Source), String> {
        let mut opts = evmc_compiler::CompileOptions::new(spec);
        opts.opt_level = self.opt_level;
        opts.ran = Some(Arc::new(ran.clone()));
        self.cache
            .lookup_or_compile(code, &opts)
            .map_err(|e| e.to_string())
    }
}

/// Compiles in this process into a temporary directory; remembers what it
/// compiled for later lookups.
#[cfg(feature = "compiler")]
pub struct InProcessBackend {
    dir: tempfile::TempDir,
    opt_level: u8,
    done: Mutex<HashMap<(B256, SpecId), Arc<LoadedArtifact>>>,
}

#[cfg(feature = "compiler")]
impl InProcessBackend {
    /// Compiles in this process at `opt_level` into a private temporary
    /// directory.
    pub fn new(opt_level: u8) -> std::io::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
            opt_level,
            done: Mutex::new(HashMap::new()),
        })
    }
}

#[cfg(feature = "compiler")]
impl CompileBackend for InProcessBackend {
    fn lookup(&self, code_hash: B256, spec: SpecId) -> Option<Arc<LoadedArtifact>> {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(code_hash, spec))
            .cloned()
    }

    fn compile(&self, code: &[u8], spec: SpecId) -> Result<Arc<LoadedArtifact>, String> {
        let art = crate::compile_and_load(code, spec, self.opt_level, self.dir.path())
            .map_err(|e| e.to_string())?;
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((art.code_hash(), spec), art.clone());
        Ok(art)
    }
}

/// How a [`HotCompiler`] compiles.
#[derive(Clone, Debug)]
pub struct CompilerConfig {
    /// The spec contracts are compiled for.
    pub spec: SpecId,
    /// Background compile threads.
    pub workers: usize,
    /// Larger contracts are not compiled.
    pub max_code_size: usize,
    /// Contracts that run fewer instructions than this per entry into
    /// compiled code (the frame's start and each resume after a CALL or
    /// CREATE; loop-free, or looping only through CALL/CREATE) are not
    /// compiled: their compiled code could only be
    /// slower (see `evmc_compiler::analysis::too_short`). 0 compiles every
    /// contract.
    pub min_native_run: usize,
    /// A compile taking longer is recorded as an overrun. In-process
    /// compiles cannot be stopped, so the artifact is still used; a
    /// process-isolated backend can enforce the cap.
    pub time_cap: Duration,
}

impl CompilerConfig {
    /// One worker, the default size limit, a 60 s time cap.
    pub fn new(spec: SpecId) -> Self {
        Self {
            spec,
            workers: 1,
            max_code_size: evmc_compiler::DEFAULT_MAX_CODE_SIZE,
            min_native_run: evmc_compiler::analysis::MIN_NATIVE_RUN,
            time_cap: Duration::from_secs(60),
        }
    }
}

/// What happened to one submitted contract.
#[derive(Clone, Debug, PartialEq)]
pub enum CompileState {
    /// Waiting for a compile thread.
    Queued,
    /// Registered. `cached` when it came from the backend's lookup.
    Ready {
        /// Time from submission to registration.
        time: Duration,
        /// Found by the backend's lookup, not compiled.
        cached: bool,
        /// The compile took longer than [`CompilerConfig::time_cap`].
        overran: bool,
    },
    /// On the negative list; stays interpreted.
    Failed(String),
}

/// Longest a dropped [`HotCompiler`] waits for its threads to finish.
pub const SHUTDOWN_WAIT: Duration = Duration::from_millis(500);

/// Failure reason of jobs abandoned at shutdown.
const CANCELLED: &str = "cancelled at shutdown";

struct Shared {
    backend: Arc<dyn CompileBackend>,
    registry: Arc<Registry>,
    /// Set when the compiler is dropped: queued jobs are skipped, running
    /// worker processes killed, late results not registered.
    cancelled: Arc<AtomicBool>,
    config: CompilerConfig,
    states: Mutex<HashMap<B256, (usize, CompileState)>>,
    /// Signalled whenever a job leaves the queued state.
    settled: Condvar,
    /// Bumped with every state change; lets callers poll cheaply.
    generation: AtomicU64,
}

impl Shared {
    fn metrics(&self) -> &Metrics {
        self.registry.metrics()
    }

    /// `hash` is not compiled, for `reason` (counted with its frames) and
    /// `why` (its state).
    fn stays_interpreted(&self, hash: B256, reason: InterpretReason, why: String) {
        self.registry
            .mark_interpreted(hash, self.config.spec, reason);
        self.set(hash, CompileState::Failed(why));
    }

    fn set(&self, hash: B256, state: CompileState) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = states.get_mut(&hash) {
            e.1 = state;
        }
        self.generation.fetch_add(1, Ordering::Release);
        self.settled.notify_all();
    }
}

struct Job {
    hash: B256,
    code: Vec<u8>,
}

/// Background compilation of submitted contracts into a registry.
pub struct HotCompiler {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl HotCompiler {
    /// Starts `config.workers` compile threads registering into `registry`.
    pub fn new(
        config: CompilerConfig,
        backend: Arc<dyn CompileBackend>,
        registry: Arc<Registry>,
    ) -> Self {
        let shared = Arc::new(Shared {
            backend,
            registry,
            config,
            cancelled: Arc::new(AtomicBool::new(false)),
            states: Mutex::new(HashMap::new()),
            settled: Condvar::new(),
            generation: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..shared.config.workers.max(1))
            .filter_map(|i| {
                let shared = shared.clone();
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("evmc-compile-{i}"))
                    .stack_size(evmc_compiler::LLVM_THREAD_STACK)
                    .spawn(move || worker(&shared, &rx))
                    .ok()
            })
            .collect();
        Self {
            shared,
            queue: Some(tx),
            workers,
        }
    }

    /// The registry compiled contracts go to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// The counters this compiler updates (its registry's).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.shared.registry.metrics()
    }

    /// Asks for `code` (whose hash is `hash`) to run natively. A cached
    /// artifact is registered at once; otherwise the contract is queued for
    /// compilation unless it is too large, or too short to gain.
    /// Each hash is handled once.
    pub fn submit(&self, hash: B256, code: &[u8]) {
        {
            let mut states = self.shared.states.lock().unwrap_or_else(|e| e.into_inner());
            if states.contains_key(&hash) {
                return;
            }
            let order = states.len();
            states.insert(hash, (order, CompileState::Queued));
        }
        let spec = self.shared.config.spec;
        let metrics = self.shared.metrics();
        // A cached artifact of another spec (never written by this cache) is
        // skipped and compiled afresh.
        let registered = match self.shared.backend.lookup(hash, spec) {
            None => {
                metrics.cache_miss();
                false
            }
            Some(art) => match self.shared.registry.register(spec, art) {
                Ok(()) => {
                    metrics.cache_hit();
                    true
                }
                Err(e) => {
                    metrics.cache_refusal();
                    tracing::debug!(%hash, error = %e, "cached artefact refused; compiling afresh");
                    false
                }
            },
        };
        if registered {
            tracing::debug!(%hash, "hot contract runs natively: cached artefact");
            self.shared.set(
                hash,
                CompileState::Ready {
                    time: Duration::ZERO,
                    cached: true,
                    overran: false,
                },
            );
            return;
        }
        if code.len() > self.shared.config.max_code_size {
            tracing::debug!(%hash, size = code.len(), "hot contract stays interpreted: over the size limit");
            self.shared.stays_interpreted(
                hash,
                InterpretReason::TooLarge,
                format!(
                    "code of {} bytes is over the {}-byte cap",
                    code.len(),
                    self.shared.config.max_code_size
                ),
            );
            return;
        }
        if let Some(run) =
            evmc_compiler::analysis::too_short(code, self.shared.config.min_native_run)
        {
            tracing::debug!(%hash, instructions = run.instructions, entries = run.entries, "hot contract stays interpreted: too short to gain");
            self.shared.stays_interpreted(
                hash,
                InterpretReason::TooShort,
                evmc_compiler::analysis::too_short_why(run),
            );
            return;
        }
        let job = Job {
            hash,
            code: code.to_vec(),
        };
        metrics.compile_queued();
        if self.queue.as_ref().is_none_or(|q| q.send(job).is_err()) {
            metrics.compile_dequeued();
            tracing::warn!(%hash, "hot contract stays interpreted: no compile worker");
            self.shared.stays_interpreted(
                hash,
                InterpretReason::CompileFailed,
                "no compile worker".into(),
            );
        } else {
            tracing::debug!(%hash, size = code.len(), "hot compile queued");
        }
    }

    /// Registers the backend's artifact for `hash` if it has one, without
    /// compiling; for contracts known to be hot from earlier runs.
    pub fn preload(&self, hash: B256) -> bool {
        let spec = self.shared.config.spec;
        match self
            .shared
            .backend
            .lookup(hash, spec)
            .map(|art| self.shared.registry.register(spec, art))
        {
            Some(Ok(())) => {
                let mut states = self.shared.states.lock().unwrap_or_else(|e| e.into_inner());
                let order = states.len();
                states.entry(hash).or_insert((
                    order,
                    CompileState::Ready {
                        time: Duration::ZERO,
                        cached: true,
                        overran: false,
                    },
                ));
                self.shared.generation.fetch_add(1, Ordering::Release);
                true
            }
            Some(Err(_)) | None => false,
        }
    }

    /// Changes whenever a submitted contract's state changes.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Blocks until nothing submitted is still queued or compiling.
    pub fn wait_idle(&self) {
        let mut states = self.shared.states.lock().unwrap_or_else(|e| e.into_inner());
        while states.values().any(|(_, s)| *s == CompileState::Queued) {
            states = self
                .shared
                .settled
                .wait(states)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// What became of the contract with code hash `hash`, if submitted.
    pub fn state(&self, hash: B256) -> Option<CompileState> {
        self.shared
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .map(|(_, s)| s.clone())
    }

    /// Every submitted contract in submission order.
    pub fn states(&self) -> Vec<(B256, CompileState)> {
        let states = self.shared.states.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = states
            .iter()
            .map(|(h, (o, s))| (*o, *h, s.clone()))
            .collect();
        v.sort_by_key(|e| e.0);
        v.into_iter().map(|(_, h, s)| (h, s)).collect()
    }

    /// Contracts that will stay interpreted, with the reason.
    pub fn negative_list(&self) -> Vec<(B256, String)> {
        self.states()
            .into_iter()
            .filter_map(|(h, s)| match s {
                CompileState::Failed(why) => Some((h, why)),
                _ => None,
            })
            .collect()
    }
}

impl Drop for HotCompiler {
    fn drop(&mut self) {
        self.shared.cancelled.store(true, Ordering::Relaxed);
        self.queue = None;
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while self.workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut left = 0;
        for w in self.workers.drain(..) {
            if w.is_finished() {
                let _ = w.join();
            } else {
                // Inside an in-process compile: it ends on its own and its
                // result is dropped (the cancel flag is set).
                left += 1;
            }
        }
        if left > 0 {
            tracing::debug!(
                threads = left,
                "hot compiler dropped with compiles still running in this process"
            );
        }
    }
}

fn worker(shared: &Shared, rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let metrics = shared.metrics();
        metrics.compile_dequeued();
        if shared.cancelled.load(Ordering::Relaxed) {
            metrics.compile_cancelled();
            shared.set(job.hash, CompileState::Failed(CANCELLED.into()));
            continue;
        }
        let spec = shared.config.spec;
        let hash = job.hash;
        metrics.compile_started();
        tracing::debug!(%hash, size = job.code.len(), "hot compile started");
        let start = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_cancel_flag(&shared.cancelled, || {
                shared.backend.compile(&job.code, spec)
            })
        }))
        .unwrap_or_else(|_| Err("the compiler panicked".to_string()));
        let time = start.elapsed();
        if shared.cancelled.load(Ordering::Relaxed) {
            metrics.compile_cancelled();
            shared.set(hash, CompileState::Failed(CANCELLED.into()));
            continue;
        }
        metrics.compile_ended(time, result.is_ok());
        let state = match result {
            Ok(art) if art.code_hash() != hash => Err((
                InterpretReason::Refused,
                format!("artifact is for code hash {:x}", art.code_hash()),
            )),
            Ok(art) => match shared.registry.register(spec, art) {
                Ok(()) => Ok(CompileState::Ready {
                    time,
                    cached: false,
                    overran: time > shared.config.time_cap,
                }),
                Err(e) => Err((InterpretReason::SpecMismatch, e.to_string())),
            },
            Err(e) => Err((InterpretReason::CompileFailed, e)),
        };
        let state = match state {
            Ok(ready) => {
                tracing::debug!(%hash, ms = time.as_secs_f64() * 1e3, "hot compile finished; runs natively from the next transaction");
                ready
            }
            Err((reason, why)) => {
                tracing::warn!(%hash, reason = reason.as_str(), error = %why, "hot compile failed; contract stays interpreted");
                shared.registry.mark_interpreted(hash, spec, reason);
                CompileState::Failed(why)
            }
        };
        shared.set(hash, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_gather_the_pcs_of_every_tally() {
        let counters = HotCounters::with_profiles(Thresholds::default());
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let mut one = FrameTally::new(counters.clone());
        let mut two = FrameTally::new(counters.clone());
        one.ran_bitmap(Some(a)).unwrap().extend([0b101, 0, 1]);
        two.ran_bitmap(Some(a)).unwrap().push(0b10);
        two.ran_bitmap(Some(b)).unwrap().push(1 << 63);
        // Init code has no hash: nothing to profile.
        assert!(two.ran_bitmap(None).is_none());
        assert_eq!(counters.ran(a), None, "nothing before a flush");
        one.flush();
        two.flush();
        assert_eq!(counters.ran(a).unwrap().pcs(), &[0, 1, 2, 128]);
        assert_eq!(counters.ran(b).unwrap().pcs(), &[63]);
        // Counters that do not profile record nothing.
        let plain = HotCounters::new(Thresholds::default());
        assert!(!plain.profiling());
        assert!(FrameTally::new(plain.clone()).ran_bitmap(Some(a)).is_none());
    }

    #[test]
    fn frames_are_charged_their_own_gas_only() {
        let counters = HotCounters::new(Thresholds {
            gas: 150,
            calls: u64::MAX,
        });
        let (a, b, c) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );
        let mut tally = FrameTally::new(counters.clone());
        // a (depth 0) calls b, which calls c; then a calls c again.
        tally.frame_finished(Some(c), 2, 10);
        tally.frame_finished(Some(b), 1, 60);
        tally.frame_finished(Some(c), 1, 5);
        tally.frame_finished(Some(a), 0, 100);
        assert!(
            counters.take_newly_hot().is_empty(),
            "nothing before a flush"
        );
        tally.flush();
        assert_eq!(counters.get(a), CodeStats { gas: 35, calls: 1 });
        assert_eq!(counters.get(b), CodeStats { gas: 50, calls: 1 });
        assert_eq!(counters.get(c), CodeStats { gas: 15, calls: 2 });
        // A second transaction makes b hot, once.
        tally.frame_finished(Some(b), 0, 120);
        tally.flush();
        assert_eq!(counters.take_newly_hot(), vec![b]);
        tally.frame_finished(Some(b), 0, 120);
        tally.flush();
        assert!(counters.take_newly_hot().is_empty());
        assert_eq!(counters.snapshot()[0].0, b);
    }

    /// Counts compiles; compiles nothing.
    struct Counting(AtomicU64);

    impl CompileBackend for Counting {
        fn lookup(&self, _: B256, _: SpecId) -> Option<Arc<LoadedArtifact>> {
            None
        }
        fn compile(&self, _: &[u8], _: SpecId) -> Result<Arc<LoadedArtifact>, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err("counted".into())
        }
    }

    #[test]
    fn loop_free_code_too_short_to_gain_is_not_compiled() {
        let backend = Arc::new(Counting(AtomicU64::new(0)));
        let registry = Registry::new();
        let hot = HotCompiler::new(
            CompilerConfig::new(SpecId::OSAKA),
            backend.clone(),
            registry.clone(),
        );
        // An EIP-1167 minimal proxy.
        let proxy = hex::decode(
            "363d3d373d3d3d363d73bebebebebebebebebebebebebebebebebebebebe5af43d82803e903d91602b57fd5bf3",
        )
        .unwrap();
        let (p, l) = (B256::repeat_byte(1), B256::repeat_byte(2));
        hot.submit(p, &proxy);
        // JUMPDEST PUSH1 0 JUMP: as short, but it loops.
        hot.submit(l, &[0x5b, 0x60, 0x00, 0x56]);
        hot.wait_idle();
        assert_eq!(
            backend.0.load(Ordering::SeqCst),
            1,
            "only the loop is compiled"
        );
        assert!(
            matches!(hot.state(p), Some(CompileState::Failed(ref m)) if m.contains("too short")),
            "{:?}",
            hot.state(p)
        );
        assert_eq!(
            registry.reasons().get(&(p, SpecId::OSAKA)),
            Some(&InterpretReason::TooShort)
        );
        // Turned off, every contract is compiled.
        let mut config = CompilerConfig::new(SpecId::OSAKA);
        config.min_native_run = 0;
        let hot = HotCompiler::new(config, backend.clone(), Registry::new());
        hot.submit(p, &proxy);
        hot.wait_idle();
        assert_eq!(backend.0.load(Ordering::SeqCst), 2);
    }
}
