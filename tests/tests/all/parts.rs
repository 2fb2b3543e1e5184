//! Contracts large enough to be cut into several parts and compiled as
//! several shards: internal calls and returns across parts, loops whose
//! words travel as phis, a computed jump to a JUMPDEST that no PUSH names
//! (entered by the dispatch, or by the interpreter when the analysis leaves
//! it out), out of gas everywhere.

use evmc_compiler::{compile_object, CompileOptions, SpecId};
use evmc_tests::assert_frame_eq;

const FUNCTIONS: usize = 30;

fn push2(code: &mut Vec<u8>, v: usize) {
    code.extend_from_slice(&[0x61, (v >> 8) as u8, v as u8]);
}

/// How the loop of [`program`] calls its first function.
#[derive(Clone, Copy, Debug)]
enum First {
    /// By a pushed constant, as the others.
    Pushed,
    /// By a target computed from CALLVALUE (3), which no PUSH names: the
    /// dispatch enters it.
    Computed,
    /// The same, and the code CODECOPYs the function's first byte, so the
    /// analysis takes it for code another contract deploys: the
    /// interpreter takes over at the jump.
    ComputedIntoCopied,
}

/// A loop over calldata word 0 that calls `FUNCTIONS` internal functions,
/// Solidity-style (return address pushed, result returned by a dynamic
/// jump), the first as `first` says.
fn program(first: First) -> Vec<u8> {
    let computed = !matches!(first, First::Pushed);
    // Two passes: the first finds the pcs.
    let mut pcs = vec![0usize; FUNCTIONS];
    let mut end = 0;
    let mut code = Vec::new();
    for _ in 0..2 {
        code.clear();
        if matches!(first, First::ComputedIntoCopied) {
            // PUSH1 2 PUSH2 <f0 - 1> PUSH0 CODECOPY (not naming f0)
            code.extend_from_slice(&[0x60, 0x02]);
            push2(&mut code, pcs[0].saturating_sub(1));
            code.extend_from_slice(&[0x5f, 0x39]);
        }
        code.extend_from_slice(&[0x5f, 0x35, 0x5f]); // [n, acc=0]
        let h = code.len();
        code.extend_from_slice(&[0x5b, 0x81, 0x15]); // JUMPDEST DUP2 ISZERO
        push2(&mut code, end);
        code.push(0x57); // JUMPI
        for (f, &target) in pcs.iter().enumerate() {
            let ret_at = code.len() + 3 + 1 + 3 + if computed && f == 0 { 2 } else { 0 } + 1;
            push2(&mut code, ret_at);
            code.push(0x90); // SWAP1: [n, ret, acc]
            if computed && f == 0 {
                push2(&mut code, target.saturating_sub(3));
                code.extend_from_slice(&[0x34, 0x01]); // CALLVALUE ADD
            } else {
                push2(&mut code, target);
            }
            code.push(0x56); // JUMP
            assert_eq!(code.len(), ret_at);
            code.push(0x5b); // return point
        }
        // [n, acc] -> [n - 1, acc]
        code.extend_from_slice(&[0x90, 0x60, 0x01, 0x90, 0x03, 0x90]);
        push2(&mut code, h);
        code.push(0x56);
        let e = code.len();
        code.extend_from_slice(&[0x5b, 0x5f, 0x52, 0x50, 0x60, 0x20, 0x5f, 0xf3]);
        for (f, pc) in pcs.iter_mut().enumerate() {
            *pc = code.len();
            code.push(0x5b);
            for k in 0..40u8 {
                // acc = acc * c + k
                code.extend_from_slice(&[0x60, 3 + f as u8, 0x02, 0x60, k, 0x01]);
            }
            code.extend_from_slice(&[0x90, 0x56]); // SWAP1 JUMP (return)
        }
        end = e;
    }
    // The dispatch enters the first function only when its target is
    // computed (a pushed one is a static jump) and not copied.
    let a = evmc_compiler::analysis::Analysis::new(&code);
    let entered = a.dynamic_targets.contains(&(pcs[0] as u32));
    assert_eq!(entered, matches!(first, First::Computed), "{first:?}");
    code
}

fn input(n: u64) -> Vec<u8> {
    let mut w = vec![0u8; 32];
    w[24..].copy_from_slice(&n.to_be_bytes());
    w
}

#[test]
fn a_large_contract_is_sharded_and_linked_into_one_artifact() {
    let code = program(First::Pushed);
    let mut opts = CompileOptions::new(SpecId::CANCUN);
    opts.max_shards = 2;
    let two = compile_object(&code, &opts).unwrap().objects;
    assert_eq!(two.len(), 2);
    // The threads change how fast, never what: the same objects.
    opts.threads = 1;
    assert_eq!(compile_object(&code, &opts).unwrap().objects, two);
    opts.max_shards = 1;
    assert_eq!(compile_object(&code, &opts).unwrap().objects.len(), 1);
}

#[test]
fn calls_and_returns_across_parts_match_the_interpreter() {
    for first in [First::Pushed, First::Computed, First::ComputedIntoCopied] {
        let code = program(first);
        for n in [0, 1, 5] {
            let out = assert_frame_eq(&code, &input(n), 10_000_000, SpecId::CANCUN);
            assert!(out.action.contains("Return"), "{out:?}");
        }
    }
}

#[test]
fn out_of_gas_across_parts_matches_the_interpreter() {
    let code = program(First::Pushed);
    let full = 10_000_000;
    let used = {
        let out = assert_frame_eq(&code, &input(3), full, SpecId::CANCUN);
        full - out.gas_remaining
    };
    // Cut the run at many points, in every part.
    for i in 0..40 {
        assert_frame_eq(&code, &input(3), used * i / 40 + i, SpecId::CANCUN);
    }
}

/// Straight-line code longer than one LLVM block's worth of instructions
/// is cut into pieces, each charging its own gas: out of gas at every unit
/// around the cuts matches the interpreter.
#[test]
fn out_of_gas_around_the_cuts_of_a_long_block_matches_the_interpreter() {
    let mut code = vec![0x5f, 0x35];
    for _ in 0..300 {
        code.extend_from_slice(&[0x60, 0x01, 0x01]); // PUSH1 1 ADD
    }
    code.extend_from_slice(&[0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]);
    let full = 100_000;
    let out = assert_frame_eq(&code, &input(7), full, SpecId::CANCUN);
    let used = full - out.gas_remaining;
    for gas in 0..=used {
        assert_frame_eq(&code, &input(7), gas, SpecId::CANCUN);
    }
}
