//! Throughput of a run, per block and in total.

use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct BlockStat {
    pub number: u64,
    pub txs: usize,
    pub gas: u64,
    pub secs: f64,
}

/// Transactions and gas executed in some time.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Throughput {
    pub txs: u64,
    pub gas: u64,
    pub secs: f64,
}

impl Throughput {
    pub fn add(&mut self, txs: usize, gas: u64, time: Duration) {
        self.txs += txs as u64;
        self.gas += gas;
        self.secs += time.as_secs_f64();
    }

    pub fn tps(&self) -> f64 {
        self.txs as f64 / self.secs.max(1e-12)
    }

    pub fn mgas_per_s(&self) -> f64 {
        self.gas as f64 / 1e6 / self.secs.max(1e-12)
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RunStats {
    pub blocks: Vec<BlockStat>,
    pub total: Throughput,
}

impl RunStats {
    pub fn record(&mut self, number: u64, txs: usize, gas: u64, time: Duration) {
        self.blocks.push(BlockStat {
            number,
            txs,
            gas,
            secs: time.as_secs_f64(),
        });
        self.total.add(txs, gas, time);
    }
}
