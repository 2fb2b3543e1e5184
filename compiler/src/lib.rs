//! evmc-compiler: EVM bytecode → LLVM IR → object file → shared object.
//!
//! The pipeline, one module per stage:
//! [`analysis`] (decode, JUMPDESTs, blocks, static jumps, stack bounds) →
//! [`codegen`] (LLVM IR against the `evmc-interface` ABI) →
//! [`backend`] (optimise, emit object/assembly, link the `.so`).
//!
//! Without the `llvm` feature only what loading artefacts needs is built:
//! [`CompileOptions`], [`TargetSpec`], spec names, [`code_hash`] and
//! [`COMPILER_BUILD_ID`].
#![warn(missing_docs)]

pub mod analysis;
pub mod backend;
#[cfg(feature = "llvm")]
pub mod codegen;
pub mod profile;
pub mod revm_api;

#[cfg(feature = "llvm")]
use analysis::{Analysis, Plan};
#[cfg(feature = "llvm")]
pub use backend::host_target;
#[cfg(feature = "llvm")]
use backend::target::{emit, machine, optimize};
pub use backend::TargetSpec;
use evmc_interface::ArtifactMetadata;
#[cfg(feature = "llvm")]
use inkwell::context::Context;
#[cfg(feature = "llvm")]
use inkwell::targets::FileType;
pub use profile::RanPcs;
pub use revm_api::{parse_spec, spec_name, SpecId, B256};
#[cfg(feature = "llvm")]
use std::path::Path;
use std::path::PathBuf;
#[cfg(feature = "llvm")]
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(feature = "llvm")]
use std::sync::{Barrier, OnceLock};
use std::time::Duration;
#[cfg(feature = "llvm")]
use std::time::Instant;

/// Identifies the compiler that built an artefact: `evmc-` and 16 hex
/// digits of a hash of the compiler's and the interface's sources (see
/// `build.rs`). Recorded in every artefact's metadata and in cache keys, so
/// a change to code generation never reuses artefacts of the old one.
pub const COMPILER_BUILD_ID: &str = env!("EVMC_COMPILER_BUILD_ID");

/// Stack size of every thread that runs LLVM: it recurses deeply on large
/// functions. Whoever starts a thread that compiles uses this.
pub const LLVM_THREAD_STACK: usize = 64 << 20;

/// Contracts above this size are not compiled by default (EIP-170's limit);
/// they stay interpreted.
pub const DEFAULT_MAX_CODE_SIZE: usize = 24 * 1024;

