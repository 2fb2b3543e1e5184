//! `evmc-native run`: one call into one contract, or the transaction of a
//! contract fixture (`benchdata/contracts/*.json`).

use crate::artifacts::{Artifacts, NotNative};
use crate::input::{parse_hex, read_bounded, read_inputs, MAX_STATE_JSON};
use crate::{Failure, Mode};
use anyhow::anyhow;
use evmc_compiler::SpecId;
use evmc_harness::fixture::{parse_fixtures, run_fixture, Fixture};
use evmc_harness::statetest::receipt_of;
use evmc_harness::statetest::Outcome;
use evmc_harness::{run_call, AccountState, CallError, CallOutcome, CallSetup};
use evmc_runtime::Registry;
use rayon::prelude::*;
use revm::primitives::U256;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// `0x…` runtime bytecode, a file of hex, or a contract fixture (`.json`
    /// with `pre`, `env` and one transaction).
    code: String,
    /// Calldata as hex.
    #[arg(long, default_value = "")]
    input: String,
    /// Transaction gas limit (below the intrinsic cost the transaction is
    /// refused: bad input).
    #[arg(long, default_value_t = 1_000_000_000)]
    gas: u64,
    #[arg(long, default_value = "OSAKA", value_parser = crate::parse_spec_arg, help = crate::SPEC_HELP)]
    spec: SpecId,
    /// How to execute (`both` is accepted for `compare`).
    #[arg(long, value_enum, default_value = "compare")]
    mode: Mode,
    /// LLVM optimisation level (0-3).
    #[arg(long = "opt-level", short = 'O', default_value_t = 2, value_parser = crate::numbers::opt_level())]
    opt_level: u8,
    /// Print JSON (schema evmc-native/run/v1) instead of text: one object,
    /// or one per fixture.
    #[arg(long)]
    json: bool,
    #[arg(long = "cache-dir", env = "EVMC_NATIVE_CACHE", value_name = "DIR", help = crate::artifacts::CACHE_DIR_HELP)]
    cache_dir: Option<std::path::PathBuf>,
}

/// One execution of the call: the interpreter's, or native mode's (which
/// runs interpreted when the code could not be compiled by design).
struct Side {
    mode: &'static str,
    outcome: CallOutcome,
    /// Why native mode ran the code interpreted (too large to compile).
    not_compiled: Option<String>,
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
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

    let mut sides = Vec::new();
    if args.mode != Mode::Native {
        sides.push(Side {
            mode: "interp",
            outcome: call(&setup, None)?,
            not_compiled: None,
        });
    }
    if args.mode != Mode::Interp {
        let artifacts = Artifacts::open(args.cache_dir.as_deref())?;
        sides.push(native_side(&setup, args.opt_level, &artifacts)?);
        artifacts.warn_rejections();
    }
    let difference = match &sides[..] {
        [a, b] => first_difference(&a.outcome, &b.outcome),
        _ => None,
    };
    if args.json {
        let doc = match &sides[..] {
            [a, b] => json!({
                "schema": crate::schema("run"),
                "mode": "compare",
                "interp": side_json(a),
                "native": side_json(b),
                "identical": difference.is_none(),
                "difference": difference,
                "speedup": speedup(a.outcome.elapsed, b.outcome.elapsed),
            }),
            [one] => {
                let mut v = side_json(one);
                v["schema"] = json!(crate::schema("run"));
                v["mode"] = json!(one.mode);
                v
            }
            _ => unreachable!("one or two modes"),
        };
        println!("{doc}");
    } else {
        for side in &sides {
            print_side(side);
        }
    }
    if let Some(d) = difference {
        return Err(Failure::Failed(anyhow!(
            "native result differs from the interpreter's: {d}"
        )));
    }
    if let ([a, b], false) = (&sides[..], args.json) {
        match &b.not_compiled {
            Some(_) => println!(
                "both interpreted (not compiled: too large): identical status, gas, output, logs and post-state"
            ),
            None => println!(
                "native == interpreter (status, gas, output, logs, post-state); speedup {:.2}x",
                speedup(a.outcome.elapsed, b.outcome.elapsed)
            ),
        }
    }
    Ok(())
}

