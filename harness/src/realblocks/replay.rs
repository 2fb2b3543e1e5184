//! Replaying block folders in one mode: interpreted, native (the contracts
//! the blocks spend their gas in compiled first, from what an interpreted
//! reference run saw of them: [`ReplayOptions::min_gas`],
//! [`ReplayOptions::whole_contracts`]), hot (compiled as contracts get
//! hot), or interpreter and native alternately, block by block.
//!
//! Every block is checked against its header; every mode but `interp` is
//! also checked against an interpreted run of the same block, transaction
//! by transaction and on the final state.
//!
//! With tracers ([`ReplayOptions::trace`]) the timed runs carry revm-inspectors'
//! tracers: interpreted runs with every hook, native and hot runs with
//! frame-level hooks only (compiled frames run natively). `compare` then
//! also requires identical traces of every transaction.

use super::compare::run_difference;
use super::execute::{
    execute_block, header_mismatches, trace_block_interp, trace_block_native, BlockRun,
};
use super::folder::{load_block, RealBlock};
use super::trace::{trace_difference, TraceKind, TxTraces};
use super::{BlockError, ErrorKind};
use alloy_evm::EthEvmFactory;
use evmc_compiler::RanPcs;
use evmc_runtime::hot::{CodeStats, CompileBackend, CompileState};
use evmc_runtime::safety_net::Verdict;
use evmc_runtime::{HotCompile, HotOptions, NativeEvmFactory, Registry};
use rayon::prelude::*;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Bytes, B256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How blocks are executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// revm's interpreter (alloy-evm's `EthEvmFactory`).
    Interp,
    /// Every contract the blocks execute compiled (per code hash and spec)
    /// before the native run.
    Native,
    /// Start interpreted; contracts are compiled in the background as they
    /// get hot and run natively from the next transaction on.
    Hot,
    /// Interpreter and native alternately, block by block.
    Compare,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Interp => "interp",
            Mode::Native => "native",
            Mode::Hot => "hot",
            Mode::Compare => "compare",
        }
    }
}

/// What [`replay`] needs besides the block folders.
pub struct ReplayOptions {
    pub mode: Mode,
    /// Where artifacts come from (the artifact cache, normally); required
    /// in every mode but `interp`.
    pub backend: Option<Arc<dyn CompileBackend>>,
    /// Threads compiling in `native` and `compare`.
    pub jobs: usize,
    /// Contracts above this size stay interpreted.
    pub max_code_size: usize,
    /// `native` and `compare`: compile only contracts whose own frames
    /// spent at least this much gas in the interpreted reference run, and
    /// that are not code too short to gain
    /// (`evmc_compiler::analysis::too_short` with `hot.min_native_run`);
    /// 0: every contract the blocks run.
    pub min_gas: u64,
    /// `native` and `compare`: compile each selected contract whole
    /// instead of only the blocks the reference run entered (the rest of
    /// a profiled contract hands its frames to the interpreter:
    /// `evmc_compiler::profile`).
    pub whole_contracts: bool,
    /// Thresholds and workers of `hot`.
    pub hot: HotOptions,
    /// Trace every transaction with these tracers (none: untraced). In
    /// `interp` the interpreted run is traced; in `native` and `hot` the
    /// native (or hot) run, with frame-level native frames; in `compare`
    /// both, whose traces must then be identical, and an untraced native
    /// run is timed besides.
    pub trace: Vec<TraceKind>,
    /// Keep each block's traces in its [`BlockReport`] (else they are only
    /// handed to [`Progress::traces`]).
    pub keep_traces: bool,
    /// `interp`, `native` and `compare`: times each timed run this many
    /// times (alternating the modes in `compare`) and reports the median,
    /// for stable figures and for profiling; only the first run of each is
    /// checked. 1 when 0.
    pub repeat: usize,
    /// `native`, `compare` and `hot`: run each artefact the faster way as
    /// measured (see `evmc_runtime::safety_net`); off, every compiled
    /// frame runs natively.
    pub safety_net: bool,
}

