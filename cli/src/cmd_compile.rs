//! `evmc-native compile`: into the artifact cache (default, through capped
//! worker processes), or into plain files with `-o DIR` / `--emit`.

use crate::cmd_cache::{open_cache, parse_size, warn_rejections};
use crate::input::{read_hot_list, read_inputs, CodeInput};
use crate::Failure;
use anyhow::anyhow;
use evmc_benches::PhasesMs;
use evmc_compiler::{compile_emit, compile_to_file, CompileOptions, Emit, SpecId, TargetSpec};
use evmc_runtime::cache::Source;
use evmc_runtime::compile_worker::{DEFAULT_COMPILE_TIMEOUT, DEFAULT_MAX_MEMORY};
use evmc_runtime::{ArtifactCache, CacheError, CompileLimits};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// `0x…` bytecode, a file of hex runtime code, a state JSON file (state
    /// tests' or contract fixtures' `pre`, a genesis `alloc`: every account
    /// with code), or a directory of such files.
    #[arg(required = true)]
    inputs: Vec<String>,
    #[arg(long, default_value = "OSAKA", value_parser = crate::parse_spec_arg, help = crate::SPEC_HELP)]
    spec: SpecId,
    /// LLVM optimisation level (0-3).
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = crate::numbers::opt_level())]
    opt_level: u8,
    /// Write plain files into this directory instead of the cache
    /// (default for `--emit` other than `so`: the current directory).
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Artifact cache (default: $EVMC_NATIVE_CACHE, else $XDG_CACHE_HOME/evmc-native, else ~/.cache/evmc-native).
    #[arg(long = "cache-dir", conflicts_with = "out_dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile only these contracts: a file of code hashes or addresses, one per line.
    #[arg(long)]
    hot: Option<PathBuf>,
    /// Per-contract compile time limit in seconds (cache mode; the worker is killed).
    #[arg(long, default_value_t = DEFAULT_COMPILE_TIMEOUT.as_secs_f64(), value_parser = crate::numbers::seconds)]
    timeout: f64,
    /// Per-compile address-space limit in bytes (cache mode; K/M/G suffixes; 0 = none).
    #[arg(long = "max-memory", default_value_t = DEFAULT_MAX_MEMORY, value_parser = parse_size)]
    max_memory: u64,
    /// What to write.
    #[arg(long, value_enum, default_value = "so")]
    emit: EmitKind,
    /// CPU to generate code for: `native` (this machine) or `generic` (any x86-64).
    #[arg(long = "target-cpu", default_value = "native")]
    target_cpu: String,
    /// Larger bytecode is refused (it would stay interpreted).
    #[arg(long = "max-code-size", default_value_t = evmc_compiler::DEFAULT_MAX_CODE_SIZE, value_parser = crate::numbers::positive_size())]
    max_code_size: usize,
    /// Functions above this many LLVM instructions are compiled at -O0.
    #[arg(long = "opt-budget", default_value_t = evmc_compiler::DEFAULT_OPT_BUDGET)]
    opt_budget: usize,
    /// Contracts compiled at once (default: all cores).
    #[arg(long, short = 'j', value_parser = crate::numbers::threads())]
    jobs: Option<usize>,
    /// One JSON object per input on stdout (schema evmc-native/compile/v1).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: crate::cmd_store::StoreArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EmitKind {
    So,
    Obj,
    Ll,
    OptLl,
    Asm,
    Analysis,
}

impl EmitKind {
    fn ext(self) -> &'static str {
        match self {
            EmitKind::So => "so",
            EmitKind::Obj => "o",
            EmitKind::Ll => "ll",
            EmitKind::OptLl => "opt.ll",
            EmitKind::Asm => "s",
            EmitKind::Analysis => "analysis.txt",
        }
    }
}