/// Runs the call; a transaction revm refuses (gas limit below the intrinsic
/// cost, ...) is bad input.
fn call(
    setup: &CallSetup,
    art: Option<Arc<evmc_runtime::LoadedArtifact>>,
) -> Result<CallOutcome, Failure> {
    run_call(setup, art).map_err(|e| match e {
        CallError::Rejected(_) => Failure::BadInput(anyhow!(e)),
        CallError::Setup(_) => Failure::Internal(anyhow!(e)),
    })
}

/// Compiles and runs natively; code above the compile limit stays
/// interpreted, as it would in any embedding, and is reported so.
fn native_side(setup: &CallSetup, opt_level: u8, artifacts: &Artifacts) -> Result<Side, Failure> {
    match artifacts.native(&setup.code, setup.spec, opt_level) {
        Ok(art) => Ok(Side {
            mode: "native",
            outcome: call(setup, Some(art))?,
            not_compiled: None,
        }),
        Err(NotNative::TooLarge(e)) => Ok(Side {
            mode: "native",
            outcome: call(setup, None)?,
            not_compiled: Some(e),
        }),
        Err(NotNative::Failed(e)) => Err(Failure::Internal(anyhow!(e))),
    }
}

fn speedup(interp: Duration, native: Duration) -> f64 {
    interp.as_secs_f64() / native.as_secs_f64().max(1e-9)
}

fn print_side(side: &Side) {
    let r = &side.outcome;
    let slots: usize = r.state.iter().map(|a| a.storage.len()).sum();
    println!(
        "{:<7} status={} gas_used={} output=0x{} logs={} state={} accounts, {slots} slots written time={:.3} ms{}",
        side.mode,
        r.status,
        r.gas_used,
        hex::encode(&r.output),
        r.logs.len(),
        r.state.len(),
        r.elapsed.as_secs_f64() * 1e3,
        match &side.not_compiled {
            Some(why) => format!(" (interpreted, not compiled: too large: {why})"),
            None => String::new(),
        }
    );
}

fn side_json(side: &Side) -> Value {
    let r = &side.outcome;
    let (status, reason) = plain_status(&r.status);
    let mut v = json!({
        "status": status, "reason": reason, "gas_used": r.gas_used, "output": hex0x(&r.output),
        "logs": r.logs.iter().map(|l| json!({"address": l.address, "topics": l.topics, "data": format!("0x{}", l.data)})).collect::<Vec<_>>(),
        "state": r.state.iter().map(account_json).collect::<Vec<_>>(),
        "native_frames": r.native_frames, "time_us": r.elapsed.as_secs_f64() * 1e6,
    });
    if side.mode == "native" {
        v["compiled"] = json!(side.not_compiled.is_none());
        v["not_compiled"] = json!(side.not_compiled);
    }
    v
}

/// `0x` and lower-case hex.
fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Splits an outcome such as `Success(Return)`, `Revert` or
/// `Halt(OutOfGas(Basic))` into a status (`success`, `revert`, `halt`) and
/// a snake_case reason (`return`, `out_of_gas:basic`; none for a revert).
fn plain_status(debug: &str) -> (String, Option<String>) {
    let (head, inner) = match debug.split_once('(') {
        Some((h, rest)) => (h, Some(rest.strip_suffix(')').unwrap_or(rest))),
        None => (debug, None),
    };
    let reason = inner.map(|i| {
        let mut out = String::new();
        let mut prev_lower = false;
        for c in i.chars() {
            match c {
                '(' => {
                    out.push(':');
                    prev_lower = false;
                }
                ')' | ' ' => {}
                ',' => out.push(','),
                c if c.is_ascii_uppercase() => {
                    if prev_lower {
                        out.push('_');
                    }
                    out.push(c.to_ascii_lowercase());
                    prev_lower = false;
                }
                c => {
                    out.push(c);
                    prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                }
            }
        }
        out
    });
    (head.to_ascii_lowercase(), reason)
}