#[derive(Debug, thiserror::Error)]
/// Why a contract was not compiled.
pub enum CompileError {
    #[error("spec {0} is not supported by the compiler (supported: FRONTIER..=OSAKA)")]
    /// The spec is outside [`revm_api::MIN_SPEC`]..=[`revm_api::MAX_SPEC`].
    UnsupportedSpec(String),
    #[error("bytecode is {size} bytes, above the compile limit of {limit} bytes")]
    /// The bytecode is above [`CompileOptions::max_code_size`]: it stays
    /// interpreted, by design.
    TooLarge {
        /// Bytecode length in bytes.
        size: usize,
        /// The limit it is above.
        limit: usize,
    },
    #[error("LLVM: {0}")]
    /// LLVM refused the module or failed to emit it.
    Llvm(String),
    #[error("{0}")]
    /// A compile thread could not be started.
    Thread(String),
    #[error("link: {0}")]
    /// The linker (`cc -shared`) failed or could not be run.
    Link(String),
    #[error("{path}: {source}")]
    /// Reading or writing `path` failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

#[derive(Clone, Debug)]
/// How to compile a contract: spec, optimisation, target and limits.
/// Every field that changes the artefact's bytes is in
/// [`CompileOptions::codegen_fingerprint`] or the cache key.
pub struct CompileOptions {
    /// The hard fork whose semantics the code implements.
    pub spec: SpecId,
    /// 0: no LLVM optimisation; 1: the fast IR pipeline and LLVM's fast
    /// code generator; 2 (default): the same IR pipeline and the optimising
    /// code generator; 3: LLVM's `default<O3>` pipeline and code generator.
    pub opt_level: u8,
    /// What to generate code for (default: this machine).
    pub target: TargetSpec,
    /// Larger bytecode is [`CompileError::TooLarge`] (default
    /// [`DEFAULT_MAX_CODE_SIZE`]).
    pub max_code_size: usize,
    /// Above this many LLVM instructions, levels 1 to 3 fall back to level
    /// 0, so that no contract takes minutes to compile. Contracts are cut
    /// into functions of bounded size (see [`analysis::plan`]), but code
    /// whose every instruction expands to dozens of LLVM instructions
    /// still costs seconds per KB at level 2 (ipsilon's `signextend` of
    /// indexes not known where they are used took 637K instructions: 8 s at
    /// level 2, 2.7 s at 0). Level 1 is never chosen for a
    /// large contract: on optimised IR, the fast register allocator spills
    /// every value live across a block boundary, and the result ran slower
    /// than level 0's code (snailtracer: 0.8x the interpreter at level 1,
    /// 1.4x at level 0, 2.9x at level 2).
    pub opt_budget: usize,
    /// Threads one compile may use to build its shards in parallel. Only
    /// the speed of a compile depends on it, never the artefact's bytes.
    pub threads: usize,
    /// Most shards a large contract is cut into (one per 2,000 EVM
    /// instructions): each is its own module and object file, compiled by
    /// one of the `threads` and linked into one artefact (see
    /// [`codegen::build_module`]).
    pub max_shards: usize,
    /// EVM instructions per part, the LLVM functions a contract is cut into
    /// (see [`analysis::plan`]); a contract of more than
    /// [`analysis::plan::LARGE_CONTRACT_INSTS`] instructions takes a quarter
    /// of it ([`analysis::plan::part_size`]). Whole inheritance trees of
    /// blocks go into one part, so a part can be larger. A large value
    /// compiles a contract as one function.
    pub part_insts: usize,
    /// Compile only the blocks whose first instruction a profile saw run;
    /// every other block hands the frame to the interpreter (see
    /// [`profile`]). `None` (the default): the whole contract.
    pub ran: Option<std::sync::Arc<RanPcs>>,
}

/// Default [`CompileOptions::opt_budget`]: every contract of `benchdata`
/// and the hostile shapes of the limits tests but one compile at level 2 (Seaport
/// 107K, ipsilon's snailtracer 109K, memory_grow_mstore 154K: 1.7-3.5 s,
/// 2-3x the speed of their level-0 code, which ran memory-heavy code
/// slower than the interpreter); only code whose instructions each expand
/// to dozens of LLVM instructions goes past it (SIGNEXTEND, BYTE and
/// shifts by amounts known only at run time: ipsilon's `signextend` took
/// 637K while the constant indexes it pushes once were lost at block cuts;
/// 39K since they are carried across). The one is the 24 KiB
/// wide_arithmetic shape, half of it such shifts: 418K since they are
/// lowered on limbs (195K before), which compile in the same time at
/// level 2 but count nine times the instructions before optimisation. It
/// was 80,000; the compile time these contracts now take at level 2 is the
/// price of their faster code (`benches/README.md`, "Compile time of
/// 256-bit arithmetic").
pub const DEFAULT_OPT_BUDGET: usize = 250_000;

/// Default [`CompileOptions::part_insts`]: small enough that LLVM's
/// superlinear passes stay cheap on every part, large enough that the
/// internal functions of small contracts stay with their callers (parts of
/// 400 ran burntpix 7% slower).
pub const DEFAULT_PART_INSTS: usize = 1500;

/// Default [`CompileOptions::max_shards`]: a fixed number, so that an
/// artefact's bytes do not depend on the machine that compiled it.
pub const DEFAULT_MAX_SHARDS: usize = 4;

/// Default [`CompileOptions::threads`]: the machine's parallelism, at most
/// [`DEFAULT_MAX_SHARDS`]. Asked once per process: the answer reads the
/// cgroup's CPU quota from files, which every `ArtifactCache::get` (it
/// names its key from default options) paid again: 215 µs → 180 µs per
/// hit of a 768 KB artefact.
pub fn default_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(DEFAULT_MAX_SHARDS)
    })
}

