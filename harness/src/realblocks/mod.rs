//! Real Ethereum blocks replayed on their own pre-state through alloy-evm's
//! Ethereum block executor, with revm's interpreter (alloy-evm's
//! `EthEvmFactory`) or natively ([`evmc_runtime::NativeEvmFactory`]).
//!
//! A block folder holds `block.json` (an `eth_getBlockByNumber(n, true)`
//! result), `pre_state.json` (every account the block touches, before it),
//! `bytecodes.json` (code by code hash) and, when the block uses BLOCKHASH,
//! `block_hashes.json`. [`load_block`] reads one into a [`RealBlock`];
//! [`execute_block`] runs it with any alloy-evm factory of the Ethereum
//! types; [`header_mismatches`] checks the result against the header and
//! [`run_difference`] compares two runs of the same block.
//! [`trace_block_interp`] and [`trace_block_native`] run a block with
//! revm-inspectors' tracers attached (see [`trace`]), and
//! [`trace_difference`] compares their traces.

mod compare;
mod db;
mod env;
mod execute;
mod folder;
mod keccak_lanes;
mod receipts;
pub mod replay;
pub mod trace;

pub use compare::run_difference;
pub use db::{MissingData, PreStateDb};
pub use env::{block_env, fork_name, BYZANTIUM_BLOCK};
pub use execute::{
    execute_block, header_mismatches, trace_block_interp, trace_block_native, BlockRun,
    PostAccount, PostState, TxOutcome,
};
pub use folder::{find_block_dirs, load_block, RealBlock};
pub use trace::{trace_difference, TraceKind, TxTracer, TxTraces};

use std::fmt;

/// Whether a failure is the data's fault (a folder lacking or damaging
/// something) or the execution's (a check that did not hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The block folder is missing data, or its data does not parse.
    Input,
    /// Execution went wrong or a check failed.
    Failed,
}

/// A failure naming the block (its number, else its folder) and the problem.
#[derive(Clone, Debug)]
pub struct BlockError {
    /// The block number, or the folder when the number is not known.
    pub block: String,
    pub kind: ErrorKind,
    pub what: String,
}

impl BlockError {
    pub(crate) fn input(block: impl fmt::Display, what: impl Into<String>) -> Self {
        Self {
            block: block.to_string(),
            kind: ErrorKind::Input,
            what: what.into(),
        }
    }

    pub(crate) fn failed(block: impl fmt::Display, what: impl Into<String>) -> Self {
        Self {
            block: block.to_string(),
            kind: ErrorKind::Failed,
            what: what.into(),
        }
    }
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block {}: {}", self.block, self.what)
    }
}

impl std::error::Error for BlockError {}
