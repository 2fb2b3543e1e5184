//! Everything in the runtime that touches revm's API.

pub(crate) mod alloy_evm;
mod arith;
pub mod block;
pub(crate) mod evm;
pub(crate) mod executor;
pub(crate) mod inspect;
mod interp_loop;
mod keccak;
mod keccak_memo;
mod modmul;
mod sload_memo;
pub(crate) mod trace;