impl CompileOptions {
    /// Defaults for `spec`, generating code for this machine.
    #[cfg(feature = "llvm")]
    pub fn new(spec: SpecId) -> Self {
        Self::for_target(spec, host_target())
    }

    /// Defaults for `spec`, generating code for `target`. Needs no LLVM:
    /// loaders use it to name the artefacts a default compile produces.
    pub fn for_target(spec: SpecId, target: TargetSpec) -> Self {
        Self {
            spec,
            opt_level: 2,
            target,
            max_code_size: DEFAULT_MAX_CODE_SIZE,
            opt_budget: DEFAULT_OPT_BUDGET,
            threads: default_threads(),
            max_shards: DEFAULT_MAX_SHARDS,
            part_insts: DEFAULT_PART_INSTS,
            ran: None,
        }
    }

    /// Every option that changes the bytes of an artefact, apart from the
    /// spec and the target (which keys and metadata record on their own),
    /// as one line: two compiles of the same code with equal fingerprints,
    /// specs and targets produce the same file. `max_code_size` only
    /// decides whether a compile happens, so it is not part of it.
    pub fn codegen_fingerprint(&self) -> String {
        let mut f = format!(
            "opt={} opt_budget={} max_shards={} part_insts={}",
            self.opt_level, self.opt_budget, self.max_shards, self.part_insts
        );
        if let Some(ran) = &self.ran {
            f.push_str(&format!(" ran={:x}", ran.digest()));
        }
        f
    }
}

/// Wall time of each stage.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Decoding and analysis.
    pub analysis: Duration,
    /// LLVM IR generation.
    pub ir: Duration,
    /// LLVM's IR pipeline.
    pub optimize: Duration,
    /// Machine code generation (object files).
    pub codegen: Duration,
    /// Linking the shared object.
    pub link: Duration,
    /// Size of the generated function, in LLVM instructions.
    pub ir_instructions: usize,
    /// The optimisation level used (see [`CompileOptions::opt_budget`]).
    pub opt_level: u8,
}

impl Timings {
    /// The sum of every stage.
    pub fn total(&self) -> Duration {
        self.analysis + self.ir + self.optimize + self.codegen + self.link
    }
}

/// The object files for one contract (one per shard), not yet linked.
#[cfg(feature = "llvm")]
pub struct CompiledObject {
    /// Keccak-256 of the bytecode.
    pub code_hash: B256,
    /// The record the linked artefact embeds.
    pub metadata: ArtifactMetadata,
    /// One relocatable object file per shard.
    pub objects: Vec<Vec<u8>>,
    /// Time spent in each stage so far.
    pub timings: Timings,
}

/// What to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Unoptimised LLVM IR as generated.
    LlvmIr,
    /// LLVM IR after optimisation.
    OptimizedIr,
    /// Target assembly.
    Assembly,
    /// A relocatable object file (not linked).
    Object,
}

/// Keccak-256 of `code`: the code hash artefacts, registries and caches
/// are keyed by.
pub fn code_hash(code: &[u8]) -> B256 {
    revm_api::keccak256(code)
}

/// Builds the metadata record an artifact for `code` carries.
pub fn metadata_for(code: &[u8], opts: &CompileOptions) -> ArtifactMetadata {
    let mut m = ArtifactMetadata::empty();
    m.opt_level = opts.opt_level as u32;
    m.code_hash = code_hash(code).0;
    m.code_len = code.len() as u64;
    ArtifactMetadata::set_str(&mut m.spec, spec_name(opts.spec));
    ArtifactMetadata::set_str(&mut m.target_triple, &opts.target.triple);
    ArtifactMetadata::set_str(&mut m.target_cpu, &opts.target.cpu);
    ArtifactMetadata::set_str(&mut m.cpu_features, &opts.target.required_features());
    ArtifactMetadata::set_str(&mut m.compiler_version, COMPILER_BUILD_ID);
    m
}

