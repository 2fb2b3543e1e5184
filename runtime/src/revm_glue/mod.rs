//! Everything in the runtime that touches revm's API.

mod arith;
pub mod block;
pub mod evm;
pub mod executor;
mod interp_loop;
pub mod trace;
