//! `evmc-native bench`: interpreter against native code over benchmark
//! programs, one table with speedups, compile times and artefact sizes
//! against the targets.

use crate::Failure;
use anyhow::anyhow;
use evmc_benches::{
    bench_case, discover, geomean, measure, targets, Budget, CallSettings, Case, CaseReport,
    CompileSettings, Compiler, Work,
};
use evmc_compiler::SpecId;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Benchmark files or directories (state tests, contract fixtures,
    /// `.bin-runtime` + `.inputs`, `.hex`); default: `$EVMC_SHARED_DIR/benchdata`,
    /// else `../shared/benchdata` (relative to the current directory).
    paths: Vec<PathBuf>,
    /// Only cases whose `group/name` matches this regular expression.
    #[arg(long, value_parser = crate::numbers::regex)]
    filter: Option<regex::Regex>,
    /// Print one JSON document (schema evmc-native/bench/v1) instead of the table.
    #[arg(long)]
    json: bool,
    /// Exactly this many timed runs per mode (default: adaptive, see --budget-ms).
    #[arg(long, value_parser = crate::numbers::count(crate::numbers::MAX_REPS))]
    reps: Option<usize>,
    /// Time budget per case for the timed runs, in milliseconds.
    #[arg(long = "budget-ms", default_value_t = 1000, value_parser = crate::numbers::milliseconds())]
    budget_ms: u64,
    /// Spec for contract fixtures and bare calls (state tests use their fork).
    #[arg(long, default_value = "OSAKA", value_parser = crate::parse_spec_arg, help = crate::SPEC_HELP)]
    spec: SpecId,
    /// Gas limit of bare calls (evmone's and revm's programs).
    #[arg(long, default_value_t = i64::MAX as u64)]
    gas: u64,
    /// LLVM optimisation level (0-3).
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = crate::numbers::opt_level())]
    opt_level: u8,
    /// Larger contracts are not compiled and stay interpreted.
    #[arg(long = "max-code-size", default_value_t = evmc_compiler::DEFAULT_MAX_CODE_SIZE, value_parser = crate::numbers::positive_size())]
    max_code_size: usize,
    /// Functions above this many LLVM instructions are compiled at -O0.
    #[arg(long = "opt-budget", default_value_t = evmc_compiler::DEFAULT_OPT_BUDGET)]
    opt_budget: usize,
    /// Contracts that run fewer instructions than this per entry into
    /// compiled code (the frame's start, and each resume after a CALL or
    /// CREATE; loop-free, or looping only through CALL/CREATE) stay
    /// interpreted, as in hot-contract compilation: compiled
    /// code cannot pay for its entries there (minimal proxies). 0 compiles
    /// every contract.
    #[arg(long = "min-native-run", default_value_t = evmc_compiler::analysis::MIN_NATIVE_RUN)]
    min_native_run: usize,
    /// Time every compiled frame natively. By default the safety net runs
    /// an artefact that measures slower than the interpreter interpreted,
    /// as a node would (the notes name each one and its native ratio); the
    /// correctness check before timing always runs every compiled frame
    /// natively.
    #[arg(long = "no-safety-net")]
    no_safety_net: bool,
    /// Compile all contracts first on this many threads (faster; compile
    /// and load times of contracts compiled side by side are less exact).
    #[arg(long, short = 'j', default_value_t = 1, value_parser = crate::numbers::threads())]
    jobs: usize,
    /// Also print each contract's compile phases.
    #[arg(long)]
    phases: bool,
    /// Artifact cache to load compiled contracts from and store new ones in
    /// [default: none: compile every contract into a private cache removed
    /// at the end]. A contract found there is not compiled again: its
    /// compile time is the one its entry records, its phases are `-`.
    #[arg(long = "cache-dir", env = "EVMC_NATIVE_CACHE", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Summary {
    cases: usize,
    divergences: usize,
    errors: usize,
    /// Cases with a transaction that was not timed because revm rejected it
    /// (e.g. a gas limit below the intrinsic cost).
    rejected: usize,
    targets_met: usize,
    targets_missed: usize,
    targets_unjudged: usize,
    ipsilon_main_geomean: Option<f64>,
    ipsilon_main_cases: usize,
    load_median_us: Option<f64>,
    load_max_us: Option<f64>,
    contracts: usize,
    wall_s: f64,
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let wall = Instant::now();
    let filter = args.filter.as_ref();
    let paths = if args.paths.is_empty() {
        vec![default_benchdata()]
    } else {
        args.paths.clone()
    };
    // Discovery reads what it finds whole: a named FIFO or device would
    // block it or never end.
    for p in &paths {
        if !p.is_dir() && std::fs::symlink_metadata(p).is_ok() {
            crate::input::check_regular(p).map_err(Failure::BadInput)?;
        }
    }
    let settings = CallSettings {
        spec: args.spec,
        gas_limit: args.gas,
    };
    let mut cases = discover(&paths, settings).map_err(|e| Failure::BadInput(anyhow!(e)))?;
    if let Some(re) = filter {
        cases.retain(|c| re.is_match(&c.id()));
    }
    if cases.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "no benchmark cases in {}{}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.filter
                .as_ref()
                .map(|f| format!(" matching `{f}`"))
                .unwrap_or_default()
        )));
    }
    let budget = match args.reps {
        Some(r) => Budget::fixed(r),
        None => Budget {
            time: Duration::from_millis(args.budget_ms),
            ..Budget::default()
        },
    };
    let mut compiler = Compiler::new(CompileSettings {
        opt_level: args.opt_level,
        max_code_size: args.max_code_size,
        opt_budget: args.opt_budget,
        min_native_run: args.min_native_run,
        cache_dir: args.cache_dir.clone(),
        safety_net: !args.no_safety_net,
        ..CompileSettings::default()
    })
    .map_err(|e| Failure::Internal(anyhow!(e)))?;

    if args.jobs > 1 {
        tracing::info!(
            "compiling the contracts of {} cases on {} threads",
            cases.len(),
            args.jobs
        );
        let spin = crate::progress::spinner("compiling", false);
        compiler.compile_all(&cases, args.jobs);
        spin.finish_and_clear();
    }
    let table = !args.json;
    let mut machine = evmc_benches::Machine::this();
    if table {
        println!("{}", machine.line());
        print_header();
    }
    let mut reports = Vec::with_capacity(cases.len());
    let mut group = String::new();
    let pb = crate::progress::bar(cases.len(), "benchmarking", false);
    for case in &cases {
        let r = bench_case(case, &mut compiler, &budget);
        pb.inc(1);
        if table {
            pb.suspend(|| {
                if r.group != group {
                    group = r.group.clone();
                    println!("{group}");
                }
                print_row(&r);
            });
        }
        reports.push(r);
    }
    pb.finish_and_clear();
    machine.finish();
    if table {
        println!(
            "(floor: the same transaction with the callee's code replaced by STOP, interpreted: \
             revm's cost around the contract, equal in both modes; max: interp / floor, the \
             speedup if the contract itself took no time)"
        );
    }

    let loads: Vec<Duration> = compiler
        .contracts()
        .filter_map(|c| c.outcome.as_ref().ok())
        .map(|c| c.load)
        .collect();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let load_max_us = loads.iter().max().map(|d| us(*d));
    let main: Vec<f64> = reports
        .iter()
        .filter(|r| r.group == targets::IPSILON_MAIN_GROUP)
        .filter_map(|r| r.speedup)
        .collect();
    let main_geomean = geomean(&main);
    // Every target: each row's, the set's geometric mean, the load time,
    // and the hand-written references.
    let judged: Vec<Option<bool>> = reports
        .iter()
        .flat_map(|r| r.targets.iter().map(|t| t.met))
        .chain([
            main_geomean.map(|g| g >= targets::IPSILON_MAIN_GEOMEAN),
            load_max_us.map(|m| m <= targets::MAX_LOAD_US),
        ])
        .chain(
            reports
                .iter()
                .filter_map(|r| r.reference.as_ref())
                .map(|x| Some(x.met())),
        )
        .collect();
    let summary = Summary {
        cases: reports.len(),
        divergences: reports.iter().filter(|r| r.divergence.is_some()).count(),
        errors: reports.iter().filter(|r| has_error(r)).count(),
        rejected: rejected(&cases, &reports),
        targets_met: judged.iter().filter(|m| **m == Some(true)).count(),
        targets_missed: judged.iter().filter(|m| **m == Some(false)).count(),
        targets_unjudged: judged.iter().filter(|m| m.is_none()).count(),
        ipsilon_main_geomean: main_geomean,
        ipsilon_main_cases: main.len(),
        load_median_us: (!loads.is_empty()).then(|| us(measure::median(&loads))),
        load_max_us,
        contracts: loads.len(),
        wall_s: wall.elapsed().as_secs_f64(),
    };

    if args.json {
        let doc = serde_json::json!({
            "schema": crate::schema("bench"),
            "machine": machine,
            "cases": reports,
            "summary": summary,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
    } else {
        if args.phases {
            print_phases(&reports);
        }
        print_references(&reports);
        print_summary(&summary);
        if let Some(line) = machine.end_line() {
            println!("{line}");
        }
    }
    for r in &reports {
        if let Some(d) = &r.divergence {
            eprintln!(
                "DIVERGENCE {}/{} ({}): native differs from the interpreter\n    {d}",
                r.group, r.name, r.source
            );
        }
        for n in r.notes.iter().filter(|n| n.starts_with("ERROR")) {
            eprintln!("{}/{}: {n}", r.group, r.name);
        }
    }
    if summary.divergences > 0 || summary.errors > 0 {
        return Err(Failure::Failed(anyhow!(
            "{} divergence(s), {} case(s) with errors",
            summary.divergences,
            summary.errors
        )));
    }
    let to_run = cases
        .iter()
        .filter(|c| matches!(c.work, Work::Run { .. }))
        .count();
    if to_run > 0 && summary.rejected == to_run {
        return Err(Failure::Failed(anyhow!(
            "every transaction was rejected ({to_run} of {to_run} cases): nothing was measured{}",
            if args.gas < 21_000 {
                format!(
                    " (--gas {} is below the 21000 gas any transaction costs)",
                    args.gas
                )
            } else {
                String::new()
            }
        )));
    }
    Ok(())
}

fn has_error(r: &CaseReport) -> bool {
    r.notes.iter().any(|n| n.starts_with("ERROR"))
}

/// Cases with a transaction that was neither timed nor failed otherwise:
/// revm rejected it, so nothing about it was measured.
fn rejected(cases: &[Case], reports: &[CaseReport]) -> usize {
    cases
        .iter()
        .zip(reports)
        .filter(|(c, r)| {
            matches!(c.work, Work::Run { .. })
                && r.interp.is_none()
                && r.divergence.is_none()
                && !has_error(r)
        })
        .count()
}

/// `$EVMC_SHARED_DIR/benchdata`, else `../shared/benchdata`.
fn default_benchdata() -> PathBuf {
    std::env::var_os("EVMC_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"))
        .join("benchdata")
}

