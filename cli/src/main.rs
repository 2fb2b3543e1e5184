//! `evmc-native`: compile EVM bytecode to native code and run it in revm.

mod cmd_bench;
mod cmd_cache;
mod cmd_compile;
mod cmd_run;
mod cmd_sequencer;
mod cmd_statetest;
mod cmd_store;
mod input;
mod numbers;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "evmc-native",
    version,
    about = "Ahead-of-time EVM compiler and native executor for revm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile runtime bytecode into native shared objects.
    Compile(cmd_compile::Args),
    /// Run bytecode once as a call, interpreted, native, or both (compared).
    Run(cmd_run::Args),
    /// Run Ethereum state tests (GeneralStateTests, execution-spec-tests).
    Statetest(cmd_statetest::Args),
    /// Inspect and maintain the artifact cache.
    Cache(cmd_cache::Args),
    /// Internal: compile one request from stdin in this (capped) process.
    #[command(name = "__compile-worker", hide = true)]
    CompileWorker,
    /// Execute blocks of transactions on real contracts (WETH, USDC,
    /// Uniswap V2, snailtracer): interpreted, native, compiled when hot, or
    /// interpreter and native compared.
    Sequencer(cmd_sequencer::Args),
    /// Benchmark native code against the interpreter (speedup, compile time, size).
    Bench(cmd_bench::Args),
}

/// How to execute: revm's interpreter, compiled code, or both (compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Interp,
    Native,
    Both,
}

/// Exit codes: 0 success, 1 failure of what was run (e.g. a mismatch),
/// 2 bad input, 3 internal error.
pub enum Failure {
    BadInput(anyhow::Error),
    Failed(anyhow::Error),
    Internal(anyhow::Error),
}

fn main() -> ExitCode {
    // A closed stdout pipe (`… | head`) ends the process quietly, as it
    // ends any Unix filter; with SIGPIPE ignored (Rust's default) every
    // `println!` after it would panic instead.
    // SAFETY: called first, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Warnings of the library (an unreachable artefact store, a refused
    // store object) go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .without_time()
        .with_target(false)
        .init();
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        if e.use_stderr() && wants_json() {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default();
            print_json_error(first.trim_start_matches("error: "), 2);
        }
        e.exit()
    });
    if let Command::CompileWorker = cli.command {
        // Before any thread pool exists: the worker runs under RLIMIT_AS.
        return ExitCode::from(evmc_runtime::compile_worker::worker_main() as u8);
    }
    // LLVM recurses deeply on large functions; the default 2 MiB thread
    // stacks of rayon's workers are not enough for every contract.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(evmc_compiler::LLVM_THREAD_STACK)
        .build_global();
    let r = match cli.command {
        Command::Compile(a) => cmd_compile::run(a),
        Command::Run(a) => cmd_run::run(a),
        Command::Statetest(a) => cmd_statetest::run(a),
        Command::Cache(a) => cmd_cache::run(a),
        Command::CompileWorker => unreachable!("handled above"),
        Command::Sequencer(a) => cmd_sequencer::run_cmd(a),
        Command::Bench(a) => cmd_bench::run(a),
    };
    let (code, label, e) = match r {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Failed(e)) => (1, "error", e),
        Err(Failure::BadInput(e)) => (2, "error", e),
        Err(Failure::Internal(e)) => (3, "internal error", e),
    };
    eprintln!("{label}: {e:#}");
    if wants_json() {
        print_json_error(&format!("{e:#}"), code);
    }
    ExitCode::from(code)
}

/// Whether `--json` was given (before any `--`): then a failure also ends
/// stdout with one JSON object saying why, for whoever parses it.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

fn print_json_error(message: &str, code: u8) {
    println!("{}", serde_json::json!({ "error": message, "exit": code }));
}

pub fn parse_spec_arg(s: &str) -> Result<evmc_compiler::SpecId, String> {
    evmc_compiler::parse_spec(s)
        .ok_or_else(|| format!("unknown spec `{s}` (e.g. FRONTIER, LONDON, CANCUN, PRAGUE, OSAKA)"))
}