#[derive(Serialize)]
struct Report {
    input: String,
    /// Accounts holding this code (state inputs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<String>,
    code_hash: String,
    code_size: usize,
    /// `compiled`, `cached` (already in the cache), `interpreted` (above the
    /// size limit, stays interpreted) or `failed`.
    status: &'static str,
    output: Option<String>,
    artifact_size: Option<u64>,
    compile_ms: f64,
    /// Optimisation level actually used (lower than asked for huge code).
    opt_level: Option<u8>,
    ir_instructions: Option<usize>,
    /// Wall time of each stage (`analysis_ms`, `ir_ms`, ...), when
    /// compiled in this process (`--out-dir` and `--emit`); null in cache
    /// mode, whose workers report the total only.
    #[serde(flatten)]
    phases: PhasesMs,
    error: Option<String>,
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    let mut inputs = read_inputs(&args.inputs).map_err(Failure::BadInput)?;
    if let Some(hot) = &args.hot {
        inputs = select_hot(inputs, hot)?;
    }
    let target = match args.target_cpu.as_str() {
        "native" => evmc_compiler::host_target(),
        "generic" => TargetSpec::generic(),
        other => {
            return Err(Failure::BadInput(anyhow!(
                "--target-cpu must be `native` or `generic`, not `{other}`"
            )))
        }
    };
    let mut opts = CompileOptions::new(args.spec);
    opts.opt_level = args.opt_level;
    opts.target = target;
    opts.max_code_size = args.max_code_size;
    opts.opt_budget = args.opt_budget;
    // For experiments with the part size (not passed to the cache's
    // compile workers, which use the default).
    if let Some(n) = std::env::var("EVMC_PART_INSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
    {
        opts.part_insts = n;
    }

    let to_cache = args.out_dir.is_none() && matches!(args.emit, EmitKind::So);
    let cache = if to_cache {
        let limits = CompileLimits {
            max_code_size: args.max_code_size,
            timeout: Duration::from_secs_f64(args.timeout),
            max_memory: args.max_memory,
        };
        Some(crate::cmd_store::attach(
            open_cache(args.cache_dir.clone(), limits)?,
            &args.store,
        )?)
    } else {
        let dir = args.out_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::BadInput(anyhow!(
                "{}: cannot create output directory: {e}",
                dir.display()
            ))
        })?;
        None
    };

    let pb = crate::progress::bar(inputs.len(), "compiling", args.json);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .stack_size(evmc_compiler::LLVM_THREAD_STACK)
        .build()
        .map_err(|e| Failure::Internal(anyhow!("thread pool: {e}")))?;
    let reports: Vec<Report> = pool.install(|| {
        inputs
            .par_iter()
            .map(|input| {
                let r = match &cache {
                    Some(c) => compile_cached(input, &opts, c),
                    None => compile_one(input, &opts, &args),
                };
                pb.inc(1);
                r
            })
            .collect()
    });
    pb.finish_and_clear();
    if let Some(c) = &cache {
        warn_rejections(&c.take_rejections());
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if args.json {
        for r in &reports {
            let mut v = serde_json::to_value(r).expect("serialisable");
            v["schema"] = crate::schema("compile").into();
            println!("{v}");
        }
    } else {
        print_table(&reports);
        let count = |s| reports.iter().filter(|r| r.status == s).count();
        let mut summary = format!(
            "{} contracts: {} compiled, {} cached, {} interpreted (too large), {} failed",
            reports.len(),
            count("compiled"),
            count("cached"),
            count("interpreted"),
            failed
        );
        if let Some(c) = &cache {
            summary.push_str(&format!("; cache {}", c.dir().display()));
        }
        println!("{summary}");
    }
    if failed > 0 {
        return Err(Failure::Failed(anyhow!(
            "{failed} of {} inputs failed to compile",
            reports.len()
        )));
    }
    Ok(())
}

fn print_table(reports: &[Report]) {
    println!(
        "{:<28} {:<18} {:>9} {:<11} {:>11} {:>10}  output",
        "input", "code hash", "size (B)", "status", "compile ms", "artifact"
    );
    for r in reports {
        let ms = if r.status == "compiled" {
            format!("{:.1}", r.compile_ms)
        } else {
            "-".into()
        };
        let tail = match &r.error {
            Some(e) => format!("error: {e}"),
            None => r.output.clone().unwrap_or_default(),
        };
        println!(
            "{:<28} {:<18} {:>9} {:<11} {:>11} {:>10}  {tail}",
            r.input,
            &r.code_hash[..18],
            r.code_size,
            r.status,
            ms,
            r.artifact_size
                .map(|s| format!("{:.1} KiB", s as f64 / 1024.0))
                .unwrap_or_default(),
        );
    }
}

