//! Differential edge cases: stack underflow and overflow, invalid jumps,
//! truncated code, unknown and not-yet-active opcodes, and large random
//! programs, each run in revm's interpreter and natively.

use evmc_compiler::SpecId;
use evmc_tests::diff::{h, prog, Checker, PURE_OPS};
use evmc_tests::revm::bytecode::opcode::{self as op, OpCode};
use evmc_tests::revm::primitives::U256;
use evmc_tests::{assert_frame_eq, native};

// ---------------------------------------------------------------------------
// Differential driver: the shared one, fed with raw code
// ---------------------------------------------------------------------------

trait CodeChecks {
    fn run(&self, what: &str, code: &[u8], spec: SpecId, input: &[u8], gas: u64) -> u64;
    fn gases(&self, what: &str, code: &[u8], spec: SpecId, input: &[u8], extra: &[u64]) -> u64;
}

impl CodeChecks for Checker {
    fn run(&self, what: &str, code: &[u8], spec: SpecId, input: &[u8], gas: u64) -> u64 {
        self.check(what, &prog(code.to_vec(), spec), input, gas)
    }

    /// A generous limit, the exact amount used, one below, half, and the extras.
    fn gases(&self, what: &str, code: &[u8], spec: SpecId, input: &[u8], extra: &[u64]) -> u64 {
        let p = prog(code.to_vec(), spec);
        let used = self.check_gases(what, &p, input, extra);
        self.check(what, &p, input, used / 2);
        used
    }
}

fn word(v: U256) -> Vec<u8> {
    v.to_be_bytes::<32>().to_vec()
}

fn u(v: u64) -> U256 {
    U256::from(v)
}

fn pow2(k: usize) -> U256 {
    U256::from(1u64) << k
}

fn push(code: &mut Vec<u8>, v: U256) {
    let bytes = v.to_be_bytes::<32>();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(31);
    code.push(op::PUSH1 + (31 - skip) as u8);
    code.extend_from_slice(&bytes[skip..]);
}

/// `n` times `PUSH1 0` (works in every spec).
fn pushes(n: usize) -> Vec<u8> {
    [op::PUSH1, 0].repeat(n)
}

/// A loop that leaves `n` items (`n <= 1022`: the loop needs two words of
/// headroom) on the stack, then `tail`. The counter lives in memory at 0x2000.
fn fill_then(n: u16, tail: &[u8]) -> Vec<u8> {
    assert!(n <= 1022);
    let mut c = vec![op::PUSH2];
    c.extend_from_slice(&n.to_be_bytes());
    c.extend_from_slice(&h("612000 52"));
    let lp = c.len() as u16;
    c.extend_from_slice(&h("5b 612000 51 15 61"));
    let done_at = c.len();
    c.extend_from_slice(&h("0000 57 612000 51 6001 90 03 612000 52 6001 61"));
    c.extend_from_slice(&lp.to_be_bytes());
    c.push(op::JUMP);
    let done = c.len() as u16;
    c[done_at..done_at + 2].copy_from_slice(&done.to_be_bytes());
    c.push(op::JUMPDEST);
    c.extend_from_slice(tail);
    c
}

const SPECS_SMALL: &[SpecId] = &[
    SpecId::FRONTIER,
    SpecId::BYZANTIUM,
    SpecId::PETERSBURG,
    SpecId::BERLIN,
    SpecId::SHANGHAI,
    SpecId::CANCUN,
    SpecId::OSAKA,
];

// ---------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------

/// Two different programs loaded one after the other through the harness's
/// `native()` must be two different libraries. Regression: the loader used
/// to `dlopen` each artifact as `/proc/self/fd/<n>` and close the fd; a later
/// artifact given the same fd number got the library already loaded under
/// that name, i.e. ran the first program's code.
#[test]
fn loader_distinct_programs() {
    let spec = SpecId::CANCUN;
    // PUSH1 n PUSH0 MSTORE STOP
    let a = evmc_tests::native(&h("60015f5200"), spec);
    let b = evmc_tests::native(&h("60025f5200"), spec);
    assert_ne!(a.entry() as usize, b.entry() as usize, "same library twice");
    // Observable: the second program used to write 1 natively.
    let o = evmc_tests::assert_frame_eq(&h("60025f5200"), &[], 100, spec);
    assert_eq!(o.memory[31], 2);
}

// ---------------------------------------------------------------------------
// Stack underflow
// ---------------------------------------------------------------------------

#[test]
fn stack_underflow() {
    let chk = Checker::new("stack underflow");
    let cases: &[&str] = &[
        "01",                   // at block start, empty stack
        "50",                   // POP on empty
        "80",                   // DUP1 on empty
        "90",                   // SWAP1 on empty
        "6001 90",              // SWAP1 with one item
        "6001 6002 01 01",      // mid-block
        "6001 6002 6003 08 08", // ADDMOD mid-block
        "6001 33 01 01",        // after a builtin (CALLER) in the block
        "6001 33 01 01 01",
        "6001 6000 52 01", // after a memory op
        "6001 6000 52 6001 01 01",
        "6004 56 00 5b 01", // in a block reached by a static jump
        "6005 6001 57 00 5b 01 01",
        "600060005b 01 600456", // a loop that consumes one item per turn
        "6001 6001 6001 5b 50 600656", // a loop of POPs
        "6001 8f",              // DUP16 with one item
        "6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 6001 9f", // SWAP16 with 16
        "6001 6001 a2",                     // LOG2 with two items
        "6001 6001 6001 6001 6001 6001 f1", // CALL with six items
        "6001 6001 f3",                     // RETURN is fine; then nothing
        "6001 fd",                          // REVERT with one
        "6001 6001 6001 f0",                // CREATE fine
        "6001 6001 6001 f5",                // CREATE2 one short
        "ff",                               // SELFDESTRUCT on empty
        "56",                               // JUMP on empty
        "6001 57",                          // JUMPI with one
    ];
    for &c in cases {
        let code = h(c);
        for &spec in SPECS_SMALL {
            chk.gases(c, &code, spec, &[], &[0, 1, 2, 3, 5, 8]);
        }
    }
    // Underflow in a block entered by a dynamic jump, with different depths.
    let code = h("6000 35 56 5b 01 01 01 00");
    for depth in 0..4u64 {
        let mut pre = pushes(depth as usize);
        pre.extend_from_slice(&code);
        // The JUMPDEST moves with the prefix.
        let target = 2 * depth + 4;
        for spec in [SpecId::FRONTIER, SpecId::CANCUN] {
            chk.gases("dynamic", &pre, spec, &word(u(target)), &[]);
        }
    }
    chk.finish(500);
}

