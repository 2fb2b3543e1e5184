//! alloy-evm's [`EvmFactory`] and [`Evm`] for [`NativeEvm`]: the surface a
//! node (reth) builds blocks and executes them through.
//!
//! [`NativeEvmFactory`] is a drop-in for alloy-evm's `EthEvmFactory`: the
//! same context type, precompiles ([`PrecompilesMap`]), spec, transaction,
//! error and halt-reason types, so a host switches by changing one type.
//! The EVM it builds is the one `EthEvmFactory` builds, wrapped in
//! [`NativeEvm`], so contracts registered in its [`Registry`] run natively
//! and everything else exactly as in `EthEvm`.
//!
//! Optionally the factory compiles contracts as they get hot: every EVM it
//! creates counts each frame's own gas per code hash (per spec), and
//! contracts past the threshold are compiled on background threads through
//! a [`CompileBackend`] (the artifact cache, typically) and registered, to
//! run natively from the next transaction on. A node can thus start with
//! nothing compiled.

use super::evm::NativeEvm;
use super::inspect::FrameLevel;
#[cfg(feature = "compiler")]
use crate::hot::CacheBackend;
use crate::hot::{
    CompileBackend, CompileState, CompilerConfig, HotCompiler, HotCounters, Thresholds,
};
use crate::registry::Registry;
use crate::ArtifactCache;
use alloy_evm::eth::{EthEvmBuilder, EthEvmContext};
use alloy_evm::precompiles::PrecompilesMap;
use alloy_evm::{Database, Evm, EvmEnv, EvmFactory};
use revm::context::{BlockEnv, CfgEnv, DBErrorMarker, TxEnv};
use revm::context_interface::result::{EVMError, HaltReason, ResultAndState};
use revm::handler::instructions::EthInstructions;
use revm::handler::{ExecuteEvm, PrecompileProvider, SystemCallEvm};
use revm::inspector::{InspectEvm, NoOpInspector};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::InterpreterResult;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, B256};
use revm::state::EvmState;
use revm::Inspector;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The revm EVM inside a [`NativeEthEvm`]: revm's mainnet EVM over alloy-evm's
/// Ethereum context, with compiled frames.
pub type NativeEthEvmInner<DB, I, P = PrecompilesMap> =
    NativeEvm<EthEvmContext<DB>, I, EthInstructions<EthInterpreter, EthEvmContext<DB>>, P>;

/// alloy-evm's [`Evm`] over [`NativeEvm`]: what [`NativeEvmFactory`] creates.
///
/// With the inspector enabled, transactions run entirely in revm's
/// interpreter with the inspector attached (compiled frames cannot report
/// steps to an inspector), so inspection sees exactly what `EthEvm`'s
/// does; with it disabled, registered contracts run natively. The one
/// exception is a [`FrameLevel`] inspector with frame-level native on
/// ([`NativeEvmFactory::create_evm_with_frame_level_inspector`]): it hears
/// only frame-level hooks, which compiled frames fire as the interpreter
/// does, so registered contracts run natively while it inspects.
pub struct NativeEthEvm<DB: Database, I, P = PrecompilesMap> {
    inner: NativeEthEvmInner<DB, I, P>,
    inspect: bool,
    /// Counters and compiler of this EVM's spec, when the factory compiles
    /// hot contracts.
    hot: Option<Arc<SpecHot>>,
    /// The factory's total of native frames, added to after each
    /// transaction.
    frames_total: Arc<AtomicU64>,
}

impl<DB: Database, I, P> NativeEthEvm<DB, I, P> {
    /// The wrapped [`NativeEvm`].
    pub fn native(&self) -> &NativeEthEvmInner<DB, I, P> {
        &self.inner
    }

    /// The wrapped [`NativeEvm`], mutably.
    pub fn native_mut(&mut self) -> &mut NativeEthEvmInner<DB, I, P> {
        &mut self.inner
    }

    /// Frames this EVM ran natively so far.
    pub fn native_frames(&self) -> u64 {
        self.inner.native_frames
    }

