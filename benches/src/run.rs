//! Benchmarking one case: compile its contracts, check the native run
//! against the interpreter's, then time both, alternated.

use crate::compile::{Compiler, Contract, NotCompiled};
use crate::discover::{Case, Work};
use crate::exec::{Runner, Transaction, Verified};
use crate::measure::{alternate, median, Budget};
use crate::reference::{for_program, RefProgram};
use crate::targets::{met, targets_for, Target, MAX_REFERENCE_RATIO};
use evmc_runtime::safety_net::Verdict;
use evmc_runtime::Registry;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Verified runs slower than this already warmed everything up.
const WARM: Duration = Duration::from_millis(50);

#[derive(Clone, Debug, Serialize)]
pub struct ContractReport {
    pub code_hash: String,
    pub code_bytes: usize,
    /// Why it was not compiled (it then runs interpreted).
    pub not_compiled: Option<String>,
    pub so_bytes: Option<u64>,
    pub compile_ms: Option<f64>,
    #[serde(flatten)]
    pub phases: PhasesMs,
    pub opt_level: Option<u8>,
    pub ir_instructions: Option<usize>,
    /// Cache hit through `ArtifactCache::get` (manifest, content hash,
    /// validation, mapping, symbols): the load time the target judges.
    pub load_us: Option<f64>,
    /// Loading the plain file (validation, mapping, symbols; no manifest
    /// and no content hash).
    pub file_load_us: Option<f64>,
    /// The part of `file_load_us` spent reading and validating the file.
    pub validate_us: Option<f64>,
    /// Taken from the artefact cache (`--cache-dir`): `compile_ms` is the
    /// compile time its manifest records, the phases are unknown.
    pub cached: bool,
}

impl ContractReport {
    fn new(c: &Contract) -> Self {
        let ok = c.outcome.as_ref().ok();
        // Phases are known of contracts compiled in this run only.
        let fresh = ok.filter(|a| !a.cached);
        Self {
            code_hash: format!("{:#x}", c.code_hash),
            code_bytes: c.code_len,
            not_compiled: c.outcome.as_ref().err().map(|e| e.to_string()),
            so_bytes: ok.map(|a| a.size),
            compile_ms: ok.map(|a| ms(a.wall)),
            phases: PhasesMs::of(fresh.map(|a| &a.timings)),
            opt_level: ok.map(|a| a.timings.opt_level),
            ir_instructions: fresh.map(|a| a.timings.ir_instructions),
            load_us: ok.map(|a| a.load.as_secs_f64() * 1e6),
            file_load_us: ok.map(|a| a.file_load.as_secs_f64() * 1e6),
            validate_us: ok.map(|a| a.validate.as_secs_f64() * 1e6),
            cached: ok.is_some_and(|a| a.cached),
        }
    }
}

/// The wall time of each compile stage in milliseconds, as `bench` and
/// `compile --json` report them (flattened: `analysis_ms`, `ir_ms`, ...);
/// all `None` when the stages are unknown (a cache hit, a compile in a
/// worker process). With several shards each stage is the slowest
/// shard's, so the stages may add up to more than the compile's time.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct PhasesMs {
    pub analysis_ms: Option<f64>,
    pub ir_ms: Option<f64>,
    pub optimize_ms: Option<f64>,
    pub codegen_ms: Option<f64>,
    pub link_ms: Option<f64>,
}