// ---------------------------------------------------------------------------
// Stack overflow
// ---------------------------------------------------------------------------

#[test]
fn stack_overflow() {
    let chk = Checker::new("stack overflow");
    // A loop that grows the stack by one per turn until it overflows.
    let lp = h("5b 6001 6000 56");
    // Same, with a builtin and a memory op in the loop body.
    let lp2 = h("5b 33 6001 6000 52 6000 56");
    // Growing by two with DUPs, in a JUMPI loop.
    let lp3 = h("6001 5b 80 80 50 6001 6002 57");
    for &spec in SPECS_SMALL {
        for (name, c) in [("loop", &lp), ("loop builtin", &lp2), ("loop dup", &lp3)] {
            chk.gases(name, c, spec, &[], &[1000, 5000, 10_000]);
        }
        // Exactly full, in one block (PUSH1 only: every spec).
        let c = pushes(1024);
        chk.gases("1024 pushes", &c, spec, &[], &[]);
        for tail in ["33", "80", "6000 52", "9f", "8f", "50 6001", "01 6001"] {
            let mut c = pushes(1023);
            c.extend_from_slice(&h(tail));
            chk.gases("1023 pushes + tail", &c, spec, &[], &[]);
        }
        // Full stack reached across blocks.
        let mut c = pushes(600);
        c.push(op::JUMPDEST);
        c.extend_from_slice(&pushes(424));
        chk.gases("two blocks 1024", &c, spec, &[], &[]);
        c.extend_from_slice(&h("5b 6000"));
        chk.gases("three blocks 1025", &c, spec, &[], &[]);
        // After a fill loop: pushes, builtins and DUPs at the top, in the
        // block of the loop exit and behind one more JUMPDEST.
        for (n, tail) in [
            (1022, "6000 6000"),
            (1022, "6000 6000 6000"),
            (1022, "33 33"),
            (1022, "33 33 33"),
            (1022, "6000 33 6000"),
            (1022, "80 80"),
            (1022, "80 80 80"),
            (1022, "5b 80 80"),
            (1022, "5b 80 80 80"),
            (1022, "6000 5b 33 33"),
            (1022, "6000 6000 6000 52 6000"),
            (1008, "8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f 8f"),
            (1020, "6000 6000 9f"),
        ] {
            let c = fill_then(n, &h(tail));
            chk.gases(tail, &c, spec, &[], &[]);
        }
    }
    // PUSH0 (Shanghai+): 1024 fit, the 1025th overflows.
    for spec in [SpecId::SHANGHAI, SpecId::CANCUN, SpecId::OSAKA] {
        for n in [1023, 1024] {
            let c = vec![op::PUSH0; n];
            chk.gases("PUSH0s", &c, spec, &[], &[]);
        }
        // 1025 PUSH0 split across two blocks: the second one's check fails.
        let mut c = vec![op::PUSH0; 1000];
        c.push(op::JUMPDEST);
        c.extend_from_slice(&[op::PUSH0; 25]);
        chk.gases("PUSH0 two blocks", &c, spec, &[], &[]);
        let c = fill_then(1022, &h("5f 5f 5f"));
        chk.gases("PUSH0 after fill", &c, spec, &[], &[]);
    }
    chk.finish(500);
}

/// A single block that grows the stack by more than 1024: its bound check
/// must still fail on an empty stack. Regression: the bound used to be
/// `1024.saturating_sub(growth)` = 0, which an empty stack passes; native
/// code then wrote past the 1024-word stack buffer (in a debug build
/// `Vec::set_len`'s precondition check aborted the test process).
#[test]
fn stack_overflow_single_huge_block() {
    let chk = Checker::new("stack overflow, one huge block");
    for n in [1025, 2000] {
        let c = vec![op::PUSH0; n];
        chk.gases("PUSH0s", &c, SpecId::SHANGHAI, &[], &[]);
    }
    for tail in ["6000", "80", "33"] {
        let mut c = pushes(1024);
        c.extend_from_slice(&h(tail));
        chk.gases("1024 pushes + tail", &c, SpecId::FRONTIER, &[], &[]);
    }
    chk.finish(10);
}

/// Compile time of blocks that write back ~1000 stack words. Regression:
/// slots were addressed as `stack + (len + k) * 32`; once the block's stack
/// check bounds `len` to {0, 1}, InstCombine rewrites half of those adds into
/// `or disjoint` and the backend no longer sees one base pointer for the
/// stores: 1022 x `PUSH1 0` + CALLER took about a minute in LLVM codegen
/// (1000 or 1024 pushes took milliseconds).
#[test]
fn compile_time_of_full_stack_blocks() {
    let mut worst = std::time::Duration::ZERO;
    for (n, tail) in [(1022, "33"), (1021, "33"), (1023, "9f"), (1023, "50 6001")] {
        let mut c = pushes(n);
        c.extend_from_slice(&h(tail));
        let t = std::time::Instant::now();
        evmc_compiler::compile_object(&c, &evmc_compiler::CompileOptions::new(SpecId::CANCUN))
            .unwrap();
        let took = t.elapsed();
        worst = worst.max(took);
        assert!(
            took.as_secs() < 10,
            "{n} pushes + {tail}: compiling took {took:?}"
        );
    }
    eprintln!("full-stack blocks: slowest compile {worst:?}");
}

// ---------------------------------------------------------------------------
// Jumps
// ---------------------------------------------------------------------------

/// `[PUSH1 cond] PUSH32 target JUMP(I)`, then the tail
/// `STOP JUMPDEST PUSH1 0x5b STOP JUMPDEST PC STOP`. Returns the code and
/// the pcs of: the first JUMPDEST, the 0x5b inside PUSH data, the second
/// JUMPDEST.
fn jump_layout(target: U256, jumpi_cond: Option<u64>) -> (Vec<u8>, [u64; 3]) {
    let mut c = Vec::new();
    if let Some(cond) = jumpi_cond {
        c.extend_from_slice(&[op::PUSH1, cond as u8]);
    }
    c.push(op::PUSH32);
    c.extend_from_slice(&target.to_be_bytes::<32>());
    c.push(if jumpi_cond.is_some() {
        op::JUMPI
    } else {
        op::JUMP
    });
    let base = c.len() as u64;
    c.extend_from_slice(&h("00 5b 605b 00 5b 58 00"));
    (c, [base + 1, base + 3, base + 5])
}