fn time(us: f64) -> String {
    if us < 1e3 {
        format!("{us:.1}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.3}s", us / 1e6)
    }
}

const NAME_WIDTH: usize = 34;

fn print_header() {
    println!(
        "{:<NAME_WIDTH$} {:>10} {:>10} {:>8} {:>10} {:>8}  {:<14} {:<4} {:>10} {:>8} {:>8}  notes",
        "name",
        "interp",
        "native",
        "speedup",
        "floor",
        "max",
        "target",
        "met",
        "compile ms",
        "hit µs",
        ".so KB"
    );
}

fn print_row(r: &CaseReport) {
    let name = if r.name.chars().count() > NAME_WIDTH - 2 {
        let tail: String = r
            .name
            .chars()
            .skip(r.name.chars().count() + 3 - NAME_WIDTH)
            .collect();
        format!("…{tail}")
    } else {
        r.name.clone()
    };
    let speedup = match (&r.divergence, r.speedup) {
        (Some(_), _) => "DIVERGES".to_string(),
        (None, Some(s)) => format!("{s:.2}×"),
        (None, None) => "-".into(),
    };
    let target = r
        .targets
        .iter()
        .map(|t| t.target.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let met = match r.all_met() {
        Some(true) => "yes",
        Some(false) => "NO",
        None if r.targets.is_empty() => "",
        None => "?",
    };
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
    let mut notes = r.notes.clone();
    if let Some(d) = &r.divergence {
        notes.insert(0, format!("DIVERGENCE: {}", d.replace('\n', " ")));
    }
    println!(
        "  {:<w$} {:>10} {:>10} {:>8} {:>10} {:>8}  {:<14} {:<4} {:>10} {:>8} {:>8}  {}",
        name,
        opt(r.interp.map(|s| s.median_us), time),
        opt(r.native.map(|s| s.median_us), time),
        speedup,
        opt(r.floor.map(|s| s.median_us), time),
        opt(r.max_speedup, |v| format!("{v:.2}×")),
        target,
        met,
        opt(r.compile_ms, |v| format!("{v:.1}")),
        opt(r.load_us, |v| format!("{v:.0}")),
        opt(r.so_bytes.map(|b| b as f64 / 1024.0), |v| format!("{v:.1}")),
        notes.join("; "),
        w = NAME_WIDTH - 2,
    );
}

fn print_phases(reports: &[CaseReport]) {
    println!();
    println!("compile phases per contract (ms); load times (µs): cache hit (ArtifactCache::get), plain file load, its read+validate part");
    println!(
        "  {:<20} {:>6} {:>8} {:>7} {:>8} {:>8} {:>6} {:>8} {:>2} {:>8} {:>6} {:>6} {:>8}  first case",
        "code hash",
        "bytes",
        "analysis",
        "IR",
        "opt",
        "codegen",
        "link",
        "total",
        "O",
        "IR insts",
        "hit",
        "file",
        "validate"
    );
    let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
    let us = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0}"));
    let int = |v: Option<usize>| v.map_or_else(|| "-".into(), |v| v.to_string());
    let mut seen = std::collections::HashSet::new();
    for r in reports {
        for c in &r.contracts {
            if !seen.insert(c.code_hash.clone()) {
                continue;
            }
            println!(
                "  {:<20} {:>6} {:>8} {:>7} {:>8} {:>8} {:>6} {:>8} {:>2} {:>8} {:>6} {:>6} {:>8}  {}/{}",
                &c.code_hash[..c.code_hash.len().min(20)],
                c.code_bytes,
                ms(c.phases.analysis_ms),
                ms(c.phases.ir_ms),
                ms(c.phases.optimize_ms),
                ms(c.phases.codegen_ms),
                ms(c.phases.link_ms),
                ms(c.compile_ms),
                int(c.opt_level.map(usize::from)),
                int(c.ir_instructions),
                us(c.load_us),
                us(c.file_load_us),
                us(c.validate_us),
                r.group,
                r.name
            );
        }
    }
}