#[cfg(feature = "llvm")]
fn check(code: &[u8], opts: &CompileOptions) -> Result<(), CompileError> {
    if !revm_api::is_supported_spec(opts.spec) {
        return Err(CompileError::UnsupportedSpec(
            spec_name(opts.spec).to_string(),
        ));
    }
    if code.len() > opts.max_code_size {
        return Err(CompileError::TooLarge {
            size: code.len(),
            limit: opts.max_code_size,
        });
    }
    Ok(())
}

/// Produces textual IR/assembly or an object file for `code`.
#[cfg(feature = "llvm")]
pub fn compile_emit(
    code: &[u8],
    opts: &CompileOptions,
    what: Emit,
) -> Result<(Vec<u8>, Timings), CompileError> {
    check(code, opts)?;
    let start = Instant::now();
    let analysis = analysed(code, opts);
    let plan = Plan::new(&analysis, opts.part_insts, 1);
    emit_whole(&plan, code, opts, what, start.elapsed())
}

/// The analysis `opts` compiles: the whole contract, or what its profile
/// saw run ([`CompileOptions::ran`]).
#[cfg(feature = "llvm")]
fn analysed(code: &[u8], opts: &CompileOptions) -> Analysis {
    let mut a = Analysis::new(code);
    if let Some(ran) = &opts.ran {
        a.keep_ran(ran);
    }
    a
}

/// [`compile_emit`] after the analysis: the contract as one module.
#[cfg(feature = "llvm")]
fn emit_whole(
    plan: &Plan<'_>,
    code: &[u8],
    opts: &CompileOptions,
    what: Emit,
    analysis_time: Duration,
) -> Result<(Vec<u8>, Timings), CompileError> {
    let mut t = Timings {
        analysis: analysis_time,
        ..Timings::default()
    };
    let cx = Context::create();
    let meta = metadata_for(code, opts);
    let start = Instant::now();
    let module = codegen::build_module(&cx, plan, opts.spec, &meta, 0)
        .map_err(|e| CompileError::Llvm(e.to_string()))?;
    t.ir_instructions = codegen::instruction_count(&module);
    t.opt_level = level_for(opts, t.ir_instructions);
    t.ir = start.elapsed();
    lower(
        module,
        opts,
        what,
        t,
        analysis::plan::unrolls_loops(plan.analysis),
    )
}

/// The optimisation level for a contract of `ir_instructions`.
#[cfg(feature = "llvm")]
fn level_for(opts: &CompileOptions, ir_instructions: usize) -> u8 {
    if ir_instructions > opts.opt_budget {
        0
    } else {
        opts.opt_level
    }
}

/// Verifies, optimises and emits `module` at `t.opt_level`, unrolling
/// small loops if `unroll` (see [`backend::target::LOOP_PIPELINE`]).
#[cfg(feature = "llvm")]
fn lower(
    module: inkwell::module::Module<'_>,
    opts: &CompileOptions,
    what: Emit,
    mut t: Timings,
    unroll: bool,
) -> Result<(Vec<u8>, Timings), CompileError> {
    let start = Instant::now();
    let tm = machine(&opts.target, t.opt_level)?;
    module.set_triple(&tm.get_triple());
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    if let Err(e) = module.verify() {
        return Err(CompileError::Llvm(format!(
            "generated IR does not verify: {}",
            e.to_string()
        )));
    }
    t.ir += start.elapsed();
    if what == Emit::LlvmIr {
        return Ok((module.print_to_string().to_bytes().to_vec(), t));
    }
    let start = Instant::now();
    optimize(&module, &tm, t.opt_level, unroll)?;
    codegen::llvm_workarounds::freeze_wide_equality_operands(&module);
    t.optimize = start.elapsed();
    if what == Emit::OptimizedIr {
        return Ok((module.print_to_string().to_bytes().to_vec(), t));
    }
    let start = Instant::now();
    let kind = if what == Emit::Assembly {
        FileType::Assembly
    } else {
        FileType::Object
    };
    let out = emit(&module, &tm, kind)?;
    t.codegen = start.elapsed();
    Ok((out, t))
}