    /// The EVM context (block, config, journal and database).
    pub fn ctx(&self) -> &EthEvmContext<DB> {
        &self.inner.inner.ctx
    }

    /// Hands contracts that crossed the threshold to the compiler. Their
    /// code comes from the state the transaction touched (which holds the
    /// code of every account it ran, newly created ones included), else
    /// from the database.
    fn submit_newly_hot(&mut self, state: &EvmState) {
        let Some(hot) = &self.hot else { return };
        let Some(compiler) = &hot.compiler else {
            // Counting only: nothing to compile.
            return;
        };
        for hash in hot.counters.take_newly_hot() {
            let from_state = state.values().find_map(|acc| {
                (acc.info.code_hash == hash)
                    .then(|| acc.info.code.as_ref().map(|c| c.original_bytes()))
                    .flatten()
            });
            let code = match from_state {
                Some(code) => Some(code),
                None => revm::Database::code_by_hash(
                    &mut self.inner.inner.ctx.journaled_state.database,
                    hash,
                )
                .ok()
                .map(|c| c.original_bytes()),
            };
            if let Some(code) = code.filter(|c| !c.is_empty()) {
                compiler.submit(hash, &code);
            }
        }
    }
}

impl<DB: Database, I, P> NativeEthEvm<DB, FrameLevel<I>, P> {
    /// Switches native frames under the (enabled) inspector on or off: on,
    /// compiled frames run natively and fire only the frame-level hooks,
    /// which is all a [`FrameLevel`] inspector listens to; off, every frame
    /// runs in revm's interpreter while inspecting. See
    /// [`NativeEvmFactory::create_evm_with_frame_level_inspector`].
    pub fn set_frame_level_native(&mut self, on: bool) {
        self.inner.set_frame_level_native(on);
    }
}

impl<DB: Database, I, P> fmt::Debug for NativeEthEvm<DB, I, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeEthEvm")
            .field("spec", &self.inner.inner.ctx.cfg.spec)
            .field("inspect", &self.inspect)
            .field("frame_level_native", &self.inner.frame_level_native())
            .field("native_frames", &self.inner.native_frames)
            .finish_non_exhaustive()
    }
}

impl<DB, I, P> Evm for NativeEthEvm<DB, I, P>
where
    DB: Database,
    I: Inspector<EthEvmContext<DB>>,
    P: PrecompileProvider<EthEvmContext<DB>, Output = InterpreterResult>,
{
    type DB = DB;
    type Tx = TxEnv;
    type Error = EVMError<DB::Error>;
    type HaltReason = HaltReason;
    type Spec = SpecId;
    type BlockEnv = BlockEnv;
    type Precompiles = P;
    type Inspector = I;

    #[inline]
    fn block(&self) -> &BlockEnv {
        &self.inner.inner.ctx.block
    }

    #[inline]
    fn cfg_env(&self) -> &CfgEnv<SpecId> {
        &self.inner.inner.ctx.cfg
    }

    #[inline]
    fn chain_id(&self) -> u64 {
        self.inner.inner.ctx.cfg.chain_id
    }

    #[inline]
    fn transact_raw(&mut self, tx: TxEnv) -> Result<ResultAndState<HaltReason>, Self::Error> {
        if self.inspect && !self.inner.frame_level_native() {
            // revm's own inspecting loop: every frame interpreted.
            return self.inner.inner.inspect_tx(tx);
        }
        let before = self.inner.native_frames;
        let out = if self.inspect {
            // Frame-level native (only ever on for a `FrameLevel` inspector):
            // NativeEvm's inspecting loop, compiled frames run natively.
            InspectEvm::inspect_tx(&mut self.inner, tx)
        } else {
            self.inner.transact(tx)
        };
        let ran = self.inner.native_frames - before;
        if ran > 0 {
            self.frames_total.fetch_add(ran, Ordering::Relaxed);
        }
        let out = out?;
        if self.hot.is_some() {
            self.submit_newly_hot(&out.state);
        }
        Ok(out)
    }

    fn transact_system_call(
        &mut self,
        caller: Address,
        contract: Address,
        data: Bytes,
    ) -> Result<ResultAndState<HaltReason>, Self::Error> {
        self.inner.system_call_with_caller(caller, contract, data)
    }

    fn finish(self) -> (DB, EvmEnv<SpecId>) {
        let ctx = self.inner.inner.ctx;
        (
            ctx.journaled_state.database,
            EvmEnv {
                block_env: ctx.block,
                cfg_env: ctx.cfg,
            },
        )
    }

    fn set_inspector_enabled(&mut self, enabled: bool) {
        self.inspect = enabled;
    }

    fn components(&self) -> (&DB, &I, &P) {
        let evm = &self.inner.inner;
        (
            &evm.ctx.journaled_state.database,
            &evm.inspector,
            &evm.precompiles,
        )
    }

    fn components_mut(&mut self) -> (&mut DB, &mut I, &mut P) {
        let evm = &mut self.inner.inner;
        (
            &mut evm.ctx.journaled_state.database,
            &mut evm.inspector,
            &mut evm.precompiles,
        )
    }
}