/// One block's result.
#[derive(Clone, Debug)]
pub struct BlockReport {
    pub dir: PathBuf,
    /// Absent when the folder did not load.
    pub number: Option<u64>,
    pub fork: Option<&'static str>,
    pub txs: usize,
    pub gas: u64,
    /// Execution time of the interpreted run that was timed.
    pub interp: Option<Duration>,
    /// Execution time of the native (or hot) run.
    pub native: Option<Duration>,
    /// `compare` with tracers: execution time of an untraced native run.
    pub native_untraced: Option<Duration>,
    /// Time spent building the traces of the timed runs (not in their
    /// execution times).
    pub trace_build: Duration,
    /// Each transaction's traces (interpreted ones in `compare`), when
    /// traced and kept.
    pub traces: Vec<TxTraces>,
    /// Every check that failed; empty when the block is verified.
    pub problems: Vec<BlockError>,
}

impl BlockReport {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            number: None,
            fork: None,
            txs: 0,
            gas: 0,
            interp: None,
            native: None,
            native_untraced: None,
            trace_build: Duration::ZERO,
            traces: Vec::new(),
            problems: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The block is bad input (its folder lacks or damages something).
    pub fn bad_input(&self) -> bool {
        self.problems.iter().any(|p| p.kind == ErrorKind::Input)
    }

    /// Native (or hot) time over interpreted time, as a speedup.
    pub fn ratio(&self) -> Option<f64> {
        match (self.interp, self.native) {
            (Some(i), Some(n)) if n > Duration::ZERO => Some(i.as_secs_f64() / n.as_secs_f64()),
            _ => None,
        }
    }

    fn label(&self) -> String {
        self.number
            .map(|n| n.to_string())
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    fn fail(&mut self, what: String) {
        let label = self.label();
        self.problems.push(BlockError::failed(label, what));
    }
}

/// One distinct contract compiled for `native` or `compare`, by
/// (code hash, spec).
#[derive(Clone, Debug)]
pub struct CompiledContract {
    pub code_hash: B256,
    pub spec: SpecId,
    pub code_size: usize,
    /// Gas its own frames spent in the interpreted reference run, and how
    /// many frames it ran there: what it was selected for.
    pub gas: u64,
    pub frames: u64,
    /// `compiled`, `cached`, `interpreted` (over the size cap) or `failed`.
    pub status: &'static str,
    pub secs: f64,
    pub error: Option<String>,
    /// Pcs of the reference run's profile its compile took (only the
    /// blocks they start are compiled); `None` when compiled whole.
    pub ran_pcs: Option<usize>,
}

/// The compile phase of `native` and `compare`.
#[derive(Clone, Debug, Default)]
pub struct CompileSummary {
    pub contracts: Vec<CompiledContract>,
    /// Gas spent in contract frames (their own, children excluded) in the
    /// reference run, and the part of it spent by the contracts selected
    /// for compilation.
    pub frame_gas: u64,
    pub selected_gas: u64,
    /// Wall time of the whole phase.
    pub wall: Duration,
}

impl CompileSummary {
    pub fn count(&self, status: &str) -> usize {
        self.contracts.iter().filter(|c| c.status == status).count()
    }
}

/// Everything [`replay`] found.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub blocks: Vec<BlockReport>,
    pub compile: Option<CompileSummary>,
    /// `hot`: what was handed to the compiler while running.
    pub hot: Vec<HotCompile>,
    /// Frames run natively in the native (or hot) runs.
    pub native_frames: u64,
    /// The safety net's verdicts at the end, when it was on.
    pub safety_net: Option<NetSummary>,
}

/// How many artefacts the safety net left in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetSummary {
    pub native: usize,
    pub interpreted: usize,
    pub undecided: usize,
}

