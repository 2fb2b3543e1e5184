//! `evmc-native sequencer`: blocks of transactions on real contracts,
//! interpreted, native, compiled when hot, or interpreter and native
//! compared.

use crate::Failure;
use anyhow::anyhow;
use evmc_harness::workloads::{build, WorkloadConfig, WorkloadKind};
use evmc_runtime::hot::Thresholds;
use evmc_runtime::sequencer::{
    compare, first_difference, run, run_digest, CompileRecord, Mode, RunOptions, RunReport,
    RunStats, Workload,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SeqMode {
    /// revm's interpreter only.
    Interp,
    /// Every contract compiled before the first block.
    Native,
    /// Start interpreted; compile contracts past --hot-gas in the background.
    Hot,
    /// Interpreter and native on the same blocks, alternating.
    #[value(alias = "both")]
    Compare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WorkloadArg {
    /// WETH9 deposits, transfers and withdrawals.
    Weth,
    /// USDC (FiatToken behind its proxy): transfers, approvals, transferFrom.
    Usdc,
    /// Swaps both ways on the USDC/WETH Uniswap V2 pair.
    Uniswap,
    /// All three, plus a snailtracer call in 5,000.
    Mixed,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Transactions to generate.
    #[arg(long, value_enum, default_value = "mixed")]
    workload: WorkloadArg,
    /// Transactions in total. The default makes the README's main job
    /// (compare, mixed) take about a minute on two cores, compiles included.
    #[arg(long, default_value_t = 600_000, value_parser = crate::numbers::count(crate::numbers::MAX_TXS))]
    txs: usize,
    /// Transactions per block.
    #[arg(long = "block-size", default_value_t = 500, value_parser = crate::numbers::count(crate::numbers::MAX_TXS))]
    block_size: usize,
    /// How to execute the blocks.
    #[arg(long, value_enum, default_value = "compare")]
    mode: SeqMode,
    /// Seed of the transaction generators (same seed, same blocks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sending accounts per generator.
    #[arg(long, default_value_t = 1000, value_parser = crate::numbers::count(crate::numbers::MAX_ACCOUNTS))]
    accounts: usize,
    /// Directory of contract files replacing the bundled ones (`weth.json`,
    /// `usdc_proxy.json`, `fiat_token.json`, `uniswap_v2_pair.json`,
    /// `snailtracer.hex`; default: the copies of data/contracts built into
    /// this binary).
    #[arg(long, env = "EVMC_CONTRACTS_DIR", value_name = "DIR")]
    contracts: Option<PathBuf>,
    /// Also run the blocks interpreted and require identical receipts, logs
    /// and state diffs.
    #[arg(long)]
    verify: bool,
    /// Run every compiled frame natively. By default the safety net runs a
    /// contract whose compiled code measures slower than the interpreter
    /// interpreted (results are the interpreter's either way).
    #[arg(long = "no-safety-net")]
    no_safety_net: bool,
    /// LLVM optimisation level (0-3).
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = crate::numbers::opt_level())]
    opt_level: u8,
    /// Artifact cache to take compiled contracts from and store them in
    /// (default: `$EVMC_NATIVE_CACHE`, else `$XDG_CACHE_HOME/evmc-native`,
    /// else `~/.cache/evmc-native`). Compiles run in capped worker processes.
    #[arg(long = "cache-dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile in this process into a temporary directory instead.
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Hot mode: gas a contract's own frames must spend to be compiled.
    #[arg(long = "hot-gas", default_value_t = Thresholds::default().gas)]
    hot_gas: u64,
    /// Hot mode: frames after which a contract is compiled whatever its gas.
    #[arg(long = "hot-calls", value_parser = clap::value_parser!(u64).range(1..))]
    hot_calls: Option<u64>,
    /// Compile threads: hot mode's background compiles (formerly
    /// --compile-workers).
    #[arg(long, short = 'j', alias = "compile-workers", default_value_t = 1, value_parser = crate::numbers::threads())]
    jobs: usize,
    /// Compiles taking longer are reported as overruns.
    #[arg(long = "compile-time-cap", default_value_t = 60.0, value_parser = crate::numbers::seconds)]
    compile_time_cap: f64,
    /// Print one JSON object (schema evmc-native/sequencer/v1) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: crate::cmd_store::StoreArgs,
}

/// The workloads read their contracts from `--contracts` themselves, whole:
/// refuse a directory where a contract file is a FIFO, a device or larger
/// than any real one, before they open it. Missing files are theirs to
/// report.
fn check_contract_files(dir: &std::path::Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let limit = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => crate::input::MAX_STATE_JSON,
            Some("hex") => crate::input::MAX_HEX_FILE,
            _ => continue,
        };
        let md = crate::input::check_regular(&path)?;
        if md.len() > limit {
            anyhow::bail!(
                "{}: {} bytes, above the limit of {limit} bytes for a contract file",
                path.display(),
                md.len()
            );
        }
    }
    Ok(())
}

fn kind(w: WorkloadArg) -> WorkloadKind {
    match w {
        WorkloadArg::Weth => WorkloadKind::Weth,
        WorkloadArg::Usdc => WorkloadKind::Usdc,
        WorkloadArg::Uniswap => WorkloadKind::Uniswap,
        WorkloadArg::Mixed => WorkloadKind::Mixed,
    }
}

