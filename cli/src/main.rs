//! `evmc-native`: compile EVM bytecode to native code and run it in revm.

mod cmd_compile;
mod cmd_run;
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
    let r = match cli.command {
        Command::Compile(a) => cmd_compile::run(a),
        Command::Run(a) => cmd_run::run(a),
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

pub fn parse_spec_arg(s: &str) -> Result<evmc_compiler::SpecId, String> {
    evmc_compiler::parse_spec(s)
        .ok_or_else(|| format!("unknown spec `{s}` (e.g. FRONTIER, LONDON, CANCUN, PRAGUE, OSAKA)"))
}
