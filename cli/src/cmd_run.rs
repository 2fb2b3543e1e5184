//! `evmc-native run`: one call into one contract.

use crate::input::{parse_hex, read_inputs};
use crate::{Failure, Mode};
use anyhow::anyhow;
use evmc_compiler::SpecId;
use evmc_runtime::{run_call, CallOutcome, CallSetup};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// `0x…` runtime bytecode or a file of hex.
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
