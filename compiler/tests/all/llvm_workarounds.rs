//! Bytecode that used to crash LLVM 19's x86 instruction selector (SIGSEGV,
//! killing the host process) compiles at every level for the host CPU.
//! A regression kills this test binary, which fails the run loudly.

use evmc_compiler::{compile_emit, compile_object, CompileOptions, Emit, SpecId};

/// `select (icmp eq i256 (load), C), K, K+1` with K odd, reached through the
/// EVM stack (loaded around a builtin) and a subtraction from a constant.
const TRIGGERS: &[(&str, &str)] = &[
    // PUSH0 CALLDATALOAD PUSH1 77 EQ PUSH1 8 SUB PUSH0 SSTORE
    ("eq with a constant", "5f35604d146008035f55"),
    // PUSH0 CALLDATALOAD PUSH1 32 CALLDATALOAD EQ PUSH1 8 SUB PUSH0 SSTORE
    ("eq of two loaded words", "5f35602035146008035f55"),
    // PUSH0 CALLDATALOAD PUSH32 2^255-1 EQ PUSH32 2^200 SUB PUSH0 SSTORE
    (
        "eq with a wide constant",
        "5f357f7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff14\
         7f0000000000000100000000000000000000000000000000000000000000000000035f55",
    ),
    // The fuzzer's original find (an older code generator shaped it into
    // the same select).
    (
        "fuzzer find",
        "7f7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff848680600160df5136951301",
    ),
];

#[test]
fn known_llvm_crash_triggers_compile_at_every_level() {
    for (what, hex) in TRIGGERS {
        let code = hex::decode(hex).unwrap();
        for level in 0..=3 {
            let mut opts = CompileOptions::new(SpecId::OSAKA);
            opts.opt_level = level;
            let obj = compile_object(&code, &opts)
                .unwrap_or_else(|e| panic!("{what} at level {level}: {e}"));
            assert!(
                !obj.objects.is_empty() && obj.objects.iter().all(|o| !o.is_empty()),
                "{what} at level {level}"
            );
        }
    }
}

/// The workaround is what keeps them compiling: the wide equality compares
/// of the optimised IR see frozen operands.
#[test]
fn wide_equality_operands_are_frozen_before_instruction_selection() {
    let code = hex::decode(TRIGGERS[0].1).unwrap();
    let (ir, _) = compile_emit(
        &code,
        &CompileOptions::new(SpecId::OSAKA),
        Emit::OptimizedIr,
    )
    .unwrap();
    let ir = String::from_utf8(ir).unwrap();
    assert!(ir.contains("= freeze i256"), "{ir}");
    let compares: Vec<&str> = ir.lines().filter(|l| l.contains("icmp eq i256")).collect();
    assert!(!compares.is_empty(), "the EQ survives optimisation: {ir}");
    for cmp in compares {
        let operands = cmp.split("i256").nth(1).unwrap();
        for name in operands
            .split(',')
            .map(str::trim)
            .filter(|o| o.starts_with('%'))
        {
            assert!(
                ir.contains(&format!("{name} = freeze i256")),
                "operand {name} of `{cmp}` is not frozen"
            );
        }
    }
}
