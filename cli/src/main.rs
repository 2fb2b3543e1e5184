//! `evmc-native`: compile EVM bytecode to native code and run it in revm.

mod artifacts;
mod cleanup;
mod cmd_bench;
mod cmd_cache;
mod cmd_compile;
mod cmd_replay;
mod cmd_run;
mod cmd_sequencer;
mod cmd_statetest;
mod cmd_store;
mod input;
mod logging;
mod numbers;
mod progress;

/// mimalloc for the whole process: built with its `override` feature, it
/// also defines `malloc` and `free`, which take the place of glibc's for
/// the LLVM library too, whose code generation spent 6-7% of its time in
/// glibc's allocator (`perf` of `llc` on Seaport). Only this binary chooses it: the runtime and compiler
/// crates leave the allocator to the program that embeds them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "evmc-native",
    version,
    about = "Ahead-of-time EVM compiler and native executor for revm",
    after_help = "Logs go to stderr: warnings by default, -v info, -vv debug, -q errors only; \
                  RUST_LOG (e.g. `RUST_LOG=evmc_runtime=debug`) overrides both.\n\
                  Data paths: --cache-dir / $EVMC_NATIVE_CACHE (artefact cache), \
                  $EVMC_SHARED_DIR (shared test and benchmark data, default ../shared), \
                  sequencer --contracts / $EVMC_CONTRACTS_DIR (default: the bundled contracts)."
)]
struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Errors only on stderr (no warnings, no progress bars).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
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
    /// Print a shell completion script to stdout.
    Completions {
        /// Shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Replay real blocks on their pre-state through alloy-evm's block
    /// executor: interpreted, native, compiled when hot, or compared; each
    /// block checked against its header and natively against the interpreter.
    Replay(cmd_replay::Args),
}

/// How to execute: revm's interpreter, compiled code, or both (compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// revm's interpreter only.
    Interp,
    /// Compiled code only (code that cannot be compiled runs interpreted).
    Native,
    /// Both, required to agree on everything observable.
    #[value(alias = "both")]
    Compare,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Interp => "interp",
            Mode::Native => "native",
            Mode::Compare => "compare",
        }
    }
}

/// The `schema` field of a command's JSON output (see docs/json.md).
pub fn schema(command: &str) -> String {
    format!("evmc-native/{command}/v1")
}

/// What `--version` prints: the package version, then what decides whether
/// artefacts are interchangeable.
fn long_version() -> String {
    let (major, minor, patch) = inkwell::support::get_llvm_version();
    format!(
        "{}\ncompiler build id: {}\ninterface version: {}\nLLVM: {major}.{minor}.{patch}\ntarget: {}",
        env!("CARGO_PKG_VERSION"),
        evmc_compiler::COMPILER_BUILD_ID,
        evmc_interface::INTERFACE_VERSION,
        evmc_compiler::host_target().triple,
    )
}

/// The command line's definition, without the hidden internal worker
/// command when `for_completion`.
fn command(for_completion: bool) -> clap::Command {
    // Built once per process; clap keeps texts as `&'static str`.
    let version: &'static str = Box::leak(long_version().into_boxed_str());
    let cmd = Cli::command().long_version(version);
    if !for_completion {
        return cmd;
    }
    let visible: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut bare = clap::Command::new("evmc-native");
    for a in cmd.get_arguments() {
        bare = bare.arg(a.clone());
    }
    bare.subcommands(visible)
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
    let cli = command(false)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
        .unwrap_or_else(|e| {
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
    if let Command::Completions { shell } = cli.command {
        let mut cmd = command(true);
        clap_complete::generate(shell, &mut cmd, "evmc-native", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // Still one thread: temporary files go to a private directory, removed
    // on return and on SIGINT/SIGTERM.
    let _tmp = cleanup::install();
    logging::init(cli.verbose, cli.quiet);
    progress::set_quiet(cli.quiet);
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
        Command::CompileWorker | Command::Completions { .. } => unreachable!("handled above"),
        Command::Sequencer(a) => cmd_sequencer::run_cmd(a),
        Command::Bench(a) => cmd_bench::run(a),
        Command::Replay(a) => cmd_replay::run(a),
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
    println!(
        "{}",
        serde_json::json!({ "schema": schema("error"), "error": message, "exit": code })
    );
}

pub fn parse_spec_arg(s: &str) -> Result<evmc_compiler::SpecId, String> {
    evmc_compiler::parse_spec(s).ok_or_else(|| format!("unknown spec `{s}` (one of: {SPECS})"))
}

/// The specs `--spec` accepts, oldest first (any case; also Paris,
/// Constantinople, SpuriousDragon, TangerineWhistle), for errors.
pub const SPECS: &str = "Frontier, Homestead, Tangerine, Spurious, Byzantium, Petersburg, \
     Istanbul, Berlin, London, Merge, Shanghai, Cancun, Prague, Osaka, Amsterdam";

/// Help text of every `--spec` flag.
pub const SPEC_HELP: &str = "Spec (hard fork), any case: Frontier, Homestead, Tangerine, \
     Spurious, Byzantium, Petersburg, Istanbul, Berlin, London, Merge (Paris), Shanghai, Cancun, \
     Prague, Osaka, Amsterdam";