/// Jump targets around a valid destination `dest`.
fn jump_targets(code_len: u64, dest: u64, in_push: u64) -> Vec<U256> {
    vec![
        u(dest),
        u(in_push),
        u(dest - 1),
        u(0),
        u(code_len),
        u(code_len + 1),
        u(0xffff),
        u((1 << 32) + dest),
        u(u32::MAX as u64),
        u(u64::MAX),
        pow2(64) + u(dest),
        pow2(128) + u(dest),
        pow2(192) + u(dest),
        pow2(255) + u(dest),
        U256::MAX,
    ]
}

#[test]
fn invalid_jumps_static() {
    let chk = Checker::new("static jumps");
    for spec in [SpecId::FRONTIER, SpecId::CANCUN] {
        for jumpi in [None, Some(0), Some(1), Some(2)] {
            let (probe, [dest, in_push, dest2]) = jump_layout(u(0), jumpi);
            let mut targets = jump_targets(probe.len() as u64, dest, in_push);
            targets.push(u(dest2));
            for t in targets {
                let (c, _) = jump_layout(t, jumpi);
                chk.gases("static", &c, spec, &[], &[0, 3, 8]);
            }
        }
        // Targets resolved through DUP/SWAP, and ones that are computed.
        for c in [
            "6007 80 56 00 00 00 00 5b 00",         // target through DUP1
            "6009 6001 90 56 00 00 00 00 00 5b 00", // target through SWAP1
            "6004 6003 01 56 00 00 00 5b 00",       // computed target (dynamic)
            "6003 56 5b 00",                        // to a JUMPDEST
            "6002 56 5b",                           // to a JUMPDEST that is the last byte
            "6001 56",                              // into PUSH data
            "6000 56",                              // to the PUSH itself
            "6004 56 00 605b 00",                   // 0x5b in PUSH data
            "6006 6001 57 00 00 00 5b 00",          // JUMPI taken
            "6001 6006 57 00 00 00 5b 00",          // JUMPI: operands swapped, invalid
            "6000 6006 57 00 00 00 5b 00",          // JUMPI: zero condition, invalid target
            "6001 6000 57 00",                      // JUMPI to 0 (not a JUMPDEST)
            "5b 6000 6000 57 00",                   // JUMPI to a JUMPDEST, zero condition
            "5b 6001 6000 57 00",                   // JUMPI back to itself: loops until OOG
            "5b 6000 56",                           // JUMP back to itself: loops until OOG
        ] {
            chk.gases(c, &h(c), spec, &[], &[0, 10]);
        }
    }
    chk.finish(200);
}

#[test]
fn invalid_jumps_dynamic() {
    let chk = Checker::new("dynamic jumps");
    // Word 0: target; word 1: JUMPI condition.
    // 0: PUSH1 32 CALLDATALOAD PUSH1 0 CALLDATALOAD JUMPI(6) STOP(7)
    // 8: JUMPDEST PC STOP PUSH2 5b5b (12, 13 are PUSH data) STOP JUMPDEST(15) PC STOP
    let jumpi = h("6020 35 6000 35 57 00 5b 58 00 615b5b 00 5b 58 00");
    // 0: PUSH1 0 CALLDATALOAD JUMP(3), then JUMPDEST(4) PC STOP PUSH2 5b5b
    // (8, 9) STOP JUMPDEST(11) PC STOP
    let jump = h("6000 35 56 5b 58 00 615b5b 00 5b 58 00");
    for spec in [SpecId::FRONTIER, SpecId::PETERSBURG, SpecId::CANCUN] {
        for t in jump_targets(jump.len() as u64, 4, 8) {
            chk.gases("jump", &jump, spec, &word(t), &[]);
        }
        for t in jump_targets(jump.len() as u64, 11, 9) {
            chk.gases("jump", &jump, spec, &word(t), &[]);
        }
        let mut targets = jump_targets(jumpi.len() as u64, 8, 12);
        targets.extend([u(15), u(13)]);
        for t in targets {
            for cond in [u(0), u(1), pow2(255), pow2(64), U256::MAX] {
                let mut input = word(t);
                input.extend_from_slice(&word(cond));
                chk.gases("jumpi", &jumpi, spec, &input, &[]);
            }
        }
        // Short calldata: the missing bytes read as zero.
        for input in [
            vec![],
            vec![0],
            vec![0; 31],
            h("000000000000000000000000000000000000000000000000000000000000000900"),
        ] {
            chk.gases("jumpi short", &jumpi, spec, &input, &[]);
            chk.gases("jump short", &jump, spec, &input, &[]);
        }
    }
    chk.finish(1000);
}

// ---------------------------------------------------------------------------
// Code shape
// ---------------------------------------------------------------------------

#[test]
fn code_shapes() {
    let chk = Checker::new("code shapes");
    let cases: &[&str] = &[
        "", // empty code
        "00",
        "5b",
        "6001 6002 01",              // runs off the end
        "6001 6002 01 5b",           // off the end after a JUMPDEST
        "7f aabbcc",                 // PUSH32 with 3 bytes left
        "61 aa",                     // PUSH2 with 1 byte left
        "60",                        // PUSH1 with nothing
        "6001 7f",                   // PUSH32 with nothing
        "6004 56 00 7f 5b5b",        // jump into truncated PUSH data
        "6003 56 00 5b 7f",          // a JUMPDEST just before a truncated PUSH
        "6005 56 00 00 00 5b",       // JUMPDEST as the last byte
        "6003 57",                   // JUMPI on one item
        "6001 6005 57 00 00 5b",     // JUMPI taken to the last byte
        "6000 6005 57 5b",           // JUMPI not taken, off the end
        "58 58 58 5a 59 36",         // PC GAS MSIZE CALLDATASIZE
        "6001 600052 59 6020 51 59", // MSIZE around memory growth
        "5a 5a 5a 03",               // GAS differences
        "5b5b5b5b 5a",               // GAS after several JUMPDEST blocks
        "fe",                        // INVALID
        "6001 fe 00",
        "f3", // RETURN on empty
        "6000 6000 f3 6001",
        "6020 6000 f3",              // RETURN 32 zero bytes
        "6001 6000 52 6020 6000 fd", // REVERT with data
    ];
    for &c in cases {
        for &spec in SPECS_SMALL {
            chk.gases(c, &h(c), spec, &[], &[0, 1, 2, 3, 10]);
        }
    }
    chk.finish(300);
}

