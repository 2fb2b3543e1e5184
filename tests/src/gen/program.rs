//! The structured program generator: a dispatcher on the first calldata
//! byte into sub-programs made of random items (values, arithmetic, memory,
//! storage, copies, logs, calls, creates, branches, loops, odd jumps) whose
//! stack heights are tracked so that jumps always meet a consistent stack.

use super::ADDRESS_BASE;
use arbitrary::Unstructured;
use evmc_compiler::SpecId;
use revm::bytecode::opcode::{self as op, OpCode};
use revm::primitives::U256;

/// The first spec with `opcode`, for the opcodes that came after Frontier.
fn introduced(opcode: u8) -> SpecId {
    match opcode {
        op::DELEGATECALL => SpecId::HOMESTEAD,
        op::STATICCALL | op::RETURNDATASIZE | op::RETURNDATACOPY | op::REVERT => SpecId::BYZANTIUM,
        op::SHL | op::SHR | op::SAR | op::CREATE2 | op::EXTCODEHASH => SpecId::PETERSBURG,
        op::CHAINID | op::SELFBALANCE => SpecId::ISTANBUL,
        op::BASEFEE => SpecId::LONDON,
        op::PUSH0 => SpecId::SHANGHAI,
        op::TLOAD | op::TSTORE | op::MCOPY | op::BLOBHASH | op::BLOBBASEFEE => SpecId::CANCUN,
        op::CLZ => SpecId::OSAKA,
        _ => SpecId::FRONTIER,
    }
}

// ---------------------------------------------------------------------------
// Assembler with labels
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: Vec<Option<u16>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    /// Places `l` here, as a JUMPDEST.
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len() as u16);
        self.code.push(op::JUMPDEST);
    }

    fn push_label(&mut self, l: usize) {
        self.code.push(op::PUSH2);
        self.fixups.push((self.code.len(), l));
        self.code.extend_from_slice(&[0, 0]);
    }

    fn op(&mut self, b: u8) {
        self.code.push(b);
    }

    /// The shortest PUSH1..PUSH32 of `v` (PUSH1 0 for zero: every spec).
    fn push(&mut self, v: U256) {
        let bytes = v.to_be_bytes::<32>();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(31);
        self.code.push(op::PUSH1 + (31 - skip) as u8);
        self.code.extend_from_slice(&bytes[skip..]);
    }

    fn push_u(&mut self, v: u64) {
        self.push(U256::from(v));
    }

    fn finish(mut self) -> Vec<u8> {
        for (at, l) in self.fixups {
            let target = self.labels[l].expect("every label is bound");
            self.code[at..at + 2].copy_from_slice(&target.to_be_bytes());
        }
        self.code
    }
}

// ---------------------------------------------------------------------------
// Structured program generator
// ---------------------------------------------------------------------------

/// Memory layout of generated code: scratch below 0x400, the calldata
/// forwarded to callees at 0x400, init code at 0x800, the last created
/// address in the scratch word 0xc0.
const ARGS_AT: u64 = 0x400;
const INIT_AT: u64 = 0x800;
const CREATED_AT: u64 = 0xc0;

struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    spec: SpecId,
    a: Asm,
    /// Stack height, known statically.
    h: usize,
    /// Items below this height belong to an enclosing construct.
    floor: usize,
    depth: u32,
    /// Addresses code may pick as callee: contracts, then one empty account.
    n_accounts: usize,
    calls_left: u32,
    in_loop: bool,
    /// Internal functions called so far, emitted after the program: their
    /// label and number of arguments.
    functions: Vec<(usize, usize)>,
}

