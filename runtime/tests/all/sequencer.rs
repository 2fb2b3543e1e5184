//! The sequencer on each workload: native execution (every contract
//! compiled) gives the interpreter's receipts, logs and state diffs, block
//! by block; workloads are deterministic from their seed.

use evmc_harness::workloads::compute::SNAILTRACER;
use evmc_harness::workloads::{build, WorkloadConfig, WorkloadKind};
use evmc_runtime::block::TxStatus;
use evmc_runtime::hot::{CompileBackend, InProcessBackend};
use evmc_runtime::sequencer::{compare, first_difference, run, run_digest, Mode, RunOptions};
use std::sync::Arc;

fn options(
    mode: Mode,
    w: &evmc_runtime::sequencer::Workload,
    backend: &Arc<InProcessBackend>,
) -> RunOptions {
    let mut o = RunOptions::new(mode, w, 2).unwrap();
    o.backend = backend.clone() as Arc<dyn CompileBackend>;
    // Every compiled frame runs natively: these tests check what they ran.
    o.safety_net = false;
    o
}

/// What `sequencer --verify` checks, for every workload, on small sizes. One
/// backend serves all, so each contract is compiled once.
#[test]
fn native_blocks_equal_interpreted_blocks_on_every_workload() {
    let backend = Arc::new(InProcessBackend::new(2).unwrap());
    // Seed 3 puts a snailtracer call in the mixed blocks.
    for (kind, txs, seed) in [
        (WorkloadKind::Weth, 800, 1),
        (WorkloadKind::Usdc, 800, 1),
        (WorkloadKind::Uniswap, 800, 1),
        (WorkloadKind::Mixed, 6000, 3),
    ] {
        let mut cfg = WorkloadConfig::new(txs, 100, seed);
        cfg.accounts = 200;
        let w = build(kind, &cfg).unwrap();
        let interp = run(&w, &options(Mode::Interp, &w, &backend));
        let native = run(&w, &options(Mode::Native, &w, &backend));
        assert!(
            native.compiles.iter().all(|c| c.status != "failed"),
            "{kind:?}: {:?}",
            native.compiles
        );
        assert_eq!(native.compiles.len(), w.contracts.len());
        assert!(native.native_frames > 0, "{kind:?}: nothing ran natively");
        if let Some(d) = first_difference(&interp.outputs, &native.outputs) {
            panic!("{kind:?}: native differs from the interpreter: {d}");
        }
        let receipts: Vec<_> = interp.outputs.iter().flat_map(|o| &o.receipts).collect();
        assert_eq!(receipts.len(), txs);
        let txs_in: Vec<_> = w.blocks.iter().flat_map(|b| &b.txs).collect();
        for (r, t) in receipts.iter().zip(&txs_in) {
            assert_eq!(
                r.status,
                TxStatus::Success,
                "{kind:?}: {t:?} output {}",
                r.output
            );
        }
        assert!(interp.outputs.iter().all(|o| !o.diff.is_empty()));
        if kind == WorkloadKind::Mixed {
            let compute = w
                .blocks
                .iter()
                .flat_map(|b| &b.txs)
                .filter(|t| t.to == Some(SNAILTRACER));
            assert!(
                compute.count() > 0,
                "the mixed sample has a compute-heavy call"
            );
        }
        eprintln!(
            "{kind:?}: {} blocks, {} txs, {} Mgas identical; {} native frames",
            w.blocks.len(),
            txs,
            native.stats.total.gas / 1_000_000,
            native.native_frames
        );
    }
}

#[test]
fn compare_mode_agrees_and_reports_both_throughputs() {
    let backend = Arc::new(InProcessBackend::new(2).unwrap());
    let w = build(WorkloadKind::Weth, &WorkloadConfig::new(500, 50, 9)).unwrap();
    let c = compare(&w, &options(Mode::Native, &w, &backend));
    assert_eq!(c.mismatch, None);
    assert_eq!(c.interp.total.txs, 500);
    assert_eq!(c.native.total.txs, 500);
    assert_eq!(c.interp.blocks.len(), 10);
    assert_eq!(c.interp.total.gas, c.native.total.gas);
    assert!(c.native_frames >= 500);
    let interp = run(&w, &options(Mode::Interp, &w, &backend));
    assert_eq!(c.digest, run_digest(&interp.outputs));
}

#[test]
fn workloads_are_deterministic_from_the_seed() {
    let digest = |seed| {
        let w = build(WorkloadKind::Mixed, &WorkloadConfig::new(400, 100, seed)).unwrap();
        let backend = Arc::new(InProcessBackend::new(2).unwrap());
        run_digest(&run(&w, &options(Mode::Interp, &w, &backend)).outputs)
    };
    assert_eq!(digest(5), digest(5));
    assert_ne!(digest(5), digest(6));
}

#[test]
fn missing_contract_data_is_a_clear_error() {
    let mut cfg = WorkloadConfig::new(10, 10, 1);
    cfg.contracts_dir = Some("/nonexistent/contracts".into());
    let err = build(WorkloadKind::Usdc, &cfg).err().unwrap();
    assert!(
        err.contains("/nonexistent/contracts/usdc_proxy.json"),
        "{err}"
    );
    assert!(build(WorkloadKind::Weth, &WorkloadConfig::new(10, 0, 1)).is_err());
}
