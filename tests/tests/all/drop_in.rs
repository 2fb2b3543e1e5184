//! `NativeEvm` as a drop-in for revm's EVM on whole transactions: real
//! contract fixtures, deep call chains on a small thread stack, re-entrancy.

use evmc_compiler::SpecId;
use evmc_harness::fixture::{
    load_fixtures, run_fixture, AccountInfo, Fixture, FixtureEnv, FixtureTx,
};
use evmc_runtime::Registry;
use evmc_tests::{native, shared_dir};
use rayon::prelude::*;
use revm::primitives::{address, Address, Bytes, U256};
use std::collections::{BTreeMap, HashMap};

const SPEC: SpecId = SpecId::OSAKA;

/// Compiles every contract of `f` and registers it.
fn registry_for(f: &Fixture) -> std::sync::Arc<Registry> {
    let registry = Registry::new();
    let codes: Vec<&Bytes> = f.codes().collect();
    let arts: Vec<_> = codes
        .par_iter()
        .filter(|c| c.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE)
        .map(|c| native(c, SPEC))
        .collect();
    for a in arts {
        registry.register(SPEC, a).unwrap();
    }
    registry
}

#[test]
fn real_contract_fixtures_run_natively_exactly_as_interpreted() {
    let dir = shared_dir().join("benchdata/contracts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the contract fixtures in {}",
        dir.display()
    );
    let mut checked = 0;
    for file in &files {
        for f in load_fixtures(file).unwrap() {
            let registry = registry_for(&f);
            let pre = f.pre_state();
            let interp = run_fixture(&f, &pre, SPEC, None);
            let native = run_fixture(&f, &pre, SPEC, Some(&registry));
            assert_eq!(
                interp.exact(),
                native.exact(),
                "{}: native differs from the interpreter",
                f.name
            );
            assert!(interp.result.is_ok(), "{}: {:?}", f.name, interp.result);
            assert!(native.native_frames > 0, "{}: nothing ran natively", f.name);
            eprintln!(
                "{:<24} {} native frames, {}",
                f.name,
                native.native_frames,
                &native.exact()[..60.min(native.exact().len())]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, files.len());
}

const A: Address = address!("0x00000000000000000000000000000000000a0a0a");
const B: Address = address!("0x00000000000000000000000000000000000b0b0b");
const SENDER: Address = address!("0x1111111111111111111111111111111111111111");

/// Calls `next` with calldata `d - 1` while `d > 0`, after recording `d` in
/// storage; returns the callee's 32-byte answer, or 42 at the bottom.
fn chain_code(next: Address, salt: u8) -> Vec<u8> {
    let mut c = vec![
        0x5f, 0x35, // d = calldataload(0)
        0x80, 0x15, 0x60, 0x00, 0x57, // if d == 0 jump to bottom (patched below)
        0x60, 0x01, 0x81, 0x55, // sstore(d, 1)
        0x60, 0x01, 0x90, 0x03, // d - 1
        0x5f, 0x52, // mstore(0, d - 1)
        0x60, 0x20, 0x5f, 0x60, 0x20, 0x5f, 0x5f, // ret 0..32, args 0..32, value 0
        0x73, // PUSH20 next
    ];
    c.extend_from_slice(next.as_slice());
    c.extend_from_slice(&[
        0x5a, 0xf1, // GAS CALL
        0x50, // pop success
        0x60, 0x20, 0x5f, 0xf3, // return mem[0..32]
    ]);
    let bottom = c.len();
    c.extend_from_slice(&[0x5b, 0x60, 0x2a, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]);
    c[5] = bottom as u8;
    // A distinct trailing byte gives each contract its own code hash.
    c.push(salt);
    c
}

fn chain_fixture(first: Address, depth: u64, accounts: &[(Address, Vec<u8>)]) -> Fixture {
    let mut pre = BTreeMap::new();
    pre.insert(
        SENDER,
        AccountInfo {
            balance: U256::from(1u64) << 200,
            code: Bytes::new(),
            nonce: 0,
            storage: HashMap::default(),
        },
    );
    for (addr, code) in accounts {
        pre.insert(
            *addr,
            AccountInfo {
                balance: U256::ZERO,
                code: Bytes::from(code.clone()),
                nonce: 1,
                storage: HashMap::default(),
            },
        );
    }
    Fixture {
        name: format!("chain-{depth}"),
        env: FixtureEnv {
            current_coinbase: Address::ZERO,
            current_gas_limit: U256::from(u64::MAX),
            current_number: U256::from(1),
            current_timestamp: U256::from(1),
            current_base_fee: Some(U256::ZERO),
            current_difficulty: None,
        },
        pre,
        transaction: vec![FixtureTx {
            data: Bytes::from(U256::from(depth).to_be_bytes::<32>().to_vec()),
            // The 63/64 rule leaves ~1e-7 of the gas at depth 1024.
            gas_limit: U256::from(40_000_000_000_000u64),
            gas_price: U256::ZERO,
            nonce: U256::ZERO,
            sender: SENDER,
            to: Some(first),
            value: U256::ZERO,
        }],
    }
}

/// Runs both ways on a thread with a 256 KiB stack; returns the number of
/// native frame runs (a frame that made a CALL runs twice: before and after)
/// and the output.
fn run_small_stack(f: Fixture, registry: std::sync::Arc<Registry>) -> (u64, U256) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let pre = f.pre_state();
            let interp = run_fixture(&f, &pre, SPEC, None);
            let native = run_fixture(&f, &pre, SPEC, Some(&registry));
            assert_eq!(interp.exact(), native.exact());
            let r = native.result.expect("executes");
            assert!(r.is_success(), "{r:?}");
            let out = r.output().expect("output");
            (native.native_frames, U256::from_be_slice(out))
        })
        .unwrap()
        .join()
        .expect("no stack overflow, no panic")
}

