//! `evmc-native replay`: real blocks on their own pre-state through
//! alloy-evm's block executor, interpreted, native, compiled when hot, or
//! interpreter and native compared; each block checked against its header
//! and, natively, against the interpreter.

use crate::Failure;
use anyhow::anyhow;
use evmc_compiler::SpecId;
use evmc_harness::realblocks::replay::{
    hot_counts, replay, BlockReport, CompileSummary, Mode, Progress, ReplayOptions, ReplayReport,
    Throughput,
};
use evmc_harness::realblocks::{find_block_dirs, fork_name, TraceKind, TxTraces};
use evmc_runtime::cache::Source;
use evmc_runtime::hot::{CacheBackend, CompileBackend, CompileState, Thresholds};
use evmc_runtime::{ArtifactCache, CompileLimits, HotOptions, LoadedArtifact};
use indicatif::{ProgressBar, ProgressStyle};
use revm::primitives::B256;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReplayMode {
    Interp,
    Native,
    Hot,
    /// Interpreter and native on each block, alternating which goes first.
    Compare,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Block folders, or folders of block folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "interp")]
    mode: ReplayMode,
    /// One JSON object (blocks, compiles, totals) instead of text.
    #[arg(long)]
    json: bool,
    /// Artifact cache to take compiled contracts from and store them in
    /// (default: a temporary directory, removed at the end).
    #[arg(long = "cache-dir")]
    cache_dir: Option<PathBuf>,
    /// Compile threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// LLVM optimisation level of the compiled contracts.
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    opt_level: u8,
    /// Native and compare modes: compile only contracts whose own frames
    /// spent at least this much gas in the interpreted reference run; 0
    /// compiles every contract the blocks run. Of each, only the blocks the
    /// reference run entered are compiled (see --whole-contracts). The
    /// default keeps the first run's compile to about two minutes on two
    /// cores: on the shared blocks it picks 1,224 of 2,027 contracts (96%
    /// of their frames' gas, 80 s on an AMD EPYC); with their code fetched
    /// before its first run this pays over 50,000 (578 contracts), 1.34x
    /// against 1.31x in the medians of ten alternating pairs
    /// (benches/README.md, "Compiling more, now that first runs pay").
    /// Contracts too short to pay for compiled code's entries (minimal
    /// proxies, loops through calls with little between) stay interpreted
    /// too, unless this is 0.
    #[arg(long = "min-gas", default_value_t = 20_000)]
    min_gas: u64,
    /// native and compare: compile each selected contract whole. By
    /// default only the blocks the interpreted reference run entered are
    /// compiled, and a frame that reaches any other block goes on in the
    /// interpreter from there (same results, about half the compile time
    /// on the shared blocks).
    #[arg(long = "whole-contracts")]
    whole_contracts: bool,
    /// interp, native and compare: run each timed block this many times
    /// (alternating interpreter and native in compare) and report the
    /// median time; only the first run is checked.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeat: u64,
    /// native, compare and hot: run every compiled frame natively. By
    /// default the safety net times some frames of each artefact in both
    /// engines and runs the contract the faster way (results are the
    /// interpreter's either way); checking every compiled frame needs it
    /// off.
    #[arg(long = "no-safety-net")]
    no_safety_net: bool,
    /// Hot mode: gas a contract's own frames must spend to be compiled.
    #[arg(long = "hot-gas", default_value_t = Thresholds::default().gas)]
    hot_gas: u64,
    /// Hot mode: frames after which a contract is compiled whatever its gas.
    #[arg(long = "hot-calls")]
    hot_calls: Option<u64>,
    /// Hot mode: background compile threads per fork.
    #[arg(long = "compile-workers", default_value_t = 1)]
    compile_workers: usize,
    /// Trace every transaction with revm-inspectors' tracers (comma
    /// separated): geth's callTracer (with logs), geth's prestateTracer,
    /// parity's transaction traces. Printed as one JSON line per
    /// transaction (inside the report with --json); native runs keep
    /// compiled frames native under the tracers; compare requires the
    /// traces of both to be identical.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "TRACER")]
    trace: Vec<TraceArg>,
    #[command(flatten)]
    store: crate::cmd_store::StoreArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TraceArg {
    Call,
    Prestate,
    Parity,
}