/// Keeps the inputs named (by code hash or account) in the `--hot` file.
fn select_hot(inputs: Vec<CodeInput>, hot: &std::path::Path) -> Result<Vec<CodeInput>, Failure> {
    let list = read_hot_list(hot).map_err(Failure::BadInput)?;
    let mut used_hashes = std::collections::HashSet::new();
    let mut used_addresses = std::collections::HashSet::new();
    let kept: Vec<CodeInput> = inputs
        .into_iter()
        .filter(|i| {
            let hash = evmc_compiler::code_hash(&i.code).0;
            let by_hash = list.code_hashes.contains(&hash);
            if by_hash {
                used_hashes.insert(hash);
            }
            let by_addr: Vec<&String> = i
                .addresses
                .iter()
                .filter(|a| list.addresses.contains(*a))
                .collect();
            used_addresses.extend(by_addr.iter().map(|a| a.to_string()));
            by_hash || !by_addr.is_empty()
        })
        .collect();
    let unknown =
        list.code_hashes.len() - used_hashes.len() + list.addresses.len() - used_addresses.len();
    if unknown > 0 {
        eprintln!(
            "warning: {}: {unknown} of {} entries match no contract of the inputs",
            hot.display(),
            list.code_hashes.len() + list.addresses.len()
        );
    }
    Ok(kept)
}

fn compile_cached(input: &CodeInput, opts: &CompileOptions, cache: &ArtifactCache) -> Report {
    let hash = evmc_compiler::code_hash(&input.code);
    let start = Instant::now();
    let result = cache.lookup_or_compile(&input.code, opts);
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut report = Report {
        input: input.name.clone(),
        addresses: input.addresses.clone(),
        code_hash: format!("{hash:#x}"),
        code_size: input.code.len(),
        status: "compiled",
        output: None,
        artifact_size: None,
        compile_ms,
        opt_level: None,
        ir_instructions: None,
        phases: PhasesMs::default(),
        error: None,
    };
    match result {
        Ok((art, source)) => {
            report.output = Some(art.path.display().to_string());
            report.artifact_size = std::fs::metadata(&art.path).ok().map(|m| m.len());
            match source {
                Source::Hit => report.status = "cached",
                Source::Fetched => report.status = "fetched",
                Source::Compiled(c) => {
                    report.opt_level = Some(c.effective_opt_level);
                    report.ir_instructions = Some(c.ir_instructions);
                }
            }
        }
        Err(e) if e.is_too_large() => report.status = "interpreted",
        Err(e) => {
            report.status = "failed";
            report.error = Some(match e {
                CacheError::Compile(f) | CacheError::FailedBefore(f) => f.to_string(),
                e => e.to_string(),
            });
        }
    }
    report
}

fn compile_one(input: &CodeInput, opts: &CompileOptions, args: &Args) -> Report {
    let hash = evmc_compiler::code_hash(&input.code);
    let stem = input
        .name
        .split('.')
        .next()
        .filter(|s| !s.is_empty() && !s.starts_with("0x"))
        .map(|s| match input.addresses.first() {
            // Several contracts come from one state file.
            Some(a) => format!("{s}-{}", &a[..10]),
            None => s.to_string(),
        });
    let stem = stem.unwrap_or_else(|| format!("0x{}", &hex::encode(hash)[..16]));
    let out_dir = args.out_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let out = out_dir.join(format!("{stem}.{}", args.emit.ext()));
    let start = Instant::now();
    let result = match args.emit {
        EmitKind::So => compile_to_file(&input.code, opts, &out)
            .map(|a| (a.size, Some(a.timings)))
            .map_err(|e| e.to_string()),
        EmitKind::Analysis => {
            let text = evmc_compiler::analysis::Analysis::new(&input.code).to_string();
            std::fs::write(&out, &text)
                .map(|_| (text.len() as u64, None))
                .map_err(|e| format!("{}: {e}", out.display()))
        }
        kind => {
            let what = match kind {
                EmitKind::Obj => Emit::Object,
                EmitKind::Ll => Emit::LlvmIr,
                EmitKind::OptLl => Emit::OptimizedIr,
                _ => Emit::Assembly,
            };
            compile_emit(&input.code, opts, what)
                .map_err(|e| e.to_string())
                .and_then(|(bytes, t)| {
                    std::fs::write(&out, &bytes)
                        .map(|_| (bytes.len() as u64, Some(t)))
                        .map_err(|e| format!("{}: {e}", out.display()))
                })
        }
    };
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    let (artifact_size, timings, error) = match result {
        Ok((s, t)) => (Some(s), t, None),
        Err(e) => (None, None, Some(e)),
    };
    Report {
        input: input.name.clone(),
        addresses: input.addresses.clone(),
        code_hash: format!("{hash:#x}"),
        code_size: input.code.len(),
        status: if error.is_some() {
            "failed"
        } else {
            "compiled"
        },
        output: error.is_none().then(|| out.display().to_string()),
        artifact_size,
        compile_ms,
        opt_level: timings.map(|t| t.opt_level),
        ir_instructions: timings.map(|t| t.ir_instructions),
        phases: PhasesMs::of(timings.as_ref()),
        error,
    }
}
