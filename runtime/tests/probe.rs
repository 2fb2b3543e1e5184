use evmc_runtime::sequencer::*;

#[test]
fn probe() {
    let w = build(WorkloadKind::Mixed, &WorkloadConfig::new(2000, 500, 7)).unwrap();
    let opts = RunOptions::new(Mode::Interp, &w, 2).unwrap();
    let r = run(&w, &opts);
    let txs: Vec<_> = w.blocks.iter().flat_map(|b| b.txs.iter()).collect();
    let rs: Vec<_> = r.outputs.iter().flat_map(|o| o.receipts.iter()).collect();
    for (t, rc) in txs.iter().zip(&rs) {
        if t.data.len() == 4 && t.data[0] == 0x30 { eprintln!("{:?} gas {} out {}", rc.status, rc.gas_used, rc.output); }
    }
    eprintln!("{:?}", r.stats.blocks);
}
