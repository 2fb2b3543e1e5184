//! Builtins are reached through one stub per builtin and module: call
//! sites call the stub directly, and the stub's single indirect jump (for
//! `mem_expand`, its runtime stub's call) is the only transfer through the
//! builtin table. An indirect call per site would
//! cost a mispredicted branch at every site that runs for the first time
//! in a while, which is most of a real contract's code.

use evmc_compiler::{compile_emit, CompileOptions, Emit, SpecId, TargetSpec};

fn asm(code_hex: &str) -> String {
    let mut opts = CompileOptions::new(SpecId::CANCUN);
    opts.target = TargetSpec::generic();
    let (bytes, _) = compile_emit(&hex::decode(code_hex).unwrap(), &opts, Emit::Assembly).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The operands of the instructions of `text` whose mnemonic is one of
/// `mnemonics`, trimmed.
fn operands<'a>(text: &'a str, mnemonics: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| {
            let (m, rest) = l.trim().split_once([' ', '\t'])?;
            mnemonics.contains(&m).then_some(rest.trim())
        })
        .collect()
}

/// The assembly of function `name` in `text`, from its label to its end.
fn function<'a>(text: &'a str, name: &str) -> &'a str {
    text.split(&format!("{name}:"))
        .nth(1)
        .and_then(|rest| rest.split(".Lfunc_end").next())
        .unwrap_or_else(|| panic!("no function {name} in\n{text}"))
}

#[test]
fn builtin_call_sites_are_direct_calls_of_one_stub_each() {
    // Two MSTOREs at unknown offsets (memory growth), two SLOADs (the
    // generic instruction builtin), two DIVs of unknown words, then STOP:
    //   PUSH0 CALLDATALOAD DUP1 DUP1 MSTORE DUP1 DUP1 MSTORE
    //   DUP1 SLOAD POP DUP1 SLOAD POP
    //   DUP1 DUP1 DIV POP DUP1 DUP1 DIV POP STOP
    let text = asm("5f3580805280805280545080545080800450808004500000");
    let calls = operands(&text, &["call", "callq"]);
    for stub in ["mem_expand", "exec_op", "div"] {
        let name = format!("evmc_builtin_{stub}");
        let n = calls.iter().filter(|c| c.ends_with(&name)).count();
        assert_eq!(n, 2, "{name}: {n} direct calls in\n{text}");
    }
    // The one indirect call is `mem_expand`'s runtime call, in a stub of
    // its own that keeps the caller's registers (`preserve_mostcc`).
    let indirect_calls = calls.iter().filter(|c| c.starts_with('*')).count();
    assert_eq!(indirect_calls, 1, "indirect calls: {calls:?}\n{text}");
    let runtime_stub = function(&text, "evmc_builtin_mem_expand_runtime");
    let runtime_calls = operands(runtime_stub, &["call", "callq"]);
    assert!(
        runtime_calls.len() == 1 && runtime_calls[0].starts_with('*'),
        "{runtime_stub}"
    );
    // The growth path saves nothing: the saves the runtime call needs are
    // in its own stub (with them in the prologue, structarray_alloc ran 14%
    // slower).
    let growth_stub = function(&text, "evmc_builtin_mem_expand");
    assert!(
        operands(growth_stub, &["push", "pushq"]).is_empty(),
        "{growth_stub}"
    );
    // Each other stub is one indirect jump through the table (a sibling
    // call, not a call and a return), and nothing else jumps indirectly:
    // the program has no dynamic jumps.
    let stubs = text
        .lines()
        .filter(|l| l.contains("evmc_builtin_") && l.ends_with(':'))
        .count();
    let jumps = operands(&text, &["jmp", "jmpq"])
        .into_iter()
        .filter(|j| j.starts_with('*'))
        .count();
    assert!(stubs >= 4, "{stubs} stubs in\n{text}");
    assert_eq!(jumps, stubs - 2, "indirect jumps in\n{text}");
}