impl TraceArg {
    fn kind(self) -> TraceKind {
        match self {
            TraceArg::Call => TraceKind::Call,
            TraceArg::Prestate => TraceKind::Prestate,
            TraceArg::Parity => TraceKind::Parity,
        }
    }
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let dirs = find_block_dirs(&args.paths).map_err(|e| Failure::BadInput(anyhow!(e)))?;
    let mode = match args.mode {
        ReplayMode::Interp => Mode::Interp,
        ReplayMode::Native => Mode::Native,
        ReplayMode::Hot => Mode::Hot,
        ReplayMode::Compare => Mode::Compare,
    };
    // Kept until the end: the artifacts are loaded from it.
    let mut temp_cache = None;
    let mut store: Option<Arc<StoreFirst>> = None;
    let backend: Option<Arc<dyn CompileBackend>> = if mode == Mode::Interp {
        None
    } else {
        let dir = match &args.cache_dir {
            Some(d) => d.clone(),
            None => {
                let t = tempfile::tempdir()
                    .map_err(|e| Failure::Internal(anyhow!("temporary cache directory: {e}")))?;
                let p = t.path().to_path_buf();
                temp_cache = Some(t);
                p
            }
        };
        let cache = crate::cmd_cache::open_cache(Some(dir), CompileLimits::default())?;
        let cache = crate::cmd_store::attach(cache, &args.store)?;
        let b = Arc::new(StoreFirst::new(cache, args.opt_level));
        store = Some(b.clone());
        Some(b)
    };
    let mut kinds: Vec<TraceKind> = args.trace.iter().map(|t| t.kind()).collect();
    kinds.sort();
    kinds.dedup();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = ReplayOptions {
        mode,
        backend,
        jobs: args.jobs.unwrap_or(cores).max(1),
        max_code_size: evmc_compiler::DEFAULT_MAX_CODE_SIZE,
        min_gas: args.min_gas,
        whole_contracts: args.whole_contracts,
        repeat: args.repeat as usize,
        safety_net: !args.no_safety_net,
        hot: HotOptions {
            thresholds: Thresholds {
                gas: args.hot_gas,
                calls: args.hot_calls.unwrap_or(u64::MAX),
            },
            workers: args.compile_workers.max(1),
            ..HotOptions::default()
        },
        trace: kinds.clone(),
        // Text output prints each block's traces as it finishes.
        keep_traces: args.json,
    };
    // Ratios move a lot between CPUs: every table names its machine.
    let mut machine = evmc_benches::Machine::this();
    if !args.json {
        println!("{}", machine.line());
    }
    let mut bars = Bars::new(args.json);
    let report = replay(&dirs, &opts, &mut bars);
    bars.finish();
    machine.finish();
    let fetched = store.as_ref().and_then(|s| s.fetched());
    drop(store);
    drop(temp_cache);
    let run = RunInfo {
        mode,
        opt_level: args.opt_level,
        trace: &kinds,
        store_fetched: fetched,
    };
    if args.json {
        println!("{}", report_json(&report, &run, &machine));
    } else {
        print_summary(&report, &run, &machine);
    }
    let failed = report.failed();
    if report.blocks.iter().any(BlockReport::bad_input) {
        Err(Failure::BadInput(anyhow!(
            "{failed} of {} blocks failed; their folders lack data or do not parse",
            report.blocks.len()
        )))
    } else if failed > 0 {
        Err(Failure::Failed(anyhow!(
            "{failed} of {} blocks failed",
            report.blocks.len()
        )))
    } else {
        Ok(())
    }
}

/// A progress bar per phase (drawn only when stderr is a terminal) and the
/// per-block lines printed above it.
struct Bars {
    json: bool,
    bar: Option<ProgressBar>,
}

