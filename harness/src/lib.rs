//! evmc-harness: what drives evmc-native from the outside, and what an
//! embedding node does not need: the state-test and contract-fixture
//! runners (ethereum/tests, execution-spec-tests, `benchdata/contracts`),
//! single calls for the CLI's `run`, the sequencer's deterministic
//! workloads, real mainnet blocks replayed through alloy-evm's block
//! executor ([`realblocks`]), and where the shared test data lives.
//!
//! Used by the CLI, the benches and the tests; it depends on the runtime,
//! never the other way round.

pub mod hexcode;
pub mod realblocks;
mod revm_glue;
mod shared_data;
pub mod workloads;

pub use revm_glue::single_call::{
    run_call, AccountState, CallError, CallLog, CallOutcome, CallSetup,
};
pub use revm_glue::{fixture, single_call, statetest};
pub use shared_data::shared_dir;
