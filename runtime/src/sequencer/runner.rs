//! The block loop in each mode, and interpreter-vs-native comparison.

use super::stats::RunStats;
use super::verify::block_difference;
use super::workload::Workload;
use crate::hot::{
    CompileBackend, CompileState, CompilerConfig, HotCompiler, HotCounters, InProcessBackend,
    Thresholds,
};
use crate::registry::Registry;
use crate::revm_glue::block::{keccak256, BlockExecutor, BlockOutput, B256};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the sequencer executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// revm's interpreter only.
    Interp,
    /// Every contract of the workload compiled before the first block.
    Native,
    /// Interpreted at first; contracts are compiled in the background once
    /// they pass the gas threshold and run natively from the next
    /// transaction on.
    Hot,
}

/// Hot mode's settings.
#[derive(Clone, Debug, Default)]
pub struct HotOptions {
    /// When a contract counts as hot.
    pub thresholds: Thresholds,
    /// Wait at each block's end until submitted compiles are done, so that
    /// when a contract switches to native code is reproducible (tests).
    pub wait_each_block: bool,
}

/// How to run a workload.
pub struct RunOptions {
    /// The mode.
    pub mode: Mode,
    /// Hot mode's settings.
    pub hot: HotOptions,
    /// Spec, workers, size and time caps of compilation.
    pub compiler: CompilerConfig,
    /// Where artifacts come from.
    pub backend: Arc<dyn CompileBackend>,
    /// Keep every block's receipts and diff in the report (for verifying);
    /// otherwise each is dropped after its block.
    pub keep_outputs: bool,
    /// Run an artefact that measures slower than the interpreter
    /// interpreted (see [`crate::safety_net`]); on by default.
    pub safety_net: bool,
}

impl RunOptions {
    /// Compiles in process at `opt_level`, with one worker in hot mode and
    /// every core for native mode's up-front compile.
    pub fn new(mode: Mode, workload: &Workload, opt_level: u8) -> Result<Self, String> {
        let backend = InProcessBackend::new(opt_level)
            .map_err(|e| format!("temporary directory for artifacts: {e}"))?;
        Ok(Self {
            mode,
            hot: HotOptions::default(),
            compiler: CompilerConfig::new(workload.spec),
            backend: Arc::new(backend),
            keep_outputs: true,
            safety_net: true,
        })
    }
}

/// One contract given to the compiler, and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct CompileRecord {
    /// The contract's name in the workload.
    pub name: String,
    /// Its code hash.
    pub code_hash: B256,
    /// Its bytecode length.
    pub code_size: usize,
    /// `ready`, `cached` or `failed`.
    pub status: &'static str,
    /// Compile wall time in seconds.
    pub compile_secs: f64,
    /// Took longer than the time cap.
    pub overran: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The block during which the artifact was registered; it runs from
    /// the next transaction on.
    pub native_from_block: Option<u64>,
}

/// Gas and frames counted for one contract in hot mode.
#[derive(Clone, Debug, Serialize)]
pub struct HotEntry {
    /// The contract's name in the workload.
    pub name: String,
    /// Its code hash.
    pub code_hash: B256,
    /// Gas its own frames spent.
    pub gas: u64,
    /// Frames run.
    pub calls: u64,
}

/// The result of one run.
pub struct RunReport {
    /// The mode.
    pub mode: Mode,
    /// Empty unless [`RunOptions::keep_outputs`].
    pub outputs: Vec<BlockOutput>,
    /// Throughput per block and in total.
    pub stats: RunStats,
    /// Wall time of the up-front compile (native mode).
    pub compile_time: Duration,
    /// Every contract given to the compiler.
    pub compiles: Vec<CompileRecord>,
    /// Frames run natively.
    pub native_frames: u64,
    /// Hot mode: the counters at the end, most gas first.
    pub hot: Vec<HotEntry>,
    /// Hot mode: the first block that ran with a compiled contract.
    pub first_native_block: Option<u64>,
}

