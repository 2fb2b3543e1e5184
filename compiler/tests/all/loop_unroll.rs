//! Small loops of small contracts are unrolled twice
//! (`backend::target::LOOP_PIPELINE`); the loops of larger contracts are
//! left rolled, their compile time comes first. (That no loop is unrolled
//! further is checked on a contract whose loop LLVM would unroll 73 times:
//! `evmc-tests`, `drop_in::hash_10k_loop_is_unrolled_twice_at_most`.)

use evmc_compiler::analysis::plan::UNROLL_MAX_INSTS;
use evmc_compiler::{compile_emit, CompileOptions, Emit, SpecId};

/// PUSH0 CALLDATALOAD; loop: JUMPDEST DUP1 ISZERO PUSH1 15 JUMPI PUSH1 1
/// SWAP1 SUB PUSH1 2 JUMP; 15: JUMPDEST STOP. A counter from calldata,
/// decremented to zero.
const COUNTED_LOOP: &str = "5f355b8015600f57600190036002565b00";

/// Its instructions as the decoder counts them: 14, and the implicit STOP
/// past the end.
const COUNTED_LOOP_INSTS: usize = 15;

fn optimised_ir(code: &[u8]) -> String {
    let (ir, _) =
        compile_emit(code, &CompileOptions::new(SpecId::OSAKA), Emit::OptimizedIr).unwrap();
    String::from_utf8(ir).unwrap()
}

/// The labels of blocks the unroller cloned: it names the copy of an
/// iteration `<block>.<k>`, `k` from 1.
fn copies(ir: &str, k: usize) -> Vec<&str> {
    let suffix = format!(".{k}");
    ir.lines()
        .filter(|l| !l.starts_with([' ', ';', '@', '}']) && l.contains(':'))
        .filter_map(|l| l.split(':').next())
        .filter(|label| label.ends_with(&suffix))
        .collect()
}

#[test]
fn a_small_loop_is_unrolled_twice() {
    let ir = optimised_ir(&hex::decode(COUNTED_LOOP).unwrap());
    assert!(!copies(&ir, 1).is_empty(), "no cloned iteration: {ir}");
    assert!(copies(&ir, 2).is_empty(), "a third copy: {ir}");
}

/// The counted loop, then unreachable STOPs up to `insts` instructions.
fn padded(insts: usize) -> Vec<u8> {
    let mut code = hex::decode(COUNTED_LOOP).unwrap();
    code.resize(code.len() + insts - COUNTED_LOOP_INSTS, 0x00);
    code
}

#[test]
fn loops_are_unrolled_up_to_the_size_limit_and_not_beyond() {
    let at = optimised_ir(&padded(UNROLL_MAX_INSTS));
    assert!(!copies(&at, 1).is_empty(), "not unrolled at the limit");
    let over = optimised_ir(&padded(UNROLL_MAX_INSTS + 1));
    assert!(copies(&over, 1).is_empty(), "{:?}", copies(&over, 1));
}