impl Bars {
    fn new(json: bool) -> Self {
        Self { json, bar: None }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn phase(&mut self, name: &str, len: usize) {
        self.finish();
        if self.json {
            return;
        }
        let pb = ProgressBar::new(len as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_message(name.to_string());
        self.bar = Some(pb);
    }

    fn tick(&mut self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn traces(&mut self, r: &BlockReport, traces: &[TxTraces]) {
        if self.json {
            return;
        }
        let block = r.number.unwrap_or_default();
        // Straight to stdout, above the bar (which is on stderr): the
        // lines can be long, and a pipe wants them whole.
        let out = std::io::stdout();
        let mut out = out.lock();
        for t in traces {
            let _ = writeln!(out, "{}", t.json_line(block));
        }
    }

    fn block(&mut self, r: &BlockReport) {
        if self.json {
            return;
        }
        let line = block_line(r);
        // A hidden bar (stderr not a terminal) prints nothing of its own.
        match self.bar.as_ref().filter(|b| !b.is_hidden()) {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }
}

/// What the summary says about the run besides the report.
struct RunInfo<'a> {
    mode: Mode,
    opt_level: u8,
    trace: &'a [TraceKind],
    /// Artefacts taken from the `--store` (when one is given).
    store_fetched: Option<usize>,
}

impl RunInfo<'_> {
    /// `call,prestate` (empty when untraced).
    fn trace_names(&self) -> String {
        let names: Vec<&str> = self.trace.iter().map(|k| k.name()).collect();
        names.join(",")
    }
}

/// The artefact cache as replay's compile backend, taking what the cache
/// lacks from its `--store` (if any) before compiling it here, and
/// counting what came from the store. (The cache alone fetches from the
/// store only on the way to compiling, which would report store
/// artefacts as compiled.)
struct StoreFirst {
    inner: CacheBackend,
    fetched: AtomicUsize,
}

impl StoreFirst {
    fn new(cache: ArtifactCache, opt_level: u8) -> Self {
        Self {
            inner: CacheBackend::new(cache, opt_level),
            fetched: AtomicUsize::new(0),
        }
    }

    /// Artefacts taken from the store; `None` without a store.
    fn fetched(&self) -> Option<usize> {
        self.inner
            .cache()
            .store()
            .map(|_| self.fetched.load(Ordering::Relaxed))
    }
}

impl CompileBackend for StoreFirst {
    fn lookup(&self, code_hash: B256, spec: SpecId) -> Option<Arc<LoadedArtifact>> {
        if let Some(a) = self.inner.lookup(code_hash, spec) {
            return Some(a);
        }
        let cache = self.inner.cache();
        cache.store()?;
        let key = cache.host_key(code_hash, spec, self.inner.opt_level())?;
        if cache.prefetch(&[key]).fetched == 0 {
            return None;
        }
        let a = self.inner.lookup(code_hash, spec)?;
        self.fetched.fetch_add(1, Ordering::Relaxed);
        Some(a)
    }

    fn compile(&self, code: &[u8], spec: SpecId) -> Result<Arc<LoadedArtifact>, String> {
        self.inner.compile(code, spec)
    }

    fn compile_ran(
        &self,
        code: &[u8],
        spec: SpecId,
        ran: &evmc_compiler::RanPcs,
    ) -> Result<(Arc<LoadedArtifact>, bool), String> {
        // The cache looks in its store before it compiles.
        let (art, source) = self.inner.ran_artifact(code, spec, ran)?;
        if matches!(source, Source::Fetched) {
            self.fetched.fetch_add(1, Ordering::Relaxed);
        }
        Ok((art, !matches!(source, Source::Compiled(_))))
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

fn block_line(r: &BlockReport) -> String {
    let head = match r.number {
        Some(n) => format!(
            "block {n:>9} {:<16} {:>5} txs {:>7.2} Mgas",
            r.fork.unwrap_or("?"),
            r.txs,
            r.gas as f64 / 1e6
        ),
        None => format!("block {}", r.dir.display()),
    };
    let mut times = String::new();
    if r.interp.is_some() {
        times += &format!("  interp {:>10}", ms(r.interp));
    }
    if r.native.is_some() {
        times += &format!("  native {:>10}", ms(r.native));
    }
    if r.native_untraced.is_some() {
        times += &format!("  untraced native {:>10}", ms(r.native_untraced));
    }
    if let Some(x) = r.ratio() {
        times += &format!("  {x:>5.2}x");
    }
    let verdict = if r.passed() {
        "verified".to_string()
    } else {
        let what: Vec<String> = r.problems.iter().map(|p| p.what.clone()).collect();
        format!("FAILED: {}", what.join("; "))
    };
    format!("{head}{times}  {verdict}")
}

fn print_summary(report: &ReplayReport, run: &RunInfo<'_>, machine: &evmc_benches::Machine) {
    let mode = run.mode;
    if let Some(c) = &report.compile {
        print_compile(c);
    }
    if let Some(n) = run.store_fetched {
        println!("store: {n} artefacts taken from the shared store");
    }
    if mode == Mode::Hot {
        let (ready, cached, failed) = hot_counts(&report.hot);
        println!(
            "hot: {} contracts compiled while running ({ready} compiled, {cached} from the cache, {failed} failed)",
            report.hot.len()
        );
        for h in &report.hot {
            if let CompileState::Failed(why) = &h.state {
                println!("  failed: {} ({}): {why}", h.code_hash, fork_name(h.spec));
            }
        }
    }
    let i = report.interp_total();
    let n = report.native_total();
    let u = report.native_untraced_total();
    let native_name = if mode == Mode::Hot { "hot" } else { "native" };
    let traced = if run.trace.is_empty() {
        String::new()
    } else {
        format!("  [traced: {}]", run.trace_names())
    };
    let line = |name: &str, t: &Throughput, frames: Option<u64>, traced: &str| {
        println!(
            "{name:<7} {:>9.1} Mgas in {:>8.3} s: {:>9.1} Mgas/s{}{traced}",
            t.gas as f64 / 1e6,
            t.secs,
            t.mgas_per_s(),
            frames
                .map(|f| format!("  ({f} native frames)"))
                .unwrap_or_default()
        )
    };
    if i.secs > 0.0 {
        line("interp", &i, None, &traced);
    }
    if n.secs > 0.0 {
        line(native_name, &n, Some(report.native_frames), &traced);
    }
    if u.secs > 0.0 {
        line("native", &u, None, "  [untraced]");
    }
    if n.secs > 0.0 && i.secs > 0.0 {
        let both = if run.trace.is_empty() {
            String::new()
        } else {
            format!(", both traced: {}", run.trace_names())
        };
        println!(
            "{native_name} / interp: {:.2}x Mgas/s (execution only; compile time excluded{both})",
            n.mgas_per_s() / i.mgas_per_s().max(1e-12)
        );
    }
    if u.secs > 0.0 && n.secs > 0.0 {
        println!(
            "traced native / untraced native: {:.2}x Mgas/s",
            n.mgas_per_s() / u.mgas_per_s().max(1e-12)
        );
    }
    if let Some(s) = &report.safety_net {
        println!(
            "safety net: {} artefacts run natively, {} interpreted (slower natively), {} undecided (too few frames)",
            s.native, s.interpreted, s.undecided
        );
    }
    if !run.trace.is_empty() {
        println!(
            "traces: built and serialised in {:.3} s (outside the times above)",
            report.trace_build().as_secs_f64()
        );
    }
    // The closing line stays `N passed, M failed`.
    if let Some(line) = machine.end_line() {
        println!("{line}");
    }
    println!("{} passed, {} failed", report.passed(), report.failed());
}

fn print_compile(c: &CompileSummary) {
    let distinct: std::collections::HashSet<_> = c.contracts.iter().map(|x| x.code_hash).collect();
    println!(
        "compiled {} contracts (code hash x spec; {} distinct bytecodes) in {:.1} s (wall): {} compiled, {} from the cache, {} interpreted (over the size cap), {} failed",
        c.contracts.len(),
        distinct.len(),
        c.wall.as_secs_f64(),
        c.count("compiled"),
        c.count("cached"),
        c.count("interpreted"),
        c.count("failed"),
    );
    if c.selected_gas < c.frame_gas {
        println!(
            "  selected: the contracts that ran {:.1}% of the gas of contract frames",
            100.0 * c.selected_gas as f64 / c.frame_gas.max(1) as f64
        );
    }
    for x in c.contracts.iter().filter(|x| x.status == "failed") {
        println!(
            "  failed: {} ({}, {} B): {}",
            x.code_hash,
            fork_name(x.spec),
            x.code_size,
            x.error.as_deref().unwrap_or("")
        );
    }
}

fn report_json(report: &ReplayReport, run: &RunInfo<'_>, machine: &evmc_benches::Machine) -> Value {
    let (mode, opt_level) = (run.mode, run.opt_level);
    let traced = !run.trace.is_empty();
    let blocks: Vec<Value> = report
        .blocks
        .iter()
        .map(|b| {
            let mut block = json!({
                "dir": b.dir.display().to_string(),
                "number": b.number,
                "fork": b.fork,
                "txs": b.txs,
                "gas": b.gas,
                "interp_secs": b.interp.map(|d| d.as_secs_f64()),
                "native_secs": b.native.map(|d| d.as_secs_f64()),
                "ratio": b.ratio(),
                "native_untraced_secs": b.native_untraced.map(|d| d.as_secs_f64()),
                "verified": b.passed(),
                "problems": b.problems.iter().map(|p| p.what.clone()).collect::<Vec<_>>(),
            });
            if traced {
                block["traces"] = b.traces.iter().map(|t| t.to_json(None)).collect();
            }
            block
        })
        .collect();
    let compile = report.compile.as_ref().map(|c| {
        json!({
            "wall_secs": c.wall.as_secs_f64(),
            "frame_gas": c.frame_gas,
            "selected_gas": c.selected_gas,
            "opt_level": opt_level,
            "contracts": c.contracts.iter().map(|x| json!({
                "code_hash": x.code_hash, "spec": fork_name(x.spec), "code_size": x.code_size,
                "gas": x.gas, "frames": x.frames, "status": x.status, "secs": x.secs, "error": x.error, "ran_pcs": x.ran_pcs,
            })).collect::<Vec<_>>(),
        })
    });
    let hot: Vec<Value> = report
        .hot
        .iter()
        .map(|h| {
            let (status, secs, error) = match &h.state {
                CompileState::Queued => ("queued", 0.0, None),
                CompileState::Ready { time, cached, .. } => (
                    if *cached { "cached" } else { "compiled" },
                    time.as_secs_f64(),
                    None,
                ),
                CompileState::Failed(e) => ("failed", 0.0, Some(e.clone())),
            };
            json!({"code_hash": h.code_hash, "spec": fork_name(h.spec), "status": status, "secs": secs, "error": error})
        })
        .collect();
    let (i, n, u) = (
        report.interp_total(),
        report.native_total(),
        report.native_untraced_total(),
    );
    let throughput = |t: &Throughput| {
        (t.secs > 0.0).then(|| json!({"gas": t.gas, "secs": t.secs, "mgas_per_s": t.mgas_per_s()}))
    };
    json!({
        "schema": "evmc-native/replay/v1",
        "machine": machine,
        "mode": mode.name(),
        "trace": traced.then(|| run.trace.iter().map(|k| k.name()).collect::<Vec<_>>()),
        "trace_build_secs": traced.then(|| report.trace_build().as_secs_f64()),
        "store_fetched": run.store_fetched,
        "blocks": blocks,
        "compile": compile,
        "hot": hot,
        "interp": {"gas": i.gas, "secs": i.secs, "mgas_per_s": i.mgas_per_s()},
        "native": throughput(&n),
        "native_untraced": throughput(&u),
        "ratio_mgas": (n.secs > 0.0 && i.secs > 0.0).then(|| n.mgas_per_s() / i.mgas_per_s()),
        "traced_ratio_to_untraced": (n.secs > 0.0 && u.secs > 0.0).then(|| n.mgas_per_s() / u.mgas_per_s()),
        "native_frames": report.native_frames,
        "safety_net": report.safety_net.map(|s| json!({
            "native": s.native, "interpreted": s.interpreted, "undecided": s.undecided,
        })),
        "passed": report.passed(),
        "failed": report.failed(),
    })
}
