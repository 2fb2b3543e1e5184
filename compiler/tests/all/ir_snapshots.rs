//! Snapshots of the generated IR for tiny programs, so codegen changes show
//! up in review. Compiled for the generic x86-64 target so the output does
//! not depend on the machine; the metadata record is left out.

use evmc_compiler::{compile_emit, CompileOptions, Emit, SpecId, TargetSpec};

fn ir(code_hex: &str) -> String {
    let mut opts = CompileOptions::new(SpecId::CANCUN);
    opts.target = TargetSpec::generic();
    let (bytes, _) = compile_emit(&hex::decode(code_hex).unwrap(), &opts, Emit::LlvmIr).unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("@evmc_metadata"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn add_two_constants() {
    insta::assert_snapshot!(ir("6001600201"));
}

#[test]
fn mstore_and_return() {
    insta::assert_snapshot!(ir("602a5f5260205ff3"));
}

#[test]
fn counted_loop() {
    insta::assert_snapshot!(ir("5f355b8015600f57600190036002565b00"));
}

#[test]
fn dynamic_jump() {
    insta::assert_snapshot!(ir("5f35565b005b00"));
}

#[test]
fn internal_call_and_return() {
    // PUSH1 7 (return address) PUSH1 5 JUMP ; 5: JUMPDEST JUMP ; 7: JUMPDEST STOP.
    // The call's path is copied (`analysis::clones`): the function and the
    // block it returns to are entered from one block each, the return is
    // a static jump, and no dispatch is left.
    insta::assert_snapshot!(ir("60076005565b565b00"));
}

#[test]
fn memory_offset_used_again() {
    // PUSH0 CALLDATALOAD DUP1 MLOAD POP PUSH1 0x20 ADD MLOAD STOP: after
    // the first MLOAD the offset's copy is its low limb zero-extended, so
    // the second offset is a sum of 64-bit words.
    insta::assert_snapshot!(ir("5f35805150602001515000"));
}