/// How [`NativeEvmFactory`] compiles contracts as they get hot.
#[derive(Clone, Debug)]
pub struct HotOptions {
    /// When a contract counts as hot (its own frames' gas, or frames run).
    pub thresholds: Thresholds,
    /// Background compile threads per spec in use.
    pub workers: usize,
    /// Larger contracts stay interpreted.
    pub max_code_size: usize,
    /// Contracts that run fewer instructions than this per entry into
    /// compiled code stay interpreted (see
    /// [`CompilerConfig::min_native_run`]).
    pub min_native_run: usize,
    /// Compiles taking longer are reported as overruns.
    pub time_cap: Duration,
}

impl Default for HotOptions {
    fn default() -> Self {
        let c = CompilerConfig::new(SpecId::default());
        Self {
            thresholds: Thresholds::default(),
            workers: c.workers,
            max_code_size: c.max_code_size,
            min_native_run: c.min_native_run,
            time_cap: c.time_cap,
        }
    }
}

/// Counters, and the compiler when compiling, of one spec: a contract is
/// compiled once per (code hash, spec), and a fork change starts counting
/// afresh for the new spec.
struct SpecHot {
    counters: Arc<HotCounters>,
    compiler: Option<HotCompiler>,
}

/// What every EVM of a factory shares for hot-contract detection.
struct HotState {
    options: HotOptions,
    /// Record the pcs interpreted frames run (see
    /// [`NativeEvmFactory::with_run_profiles`]).
    profiles: bool,
    /// `None`: count frames only (see [`NativeEvmFactory::with_frame_counting`]).
    backend: Option<Arc<dyn CompileBackend>>,
    per_spec: Mutex<HashMap<SpecId, Arc<SpecHot>>>,
}

impl HotState {
    fn for_spec(&self, spec: SpecId, registry: &Arc<Registry>) -> Arc<SpecHot> {
        let mut per_spec = self.per_spec.lock().unwrap_or_else(|e| e.into_inner());
        per_spec
            .entry(spec)
            .or_insert_with(|| {
                let compiler = self.backend.as_ref().map(|backend| {
                    let config = CompilerConfig {
                        spec,
                        workers: self.options.workers.max(1),
                        max_code_size: self.options.max_code_size,
                        min_native_run: self.options.min_native_run,
                        time_cap: self.options.time_cap,
                    };
                    HotCompiler::new(config, backend.clone(), registry.clone())
                });
                let counters = if self.profiles {
                    HotCounters::with_profiles(self.options.thresholds)
                } else {
                    HotCounters::new(self.options.thresholds)
                };
                Arc::new(SpecHot { counters, compiler })
            })
            .clone()
    }

    fn all(&self) -> Vec<(SpecId, Arc<SpecHot>)> {
        let per_spec = self.per_spec.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = per_spec.iter().map(|(s, h)| (*s, h.clone())).collect();
        v.sort_by_key(|(s, _)| *s as u8);
        v
    }
}