/// Constants pushed before a straight-line run that is cut into blocks
/// (and before builtins that write the stack back) and used after it: code
/// generation takes them as constants where the stack passed through
/// memory (`Analysis::entry_consts`), which must change nothing.
#[test]
fn constants_across_block_cuts() {
    let chk = Checker::new("constants across block cuts");
    // DUP1 POP pairs: neutral; long enough for two cuts inside one
    // function, and for a run that spans functions (parts of
    // `DEFAULT_PART_INSTS` instructions), whose blocks take their stacks
    // as phis or from memory.
    let cut = evmc_compiler::analysis::MAX_BLOCK_INSTS;
    // The long one also uses the constants all along (SIGNEXTEND by 7, and
    // adds BYTE 0x1f of the word on top), so that blocks entered through
    // memory use them before any block takes them as phis.
    let step = format!("{} 820b 80841a01", "8050".repeat(40));
    let runs = ["8050".repeat(cut + 100), step.repeat(6 * cut / 86)];
    // Stack before each use: [0x1f, 7, 0x80, x] with x from calldata.
    let head = "601f 6007 6080 5f35";
    let uses = [
        // SIGNEXTEND by 7, then add BYTE 0x1f, SHL by 0x80 and SAR by 7 of
        // the word.
        "820b 80841a01 80821b01 80831d01",
        // The same after a builtin (SLOAD) and a KECCAK256 of memory.
        "5f5450 5f52 6020 5f 20 820b 80841a01",
        // A JUMPI on calldata: both ways use the constants (the target is
        // patched in below).
        "6020 35 61XXXX 57 820b 5f52 6020 5f f3 5b 831a",
        // The known words consumed: SWAP and POP the constants away, then
        // use the word that took their place.
        "9050 9050 6003 0b",
    ];
    for (i, usage) in uses.iter().enumerate() {
        for run in ["", &runs[0], &runs[1]] {
            let prefix = h(&format!("{head} {run}"));
            // The JUMPI's JUMPDEST is 15 bytes into its use.
            let dest = format!("{:04x}", prefix.len() + 15);
            let mut code = prefix;
            code.extend_from_slice(&h(&usage.replace("XXXX", &dest)));
            // MSTORE the result at 0 and return it.
            code.extend_from_slice(&h("5f 52 6020 5f f3"));
            // Guards the test itself: each program returns its word.
            let ok =
                evmc_tests::run_frame_with(&code, &word(u(0x80)), 10_000_000, SpecId::CANCUN, None);
            assert!(
                ok.action.contains("result: Return"),
                "use {i}: {}",
                ok.action
            );
            // The second word is the JUMPI's condition: both ways.
            for (input, cond) in [u(0), u(0x80), u(0xff7f), U256::MAX - u(0x7f)]
                .into_iter()
                .zip([0, 1].into_iter().cycle())
            {
                let mut data = word(input);
                data.extend_from_slice(&word(u(cond)));
                for spec in [SpecId::CANCUN, SpecId::OSAKA] {
                    let what = format!("use {i}, run of {} bytes", code.len());
                    chk.gases(&what, &code, spec, &data, &[21, 100]);
                }
            }
        }
    }
    chk.finish(300);
}

// ---------------------------------------------------------------------------
// Unknown and not-yet-active opcodes
// ---------------------------------------------------------------------------

#[test]
fn unknown_opcodes() {
    let chk = Checker::new("unknown opcodes");
    let unknown: Vec<u8> = (0..=255u8).filter(|&o| OpCode::new(o).is_none()).collect();
    assert!(unknown.len() > 20);
    // All unknown opcodes in one program, each behind its own JUMPDEST,
    // selected by calldata, with 0, 5 and a full stack below.
    for spec in [SpecId::FRONTIER, SpecId::CANCUN, SpecId::OSAKA] {
        let mut code = h("6000 35 56");
        let mut entries = Vec::new();
        for &o in &unknown {
            entries.push(code.len() as u64);
            code.extend_from_slice(&[op::JUMPDEST, o, op::STOP]);
        }
        for (i, &e) in entries.iter().enumerate() {
            chk.gases(
                &format!("{:#x}", unknown[i]),
                &code,
                spec,
                &word(u(e)),
                &[0, 14, 15],
            );
        }
        // Standalone: first byte, last byte, after pushes, on a full stack.
        for &o in unknown.iter().step_by(3) {
            chk.gases("first", &[o], spec, &[], &[0]);
            chk.gases(
                "after pushes",
                &[0x60, 1, 0x60, 2, o, 0x01],
                spec,
                &[],
                &[3, 6],
            );
            let c = fill_then(1022, &[0x60, 0, 0x60, 0, o]);
            chk.gases("full stack", &c, spec, &[], &[]);
        }
    }
    chk.finish(300);
}

#[test]
fn not_yet_active_opcodes() {
    let chk = Checker::new("not yet active");
    // (opcode, last spec where it is not active)
    let cases: &[(u8, SpecId)] = &[
        (op::DELEGATECALL, SpecId::FRONTIER),
        (op::REVERT, SpecId::SPURIOUS_DRAGON),
        (op::RETURNDATASIZE, SpecId::SPURIOUS_DRAGON),
        (op::RETURNDATACOPY, SpecId::SPURIOUS_DRAGON),
        (op::STATICCALL, SpecId::SPURIOUS_DRAGON),
        (op::SHL, SpecId::BYZANTIUM),
        (op::SHR, SpecId::BYZANTIUM),
        (op::SAR, SpecId::BYZANTIUM),
        (op::CREATE2, SpecId::BYZANTIUM),
        (op::EXTCODEHASH, SpecId::BYZANTIUM),
        (op::CHAINID, SpecId::PETERSBURG),
        (op::SELFBALANCE, SpecId::PETERSBURG),
        (op::BASEFEE, SpecId::BERLIN),
        (op::PUSH0, SpecId::LONDON),
        (op::PUSH0, SpecId::MERGE),
        (op::TLOAD, SpecId::SHANGHAI),
        (op::TSTORE, SpecId::SHANGHAI),
        (op::MCOPY, SpecId::SHANGHAI),
        (op::BLOBHASH, SpecId::SHANGHAI),
        (op::BLOBBASEFEE, SpecId::SHANGHAI),
        (op::CLZ, SpecId::PRAGUE),
    ];
    for &(o, spec) in cases {
        let n = OpCode::new(o).unwrap().inputs() as usize;
        let name = format!("{} in {spec:?}", evmc_compiler::revm_api::opcode_name(o));
        // Empty stack, exactly enough operands, one more than enough.
        for have in [0, n, n + 1] {
            let mut c = pushes(have);
            c.push(o);
            c.extend_from_slice(&h("6001 00"));
            chk.gases(&name, &c, spec, &[], &[0]);
        }
        // Full stack (1024 items, or 1023), in the same block as the last
        // pushes and behind a JUMPDEST.
        for tail in [
            vec![0x60, 0, 0x60, 0, o],
            vec![0x60, 0, 0x60, 0, 0x5b, o],
            vec![0x60, 0, o],
        ] {
            let c = fill_then(1022, &tail);
            chk.gases(&name, &c, spec, &[], &[]);
        }
    }
    chk.finish(100);
}

