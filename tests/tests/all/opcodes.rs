//! Per-opcode differential tests: every opcode 0x00..=0xff in every spec,
//! with edge operands, run in revm's interpreter and natively, compared on
//! everything observable (see `evmc_tests::assert_frame_eq`).
//!
//! Two shapes:
//! - the *zoo*: one program per spec holding a snippet for every opcode,
//!   chosen by a dynamic jump on calldata word 0; operands come from calldata,
//!   so nothing is constant-folded. Each snippet exists three times: with its
//!   operands, with one operand missing (underflow inside the block), and
//!   behind a loop that fills the stack to the brim (overflow);
//! - *constant programs*: for each pure arithmetic/bitwise/comparison opcode,
//!   one straight-line program applying it to many PUSH32 pairs, which LLVM
//!   folds at compile time, plus constant-with-calldata mixes.

use evmc_compiler::SpecId;
use evmc_tests::diff::{prog, Checker, PURE_OPS};
use evmc_tests::revm::bytecode::opcode::{self as op, OpCode};
use evmc_tests::revm::primitives::{Address, U256};
use evmc_tests::{CALLER, OTHER, TARGET};

const SMALL_GAS: u64 = 100;

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

fn u(v: u64) -> U256 {
    U256::from(v)
}

fn pow2(k: usize) -> U256 {
    U256::from(1u64) << k
}

fn edges() -> Vec<U256> {
    vec![
        u(0),
        u(1),
        u(2),
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
        U256::MAX - u(1),
    ]
}

fn addr(a: Address) -> U256 {
    U256::from_be_slice(a.as_slice())
}

fn addresses() -> Vec<U256> {
    vec![
        addr(TARGET),
        addr(OTHER),
        addr(CALLER),
        u(0xdead), // does not exist
        u(0),
        u(1), // precompile
        u(4),
        addr(OTHER) | pow2(200), // dirty upper bits
        U256::MAX,
    ]
}

/// Memory offsets around the interesting boundaries.
fn mem_offsets() -> Vec<U256> {
    vec![
        u(0),
        u(1),
        u(31),
        u(32),
        u(33),
        u(64),
        u(640),
        u(672),
        u(1000),
        u((1 << 32) - 33),
        u((1 << 32) - 32),
        u((1 << 32) - 1),
        u(1 << 32),
        u(u64::MAX - 32),
        u(u64::MAX - 31),
        u(u64::MAX - 1),
        u(u64::MAX),
        pow2(64),
        pow2(64) + u(1),
        pow2(128),
        // Each high limb alone over a small low limb: generated code tests
        // the limbs one by one.
        pow2(128) + u(32),
        pow2(192) + u(32),
        pow2(255),
        U256::MAX,
    ]
}

/// (offset, size) pairs for a memory range read or written.
fn mem_ranges() -> Vec<(U256, U256)> {
    let mut v = Vec::new();
    for off in [
        u(0),
        u(1),
        u(31),
        u(640),
        u(1 << 32),
        u(u64::MAX),
        pow2(64),
        U256::MAX,
    ] {
        for size in [
            u(0),
            u(1),
            u(32),
            u(33),
            u(100),
            u(1 << 32),
            pow2(64),
            U256::MAX,
        ] {
            v.push((off, size));
        }
    }
    v
}

/// (dest, offset, size) triples for the *COPY family.
fn copy_triples() -> Vec<[U256; 3]> {
    let mut v = Vec::new();
    for dest in [u(0), u(31), u(1 << 32), pow2(64)] {
        for off in [u(0), u(1), u(31), u(100), u(1 << 32), pow2(64), U256::MAX] {
            for size in [u(0), u(1), u(32), u(33), u(1 << 32), U256::MAX] {
                v.push([dest, off, size]);
            }
        }
    }
    v
}

