//! `evmc-native statetest`: Ethereum state tests, interpreted, native or both.

use crate::artifacts::{Artifacts, NotNative};
use crate::{Failure, Mode};
use anyhow::anyhow;
use evmc_compiler::{SpecId, B256};
use evmc_harness::statetest::{self, CacheState, Outcome, Suite, Vector};
use evmc_runtime::{divergence_report, Registry};
use rayon::prelude::*;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Fixture files or directories (searched recursively for `.json`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// How to execute (`both` is accepted for `compare`).
    #[arg(long, value_enum, default_value = "compare")]
    mode: Mode,
    /// Worker threads for compiling and running (default: all cores).
    #[arg(long, short = 'j', value_parser = crate::numbers::threads())]
    jobs: Option<usize>,
    /// Machine-readable output (schema evmc-native/statetest/v1): one JSON
    /// object per failure, then a summary.
    #[arg(long)]
    json: bool,
    /// Files to skip (default: `$EVMC_SHARED_DIR/testdata/SKIP.txt`, else a
    /// `testdata/SKIP.txt` above an input, else `../shared/testdata/SKIP.txt`).
    #[arg(long = "skip-file", conflicts_with = "no_skip", value_name = "FILE")]
    skip_file: Option<PathBuf>,
    /// Run every file, ignoring any skip list.
    #[arg(long = "no-skip")]
    no_skip: bool,
    /// Only vectors whose test name matches this regular expression.
    #[arg(long, value_parser = crate::numbers::regex)]
    filter: Option<regex::Regex>,
    /// LLVM optimisation level of the compiled contracts (0-3).
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = crate::numbers::opt_level())]
    opt_level: u8,
    /// Keep the compiled `.so` files here instead of a temporary directory.
    #[arg(
        long = "artifacts-dir",
        value_name = "DIR",
        conflicts_with = "cache_dir"
    )]
    artifacts_dir: Option<PathBuf>,
    #[arg(long = "cache-dir", env = "EVMC_NATIVE_CACHE", value_name = "DIR", help = crate::artifacts::CACHE_DIR_HELP)]
    cache_dir: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .stack_size(evmc_compiler::LLVM_THREAD_STACK)
        .build()
        .map_err(|e| Failure::Internal(anyhow!("thread pool: {e}")))?;
    pool.install(|| run_in_pool(&args))
}

/// Which files to leave out, as in revm's `SKIP.txt`: a file name per line,
/// or `path:` and a substring of the path.
struct SkipList {
    names: BTreeSet<String>,
    path_parts: Vec<String>,
}

impl SkipList {
    fn parse(text: &str) -> Self {
        let mut names = BTreeSet::new();
        let mut path_parts = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.strip_prefix("path:") {
                Some(part) => path_parts.push(part.trim().to_string()),
                None => {
                    names.insert(line.to_string());
                }
            }
        }
        SkipList { names, path_parts }
    }

    fn skips(&self, path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let full = path.to_string_lossy();
        self.names.contains(name) || self.path_parts.iter().any(|p| full.contains(p.as_str()))
    }
}