// ---------------------------------------------------------------------------
// Resuming after CALL / CREATE (whole transactions)
// ---------------------------------------------------------------------------

/// The frame harness stops at the first CALL; here whole transactions run
/// (`run_tx`), so the compiled frame is resumed after each child returns:
/// return data, memory written by the child, success flags, a call inside a
/// loop (resuming into a block that is also a jump target), and a CREATE.
#[test]
fn resume_after_calls_tx() {
    // 0: CALL OTHER (returns 42; before Shanghai its PUSH0 halts it) with
    // 30000 gas, result to 0x40
    let mut code =
        h("6020 6040 6000 6000 6000 73aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 617530 f1");
    // RETURNDATACOPY all of it to 0x80; slot0 = success + mload(0x40)
    code.extend_from_slice(&h("3d 6000 6080 3e 6040 51 01 6000 55"));
    // loop twice: STATICCALL identity(0x40..0x60) -> 0xa0; the JUMPDEST
    // right after the call is where the frame resumes and where it loops to
    code.extend_from_slice(&h("6002"));
    let lp = code.len() as u8;
    code.extend_from_slice(&h("5b 6020 60a0 6020 6040 6004 5a fa 50"));
    code.extend_from_slice(&h("5b 6001 90 03 80 60"));
    code.push(lp);
    code.extend_from_slice(&h("57 50"));
    // CREATE: init code returns the one-byte code 0x42
    code.extend_from_slice(&h("69 6042 6000 53 6001 6000 f3 6000 52 600a 6016 6000 f0"));
    // slot1 = extcodesize(created), slot2 = created, slot3 = returndatasize
    code.extend_from_slice(&h("80 3b 6001 55 6002 55 3d 6003 55"));
    // DELEGATECALL OTHER: returns 42 in this frame's context
    code.extend_from_slice(&h(
        "6020 60c0 6000 6000 73aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 617530 f4 6004 55",
    ));
    code.extend_from_slice(&h("60e0 6000 f3"));
    let mut cases = 0;
    for spec in [
        SpecId::BYZANTIUM,
        SpecId::BERLIN,
        SpecId::CANCUN,
        SpecId::OSAKA,
    ] {
        let art = native(&code, spec);
        let mut gas_limits: Vec<u64> = (21_000..260_000).step_by(97).collect();
        gas_limits.push(1_000_000);
        for gas in gas_limits {
            let (want, frames0) = evmc_tests::run_tx(&code, &[1, 2, 3], gas, spec, &[]);
            let (got, frames) =
                evmc_tests::run_tx(&code, &[1, 2, 3], gas, spec, std::slice::from_ref(&art));
            assert_eq!(frames0, 0);
            assert_eq!(
                want,
                got,
                "spec {spec:?} gas limit {gas}: native differs\n code: {}",
                hex::encode(&code)
            );
            if gas == 1_000_000 {
                assert!(want.result.contains("Success"), "{}", want.result);
                // One run for the first part, one per resume (4 calls, 1 create).
                assert_eq!(frames, 6, "native frame runs");
            }
            cases += 1;
        }
    }
    eprintln!("resume after calls: {cases} differential cases (transactions)");
}

// ---------------------------------------------------------------------------
// Random programs
// ---------------------------------------------------------------------------

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Pure opcodes without CLZ (not active before Osaka).
const PURE: &[u8] = PURE_OPS.split_last().unwrap().1;

const ENV: &[u8] = &[
    op::ADDRESS,
    op::ORIGIN,
    op::CALLER,
    op::CALLVALUE,
    op::CALLDATASIZE,
    op::CODESIZE,
    op::GASPRICE,
    op::RETURNDATASIZE,
    op::COINBASE,
    op::TIMESTAMP,
    op::NUMBER,
    op::DIFFICULTY,
    op::GASLIMIT,
    op::CHAINID,
    op::SELFBALANCE,
    op::BASEFEE,
    op::PC,
    op::MSIZE,
    op::GAS,
];

