//! Everything in the runtime that touches revm's API.

pub(crate) mod alloy_evm;
mod arith;
pub mod block;
pub(crate) mod evm;
pub(crate) mod executor;
pub(crate) mod inspect;
mod interp_loop;
mod keccak;
pub(crate) mod keccak_memo;
mod modmul;
mod sload_memo;
pub(crate) mod trace;

/// The copies of CPU-dependent builtins that native runs take on this CPU,
/// as `name=copy` (`keccak256=avx512` or `keccak256=revm`,
/// `mulmod=bmi2-adx` or `mulmod=portable`): a measurement names them, since
/// the same binary runs KECCAK256 and MULMOD at different speeds on a CPU
/// without the extensions.
pub fn cpu_builtins() -> Vec<String> {
    let keccak = if keccak::avx512() { "avx512" } else { "revm" };
    let mulmod = if arith::bmi2_adx() {
        "bmi2-adx"
    } else {
        "portable"
    };
    vec![format!("keccak256={keccak}"), format!("mulmod={mulmod}")]
}