/// A contract handed to hot compilation, and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct HotCompile {
    /// The spec it is compiled for.
    pub spec: SpecId,
    /// Its code hash.
    pub code_hash: B256,
    /// What became of it.
    pub state: CompileState,
}

/// alloy-evm's [`EvmFactory`] for [`NativeEvm`]: `EthEvmFactory` with
/// registered contracts run natively (see the module documentation).
///
/// Cloning shares the registry, the cache and the hot-contract state.
///
/// ```no_run
/// use alloy_evm::{Evm, EvmEnv, EvmFactory};
/// use evmc_runtime::{ArtifactCache, HotOptions, NativeEvmFactory, Registry};
/// use revm::context::TxEnv;
/// use revm::database::{CacheDB, EmptyDB};
///
/// let cache = ArtifactCache::open(&ArtifactCache::default_dir())?;
/// let factory = NativeEvmFactory::new(Registry::new())
///     .with_cache(cache, 2)
///     // Compile contracts in the background once they are hot.
///     .with_hot_compilation(HotOptions::default())?;
/// let mut evm = factory.create_evm(CacheDB::new(EmptyDB::default()), EvmEnv::default());
/// let result = evm.transact(TxEnv::default())?;
/// println!("{:?}, {} native frames", result.result, evm.native_frames());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct NativeEvmFactory {
    registry: Arc<Registry>,
    /// Source of artifacts for [`NativeEvmFactory::ensure_native`] and hot
    /// compilation.
    backend: Option<Arc<dyn CompileBackend>>,
    hot: Option<Arc<HotState>>,
    /// Frames run natively by every EVM of this factory.
    native_frames: Arc<AtomicU64>,
}

impl fmt::Debug for NativeEvmFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeEvmFactory")
            .field("registry", &self.registry)
            .field("backend", &self.backend.is_some())
            .field("hot", &self.hot.as_ref().map(|h| &h.options))
            .finish()
    }
}

impl Default for NativeEvmFactory {
    /// An empty registry: everything interpreted until artifacts are
    /// registered.
    fn default() -> Self {
        Self::new(Registry::new())
    }
}