/// Random code that is well formed and mostly keeps its stack discipline, so
/// that it runs long: the height is tracked, every JUMPDEST and every jump
/// sits at height `H0`, jumps go forward (JUMPI to patched JUMPDESTs, or
/// dynamic through calldata-independent constants) or backward a bounded
/// number of times (counter in memory), memory offsets are small.
fn random_program(seed: u64, size: usize, spec: SpecId) -> Vec<u8> {
    const H0: usize = 3;
    const MAX_H: usize = 24;
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut c: Vec<u8> = Vec::new();
    let mut hgt = 0usize;
    let mut jumpdests: Vec<usize> = Vec::new();
    // (position of a PUSH2 immediate, minimum target pc) to patch.
    let mut forward: Vec<(usize, usize)> = Vec::new();
    let mut loops = 0u16;
    let has_clz = spec.is_enabled_in(SpecId::OSAKA);
    let edge_vals = [
        u(0),
        u(1),
        u(31),
        u(32),
        u(255),
        u(256),
        u(u64::MAX),
        pow2(64),
        pow2(128),
        pow2(255),
        pow2(255) - u(1),
        U256::MAX,
    ];
    let normalize = |c: &mut Vec<u8>, hgt: &mut usize| {
        while *hgt > H0 {
            c.push(op::POP);
            *hgt -= 1;
        }
        while *hgt < H0 {
            c.extend_from_slice(&[op::PUSH1, 7]);
            *hgt += 1;
        }
    };
    while c.len() + 80 < size {
        let choice = r.below(100);
        match choice {
            // Push a value.
            0..=24 if hgt < MAX_H => {
                if r.chance(30) {
                    push(&mut c, r.pick(&edge_vals));
                } else {
                    let n = 1 + r.below(32) as usize;
                    c.push(op::PUSH1 + n as u8 - 1);
                    for _ in 0..n {
                        c.push(r.next() as u8);
                    }
                }
                hgt += 1;
            }
            // Pure arithmetic.
            25..=49 => {
                let o = if has_clz && r.chance(5) {
                    op::CLZ
                } else {
                    r.pick(PURE)
                };
                let info = OpCode::new(o).unwrap();
                if hgt >= info.inputs() as usize {
                    c.push(o);
                    hgt = hgt - info.inputs() as usize + 1;
                }
            }
            // DUP / SWAP / POP.
            50..=59 => {
                if (1..MAX_H).contains(&hgt) && r.chance(50) {
                    let n = 1 + r.below(hgt.min(16) as u64) as u8;
                    c.push(op::DUP1 + n - 1);
                    hgt += 1;
                } else if hgt >= 2 && r.chance(70) {
                    let n = 1 + r.below((hgt - 1).min(16) as u64) as u8;
                    c.push(op::SWAP1 + n - 1);
                } else if hgt >= 1 {
                    c.push(op::POP);
                    hgt -= 1;
                }
            }
            // Environment.
            60..=66 if hgt < MAX_H => {
                c.push(r.pick(ENV));
                hgt += 1;
            }
            // Memory: small offsets, values from the stack.
            67..=74 if hgt >= 1 => {
                let off = r.below(2048);
                match r.below(4) {
                    0 => {
                        push(&mut c, u(off));
                        c.push(op::MSTORE);
                        hgt -= 1;
                    }
                    1 => {
                        push(&mut c, u(off));
                        c.push(op::MSTORE8);
                        hgt -= 1;
                    }
                    2 => {
                        c.push(op::POP);
                        push(&mut c, u(off));
                        c.push(op::MLOAD);
                    }
                    _ => {
                        // KECCAK256 over a small range.
                        c.push(op::POP);
                        push(&mut c, u(r.below(100)));
                        push(&mut c, u(off));
                        c.push(op::KECCAK256);
                    }
                }
            }
            // Calldata / code copies and loads.
            75..=78 if hgt < MAX_H => match r.below(3) {
                0 => {
                    push(&mut c, u(r.below(80)));
                    c.push(op::CALLDATALOAD);
                    hgt += 1;
                }
                1 => {
                    push(&mut c, u(r.below(64)));
                    push(&mut c, u(r.below(100)));
                    push(&mut c, u(r.below(1024)));
                    c.push(op::CALLDATACOPY);
                }
                _ => {
                    push(&mut c, u(r.below(64)));
                    let off = r.below(c.len() as u64 + 10);
                    push(&mut c, u(off));
                    push(&mut c, u(r.below(1024)));
                    c.push(op::CODECOPY);
                }
            },
            // Storage (small keys), transient storage, logs.
            79..=82 if (1..MAX_H).contains(&hgt) => match r.below(4) {
                0 => {
                    push(&mut c, u(r.below(4)));
                    c.push(op::SSTORE);
                    hgt -= 1;
                }
                1 => {
                    push(&mut c, u(r.below(4)));
                    c.push(op::SLOAD);
                    hgt += 1;
                }
                2 if spec.is_enabled_in(SpecId::CANCUN) => {
                    push(&mut c, u(r.below(4)));
                    c.push(op::TSTORE);
                    hgt -= 1;
                }
                _ => {
                    let k = r.below(3) as usize;
                    if hgt >= k {
                        push(&mut c, u(r.below(40)));
                        push(&mut c, u(r.below(256)));
                        c.push(op::LOG0 + k as u8);
                        hgt -= k;
                    }
                }
            },
            // A JUMPDEST (block boundary).
            83..=87 => {
                normalize(&mut c, &mut hgt);
                jumpdests.push(c.len());
                c.push(op::JUMPDEST);
            }
            // A forward JUMPI on a data-dependent condition.
            88..=92 => {
                normalize(&mut c, &mut hgt);
                c.extend_from_slice(&[op::DUP1, op::PUSH1, 1, op::AND]);
                c.push(op::PUSH2);
                forward.push((c.len(), c.len() + 3 + r.below(300) as usize));
                c.extend_from_slice(&[0, 0, op::JUMPI]);
            }
            // A bounded backward jump (counter in memory word 0x1000 + 32 * k).
            93..=94 if loops < 16 && !jumpdests.is_empty() => {
                let back = *jumpdests.last().unwrap();
                if c.len() - back < 400 {
                    normalize(&mut c, &mut hgt);
                    let slot = 0x1000 + 32 * loops;
                    loops += 1;
                    // mem[slot] += 1; jump back while mem[slot] < 3
                    c.push(op::PUSH2);
                    c.extend_from_slice(&slot.to_be_bytes());
                    c.extend_from_slice(&[op::MLOAD, op::PUSH1, 1, op::ADD, op::DUP1, op::PUSH2]);
                    c.extend_from_slice(&slot.to_be_bytes());
                    c.extend_from_slice(&[op::MSTORE, op::PUSH1, 3, op::GT, op::PUSH2]);
                    c.extend_from_slice(&(back as u16).to_be_bytes());
                    c.push(op::JUMPI);
                }
            }
            // A dynamic jump: the target is computed, not a plain constant.
            95..=96 => {
                normalize(&mut c, &mut hgt);
                let dest = c.len() + 10;
                // PUSH2 dest-1, PUSH1 1, ADD, JUMP, <3 junk bytes>, JUMPDEST
                c.push(op::PUSH2);
                c.extend_from_slice(&((dest - 1) as u16).to_be_bytes());
                c.extend_from_slice(&[op::PUSH1, 1, op::ADD, op::JUMP, 0xfe, 0x60]);
                c.push(op::JUMPDEST); // PUSH data: not a destination
                jumpdests.push(c.len());
                c.push(op::JUMPDEST);
                assert_eq!(c.len() - 1, dest);
            }
            _ => {}
        }
    }
    // End: a JUMPDEST every forward jump can land on, then return memory.
    normalize(&mut c, &mut hgt);
    let end = c.len();
    c.push(op::JUMPDEST);
    c.extend_from_slice(&h("6040 6000 f3"));
    for (at, min) in forward {
        let target = jumpdests.iter().copied().find(|&d| d >= min).unwrap_or(end);
        c[at..at + 2].copy_from_slice(&(target as u16).to_be_bytes());
    }
    c
}

fn random_inputs(r: &mut Rng) -> Vec<Vec<u8>> {
    vec![
        vec![],
        (0..64).map(|_| r.next() as u8).collect(),
        vec![0xff; 100],
    ]
}