impl PhasesMs {
    /// The stages of `timings`, if known.
    pub fn of(timings: Option<&evmc_compiler::Timings>) -> Self {
        match timings {
            None => Self::default(),
            Some(t) => Self {
                analysis_ms: Some(ms(t.analysis)),
                ir_ms: Some(ms(t.ir)),
                optimize_ms: Some(ms(t.optimize)),
                codegen_ms: Some(ms(t.codegen)),
                link_ms: Some(ms(t.link)),
            },
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median, spread and count of one mode's timed runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stats {
    pub median_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    pub reps: usize,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Some(Self {
            median_us: us(median(samples)),
            min_us: us(*samples.iter().min()?),
            max_us: us(*samples.iter().max()?),
            reps: samples.len(),
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    pub target: Target,
    /// `None`: nothing to judge (diverged, or not run).
    pub met: Option<bool>,
}

/// The hand-written Rust version of the program, timed beside it.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceReport {
    pub rust: Stats,
    /// The compiled contract's whole transaction.
    pub native_tx: Stats,
    /// The same transaction with `n = 0`: everything but the loop.
    pub native_tx_n0: Stats,
    /// Native transaction / Rust.
    pub ratio_tx: f64,
    /// (Native transaction - native at n = 0) / (Rust - Rust at n = 0): the
    /// cost of the program's work alone.
    pub ratio_work: f64,
    /// How the Rust version's output or gas differs from the contract's.
    pub disagreement: Option<String>,
}

impl ReferenceReport {
    /// Within [`MAX_REFERENCE_RATIO`] of Rust on the program's work, and
    /// computing the same thing.
    pub fn met(&self) -> bool {
        self.disagreement.is_none() && self.ratio_work <= MAX_REFERENCE_RATIO
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub name: String,
    pub group: String,
    pub source: String,
    pub contracts: Vec<ContractReport>,
    /// Sum over the case's contracts.
    pub compile_ms: Option<f64>,
    pub so_bytes: Option<u64>,
    /// Slowest cache-hit load among the case's contracts.
    pub load_us: Option<f64>,
    pub interp: Option<Stats>,
    pub native: Option<Stats>,
    pub speedup: Option<f64>,
    /// The same from the fastest runs: less sensitive to other load on the
    /// machine, which only ever adds time.
    pub speedup_of_minimums: Option<f64>,
    /// The same transaction with the callee's code replaced by STOP, in the
    /// interpreter: revm's cost around the contract, which native code
    /// cannot reduce.
    pub floor: Option<Stats>,
    /// The speedup if the contract's own execution took no time at all:
    /// interpreter time over [`CaseReport::floor`].
    pub max_speedup: Option<f64>,
    /// Native outcome differs from the interpreter's: what each produced.
    pub divergence: Option<String>,
    /// Problems that are not divergences: expectations of the data not met
    /// (by both modes), contracts not compiled, nothing run natively.
    pub notes: Vec<String>,
    pub native_frames: u64,
    pub targets: Vec<TargetCheck>,
    pub reference: Option<ReferenceReport>,
}

impl CaseReport {
    /// Whether every target of the row is met (`None`: no targets, or some
    /// cannot be judged).
    pub fn all_met(&self) -> Option<bool> {
        if self.targets.is_empty() {
            return None;
        }
        let mut all = true;
        for t in &self.targets {
            all &= t.met?;
        }
        Some(all)
    }
}

/// Compiles, verifies and times `case`.
pub fn bench_case(case: &Case, compiler: &mut Compiler, budget: &Budget) -> CaseReport {
    let (contracts, registry) = compiler.prepare(case);
    let compiled: Vec<_> = contracts
        .iter()
        .filter_map(|c| c.outcome.as_ref().ok())
        .collect();
    let sum_ms = compiled
        .iter()
        .map(|c| c.wall.as_secs_f64() * 1e3)
        .sum::<f64>();
    let mut report = CaseReport {
        name: case.name.clone(),
        group: case.group.clone(),
        source: case.source.display().to_string(),
        contracts: contracts.iter().map(|c| ContractReport::new(c)).collect(),
        compile_ms: (!compiled.is_empty()).then_some(sum_ms),
        so_bytes: (!compiled.is_empty()).then(|| compiled.iter().map(|c| c.size).sum()),
        load_us: compiled
            .iter()
            .map(|c| c.load.as_secs_f64() * 1e6)
            .reduce(f64::max),
        interp: None,
        native: None,
        speedup: None,
        speedup_of_minimums: None,
        floor: None,
        max_speedup: None,
        divergence: None,
        notes: Vec::new(),
        native_frames: 0,
        targets: Vec::new(),
        reference: None,
    };
    report.notes.extend(not_compiled_notes(&contracts));
    if let Work::Run {
        tx,
        expected_output,
    } = &case.work
    {
        if let Err(e) = run_both(
            tx,
            expected_output.as_deref(),
            &registry,
            budget,
            &mut report,
        ) {
            report.notes.push(format!("ERROR: {e}"));
        }
        if report.divergence.is_none() && report.speedup.is_some() {
            if let Some(program) = for_program(&case.name) {
                match reference(tx, program, &registry, budget) {
                    Ok(r) => report.reference = Some(r),
                    Err(e) => report.notes.push(format!("ERROR: reference: {e}")),
                }
            }
        }
    }
    let compile_ms = report.compile_ms;
    report.targets = targets_for(&case.group, &case.name)
        .into_iter()
        .map(|t| TargetCheck {
            target: t,
            met: met(t, report.speedup, compile_ms),
        })
        .collect();
    report
}

/// One note per contract that failed to compile, and one per reason for
/// those left interpreted by design: onchain-lm's 32 data contracts share
/// one line instead of filling the table with 32.
fn not_compiled_notes(contracts: &[Arc<Contract>]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
    for c in contracts {
        let hash = format!("{:#x}", c.code_hash);
        match &c.outcome {
            Ok(_) => {}
            Err(e @ NotCompiled::Failed(_)) => notes.push(format!("ERROR: contract {hash}: {e}")),
            Err(e) => match by_reason.iter_mut().find(|(r, _)| *r == e.to_string()) {
                Some((_, hashes)) => hashes.push(hash),
                None => by_reason.push((e.to_string(), vec![hash])),
            },
        }
    }
    for (reason, hashes) in by_reason {
        notes.push(match &hashes[..] {
            [one] => format!("contract {one}: {reason}"),
            many => {
                // The JSON report lists every contract; the note names a few.
                let shown: Vec<&str> = many.iter().take(3).map(|h| &h[..10]).collect();
                let more = match many.len() - shown.len() {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!(
                    "{} contracts ({}{more}): {reason}",
                    many.len(),
                    shown.join(", ")
                )
            }
        });
    }
    notes
}

fn run_both(
    tx: &Transaction,
    expected_output: Option<&[u8]>,
    registry: &Arc<Registry>,
    budget: &Budget,
    report: &mut CaseReport,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    let interp = tx.verify(None);
    let interp_warm = start.elapsed() > WARM;
    let native = verify_natively(tx, registry);
    report.native_frames = native.native_frames;
    if let Some(d) = divergence(&interp, &native) {
        report.divergence = Some(d);
        return Ok(());
    }
    if let Err(e) = &interp.expectation {
        report.notes.push(format!("both modes: {e}"));
    }
    if interp.rejected {
        if interp.expectation.is_ok() {
            report
                .notes
                .push("transaction rejected, as expected: not timed".into());
        }
        return Ok(());
    }
    if let Some(expected) = expected_output {
        if interp.output != expected {
            report.notes.push(format!(
                "both modes: output 0x{} differs from the expected 0x{}",
                hex::encode(&interp.output),
                hex::encode(expected)
            ));
        }
    }
    if native.native_frames == 0 && !registry.is_empty() {
        report
            .notes
            .push("no frame ran natively (compiled code not reached)".into());
    }

    let mut i = tx.runner(None);
    let mut n = tx.runner(Some(registry.clone()));
    let run_checked = |r: &mut Runner, v: &Verified| -> Result<Duration, String> {
        let run = r.run()?;
        if run.gas_used != v.gas_used {
            return Err(format!(
                "a timed run used {} gas, the checked run {}",
                run.gas_used, v.gas_used
            ));
        }
        Ok(run.elapsed)
    };
    // Warm caches (and the runner's own state) unless a checked run
    // already took long enough to make that noise.
    if interp_warm {
        run_checked(&mut n, &native)?;
    } else {
        run_checked(&mut i, &interp)?;
        run_checked(&mut n, &native)?;
    }
    // A node runs a contract for a long time: time the net's steady state,
    // not its first samples (the notes say what it decided). Also with a
    // fixed number of timed runs (`--reps`): a few runs timed while the
    // net still alternates engines measure its probes, not either engine.
    if registry.safety_net() {
        let start = std::time::Instant::now();
        let mut runs = 0;
        while !net_settled(registry) && runs < NET_WARMUP_RUNS && start.elapsed() < NET_WARMUP_TIME
        {
            run_checked(&mut n, &native)?;
            runs += 1;
        }
    }
    // The floor runs in the same rotation, so that it sees the same machine.
    let mut floor = tx.with_callee_stopped().map(|t| t.runner(None));
    let has_floor = floor.is_some();
    let mut floor_run = || match floor.as_mut() {
        Some(r) => r.run().map(|run| run.elapsed),
        None => Ok(Duration::ZERO),
    };
    let [si, sn, sf] = alternate(
        budget,
        &mut [
            &mut || run_checked(&mut i, &interp),
            &mut || run_checked(&mut n, &native),
            &mut floor_run,
        ],
    )?;
    report.interp = Stats::of(&si);
    report.native = Stats::of(&sn);
    report.notes.extend(net_notes(registry));
    if let (Some(a), Some(b)) = (report.interp, report.native) {
        report.speedup = Some(a.median_us / b.median_us.max(1e-3));
        report.speedup_of_minimums = Some(a.min_us / b.min_us.max(1e-3));
    }
    if has_floor {
        report.floor = Stats::of(&sf);
        if let (Some(a), Some(f)) = (report.interp, report.floor) {
            report.max_speedup = Some(a.median_us / f.median_us.max(1e-3));
        }
    }
    Ok(())
}

/// `tx` run on `registry` with every compiled frame native: the check a
/// timed run is held to must not depend on the safety net's choices.
pub fn verify_natively(tx: &Transaction, registry: &Arc<Registry>) -> Verified {
    let net = registry.safety_net();
    registry.set_safety_net(false);
    let v = tx.verify(Some(registry));
    registry.set_safety_net(net);
    v
}

/// Most native runs spent letting the safety net decide before timing: a
/// verdict needs `MIN_SAMPLES` interpreted segments, and an undecided
/// artefact runs one segment in `UNDECIDED_INTERP_EVERY` interpreted.
const NET_WARMUP_RUNS: usize = 1000;
/// Most time spent so. A contract whose transaction is one long frame
/// (onchain-lm: 50 ms natively, 500 ms interpreted) needs about 48 runs
/// for two recorded segments of each engine (`Evidence::Few`; each
/// engine's first timed segment only warms it up), 3-5 s; with 3
/// s it was often still undecided when timing began, and its three timed
/// runs each had one chance in 16 of being an interpreted probe: two of
/// them were in one whole run (1.11x against 9-11x).
const NET_WARMUP_TIME: Duration = Duration::from_secs(10);

/// Whether the safety net has a verdict for every artefact of `registry`.
fn net_settled(registry: &Registry) -> bool {
    registry
        .snapshot()
        .values()
        .all(|a| a.safety_net().verdict != Verdict::Undecided)
}

/// What the safety net decided for each artefact it set aside, as notes.
fn net_notes(registry: &Registry) -> Vec<String> {
    let mut notes = Vec::new();
    if !registry.safety_net() {
        return notes;
    }
    for art in registry.snapshot().values() {
        let r = art.safety_net();
        if r.verdict == Verdict::Interpreted {
            notes.push(format!(
                "safety net: {} runs interpreted (native {:.2}x the interpreter per gas, {:.2}x in the medians, over {} + {} samples)",
                &format!("{:#x}", art.code_hash())[..20],
                r.speedup.unwrap_or(0.0),
                r.median_speedup.unwrap_or(0.0),
                r.native_samples,
                r.interp_samples
            ));
        } else if r.verdict == Verdict::Undecided && r.native_samples + r.interp_samples > 0 {
            notes.push(format!(
                "safety net: {} undecided after {} + {} samples (one segment in {} runs interpreted)",
                &format!("{:#x}", art.code_hash())[..20],
                r.native_samples,
                r.interp_samples,
                evmc_runtime::safety_net::UNDECIDED_INTERP_EVERY
            ));
        }
    }
    notes
}

/// How the native run differs from the interpreter's, if it does.
pub fn divergence(interp: &Verified, native: &Verified) -> Option<String> {
    if interp.observable != native.observable {
        return Some(format!(
            "interpreter: {}\n    native:      {}",
            interp.observable, native.observable
        ));
    }
    if interp.state_root != native.state_root {
        return Some(format!(
            "same status, gas, output and logs, but post-state root {} (interpreter) vs {} (native)",
            interp.state_root, native.state_root
        ));
    }
    None
}

/// Times the hand-written program beside the compiled contract, and checks
/// they agree on output and gas.
fn reference(
    tx: &Transaction,
    program: RefProgram,
    registry: &Arc<Registry>,
    budget: &Budget,
) -> Result<ReferenceReport, String> {
    let input = tx.input().to_vec();
    let zero = [0u8; 32];
    let (intrinsic, floor) = tx.intrinsic_gas();
    let gas_limit = tx.gas_limit().saturating_sub(intrinsic);
    let outcome = program(&input, gas_limit).ok_or("the Rust version ran out of gas")?;
    let native = verify_natively(tx, registry);
    let rust_gas = (intrinsic + outcome.gas_used).max(floor);
    let disagreement = if native.output != outcome.output {
        Some(format!(
            "output 0x{} (Rust) vs 0x{} (contract)",
            hex::encode(outcome.output),
            hex::encode(&native.output)
        ))
    } else if rust_gas != native.gas_used {
        Some(format!(
            "transaction gas {rust_gas} (Rust: {} + intrinsic {intrinsic}, floor {floor}) vs {} (contract)",
            outcome.gas_used, native.gas_used
        ))
    } else {
        None
    };
    let tx0 = tx.with_input(&zero);
    let mut n = tx.runner(Some(registry.clone()));
    let mut n0 = tx0.runner(Some(registry.clone()));
    let time_rust = |data: &[u8]| {
        let start = std::time::Instant::now();
        let r = program(std::hint::black_box(data), std::hint::black_box(gas_limit));
        let t = start.elapsed();
        std::hint::black_box(r);
        t
    };
    let [rust, rust0, nat, nat0] = alternate(
        budget,
        &mut [
            &mut || Ok(time_rust(&input)),
            &mut || Ok(time_rust(&zero)),
            &mut || n.run().map(|r| r.elapsed),
            &mut || n0.run().map(|r| r.elapsed),
        ],
    )?;
    let m = |s: &[Duration]| median(s).as_secs_f64();
    let stats = |s: &[Duration]| Stats::of(s).ok_or("no samples");
    Ok(ReferenceReport {
        rust: stats(&rust)?,
        native_tx: stats(&nat)?,
        native_tx_n0: stats(&nat0)?,
        ratio_tx: m(&nat) / m(&rust).max(1e-12),
        ratio_work: (m(&nat) - m(&nat0)) / (m(&rust) - m(&rust0)).max(1e-12),
        disagreement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use evmc_compiler::B256;

    fn verified(observable: &str, root: u8) -> Verified {
        Verified {
            observable: observable.into(),
            state_root: B256::repeat_byte(root),
            output: Vec::new(),
            gas_used: 21_000,
            native_frames: 0,
            rejected: false,
            expectation: Ok(()),
        }
    }

    #[test]
    fn contracts_left_interpreted_for_one_reason_share_a_note() {
        let contract = |byte: u8, outcome: NotCompiled| {
            Arc::new(Contract {
                code_hash: B256::repeat_byte(byte),
                code_len: 1,
                spec: evmc_compiler::SpecId::OSAKA,
                outcome: Err(outcome),
            })
        };
        let short = || NotCompiled::TooShort("too short".into());
        let mut contracts: Vec<_> = (1..=5).map(|b| contract(b, short())).collect();
        contracts.push(contract(0xaa, NotCompiled::TooLarge("too large".into())));
        contracts.push(contract(0xbb, NotCompiled::Failed("llc".into())));
        contracts.push(contract(0xcc, NotCompiled::Failed("llc".into())));
        let notes = not_compiled_notes(&contracts);
        assert_eq!(
            notes,
            [
                format!(
                    "ERROR: contract {:#x}: compile failed: llc",
                    B256::repeat_byte(0xbb)
                ),
                format!(
                    "ERROR: contract {:#x}: compile failed: llc",
                    B256::repeat_byte(0xcc)
                ),
                "5 contracts (0x01010101, 0x02020202, 0x03030303 and 2 more): \
                 stays interpreted: too short"
                    .to_string(),
                format!(
                    "contract {:#x}: stays interpreted: too large",
                    B256::repeat_byte(0xaa)
                ),
            ]
        );
    }

    #[test]
    fn divergence_names_what_differs() {
        let a = verified("success Stop, gas used 21000", 1);
        assert!(divergence(&a, &a.clone()).is_none());
        let d = divergence(&a, &verified("revert, gas used 21003", 1)).unwrap();
        assert!(
            d.contains("success Stop") && d.contains("revert, gas used 21003"),
            "{d}"
        );
        let d = divergence(&a, &verified("success Stop, gas used 21000", 2)).unwrap();
        assert!(d.contains("post-state root"), "{d}");
    }
}
