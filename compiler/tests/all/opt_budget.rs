//! Functions above the optimisation budget are compiled at level 0, so that
//! no contract takes minutes to compile.

use evmc_compiler::{compile_object, CompileOptions, SpecId};

fn program(reps: usize) -> Vec<u8> {
    let mut code = vec![0x5f, 0x35]; // calldataload(0)
    for _ in 0..reps {
        code.extend_from_slice(&[0x80, 0x60, 0x07, 0x0b, 0x01]); // dup1 push 7 signextend add
    }
    code.push(0x00);
    code
}

#[test]
fn functions_above_the_budget_compile_at_level_0_and_others_keep_the_requested_level() {
    let mut opts = CompileOptions::new(SpecId::CANCUN);
    let code = program(600);
    // The IR size does not depend on the budget: place the budget around it.
    let n = compile_object(&code, &opts)
        .unwrap()
        .timings
        .ir_instructions;

    opts.opt_budget = n - 1;
    let large = compile_object(&code, &opts).unwrap();
    assert_eq!(large.timings.ir_instructions, n);
    assert_eq!(large.timings.opt_level, 0);

    opts.opt_budget = n;
    let at_budget = compile_object(&code, &opts).unwrap();
    assert_eq!(at_budget.timings.opt_level, 2);

    opts.opt_budget = n / 2;
    let small = compile_object(&program(10), &opts).unwrap();
    assert!(small.timings.ir_instructions <= opts.opt_budget);
    assert_eq!(small.timings.opt_level, 2);
}