/// `base` plus, for every position, `base` with that operand replaced by
/// each of its alternatives.
fn vary(base: &[U256], alts: &[Vec<U256>]) -> Vec<Vec<U256>> {
    let mut out = vec![base.to_vec()];
    for (i, a) in alts.iter().enumerate() {
        for &x in a {
            if x != base[i] {
                let mut v = base.to_vec();
                v[i] = x;
                out.push(v);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The zoo program
// ---------------------------------------------------------------------------

/// Calldata words with a fixed role (operands use words 1..=17).
const W_FILL_COUNT: usize = 18;
const W_AFTER_MEM_INIT: usize = 19;
const W_AFTER_FILL: usize = 20;
const CONTROL_WORDS: usize = 21;
/// Memory word holding the fill loop's counter.
const CNT: u16 = 0x0800;
/// Operands of DUP/SWAP snippets: a stack deep enough for DUP16/SWAP16.
const DEEP: usize = 17;

struct Asm(Vec<u8>);

impl Asm {
    fn pc(&self) -> u32 {
        self.0.len() as u32
    }
    fn op(&mut self, o: u8) -> &mut Self {
        self.0.push(o);
        self
    }
    /// Smallest PUSH1..PUSH32 for `v` (never PUSH0: it is not in every spec).
    fn push(&mut self, v: U256) -> &mut Self {
        let bytes = v.to_be_bytes::<32>();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(31);
        self.0.push(op::PUSH1 + (31 - skip) as u8);
        self.0.extend_from_slice(&bytes[skip..]);
        self
    }
    fn push2(&mut self, v: u16) -> &mut Self {
        self.0.push(op::PUSH2);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Calldata word `w` onto the stack.
    fn load(&mut self, w: usize) -> &mut Self {
        self.push(u(w as u64 * 32)).op(op::CALLDATALOAD)
    }
    fn patch2(&mut self, at: u32, v: u32) {
        self.0[at as usize..at as usize + 2].copy_from_slice(&(v as u16).to_be_bytes());
    }
}

/// Stack operands a snippet loads for `opcode`.
fn operand_count(opcode: u8) -> usize {
    match opcode {
        op::DUP1..=op::SWAP16 => DEEP,
        _ => OpCode::new(opcode).map_or(0, |o| o.inputs() as usize),
    }
}

/// `JUMPDEST`, `extra_pushes` zeros, operands from calldata words
/// `loads..=1` (word 1 ends on top), the opcode (PUSHn get `n` 0x5b bytes of
/// immediate), `STOP`.
fn snippet(a: &mut Asm, opcode: u8, loads: usize, extra_pushes: usize) -> u32 {
    let start = a.pc();
    a.op(op::JUMPDEST);
    for _ in 0..extra_pushes {
        a.push(u(0));
    }
    for i in (0..loads).rev() {
        a.load(i + 1);
    }
    a.op(opcode);
    if (op::PUSH1..=op::PUSH32).contains(&opcode) {
        for _ in 0..(opcode - op::PUSH1 + 1) {
            a.op(op::JUMPDEST);
        }
    }
    a.op(op::STOP);
    start
}

/// Which snippets a zoo program holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Operands loaded, then the opcode; plus the memory-init routine.
    Direct,
    /// One operand short: stack underflow inside the block.
    Under,
    /// Two extra pushes before the operands, entered after the fill loop.
    Full,
}

/// One zoo program. The snippet sets live in separate programs because
/// LLVM's compile time grows faster than linearly with function size.
struct Zoo {
    code: Vec<u8>,
    /// Snippet entry per opcode.
    entry: Vec<Option<u32>>,
    mem_init: u32,
    fill: u32,
    /// A valid JUMPDEST followed by a STOP byte.
    stop_pc: u32,
    /// A 0x5b byte inside PUSH data.
    in_push_data: u32,
}

fn build_zoo(kind: Kind) -> Zoo {
    let mut a = Asm(Vec::new());
    // Entry: jump to the routine named by calldata word 0.
    a.load(0).op(op::JUMP);

    // Copy the calldata to memory, then go on to word 19's target.
    let mem_init = a.pc();
    a.op(op::JUMPDEST)
        .op(op::CALLDATASIZE)
        .push(u(0))
        .push(u(0))
        .op(op::CALLDATACOPY)
        .load(W_AFTER_MEM_INIT)
        .op(op::JUMP);

    // Push word 18 items (counter kept in memory), then go to word 20's
    // target. The loop needs two words of headroom: at most 1022 items.
    let fill = a.pc();
    a.op(op::JUMPDEST)
        .load(W_FILL_COUNT)
        .push2(CNT)
        .op(op::MSTORE);
    let lp = a.pc();
    a.op(op::JUMPDEST).push2(CNT).op(op::MLOAD).op(op::ISZERO);
    let done_fix = a.pc() + 1;
    a.push2(0).op(op::JUMPI);
    a.push2(CNT)
        .op(op::MLOAD)
        .push(u(1))
        .op(op::SWAP1)
        .op(op::SUB)
        .push2(CNT)
        .op(op::MSTORE)
        .push(u(0xff))
        .push2(lp as u16)
        .op(op::JUMP);
    let done = a.pc();
    a.op(op::JUMPDEST).load(W_AFTER_FILL).op(op::JUMP);
    a.patch2(done_fix, done);

    let stop_pc = a.pc();
    a.op(op::JUMPDEST).op(op::STOP);
    let in_push_data = a.pc() + 2;
    a.op(op::PUSH3)
        .op(op::JUMPDEST)
        .op(op::JUMPDEST)
        .op(op::JUMPDEST)
        .op(op::STOP);

    let mut entry = Vec::new();
    for opcode in 0..=255u8 {
        let n = operand_count(opcode);
        entry.push(match kind {
            Kind::Direct => Some(snippet(&mut a, opcode, n, 0)),
            Kind::Under => (n > 0).then(|| snippet(&mut a, opcode, n - 1, 0)),
            Kind::Full => Some(snippet(&mut a, opcode, n, 2)),
        });
    }
    assert!(a.0.len() <= 24 * 1024, "zoo is {} bytes", a.0.len());
    Zoo {
        code: a.0,
        entry,
        mem_init,
        fill,
        stop_pc,
        in_push_data,
    }
}

/// Calldata: word 0 = `entry`, words 1.. = `operands`, and the control words
/// when `control` is given (fill count, after mem-init, after fill).
fn calldata(entry: u32, operands: &[U256], control: Option<[u32; 3]>) -> Vec<u8> {
    let words = if control.is_some() {
        CONTROL_WORDS
    } else {
        1 + operands.len()
    };
    let mut w = vec![U256::ZERO; words];
    w[0] = u(entry as u64);
    w[1..1 + operands.len()].copy_from_slice(operands);
    if let Some([n, after_mem, after_fill]) = control {
        w[W_FILL_COUNT] = u(n as u64);
        w[W_AFTER_MEM_INIT] = u(after_mem as u64);
        w[W_AFTER_FILL] = u(after_fill as u64);
    }
    w.iter().flat_map(|x| x.to_be_bytes::<32>()).collect()
}

fn is_memory_op(opcode: u8) -> bool {
    matches!(
        opcode,
        op::KECCAK256
            | op::CALLDATACOPY
            | op::CODECOPY
            | op::EXTCODECOPY
            | op::RETURNDATACOPY
            | op::MLOAD
            | op::MSTORE
            | op::MSTORE8
            | op::MCOPY
            | op::LOG0
            ..=op::LOG4
                | op::CREATE
                | op::CALL
                | op::CALLCODE
                | op::RETURN
                | op::DELEGATECALL
                | op::CREATE2
                | op::STATICCALL
                | op::REVERT
    )
}

/// The operand sets tried for `opcode` (operand 0 is the top of the stack).
fn operand_sets(opcode: u8, zoo: &Zoo) -> Vec<Vec<U256>> {
    let e = edges();
    let pairs = |xs: &[U256], ys: &[U256]| -> Vec<Vec<U256>> {
        xs.iter()
            .flat_map(|&x| ys.iter().map(move |&y| vec![x, y]))
            .collect()
    };
    let singles = |xs: Vec<U256>| xs.into_iter().map(|x| vec![x]).collect::<Vec<_>>();
    let n = operand_count(opcode);
    match opcode {
        op::ADD
        | op::MUL
        | op::SUB
        | op::DIV
        | op::SDIV
        | op::MOD
        | op::SMOD
        | op::LT
        | op::GT
        | op::SLT
        | op::SGT
        | op::EQ
        | op::AND
        | op::OR
        | op::XOR => {
            let mut v = pairs(&e, &e);
            // SDIV/SMOD with -1 and the most negative value.
            v.push(vec![pow2(255), U256::MAX]);
            v.push(vec![U256::MAX - u(4), u(3)]);
            v.push(vec![u(7), U256::MAX - u(2)]);
            v
        }
        op::EXP => {
            let mut v = pairs(&e, &e);
            for (b, x) in [
                (2, 255),
                (2, 256),
                (3, 1000),
                (256, 31),
                (256, 32),
                (7, u64::MAX),
            ] {
                v.push(vec![u(b), u(x)]);
            }
            v
        }
        op::SIGNEXTEND => {
            let mut v = pairs(&e, &e);
            // Every byte different, sign bits alternating from byte to
            // byte: a wrong limb or byte picked shows.
            let pat = U256::from_be_bytes(std::array::from_fn::<u8, 32, _>(|i| {
                (i as u8).wrapping_mul(37) ^ if i % 2 == 0 { 0x80 } else { 0x05 }
            }));
            for idx in 0..=33u64 {
                for val in [
                    u(0x80),
                    u(0x7f),
                    u(0xff80),
                    u(0x8000_0000),
                    pow2(255) - u(1),
                    U256::MAX,
                    pat,
                    !pat,
                ] {
                    v.push(vec![u(idx), val]);
                }
            }
            v
        }
        op::BYTE => {
            let mut v = pairs(&e, &e);
            let pat = U256::from_be_bytes(std::array::from_fn::<u8, 32, _>(|i| i as u8 + 1));
            for idx in 0..=33u64 {
                v.push(vec![u(idx), pat]);
            }
            v
        }
        op::SHL | op::SHR | op::SAR => {
            let mut v = pairs(&e, &e);
            for sh in [1, 7, 8, 63, 64, 65, 128, 200, 254, 255, 256, 257, 1 << 20] {
                for val in [pow2(255), pow2(255) - u(1), U256::MAX, u(0xabcdef)] {
                    v.push(vec![u(sh), val]);
                }
            }
            v
        }
        op::ADDMOD | op::MULMOD => {
            let ab = [
                u(0),
                u(1),
                u(2),
                pow2(255),
                pow2(128) + u(1),
                U256::MAX,
                U256::MAX - u(1),
            ];
            let mut v = Vec::new();
            for &a in &ab {
                for &b in &ab {
                    for &m in &e {
                        v.push(vec![a, b, m]);
                    }
                }
            }
            v
        }
        op::ISZERO | op::NOT | op::CLZ => {
            let mut xs = e.clone();
            xs.extend((0..256).step_by(17).map(pow2));
            xs.push(pow2(200) - u(1));
            singles(xs)
        }
        op::KECCAK256 | op::RETURN | op::REVERT => {
            mem_ranges().into_iter().map(|(o, s)| vec![o, s]).collect()
        }
        op::BALANCE | op::EXTCODESIZE | op::EXTCODEHASH | op::SELFDESTRUCT => singles(addresses()),
        op::CALLDATALOAD => singles(vec![
            u(0),
            u(1),
            u(31),
            u(32),
            u(33),
            u(64),
            u(100),
            u((1 << 32) - 32),
            u((1 << 32) - 1),
            u(1 << 32),
            u(u64::MAX),
            pow2(64),
            pow2(128) + u(1),
            pow2(192) + u(1),
            U256::MAX,
        ]),
        op::CALLDATACOPY | op::CODECOPY | op::RETURNDATACOPY => {
            copy_triples().into_iter().map(|t| t.to_vec()).collect()
        }
        op::EXTCODECOPY => {
            let mut v = Vec::new();
            for a in [
                addr(TARGET),
                addr(OTHER),
                u(0xdead),
                addr(OTHER) | pow2(160),
            ] {
                for t in copy_triples().into_iter().step_by(3) {
                    v.push(vec![a, t[0], t[1], t[2]]);
                }
            }
            v
        }
        op::BLOCKHASH => singles(vec![
            u(0),
            u(1),
            u(743),
            u(744),
            u(999),
            u(1000),
            u(1001),
            u(u64::MAX),
            pow2(64) + u(999),
            U256::MAX,
        ]),
        op::BLOBHASH => singles(vec![u(0), u(1), u(u64::MAX), pow2(64), U256::MAX]),
        op::POP => singles(vec![u(0), U256::MAX]),
        op::MLOAD => singles(mem_offsets()),
        op::MSTORE | op::MSTORE8 => {
            let mut v = Vec::new();
            for off in mem_offsets() {
                for val in [u(0), U256::MAX, u(0x1234), pow2(255) + u(0xab)] {
                    v.push(vec![off, val]);
                }
            }
            v
        }
        op::SLOAD | op::TLOAD => singles(vec![u(0), u(1), u(2), U256::MAX]),
        op::SSTORE | op::TSTORE => {
            let mut v = Vec::new();
            for key in [u(0), u(1), u(2), U256::MAX] {
                for val in [u(0), u(5), u(7), u(1), U256::MAX] {
                    v.push(vec![key, val]);
                }
            }
            v
        }
        op::JUMP | op::JUMPI => {
            let stop = zoo.stop_pc as u64;
            let targets = vec![
                u(stop),                    // valid JUMPDEST
                u(stop + 1),                // a STOP byte, not a JUMPDEST
                u(zoo.in_push_data as u64), // 0x5b inside PUSH data
                u(zoo.code.len() as u64),   // past the end
                u(zoo.code.len() as u64 + 1000),
                u(0),
                u((1 << 32) + stop),
                pow2(64) + u(stop),
                pow2(255) + u(stop),
                U256::MAX,
            ];
            if opcode == op::JUMP {
                singles(targets)
            } else {
                let mut v = Vec::new();
                for t in targets {
                    for c in [u(0), u(1), pow2(255), pow2(64)] {
                        v.push(vec![t, c]);
                    }
                }
                v
            }
        }
        op::MCOPY => {
            let mut v: Vec<Vec<U256>> = [
                (0, 1, 32),
                (1, 0, 32),
                (0, 0, 64),
                (32, 0, 64),
                (0, 32, 64),
                (5, 3, 100),
                (3, 5, 100),
                (0, 0, 0),
                (700, 0, 10),
                (0, 650, 100),
                (10_000, 20_000, 1),
                (31, 0, 1),
            ]
            .iter()
            .map(|&(d, s, l)| vec![u(d), u(s), u(l)])
            .collect();
            for t in copy_triples().into_iter().step_by(5) {
                v.push(t.to_vec());
            }
            v
        }
        op::LOG0..=op::LOG4 => {
            let k = (opcode - op::LOG0) as usize;
            let topics: Vec<U256> = [U256::MAX, u(0), u(1), pow2(255)][..k].to_vec();
            let mut v = Vec::new();
            for (o, s) in [
                (u(0), u(0)),
                (u(0), u(32)),
                (u(1), u(64)),
                (u(31), u(33)),
                (u(0), u(1 << 32)),
                (pow2(64), u(0)),
                (pow2(64), u(1)),
                (u(0), U256::MAX),
            ] {
                let mut x = vec![o, s];
                x.extend_from_slice(&topics);
                v.push(x);
            }
            v
        }
        op::CALL | op::CALLCODE => vary(
            &[u(100_000), addr(OTHER), u(0), u(0), u(32), u(64), u(32)],
            &[
                vec![u(0), u(2300), U256::MAX, pow2(64)],
                vec![addr(TARGET), u(0xdead), u(4), u(1), addr(OTHER) | pow2(160)],
                vec![u(1), u(1000), u(2000), U256::MAX],
                vec![u(1 << 32), pow2(64)],
                vec![u(0), u(1 << 32), U256::MAX],
                vec![u(1 << 32), pow2(64)],
                vec![u(0), u(1 << 32), U256::MAX],
            ],
        ),
        op::DELEGATECALL | op::STATICCALL => vary(
            &[u(100_000), addr(OTHER), u(0), u(32), u(64), u(32)],
            &[
                vec![u(0), u(2300), U256::MAX, pow2(64)],
                vec![addr(TARGET), u(0xdead), u(4), u(1), addr(OTHER) | pow2(160)],
                vec![u(1 << 32), pow2(64)],
                vec![u(0), u(1 << 32), U256::MAX],
                vec![u(1 << 32), pow2(64)],
                vec![u(0), u(1 << 32), U256::MAX],
            ],
        ),
        op::CREATE | op::CREATE2 => {
            let mut base = vec![u(0), u(0), u(32)];
            let mut alts = vec![
                vec![u(1), u(1000), u(1001), U256::MAX],
                vec![u(1), u(1 << 32), pow2(64)],
                vec![
                    u(0),
                    u(1),
                    u(49152),
                    u(49153),
                    u(1 << 32),
                    pow2(64),
                    U256::MAX,
                ],
            ];
            if opcode == op::CREATE2 {
                base.push(u(0));
                alts.push(vec![u(1), U256::MAX]);
            }
            vary(&base, &alts)
        }
        op::DUP1..=op::SWAP16 => {
            let deep: Vec<U256> = (0..DEEP as u64)
                .map(|i| u(0x1000 + i) | pow2(200 + i as usize))
                .collect();
            vec![deep, e.iter().cycle().take(DEEP).copied().collect()]
        }
        _ if n == 0 => vec![vec![]],
        _ => {
            // Anything else with inputs: small values and edge values.
            vec![
                (1..=n as u64).map(u).collect(),
                e.iter().rev().take(n).copied().collect(),
            ]
        }
    }
}

/// Specs that run every operand set; the others run a sample (the
/// lowering of pure arithmetic does not change between them).
fn is_primary(spec: SpecId) -> bool {
    matches!(
        spec,
        SpecId::FRONTIER | SpecId::PETERSBURG | SpecId::CANCUN | SpecId::OSAKA
    )
}

fn run_zoo(spec: SpecId) {
    let chk = Checker::new(format!("opcode zoo ({spec:?})"));
    let sample = |i: usize| is_primary(spec) || i < 3 || i.is_multiple_of(7);

    // Operands given, with and without memory contents.
    let zoo = build_zoo(Kind::Direct);
    let code = &prog(zoo.code.clone(), spec);
    for opcode in 0..=255u8 {
        let name = format!(
            "{:#04x} {}",
            opcode,
            evmc_compiler::revm_api::opcode_name(opcode)
        );
        let entry = zoo.entry[opcode as usize].unwrap();
        for (i, ops) in operand_sets(opcode, &zoo).iter().enumerate() {
            assert_eq!(ops.len(), operand_count(opcode), "{name}: operand count");
            if !sample(i) {
                continue;
            }
            chk.check_gases(&name, code, &calldata(entry, ops, None), &[SMALL_GAS]);
            if is_memory_op(opcode) {
                // Same with memory already holding the calldata.
                let input = calldata(zoo.mem_init, ops, Some([0, entry, 0]));
                chk.check_gases(&name, code, &input, &[]);
            }
            if opcode == op::SSTORE && i % 4 == 0 {
                // Around the EIP-2200 stipend check.
                let input = calldata(entry, ops, None);
                for g in 2300..2360 {
                    chk.check(&name, code, &input, g);
                }
            }
        }
    }
    // Calldata that is not a whole number of words, and none at all.
    let cds = zoo.entry[op::CALLDATASIZE as usize].unwrap();
    let mut input = calldata(cds, &[], None);
    input.extend_from_slice(&[1, 2, 3]);
    chk.check_gases("odd calldata", code, &input, &[]);
    chk.check_gases("no calldata", code, &[], &[]);

    // One operand missing: underflow in the middle of the block.
    let zoo = build_zoo(Kind::Under);
    let code = &prog(zoo.code.clone(), spec);
    for opcode in 0..=255u8 {
        let name = format!(
            "under {:#04x} {}",
            opcode,
            evmc_compiler::revm_api::opcode_name(opcode)
        );
        if let Some(entry) = zoo.entry[opcode as usize] {
            let ops = &operand_sets(opcode, &zoo)[0];
            chk.check_gases(&name, code, &calldata(entry, &ops[1..], None), &[SMALL_GAS]);
        }
    }

    // A full stack at the opcode: 1024 items, or one less.
    let zoo = build_zoo(Kind::Full);
    let code = &prog(zoo.code.clone(), spec);
    for opcode in 0..=255u8 {
        let name = format!(
            "full {:#04x} {}",
            opcode,
            evmc_compiler::revm_api::opcode_name(opcode)
        );
        let n = operand_count(opcode) as u32;
        let entry = zoo.entry[opcode as usize].unwrap();
        for ops in operand_sets(opcode, &zoo).iter().take(1) {
            for spare in [0, 1] {
                let input = calldata(zoo.fill, ops, Some([1022 - n - spare, 0, entry]));
                chk.check_gases(&name, code, &input, &[]);
            }
        }
    }
    chk.finish(3_000);
}

macro_rules! zoo_tests {
    ($($name:ident => $spec:ident,)*) => {$(
        #[test]
        fn $name() {
            run_zoo(SpecId::$spec);
        }
    )*};
}

zoo_tests! {
    zoo_frontier => FRONTIER,
    zoo_homestead => HOMESTEAD,
    zoo_tangerine => TANGERINE,
    zoo_spurious_dragon => SPURIOUS_DRAGON,
    zoo_byzantium => BYZANTIUM,
    zoo_petersburg => PETERSBURG,
    zoo_istanbul => ISTANBUL,
    zoo_berlin => BERLIN,
    zoo_london => LONDON,
    zoo_merge => MERGE,
    zoo_shanghai => SHANGHAI,
    zoo_cancun => CANCUN,
    zoo_prague => PRAGUE,
    zoo_osaka => OSAKA,
}

// ---------------------------------------------------------------------------
// Constant operands (folded by LLVM)
// ---------------------------------------------------------------------------

fn push32(a: &mut Vec<u8>, v: U256) {
    a.push(op::PUSH32);
    a.extend_from_slice(&v.to_be_bytes::<32>());
}

/// Operand tuples for the constant programs (operand 0 = top of stack).
fn const_operands(opcode: u8) -> Vec<Vec<U256>> {
    let e = edges();
    match OpCode::new(opcode).unwrap().inputs() {
        1 => {
            let mut v: Vec<_> = e.iter().map(|&x| vec![x]).collect();
            v.extend((0..256).step_by(5).map(|k| vec![pow2(k)]));
            v.extend((0..256).step_by(7).map(|k| vec![pow2(k) - u(1)]));
            v
        }
        2 => {
            let mut v = Vec::new();
            for &a in &e {
                for &b in &e {
                    v.push(vec![a, b]);
                }
            }
            // Indexes and shift amounts around the byte/word boundaries.
            let pat = U256::from_be_bytes(std::array::from_fn::<u8, 32, _>(|i| 0x80 | i as u8));
            for k in (0..=34u64).chain([63, 64, 128, 254, 255, 256, 257, 1 << 40]) {
                v.push(vec![u(k), pat]);
                v.push(vec![u(k), pow2(255) - u(1)]);
            }
            v
        }
        3 => {
            let ab = [u(0), u(1), pow2(255), U256::MAX, pow2(128) + u(1)];
            let m = [
                u(0),
                u(1),
                u(2),
                u(32),
                pow2(64),
                pow2(255),
                U256::MAX,
                U256::MAX - u(1),
            ];
            let mut v = Vec::new();
            for &a in &ab {
                for &b in &ab {
                    for &n in &m {
                        v.push(vec![a, b, n]);
                    }
                }
            }
            v
        }
        _ => unreachable!(),
    }
}

/// Each result is stored to the next memory word, which the comparison
/// sees (a result left on the stack at STOP is never observed, and LLVM
/// drops the instruction that computes it).
fn const_program(opcode: u8) -> Vec<u8> {
    let mut code = Vec::new();
    let mut results = 0u16;
    let mut store = |code: &mut Vec<u8>| {
        let [hi, lo] = (results * 32).to_be_bytes();
        code.extend_from_slice(&[op::PUSH2, hi, lo, op::MSTORE]);
        results += 1;
    };
    for ops in const_operands(opcode) {
        for &x in ops.iter().rev() {
            push32(&mut code, x);
        }
        code.push(opcode);
        store(&mut code);
    }
    // Half-constant: calldata word 0 against every edge, in both positions.
    let n = OpCode::new(opcode).unwrap().inputs() as usize;
    for c in edges() {
        for pos in 0..n {
            for i in (0..n).rev() {
                if i == pos {
                    code.extend_from_slice(&[op::PUSH1, 0, op::CALLDATALOAD]);
                } else {
                    push32(&mut code, c);
                }
            }
            code.push(opcode);
            store(&mut code);
        }
    }
    code.push(op::STOP);
    assert!(code.len() <= 24 * 1024, "{opcode:#x}: {} bytes", code.len());
    code
}

#[test]
fn constant_operands() {
    let spec = SpecId::OSAKA;
    let chk = Checker::new(format!("constant operands ({spec:?})"));
    for &opcode in PURE_OPS {
        let code = &prog(const_program(opcode), spec);
        let name = format!("const {}", evmc_compiler::revm_api::opcode_name(opcode));
        for c in edges() {
            let input = c.to_be_bytes::<32>();
            // Gas well above, exact, and one short (deopt before the block).
            chk.check_gases(&name, code, &input, &[]);
        }
    }
    chk.finish(1000);
}

/// The shifts and CLZ before they exist: the same constant programs must
/// halt with NotActivated exactly as the interpreter does.
#[test]
fn constant_operands_before_activation() {
    for (spec, ops) in [
        (SpecId::BYZANTIUM, &[op::SHL, op::SHR, op::SAR][..]),
        (SpecId::PRAGUE, &[op::CLZ][..]),
    ] {
        let chk = Checker::new(format!("constant operands before activation ({spec:?})"));
        for &opcode in ops {
            let code = &prog(const_program(opcode), spec);
            let name = format!("const {}", evmc_compiler::revm_api::opcode_name(opcode));
            chk.check_gases(&name, code, &[0u8; 32], &[]);
        }
        chk.finish(3);
    }
}