fn account_json(a: &AccountState) -> Value {
    let storage: serde_json::Map<String, Value> = a
        .storage
        .iter()
        .map(|(k, v)| (format!("{k:#x}"), json!(format!("{v:#x}"))))
        .collect();
    json!({
        "address": a.address.to_string(), "balance": format!("{:#x}", a.balance),
        "nonce": a.nonce, "code_hash": a.code_hash.to_string(),
        "destroyed": a.destroyed, "storage": storage,
    })
}

/// The first way two outcomes of the same call differ (interpreter first),
/// in everything observable: status, gas, output, logs, post-state.
fn first_difference(i: &CallOutcome, n: &CallOutcome) -> Option<String> {
    if i.status != n.status {
        return Some(format!("status: {} vs {}", i.status, n.status));
    }
    if i.gas_used != n.gas_used {
        return Some(format!("gas used: {} vs {}", i.gas_used, n.gas_used));
    }
    if i.output != n.output {
        return Some(format!(
            "output: 0x{} vs 0x{}",
            hex::encode(&i.output),
            hex::encode(&n.output)
        ));
    }
    if i.logs != n.logs {
        return Some(match i.logs.iter().zip(&n.logs).position(|(a, b)| a != b) {
            Some(k) => format!("log {k}: {:?} vs {:?}", i.logs[k], n.logs[k]),
            None => format!("{} logs vs {}", i.logs.len(), n.logs.len()),
        });
    }
    if i.state == n.state {
        return None;
    }
    let addresses = |s: &[AccountState]| s.iter().map(|a| a.address).collect::<Vec<_>>();
    if addresses(&i.state) != addresses(&n.state) {
        return Some(format!(
            "accounts touched: {:?} vs {:?}",
            addresses(&i.state),
            addresses(&n.state)
        ));
    }
    let (a, b) = i.state.iter().zip(&n.state).find(|(a, b)| a != b)?;
    let field = if a.balance != b.balance {
        format!("balance {:#x} vs {:#x}", a.balance, b.balance)
    } else if a.nonce != b.nonce {
        format!("nonce {} vs {}", a.nonce, b.nonce)
    } else if a.code_hash != b.code_hash {
        format!("code hash {} vs {}", a.code_hash, b.code_hash)
    } else if a.destroyed != b.destroyed {
        format!("destroyed {} vs {}", a.destroyed, b.destroyed)
    } else {
        format!("storage [{}] vs [{}]", slots(&a.storage), slots(&b.storage))
    };
    Some(format!("post-state of {}: {field}", a.address))
}