impl NetSummary {
    /// The verdicts of every artefact in `registry`.
    pub fn of(registry: &Registry) -> Self {
        let mut s = Self::default();
        for art in registry.snapshot().values() {
            match art.safety_net().verdict {
                Verdict::Native => s.native += 1,
                Verdict::Interpreted => s.interpreted += 1,
                Verdict::Undecided => s.undecided += 1,
            }
        }
        s
    }
}

/// Gas and time summed over the blocks that have a time for a mode.
#[derive(Clone, Copy, Debug, Default)]
pub struct Throughput {
    pub gas: u64,
    pub secs: f64,
}

impl Throughput {
    pub fn mgas_per_s(&self) -> f64 {
        self.gas as f64 / 1e6 / self.secs.max(1e-12)
    }
}

impl ReplayReport {
    pub fn passed(&self) -> usize {
        self.blocks.iter().filter(|b| b.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.blocks.len() - self.passed()
    }

    /// Interpreted throughput over the blocks that ran in both modes when
    /// there is a native time (for a fair ratio), else over all.
    pub fn interp_total(&self) -> Throughput {
        self.total(|b| b.interp)
    }

    pub fn native_total(&self) -> Throughput {
        self.total(|b| b.native)
    }

    /// `compare` with tracers: the untraced native runs, over the blocks
    /// that ran in both modes.
    pub fn native_untraced_total(&self) -> Throughput {
        self.total(|b| b.native_untraced)
    }

    /// Time spent building traces, over all blocks.
    pub fn trace_build(&self) -> Duration {
        self.blocks.iter().map(|b| b.trace_build).sum()
    }

    fn total(&self, time: impl Fn(&BlockReport) -> Option<Duration>) -> Throughput {
        let both = self
            .blocks
            .iter()
            .any(|b| b.interp.is_some() && b.native.is_some());
        let mut t = Throughput::default();
        for b in &self.blocks {
            if both && (b.interp.is_none() || b.native.is_none()) {
                continue;
            }
            if let Some(d) = time(b) {
                t.gas += b.gas;
                t.secs += d.as_secs_f64();
            }
        }
        t
    }
}

/// Told about the phases and blocks of a replay as they happen (progress
/// bars, per-block lines).
pub trait Progress {
    /// A phase of `len` steps starts (`loading`, `compiling`, ...).
    fn phase(&mut self, _name: &str, _len: usize) {}
    /// One step of the current phase is done.
    fn tick(&mut self) {}
    /// The traces of a block, when tracing: called before
    /// [`Progress::block`] for the same block.
    fn traces(&mut self, _report: &BlockReport, _traces: &[TxTraces]) {}
    /// A block is finished.
    fn block(&mut self, _report: &BlockReport) {}
}

impl Progress for () {}

/// Replays the block folders `dirs` in `opts.mode`.
pub fn replay(dirs: &[PathBuf], opts: &ReplayOptions, progress: &mut dyn Progress) -> ReplayReport {
    let mut reports: Vec<BlockReport> = dirs.iter().map(|d| BlockReport::new(d)).collect();
    progress.phase("loading", dirs.len());
    let mut blocks: Vec<Option<RealBlock>> = Vec::with_capacity(dirs.len());
    for (dir, report) in dirs.iter().zip(&mut reports) {
        match load_block(dir) {
            Ok(b) => {
                report.number = Some(b.number());
                report.fork = Some(b.fork());
                report.txs = b.transactions.len();
                report.gas = b.header.gas_used;
                blocks.push(Some(b));
            }
            Err(e) => {
                report.problems.push(e);
                blocks.push(None);
            }
        }
        progress.tick();
    }
    let mut out = ReplayReport::default();
    let needs_backend = opts.mode != Mode::Interp;
    let backend = match (&opts.backend, needs_backend) {
        (Some(b), _) => Some(b.clone()),
        (None, false) => None,
        (None, true) => {
            for r in &mut reports {
                r.fail(format!("{} mode needs an artifact cache", opts.mode.name()));
            }
            out.blocks = reports;
            return out;
        }
    };
    match opts.mode {
        Mode::Interp => {
            progress.phase("interp", blocks.len());
            for (block, report) in blocks.iter().zip(&mut reports) {
                if let Some(block) = block {
                    let run = interp_run(block, &opts.trace);
                    if let Some(run) = checked(block, run, report, "") {
                        let mut times = vec![run.time];
                        for _ in 1..opts.repeat.max(1) {
                            times.extend(again(interp_run(block, &opts.trace), report));
                        }
                        report.interp = Some(median(times));
                        report.trace_build += run.trace_build;
                        deliver_traces(report, run.traces, opts, progress);
                    }
                }
                progress.tick();
                progress.block(report);
            }
        }
        Mode::Native | Mode::Compare => {
            let backend = backend.expect("checked above");
            let registry = Registry::new();
            registry.set_safety_net(opts.safety_net);
            let native = NativeEvmFactory::new(registry).with_backend(backend);
            // The reference: interpreted, counting which contracts run and,
            // unless they are compiled whole, which of their pcs.
            let counting = if opts.whole_contracts {
                NativeEvmFactory::default().with_frame_counting()
            } else {
                NativeEvmFactory::default().with_run_profiles()
            };
            progress.phase("reference", blocks.len());
            let mut reference: Vec<Option<BlockRun>> = Vec::with_capacity(blocks.len());
            let mut code: HashMap<B256, Bytes> = HashMap::new();
            for (block, report) in blocks.iter().zip(&mut reports) {
                let run = block.as_ref().and_then(|b| {
                    let run = execute_block(b, counting.clone());
                    let run = checked(b, run, report, "interpreted: ")?;
                    for (h, c) in &b.pre_state.contracts {
                        code.entry(*h).or_insert_with(|| c.original_bytes());
                    }
                    for (h, c) in &run.new_code {
                        code.entry(*h).or_insert_with(|| c.clone());
                    }
                    Some(run)
                });
                // Native mode's interpreted time, unless the native run is
                // traced (an untraced time beside it would mislead). A
                // profiling reference run steps slower than the
                // interpreter's own loop: the block runs again for the time.
                if opts.mode == Mode::Native && opts.trace.is_empty() {
                    report.interp = match (&run, block) {
                        (Some(_), Some(b)) if !opts.whole_contracts => {
                            execute_block(b, EthEvmFactory::default())
                                .ok()
                                .map(|r| r.time)
                        }
                        (run, _) => run.as_ref().map(|r| r.time),
                    };
                }
                reference.push(run);
                progress.tick();
            }
            let mut jobs = Vec::new();
            let (mut frame_gas, mut selected_gas) = (0, 0);
            for (spec, counters) in counting.counters() {
                for (hash, stats) in counters.snapshot() {
                    frame_gas += stats.gas;
                    if stats.gas < opts.min_gas {
                        continue;
                    }
                    // Selecting by gas, code too short to pay
                    // for compiled code's entry stays interpreted too.
                    let picked = code.get(&hash).filter(|c| {
                        !c.is_empty()
                            && (opts.min_gas == 0
                                || evmc_compiler::analysis::too_short(c, opts.hot.min_native_run)
                                    .is_none())
                    });
                    if let Some(c) = picked {
                        selected_gas += stats.gas;
                        jobs.push(CompileJob {
                            hash,
                            spec,
                            code: c.clone(),
                            stats,
                            ran: counting.ran(spec, hash),
                        });
                    }
                }
            }
            drop(code);
            let mut summary = compile_all(&native, jobs, opts, progress);
            summary.frame_gas = frame_gas;
            summary.selected_gas = selected_gas;
            out.compile = Some(summary);
            let phase = if opts.mode == Mode::Native {
                "native"
            } else {
                "compare"
            };
            progress.phase(phase, blocks.len());
            for (i, ((block, report), reference)) in
                blocks.iter().zip(&mut reports).zip(&reference).enumerate()
            {
                if let (Some(block), Some(reference)) = (block, reference) {
                    let compare = opts.mode == Mode::Compare;
                    let interp_first = i % 2 == 0;
                    let mut interp = None;
                    if compare && interp_first {
                        interp = timed_interp(block, reference, &opts.trace, report);
                    }
                    let traced = compare && !opts.trace.is_empty();
                    // The untraced native run, besides the traced one, to
                    // show what tracing costs; before it on odd blocks,
                    // after it on even ones, as the first native run of a
                    // block pays for cold code.
                    if traced && !interp_first {
                        untraced_native(block, &native, reference, report);
                    }
                    let run = native_run(block, &native, &opts.trace);
                    let run = checked(block, run, report, "native: ");
                    if let Some(run) = &run {
                        report.native = Some(run.time);
                        report.trace_build += run.trace_build;
                        if let Some(d) = run_difference(reference, run, "interpreted", "native") {
                            report.fail(format!("native differs from the interpreter: {d}"));
                        }
                    }
                    if compare && !interp_first {
                        interp = timed_interp(block, reference, &opts.trace, report);
                    }
                    if traced && interp_first {
                        untraced_native(block, &native, reference, report);
                    }
                    let traces = match (compare, interp, run) {
                        (true, Some(interp), Some(native)) => {
                            let d = trace_difference(
                                &interp.traces,
                                &native.traces,
                                "interpreted",
                                "native",
                            );
                            if let Some(d) = d {
                                report.fail(format!(
                                    "native traces differ from the interpreter's: {d}"
                                ));
                            }
                            interp.traces
                        }
                        (true, Some(interp), None) => interp.traces,
                        (false, _, Some(native)) => native.traces,
                        _ => Vec::new(),
                    };
                    if !opts.trace.is_empty() {
                        deliver_traces(report, traces, opts, progress);
                    }
                    if opts.repeat > 1 {
                        repeat_timed(block, &native, opts, i, report);
                    }
                }
                progress.tick();
                progress.block(report);
            }
            out.native_frames = native.native_frames();
            out.safety_net = opts.safety_net.then(|| NetSummary::of(native.registry()));
        }
        Mode::Hot => {
            let backend = backend.expect("checked above");
            let registry = Registry::new();
            registry.set_safety_net(opts.safety_net);
            let hot = match NativeEvmFactory::new(registry)
                .with_backend(backend)
                .with_hot_compilation(opts.hot.clone())
            {
                Ok(f) => f,
                Err(e) => {
                    for r in &mut reports {
                        r.fail(format!("hot compilation: {e}"));
                    }
                    out.blocks = reports;
                    return out;
                }
            };
            progress.phase("hot", blocks.len());
            for (block, report) in blocks.iter().zip(&mut reports) {
                if let Some(block) = block {
                    let reference = execute_block(block, EthEvmFactory::default());
                    let reference = checked(block, reference, report, "interpreted: ");
                    if let Some(reference) = reference {
                        if opts.trace.is_empty() {
                            report.interp = Some(reference.time);
                        }
                        let run = native_run(block, &hot, &opts.trace);
                        if let Some(run) = checked(block, run, report, "hot: ") {
                            report.native = Some(run.time);
                            report.trace_build += run.trace_build;
                            if let Some(d) = run_difference(&reference, &run, "interpreted", "hot")
                            {
                                report.fail(format!("hot differs from the interpreter: {d}"));
                            }
                            if !opts.trace.is_empty() {
                                deliver_traces(report, run.traces, opts, progress);
                            }
                        }
                    }
                }
                progress.tick();
                progress.block(report);
            }
            hot.wait_idle();
            out.hot = hot.hot_compiles();
            out.native_frames = hot.native_frames();
            out.safety_net = opts.safety_net.then(|| NetSummary::of(hot.registry()));
        }
    }
    out.blocks = reports;
    out
}

/// The interpreted run of compare mode: timed (traced when `trace` names
/// tracers), checked against the header and against the reference run.
fn timed_interp(
    block: &RealBlock,
    reference: &BlockRun,
    trace: &[TraceKind],
    report: &mut BlockReport,
) -> Option<BlockRun> {
    let run = checked(block, interp_run(block, trace), report, "interpreted: ")?;
    report.interp = Some(run.time);
    report.trace_build += run.trace_build;
    if let Some(d) = run_difference(reference, &run, "first run", "second run") {
        report.fail(format!("two interpreted runs differ: {d}"));
    }
    Some(run)
}

/// The untraced native run of a traced compare: timed, checked against
/// the header and the reference run.
fn untraced_native(
    block: &RealBlock,
    native: &NativeEvmFactory,
    reference: &BlockRun,
    report: &mut BlockReport,
) {
    let run = execute_block(block, native.clone());
    if let Some(run) = checked(block, run, report, "untraced native: ") {
        report.native_untraced = Some(run.time);
        if let Some(d) = run_difference(reference, &run, "interpreted", "native") {
            report.fail(format!("untraced native differs from the interpreter: {d}"));
        }
    }
}

/// The repetitions of `--repeat` after a block's checked runs: the same
/// runs again, timed only (the modes alternating, which goes first
/// changing from one repetition to the next); the block's times become the
/// medians of all runs.
fn repeat_timed(
    block: &RealBlock,
    native: &NativeEvmFactory,
    opts: &ReplayOptions,
    i: usize,
    report: &mut BlockReport,
) {
    let compare = opts.mode == Mode::Compare;
    let mut interp: Vec<Duration> = report.interp.into_iter().collect();
    let mut native_times: Vec<Duration> = report.native.into_iter().collect();
    for r in 1..opts.repeat {
        let interp_first = (i + r).is_multiple_of(2);
        if compare && interp_first {
            interp.extend(again(interp_run(block, &opts.trace), report));
        }
        native_times.extend(again(native_run(block, native, &opts.trace), report));
        if compare && !interp_first {
            interp.extend(again(interp_run(block, &opts.trace), report));
        }
    }
    if compare && !interp.is_empty() {
        report.interp = Some(median(interp));
    }
    if !native_times.is_empty() {
        report.native = Some(median(native_times));
    }
}

/// The time of a repeated run; its error, if the block no longer
/// executes, goes to `report`.
fn again(run: Result<BlockRun, BlockError>, report: &mut BlockReport) -> Option<Duration> {
    match run {
        Ok(run) => Some(run.time),
        Err(e) => {
            report.problems.push(e);
            None
        }
    }
}

/// The median of `times` (not empty): the lower middle one of an even count.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[(times.len() - 1) / 2]
}