pub(crate) fn run_cmd(args: Args) -> Result<(), Failure> {
    let mut cfg = WorkloadConfig::new(args.txs, args.block_size, args.seed);
    cfg.accounts = args.accounts;
    if let Some(dir) = &args.contracts {
        check_contract_files(dir).map_err(Failure::BadInput)?;
        cfg.contracts_dir = Some(dir.clone());
    }
    let w = build(kind(args.workload), &cfg).map_err(|e| Failure::BadInput(anyhow!(e)))?;
    if !args.json {
        println!(
            "workload {}: {} txs in {} blocks of up to {}, seed {}, {} accounts per generator, {} contracts",
            w.name,
            w.txs(),
            w.blocks.len(),
            args.block_size,
            args.seed,
            args.accounts,
            w.contracts.len()
        );
    }
    // Opened once for every run of the command (the interpreted reference
    // of `--verify` included): one cache, and one warning when it is
    // unusable.
    let mut refused = None;
    let mut warm_up = None;
    let cache_backend = if args.no_cache {
        None
    } else {
        let limits = evmc_runtime::CompileLimits::default();
        match crate::cmd_cache::open_cache(args.cache_dir.clone(), limits) {
            Ok(cache) => {
                let cache = crate::cmd_store::attach(cache, &args.store)?;
                refused = Some(cache.rejection_log());
                // A standby starts hot: what other nodes published for
                // these contracts is local before the first block.
                if args.mode == SeqMode::Hot {
                    let codes: Vec<&[u8]> = w.contracts.iter().map(|c| &c.code[..]).collect();
                    warm_up = crate::cmd_store::warm_up(&cache, &codes, w.spec, args.opt_level);
                    crate::cmd_cache::warn_rejections(&cache.take_rejections());
                }
                Some(std::sync::Arc::new(evmc_runtime::hot::CacheBackend::new(
                    cache,
                    args.opt_level,
                )))
            }
            // Execution never depends on the cache: compile in process.
            Err(e) => {
                let (Failure::BadInput(e) | Failure::Failed(e) | Failure::Internal(e)) = e;
                tracing::warn!("artifact cache unusable ({e:#}); compiling in process");
                None
            }
        }
    };
    let options = |mode: Mode| -> Result<RunOptions, Failure> {
        let mut o =
            RunOptions::new(mode, &w, args.opt_level).map_err(|e| Failure::Internal(anyhow!(e)))?;
        o.hot.thresholds = Thresholds {
            gas: args.hot_gas,
            calls: args.hot_calls.unwrap_or(u64::MAX),
        };
        o.compiler.workers = args.jobs;
        // In range: checked by the flag's parser.
        o.compiler.time_cap = Duration::from_secs_f64(args.compile_time_cap);
        o.keep_outputs = args.verify || args.json;
        o.safety_net = !args.no_safety_net;
        if let Some(backend) = &cache_backend {
            o.backend = backend.clone();
        }
        Ok(o)
    };
    let mut report = json!({
        "schema": crate::schema("sequencer"),
        "workload": w.name, "txs": w.txs(), "blocks": w.blocks.len(),
        "block_size": args.block_size, "seed": args.seed, "accounts": args.accounts,
    });
    if let Some(r) = &warm_up {
        if !args.json {
            println!(
                "store warm-up: {} of {} artefacts fetched ({} already local, {} not in the store, {} refused, {} failed) in {:.3} s",
                r.fetched, r.requested, r.already_local, r.missing, r.refused, r.failed, r.secs
            );
        }
        report["store_warm_up"] = json!(r);
    }
    let failed = match args.mode {
        SeqMode::Compare => compare_mode(&w, &options(Mode::Native)?, &args, &mut report),
        SeqMode::Interp | SeqMode::Native | SeqMode::Hot => {
            let mode = match args.mode {
                SeqMode::Interp => Mode::Interp,
                SeqMode::Native => Mode::Native,
                _ => Mode::Hot,
            };
            single_mode(
                &w,
                &options(mode)?,
                &options(Mode::Interp)?,
                &args,
                &mut report,
            )
        }
    };
    if let Some(log) = &refused {
        crate::cmd_cache::warn_rejections(&log.take());
    }
    if args.json {
        println!("{report}");
    }
    match failed {
        Some(why) => Err(Failure::Failed(anyhow!(why))),
        None => Ok(()),
    }
}

