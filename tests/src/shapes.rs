//! Generators of bytecode shapes that stress the compiler rather than the
//! EVM: each fills a given size with one pattern repeated (JUMPDEST-dense,
//! PUSH-dense, one huge block, thousands of tiny blocks, dense dynamic
//! jumps, deeply nested internal calls, deep DUP/SWAP chains, long
//! straight-line arithmetic, 256-bit arithmetic on unknown operands, memory
//! traffic). Compile time must grow linearly with the size of each, and
//! each runs to a clean end on any calldata, so that compiled and
//! interpreted runs can be compared.

/// A named generator: bytecode of at most the given size.
pub type Shape = (&'static str, fn(usize) -> Vec<u8>);

/// Every shape, by name.
pub const SHAPES: &[Shape] = &[
    ("jumpdests", jumpdests),
    ("pushed_jumpdests", pushed_jumpdests),
    ("push32_dense", push32_dense),
    ("one_huge_block", one_huge_block),
    ("tiny_blocks", tiny_blocks),
    ("static_jump_chain", static_jump_chain),
    ("dynamic_jump_table", dynamic_jump_table),
    ("nested_calls", nested_calls),
    ("computed_jumps", computed_jumps),
    ("dup_swap_chains", dup_swap_chains),
    ("straight_arithmetic", straight_arithmetic),
    ("wide_arithmetic", wide_arithmetic),
    ("memory_traffic", memory_traffic),
    ("random_bytes", random_bytes),
];

/// Repeats `unit(pc)` (the unit for the code so far) while it fits in
/// `size - reserve` bytes.
fn fill(size: usize, reserve: usize, mut unit: impl FnMut(usize) -> Vec<u8>) -> Vec<u8> {
    let mut code = Vec::with_capacity(size);
    loop {
        let u = unit(code.len());
        if code.len() + u.len() + reserve > size {
            return code;
        }
        code.extend(u);
    }
}

fn push2(v: usize) -> [u8; 3] {
    [0x61, (v >> 8) as u8, v as u8]
}

/// Deterministic bytes (xorshift).
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Only JUMPDESTs: one straight run.
pub fn jumpdests(size: usize) -> Vec<u8> {
    vec![0x5b; size]
}

/// `JUMPDEST PUSH2 <its own pc> POP`, repeated: every JUMPDEST is a
/// pushed constant, so each one starts a block.
pub fn pushed_jumpdests(size: usize) -> Vec<u8> {
    fill(size, 0, |pc| {
        let mut u = vec![0x5b];
        u.extend(push2(pc));
        u.push(0x50);
        u
    })
}

/// `PUSH32 r1 PUSH32 r2 ADD POP`, repeated: wide constants everywhere.
pub fn push32_dense(size: usize) -> Vec<u8> {
    let mut i = 0;
    fill(size, 0, |_| {
        i += 1;
        let mut u = vec![0x7f];
        u.extend(pseudo_random(32, i));
        u.push(0x7f);
        u.extend(pseudo_random(32, i + 1_000_000));
        u.extend([0x01, 0x50]);
        u
    })
}

/// One block of pushes and pops that keeps 32 words live: `PUSH1 i` x 32,
/// then `ADD POP PUSH1 i PUSH1 i` ... (balanced), no jumps at all.
pub fn one_huge_block(size: usize) -> Vec<u8> {
    let mut code: Vec<u8> = (0..32u8).flat_map(|i| [0x60, i]).collect();
    let mut i = 0u8;
    code.extend(fill(size.saturating_sub(code.len()), 0, |_| {
        i = i.wrapping_add(1);
        // ADD, then PUSH1 i: the height stays at 32.
        vec![0x01, 0x60, i]
    }));
    code
}

/// Thousands of tiny blocks with two successors each:
/// `JUMPDEST PUSH0 CALLDATALOAD PUSH2 <next> JUMPI`: a JUMPI whose target
/// and fall-through are the next unit.
pub fn tiny_blocks(size: usize) -> Vec<u8> {
    let mut code = fill(size, 1, |pc| {
        let mut u = vec![0x5b, 0x5f, 0x35];
        u.extend(push2(pc + 7));
        u.push(0x57);
        u
    });
    code.push(0x5b);
    code
}

/// `JUMPDEST PUSH2 <next> JUMP`: a chain of static jumps, each block
/// entered from one other (ipsilon's `jump_around` jumps in random order).
pub fn static_jump_chain(size: usize) -> Vec<u8> {
    let mut code = fill(size, 1, |pc| {
        let mut u = vec![0x5b];
        u.extend(push2(pc + 5));
        u.push(0x56);
        u
    });
    code.push(0x5b);
    code
}

/// A jump table of return addresses: after a JUMP over the function,
/// units `JUMPDEST PUSH2 <next unit> PUSH2 <f> JUMP` call `f: JUMPDEST JUMP`,
/// which returns through a dynamic jump. Every unit is a dynamic-jump
/// target.
pub fn dynamic_jump_table(size: usize) -> Vec<u8> {
    // 0: PUSH2 6 JUMP; 4: f: JUMPDEST JUMP; 6: units.
    let mut code = vec![0x61, 0x00, 0x06, 0x56, 0x5b, 0x56];
    let start = code.len();
    code.extend(fill(size.saturating_sub(start), 1, |rel| {
        let pc = start + rel;
        let mut u = vec![0x5b];
        u.extend(push2(pc + 8));
        u.extend(push2(4));
        u.push(0x56);
        u
    }));
    code.push(0x5b);
    code
}

/// Internal calls nested 400 deep, Solidity-style, chain after chain: each
/// function `JUMPDEST PUSH2 <r> PUSH2 <next> JUMP r: JUMPDEST JUMP` calls
/// the next with its return address on the stack and returns by a dynamic
/// jump, the last one `JUMPDEST JUMP`; the code at pc 0 calls the chains'
/// heads in turn, then stops. The return-target analysis would copy a
/// stack 400 deep at every call (quadratic) but for its budget.
pub fn nested_calls(size: usize) -> Vec<u8> {
    const DEPTH: usize = 400;
    // Every function is 10 bytes, a chain's end 2, its call from pc 0 8.
    let chains = size.saturating_sub(1).div_ceil(10 * DEPTH + 2 + 8).max(1);
    let per_chain = (size.saturating_sub(1 + 10 * chains) / chains / 10).min(DEPTH);
    let main_len = 8 * chains + 1;
    let chain_len = 10 * per_chain + 2;
    let mut code = Vec::with_capacity(size);
    for c in 0..chains {
        let ret = 8 * c + 7;
        code.extend(push2(ret));
        code.extend(push2(main_len + c * chain_len));
        code.extend([0x56, 0x5b]);
    }
    code.push(0x00);
    for _ in 0..chains {
        for _ in 0..per_chain {
            let pc = code.len();
            code.push(0x5b);
            code.extend(push2(pc + 8));
            code.extend(push2(pc + 10));
            code.extend([0x56, 0x5b, 0x56]);
        }
        code.extend([0x5b, 0x56]);
    }
    code
}

/// A jump computed from calldata (`unit = calldata & 0x3ff`, target
/// `14 + 24 * unit`) into units no PUSH names:
/// `JUMPDEST (PUSH1 k ADD) x 7 NOT NOT`. Up to 24 KiB every unit is a
/// dispatch target (at most [`MAX_COMPUTED_TARGETS`] of them), so this is
/// the most such targets a contract gets.
///
/// [`MAX_COMPUTED_TARGETS`]: evmc_compiler::analysis::MAX_COMPUTED_TARGETS
pub fn computed_jumps(size: usize) -> Vec<u8> {
    // PUSH0 CALLDATALOAD DUP1 PUSH2 0x3ff AND PUSH1 24 MUL PUSH1 14 ADD
    // JUMP: the units add to the calldata word left below.
    let mut code = vec![
        0x5f, 0x35, 0x80, 0x61, 0x03, 0xff, 0x16, 0x60, 24, 0x02, 0x60, 14, 0x01, 0x56,
    ];
    let mut i = 0u8;
    code.extend(fill(size.saturating_sub(code.len()), 0, |_| {
        let mut u = vec![0x5b];
        for _ in 0..7 {
            i = i.wrapping_add(1);
            u.extend([0x60, i, 0x01]);
        }
        u.extend([0x19, 0x19]);
        u
    }));
    code
}

/// Sixteen words, then `DUP<k> SWAP<j> POP` with every depth.
pub fn dup_swap_chains(size: usize) -> Vec<u8> {
    let mut code: Vec<u8> = (0..16u8).flat_map(|i| [0x60, i]).collect();
    let mut i = 0usize;
    code.extend(fill(size.saturating_sub(code.len()), 0, |_| {
        i += 1;
        vec![0x80 + (i % 16) as u8, 0x90 + ((i * 7) % 16) as u8, 0x50]
    }));
    code
}

/// A running value from calldata, through every inline arithmetic
/// opcode with small constants: `PUSH1 k OP`, repeated.
pub fn straight_arithmetic(size: usize) -> Vec<u8> {
    const OPS: [u8; 12] = [
        0x01, 0x02, 0x03, 0x16, 0x17, 0x18, 0x0b, 0x1a, 0x1b, 0x1c, 0x1d, 0x04,
    ];
    let mut code = vec![0x5f, 0x35];
    let mut i = 0usize;
    code.extend(fill(size.saturating_sub(2), 0, |_| {
        i += 1;
        let op = OPS[i % OPS.len()];
        // SIGNEXTEND, BYTE and shifts take the constant as their first
        // operand: swap it on top.
        match op {
            0x0b | 0x1a | 0x1b | 0x1c | 0x1d => vec![0x60, (i % 31) as u8, op],
            _ => vec![0x60, (i % 250 + 1) as u8, 0x90, op],
        }
    }));
    code
}

/// Two words from calldata, `a` and `b`, then `DUP2 OP` (`a = OP(b, a)`)
/// through MUL, the shifts, SIGNEXTEND and BYTE: every operand unknown at
/// compile time, so each instruction is a full 256-bit one (a MUL ~45
/// machine instructions, a shift ~30), and `a` is returned, so none is
/// dead. The shape that took LLVM longest per KB.
pub fn wide_arithmetic(size: usize) -> Vec<u8> {
    const OPS: [u8; 6] = [0x02, 0x1b, 0x1c, 0x1d, 0x0b, 0x1a];
    // PUSH0 CALLDATALOAD PUSH1 32 CALLDATALOAD: b, then a on top.
    let mut code = vec![0x5f, 0x35, 0x60, 0x20, 0x35];
    let tail = [0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3];
    let mut i = 0usize;
    code.extend(fill(size.saturating_sub(code.len()), tail.len(), |_| {
        i += 1;
        vec![0x81, OPS[i % OPS.len()]]
    }));
    // PUSH0 MSTORE PUSH1 32 PUSH0 RETURN: a.
    code.extend(tail);
    code
}

/// `DUP1 DUP1 MSTORE DUP1 MLOAD POP PUSH1 32 ADD`, from offset 0: memory
/// grows by a word per unit.
pub fn memory_traffic(size: usize) -> Vec<u8> {
    let mut code = vec![0x5f];
    code.extend(fill(size.saturating_sub(1), 0, |_| {
        vec![0x80, 0x80, 0x52, 0x80, 0x51, 0x50, 0x60, 0x20, 0x01]
    }));
    code
}

/// Random bytes: undefined opcodes, stray PUSH data, everything.
pub fn random_bytes(size: usize) -> Vec<u8> {
    pseudo_random(size, 0x5eed)
}