/// Runs every block of `w` in `opts.mode`.
pub fn run(w: &Workload, opts: &RunOptions) -> RunReport {
    let registry = Registry::new();
    registry.set_safety_net(opts.safety_net);
    let names = contract_names(w);
    let counters = (opts.mode == Mode::Hot).then(|| HotCounters::new(opts.hot.thresholds));
    let mut config = opts.compiler.clone();
    if opts.mode == Mode::Native {
        config.workers = config.workers.max(available_cores());
    }
    let compiler = HotCompiler::new(config, opts.backend.clone(), registry.clone());
    let mut compile_time = Duration::ZERO;
    match opts.mode {
        Mode::Interp => {}
        Mode::Native => compile_time = precompile(w, &compiler),
        Mode::Hot => {
            // Contracts known to be hot from earlier runs come straight from
            // the backend's cache.
            for c in &w.contracts {
                compiler.preload(keccak256(&c.code));
            }
        }
    }
    let mut exec = BlockExecutor::new(&w.genesis, w.spec, registry, counters.clone());
    let mut stats = RunStats::default();
    let mut outputs = Vec::with_capacity(w.blocks.len());
    let mut first_native_block = None;
    let mut native_from = HashMap::new();
    let mut seen_generation = None;
    for block in &w.blocks {
        let frames_before = exec.native_frames();
        let mut out = BlockOutput {
            receipts: Vec::with_capacity(block.txs.len()),
            ..Default::default()
        };
        let start = Instant::now();
        exec.begin_block(&block.header);
        for tx in &block.txs {
            if opts.mode != Mode::Interp && seen_generation != Some(compiler.generation()) {
                seen_generation = Some(compiler.generation());
                note_ready(&compiler, block.header.number, &mut native_from);
            }
            exec.execute_tx(tx, &mut out);
            if let Some(counters) = &counters {
                for hash in counters.take_newly_hot() {
                    if let Some(code) = exec.code_by_hash(hash) {
                        compiler.submit(hash, &code);
                    }
                }
            }
        }
        let time = start.elapsed();
        stats.record(block.header.number, block.txs.len(), out.gas_used, time);
        if first_native_block.is_none() && exec.native_frames() > frames_before {
            first_native_block = Some(block.header.number);
        }
        if opts.keep_outputs {
            outputs.push(out);
        }
        if counters.is_some() && opts.hot.wait_each_block {
            compiler.wait_idle();
        }
    }
    let hot = counters
        .map(|c| {
            c.snapshot()
                .into_iter()
                .map(|(code_hash, s)| HotEntry {
                    name: names.get(&code_hash).cloned().unwrap_or_default(),
                    code_hash,
                    gas: s.gas,
                    calls: s.calls,
                })
                .collect()
        })
        .unwrap_or_default();
    // Compiles still running belong in the report.
    compiler.wait_idle();
    RunReport {
        mode: opts.mode,
        outputs,
        stats,
        compile_time,
        compiles: records(&compiler, w, &native_from),
        native_frames: exec.native_frames(),
        hot,
        first_native_block,
    }
}

/// Interpreter and native runs of the same blocks, alternated.
pub struct CompareReport {
    /// The interpreter's throughput.
    pub interp: RunStats,
    /// Native throughput.
    pub native: RunStats,
    /// Wall time of the up-front compile.
    pub compile_time: Duration,
    /// Every contract given to the compiler.
    pub compiles: Vec<CompileRecord>,
    /// Frames run natively.
    pub native_frames: u64,
    /// keccak of every block's digest, equal in both modes when they agree.
    pub digest: B256,
    /// The first block where the two differ, described.
    pub mismatch: Option<String>,
}

impl CompareReport {
    /// Native throughput over the interpreter's.
    pub fn speedup(&self) -> f64 {
        self.native.total.tps() / self.interp.total.tps().max(1e-12)
    }
}

