//! `evmc-native`: compile EVM bytecode to native code and run it in revm.

mod cmd_bench;
mod cmd_cache;
mod cmd_compile;
mod cmd_replay;
mod cmd_run;
mod cmd_sequencer;
mod cmd_statetest;
mod input;

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
    /// Replay real blocks on their pre-state through alloy-evm's block
    /// executor: interpreted, native, compiled when hot, or compared; each
    /// block checked against its header and natively against the interpreter.
    Replay(cmd_replay::Args),
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
    let cli = Cli::parse();
    if let Command::CompileWorker = cli.command {
        // Before any thread pool exists: the worker runs under RLIMIT_AS.
        return ExitCode::from(evmc_runtime::compile_worker::worker_main() as u8);
    }
    // LLVM recurses deeply on large functions; the default 2 MiB thread
    // stacks of rayon's workers are not enough for every contract.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(COMPILE_STACK)
        .build_global();
    let r = match cli.command {
        Command::Compile(a) => cmd_compile::run(a),
        Command::Run(a) => cmd_run::run(a),
        Command::Statetest(a) => cmd_statetest::run(a),
        Command::Cache(a) => cmd_cache::run(a),
        Command::CompileWorker => unreachable!("handled above"),
        Command::Sequencer(a) => cmd_sequencer::run_cmd(a),
        Command::Bench(a) => cmd_bench::run(a),
        Command::Replay(a) => cmd_replay::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::BadInput(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Internal(e)) => {
            eprintln!("internal error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// Stack size of threads that run LLVM.
pub const COMPILE_STACK: usize = 64 << 20;

pub fn parse_spec_arg(s: &str) -> Result<evmc_compiler::SpecId, String> {
    evmc_compiler::parse_spec(s)
        .ok_or_else(|| format!("unknown spec `{s}` (e.g. FRONTIER, LONDON, CANCUN, PRAGUE, OSAKA)"))
}
