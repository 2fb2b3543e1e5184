//! Bytecode that used to crash LLVM 19's x86 instruction selector (SIGSEGV,
//! killing the host process) compiles at every level for the host CPU.
//! A regression kills this test binary, which fails the run loudly.

use evmc_compiler::{compile_emit, compile_object, CompileOptions, Emit, SpecId, TargetSpec};

/// `select (icmp eq i256 (load), C), K, K+1` with K odd, reached through the
/// EVM stack (loaded around a builtin) and a subtraction from a constant.
const TRIGGERS: &[(&str, &str)] = &[
    // PUSH0 MLOAD PUSH1 77 EQ PUSH1 8 SUB PUSH0 SSTORE: at levels 1-3 the
    // optimised IR compares the loaded word with a constant and selects
    // between 7 and 8; without the freeze, LLVM 19's llc crashes on it
    // (checked by hand with llc-19 on the IR without its freezes). The
    // CALLDATALOAD triggers below no longer reach the shape: the calldata
    // fast and slow paths meet in a phi since the inline fast path.
    ("eq of a memory word with a constant", "5f51604d146008035f55"),
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

/// The host CPU, and x86-64-v3 (the oldest level with the bug), so that the
/// tests mean the same on a build machine without AVX.
fn targets() -> [TargetSpec; 2] {
    let v3 = TargetSpec {
        cpu: "x86-64-v3".into(),
        ..TargetSpec::generic()
    };
    [evmc_compiler::host_target(), v3]
}

#[test]
fn known_llvm_crash_triggers_compile_at_every_level() {
    for target in targets() {
        for (what, hex) in TRIGGERS {
            let code = hex::decode(hex).unwrap();
            for level in 0..=3 {
                let mut opts = CompileOptions::for_target(SpecId::OSAKA, target.clone());
                opts.opt_level = level;
                let obj = compile_object(&code, &opts)
                    .unwrap_or_else(|e| panic!("{what} at level {level} ({}): {e}", target.cpu));
                assert!(
                    !obj.objects.is_empty() && obj.objects.iter().all(|o| !o.is_empty()),
                    "{what} at level {level} ({})",
                    target.cpu
                );
            }
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
    // The first trigger reaches the crashing shape, guarded: a compare of
    // a frozen loaded word, selecting between adjacent constants. Should
    // the code generator stop producing it, the test above no longer
    // covers the bug and needs another trigger.
    let operand = compares[0]
        .split("i256")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim();
    let frozen = ir
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{operand} = freeze i256 ")))
        .unwrap_or_else(|| panic!("`{}` compares a frozen word: {ir}", compares[0]));
    assert!(
        ir.contains(&format!("{} = load i256", frozen.trim())),
        "the frozen word is loaded: {ir}"
    );
    assert!(ir.contains("i256 7, i256 8"), "{ir}");
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