/// 24 KiB of random well-formed code must compile and behave exactly like
/// the interpreter, at any gas limit.
#[test]
fn random_code_24k() {
    let chk = Checker::new("random 24 KiB");
    let spec = SpecId::CANCUN;
    let code = random_program(1, 24 * 1024, spec);
    assert!(
        code.len() <= 24 * 1024 && code.len() > 23 * 1024,
        "{}",
        code.len()
    );
    let mut r = Rng(99);
    for input in random_inputs(&mut r) {
        let used = chk.gases("24k", &code, spec, &input, &[0, 100, 1000]);
        assert!(
            used > 10_000,
            "the random program ends too early ({used} gas)"
        );
        for _ in 0..20 {
            let g = r.below(used + 1);
            chk.run("24k", &code, spec, &input, g);
        }
    }
    chk.finish(50);
}

/// Many smaller random programs over several specs.
#[test]
fn random_code_small() {
    let chk = Checker::new("random small programs");
    let mut r = Rng(7);
    for seed in 0..24u64 {
        let spec = [SpecId::LONDON, SpecId::CANCUN, SpecId::OSAKA][seed as usize % 3];
        let code = random_program(1000 + seed, 1500, spec);
        for input in random_inputs(&mut r) {
            let used = chk.gases("small", &code, spec, &input, &[]);
            for _ in 0..10 {
                let g = r.below(used + 1);
                chk.run("small", &code, spec, &input, g);
            }
        }
    }
    chk.finish(500);
}

/// Entirely random bytes: anything may happen, the same thing on both sides.
#[test]
fn random_bytes() {
    let chk = Checker::new("random bytes");
    let mut r = Rng(12345);
    for i in 0..40u64 {
        let len = 1 + r.below(600) as usize;
        let mut code: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        // Make some of them jumpier: sprinkle JUMPDESTs and small pushes.
        if i % 2 == 0 {
            for b in code.iter_mut() {
                if r.chance(8) {
                    *b = op::JUMPDEST;
                } else if r.chance(10) {
                    *b = op::PUSH1;
                }
            }
        }
        let spec = SPECS_SMALL[i as usize % SPECS_SMALL.len()];
        for input in random_inputs(&mut r) {
            chk.gases("bytes", &code, spec, &input, &[0, 10, 30]);
        }
    }
    chk.finish(300);
}

// ---------------------------------------------------------------------------
// KECCAK256 (its own builtin)
// ---------------------------------------------------------------------------

/// KECCAK256 around the sponge's 136-byte rate, at unaligned offsets, with
/// words live below it, then the halts in the interpreter's order of checks
/// (length operand, per-word gas, offset operand only for a non-empty
/// range, memory expansion), each at the exact gas used and one below.
#[test]
fn keccak256_builtin() {
    let chk = Checker::new("keccak256 builtin");
    // Memory 0..300 from the call data, three words that must survive.
    let mut head = h("61012c 6000 6000 37");
    for v in [u(7), U256::MAX, pow2(200) + u(3)] {
        push(&mut head, v);
    }
    let input: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
    for &spec in SPECS_SMALL {
        let mut code = head.clone();
        for off in [0u64, 1, 31, 100] {
            for len in [0u64, 1, 31, 32, 33, 64, 135, 136, 137, 200] {
                push(&mut code, u(len));
                push(&mut code, u(off));
                code.push(op::KECCAK256);
                // Used right away and kept: XOR with the word below.
                code.extend_from_slice(&[op::DUP2, op::XOR]);
            }
        }
        chk.gases("hashes", &code, spec, &input, &[5000, 10_000]);
        for (off, len) in [
            (U256::MAX, u(0)),
            (u(0), pow2(64)),
            (u(0), U256::MAX),
            (pow2(64), u(1)),
            (u(u64::MAX), u(1)),
            (u(0), u(1 << 32)),
            (u(1 << 20), u(1 << 10)),
        ] {
            let mut c = head.clone();
            push(&mut c, len);
            push(&mut c, off);
            c.push(op::KECCAK256);
            chk.gases("halts", &c, spec, &input, &[1000, 100_000]);
        }
    }
    chk.finish(100);
}

/// SHL, SHR and SAR by amounts known only at run time (compiled on 64-bit
/// limbs: whole limbs moved by bits 7 and 6 of the amount, then funnel
/// shifts), every amount from 0 to 300 and a few far above, against the
/// interpreter, the result returned.
#[test]
fn shifts_by_run_time_amounts_match_the_interpreter() {
    let word = |v: U256| v.to_be_bytes::<32>().to_vec();
    let pattern = U256::from_be_bytes(std::array::from_fn::<u8, 32, _>(|i| 0x81 ^ (i as u8 * 7)));
    let values = [
        pattern,
        !pattern,
        U256::MAX,
        U256::from(1u8),
        U256::from(1u8) << 255,
        (U256::from(1u8) << 255) - U256::from(1u8),
        U256::from(u64::MAX) << 64,
    ];
    let amounts = (0..=300u64).map(U256::from).chain([
        U256::from(1u64) << 64,
        U256::MAX,
        U256::from(256u64 + 64),
    ]);
    for opcode in [op::SHL, op::SHR, op::SAR] {
        // PUSH1 0x20 CALLDATALOAD (the value) PUSH0 CALLDATALOAD (the
        // amount) OP PUSH0 MSTORE PUSH1 0x20 PUSH0 RETURN.
        let code = [
            0x60, 0x20, 0x35, 0x5f, 0x35, opcode, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3,
        ];
        for s in amounts.clone() {
            for v in &values {
                let input = [word(s), word(*v)].concat();
                let out = assert_frame_eq(&code, &input, 100_000, SpecId::CANCUN);
                assert!(out.action.contains("Return"), "{opcode:#x}: {}", out.action);
            }
        }
    }
}

