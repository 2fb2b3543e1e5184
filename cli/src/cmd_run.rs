//! `evmc-native run`: one call into one contract, or the transaction of a
//! contract fixture (`benchdata/contracts/*.json`).

use crate::input::{parse_hex, read_inputs};
use crate::{Failure, Mode};
use anyhow::anyhow;
use evmc_compiler::SpecId;
use evmc_harness::fixture::{load_fixtures, run_fixture, Fixture};
use evmc_harness::statetest::receipt_of;
use evmc_harness::statetest::Outcome;
use evmc_harness::{run_call, CallOutcome, CallSetup};
use evmc_runtime::Registry;
use rayon::prelude::*;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// `0x…` runtime bytecode, a file of hex, or a contract fixture (`.json`
    /// with `pre`, `env` and one transaction).
    code: String,
    /// Calldata as hex.
    #[arg(long, default_value = "")]
    input: String,
    /// Transaction gas limit.
    #[arg(long, default_value_t = 1_000_000_000)]
    gas: u64,
    #[arg(long, default_value = "OSAKA", value_parser = crate::parse_spec_arg)]
    spec: SpecId,
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    #[arg(long = "opt-level", short = 'O', default_value_t = 2)]
    opt_level: u8,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    if args.code.ends_with(".json") {
        return run_fixture_file(&args);
    }
    let mut inputs = read_inputs(std::slice::from_ref(&args.code)).map_err(Failure::BadInput)?;
    if inputs.len() != 1 {
        return Err(Failure::BadInput(anyhow!(
            "`run` takes exactly one contract, got {}",
            inputs.len()
        )));
    }
    let code = inputs.remove(0).code;
    let input = if args.input.trim().is_empty() {
        Vec::new()
    } else {
        parse_hex(&args.input).map_err(|e| Failure::BadInput(e.context("--input")))?
    };
    let setup = CallSetup {
        code,
        input,
        gas_limit: args.gas,
        spec: args.spec,
    };

    let mut results: Vec<(&str, CallOutcome)> = Vec::new();
    if args.mode != Mode::Native {
        results.push((
            "interp",
            run_call(&setup, None).map_err(|e| Failure::Failed(anyhow!(e)))?,
        ));
    }
    if args.mode != Mode::Interp {
        let dir = tempfile::tempdir()
            .map_err(|e| Failure::Internal(anyhow!("temporary directory: {e}")))?;
        let art =
            evmc_runtime::compile_and_load(&setup.code, setup.spec, args.opt_level, dir.path())
                .map_err(|e| Failure::Internal(e.into()))?;
        results.push((
            "native",
            run_call(&setup, Some(art)).map_err(|e| Failure::Failed(anyhow!(e)))?,
        ));
    }
    for (mode, r) in &results {
        if args.json {
            println!(
                "{}",
                json!({"mode": mode, "status": r.status, "gas_used": r.gas_used, "output": hex::encode(&r.output),
                       "logs": r.logs.iter().map(|l| json!({"address": l.address, "topics": l.topics, "data": l.data})).collect::<Vec<_>>(),
                       "native_frames": r.native_frames, "time_us": r.elapsed.as_secs_f64() * 1e6})
            );
        } else {
            println!(
                "{mode:<7} status={} gas_used={} output=0x{} logs={} time={:.3} ms",
                r.status,
                r.gas_used,
                hex::encode(&r.output),
                r.logs.len(),
                r.elapsed.as_secs_f64() * 1e3
            );
        }
    }
    if let [(_, a), (_, b)] = &results[..] {
        if a.observable() != b.observable() {
            return Err(Failure::Failed(anyhow!(
                "native result differs from the interpreter's"
            )));
        }
        if !args.json {
            println!(
                "native == interpreter (status, gas, output, logs); speedup {:.2}x",
                a.elapsed.as_secs_f64() / b.elapsed.as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(())
}

/// Runs each fixture of the file under `--mode`; `both` requires the same
/// result, logs and state root from both.
fn run_fixture_file(args: &Args) -> Result<(), Failure> {
    let path = std::path::Path::new(&args.code);
    let fixtures = load_fixtures(path).map_err(|e| Failure::BadInput(anyhow!(e)))?;
    let dir =
        tempfile::tempdir().map_err(|e| Failure::Internal(anyhow!("temporary directory: {e}")))?;
    let mut mismatch = Vec::new();
    for f in &fixtures {
        let pre = f.pre_state();
        let mut outcomes = Vec::new();
        if args.mode != Mode::Native {
            let start = Instant::now();
            let o = run_fixture(f, &pre, args.spec, None);
            outcomes.push(("interp", o, start.elapsed()));
        }
        if args.mode != Mode::Interp {
            let registry = compile_fixture(f, args, dir.path())?;
            let start = Instant::now();
            let o = run_fixture(f, &pre, args.spec, Some(&registry));
            outcomes.push(("native", o, start.elapsed()));
        }
        for (mode, o, time) in &outcomes {
            print_fixture_outcome(&f.name, mode, o, *time, args.json);
        }
        if let [(_, a, _), (_, b, _)] = &outcomes[..] {
            if a.exact() != b.exact() {
                mismatch.push(f.name.clone());
            } else if !args.json {
                println!(
                    "{}: native == interpreter (status, gas, output, logs, state root)",
                    f.name
                );
            }
        }
    }
    if !mismatch.is_empty() {
        return Err(Failure::Failed(anyhow!(
            "native result differs from the interpreter's: {}",
            mismatch.join(", ")
        )));
    }
    Ok(())
}

/// Compiles the fixture's contracts (those within the size limit), in
/// parallel, into a fresh registry.
fn compile_fixture(f: &Fixture, args: &Args, dir: &Path) -> Result<Arc<Registry>, Failure> {
    let codes: Vec<_> = f
        .codes()
        .filter(|c| c.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE)
        .collect();
    let arts: Result<Vec<_>, _> = codes
        .par_iter()
        .map(|c| evmc_runtime::compile_and_load(c, args.spec, args.opt_level, dir))
        .collect();
    let registry = Registry::new();
    for a in arts.map_err(|e| Failure::Internal(e.into()))? {
        registry
            .register(args.spec, a)
            .map_err(|e| Failure::Internal(e.into()))?;
    }
    Ok(registry)
}

fn print_fixture_outcome(name: &str, mode: &str, o: &Outcome, time: Duration, json: bool) {
    let r = receipt_of(o);
    if json {
        println!(
            "{}",
            json!({"fixture": name, "mode": mode, "status": r.status, "gas_used": r.gas_used,
                   "output": hex::encode(&r.output),
                   "logs": r.logs.iter().map(|l| json!({"address": l.address, "topics": l.topics(), "data": l.data.data})).collect::<Vec<_>>(),
                   "state_root": o.state_root, "logs_root": o.logs_root,
                   "native_frames": o.native_frames, "time_us": time.as_secs_f64() * 1e6})
        );
        return;
    }
    println!(
        "{name} {mode:<7} status={:?} gas_used={} output=0x{} logs={} state_root={} native_frames={} time={:.3} ms",
        r.status,
        r.gas_used,
        hex::encode(&r.output),
        r.logs.len(),
        o.state_root,
        o.native_frames,
        time.as_secs_f64() * 1e3
    );
    for (i, l) in r.logs.iter().enumerate() {
        let topics: Vec<String> = l.topics().iter().map(|t| t.to_string()).collect();
        println!(
            "  log {i}: address={} topics=[{}] data=0x{}",
            l.address,
            topics.join(", "),
            hex::encode(&l.data.data)
        );
    }
}