/// `block` in revm's interpreter, with tracers for `trace` if any.
fn interp_run(block: &RealBlock, trace: &[TraceKind]) -> Result<BlockRun, BlockError> {
    if trace.is_empty() {
        execute_block(block, EthEvmFactory::default())
    } else {
        trace_block_interp(block, trace)
    }
}

/// `block` with `factory`'s native frames, with tracers for `trace` if any
/// (frame-level: compiled frames still run natively).
fn native_run(
    block: &RealBlock,
    factory: &NativeEvmFactory,
    trace: &[TraceKind],
) -> Result<BlockRun, BlockError> {
    if trace.is_empty() {
        execute_block(block, factory.clone())
    } else {
        trace_block_native(block, factory, trace)
    }
}

/// Hands a block's traces to `progress`, and keeps them in the report if
/// asked to.
fn deliver_traces(
    report: &mut BlockReport,
    traces: Vec<TxTraces>,
    opts: &ReplayOptions,
    progress: &mut dyn Progress,
) {
    progress.traces(report, &traces);
    if opts.keep_traces {
        report.traces = traces;
    }
}

/// Checks the execution `run` of `block` against the header; problems go
/// to `report` (prefixed with `what`). `None` when it could not execute.
fn checked(
    block: &RealBlock,
    run: Result<BlockRun, BlockError>,
    report: &mut BlockReport,
    what: &str,
) -> Option<BlockRun> {
    match run {
        Ok(run) => {
            for m in header_mismatches(block, &run) {
                report.fail(format!("{what}{m}"));
            }
            Some(run)
        }
        Err(mut e) => {
            e.what = format!("{what}{}", e.what);
            report.problems.push(e);
            None
        }
    }
}

