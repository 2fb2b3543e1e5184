//! Divergences found by differential fuzzing, minimised, one test each.
//!
//! A fuzzing failure prints its world and transaction as Rust source (see
//! `World::repro`); paste it into a new test here and call [`check`]. While
//! the compiler still diverges, mark the test
//! `#[ignore = "divergence: <one line>"]`.

use evmc_compiler::SpecId;
use evmc_tests::gen::{Contract, Kind, Variant, World};
use evmc_tests::native;
use revm::primitives::U256;
use std::process::Command;

/// Runs `f` in a child process (this test binary, filtered to `name`), so
/// that a crash inside the compiler fails this test instead of killing the
/// whole test run.
fn in_child(name: &str, f: impl FnOnce()) {
    if std::env::var_os("EVMC_REGRESSION_CHILD").is_some() {
        f();
        return;
    }
    // The harness names a test by its module path without the crate.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--include-ignored",
            "--nocapture",
        ])
        .env("EVMC_REGRESSION_CHILD", "1")
        .output()
        .expect("runs the test binary");
    assert!(
        out.status.success(),
        "{name}: child process {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the transaction both ways; panics with the full report if they differ.
fn check(world: World, variant: Variant) {
    let registry = world.compile();
    if let Err(report) = world.check(&variant, &registry) {
        panic!("{report}");
    }
}

/// A divergence report carries both results and a reproducer; its state
/// dumps show each touched account's storage (checked here on two runs
/// that really differ).
#[test]
fn divergence_reports_show_results_state_and_a_reproducer() {
    // sstore(0, calldataload(0))
    let world = World::single(SpecId::OSAKA, hex::decode("5f355f55").unwrap());
    let registry = world.compile();
    let a = Variant::call(vec![1; 32], 100_000);
    let b = Variant::call(vec![2; 32], 100_000);
    let (want, _) = world.run_both(&a, &registry);
    let (_, got) = world.run_both(&b, &registry);
    let report = world.report(&a, &want, &got, &registry);
    assert!(report.contains(&want.exact()) && report.contains(&got.exact()));
    assert!(report.contains("calldata: hex::decode(\"0101"), "{report}");
    assert!(report.contains("kind: Kind::Structured"), "{report}");
    let slot =
        |v: &Variant, registry| world.state_dump(v, registry)[&evmc_tests::gen::address(0)].clone();
    assert!(
        slot(&a, None).contains("0x0=0x1010101"),
        "{}",
        slot(&a, None)
    );
    assert!(slot(&b, Some(&registry)).contains("0x0=0x2020202"));
}

/// The reproducer format compiles and runs (a world as the fuzzer prints it).
#[test]
fn printed_reproducers_run() {
    let world = World {
        spec: SpecId::CANCUN,
        opt_level: 0,
        contracts: vec![
            Contract {
                // tstore(1, 7); sstore(0, tload(1)); return(0, 0)
                code: hex::decode("600760015d60015c5f555f5ff3").unwrap(),
                kind: Kind::Structured,
                compiled: true,
            },
            Contract {
                code: evmc_tests::gen::deployer(2),
                kind: Kind::Deployer,
                compiled: false,
            },
        ],
        seed: 0,
    };
    let variant = Variant {
        target: 0,
        calldata: hex::decode("00").unwrap(),
        value: U256::from(0),
        balances: vec![U256::from(5), U256::from(0)],
        storage: vec![(0, U256::from(0), U256::from_str_radix("ff", 16).unwrap())],
        gas_limit: 60_000,
    };
    check(world, variant);
}

/// An artifact compiled for another spec (here Frontier's, where SLOAD's
/// static gas differs) is refused by `Registry::register`; forced in as if
/// it were Osaka's, it is caught by the checker, by a single check and by a
/// whole generated-world run (the checker is not vacuous).
#[test]
fn the_checker_catches_an_artifact_of_the_wrong_spec() {
    let wrong = |world: &World| {
        let registry = evmc_runtime::Registry::new();
        for c in world.contracts.iter().filter(|c| c.compiled) {
            registry.register_unchecked(world.spec, native(&c.code, SpecId::FRONTIER));
        }
        registry
    };
    // sstore(0, sload(0) + 1)
    let world = World::single(SpecId::OSAKA, hex::decode("5f546001015f5500").unwrap());
    let err = evmc_runtime::Registry::new()
        .register(
            SpecId::OSAKA,
            native(&world.contracts[0].code, SpecId::FRONTIER),
        )
        .expect_err("the registry itself refuses it");
    assert!(
        err.to_string().contains("compiled for Frontier, not Osaka"),
        "{err}"
    );
    let registry = wrong(&world);
    let report = world
        .check(&Variant::call(vec![], 100_000), &registry)
        .expect_err("a Frontier artifact cannot pass for Osaka");
    // SLOAD's static gas: 50 in Frontier, 0 (all dynamic) since Berlin.
    assert!(report.contains("total_gas_spent: 43060"), "{report}");

    let mut data = Vec::new();
    let mut x = 7u32;
    for _ in 0..3000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.push((x >> 16) as u8);
    }
    let mut world = World::decode(&data);
    world.spec = SpecId::OSAKA;
    let registry = wrong(&world);
    let stats = evmc_tests::gen::Stats::default();
    assert!(
        evmc_tests::gen::check_world(&world, &registry, 40, 2, &stats).is_err(),
        "a generated world notices too: {}",
        stats.summary()
    );
}

/// Found by the cargo-fuzz target (and by proptest with other generator
/// weights): compiling this 45-byte program for the host CPU (any x86-64-v3
/// or later) crashed inside LLVM 19's SelectionDAG combiner with SIGSEGV,
/// taking the host process down. Fixed by
/// `evmc_compiler::codegen::llvm_workarounds` (compiler/tests/all/llvm_workarounds.rs
/// holds the reduced triggers); run in a child so that a regression fails
/// this test instead of killing the run.
#[test]
fn compiling_a_select_between_adjacent_i256_constants_does_not_crash() {
    in_child(
        "compiling_a_select_between_adjacent_i256_constants_does_not_crash",
        || {
            for code in [
                // PUSH32 0x7fff..ff DUP5 DUP7 DUP1 PUSH1 1 PUSH1 0xdf MLOAD
                // CALLDATASIZE SWAP6 SGT ADD (stack underflow at entry:
                // what matters is that it compiles)
                "7f7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
                 848680600160df5136951301",
                // sstore(0, 8 - eq(calldataload(0), 77))
                "5f35604d146008035f55",
            ] {
                for opt_level in 0..=3 {
                    let mut world = World::single(SpecId::OSAKA, hex::decode(code).unwrap());
                    world.opt_level = opt_level;
                    check(world, Variant::call(vec![0; 32], 100_000));
                }
            }
        },
    );
}
