//! What the sequencer runs: an initial state, the contracts worth
//! compiling, and blocks of transactions. Generators of such streams live
//! outside the runtime (the harness crate); a node feeds its own.

use crate::revm_glue::block::{Address, BlockHeader, Bytes, Genesis, TxRequest};
use evmc_compiler::SpecId;

/// A contract of the workload, for compiling and reporting.
#[derive(Clone, Debug)]
pub struct Contract {
    /// Short name for reports.
    pub name: &'static str,
    /// Where the genesis installs it.
    pub address: Address,
    /// Its runtime code.
    pub code: Bytes,
}

/// One block: its header and transactions, in order.
#[derive(Clone, Debug)]
pub struct Block {
    /// Number, timestamp, gas limit, beneficiary.
    pub header: BlockHeader,
    /// Transactions, executed and committed in order.
    pub txs: Vec<TxRequest>,
}

/// A whole run: genesis, contracts and blocks under one spec.
pub struct Workload {
    /// Name for reports.
    pub name: String,
    /// Spec every block runs under.
    pub spec: SpecId,
    /// The initial state.
    pub genesis: Genesis,
    /// The contracts worth compiling.
    pub contracts: Vec<Contract>,
    /// The blocks, in order.
    pub blocks: Vec<Block>,
}

impl Workload {
    /// Transactions in all blocks.
    pub fn txs(&self) -> usize {
        self.blocks.iter().map(|b| b.txs.len()).sum()
    }
}