/// A contract picked for compiling, with what the reference run counted.
struct CompileJob {
    hash: B256,
    spec: SpecId,
    code: Bytes,
    stats: CodeStats,
    /// The pcs the reference run entered, when only those are compiled.
    ran: Option<RanPcs>,
}

/// Compiles `jobs` in parallel on `opts.jobs` threads through `factory`'s
/// backend and registers the artifacts.
fn compile_all(
    factory: &NativeEvmFactory,
    mut jobs: Vec<CompileJob>,
    opts: &ReplayOptions,
    progress: &mut dyn Progress,
) -> CompileSummary {
    let start = Instant::now();
    // Big contracts first, so that the slowest compiles do not end the phase.
    jobs.sort_by(|a, b| b.code.len().cmp(&a.code.len()).then(a.hash.cmp(&b.hash)));
    progress.phase("compiling", jobs.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        // LLVM recurses deeply on large functions.
        .stack_size(64 << 20)
        .build();
    let compile = |job: &CompileJob| {
        let CompileJob {
            hash,
            spec,
            code,
            stats,
            ran,
        } = job;
        let t = Instant::now();
        let (status, error) = if code.len() > opts.max_code_size {
            ("interpreted", None)
        } else {
            let made = match ran {
                Some(ran) => factory.ensure_native_ran(code, *spec, ran),
                None => factory.ensure_native(code, *spec),
            };
            match made {
                Ok(true) => ("cached", None),
                Ok(false) => ("compiled", None),
                Err(e) => ("failed", Some(e)),
            }
        };
        CompiledContract {
            code_hash: *hash,
            spec: *spec,
            code_size: code.len(),
            gas: stats.gas,
            frames: stats.calls,
            status,
            secs: t.elapsed().as_secs_f64(),
            error,
            ran_pcs: ran.as_ref().map(RanPcs::len),
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let mut contracts = Vec::with_capacity(jobs.len());
    std::thread::scope(|s| {
        s.spawn(|| {
            let run = || {
                jobs.par_iter().for_each_with(tx, |tx, job| {
                    let _ = tx.send(compile(job));
                })
            };
            match &pool {
                Ok(pool) => pool.install(run),
                Err(_) => run(),
            }
        });
        for c in rx {
            contracts.push(c);
            progress.tick();
        }
    });
    contracts.sort_by_key(|c| (c.spec as u8, c.code_hash));
    CompileSummary {
        contracts,
        wall: start.elapsed(),
        ..CompileSummary::default()
    }
}

/// Hot compiles by state: `(ready, cached, failed)` counts.
pub fn hot_counts(hot: &[HotCompile]) -> (usize, usize, usize) {
    let mut by: BTreeMap<u8, usize> = BTreeMap::new();
    for h in hot {
        let k = match h.state {
            CompileState::Ready { cached: false, .. } => 0,
            CompileState::Ready { cached: true, .. } => 1,
            CompileState::Failed(_) => 2,
            CompileState::Queued => 3,
        };
        *by.entry(k).or_default() += 1;
    }
    (
        by.get(&0).copied().unwrap_or(0),
        by.get(&1).copied().unwrap_or(0),
        by.get(&2).copied().unwrap_or(0),
    )
}