/// The shared data's skip list: `$EVMC_SHARED_DIR/testdata/SKIP.txt`, else
/// `SKIP.txt` in a `testdata` folder above one of the inputs, else
/// `../shared/testdata/SKIP.txt`.
fn default_skip_file(paths: &[PathBuf]) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EVMC_SHARED_DIR") {
        return Some(Path::new(&dir).join("testdata/SKIP.txt"));
    }
    for p in paths {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        for dir in abs.ancestors() {
            let candidate = dir.join("SKIP.txt");
            if dir.file_name().is_some_and(|n| n == "testdata") && candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let fallback = PathBuf::from("../shared/testdata/SKIP.txt");
    fallback.is_file().then_some(fallback)
}

/// The `.json` files of `paths`, directories searched recursively (each
/// directory once, however many symlinks lead to it). A named path that is
/// neither a directory nor a regular file is refused.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(
        dir: &Path,
        seen: &mut BTreeSet<PathBuf>,
        out: &mut Vec<PathBuf>,
    ) -> anyhow::Result<()> {
        // Symlinks back up the tree would otherwise make the walk endless
        // (or exponential).
        let real = std::fs::canonicalize(dir)
            .map_err(|e| anyhow!("{}: cannot read: {e}", dir.display()))?;
        if !seen.insert(real) {
            return Ok(());
        }
        let entries =
            std::fs::read_dir(dir).map_err(|e| anyhow!("{}: cannot read: {e}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, seen, out)?;
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut seen, &mut files)?;
        } else if std::fs::symlink_metadata(p).is_err() {
            return Err(anyhow!("{}: no such file or directory", p.display()));
        } else {
            crate::input::check_regular(p)?;
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Reads and parses one state-test file, bounded in size; a FIFO or device
/// found while walking a directory is refused here.
fn load_suite(path: &Path) -> Result<Suite, String> {
    let bytes = crate::input::read_bounded(path, crate::input::MAX_STATE_TEST_FILE)
        .map_err(|e| format!("{e:#}"))?;
    statetest::parse_suite(&bytes, path)
}

fn progress(len: usize, what: &str, json: bool) -> indicatif::ProgressBar {
    crate::progress::bar(len, what, json)
}

/// Compiled contracts of the run, by (code hash, spec).
struct Compiled {
    registry: Arc<Registry>,
    /// Contracts left interpreted, with the reason (too large, ...).
    interpreted: Vec<(B256, SpecId, String)>,
    /// Compiles that failed unexpectedly: each one is a test failure.
    errors: Vec<(B256, SpecId, String)>,
    count: usize,
    elapsed: Duration,
}

fn compile_all(suites: &[(PathBuf, Suite)], args: &Args, artifacts: &Artifacts) -> Compiled {
    let start = Instant::now();
    let mut jobs: HashMap<(B256, SpecId), &[u8]> = HashMap::new();
    for (_, suite) in suites {
        let (vectors, _) = statetest::vectors(suite);
        for v in vectors.iter().filter(|v| selected(v, args)) {
            for code in statetest::contract_codes(v.unit) {
                jobs.entry((evmc_compiler::code_hash(code), v.spec))
                    .or_insert(code.as_ref());
            }
        }
    }
    let mut jobs: Vec<_> = jobs.into_iter().collect();
    // Big contracts first so that the slowest compiles do not end the phase.
    jobs.sort_by_key(|(_, code)| std::cmp::Reverse(code.len()));
    let pb = progress(jobs.len(), "compiling", args.json);
    let results: Vec<_> = jobs
        .par_iter()
        .map(|((hash, spec), code)| {
            let r = artifacts.native(code, *spec, args.opt_level);
            pb.inc(1);
            (*hash, *spec, r)
        })
        .collect();
    pb.finish_and_clear();
    artifacts.warn_rejections();
    let registry = Registry::new();
    let mut compiled = Compiled {
        registry: registry.clone(),
        interpreted: Vec::new(),
        errors: Vec::new(),
        count: 0,
        elapsed: Duration::ZERO,
    };
    for (hash, spec, r) in results {
        match r {
            Ok(art) => match registry.register(spec, art) {
                Ok(()) => compiled.count += 1,
                Err(e) => compiled.errors.push((hash, spec, e.to_string())),
            },
            Err(NotNative::TooLarge(why)) => compiled.interpreted.push((hash, spec, why)),
            Err(NotNative::Failed(e)) => compiled.errors.push((hash, spec, e)),
        }
    }
    compiled.elapsed = start.elapsed();
    compiled
}

fn selected(v: &Vector<'_>, args: &Args) -> bool {
    args.filter.as_ref().is_none_or(|f| f.is_match(v.name))
}

/// The verdict on one vector.
struct Verdict {
    failure: Option<String>,
    native_time: Duration,
    native_frames: u64,
}

fn run_vector(
    v: &Vector<'_>,
    pre: &CacheState,
    mode: Mode,
    registry: Option<&Arc<Registry>>,
) -> Verdict {
    let mut problems = Vec::new();
    let mut interp_outcome: Option<Outcome> = None;
    let mut native_time = Duration::ZERO;
    let mut native_frames = 0;
    if mode != Mode::Native {
        let (out, _) = statetest::execute(v, pre, None, false);
        if let Err(e) = statetest::check(v, &out) {
            problems.push(format!("interpreter: {e}"));
        }
        interp_outcome = Some(out);
    }
    if mode != Mode::Interp {
        let t = Instant::now();
        let (out, _) = statetest::execute(v, pre, registry, false);
        native_time = t.elapsed();
        native_frames = out.native_frames;
        if let Err(e) = statetest::check(v, &out) {
            problems.push(format!("native: {e}"));
        }
        if let Some(i) = &interp_outcome {
            let (a, b) = (i.observable(), out.observable());
            if a != b {
                problems.push(format!(
                    "native and interpreter differ:\n  interpreter: {a}\n  native:      {b}"
                ));
            } else if i.state_root != out.state_root {
                problems.push(format!(
                    "native and interpreter differ in state root: {} vs {}",
                    i.state_root, out.state_root
                ));
            }
        }
        if !problems.is_empty() {
            let (_, interp_trace) = statetest::execute(v, pre, None, true);
            let (_, native_trace) = statetest::execute(v, pre, registry, true);
            problems.push(divergence_report(&interp_trace, &native_trace, 12));
        }
    }
    Verdict {
        failure: (!problems.is_empty()).then(|| problems.join("\n")),
        native_time,
        native_frames,
    }
}

fn run_in_pool(args: &Args) -> Result<(), Failure> {
    let files = collect_files(&args.paths).map_err(Failure::BadInput)?;
    let skip = if args.no_skip {
        None
    } else {
        let path = match &args.skip_file {
            Some(p) => Some(p.clone()),
            None => default_skip_file(&args.paths),
        };
        match path {
            Some(p) => {
                let text = crate::input::read_text_bounded(&p, crate::input::MAX_LIST_FILE)
                    .map_err(Failure::BadInput)?;
                Some(SkipList::parse(&text))
            }
            None => {
                tracing::warn!("no SKIP.txt found; running every file (use --skip-file)");
                None
            }
        }
    };

    // Parse every file. A skipped one is parsed only to count its vectors:
    // the skip list names files revm's types cannot read, so one that does
    // not parse counts as one skipped test, never as a failure.
    let parsed: Vec<(PathBuf, bool, Result<Suite, String>)> = files
        .par_iter()
        .map(|f| {
            let skipped = skip.as_ref().is_some_and(|s| s.skips(f));
            (f.clone(), skipped, load_suite(f))
        })
        .collect();
    let mut skipped = 0usize;
    let mut failed = 0usize;
    let mut suites = Vec::new();
    let mut not_tests = 0usize;
    for (path, is_skipped, suite) in parsed {
        match suite {
            Ok(suite) if is_skipped => {
                let (v, s) = statetest::vectors(&suite);
                skipped += v.len() + s.len();
            }
            Err(_) if is_skipped => skipped += 1,
            Ok(suite) => suites.push((path, suite)),
            Err(e) => {
                not_tests += 1;
                report_failure(args.json, &path, "<file>", &e);
            }
        }
    }
    // A file that is not a state test is a wrong input, not a failed test:
    // nothing runs until the inputs are right.
    if not_tests > 0 {
        return Err(Failure::BadInput(anyhow!(
            "{not_tests} of {} files cannot be read as state tests (see above; \
             list them in a skip file to leave them out)",
            files.len()
        )));
    }

    let mut artifacts = None;
    let compiled = if args.mode == Mode::Interp {
        None
    } else {
        let a = match &args.artifacts_dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .map_err(|e| Failure::BadInput(anyhow!("{}: {e}", d.display())))?;
                Artifacts::in_dir(d.clone())
            }
            None => Artifacts::open(args.cache_dir.as_deref())?,
        };
        let c = compile_all(&suites, args, artifacts.insert(a));
        for (hash, spec, e) in &c.errors {
            failed += 1;
            let what = format!("contract {hash} for {}", evmc_compiler::spec_name(*spec));
            report_failure(args.json, Path::new("<compile>"), &what, e);
        }
        Some(c)
    };
    let registry = compiled.as_ref().map(|c| c.registry.clone());

    // Flatten to (suite, vector) with one pre-state per unit.
    let mut work = Vec::new();
    for (path, suite) in &suites {
        let (vectors, forks_skipped) = statetest::vectors(suite);
        skipped += forks_skipped.len();
        let mut pre_states: HashMap<&str, Arc<CacheState>> = HashMap::new();
        for v in vectors {
            if !selected(&v, args) {
                continue;
            }
            let pre = pre_states
                .entry(v.name)
                .or_insert_with(|| Arc::new(statetest::pre_state(v.unit)))
                .clone();
            work.push((path.as_path(), v, pre));
        }
    }

    let start = Instant::now();
    let pb = progress(work.len(), "running", args.json);
    let native_nanos = AtomicU64::new(0);
    let native_frames = AtomicU64::new(0);
    let failures = AtomicUsize::new(0);
    work.par_iter().for_each(|(path, v, pre)| {
        let verdict = run_vector(v, pre, args.mode, registry.as_ref());
        native_nanos.fetch_add(verdict.native_time.as_nanos() as u64, Ordering::Relaxed);
        native_frames.fetch_add(verdict.native_frames, Ordering::Relaxed);
        if let Some(why) = verdict.failure {
            failures.fetch_add(1, Ordering::Relaxed);
            pb.suspend(|| report_failure(args.json, path, &v.label(), &why));
        }
        pb.inc(1);
    });
    pb.finish_and_clear();
    let elapsed = start.elapsed();
    let vector_failures = failures.into_inner();
    failed += vector_failures;
    let passed = work.len() - vector_failures;
    drop(artifacts);

    let native_secs = native_nanos.into_inner() as f64 / 1e9;
    let native_frames = native_frames.into_inner();
    if args.json {
        println!(
            "{}",
            json!({
                "schema": crate::schema("statetest"),
                "passed": passed,
                "failed": failed,
                "skipped": skipped,
                "vectors": work.len(),
                "mode": args.mode.name(),
                "seconds": elapsed.as_secs_f64(),
                "native_exec_seconds": native_secs,
                "native_frames": native_frames,
                "compiled_contracts": compiled.as_ref().map(|c| c.count),
                "compile_seconds": compiled.as_ref().map(|c| c.elapsed.as_secs_f64()),
                "interpreted_contracts": compiled.as_ref().map(|c| c.interpreted.len()),
            })
        );
    } else {
        if let Some(c) = &compiled {
            eprintln!(
                "compiled {} distinct contracts (code hash x spec) in {:.1} s; {} left interpreted, {} compile errors",
                c.count,
                c.elapsed.as_secs_f64(),
                c.interpreted.len(),
                c.errors.len()
            );
            for (hash, spec, why) in &c.interpreted {
                eprintln!(
                    "  interpreted: {hash} ({}): {why}",
                    evmc_compiler::spec_name(*spec)
                );
            }
        }
        eprintln!(
            "ran {} vectors in {:.1} s{}",
            work.len(),
            elapsed.as_secs_f64(),
            if args.mode == Mode::Interp {
                String::new()
            } else {
                format!(
                    " (native runs: {native_secs:.1} s of thread time, {native_frames} frames executed natively)"
                )
            }
        );
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    if failed > 0 {
        return Err(Failure::Failed(anyhow!(
            "{failed} state-test vectors failed"
        )));
    }
    if work.is_empty() {
        return Err(Failure::Failed(anyhow!(
            "no vector ran: {}",
            why_nothing_ran(args, files.len(), suites.len(), skipped)
        )));
    }
    Ok(())
}

/// Why a run had no vector: a check that ran nothing has not passed.
fn why_nothing_ran(args: &Args, files: usize, read: usize, skipped: usize) -> String {
    let paths = args
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if files == 0 {
        format!("no state-test files (*.json) in {paths}")
    } else if read == 0 {
        format!("all {files} files are on the skip list ({skipped} tests skipped)")
    } else if let Some(f) = &args.filter {
        format!("no test name matches --filter `{f}` in {paths}")
    } else {
        format!("no vector for a fork revm runs ({skipped} skipped) in {paths}")
    }
}

fn report_failure(json: bool, path: &Path, what: &str, why: &str) {
    if json {
        println!(
            "{}",
            json!({
                "schema": crate::schema("statetest"),
                "failure": {"file": path.display().to_string(), "vector": what, "reason": why}
            })
        );
    } else {
        eprintln!("FAIL {}: {what}\n{why}\n", path.display());
    }
}
