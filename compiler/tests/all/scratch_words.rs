//! How operands reach the pure arithmetic builtins (DIV, SDIV, MOD, SMOD,
//! ADDMOD, MULMOD) through the scratch words: a word the block loaded
//! from the stack in memory is stored a limb at a time, so the loads that
//! copy it are never wider than the stores that wrote it; other words are
//! stored whole.

use evmc_compiler::{compile_emit, CompileOptions, Emit, SpecId, TargetSpec};

fn optimised_ir(code_hex: &str) -> String {
    let mut opts = CompileOptions::new(SpecId::CANCUN);
    opts.target = TargetSpec::generic();
    let (bytes, _) =
        compile_emit(&hex::decode(code_hex).unwrap(), &opts, Emit::OptimizedIr).unwrap();
    String::from_utf8(bytes).unwrap()
}

fn limb_stores(ir: &str) -> usize {
    ir.matches("store volatile i64").count()
}

#[test]
fn words_loaded_from_the_stack_are_stored_by_limbs() {
    // PUSH1 0x20 CALLDATALOAD PUSH0 CALLDATALOAD PUSH1 0x40 CALLDATALOAD
    // JUMP; 0x09: JUMPDEST SDIV PUSH0 MSTORE PUSH1 0x20 PUSH0 RETURN. The
    // jump's target is computed, so the block at 0x09 takes both operands
    // of its SDIV from the stack in memory.
    let ir = optimised_ir("6020355f35604035565b055f5260205ff3");
    assert_eq!(limb_stores(&ir), 8, "{ir}");
}

#[test]
fn a_word_times_itself_is_squared() {
    // PUSH1 0x20 CALLDATALOAD PUSH0 CALLDATALOAD DUP1 MULMOD PUSH0 MSTORE
    // PUSH1 0x20 PUSH0 RETURN: both factors are one value.
    let ir = optimised_ir("6020355f3580095f5260205ff3");
    assert!(ir.contains("@evmc_builtin_sqrmod"), "{ir}");
    assert!(!ir.contains("@evmc_builtin_mulmod"), "{ir}");
    // The same with the second factor read again from calldata: two
    // values, which MULMOD multiplies.
    let ir = optimised_ir("6020355f355f35095f5260205ff3");
    assert!(ir.contains("@evmc_builtin_mulmod"), "{ir}");
    assert!(!ir.contains("@evmc_builtin_sqrmod"), "{ir}");
}

#[test]
fn computed_words_are_stored_whole() {
    // PUSH1 0x20 CALLDATALOAD PUSH0 CALLDATALOAD SDIV PUSH0 MSTORE PUSH1
    // 0x20 PUSH0 RETURN: both operands come from calldata, in registers.
    let ir = optimised_ir("6020355f35055f5260205ff3");
    assert!(ir.contains("@evmc_builtin_sdiv"), "{ir}");
    assert_eq!(limb_stores(&ir), 0, "{ir}");
}