/// Compiles `code` into object files: one, or one per shard when the
/// contract is large (up to `opts.max_shards`), compiled on up to
/// `opts.threads` threads. Stage timings are the longest of any shard.
#[cfg(feature = "llvm")]
pub fn compile_object(code: &[u8], opts: &CompileOptions) -> Result<CompiledObject, CompileError> {
    check(code, opts)?;
    let start = Instant::now();
    let analysis = analysed(code, opts);
    let plan = Plan::new(&analysis, opts.part_insts, opts.max_shards);
    let analysis_time = start.elapsed();
    let objects_and_times = if plan.shards() == 1 {
        vec![emit_whole(&plan, code, opts, Emit::Object, analysis_time)?]
    } else {
        compile_shards(&plan, code, opts)?
    };
    let mut t = Timings::default();
    let mut objects = Vec::new();
    for (obj, st) in objects_and_times {
        objects.push(obj);
        t.analysis = t.analysis.max(st.analysis);
        t.ir = t.ir.max(st.ir);
        t.optimize = t.optimize.max(st.optimize);
        t.codegen = t.codegen.max(st.codegen);
        t.ir_instructions += st.ir_instructions;
        t.opt_level = st.opt_level;
    }
    t.analysis = t.analysis.max(analysis_time);
    Ok(CompiledObject {
        code_hash: code_hash(code),
        metadata: metadata_for(code, opts),
        objects,
        timings: t,
    })
}

/// One shard's object file and timings.
#[cfg(feature = "llvm")]
type ShardResult = Result<(Vec<u8>, Timings), CompileError>;

/// The shards on `opts.threads` threads at most, each shard with its own
/// LLVM context; of the `n` threads that start, thread `t` builds shards
/// `t`, `t + n`, ... The shards agree on the optimisation level, which
/// depends on the size of all of them, so every thread builds its modules
/// before any lowers one.
///
/// A thread that cannot start (under an address-space cap, each reserves
/// [`LLVM_THREAD_STACK`]) leaves its shards to those that did; when none
/// can, the compile fails with an error. The threads learn how many
/// started before they take shards, so none waits for one that never ran.
#[cfg(feature = "llvm")]
fn compile_shards(
    plan: &Plan<'_>,
    code: &[u8],
    opts: &CompileOptions,
) -> Result<Vec<(Vec<u8>, Timings)>, CompileError> {
    let count = plan.shards();
    let workers = opts.threads.clamp(1, count);
    let unroll = analysis::plan::unrolls_loops(plan.analysis);
    let meta = metadata_for(code, opts);
    let total = AtomicUsize::new(0);
    // How many threads started, and the barrier they meet at once sized.
    let started: OnceLock<(usize, Barrier)> = OnceLock::new();
    let results: Result<Vec<(usize, ShardResult)>, std::io::Error> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut refused = None;
        for t in 0..workers {
            let (meta, total, started) = (&meta, &total, &started);
            let thread = std::thread::Builder::new()
                .name(format!("evmc-shard-{t}"))
                .stack_size(LLVM_THREAD_STACK);
            let spawned = thread.spawn_scoped(s, move || {
                let (n, sized) = started.wait();
                let start = Instant::now();
                let mine: Vec<usize> = (t..count).step_by(*n).collect();
                let contexts: Vec<Context> = mine.iter().map(|_| Context::create()).collect();
                let built: Vec<_> = contexts
                    .iter()
                    .zip(&mine)
                    .map(|(cx, &index)| {
                        let m = codegen::build_module(cx, plan, opts.spec, meta, index);
                        let size = m.as_ref().map_or(0, codegen::instruction_count);
                        total.fetch_add(size, Ordering::SeqCst);
                        (index, m, size)
                    })
                    .collect();
                let ir = start.elapsed();
                // Every thread reaches the barrier, failed or not.
                sized.wait();
                let level = level_for(opts, total.load(Ordering::SeqCst));
                built
                    .into_iter()
                    .map(|(index, m, size)| {
                        let t = Timings {
                            ir,
                            ir_instructions: size,
                            opt_level: level,
                            ..Timings::default()
                        };
                        let r = m
                            .map_err(|e| CompileError::Llvm(e.to_string()))
                            .and_then(|m| lower(m, opts, Emit::Object, t, unroll));
                        (index, r)
                    })
                    .collect::<Vec<_>>()
            });
            match spawned {
                Ok(h) => handles.push(h),
                // The threads already started take its shards.
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let n = handles.len();
        // Always set, so that no started thread waits forever.
        let _ = started.set((n.max(1), Barrier::new(n.max(1))));
        match refused {
            Some(e) if n == 0 => Err(e),
            _ => Ok(handles
                .into_iter()
                .flat_map(|h| h.join().expect("a compile shard panicked"))
                .collect()),
        }
    });
    let mut results = results.map_err(|e| {
        CompileError::Thread(format!(
            "cannot start a compile thread with a {} MiB stack: {e} (is the memory cap too small?)",
            LLVM_THREAD_STACK >> 20
        ))
    })?;
    // Objects in shard order, whatever thread built them: the link order
    // is part of the artefact's bytes.
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, r)| r).collect()
}