/// Runs each block through the interpreter and natively on two copies of
/// the state, alternating which goes first, and compares their outputs.
pub fn compare(w: &Workload, opts: &RunOptions) -> CompareReport {
    let registry = Registry::new();
    registry.set_safety_net(opts.safety_net);
    let mut config = opts.compiler.clone();
    config.workers = config.workers.max(available_cores());
    let compiler = HotCompiler::new(config, opts.backend.clone(), registry.clone());
    let compile_time = precompile(w, &compiler);
    let mut interp = BlockExecutor::new(&w.genesis, w.spec, Registry::new(), None);
    let mut native = BlockExecutor::new(&w.genesis, w.spec, registry, None);
    let (mut si, mut sn) = (RunStats::default(), RunStats::default());
    let mut digests = Vec::with_capacity(32 * w.blocks.len());
    let mut mismatch = None;
    for (i, block) in w.blocks.iter().enumerate() {
        let timed = |exec: &mut BlockExecutor, stats: &mut RunStats| {
            let start = Instant::now();
            let out = exec.execute_block(&block.header, &block.txs);
            let time = start.elapsed();
            stats.record(block.header.number, block.txs.len(), out.gas_used, time);
            out
        };
        let (a, b) = if i % 2 == 0 {
            let a = timed(&mut interp, &mut si);
            (a, timed(&mut native, &mut sn))
        } else {
            let b = timed(&mut native, &mut sn);
            (timed(&mut interp, &mut si), b)
        };
        digests.extend_from_slice(a.digest().as_slice());
        if mismatch.is_none() {
            mismatch = block_difference(&a, &b)
                .map(|d| format!("block {}: interpreter vs native: {d}", block.header.number));
        }
    }
    CompareReport {
        interp: si,
        native: sn,
        compile_time,
        compiles: records(&compiler, w, &HashMap::new()),
        native_frames: native.native_frames(),
        digest: keccak256(&digests),
        mismatch,
    }
}

/// Digest of a whole run: keccak of every block's digest.
pub fn run_digest(outputs: &[BlockOutput]) -> B256 {
    let all: Vec<u8> = outputs.iter().flat_map(|o| o.digest().0).collect();
    keccak256(&all)
}

/// Compiles every contract of the workload, in parallel; returns wall time.
fn precompile(w: &Workload, compiler: &HotCompiler) -> Duration {
    let start = Instant::now();
    for c in &w.contracts {
        compiler.submit(keccak256(&c.code), &c.code);
    }
    compiler.wait_idle();
    start.elapsed()
}

/// Records `number` as the block of every artifact newly ready.
fn note_ready(compiler: &HotCompiler, number: u64, native_from: &mut HashMap<B256, u64>) {
    for (hash, state) in compiler.states() {
        if matches!(state, CompileState::Ready { .. }) {
            native_from.entry(hash).or_insert(number);
        }
    }
}

fn records(
    compiler: &HotCompiler,
    w: &Workload,
    native_from: &HashMap<B256, u64>,
) -> Vec<CompileRecord> {
    let contracts: HashMap<B256, (&str, usize)> = w
        .contracts
        .iter()
        .map(|c| (keccak256(&c.code), (c.name, c.code.len())))
        .collect();
    compiler
        .states()
        .into_iter()
        .map(|(code_hash, state)| {
            let (name, code_size) = contracts.get(&code_hash).copied().unwrap_or(("?", 0));
            let (status, compile_secs, overran, error) = match state {
                CompileState::Queued => ("queued", 0.0, false, None),
                CompileState::Ready {
                    time,
                    cached,
                    overran,
                } => (
                    if cached { "cached" } else { "ready" },
                    time.as_secs_f64(),
                    overran,
                    None,
                ),
                CompileState::Failed(e) => ("failed", 0.0, false, Some(e)),
            };
            CompileRecord {
                name: name.to_string(),
                code_hash,
                code_size,
                status,
                compile_secs,
                overran,
                error,
                native_from_block: native_from.get(&code_hash).copied(),
            }
        })
        .collect()
}

fn contract_names(w: &Workload) -> HashMap<B256, String> {
    w.contracts
        .iter()
        .map(|c| (keccak256(&c.code), c.name.to_string()))
        .collect()
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