#[test]
fn call_chain_past_the_depth_limit_alternating_compiled_and_interpreted_frames() {
    let a = chain_code(B, 0xa);
    let b = chain_code(A, 0xb);
    let f = chain_fixture(A, 1100, &[(A, a.clone()), (B, b)]);
    let registry = Registry::new();
    registry.register(SPEC, native(&a, SPEC)).unwrap(); // B stays interpreted
    let (runs, out) = run_small_stack(f, registry);
    // The frame at depth 1024 (d = 1100 - 1024) cannot call: it answers d - 1.
    assert_eq!(out, U256::from(75), "the chain reached the depth limit");
    // A's frames are at even depths 0..=1024: 513 frames, each resumed after
    // its CALL (the one refused at the depth limit too).
    assert_eq!(runs, 2 * 513, "every A frame runs natively");
}

#[test]
fn compiled_contract_reenters_itself_through_call() {
    let a = chain_code(A, 0xa);
    let f = chain_fixture(A, 300, &[(A, a.clone())]);
    let registry = Registry::new();
    registry.register(SPEC, native(&a, SPEC)).unwrap();
    let (runs, out) = run_small_stack(f, registry);
    assert_eq!(out, U256::from(42));
    assert_eq!(runs, 301 + 300);
}

/// A compiled frame reads a slot twice (cold, then warm: the second read
/// comes from the run's memo of storage words), calls itself to write the
/// slot, reads it again after the call, writes it and reads it once more.
/// A memo that outlived the call would read the old word; one that missed
/// the frame's own write would read the word before it.
#[test]
fn storage_reads_see_writes_of_reentrant_frames_and_their_own() {
    let a = vec![
        0x5f, 0x35, 0x60, 0x0b, 0x57, // if calldataload(0) != 0 jump to main
        0x60, 0x63, 0x60, 0x07, 0x55, 0x00, // re-entered: sstore(7, 99); stop
        0x5b, // main:
        0x60, 0x07, 0x54, 0x60, 0x07, 0x54, // x1 = sload(7), x2 = sload(7)
        0x5f, 0x5f, 0x60, 0x20, 0x5f, 0x5f, 0x30, 0x5a, 0xf1,
        0x50, // call(gas, self, 0, 0, 32, 0, 0)
        0x60, 0x07, 0x54, // x3 = sload(7)
        0x80, 0x60, 0x01, 0x01, 0x60, 0x07, 0x55, // sstore(7, x3 + 1)
        0x60, 0x07, 0x54, // x4 = sload(7)
        0x60, 0x04, 0x55, 0x60, 0x03, 0x55, 0x60, 0x02, 0x55, 0x60, 0x01, 0x55, // slots 4..1
        0x00,
    ];
    let mut f = chain_fixture(A, 1, &[(A, a.clone())]);
    f.name = "storage-reads".into();
    let registry = Registry::new();
    registry.register(SPEC, native(&a, SPEC)).unwrap();
    let pre = f.pre_state();
    let interp = run_fixture(&f, &pre, SPEC, None);
    let got = run_fixture(&f, &pre, SPEC, Some(&registry));
    assert_eq!(interp.exact(), got.exact());
    assert!(interp.result.expect("executes").is_success());
    // A before and after its CALL, and the re-entered frame.
    assert_eq!(got.native_frames, 3);
}