/// A shared object written to disk.
#[cfg(feature = "llvm")]
#[derive(Clone, Debug)]
pub struct Artifact {
    /// Where the `.so` is.
    pub path: PathBuf,
    /// Keccak-256 of the bytecode.
    pub code_hash: B256,
    /// File size in bytes.
    pub size: u64,
    /// Time spent in each stage.
    pub timings: Timings,
}

/// Compiles `code` into the shared object `out`. The file appears atomically:
/// it is linked under a temporary name in the same directory and renamed.
///
/// ```no_run
/// use evmc_compiler::{compile_to_file, CompileOptions, SpecId};
///
/// // PUSH1 1 PUSH1 2 ADD STOP
/// let code = [0x60, 0x01, 0x60, 0x02, 0x01, 0x00];
/// let mut opts = CompileOptions::new(SpecId::OSAKA);
/// opts.opt_level = 2;
/// let artifact = compile_to_file(&code, &opts, "/tmp/add.so".as_ref())?;
/// println!("{} bytes, {:?}", artifact.size, artifact.timings.total());
/// // Load it with `evmc_runtime::Loader`, or compile through
/// // `evmc_runtime::ArtifactCache::get_or_compile` instead.
/// # Ok::<(), evmc_compiler::CompileError>(())
/// ```
#[cfg(feature = "llvm")]
pub fn compile_to_file(
    code: &[u8],
    opts: &CompileOptions,
    out: &Path,
) -> Result<Artifact, CompileError> {
    let obj = compile_object(code, opts)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompileError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let start = Instant::now();
    let mut obj_files = Vec::new();
    for object in &obj.objects {
        let f = tempfile::Builder::new()
            .prefix(".evmc-obj-")
            .suffix(".o")
            .tempfile_in(dir)
            .map_err(io(dir))?;
        std::fs::write(f.path(), object).map_err(io(f.path()))?;
        obj_files.push(f);
    }
    let obj_paths: Vec<&Path> = obj_files.iter().map(|f| f.path()).collect();
    let so_tmp = tempfile::Builder::new()
        .prefix(".evmc-so-")
        .suffix(".so")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    backend::link_shared_object(&obj_paths, so_tmp.path())?;
    let size = std::fs::metadata(so_tmp.path())
        .map_err(io(so_tmp.path()))?
        .len();
    so_tmp.persist(out).map_err(|e| CompileError::Io {
        path: out.to_path_buf(),
        source: e.error,
    })?;
    let mut timings = obj.timings;
    timings.link = start.elapsed();
    Ok(Artifact {
        path: out.to_path_buf(),
        code_hash: obj.code_hash,
        size,
        timings,
    })
}
