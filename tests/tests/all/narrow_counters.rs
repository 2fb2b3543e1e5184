//! Loop counters carried in 64 bits (`evmc_compiler::codegen::narrow`):
//! only counters that start from a constant below 2^62 and grow by 1 or 2
//! per `ADD` are narrowed, and narrowed or not, a loop computes what the
//! interpreter computes, up to the largest start and step allowed and
//! past them.

use evmc_compiler::{compile_emit, CompileOptions, Emit, SpecId};
use evmc_tests::assert_frame_eq;

/// `i = start; while (i < calldata[0]) i += step; return i`:
/// PUSH32 start; 0x21: JUMPDEST PUSH0 CALLDATALOAD DUP2 LT ISZERO PUSH1
/// 0x30 JUMPI PUSH1 step ADD PUSH1 0x21 JUMP; 0x30: JUMPDEST PUSH0 MSTORE
/// PUSH1 0x20 PUSH0 RETURN.
fn counting_loop(start: u128, step: u8) -> Vec<u8> {
    let mut code = vec![0x7f];
    code.extend_from_slice(&[0; 16]);
    code.extend_from_slice(&start.to_be_bytes());
    code.extend_from_slice(&[
        0x5b, 0x5f, 0x35, 0x81, 0x10, 0x15, 0x60, 0x30, 0x57, 0x60, step, 0x01, 0x60, 0x21, 0x56,
        0x5b, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3,
    ]);
    code
}

/// The generated IR, before LLVM's passes (which rename values).
fn ir(code: &[u8]) -> String {
    let (ir, _) = compile_emit(code, &CompileOptions::new(SpecId::CANCUN), Emit::LlvmIr).unwrap();
    String::from_utf8(ir).unwrap()
}

fn narrowed(code: &[u8]) -> bool {
    let ir = ir(code);
    let phi = ir.contains("%n = phi i64");
    let step = ir.contains("%step = add nuw i64 %n,");
    assert_eq!(
        phi, step,
        "a narrow phi without its increment, or the reverse:\n{ir}"
    );
    phi
}

const LIMIT: u128 = 1 << 62;

#[test]
fn counters_from_small_constants_by_one_or_two_are_narrowed() {
    for (start, step) in [(0, 1), (7, 2), (LIMIT - 1, 1), (LIMIT - 1, 2)] {
        assert!(narrowed(&counting_loop(start, step)), "{start} + {step}");
    }
}

#[test]
fn larger_starts_and_steps_stay_256_bits() {
    for (start, step) in [(LIMIT, 1), (u128::MAX, 1), (0, 3), (0, 0xff)] {
        assert!(!narrowed(&counting_loop(start, step)), "{start} + {step}");
    }
}

fn word(v: u128) -> Vec<u8> {
    let mut w = vec![0u8; 16];
    w.extend_from_slice(&v.to_be_bytes());
    w
}

#[test]
fn counting_loops_agree_with_the_interpreter_at_and_past_the_bounds() {
    let huge = {
        let mut w = vec![0xff; 32];
        w[0] = 0x7f;
        w
    };
    for (start, step) in [(0, 1), (7, 2), (LIMIT - 1, 2), (LIMIT, 1), (0, 3)] {
        let code = counting_loop(start, step);
        for n in [0, start, start + 1, start + 2, start + 101] {
            for spec in [SpecId::SHANGHAI, SpecId::OSAKA] {
                assert_frame_eq(&code, &word(n), 1_000_000, spec);
            }
        }
        // Runs until it is out of gas, at every position of the last
        // iteration.
        for gas in 20_000..20_040 {
            assert_frame_eq(&code, &huge, gas, SpecId::CANCUN);
        }
    }
}
