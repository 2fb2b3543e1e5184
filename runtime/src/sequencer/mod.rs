//! The sequencer: blocks of transactions executed and committed one after
//! the other on an in-memory state, with receipts, per-block state diffs and
//! throughput, through the interpreter, precompiled native code, or native
//! code compiled while running for contracts that get hot.

mod runner;
pub mod stats;
pub mod verify;
mod workload;

pub use runner::{
    compare, run, run_digest, CompareReport, CompileRecord, HotEntry, HotOptions, Mode, RunOptions,
    RunReport,
};
pub use stats::{BlockStat, RunStats, Throughput};
pub use verify::first_difference;
pub use workload::{Block, Contract, Workload};
