//! `evmc-native compile`.

use crate::input::{read_inputs, CodeInput};
use crate::Failure;
use anyhow::anyhow;
use evmc_compiler::{compile_emit, compile_to_file, CompileOptions, Emit, SpecId, TargetSpec};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// `0x…` bytecode, a file of hex runtime code, or a directory of such files.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Spec (hard fork) to compile for.
    #[arg(long, default_value = "OSAKA", value_parser = crate::parse_spec_arg)]
    spec: SpecId,
    /// LLVM optimisation level.
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    opt_level: u8,
    /// Output directory.
    #[arg(short = 'o', long = "out-dir", default_value = ".")]
    out_dir: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value = "so")]
    emit: EmitKind,
    /// CPU to generate code for: `native` (this machine) or `generic` (any x86-64).
    #[arg(long = "target-cpu", default_value = "native")]
    target_cpu: String,
    /// Larger bytecode is refused (it would stay interpreted).
    #[arg(long = "max-code-size", default_value_t = evmc_compiler::DEFAULT_MAX_CODE_SIZE)]
    max_code_size: usize,
    /// Functions above this many LLVM instructions are compiled at -O0.
    #[arg(long = "opt-budget", default_value_t = evmc_compiler::DEFAULT_OPT_BUDGET)]
    opt_budget: usize,
    /// One JSON object per input on stdout.
    #[arg(long)]
    json: bool,
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
    code_hash: String,
    code_size: usize,
    output: Option<String>,
    artifact_size: Option<u64>,
    compile_ms: f64,
    /// Optimisation level actually used (lower than asked for huge code).
    opt_level: Option<u8>,
    ir_instructions: Option<usize>,
    error: Option<String>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let inputs = read_inputs(&args.inputs).map_err(Failure::BadInput)?;
    let target = match args.target_cpu.as_str() {
        "native" => evmc_compiler::host_target(),
        "generic" => TargetSpec::generic(),
        other => {
            return Err(Failure::BadInput(anyhow!(
                "--target-cpu must be `native` or `generic`, not `{other}`"
            )))
        }
    };
    std::fs::create_dir_all(&args.out_dir).map_err(|e| {
        Failure::BadInput(anyhow!(
            "{}: cannot create output directory: {e}",
            args.out_dir.display()
        ))
    })?;
    let mut opts = CompileOptions::new(args.spec);
    opts.opt_level = args.opt_level;
    opts.target = target;
    opts.max_code_size = args.max_code_size;
    opts.opt_budget = args.opt_budget;

    let reports: Vec<Report> = inputs
        .par_iter()
        .map(|input| compile_one(input, &opts, &args))
        .collect();
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if args.json {
        for r in &reports {
            println!("{}", serde_json::to_string(r).expect("serialisable"));
        }
    } else {
        println!(
            "{:<28} {:<18} {:>9} {:>11} {:>10}  output",
            "input", "code hash", "size (B)", "compile ms", "artifact"
        );
        for r in &reports {
            match &r.error {
                None => println!(
                    "{:<28} {:<18} {:>9} {:>11.1} {:>10}  {}",
                    r.input,
                    &r.code_hash[..18],
                    r.code_size,
                    r.compile_ms,
                    r.artifact_size
                        .map(|s| format!("{:.1} KiB", s as f64 / 1024.0))
                        .unwrap_or_default(),
                    r.output.as_deref().unwrap_or("")
                ),
                Some(e) => println!(
                    "{:<28} {:<18} {:>9} {:>11} {:>10}  error: {e}",
                    r.input,
                    &r.code_hash[..18],
                    r.code_size,
                    "-",
                    "-"
                ),
            }
        }
    }
    if failed > 0 {
        return Err(Failure::Failed(anyhow!(
            "{failed} of {} inputs failed to compile",
            reports.len()
        )));
    }
    Ok(())
}

fn compile_one(input: &CodeInput, opts: &CompileOptions, args: &Args) -> Report {
    let hash = evmc_compiler::code_hash(&input.code);
    let stem = input
        .name
        .split('.')
        .next()
        .filter(|s| !s.is_empty() && !s.starts_with("0x"))
        .map(str::to_string);
    let stem = stem.unwrap_or_else(|| format!("0x{}", &hex::encode(hash)[..16]));
    let out = args.out_dir.join(format!("{stem}.{}", args.emit.ext()));
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
        code_hash: format!("{hash:#x}"),
        code_size: input.code.len(),
        output: error.is_none().then(|| out.display().to_string()),
        artifact_size,
        compile_ms,
        opt_level: timings.map(|t| t.opt_level),
        ir_instructions: timings.map(|t| t.ir_instructions),
        error,
    }
}
