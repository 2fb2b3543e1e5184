//! Out of gas at every instruction boundary: small programs run with every
//! gas limit from 0 up to what they need (and a few above), interpreted and
//! native, compared on everything observable. A native run that is short of
//! gas hands the frame to the interpreter at the start of the segment that
//! cannot be paid for (or at the memory access that cannot grow); these
//! sweeps make every such hand-over happen.

use evmc_compiler::SpecId;
use evmc_tests::diff::{h, BIG_GAS};
use evmc_tests::evmc_runtime::LoadedArtifact;
use evmc_tests::{memory_runs_in, native, run_frame_with};
use std::sync::Arc;

/// Generous limit used to measure what a program needs.
/// Limits tried above the measured need.
const ABOVE: u64 = 5;

struct Sweep {
    name: &'static str,
    code: Vec<u8>,
    art: Arc<LoadedArtifact>,
    spec: SpecId,
}

impl Sweep {
    fn new(name: &'static str, code: Vec<u8>, spec: SpecId) -> Self {
        let art = native(&code, spec);
        Self {
            name,
            code,
            art,
            spec,
        }
    }

    /// Runs every gas limit in `0..=need + ABOVE`; returns the number of
    /// cases. Panics with the first few mismatches. Programs that pass all
    /// their gas on (CALL with GAS, CREATE) "need" everything: they are
    /// swept up to `MAX_SWEEP`.
    fn run(&self, input: &[u8]) -> usize {
        const MAX_SWEEP: u64 = 40_000;
        let want = run_frame_with(&self.code, input, BIG_GAS, self.spec, None);
        let mut need = BIG_GAS - want.gas_remaining;
        if need > BIG_GAS / 2 {
            need = MAX_SWEEP;
        }
        let mut failures = Vec::new();
        let mut n = 0;
        for gas in (0..=need + ABOVE).chain([BIG_GAS]) {
            let want = run_frame_with(&self.code, input, gas, self.spec, None);
            let got = run_frame_with(&self.code, input, gas, self.spec, Some(&self.art));
            n += 1;
            if want != got {
                if failures.len() < 5 {
                    failures.push(format!(
                        "gas {gas}\n interpreter: {want:?}\n native:      {got:?}"
                    ));
                } else {
                    failures.push(String::new());
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} ({:?}): {} of {n} gas limits differ\n code: {}\n input: {}\n{}",
            self.name,
            self.spec,
            failures.len(),
            hex::encode(&self.code),
            hex::encode(input),
            failures
                .iter()
                .filter(|f| !f.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        n
    }
}

fn sweep_all(test: &str, programs: &[(&'static str, Vec<u8>)], specs: &[SpecId], input: &[u8]) {
    let mut total = 0;
    for &spec in specs {
        for (name, code) in programs {
            total += Sweep::new(name, code.clone(), spec).run(input);
        }
    }
    eprintln!("{test}: {total} differential cases");
    assert!(total > 100, "{test}: only {total} cases");
}

fn input() -> Vec<u8> {
    let mut v: Vec<u8> = (1..=64).collect();
    v.extend_from_slice(&[0xff; 7]);
    v
}

/// Arithmetic, GAS/MSIZE/PC reads and memory growth in steps.
fn arith_memory() -> Vec<u8> {
    h("
    6001 6002 01 6003 02 6007 04 6005 06          // ((1+2)*3/7) % 5, ...
    80 6000 52                                     // MSTORE at 0: memory 32
    6040 51 50                                     // MLOAD 0x40: memory 96
    80 610100 53                                   // MSTORE8 at 0x100: memory 288
    5a 59 01 58 01 50                              // GAS + MSIZE + PC
    6020 51 610400 52                              // MLOAD 0x20, MSTORE 0x400: 1056
    61ffff 6002 0a 50                              // EXP 2^0xffff: two-byte exponent
    6000 35 6001 1a 6000 35 600b 0b 50 50          // BYTE, SIGNEXTEND of calldata
    6040 6000 610500 37                            // CALLDATACOPY 64 bytes to 0x500
    6020 6010 610600 39                            // CODECOPY 32 bytes to 0x600
    6000 51 610700 51 01 610800 52                 // more growth, 0x820
    59 5a 03 50                                    // MSIZE - GAS
    6020 6000 20 50                                // KECCAK256
    6020 610800 f3                                 // RETURN 32 bytes
    ")
}

/// The same shape with memory accesses right after each other (growth by
/// one MSTORE each step), then inline accesses that no longer grow.
fn memory_steps() -> Vec<u8> {
    let mut c = Vec::new();
    for i in 0..12u16 {
        let off = i * 100;
        c.extend_from_slice(&[0x5a, 0x61]); // GAS PUSH2 off
        c.extend_from_slice(&off.to_be_bytes());
        c.push(0x52); // MSTORE
    }
    for i in 0..6u16 {
        c.extend_from_slice(&[0x61]);
        c.extend_from_slice(&(i * 150).to_be_bytes());
        c.extend_from_slice(&[0x51, 0x50]); // MLOAD POP
    }
    c.extend_from_slice(&h("59 6000 53 00")); // MSTORE8 of MSIZE
    c
}

/// Accesses inside the memory the first block grew (`PUSH1 0x80 PUSH1
/// 0x40 MSTORE`, as Solidity's code starts), which compiled code makes
/// without a bounds check and within one gas segment, between GAS readings
/// and accesses that grow memory (the first past 0x60), then the memory
/// returned.
fn covered_memory() -> Vec<u8> {
    h(concat!(
        "6080604052600956", // PUSH1 0x80 PUSH1 0x40 MSTORE PUSH1 9 JUMP
        "00",               // STOP
        "5b",               // 9: JUMPDEST
        "604051",           // MLOAD 0x40
        "5a600052",         // MSTORE 0x00 <- GAS
        "5a603f53",         // MSTORE8 0x3f <- GAS
        "60205101",         // MLOAD 0x20, ADD
        "602052",           // MSTORE 0x20 <- the sum
        "59604152",         // MSTORE 0x41 <- MSIZE: grows to 0x80
        "5a600052",         // MSTORE 0x00 <- GAS
        "6040515a01604052", // MSTORE 0x40 <- MLOAD 0x40 + GAS
        "60806000f3",       // RETURN 0..0x80
    ))
}

/// `word_steps` grows memory in generated code only if the runtime makes
/// room by then: a check that passes with every growth in the runtime
/// would check nothing new.
const _: () = assert!(
    evmc_tests::evmc_runtime::ROOM_AFTER_GROWS <= 8,
    "word_steps: every growth before its KECCAK256 would go through the runtime"
);

/// Memory grown a word or two at a time, as compiled code does without
/// the runtime once it has room: aligned and unaligned MSTORE/MLOAD/MSTORE8,
/// MSIZE and GAS between them, a KECCAK256 and a CALLDATACOPY over what
/// was grown (runtime calls that must see it), more growth after them, and
/// the whole memory returned (every new word must read as zero).
fn word_steps() -> Vec<u8> {
    // The first eight growths go through the runtime, which then makes
    // room; the other fifteen happen in generated code, two of them (the
    // ninth and tenth) before the KECCAK256 (checked at compile time above).
    let mut c = h("6001 6000 52"); // MSTORE at 0
    for i in 1..30u16 {
        let off = i * 32 + [0, 7, 31, 1][i as usize % 4];
        c.extend_from_slice(&[0x5a, 0x61]); // GAS PUSH2 off
        c.extend_from_slice(&off.to_be_bytes());
        c.push([0x52, 0x52, 0x53][i as usize % 3]); // MSTORE / MSTORE8
        if i % 5 == 0 {
            c.extend_from_slice(&h("59 80 51 01 50")); // MLOAD at MSIZE: +1 word
        }
        if i == 12 {
            c.extend_from_slice(&h("59 6000 20 50")); // KECCAK256 of all of it
        }
        if i == 20 {
            c.extend_from_slice(&h("6010 6000 59 37")); // CALLDATACOPY at MSIZE
        }
    }
    c.extend_from_slice(&h("59 6000 f3")); // RETURN all of memory
    c
}

/// Runs of accesses at computed offsets, which compiled code pays for
/// with one check each (`codegen::memory_run`): from a base read from the
/// call data (0x40), MSTORE, MSTORE8 and MLOAD growing memory; an offset
/// loaded by an MLOAD of the run (which ends the run before its access).
/// The same accesses again, inside memory by then, and the whole memory
/// returned.
fn memory_runs() -> Vec<u8> {
    let accesses = "
    80 80 52                       // MSTORE(b, b)
    6077 81 6045 01 53             // MSTORE8(b + 0x45, 0x77)
    80 6020 01 51 50               // MLOAD(b + 0x20), popped
    80 51                          // v = MLOAD(b)
    80 6020 01 52                  // MSTORE(v + 0x20, v): v was loaded in the run
    80 610100 01 80 52             // MSTORE(b + 0x100, b + 0x100)
    80 6003 01 80 51 90 52         // MSTORE(b + 3, MLOAD(b + 3)): unaligned
    5b                             // JUMPDEST: a block of its own
    ";
    h(&format!(
        "6000 35 6000 1a 6040 02 {accesses} {accesses} 59 6000 f3" // b = 0x40 .. RETURN
    ))
}

/// A loop whose body is one run growing memory by two words each time:
/// the first growths in the runtime, the later ones in the room it makes
/// (`ROOM_AFTER_GROWS`); then the whole memory returned (every word
/// grown must read as written or zero).
fn memory_run_loop() -> Vec<u8> {
    h("
    6000 35 6000 1a 6040 02        // b = 0x40
    6000                           // i = 0
    5b                             // 0x0b: loop
    80 6040 02 82 01               // off = i * 0x40 + b
    80 80 52                       // MSTORE(off, off)
    81 81 6021 01 53               // MSTORE8(off + 0x21, i)
    80 80 6030 01 52               // MSTORE(off + 0x30, off)
    50 6001 01                     // i += 1
    80 6014 11 600b 57             // while i < 20
    50 50 59 6000 f3               // RETURN all of memory
    ")
}

/// A run whose last offset is 2^32 or more (`big` = 0x0100000000) or 2^64
/// or more (`big` = 0x010000000000000000): the interpreter halts there, in
/// the memory growth or on the operand.
fn memory_run_huge(big: &str) -> Vec<u8> {
    h(&format!(
        "6000 35 6000 1a 6040 02 80 80 52 80 6020 01 80 52 6001 81 {big} 02 52 00"
    ))
}

/// An offset that is the sum of a word an earlier access narrowed (`b`,
/// 0x40) and a constant below 2^64 `k`, whose limbs compiled code takes in
/// 64-bit arithmetic (`codegen::ops`, `limbs_of`): with `k` =
/// 0xffffffffffffffe0 the sum is 2^64 + 0x20, its low limb small and only
/// the carry saying it is not; with 0xffffffffffffff00 it is below 2^64
/// but not 2^32. In a run with the access before it, or `alone` after a
/// GAS that ends the segment (then every access is a single one).
fn memory_offset_sum(k: &str, alone: bool) -> Vec<u8> {
    let gas = if alone { "5a 50" } else { "" };
    h(&format!(
        "6000 35 6000 1a 6040 02 80 80 52 80 6020 01 80 52 {gas} 6001 81 67 {k} 01 52 00"
    ))
}

/// A counted loop with a JUMPI back edge, memory writes in the body.
fn counted_loop() -> Vec<u8> {
    // PUSH1 6; loop(2): JUMPDEST DUP1 DUP1 PUSH1 32 MUL MSTORE
    //   PUSH1 1 SWAP1 SUB DUP1 PUSH1 2 JUMPI; POP MSIZE PUSH1 0 MSTORE STOP
    h("6006 5b 80 80 6020 02 52 6001 90 03 80 6002 57 50 59 6000 52 00")
}

/// A loop through a dynamic jump (target from calldata arithmetic).
fn dynamic_loop() -> Vec<u8> {
    // counter in memory slot 0x80; the back edge target comes from
    // (calldata byte 0 == 1) * 5 = 5, a JUMPDEST.
    // 0: PUSH1 4 PUSH1 0x80 MSTORE        (0..4)
    // 5: JUMPDEST PUSH1 0x80 MLOAD PUSH1 1 SWAP1 SUB DUP1 PUSH1 0x80 MSTORE
    //    ISZERO PUSH1 end JUMPI PUSH1 0 CALLDATALOAD PUSH1 0 BYTE PUSH1 5 MUL JUMP
    //    end: JUMPDEST STOP
    let mut c =
        h("6004 6080 52 5b 6080 51 6001 90 03 80 6080 52 15 60ff 57 6000 35 6000 1a 6005 02 56");
    let end = c.len() as u8;
    let at = c.iter().position(|&b| b == 0xff).unwrap();
    c[at] = end;
    c.extend_from_slice(&h("5b 00"));
    c
}

/// SLOAD / SSTORE: cold and warm reads, a fresh slot, a reset (refund), a
/// no-op write, and writes back to the original value.
fn storage() -> Vec<u8> {
    h("
    6000 54 6001 54 01 6002 55     // slot2 = slot0 + slot1 (fresh)
    6000 6000 55                   // slot0: 5 -> 0 (refund)
    6009 6001 55 6007 6001 55      // slot1: 7 -> 9 -> 7
    6001 54 6001 55                // slot1: no-op write
    6002 54 6000 55                // slot0 = slot2
    6000 6002 55                   // slot2 -> 0
    00
    ")
}

/// SSTORE right around the 2300 stipend (EIP-2200): the sweep makes the
/// remaining gas at the SSTORE pass through 2300.
fn sstore_only() -> Vec<u8> {
    h("6008 6001 55 00")
}

fn transient() -> Vec<u8> {
    h("6005 6000 5d 6000 5c 6001 5d 6001 5c 6000 5c 01 6002 52 00")
}

fn keccak() -> Vec<u8> {
    h("
    6000 35 6000 52 6020 35 6020 52
    6040 6000 20                   // over 64 bytes
    6000 52
    60c8 6064 20                   // 200 bytes at 100: grows memory
    6020 52
    6000 6000 20                   // empty
    6020 6000 f3
    ")
}

fn logs() -> Vec<u8> {
    h("
    6000 35 6000 52
    6020 6000 a0                   // LOG0 32 bytes
    6001 6002 6040 6040 a2         // LOG2 64 bytes at 0x40: grows
    6001 6002 6003 6004 6000 6000 a4 // LOG4 empty
    6005 6006 6007 6020 6100c0 a3  // LOG3 32 bytes at 0xc0
    00
    ")
}

/// One EVM block of ~1000 instructions: the compiler cuts it into several
/// LLVM blocks (stack passed through memory), with memory growth all along.
fn long_block() -> Vec<u8> {
    let mut src = String::from("6000 35 ");
    for i in 0..200u32 {
        src.push_str(&format!("80 61{:04x} 52 600a 01 ", i * 32));
    }
    src.push_str("00");
    h(&src)
}

/// CALL family and CREATE: the frame suspends; the action (with the gas the
/// child gets under the 63/64 rule) is compared.
fn call(kind: u8) -> Vec<u8> {
    let other = "73aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let args = "6020 6040 6020 6000"; // retSize retOffset argsSize argsOffset (pushed in reverse)
    let pre = "6000 35 6000 52 ";
    match kind {
        // CALL gas=3000 to OTHER with value 1 (stipend), and with value 0
        0xf1 => h(&format!("{pre} {args} 6001 {other} 610bb8 f1 00")),
        0xf2 => h(&format!("{pre} {args} 6000 {other} 610bb8 f2 00")),
        0xf4 => h(&format!("{pre} {args} {other} 610bb8 f4 00")),
        0xfa => h(&format!("{pre} {args} {other} 610bb8 fa 00")),
        // all remaining gas: 63/64 of what is left after the cost
        0xff => h(&format!("{pre} {args} 6000 {other} 5a f1 00")),
        // CREATE / CREATE2 of a 32-byte init code
        0xf0 => h(&format!("{pre} 6020 6000 6000 f0 00")),
        0xf5 => h(&format!("{pre} 6007 6020 6000 6000 f5 00")),
        _ => unreachable!(),
    }
}

const SPECS: &[SpecId] = &[
    SpecId::FRONTIER,
    SpecId::TANGERINE,
    SpecId::ISTANBUL,
    SpecId::BERLIN,
    SpecId::LONDON,
    SpecId::CANCUN,
    SpecId::OSAKA,
];

#[test]
fn oog_arith_and_memory() {
    let programs = [
        ("arith+memory", arith_memory()),
        ("memory steps", memory_steps()),
        ("long block", long_block()),
        ("word steps", word_steps()),
        ("covered memory", covered_memory()),
        ("memory runs", memory_runs()),
        ("memory run loop", memory_run_loop()),
        ("memory run, 2^32", memory_run_huge("64 0100000000")),
        ("memory run, 2^64", memory_run_huge("68 010000000000000000")),
        (
            "offset sum past 2^64",
            memory_offset_sum("ffffffffffffffe0", false),
        ),
        (
            "offset sum past 2^64, alone",
            memory_offset_sum("ffffffffffffffe0", true),
        ),
        (
            "offset sum past 2^32",
            memory_offset_sum("ffffffffffffff00", false),
        ),
    ];
    // Not a sweep of checked accesses only: eight of the covered program's
    // are compiled without a check.
    let a = evmc_compiler::analysis::Analysis::new(&covered_memory());
    assert_eq!((a.memory_floor, a.covered_accesses.len()), (0x60, 8));
    // Nor of single accesses: the run programs are paid for by runs.
    assert_eq!(memory_runs_in(&memory_runs(), SpecId::CANCUN), 3);
    assert_eq!(memory_runs_in(&memory_run_loop(), SpecId::CANCUN), 1);
    assert_eq!(
        memory_runs_in(&memory_run_huge("64 0100000000"), SpecId::CANCUN),
        1
    );
    // The sum's access is the second of a run, or a single access (the
    // GAS leaves one access on each side); its limbs come from a 64-bit
    // add with carry either way.
    for alone in [false, true] {
        let code = memory_offset_sum("ffffffffffffffe0", alone);
        assert_eq!(memory_runs_in(&code, SpecId::CANCUN), usize::from(!alone));
        let ir = evmc_tests::ir_of(&code, SpecId::CANCUN);
        assert!(ir.contains("@llvm.uadd.with.overflow.i64(i64 %off, i64 -32)"));
    }
    sweep_all("oog arith+memory", &programs, SPECS, &input());
}

#[test]
fn oog_loops() {
    let programs = [
        ("counted loop", counted_loop()),
        ("dynamic loop", dynamic_loop()),
    ];
    sweep_all("oog loops", &programs, SPECS, &input());
}

#[test]
fn oog_storage() {
    let programs = [("storage", storage()), ("sstore", sstore_only())];
    sweep_all(
        "oog storage",
        &programs,
        &[
            SpecId::FRONTIER,
            SpecId::PETERSBURG,
            SpecId::ISTANBUL,
            SpecId::BERLIN,
            SpecId::LONDON,
            SpecId::CANCUN,
        ],
        &input(),
    );
    sweep_all(
        "oog transient storage",
        &[("transient", transient())],
        &[SpecId::CANCUN, SpecId::OSAKA],
        &input(),
    );
}

#[test]
fn oog_keccak_and_logs() {
    let programs = [("keccak", keccak()), ("logs", logs())];
    sweep_all("oog keccak+logs", &programs, SPECS, &input());
}

#[test]
fn oog_calls() {
    let mut programs = vec![
        ("call", call(0xf1)),
        ("callcode", call(0xf2)),
        ("call all gas", call(0xff)),
        ("create", call(0xf0)),
    ];
    sweep_all(
        "oog calls (frontier)",
        &programs,
        &[SpecId::FRONTIER],
        &input(),
    );
    programs.extend([
        ("delegatecall", call(0xf4)),
        ("staticcall", call(0xfa)),
        ("create2", call(0xf5)),
    ]);
    sweep_all(
        "oog calls",
        &programs,
        &[
            SpecId::TANGERINE,
            SpecId::BERLIN,
            SpecId::CANCUN,
            SpecId::OSAKA,
        ],
        &input(),
    );
}
