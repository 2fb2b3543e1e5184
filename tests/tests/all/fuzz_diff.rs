//! Differential fuzzing, smoke run: generated worlds of contracts (see
//! `evmc_tests::gen`) compiled once each and run as whole transactions
//! under many calldata, storage, value and gas-limit variants, in revm's
//! interpreter and natively; every result, gas figure, refund, output, log
//! and the state root must agree.
//!
//! Sizes come from the environment, for long campaigns (see
//! `fuzz/README.md`): `EVMC_FUZZ_WORLDS` / `EVMC_FUZZ_RANDOM_WORLDS`
//! (worlds), `EVMC_FUZZ_VARIANTS` / `EVMC_FUZZ_RANDOM_VARIANTS`
//! (transactions per world), `EVMC_FUZZ_GAS_POINTS` (extra random gas limits
//! per transaction) and `EVMC_FUZZ_SEED`. `EVMC_FUZZ_INPUT=<hex>` replays
//! the one world input a failure printed.

use evmc_tests::gen::{check_world, Stats, World};
use evmc_tests::{memory_runs_in, native_in_part, native_opt};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

/// Straight to the process's stderr, past the test harness's capture, so
/// the counts show in CI logs.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// What a campaign must have exercised for its passing to mean something.
struct Expect {
    /// Memory accesses the compiler leaves unchecked, in all its codes.
    covered_accesses: bool,
    /// Runs of memory accesses paid for with one check
    /// (`codegen::memory_run`), in all its codes.
    memory_runs: bool,
    /// Blocks copied on the path of an internal call (`analysis::clones`),
    /// in all its codes.
    copied_blocks: bool,
}

fn campaign(
    label: &str,
    decode: fn(&[u8]) -> World,
    worlds: u64,
    variants: u64,
    seed_salt: u64,
    expect: Expect,
    in_part: bool,
) {
    let variants = variants as usize;
    let gas_points = env_or("EVMC_FUZZ_GAS_POINTS", 3) as usize;
    let seed = env_or("EVMC_FUZZ_SEED", 0x5eed) ^ seed_salt;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let replay = std::env::var("EVMC_FUZZ_INPUT").ok();
    let config = Config {
        cases: if replay.is_some() { 1 } else { worlds as u32 },
        failure_persistence: None,
        // Shrinking recompiles the world each step: bounded, so that a
        // failing CI run still ends in minutes.
        max_shrink_iters: 200,
        max_shrink_time: 180_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let stats = Stats::default();
    // Distinct artifacts this campaign needed (the harness compiles each
    // once per process).
    let compiled = Mutex::new(HashSet::new());
    // Memory accesses compiled without a bounds check (inside memory every
    // frame has: `Analysis::covered_accesses`), over the distinct codes.
    let covered = Mutex::new(0usize);
    let runs = Mutex::new(0usize);
    let copies = Mutex::new(0usize);
    let start = Instant::now();
    // EVMC_FUZZ_INPUT=<hex> replays one world (as printed on a failure).
    let inputs = match replay.clone() {
        Some(hex) => Just(hex::decode(hex.trim()).expect("EVMC_FUZZ_INPUT: hex")).boxed(),
        None => vec(any::<u8>(), 64..6000).boxed(),
    };
    let trace = std::env::var_os("EVMC_FUZZ_TRACE").is_some();
    let result = runner.run(&inputs, |data| {
        if trace {
            log(&format!("world input {}", hex::encode(&data)));
        }
        let world = decode(&data);
        let registry = world.registry(&|code: &[u8], spec, opt| {
            let key = (evmc_tests::evmc_compiler::code_hash(code), spec, opt);
            if compiled.lock().unwrap().insert(key) {
                let analysis = evmc_tests::evmc_compiler::analysis::Analysis::new(code);
                *covered.lock().unwrap() += analysis.covered_accesses.len();
                *copies.lock().unwrap() += analysis
                    .blocks
                    .iter()
                    .filter(|b| b.reachable && b.clone_of.is_some())
                    .count();
                *runs.lock().unwrap() += memory_runs_in(code, spec);
            }
            if in_part {
                native_in_part(code, spec, seed)
            } else {
                native_opt(code, spec, opt)
            }
        });
        check_world(&world, &registry, variants, gas_points, &stats).map_err(TestCaseError::fail)
    });
    let covered = *covered.lock().unwrap();
    let runs = *runs.lock().unwrap();
    let copies = *copies.lock().unwrap();
    log(&format!(
        "{label}: {} worlds, {} compiles ({covered} unchecked memory accesses, {runs} memory runs, {copies} copied blocks), {} in {:.1?} (seed {seed:#x})",
        runner.config().cases,
        compiled.lock().unwrap().len(),
        stats.summary(),
        start.elapsed()
    ));
    log(&format!("{label}: endings: {}", stats.endings()));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, data)) => panic!(
            "{label}: divergence (world input, shrunk: {})\n{why}",
            hex::encode(&data)
        ),
        Err(e) => panic!("{label}: {e}"),
    }
    if replay.is_some() {
        return;
    }
    let cases = Stats::get(&stats.cases);
    let executed = cases - Stats::get(&stats.rejected);
    assert!(
        executed * 10 >= cases * 9,
        "{label}: most transactions must execute: {}",
        stats.summary()
    );
    assert!(
        !expect.covered_accesses || covered > 0,
        "{label}: no compiled code had an unchecked memory access"
    );
    assert!(
        !expect.copied_blocks || copies > 0,
        "{label}: no compiled code had a copied call path"
    );
    assert!(
        !expect.memory_runs || runs > 0,
        "{label}: no compiled code had a run of memory accesses"
    );
    assert!(
        // Empty code runs no frame at all.
        Stats::get(&stats.native_frames) * 10 >= executed * 9,
        "{label}: compiled code must run: {}",
        stats.summary()
    );
}

#[test]
fn generated_contracts_run_natively_exactly_as_interpreted() {
    let worlds = env_or("EVMC_FUZZ_WORLDS", 48);
    let variants = env_or("EVMC_FUZZ_VARIANTS", 120);
    let expect = Expect {
        covered_accesses: true,
        memory_runs: true,
        copied_blocks: true,
    };
    campaign(
        "structured worlds",
        World::decode,
        worlds,
        variants,
        0,
        expect,
        false,
    );
}

#[test]
fn random_byte_strings_run_natively_exactly_as_interpreted() {
    // Random bytes mostly halt at once: many small worlds, few variants.
    let worlds = env_or("EVMC_FUZZ_RANDOM_WORLDS", 40);
    let variants = env_or("EVMC_FUZZ_RANDOM_VARIANTS", 12);
    campaign(
        "random byte worlds",
        World::decode_random,
        worlds,
        variants,
        1,
        Expect {
            covered_accesses: false,
            memory_runs: false,
            copied_blocks: false,
        },
        false,
    );
}

/// The structured worlds with a third of each contract's blocks left out
/// of its compile, as a profile that never saw them run would leave them
/// (`evmc_compiler::profile`): frames go on in the interpreter from the
/// start of any such block, in any state, and must end exactly as
/// interpreted.
#[test]
fn contracts_compiled_in_part_run_exactly_as_interpreted() {
    let worlds = env_or("EVMC_FUZZ_PART_WORLDS", 48);
    let variants = env_or("EVMC_FUZZ_VARIANTS", 120);
    campaign(
        "worlds compiled in part",
        World::decode,
        worlds,
        variants,
        2,
        Expect {
            covered_accesses: true,
            memory_runs: true,
            copied_blocks: true,
        },
        true,
    );
}
