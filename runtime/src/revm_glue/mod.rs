//! Everything in the runtime that touches revm's API.

pub mod evm;
pub mod executor;
pub mod single_call;
