//! Everything in the runtime that touches revm's API.

pub mod alloy_evm;
mod arith;
pub mod bench_exec;
pub mod block;
pub mod evm;
pub mod executor;
pub mod fixture;
pub mod single_call;
pub mod statetest;
pub mod trace;