/// Runs one mode (and the interpreter too with `--verify`); returns the
/// mismatch, if any.
fn single_mode(
    w: &Workload,
    opts: &RunOptions,
    interp_opts: &RunOptions,
    args: &Args,
    report: &mut Value,
) -> Option<String> {
    let spin = crate::progress::spinner(&format!("running {}", mode_name(opts.mode)), args.json);
    let r = run(w, opts);
    spin.finish_and_clear();
    let name = mode_name(r.mode);
    if !args.json {
        print_compiles(&r.compiles, r.compile_time, r.mode == Mode::Native);
        print_hot(&r);
        print_stats(name, &r.stats, r.native_frames);
    }
    report["mode"] = json!(name);
    report["compile"] = compile_json(&r.compiles, r.compile_time);
    report["runs"] = json!({ name: stats_json(&r.stats, r.native_frames) });
    if opts.keep_outputs {
        report["digest"] = json!(run_digest(&r.outputs));
    }
    if r.mode == Mode::Hot {
        report["hot"] = json!(r.hot);
        report["first_native_block"] = json!(r.first_native_block);
    }
    if !args.verify {
        return None;
    }
    let spin = crate::progress::spinner("verifying (interp)", args.json);
    let reference = run(w, interp_opts);
    spin.finish_and_clear();
    let mismatch = first_difference(&reference.outputs, &r.outputs)
        .map(|d| format!("{name} differs from the interpreter: {d}"));
    report["verified"] = json!(mismatch.is_none());
    if !args.json {
        match &mismatch {
            None => println!(
                "verify: receipts, logs and state diffs of all {} blocks identical to the interpreter's",
                r.outputs.len()
            ),
            Some(m) => println!("verify: {m}"),
        }
    }
    mismatch
}

fn compare_mode(
    w: &Workload,
    opts: &RunOptions,
    args: &Args,
    report: &mut Value,
) -> Option<String> {
    let spin = crate::progress::spinner("running interp and native", args.json);
    let c = compare(w, opts);
    spin.finish_and_clear();
    let speedup = c.speedup();
    let mgas_ratio = c.native.total.mgas_per_s() / c.interp.total.mgas_per_s().max(1e-12);
    if !args.json {
        print_compiles(&c.compiles, c.compile_time, true);
        print_stats("interp", &c.interp, 0);
        print_stats("native", &c.native, c.native_frames);
        println!(
            "native / interp: {speedup:.2}x TPS, {mgas_ratio:.2}x Mgas/s (execution only; compile time excluded)"
        );
        match &c.mismatch {
            None => println!(
                "receipts, logs and state diffs identical in both modes (digest {})",
                c.digest
            ),
            Some(m) => println!("MISMATCH: {m}"),
        }
    }
    report["mode"] = json!("compare");
    report["compile"] = compile_json(&c.compiles, c.compile_time);
    report["runs"] = json!({
        "interp": stats_json(&c.interp, 0),
        "native": stats_json(&c.native, c.native_frames),
    });
    report["speedup_tps"] = json!(speedup);
    report["speedup_mgas"] = json!(mgas_ratio);
    report["digest"] = json!(c.digest);
    report["identical"] = json!(c.mismatch.is_none());
    report["mismatch"] = json!(c.mismatch);
    c.mismatch
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Interp => "interp",
        Mode::Native => "native",
        Mode::Hot => "hot",
    }
}

fn print_compiles(compiles: &[CompileRecord], wall: Duration, upfront: bool) {
    if compiles.is_empty() {
        return;
    }
    if upfront {
        println!(
            "compiled {} contracts before the first block in {:.2} s (wall)",
            compiles.len(),
            wall.as_secs_f64()
        );
    } else {
        println!("compiled while running:");
    }
    for c in compiles {
        println!(
            "  {:<16} {:>6} B  {:<7} {:>7.2} s{}{}{}",
            c.name,
            c.code_size,
            c.status,
            c.compile_secs,
            match (upfront, c.native_from_block) {
                (false, Some(b)) => format!("  native from block {b}"),
                _ => String::new(),
            },
            if c.overran {
                "  (over the time cap)"
            } else {
                ""
            },
            c.error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        );
    }
}

fn print_hot(r: &RunReport) {
    if r.mode != Mode::Hot {
        return;
    }
    println!("gas per contract (own frames):");
    for h in r.hot.iter().take(8) {
        println!(
            "  {:<16} {:>14} gas {:>9} frames  {}",
            if h.name.is_empty() { "?" } else { &h.name },
            h.gas,
            h.calls,
            h.code_hash
        );
    }
    match r.first_native_block {
        Some(b) => println!("first block with native frames: {b}"),
        None => println!("no contract ran natively"),
    }
}

fn print_stats(name: &str, s: &RunStats, native_frames: u64) {
    let t = &s.total;
    println!(
        "{name:<7} {:>8} txs {:>9.1} Mgas in {:>7.3} s: {:>10.0} TPS {:>8.1} Mgas/s{}",
        t.txs,
        t.gas as f64 / 1e6,
        t.secs,
        t.tps(),
        t.mgas_per_s(),
        if native_frames > 0 {
            format!("  ({native_frames} native frames)")
        } else {
            String::new()
        }
    );
}

fn stats_json(s: &RunStats, native_frames: u64) -> Value {
    json!({
        "txs": s.total.txs, "gas": s.total.gas, "secs": s.total.secs,
        "tps": s.total.tps(), "mgas_per_s": s.total.mgas_per_s(),
        "native_frames": native_frames, "blocks": s.blocks,
    })
}

fn compile_json(compiles: &[CompileRecord], wall: Duration) -> Value {
    json!({ "wall_secs": wall.as_secs_f64(), "contracts": compiles })
}