/// `slot=value, …` of written storage.
fn slots(storage: &[(U256, U256)]) -> String {
    storage
        .iter()
        .map(|(k, v)| format!("{k:#x}={v:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs each fixture of the file under `--mode`; `compare` requires the same
/// result, logs and state root from both.
fn run_fixture_file(args: &Args) -> Result<(), Failure> {
    let path = std::path::Path::new(&args.code);
    let text = read_bounded(path, MAX_STATE_JSON).map_err(Failure::BadInput)?;
    let fixtures = parse_fixtures(&text, path).map_err(|e| Failure::BadInput(anyhow!(e)))?;
    let artifacts = if args.mode == Mode::Interp {
        None
    } else {
        Some(Artifacts::open(args.cache_dir.as_deref())?)
    };
    let mut mismatch = Vec::new();
    for f in &fixtures {
        let pre = f.pre_state();
        let mut outcomes = Vec::new();
        if args.mode != Mode::Native {
            let start = Instant::now();
            let o = run_fixture(f, &pre, args.spec, None);
            outcomes.push(("interp", o, start.elapsed()));
        }
        if let Some(artifacts) = &artifacts {
            let registry = compile_fixture(f, args, artifacts)?;
            let start = Instant::now();
            let o = run_fixture(f, &pre, args.spec, Some(&registry));
            outcomes.push(("native", o, start.elapsed()));
        }
        let identical = match &outcomes[..] {
            [(_, a, _), (_, b, _)] => Some(a.exact() == b.exact()),
            _ => None,
        };
        if args.json {
            let doc = match &outcomes[..] {
                [(_, a, ta), (_, b, tb)] => json!({
                    "schema": crate::schema("run"),
                    "fixture": f.name, "mode": "compare",
                    "interp": fixture_json(a, *ta), "native": fixture_json(b, *tb),
                    "identical": identical,
                }),
                [(mode, o, t)] => {
                    let mut v = fixture_json(o, *t);
                    v["schema"] = json!(crate::schema("run"));
                    v["fixture"] = json!(f.name);
                    v["mode"] = json!(mode);
                    v
                }
                _ => unreachable!("one or two modes"),
            };
            println!("{doc}");
        } else {
            for (mode, o, time) in &outcomes {
                print_fixture_outcome(&f.name, mode, o, *time);
            }
        }
        match identical {
            Some(false) => mismatch.push(f.name.clone()),
            Some(true) if !args.json => println!(
                "{}: native == interpreter (status, gas, output, logs, state root)",
                f.name
            ),
            _ => {}
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
fn compile_fixture(
    f: &Fixture,
    args: &Args,
    artifacts: &Artifacts,
) -> Result<Arc<Registry>, Failure> {
    let codes: Vec<_> = f
        .codes()
        .filter(|c| c.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE)
        .collect();
    let arts: Result<Vec<_>, _> = codes
        .par_iter()
        .map(|c| artifacts.native(c, args.spec, args.opt_level))
        .collect();
    artifacts.warn_rejections();
    let registry = Registry::new();
    let arts = arts.map_err(|e| match e {
        NotNative::TooLarge(e) | NotNative::Failed(e) => Failure::Internal(anyhow!(e)),
    })?;
    for a in arts {
        registry
            .register(args.spec, a)
            .map_err(|e| Failure::Internal(e.into()))?;
    }
    Ok(registry)
}

fn fixture_json(o: &Outcome, time: Duration) -> Value {
    let r = receipt_of(o);
    json!({"status": r.status, "gas_used": r.gas_used,
           "output": hex0x(&r.output),
           "logs": r.logs.iter().map(|l| json!({"address": l.address, "topics": l.topics(), "data": l.data.data})).collect::<Vec<_>>(),
           "state_root": o.state_root, "logs_root": o.logs_root,
           "native_frames": o.native_frames, "time_us": time.as_secs_f64() * 1e6})
}

fn print_fixture_outcome(name: &str, mode: &str, o: &Outcome, time: Duration) {
    let r = receipt_of(o);
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

#[cfg(test)]
mod tests {
    use super::{first_difference, AccountState, CallOutcome, U256};
    use revm::primitives::{Address, B256};
    use std::time::Duration;

    fn outcome(slot_value: u64) -> CallOutcome {
        CallOutcome {
            status: "Success(Stop)".into(),
            gas_used: 43_106,
            output: Vec::new(),
            logs: Vec::new(),
            state: vec![AccountState {
                address: Address::repeat_byte(0xcc),
                balance: U256::ZERO,
                nonce: 1,
                code_hash: B256::repeat_byte(1),
                destroyed: false,
                storage: vec![(U256::ZERO, U256::from(slot_value))],
            }],
            native_frames: 0,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn a_storage_only_divergence_is_a_difference() {
        assert_eq!(first_difference(&outcome(1), &outcome(1)), None);
        let d = first_difference(&outcome(1), &outcome(2)).expect("storage differs");
        assert!(d.contains("storage [0x0=0x1] vs [0x0=0x2]"), "{d}");
        let mut other = outcome(1);
        other.state[0].balance = U256::from(5);
        let d = first_difference(&outcome(1), &other).expect("balance differs");
        assert!(d.contains("balance 0x0 vs 0x5"), "{d}");
        other.state.clear();
        assert!(first_difference(&outcome(1), &other)
            .unwrap()
            .contains("accounts touched"));
    }
}