fn print_references(reports: &[CaseReport]) {
    let refs: Vec<_> = reports
        .iter()
        .filter_map(|r| r.reference.as_ref().map(|x| (r, x)))
        .collect();
    if refs.is_empty() {
        return;
    }
    println!();
    println!(
        "hand-written Rust over U256 with the same gas accounting (target: native within {}× of Rust)",
        targets::MAX_REFERENCE_RATIO
    );
    println!(
        "  {:<22} {:>10} {:>10} {:>12} {:>9} {:>9}  {:<4} check",
        "program", "Rust", "native tx", "native n=0", "tx/Rust", "work/Rust", "met"
    );
    for (r, x) in refs {
        let met = if x.met() { "yes" } else { "NO" };
        println!(
            "  {:<22} {:>10} {:>10} {:>12} {:>8.2}× {:>8.2}×  {:<4} {}",
            r.name,
            time(x.rust.median_us),
            time(x.native_tx.median_us),
            time(x.native_tx_n0.median_us),
            x.ratio_tx,
            x.ratio_work,
            met,
            x.disagreement
                .as_deref()
                .map(|d| format!("DISAGREES: {d}"))
                .unwrap_or_else(|| "same output and gas".into())
        );
    }
    println!("  (work = time minus the same transaction with n = 0: the loop alone; the target is judged on it)");
}