/// DIV, SDIV, MOD, SMOD, ADDMOD and MULMOD in a block entered by a
/// computed jump, which takes its operands from the stack in memory (and
/// hands them to the builtin a limb at a time), and the four divisions by
/// constants, against the interpreter, around the edges of the inline
/// 64-bit division.
#[test]
fn arithmetic_on_words_entered_from_memory_matches_the_interpreter() {
    let word = |v: U256| v.to_be_bytes::<32>().to_vec();
    let values = [
        U256::ZERO,
        U256::from(1u8),
        U256::from(1_000_000u64),
        U256::from(u64::MAX),
        U256::from(1u8) << 127,
        (U256::from(1u8) << 90) + U256::from(12_345u64),
        U256::MAX,
        U256::MAX - U256::from(999_999u64),
        U256::from(1u8) << 255,
        // i64::MAX, 2^63, i64::MIN and -1_000_000 as 256-bit words: the
        // edges of the inline 64-bit division.
        (U256::from(1u8) << 63) - U256::from(1u8),
        U256::from(1u8) << 63,
        (U256::from(1u8) << 63usize).wrapping_neg(),
        U256::from(1_000_000u64).wrapping_neg(),
    ];
    for (opcode, n) in [
        (0x04u8, 2usize),
        (0x05, 2),
        (0x06, 2),
        (0x07, 2),
        (0x08, 3),
        (0x09, 3),
    ] {
        // Operands from calldata words n-1 .. 0 (word 0 on top), the
        // target from word n; then JUMPDEST, the opcode, return its result.
        let mut code = Vec::new();
        for w in (0..=n).rev().skip(1).chain([n]) {
            code.extend_from_slice(&[0x60, 32 * w as u8, 0x35]);
        }
        code.push(0x56);
        let dest = code.len();
        code.extend_from_slice(&[0x5b, opcode, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]);
        for (i, a) in values.iter().enumerate() {
            for b in &values {
                let c = values[(i * 7 + 3) % values.len()];
                let mut input: Vec<u8> = [*a, *b, c][..n].iter().flat_map(|v| word(*v)).collect();
                input.extend(word(U256::from(dest)));
                let out = assert_frame_eq(&code, &input, 100_000, SpecId::CANCUN);
                assert!(out.action.contains("Return"), "{opcode:#x}: {}", out.action);
            }
        }
    }
    // MULMOD of a DUP'd word by itself (the squaring builtin), the factor
    // from calldata word 0 and the modulus from word 1, both in registers
    // and, past a computed jump (target in word 2), both from memory:
    // PUSH1 0x20 CALLDATALOAD PUSH0 CALLDATALOAD [PUSH1 0x40 CALLDATALOAD
    // JUMP JUMPDEST] DUP1 MULMOD, return its result.
    let moduli = [
        U256::ZERO,
        U256::from(1u8),
        U256::from(7u8),
        U256::from(1u8) << 64,
        U256::from(u64::MAX),
        U256::from_str_radix(
            "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47",
            16,
        )
        .unwrap(),
        U256::MAX,
        U256::MAX - U256::from(999_999u64),
        U256::from(1u8) << 255,
    ];
    let tail = [0x80u8, 0x09, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3];
    let direct: Vec<u8> = [&[0x60u8, 0x20, 0x35, 0x5f, 0x35][..], &tail].concat();
    let jumped: Vec<u8> = [
        &[0x60u8, 0x20, 0x35, 0x5f, 0x35, 0x60, 0x40, 0x35, 0x56, 0x5b][..],
        &tail,
    ]
    .concat();
    for x in &values {
        for n in &moduli {
            let input: Vec<u8> = [word(*x), word(*n), word(U256::from(9u8))].concat();
            for code in [&direct, &jumped] {
                let out = assert_frame_eq(code, &input, 100_000, SpecId::CANCUN);
                assert!(out.action.contains("Return"), "square: {}", out.action);
            }
        }
    }
    // The four divisions by a constant (LLVM divides the inline 64-bit
    // case by multiplying): PUSH32 divisor, PUSH0 CALLDATALOAD, the
    // opcode, return its result.
    for opcode in [0x04u8, 0x05, 0x06, 0x07] {
        for d in &values {
            let mut code = vec![0x7f];
            code.extend(word(*d));
            code.extend_from_slice(&[0x5f, 0x35, opcode, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]);
            for a in &values {
                let out = assert_frame_eq(&code, &word(*a), 100_000, SpecId::CANCUN);
                assert!(out.action.contains("Return"), "{opcode:#x}: {}", out.action);
            }
        }
    }
}

/// Internal functions copied on the paths that call them
/// (`analysis::clones`): their returns become static jumps and their
/// stacks flow as values. Each program against the interpreter with
/// several inputs and with every gas limit up to what it uses, so that
/// every instruction of every copy runs out of gas once.
#[test]
fn copied_call_paths_match_the_interpreter() {
    let word = |v: U256| v.to_be_bytes::<32>().to_vec();
    // Name, code, inputs, and whether a call is copied (the loop's
    // function is longer than a copied path may be: it stays shared).
    let programs: [(&str, &str, Vec<Vec<u8>>, bool); 3] = [
        (
            // F(x) = x + 1, called twice, the second call on the first's
            // result: PUSH1 r1 PUSH0 CALLDATALOAD PUSH1 F JUMP; r1:
            // JUMPDEST PUSH1 r2 SWAP1 PUSH1 F JUMP; r2: JUMPDEST PUSH0
            // MSTORE PUSH1 32 PUSH0 RETURN; F: JUMPDEST PUSH1 1 ADD SWAP1
            // JUMP.
            "two calls",
            "60075f356015565b600e906015565b5f5260205ff35b6001019056",
            vec![word(U256::ZERO), word(U256::MAX), word(U256::from(41u8))],
            true,
        ),
        (
            // F(off) = MLOAD(off), called with offsets 0 and 0x40, each
            // holding a word of the call data: one pc, two offsets.
            "loads at two offsets",
            "5f355f5260203560405260105f6024565b601860406024565b60805260605260406060f35b519056",
            vec![
                [word(U256::from(7u8)), word(U256::from(9u8))].concat(),
                [word(U256::MAX), word(U256::ZERO)].concat(),
            ],
            true,
        ),
        (
            // F(n) = 1 + ... + n by a loop inside the callee, reverting
            // past 1,000: called with two words of the call data, the
            // sums added and returned.
            "a loop and a revert in the callee",
            "60075f356018565b60106020356018565b015f5260205ff35b5f905b8015602c578091019060019003601b565b50806103e81060385790565b5f80fd",
            vec![
                [word(U256::ZERO), word(U256::from(1u8))].concat(),
                [word(U256::from(5u8)), word(U256::from(44u8))].concat(),
                [word(U256::from(45u8)), word(U256::from(3u8))].concat(),
                [word(U256::from(2u8)), word(U256::from(1u8) << 255)].concat(),
            ],
            false,
        ),
    ];
    for (what, hex_code, inputs, copied) in programs {
        let code = hex::decode(hex_code).unwrap();
        let analysis = evmc_compiler::analysis::Analysis::new(&code);
        assert_eq!(
            analysis
                .blocks
                .iter()
                .any(|b| b.reachable && b.clone_of.is_some()),
            copied,
            "{what}\n{analysis}"
        );
        for input in &inputs {
            let full = assert_frame_eq(&code, input, 1_000_000, SpecId::CANCUN);
            // The endless loop's input runs out of gas: its first 3,000.
            let used = (1_000_000 - full.gas_remaining).min(3_000);
            for gas in 0..=used + 1 {
                assert_frame_eq(&code, input, gas, SpecId::CANCUN);
            }
        }
    }
}
