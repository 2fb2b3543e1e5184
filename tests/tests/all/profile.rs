//! Contracts compiled from a profile (`evmc_compiler::profile`): only the
//! blocks whose first pc ran are compiled; a frame that reaches another
//! block goes on in the interpreter from its start and ends as interpreted.

use evmc_compiler::{compile_emit, CompileOptions, Emit, RanPcs, SpecId};
use evmc_tests::run_frame_with;
use std::sync::Arc;

/// `calldata[0] != 0` jumps to 0x10, which returns 1; otherwise the code
/// falls into a block that returns 42 * 7:
/// PUSH0 CALLDATALOAD PUSH1 0x10 JUMPI; PUSH1 42 PUSH1 7 MUL PUSH0 MSTORE
/// PUSH1 0x20 PUSH0 RETURN; 0x10: JUMPDEST PUSH1 1 PUSH0 MSTORE PUSH1 0x20
/// PUSH0 RETURN.
const CODE: [u8; 25] = [
    0x5f, 0x35, 0x60, 0x10, 0x57, 0x60, 0x2a, 0x60, 0x07, 0x02, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3,
    0x5b, 0x60, 0x01, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3,
];

/// What a profile of a call with non-zero calldata saw run.
fn jumping_profile() -> RanPcs {
    RanPcs::new([0, 1, 2, 4, 0x10, 0x11, 0x13, 0x14, 0x15, 0x17, 0x18])
}

#[test]
fn blocks_no_profile_saw_are_not_compiled() {
    let whole = CompileOptions::new(SpecId::CANCUN);
    let mut part = whole.clone();
    part.ran = Some(Arc::new(jumping_profile()));
    let (_, t_whole) = compile_emit(&CODE, &whole, Emit::LlvmIr).unwrap();
    let (ir, t_part) = compile_emit(&CODE, &part, Emit::LlvmIr).unwrap();
    let ir = String::from_utf8(ir).unwrap();
    assert!(
        t_part.ir_instructions < t_whole.ir_instructions,
        "{} instructions in part, {} whole",
        t_part.ir_instructions,
        t_whole.ir_instructions
    );
    // The block at pc 5 leaves for the interpreter at its start.
    assert!(ir.contains("store i64 5, ptr %deopt_pc"), "{ir}");
    // A profile names its own artefacts: a cache never mistakes one for
    // the whole contract's, or for another profile's.
    assert_ne!(whole.codegen_fingerprint(), part.codegen_fingerprint());
    let mut other = whole.clone();
    other.ran = Some(Arc::new(RanPcs::new([0, 1, 2, 4, 5])));
    assert_ne!(other.codegen_fingerprint(), part.codegen_fingerprint());
}

#[test]
fn frames_reaching_a_block_left_out_end_as_interpreted() {
    let mut opts = CompileOptions::new(SpecId::CANCUN);
    opts.ran = Some(Arc::new(jumping_profile()));
    let dir = tempfile::tempdir().unwrap();
    let art = evmc_runtime::compile_and_load_with(&CODE, &opts, dir.path()).unwrap();
    let mut one = [0u8; 32];
    one[31] = 1;
    for input in [&[][..], &one[..]] {
        for gas in [100_000, 30, 21, 20, 12, 0] {
            let want = run_frame_with(&CODE, input, gas, SpecId::CANCUN, None);
            let got = run_frame_with(&CODE, input, gas, SpecId::CANCUN, Some(&art));
            assert_eq!(want, got, "input {input:x?}, gas {gas}");
        }
    }
    // The fall-through block, left out, still returns 42 * 7 = 0x126.
    let zero = run_frame_with(&CODE, &[], 100_000, SpecId::CANCUN, Some(&art));
    assert_eq!(zero.memory[30..32], [0x01, 0x26], "{zero:?}");
}