fn print_summary(s: &Summary) {
    println!();
    match s.ipsilon_main_geomean {
        Some(g) => {
            println!(
            "ipsilon main set ({}): geometric mean speedup {g:.2}× over {} cases (target ≥{}×): {}",
            targets::IPSILON_MAIN_GROUP,
            s.ipsilon_main_cases,
            targets::IPSILON_MAIN_GEOMEAN,
            if g >= targets::IPSILON_MAIN_GEOMEAN { "met" } else { "NOT met" }
        )
        }
        None => println!("ipsilon main set: not run"),
    }
    if let (Some(med), Some(max)) = (s.load_median_us, s.load_max_us) {
        println!(
            "cache-hit load (ArtifactCache::get: manifest, checksum, ELF checks, mapping): median {med:.0}µs, max {max:.0}µs over {} contracts (target ≤{}µs each): {}",
            s.contracts,
            targets::MAX_LOAD_US,
            if max <= targets::MAX_LOAD_US { "met" } else { "NOT met" }
        );
    }
    println!(
        "targets: {} met, {} not met, {} not judged; {} cases, {} divergences, {} with errors, {} rejected; wall time {:.1}s",
        s.targets_met,
        s.targets_missed,
        s.targets_unjudged,
        s.cases,
        s.divergences,
        s.errors,
        s.rejected,
        s.wall_s
    );
}
