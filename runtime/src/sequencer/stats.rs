//! Throughput of a run, per block and in total.

use serde::Serialize;
use std::time::Duration;

/// One block's execution.
#[derive(Clone, Debug, Serialize)]
pub struct BlockStat {
    /// Block number.
    pub number: u64,
    /// Transactions.
    pub txs: usize,
    /// Gas used.
    pub gas: u64,
    /// Wall time in seconds.
    pub secs: f64,
}

/// Transactions and gas executed in some time.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Throughput {
    /// Transactions.
    pub txs: u64,
    /// Gas used.
    pub gas: u64,
    /// Wall time in seconds.
    pub secs: f64,
}

impl Throughput {
    /// Adds `txs` transactions using `gas` in `time`.
    pub fn add(&mut self, txs: usize, gas: u64, time: Duration) {
        self.txs += txs as u64;
        self.gas += gas;
        self.secs += time.as_secs_f64();
    }

    /// Transactions per second.
    pub fn tps(&self) -> f64 {
        self.txs as f64 / self.secs.max(1e-12)
    }

    /// Millions of gas per second.
    pub fn mgas_per_s(&self) -> f64 {
        self.gas as f64 / 1e6 / self.secs.max(1e-12)
    }
}

/// Throughput per block and in total.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunStats {
    /// Every block, in order.
    pub blocks: Vec<BlockStat>,
    /// All blocks together.
    pub total: Throughput,
}

impl RunStats {
    /// Records block `number`.
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
