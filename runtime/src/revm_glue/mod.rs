//! Everything in the runtime that touches revm's API.

pub mod alloy_evm;
mod arith;
pub mod block;
pub mod evm;
pub mod executor;
pub mod inspect;
mod interp_loop;
pub mod trace;