impl NativeEvmFactory {
    /// EVMs that run the artifacts of `registry` natively.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            backend: None,
            hot: None,
            native_frames: Arc::default(),
        }
    }

    /// Takes artifacts from `cache` and compiles into it at `opt_level`
    /// (for [`NativeEvmFactory::ensure_native`] and hot compilation).
    #[cfg(feature = "compiler")]
    pub fn with_cache(self, cache: ArtifactCache, opt_level: u8) -> Self {
        self.with_backend(Arc::new(CacheBackend::new(cache, opt_level)))
    }

    /// Takes artifacts from `backend` (see [`NativeEvmFactory::with_cache`]).
    pub fn with_backend(mut self, backend: Arc<dyn CompileBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Compiles contracts as they get hot, through the backend given with
    /// [`NativeEvmFactory::with_cache`] or [`NativeEvmFactory::with_backend`]
    /// (without one, in this process into a temporary directory at the
    /// default optimisation level).
    pub fn with_hot_compilation(mut self, options: HotOptions) -> std::io::Result<Self> {
        let backend = match &self.backend {
            Some(b) => b.clone(),
            #[cfg(feature = "compiler")]
            None => {
                let b: Arc<dyn CompileBackend> = Arc::new(crate::hot::InProcessBackend::new(
                    evmc_compiler::CompileOptions::new(SpecId::default()).opt_level,
                )?);
                self.backend = Some(b.clone());
                b
            }
            // A runtime without the compiler compiles nothing by itself.
            #[cfg(not(feature = "compiler"))]
            None => {
                return Err(std::io::Error::other(
                    "hot compilation needs a compile backend (with_backend) in a runtime \
                     built without the `compiler` feature",
                ))
            }
        };
        self.hot = Some(Arc::new(HotState {
            options,
            backend: Some(backend),
            profiles: false,
            per_spec: Mutex::default(),
        }));
        Ok(self)
    }

    /// Counts every frame's own gas per (code hash, spec) without compiling
    /// anything: [`NativeEvmFactory::counters`] then says which contracts
    /// ran and how much.
    pub fn with_frame_counting(self) -> Self {
        self.counting(false)
    }

    /// Frame counting, with the pcs of interpreted frames when `profiles`.
    fn counting(mut self, profiles: bool) -> Self {
        self.hot = Some(Arc::new(HotState {
            options: HotOptions {
                thresholds: Thresholds {
                    gas: u64::MAX,
                    calls: u64::MAX,
                },
                ..HotOptions::default()
            },
            backend: None,
            profiles,
            per_spec: Mutex::default(),
        }));
        self
    }

    /// [`NativeEvmFactory::with_frame_counting`], and the pcs interpreted
    /// frames run per (code hash, spec): [`NativeEvmFactory::ran`] is then
    /// the profile a compile of only that code takes
    /// ([`NativeEvmFactory::ensure_native_ran`]). Interpreted frames run a
    /// stepping loop that marks each pc, slower than the interpreter's own:
    /// for a reference run, not for timing.
    pub fn with_run_profiles(self) -> Self {
        self.counting(true)
    }

    /// The pcs interpreted frames of the code with hash `hash` ran under
    /// `spec`, when the factory records them
    /// ([`NativeEvmFactory::with_run_profiles`]).
    pub fn ran(&self, spec: SpecId, hash: B256) -> Option<evmc_compiler::RanPcs> {
        let hot = self.hot.as_ref()?;
        let per_spec = hot.per_spec.lock().unwrap_or_else(|e| e.into_inner());
        per_spec.get(&spec)?.counters.ran(hash)
    }

    /// Frames run natively by the EVMs of this factory (and its clones) in
    /// the transactions they finished.
    pub fn native_frames(&self) -> u64 {
        self.native_frames.load(Ordering::Relaxed)
    }

    /// The artifacts EVMs of this factory run natively.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Frame counters per spec, when counting (hot compilation or
    /// [`NativeEvmFactory::with_frame_counting`]).
    pub fn counters(&self) -> Vec<(SpecId, Arc<HotCounters>)> {
        self.hot
            .as_ref()
            .map(|h| {
                h.all()
                    .into_iter()
                    .map(|(s, sh)| (s, sh.counters.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every contract handed to hot compilation so far, per spec in
    /// submission order.
    pub fn hot_compiles(&self) -> Vec<HotCompile> {
        let Some(hot) = &self.hot else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (spec, sh) in hot.all() {
            if let Some(c) = &sh.compiler {
                out.extend(c.states().into_iter().map(|(code_hash, state)| HotCompile {
                    spec,
                    code_hash,
                    state,
                }));
            }
        }
        out
    }

    /// Blocks until no hot compile is queued or running.
    pub fn wait_idle(&self) {
        if let Some(hot) = &self.hot {
            for (_, sh) in hot.all() {
                if let Some(c) = &sh.compiler {
                    c.wait_idle();
                }
            }
        }
    }

    /// Makes `code` run natively under `spec`: registers the backend's
    /// artifact, compiling it first when the backend has none. Returns
    /// whether it came from the backend's store without compiling.
    pub fn ensure_native(&self, code: &[u8], spec: SpecId) -> Result<bool, String> {
        self.ensure(code, spec, None)
    }

    /// [`NativeEvmFactory::ensure_native`] for the blocks a profile saw
    /// run (`ran`): the backend's artefact of that profile, compiled first
    /// when it has none. Every other block of the code hands its frames to
    /// the interpreter (`evmc_compiler::profile`).
    pub fn ensure_native_ran(
        &self,
        code: &[u8],
        spec: SpecId,
        ran: &evmc_compiler::RanPcs,
    ) -> Result<bool, String> {
        self.ensure(code, spec, Some(ran))
    }

    fn ensure(
        &self,
        code: &[u8],
        spec: SpecId,
        ran: Option<&evmc_compiler::RanPcs>,
    ) -> Result<bool, String> {
        let backend = self
            .backend
            .as_ref()
            .ok_or("the factory has no artifact cache or compile backend")?;
        if self
            .registry
            .get(evmc_compiler::code_hash(code), spec)
            .is_some()
        {
            return Ok(true);
        }
        let (art, cached) = match ran {
            Some(ran) => backend.compile_ran(code, spec, ran)?,
            None => crate::hot::lookup_or_compile(&**backend, code, spec)?,
        };
        self.registry
            .register(spec, art)
            .map_err(|e| e.to_string())?;
        Ok(cached)
    }

    fn wrap<DB: Database, I>(
        &self,
        evm: alloy_evm::EthEvm<DB, I, PrecompilesMap>,
        inspect: bool,
    ) -> NativeEthEvm<DB, I> {
        let revm = evm.into_inner();
        let spec = revm.ctx.cfg.spec;
        let mut inner = NativeEvm::new(revm, self.registry.clone());
        let hot = self.hot.as_ref().map(|h| h.for_spec(spec, &self.registry));
        if let Some(h) = &hot {
            inner = inner.with_hot_counters(h.counters.clone());
        }
        NativeEthEvm {
            inner,
            inspect,
            hot,
            frames_total: self.native_frames.clone(),
        }
    }
}

impl EvmFactory for NativeEvmFactory {
    type Evm<DB: Database, I: Inspector<EthEvmContext<DB>>> = NativeEthEvm<DB, I>;
    type Context<DB: Database> = EthEvmContext<DB>;
    type Tx = TxEnv;
    type Error<DBError: DBErrorMarker> = EVMError<DBError>;
    type HaltReason = HaltReason;
    type Spec = SpecId;
    type BlockEnv = BlockEnv;
    type Precompiles = PrecompilesMap;

    fn create_evm<DB: Database>(&self, db: DB, env: EvmEnv) -> NativeEthEvm<DB, NoOpInspector> {
        // The very EVM EthEvmFactory builds (context, precompiles), wrapped.
        self.wrap(EthEvmBuilder::new(db, env).build(), false)
    }

    /// The EVM with `inspector` attached and enabled: its transactions run
    /// interpreted, every frame (see [`NativeEthEvm`]). Disabling the
    /// inspector returns it to native execution.
    fn create_evm_with_inspector<DB: Database, I: Inspector<EthEvmContext<DB>>>(
        &self,
        db: DB,
        env: EvmEnv,
        inspector: I,
    ) -> NativeEthEvm<DB, I> {
        self.wrap(
            EthEvmBuilder::new(db, env).inspector(inspector).build(),
            true,
        )
    }
}

impl NativeEvmFactory {
    /// The EVM with `inspector` attached, enabled, and compiled frames run
    /// natively under it: the inspector is wrapped in [`FrameLevel`], so it
    /// sees only frame-level hooks (calls, creates and their ends, logs,
    /// selfdestructs), which compiled frames fire exactly as the
    /// interpreter does, in interpreted and compiled frames alike. Call,
    /// prestate and parity tracers (`revm-inspectors`' `TracingInspector`
    /// without steps) thus give the interpreter's traces at native speed.
    ///
    /// The returned EVM has the factory's EVM type (with a `FrameLevel<I>`
    /// inspector), so it goes wherever [`EvmFactory::create_evm_with_inspector`]'s
    /// does, alloy-evm's block executor included.
    /// [`NativeEthEvm::set_frame_level_native`] turns native frames off
    /// again (every frame interpreted, `step` still not forwarded).
    pub fn create_evm_with_frame_level_inspector<DB, I>(
        &self,
        db: DB,
        env: EvmEnv,
        inspector: I,
    ) -> NativeEthEvm<DB, FrameLevel<I>>
    where
        DB: Database,
        FrameLevel<I>: Inspector<EthEvmContext<DB>>,
    {
        let mut evm = self.create_evm_with_inspector(db, env, FrameLevel::new(inspector));
        evm.set_frame_level_native(true);
        evm
    }
}