#[test]
fn traces_of_agreeing_runs_have_no_divergence() {
    use evmc_harness::statetest;
    let root = shared_dir().join("testdata/state-tests/GeneralStateTests");
    let mut files = Vec::new();
    for d in [
        "stCallCodes",
        "stCallCreateCallCodeTest",
        "stCreate2",
        "stReturnDataTest",
    ] {
        files.extend(
            std::fs::read_dir(root.join(d))
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    files.sort();
    assert!(files.len() > 50);
    let mut native_steps_seen = 0;
    for file in &files {
        let suite = statetest::load_suite(file).unwrap();
        let (vectors, _) = statetest::vectors(&suite);
        let v = &vectors[0];
        let registry = Registry::new();
        for code in statetest::contract_codes(v.unit) {
            registry.register(v.spec, native(code, v.spec)).unwrap();
        }
        let pre = statetest::pre_state(v.unit);
        let (i_out, interp) = statetest::execute(v, &pre, None, true);
        let (n_out, steps) = statetest::execute(v, &pre, Some(&registry), true);
        assert_eq!(i_out.observable(), n_out.observable());
        assert!(interp.iter().all(|s| !s.native && s.gas.is_some()));
        native_steps_seen += steps.iter().filter(|s| s.native).count();
        let report = evmc_runtime::divergence_report(&interp, &steps, 5);
        assert_eq!(
            evmc_runtime::first_divergence(&interp, &steps),
            None,
            "{}: {report}",
            v.label()
        );
    }
    assert!(
        native_steps_seen > 100,
        "compiled frames report their runtime calls"
    );
}

/// A compiled callee reads call data that lives in its caller's memory,
/// before and after growing its own memory far enough to move the shared
/// buffer, inside the data, across its end and past it; then its caller,
/// value and address.
#[test]
fn calldataload_from_callers_memory_after_the_buffer_moves() {
    let mut b = Vec::new();
    for (off, slot) in [(0u8, 0u8), (1, 1), (68, 2), (99, 3), (100, 4), (0, 5)] {
        if slot == 1 {
            // mstore(0x400000, 1): 4 MiB of memory.
            b.extend_from_slice(&[0x60, 0x01, 0x62, 0x40, 0x00, 0x00, 0x52]);
        }
        if slot == 5 {
            b.push(0x36); // CALLDATASIZE
        } else {
            b.extend_from_slice(&[0x60, off, 0x35]);
        }
        b.extend_from_slice(&[0x60, slot, 0x55]);
    }
    // CALLER, CALLVALUE, ADDRESS into slots 6, 7, 8.
    for (i, op) in [0x33u8, 0x34, 0x30].into_iter().enumerate() {
        b.extend_from_slice(&[op, 0x60, 6 + i as u8, 0x55]);
    }
    b.push(0x00);
    let mut a = Vec::new();
    for i in 0..4u8 {
        // mstore(32 * i, a distinct word)
        a.push(0x7f);
        a.extend((0..32u8).map(|k| k.wrapping_mul(13).wrapping_add(i * 64 + 1)));
        a.extend_from_slice(&[0x60, 32 * i, 0x52]);
    }
    // call(gas, B, 0, 0, 100, 0, 0)
    a.extend_from_slice(&[0x5f, 0x5f, 0x60, 0x64, 0x5f, 0x5f, 0x73]);
    a.extend_from_slice(B.as_slice());
    a.extend_from_slice(&[0x5a, 0xf1, 0x00]);
    for compile_a in [false, true] {
        let f = chain_fixture(A, 0, &[(A, a.clone()), (B, b.clone())]);
        let registry = Registry::new();
        registry.register(SPEC, native(&b, SPEC)).unwrap();
        if compile_a {
            registry.register(SPEC, native(&a, SPEC)).unwrap();
        }
        let pre = f.pre_state();
        let interp = run_fixture(&f, &pre, SPEC, None);
        let got = run_fixture(&f, &pre, SPEC, Some(&registry));
        assert_eq!(interp.exact(), got.exact());
        assert!(got.native_frames >= 1);
        assert!(interp.result.expect("executes").is_success());
    }
}

#[test]
fn safety_net_switches_engines_between_segments_exactly() {
    // A re-enters itself 300 deep: 601 segments per transaction, each run
    // natively or interpreted as the safety net chooses, so frames change
    // engine at their CALL boundaries in every combination.
    let a = chain_code(A, 0xa);
    let registry = Registry::new();
    registry.set_safety_net(true);
    let art = native(&a, SPEC);
    registry.register(SPEC, art.clone()).unwrap();
    let mut native_runs = 0;
    for _ in 0..6 {
        let f = chain_fixture(A, 300, &[(A, a.clone())]);
        let (runs, out) = run_small_stack(f, registry.clone());
        assert_eq!(out, U256::from(42));
        native_runs += runs;
    }
    let m = registry.metrics().snapshot();
    let by_net = m.interpreted_for(evmc_runtime::InterpretReason::SafetyNet);
    assert!(native_runs > 0, "no segment ran natively");
    assert!(
        by_net > 0,
        "no segment ran interpreted: the net never sampled"
    );
    assert_eq!(native_runs + by_net, 6 * 601, "every segment counted once");
    let report = art.safety_net();
    assert_ne!(
        report.verdict,
        evmc_runtime::safety_net::Verdict::Undecided,
        "{report:?}"
    );
}
