//! Hot mode: contracts start interpreted, get compiled in the background
//! once they pass the gas threshold, and run natively from the next
//! transaction on, without changing any receipt or state diff.

use evmc_compiler::{SpecId, B256};
use evmc_harness::workloads::{build, WorkloadConfig, WorkloadKind};
use evmc_runtime::hot::{CompileBackend, InProcessBackend, Thresholds};
use evmc_runtime::sequencer::{first_difference, run, Mode, RunOptions, Workload};
use evmc_runtime::LoadedArtifact;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn workload(kind: WorkloadKind, txs: usize, block: usize) -> Workload {
    let mut cfg = WorkloadConfig::new(txs, block, 2);
    cfg.accounts = 100;
    build(kind, &cfg).unwrap()
}

fn hot_options(w: &Workload, backend: Arc<dyn CompileBackend>, gas: u64) -> RunOptions {
    let mut o = RunOptions::new(Mode::Hot, w, 2).unwrap();
    o.backend = backend;
    // Every compiled frame runs natively: these tests check what they ran.
    o.safety_net = false;
    o.hot.thresholds = Thresholds {
        gas,
        calls: u64::MAX,
    };
    // Compiles finish at a block boundary, so the switch is reproducible.
    o.hot.wait_each_block = true;
    o
}

fn interpreted(w: &Workload) -> Vec<evmc_runtime::block::BlockOutput> {
    run(w, &RunOptions::new(Mode::Interp, w, 2).unwrap()).outputs
}

#[test]
fn a_contract_turns_native_mid_run_with_identical_results() {
    let w = workload(WorkloadKind::Weth, 1200, 100);
    let reference = interpreted(&w);
    let backend: Arc<dyn CompileBackend> = Arc::new(InProcessBackend::new(2).unwrap());

    let mut opts = hot_options(&w, backend.clone(), 300_000);
    // In-process compiles cannot be stopped: one over the time cap is
    // reported, and its artifact used all the same.
    opts.compiler.time_cap = Duration::ZERO;
    let r = run(&w, &opts);
    if let Some(d) = first_difference(&reference, &r.outputs) {
        panic!("hot mode differs from the interpreter: {d}");
    }
    // WETH9 passes 300k gas within block 1, is compiled at its end, and
    // runs natively from block 2.
    assert_eq!(r.first_native_block, Some(2), "{:?}", r.compiles);
    assert_eq!(r.hot[0].name, "WETH9");
    assert!(r.hot[0].gas >= 300_000);
    assert_eq!(r.compiles.len(), 1);
    assert_eq!(r.compiles[0].status, "ready");
    assert_eq!(r.compiles[0].native_from_block, Some(2));
    assert!(r.compiles[0].overran);
    assert!(r.native_frames > 1000, "{} native frames", r.native_frames);

    // A restart with the same cache: the hot contract's artifact is loaded
    // before the first block, without compiling.
    let again = run(&w, &hot_options(&w, backend, 300_000));
    assert_eq!(again.first_native_block, Some(1));
    assert_eq!(again.compiles[0].status, "cached");
    assert!(first_difference(&reference, &again.outputs).is_none());
}

/// Compiles nothing and counts the attempts.
#[derive(Default)]
struct FailingBackend {
    compiles: AtomicUsize,
}

impl CompileBackend for FailingBackend {
    fn lookup(&self, _: B256, _: SpecId) -> Option<Arc<LoadedArtifact>> {
        None
    }
    fn compile(&self, _: &[u8], _: SpecId) -> Result<Arc<LoadedArtifact>, String> {
        self.compiles.fetch_add(1, Ordering::Relaxed);
        Err("backend says no".into())
    }
}

#[test]
fn failed_and_oversized_compiles_go_to_the_negative_list() {
    let w = workload(WorkloadKind::Usdc, 300, 50);
    let reference = interpreted(&w);
    let backend = Arc::new(FailingBackend::default());
    let mut opts = hot_options(&w, backend.clone(), 100_000);
    opts.compiler.max_code_size = 3_000;
    let r = run(&w, &opts);
    assert!(first_difference(&reference, &r.outputs).is_none());
    assert_eq!(r.native_frames, 0);
    assert_eq!(r.first_native_block, None);
    let reason = |name: &str| {
        let c = r.compiles.iter().find(|c| c.name == name).unwrap();
        assert_eq!(c.status, "failed");
        c.error.clone().unwrap()
    };
    assert!(reason("FiatToken").contains("over the 3000-byte cap"));
    assert_eq!(reason("FiatTokenProxy"), "backend says no");
    // Each hash is tried once; the oversized one never reaches the backend.
    assert_eq!(backend.compiles.load(Ordering::Relaxed), 1);
}

#[test]
fn gas_is_counted_per_contract_excluding_callees() {
    let w = workload(WorkloadKind::Usdc, 200, 50);
    let r = run(
        &w,
        &hot_options(&w, Arc::new(FailingBackend::default()), u64::MAX),
    );
    let entry = |name: &str| r.hot.iter().find(|h| h.name == name).unwrap().clone();
    let (proxy, token) = (entry("FiatTokenProxy"), entry("FiatToken"));
    // Every transaction enters the proxy, which delegates once.
    assert_eq!(proxy.calls, 200);
    assert_eq!(token.calls, 200);
    // The proxy's own work is its dispatch and DELEGATECALL, well below the
    // token's.
    assert!(proxy.gas < token.gas, "{proxy:?} vs {token:?}");
    assert!(r.compiles.is_empty());
}

/// Proxy, token, WETH and pair turn native one by one, at different block
/// boundaries, so blocks mix compiled and interpreted frames in every
/// combination of caller and callee.
#[test]
fn contracts_calling_each_other_turn_native_one_by_one() {
    let w = workload(WorkloadKind::Uniswap, 1600, 100);
    let reference = interpreted(&w);
    let backend: Arc<dyn CompileBackend> = Arc::new(InProcessBackend::new(2).unwrap());
    let r = run(&w, &hot_options(&w, backend, 1_500_000));
    if let Some(d) = first_difference(&reference, &r.outputs) {
        panic!("hot mode differs from the interpreter: {d}");
    }
    assert_eq!(r.compiles.len(), 4, "{:?}", r.compiles);
    assert!(r.compiles.iter().all(|c| c.status == "ready"));
    let mut from: Vec<u64> = r
        .compiles
        .iter()
        .map(|c| c.native_from_block.unwrap())
        .collect();
    from.sort();
    from.dedup();
    assert!(from[0] >= 2, "{:?}", r.compiles);
    assert!(from.len() >= 2, "all switched at once: {:?}", r.compiles);
    assert_eq!(r.first_native_block, Some(from[0]));
}
