//! Small loops of small contracts are unrolled twice, never more
//! (`evmc_compiler::backend::target::LOOP_PIPELINE`); the loops of larger
//! contracts are left rolled, their compile time comes first.

use evmc_compiler::analysis::plan::UNROLL_MAX_INSTS;
use evmc_compiler::{compile_emit, CompileOptions, Emit, SpecId};
use evmc_harness::fixture::load_fixtures;
use evmc_tests::shared_dir;

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

/// hash_10k's loop (10,000 iterations of KECCAK256) has a trip count LLVM
/// computes; left to itself the unroller made 73 copies of it (code
/// generation 23 → 550 ms). `-unroll-max-count=2` keeps it to two. (A
/// synthetic counted loop did not reproduce it.)
#[test]
fn hash_10k_loop_is_unrolled_twice_at_most() {
    let file = shared_dir().join("benchdata/contracts/hash_10k.json");
    let fixtures = load_fixtures(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let code = fixtures
        .iter()
        .flat_map(|f| f.codes())
        .max_by_key(|c| c.len())
        .expect("hash_10k has a contract");
    let ir = optimised_ir(code);
    assert!(
        !copies(&ir, 1).is_empty(),
        "the loop is not unrolled at all"
    );
    assert!(
        copies(&ir, 2).is_empty(),
        "the loop is unrolled more than twice"
    );
}