impl Gen<'_, '_> {
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.u.int_in_range(lo..=hi).unwrap_or(lo)
    }

    fn chance(&mut self, num: u8, den: u8) -> bool {
        self.u.ratio(num, den).unwrap_or(false)
    }

    /// Index drawn by weight; the first entry when the input is exhausted.
    fn weighted(&mut self, w: &[u32]) -> usize {
        let total: u32 = w.iter().sum();
        let mut x = self.u.int_in_range(0..=total - 1).unwrap_or(0);
        for (i, wi) in w.iter().enumerate() {
            if x < *wi {
                return i;
            }
            x -= wi;
        }
        0
    }

    fn has(&self, opcode: u8) -> bool {
        self.spec.is_enabled_in(introduced(opcode))
    }

    /// Emits `opcode` with its stack effect.
    fn op(&mut self, opcode: u8) {
        let info = OpCode::new(opcode).expect("known opcode").info();
        self.a.op(opcode);
        self.h = self.h + info.outputs() as usize - info.inputs() as usize;
    }

    fn push(&mut self, v: U256) {
        self.a.push(v);
        self.h += 1;
    }

    fn push_u(&mut self, v: u64) {
        self.push(U256::from(v));
    }

    fn interesting(&mut self) -> U256 {
        match self.range(0, 12) {
            0 => U256::ZERO,
            1 => U256::from(1),
            2 => U256::from(self.range(2, 64)),
            3 => U256::MAX,
            4 => U256::from(1) << 255,
            5 => (U256::from(1) << 255) - U256::from(1),
            6 => U256::from(1) << self.range(1, 255),
            7 => (U256::from(1) << self.range(1, 255)) - U256::from(1),
            8 => U256::MAX - U256::from(self.range(1, 64)),
            _ => {
                let n = self.range(1, 32) as usize;
                let mut b = [0u8; 32];
                for x in &mut b[32 - n..] {
                    *x = self.u.arbitrary().unwrap_or(0);
                }
                U256::from_be_bytes(b)
            }
        }
    }

    /// Pushes byte `k` (1..32) of this frame's control word; returns `k`.
    fn control_byte(&mut self) -> u64 {
        let k = self.range(1, 31);
        self.push_u(k);
        self.op(op::CALLDATALOAD);
        self.push_u(0);
        self.op(op::BYTE);
        k
    }

    /// Pushes one value, from one of many sources.
    fn value(&mut self) {
        match self.weighted(&[6, 6, 3, 4, 3, 3, 2, 2, 2, 1]) {
            0 => {
                let v = self.interesting();
                self.push(v)
            }
            1 => {
                self.control_byte();
            }
            2 => {
                let off = if self.chance(1, 8) {
                    self.range(0, u32::MAX as u64)
                } else {
                    self.range(0, 6) * 32 + self.range(0, 1) * self.range(0, 31)
                };
                self.push_u(off);
                self.op(op::CALLDATALOAD);
            }
            3 => {
                let ops = [
                    op::ADDRESS,
                    op::CALLER,
                    op::CALLVALUE,
                    op::CALLDATASIZE,
                    op::CODESIZE,
                    op::GAS,
                    op::PC,
                    op::MSIZE,
                    op::RETURNDATASIZE,
                    op::SELFBALANCE,
                    op::CHAINID,
                    op::NUMBER,
                    op::TIMESTAMP,
                    op::COINBASE,
                    op::BASEFEE,
                    op::GASLIMIT,
                    op::ORIGIN,
                    op::GASPRICE,
                    op::BLOBBASEFEE,
                    op::DIFFICULTY,
                    op::PUSH0,
                ];
                let o = ops[self.range(0, ops.len() as u64 - 1) as usize];
                if self.has(o) {
                    self.op(o)
                } else {
                    self.op(op::GAS)
                }
            }
            4 => {
                self.small_offset();
                self.op(op::MLOAD);
            }
            5 => {
                self.storage_key();
                let o = if self.has(op::TLOAD) && self.chance(1, 3) {
                    op::TLOAD
                } else {
                    op::SLOAD
                };
                self.op(o);
            }
            6 => {
                self.callee();
                let ops = [op::BALANCE, op::EXTCODESIZE, op::EXTCODEHASH];
                let o = ops[self.range(0, 2) as usize];
                self.op(if self.has(o) { o } else { op::BALANCE });
            }
            7 if self.h >= 1 => {
                let n = self.range(1, self.h.min(16) as u64) as u8;
                self.op(op::DUP1 + n - 1);
            }
            8 => {
                self.small_offset();
                self.length();
                self.op(op::SWAP1);
                self.op(op::KECCAK256);
            }
            9 => {
                let v = self.range(0, 300);
                self.push_u(v);
                self.op(op::NUMBER);
                self.op(op::SUB);
                self.op(op::BLOCKHASH);
            }
            _ => {
                self.control_byte();
            }
        }
    }

    fn storage_key(&mut self) {
        if self.chance(1, 3) {
            self.control_byte();
            self.push_u(7);
            self.op(op::AND);
        } else {
            let k = self.range(0, 7);
            self.push_u(k);
        }
    }

    /// A memory offset: mostly in the scratch area, sometimes far out.
    fn offset(&mut self) {
        match self.weighted(&[80, 4, 2, 1, 1]) {
            0 => self.small_offset(),
            1 => {
                self.control_byte();
                self.push_u(32);
                self.op(op::MUL);
            }
            2 => {
                let v = self.range(0x1000, 0x40000);
                self.push_u(v)
            }
            3 => {
                let v = [1u64 << 32, u64::MAX, 0xffff_ffff].map(U256::from);
                let v = v[self.range(0, 2) as usize];
                self.push(v)
            }
            _ => self.push(U256::MAX),
        }
    }

    fn small_offset(&mut self) {
        // Now and then one of the words Solidity's code reads and writes
        // everywhere (scratch 0x00 and 0x20, the free memory pointer at
        // 0x40), or an unaligned word ending inside them (0x3f): after the
        // prologue of `program` they are inside memory every frame has,
        // accesses the compiler leaves unchecked
        // (`Analysis::covered_accesses`).
        let v = if self.chance(1, 4) {
            [0x00, 0x20, 0x40, 0x3f][self.range(0, 3) as usize]
        } else {
            self.range(0, 0x3ff)
        };
        self.push_u(v)
    }

    /// A length: mostly short, sometimes large or absurd.
    fn length(&mut self) {
        match self.weighted(&[40, 4, 3, 2, 1]) {
            0 => {
                let v = self.range(0, 0x60);
                self.push_u(v)
            }
            1 => {
                self.control_byte();
            }
            2 => self.push_u(0),
            3 => {
                let v = self.range(0x100, 0x4000);
                self.push_u(v)
            }
            _ => {
                let v = self.interesting();
                self.push(v)
            }
        }
    }

    /// Pushes a callee: a contract of the world or the empty account after
    /// them (chosen by the calldata or fixed), a precompile, or the address
    /// created last.
    fn callee(&mut self) {
        match self.weighted(&[5, 3, 1, 1]) {
            0 => {
                self.control_byte();
                self.push_u(self.n_accounts as u64);
                self.op(op::SWAP1);
                self.op(op::MOD);
                self.push_u(ADDRESS_BASE as u64);
                self.op(op::ADD);
            }
            1 => {
                let i = self.range(0, self.n_accounts as u64 - 1);
                self.push_u(ADDRESS_BASE as u64 + i);
            }
            2 => {
                let p = [1u64, 2, 3, 4, 5, 6, 9][self.range(0, 6) as usize];
                self.push_u(p)
            }
            _ => {
                self.push_u(CREATED_AT);
                self.op(op::MLOAD);
            }
        }
    }

    /// Pushes what `opcode`'s operands need beyond what the stack above
    /// the floor offers, sometimes more.
    fn operands(&mut self, n: usize) {
        let avail = self.h - self.floor;
        let min_fresh = n.saturating_sub(avail);
        let fresh = self.range(min_fresh as u64, n as u64) as usize;
        for _ in 0..fresh {
            self.value();
        }
    }

    fn pure_op(&mut self) {
        let ops = crate::diff::PURE_OPS;
        let o = ops[self.range(0, ops.len() as u64 - 1) as usize];
        if !self.has(o) {
            return;
        }
        let inputs = OpCode::new(o).unwrap().info().inputs() as usize;
        self.operands(inputs);
        self.op(o);
    }

    /// Drops what this construct pushed.
    fn pop_to(&mut self, height: usize) {
        while self.h > height {
            self.op(op::POP);
        }
    }

    fn item(&mut self) {
        let nested = self.depth < 3;
        let w = [
            10,                                      // value
            10,                                      // pure op
            3,                                       // swap
            3,                                       // pop
            8,                                       // memory
            6,                                       // storage
            4,                                       // copies
            3,                                       // log
            if self.calls_left > 0 { 5 } else { 0 }, // call
            if self.calls_left > 0 { 2 } else { 0 }, // create
            if nested { 4 } else { 0 },              // if/else
            if nested { 3 } else { 0 },              // loop
            1,                                       // raw opcode
            1,                                       // odd jumps and stack abuse
            if nested { 3 } else { 0 },              // branches yielding a value
            if nested { 3 } else { 0 },              // loop with an accumulator
            if self.depth < 2 { 2 } else { 0 },      // long straight-line run
            if nested { 4 } else { 0 },              // internal function call
        ];
        match self.weighted(&w) {
            0 => self.value(),
            1 => self.pure_op(),
            2 => {
                let avail = self.h - self.floor;
                if avail >= 2 {
                    let n = self.range(1, (avail - 1).min(16) as u64) as u8;
                    self.op(op::SWAP1 + n - 1);
                }
            }
            3 => {
                if self.h > self.floor {
                    self.op(op::POP)
                }
            }
            4 => self.memory(),
            5 => self.storage(),
            6 => self.copy(),
            7 => self.log(),
            8 => self.call(),
            9 => self.create(),
            10 => self.if_else(),
            11 => self.counted_loop(),
            12 => self.raw(),
            13 => self.oddity(),
            14 => self.select(),
            15 => self.accumulate(),
            16 => self.straight_run(),
            _ => self.internal_call(),
        }
        // Keep the stack shallow: deep stacks come from dedicated items.
        if self.h > self.floor + 12 {
            self.pop_to(self.floor + 6);
        }
    }

    fn memory(&mut self) {
        match self.range(0, 3) {
            0 | 1 => {
                self.operands(1);
                self.offset();
                let o = if self.chance(1, 3) {
                    op::MSTORE8
                } else {
                    op::MSTORE
                };
                self.op(o);
            }
            2 => {
                self.offset();
                self.op(op::MLOAD);
            }
            _ => {
                self.offset();
                self.op(op::MLOAD);
                self.op(op::POP);
            }
        }
    }

    fn storage(&mut self) {
        let transient = self.has(op::TSTORE) && self.chance(1, 4);
        if self.chance(2, 3) {
            self.operands(1);
            self.storage_key();
            self.op(if transient { op::TSTORE } else { op::SSTORE });
        } else {
            self.storage_key();
            self.op(if transient { op::TLOAD } else { op::SLOAD });
        }
    }

    fn copy(&mut self) {
        let ops = [
            op::CALLDATACOPY,
            op::CODECOPY,
            op::RETURNDATACOPY,
            op::EXTCODECOPY,
            op::MCOPY,
        ];
        let o = ops[self.range(0, 4) as usize];
        if !self.has(o) {
            return;
        }
        self.length();
        if o == op::RETURNDATACOPY && self.chance(1, 2) {
            // Mostly within bounds, so execution goes on.
            self.pop_to(self.h - 1);
            self.op(op::RETURNDATASIZE);
            self.push_u(0);
        } else if o == op::MCOPY {
            self.offset();
        } else {
            let v = self.range(0, 0x40);
            self.push_u(v);
        }
        self.offset();
        if o == op::EXTCODECOPY {
            self.callee();
        }
        self.op(o);
    }

    fn log(&mut self) {
        let n = self.range(0, 4) as u8;
        for _ in 0..n {
            self.value();
        }
        self.length();
        self.offset();
        self.op(op::LOG0 + n);
    }

    /// A call forwarding the calldata after the first word, when there is
    /// any (that bounds the depth of the call tree).
    fn call(&mut self) {
        self.calls_left -= 1;
        let h0 = self.h;
        let skip = self.a.label();
        self.push_u(0x21);
        self.op(op::CALLDATASIZE);
        self.op(op::LT);
        self.a.push_label(skip);
        self.h += 1;
        self.op(op::JUMPI);
        // CALLDATACOPY(ARGS_AT, 0x20, CALLDATASIZE - 0x20)
        self.push_u(0x20);
        self.op(op::CALLDATASIZE);
        self.op(op::SUB);
        self.push_u(0x20);
        self.push_u(ARGS_AT);
        self.op(op::CALLDATACOPY);

        let kinds = [op::CALL, op::STATICCALL, op::DELEGATECALL, op::CALLCODE];
        let mut kind = kinds[self.weighted(&[6, 2, 2, 1])];
        if !self.has(kind) {
            kind = op::CALL;
        }
        // ret length, ret offset
        if self.chance(1, 4) {
            self.length();
        } else {
            self.push_u(0x40);
        }
        self.small_offset();
        // arg length, arg offset: the calldata tail, but in a loop (where
        // the call repeats) a few bytes only, so callees call no further.
        if self.in_loop {
            let n = self.range(0, 0x1f);
            self.push_u(n);
        } else {
            self.push_u(0x20);
            self.op(op::CALLDATASIZE);
            self.op(op::SUB);
        }
        self.push_u(ARGS_AT);
        if kind == op::CALL || kind == op::CALLCODE {
            match self.weighted(&[6, 2, 1]) {
                0 => self.push_u(0),
                1 => {
                    let v = self.range(1, 5000);
                    self.push_u(v)
                }
                _ => {
                    self.control_byte();
                }
            }
        }
        self.callee();
        match self.weighted(&[5, 2, 2, 1]) {
            0 => self.op(op::GAS),
            1 => {
                let g = self.range(0, 120_000);
                self.push_u(g)
            }
            2 => {
                self.push_u(2);
                self.op(op::GAS);
                self.op(op::DIV);
            }
            _ => self.push(U256::MAX),
        }
        self.op(kind);
        if self.chance(1, 2) {
            let at = self.range(0, 0x1f) * 32;
            self.push_u(at);
            self.op(op::MSTORE);
        }
        self.pop_to(h0);
        self.a.bind(skip);
    }

    /// CREATE or CREATE2 of the deployer's code (which deploys a copy of
    /// another contract) or of a contract's own code run as init code.
    fn create(&mut self) {
        self.calls_left -= 1;
        let h0 = self.h;
        let from = if self.chance(2, 3) {
            self.n_accounts as u64 - 2 // the deployer
        } else {
            self.range(0, self.n_accounts as u64 - 1)
        };
        // EXTCODECOPY(from, INIT_AT, 0, EXTCODESIZE(from))
        self.push_u(ADDRESS_BASE as u64 + from);
        self.op(op::EXTCODESIZE);
        self.push_u(0);
        self.push_u(INIT_AT);
        self.push_u(ADDRESS_BASE as u64 + from);
        self.op(op::EXTCODECOPY);
        let two = self.has(op::CREATE2) && self.chance(1, 2);
        if two {
            self.control_byte(); // salt: equal salts collide
        }
        self.push_u(ADDRESS_BASE as u64 + from);
        self.op(op::EXTCODESIZE);
        self.push_u(INIT_AT);
        if self.chance(1, 2) {
            self.push_u(0);
        } else {
            self.control_byte();
        }
        self.op(if two { op::CREATE2 } else { op::CREATE });
        self.push_u(CREATED_AT);
        self.op(op::MSTORE);
        self.pop_to(h0);
    }

    fn seq(&mut self, items: usize) {
        let (floor, h0) = (self.floor, self.h);
        self.floor = self.h;
        for _ in 0..items {
            self.item();
        }
        self.pop_to(h0);
        self.floor = floor;
    }

    /// An internal function called as Solidity calls one: the return
    /// address, the arguments, a jump to the function, which leaves one
    /// result where they were and returns with a JUMP to the address (the
    /// compiler copies such call paths: `analysis::clones`). Half the
    /// calls go to a function an earlier call of the same arity called,
    /// so that functions have several callers; bodies follow the program.
    fn internal_call(&mut self) {
        let args = self.range(0, 3) as usize;
        let shared = self
            .functions
            .iter()
            .find(|&&(_, n)| n == args)
            .map(|&(l, _)| l);
        let f = match shared {
            Some(l) if self.chance(1, 2) => l,
            _ => {
                let l = self.a.label();
                self.functions.push((l, args));
                l
            }
        };
        let ret = self.a.label();
        self.a.push_label(ret);
        self.h += 1;
        for _ in 0..args {
            self.value();
        }
        self.a.push_label(f);
        self.a.op(op::JUMP);
        self.a.bind(ret);
        // The address and the arguments are gone, the result is there.
        self.h -= args;
    }

    /// The bodies of the internal functions called (each entered with its
    /// return address under its arguments), including those their own
    /// bodies call.
    fn function_bodies(&mut self) {
        let mut done = 0;
        while done < self.functions.len() {
            let (f, args) = self.functions[done];
            done += 1;
            self.a.bind(f);
            (self.h, self.floor) = (args + 1, args + 1);
            self.depth = 2;
            self.calls_left = 0;
            if args == 0 {
                self.value();
            }
            while self.h > 2 {
                let o = [op::ADD, op::XOR, op::SUB, op::MUL, op::AND, op::LT]
                    [self.range(0, 5) as usize];
                self.op(o);
            }
            self.floor = 2;
            let n = self.range(0, 4) as usize;
            self.seq(n);
            if self.chance(1, 4) {
                // A check that fails to a revert, as checked arithmetic's.
                let (ok, bound) = (self.a.label(), self.range(0, 1 << 20));
                self.op(op::DUP1);
                self.push_u(bound);
                self.op(op::GT);
                self.a.push_label(ok);
                self.h += 1;
                self.op(op::JUMPI);
                let h = self.h;
                self.push_u(0);
                self.op(op::DUP1);
                self.a.op(if self.has(op::REVERT) {
                    op::REVERT
                } else {
                    op::INVALID
                });
                self.h = h;
                self.a.bind(ok);
            }
            self.op(op::SWAP1);
            self.a.op(op::JUMP);
        }
    }

    fn if_else(&mut self) {
        let h0 = self.h;
        let (then, end) = (self.a.label(), self.a.label());
        if self.chance(2, 3) {
            self.control_byte();
            let bit = self.range(0, 7);
            self.push_u(1 << bit);
            self.op(op::AND);
        } else {
            self.value();
        }
        self.a.push_label(then);
        self.h += 1;
        self.op(op::JUMPI);
        self.depth += 1;
        let n = self.range(0, 6) as usize;
        self.seq(n);
        if self.chance(1, 6) {
            self.terminator();
            self.h = h0;
        }
        self.a.push_label(end);
        self.a.op(op::JUMP);
        self.a.bind(then);
        let n = self.range(0, 6) as usize;
        self.seq(n);
        if self.chance(1, 6) {
            self.terminator();
            self.h = h0;
        }
        self.depth -= 1;
        self.a.bind(end);
    }

    fn counted_loop(&mut self) {
        let h0 = self.h;
        let (top, end) = (self.a.label(), self.a.label());
        if self.chance(2, 3) {
            self.control_byte();
            self.push_u(7);
            self.op(op::AND);
        } else {
            let n = self.range(0, 5);
            self.push_u(n);
        }
        self.a.bind(top);
        self.op(op::DUP1);
        self.op(op::ISZERO);
        self.a.push_label(end);
        self.h += 1;
        self.op(op::JUMPI);
        self.depth += 1;
        let was = std::mem::replace(&mut self.in_loop, true);
        // One call or create per loop at most: they repeat per iteration.
        let calls = self.calls_left;
        self.calls_left = calls.min(1);
        let n = self.range(1, 6) as usize;
        self.seq(n);
        self.calls_left = calls - (calls.min(1) - self.calls_left);
        self.in_loop = was;
        self.depth -= 1;
        self.push_u(1);
        self.op(op::SWAP1);
        self.op(op::SUB);
        self.a.push_label(top);
        self.a.op(op::JUMP);
        self.a.bind(end);
        self.op(op::POP);
        assert_eq!(self.h, h0);
    }

    /// if/else where each branch leaves one (different) value: the join
    /// receives a value from two places.
    fn select(&mut self) {
        let h0 = self.h;
        let (then, end) = (self.a.label(), self.a.label());
        self.control_byte();
        let bit = self.range(0, 7);
        self.push_u(1 << bit);
        self.op(op::AND);
        self.a.push_label(then);
        self.h += 1;
        self.op(op::JUMPI);
        self.depth += 1;
        for (i, label) in [end, then].into_iter().enumerate() {
            if i == 1 {
                self.a.bind(then);
                self.h = h0;
            }
            let n = self.range(0, 3) as usize;
            self.seq(n);
            self.value();
            if self.chance(1, 2) {
                self.combine();
            }
            if i == 0 {
                self.a.push_label(label);
                self.a.op(op::JUMP);
            }
        }
        self.depth -= 1;
        self.a.bind(end);
        assert_eq!(self.h, h0 + 1);
    }

    /// A loop carrying a value on the stack under its counter, combined
    /// with a fresh value each iteration; leaves the value.
    fn accumulate(&mut self) {
        let h0 = self.h;
        let (top, end) = (self.a.label(), self.a.label());
        self.value();
        self.control_byte();
        self.push_u(7);
        self.op(op::AND);
        self.a.bind(top);
        self.op(op::DUP1);
        self.op(op::ISZERO);
        self.a.push_label(end);
        self.h += 1;
        self.op(op::JUMPI);
        self.depth += 1;
        let was = std::mem::replace(&mut self.in_loop, true);
        let calls = std::mem::replace(&mut self.calls_left, 0);
        self.op(op::SWAP1); // acc on top, counter below
        let floor = std::mem::replace(&mut self.floor, self.h - 1);
        let n = self.range(0, 3) as usize;
        for _ in 0..n {
            self.item();
        }
        self.pop_to(self.floor + 1);
        if self.h == self.floor {
            self.value(); // the items consumed it
        }
        self.floor = floor;
        self.combine();
        self.op(op::SWAP1);
        self.calls_left = calls;
        self.in_loop = was;
        self.depth -= 1;
        self.push_u(1);
        self.op(op::SWAP1);
        self.op(op::SUB);
        self.a.push_label(top);
        self.a.op(op::JUMP);
        self.a.bind(end);
        self.op(op::POP);
        assert_eq!(self.h, h0 + 1);
    }

    /// Up to hundreds of instructions the compiler lowers inline, without a
    /// jump: long blocks (split every few hundred instructions), long gas
    /// segments, a deep register-held stack (DUP16, SWAP16).
    fn straight_run(&mut self) {
        const BINARY: &[u8] = &[
            op::ADD,
            op::MUL,
            op::SUB,
            op::LT,
            op::GT,
            op::SLT,
            op::SGT,
            op::EQ,
            op::AND,
            op::OR,
            op::XOR,
            op::BYTE,
            op::SIGNEXTEND,
            op::SHL,
            op::SHR,
            op::SAR,
        ];
        const UNARY: &[u8] = &[op::ISZERO, op::NOT, op::CLZ, op::POP];
        const NULLARY: &[u8] = &[op::GAS, op::PC, op::MSIZE, op::CALLDATASIZE, op::PUSH0];
        let h0 = self.h;
        let n = self.range(40, 400);
        for _ in 0..n {
            let avail = self.h - self.floor;
            match self.weighted(&[4, 3, 3, 6, 2, 2, 1]) {
                1 if self.h >= 1 => {
                    let k = self.range(1, self.h.min(16) as u64) as u8;
                    self.op(op::DUP1 + k - 1);
                }
                2 if avail >= 2 => {
                    let k = self.range(1, (avail - 1).min(16) as u64) as u8;
                    self.op(op::SWAP1 + k - 1);
                }
                3 if avail >= 2 => {
                    let o = BINARY[self.range(0, BINARY.len() as u64 - 1) as usize];
                    self.op(if self.has(o) { o } else { op::ADD });
                }
                4 if avail >= 1 => {
                    let o = UNARY[self.range(0, UNARY.len() as u64 - 1) as usize];
                    self.op(if self.has(o) { o } else { op::ISZERO });
                }
                5 => match self.range(0, 2) {
                    0 => {
                        self.small_offset();
                        self.op(op::MLOAD);
                    }
                    k => {
                        if avail == 0 {
                            let v = self.interesting();
                            self.push(v);
                        }
                        self.small_offset();
                        self.op(if k == 1 { op::MSTORE } else { op::MSTORE8 });
                    }
                },
                6 => {
                    let o = NULLARY[self.range(0, NULLARY.len() as u64 - 1) as usize];
                    self.op(if self.has(o) { o } else { op::GAS });
                }
                _ => {
                    let v = self.interesting();
                    self.push(v);
                }
            }
            if self.h > self.floor + 40 {
                self.op(op::POP);
            }
        }
        self.pop_to(h0);
    }

    /// Combines the top value with a fresh one by a binary pure op.
    fn combine(&mut self) {
        self.value();
        let ops = [
            op::ADD,
            op::MUL,
            op::SUB,
            op::DIV,
            op::SDIV,
            op::MOD,
            op::EXP,
            op::XOR,
            op::LT,
            op::SLT,
            op::SHL,
            op::SAR,
            op::BYTE,
            op::SIGNEXTEND,
        ];
        let o = ops[self.range(0, ops.len() as u64 - 1) as usize];
        self.op(if self.has(o) { o } else { op::ADD });
    }

    /// Any opcode but PUSH (whose immediate would swallow labels), with its
    /// stack effect when known.
    fn raw(&mut self) {
        let b: u8 = self.u.arbitrary().unwrap_or(0);
        if OpCode::is_push_by_op(b) {
            return;
        }
        match OpCode::new(b) {
            Some(o) if o.inputs() as usize <= self.h - self.floor => {
                self.a.op(b);
                self.h = self.h + o.outputs() as usize - o.inputs() as usize;
            }
            Some(_) => {}
            // Undefined: halts here.
            None if self.chance(1, 4) => self.a.op(b),
            None => {}
        }
    }

    /// Rare paths: a jump to an arbitrary byte or back, a jump into PUSH
    /// data that looks like a JUMPDEST, stack underflow, a stack that grows
    /// with the calldata towards the 1024 limit.
    fn oddity(&mut self) {
        match self.range(0, 3) {
            3 => {
                // PUSHn of 0x5b bytes, then maybe a jump onto one of them.
                let n = self.range(1, 32) as usize;
                let at = self.a.code.len() + 1 + self.range(0, n as u64 - 1) as usize;
                self.a.op(op::PUSH1 + n as u8 - 1);
                self.a.code.extend(std::iter::repeat_n(op::JUMPDEST, n));
                self.a.op(op::POP);
                self.control_byte();
                self.push_u(1);
                self.op(op::AND);
                self.push_u(at as u64);
                self.op(op::JUMPI);
            }
            0 => {
                // Taken or not by a calldata bit; mostly not a JUMPDEST.
                self.control_byte();
                self.push_u(1);
                self.op(op::AND);
                // Half the time a JUMPDEST placed earlier: a loop, or a
                // block entered with another stack height than usual.
                let bound: Vec<u16> = self.a.labels.iter().flatten().copied().collect();
                let at = match bound.len() {
                    n if n > 0 && self.chance(1, 2) => {
                        bound[self.range(0, n as u64 - 1) as usize] as u64
                    }
                    _ => self.range(0, self.a.code.len() as u64 + 4),
                };
                self.push_u(at);
                self.op(op::JUMPI);
            }
            1 => {
                let n = self.range(1, 8) as usize;
                if n <= self.h - self.floor {
                    for _ in 0..n {
                        self.op(op::POP);
                    }
                } else {
                    // Underflow whenever the stack is what we think it is:
                    // the frame ends, so the height after does not matter.
                    for _ in 0..self.h + 1 {
                        self.a.op(op::POP);
                    }
                }
            }
            _ if !self.in_loop => {
                // Pushes 5 * control byte words (beyond 1024 for large
                // bytes), then pops them, counting in memory.
                const COUNTER: u64 = 0x3e0;
                let k = self.control_byte();
                for body in [op::PC, op::POP] {
                    let (top, end) = (self.a.label(), self.a.label());
                    self.a.push_u(k);
                    self.a.op(op::CALLDATALOAD);
                    self.a.push_u(0);
                    self.a.op(op::BYTE);
                    self.a.push_u(5);
                    self.a.op(op::MUL);
                    self.a.push_u(COUNTER);
                    self.a.op(op::MSTORE);
                    self.a.bind(top);
                    self.a.push_u(COUNTER);
                    self.a.op(op::MLOAD);
                    self.a.op(op::ISZERO);
                    self.a.push_label(end);
                    self.a.op(op::JUMPI);
                    self.a.op(body);
                    self.a.push_u(1);
                    self.a.push_u(COUNTER);
                    self.a.op(op::MLOAD);
                    self.a.op(op::SUB);
                    self.a.push_u(COUNTER);
                    self.a.op(op::MSTORE);
                    self.a.push_label(top);
                    self.a.op(op::JUMP);
                    self.a.bind(end);
                }
                self.op(op::POP); // the control byte
            }
            _ => {}
        }
    }

    /// Ends the frame (the stack height after it is irrelevant).
    fn terminator(&mut self) {
        match self.weighted(&[6, 3, 2, 1, 1]) {
            0 => {
                self.length();
                self.offset();
                self.op(op::RETURN);
            }
            1 if self.has(op::REVERT) => {
                self.length();
                self.offset();
                self.op(op::REVERT);
            }
            2 => self.op(op::STOP),
            3 => self.a.op(op::INVALID),
            _ => {
                self.callee();
                self.op(op::SELFDESTRUCT);
            }
        }
    }

    /// Dispatcher on control byte 0, then the sub-programs.
    fn program(&mut self) {
        let k = self.range(1, 4) as usize;
        // Now and then a large contract, for LLVM's larger-function paths.
        let big = self.chance(1, 16);
        let subs: Vec<usize> = (0..k).map(|_| self.a.label()).collect();
        let table = self.a.label();
        // Half the programs start as Solidity's do, storing the free memory
        // pointer: memory's first 0x60 bytes then exist in every block,
        // including those entered after a CALL returns.
        if self.chance(1, 2) {
            self.push_u(0x80);
            self.push_u(0x40);
            self.op(op::MSTORE);
        }
        // jump to table + 4 * (calldata[0] % k)
        self.push_u(0);
        self.op(op::CALLDATALOAD);
        self.push_u(0);
        self.op(op::BYTE);
        self.push_u(k as u64);
        self.op(op::SWAP1);
        self.op(op::MOD);
        self.push_u(5);
        self.op(op::MUL);
        self.a.push_label(table);
        self.h += 1;
        self.op(op::ADD);
        self.op(op::JUMP);
        // Each entry is JUMPDEST PUSH2 sub JUMP: 5 bytes; the first is the table.
        let table_at = self.a.code.len();
        for (i, s) in subs.iter().enumerate() {
            if i == 0 {
                self.a.bind(table);
            } else {
                self.a.op(op::JUMPDEST);
            }
            self.a.push_label(*s);
            self.a.op(op::JUMP);
        }
        assert_eq!(self.a.code.len() - table_at, 5 * k);
        for s in subs {
            self.a.bind(s);
            self.h = 0;
            self.floor = 0;
            self.calls_left = 2;
            let n = if big {
                self.range(30, 120)
            } else {
                self.range(2, 24)
            } as usize;
            self.seq(n);
            if self.chance(7, 8) {
                self.terminator();
            }
        }
        self.function_bodies();
    }
}

pub(super) fn structured(u: &mut Unstructured<'_>, spec: SpecId, n_accounts: usize) -> Vec<u8> {
    let mut g = Gen {
        u,
        spec,
        a: Asm::default(),
        h: 0,
        floor: 0,
        depth: 0,
        n_accounts,
        calls_left: 0,
        in_loop: false,
        functions: Vec::new(),
    };
    g.program();
    g.a.finish()
}

/// Init code deploying a copy of contract `CALLVALUE % n`.
pub fn deployer(n: usize) -> Vec<u8> {
    let mut a = Asm::default();
    a.op(op::CALLVALUE);
    a.push_u(n as u64);
    a.op(op::SWAP1);
    a.op(op::MOD);
    a.push_u(ADDRESS_BASE as u64);
    a.op(op::ADD); // addr
    a.op(op::DUP1);
    a.op(op::EXTCODESIZE); // addr size
    a.op(op::DUP1);
    a.push_u(0);
    a.push_u(0);
    a.op(op::DUP5); // addr size | size 0 0 addr
    a.op(op::EXTCODECOPY);
    a.push_u(0);
    a.op(op::RETURN);
    a.finish()
}
