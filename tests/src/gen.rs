//! Generated EVM worlds for differential fuzzing.
//!
//! A [`World`] is a spec and a handful of contracts at fixed addresses:
//! structured programs (valid jumps, loops, memory traffic, storage, calls
//! into each other, creates, reverts, logs), a string of random bytes and a
//! deployer. It is decoded from plain bytes through `arbitrary`, so the
//! proptest smoke test and the cargo-fuzz target share one generator and a
//! failing input is just bytes.
//!
//! Compiling costs far more than executing, so a world is compiled once and
//! then run under many [`Variant`]s: calldata, entry contract, call value,
//! storage and balances, and a sweep of gas limits. The generated code reads
//! its behaviour from the calldata (which sub-program, branch, loop count,
//! callee, offsets), and passes the calldata minus its first word on to the
//! contracts it calls, so one world covers many paths and call graphs.

use crate::evmc_runtime::fixture::{run_fixture, AccountInfo, Fixture, FixtureEnv, FixtureTx};
use crate::evmc_runtime::statetest::Outcome;
use crate::evmc_runtime::{LoadedArtifact, NativeEvm, Registry};
use arbitrary::Unstructured;
use evmc_compiler::SpecId;
use rayon::prelude::*;
use revm::bytecode::opcode::{self as op, OpCode};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database::State;
use revm::handler::{ExecuteEvm, MainBuilder, MainContext};
use revm::primitives::{Address, Bytes, TxKind, B256, U256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const SENDER: Address =
    revm::primitives::address!("0x5e0de50000000000000000000000000000000001");

/// Contract `i` lives at `0xc0de00 + i`, so code can compute callees.
pub const ADDRESS_BASE: u32 = 0xc0_de_00;

pub fn address(i: usize) -> Address {
    let mut a = [0u8; 20];
    a[16..].copy_from_slice(&(ADDRESS_BASE + i as u32).to_be_bytes());
    Address::from(a)
}

/// Specs a world may be generated for; the newest is the one that matters
/// most, so it is drawn more often.
pub const SPECS: &[SpecId] = &[
    SpecId::OSAKA,
    SpecId::OSAKA,
    SpecId::OSAKA,
    SpecId::OSAKA,
    SpecId::PRAGUE,
    SpecId::CANCUN,
    SpecId::SHANGHAI,
    SpecId::LONDON,
    SpecId::BERLIN,
    SpecId::ISTANBUL,
    SpecId::PETERSBURG,
    SpecId::BYZANTIUM,
    SpecId::SPURIOUS_DRAGON,
    SpecId::HOMESTEAD,
    SpecId::FRONTIER,
];

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Structured,
    Random,
    /// Init code that deploys a copy of contract `CALLVALUE % n`.
    Deployer,
}

#[derive(Clone, Debug)]
pub struct Contract {
    pub code: Vec<u8>,
    pub kind: Kind,
    /// Registered for native execution (otherwise interpreted).
    pub compiled: bool,
}

#[derive(Clone, Debug)]
pub struct World {
    pub spec: SpecId,
    pub contracts: Vec<Contract>,
    /// Seeds the variants.
    pub seed: u64,
}

/// One transaction against a world.
#[derive(Clone, Debug, Default)]
pub struct Variant {
    pub target: usize,
    pub calldata: Vec<u8>,
    pub value: U256,
    pub balances: Vec<U256>,
    /// (contract, key, value) of the pre-state.
    pub storage: Vec<(usize, U256, U256)>,
    pub gas_limit: u64,
}

impl Variant {
    /// A plain call of contract 0.
    pub fn call(calldata: Vec<u8>, gas_limit: u64) -> Variant {
        Variant {
            calldata,
            gas_limit,
            ..Default::default()
        }
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
        let v = self.range(0, 0x3ff);
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
            _ => self.oddity(),
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
        // arg length, arg offset
        self.push_u(0x20);
        self.op(op::CALLDATASIZE);
        self.op(op::SUB);
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
        let calls = std::mem::replace(&mut self.calls_left, 0);
        let n = self.range(1, 6) as usize;
        self.seq(n);
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
        debug_assert_eq!(self.h, h0);
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

    /// Rare paths: a jump to an arbitrary byte, stack underflow, a stack
    /// that grows with the calldata towards the 1024 limit.
    fn oddity(&mut self) {
        match self.range(0, 2) {
            0 => {
                // Taken or not by a calldata bit; mostly not a JUMPDEST.
                self.control_byte();
                self.push_u(1);
                self.op(op::AND);
                let at = self.range(0, self.a.code.len() as u64 + 4);
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
        let subs: Vec<usize> = (0..k).map(|_| self.a.label()).collect();
        let table = self.a.label();
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
        debug_assert_eq!(self.a.code.len() - table_at, 5 * k);
        for s in subs {
            self.a.bind(s);
            self.h = 0;
            self.floor = 0;
            self.calls_left = 2;
            let n = self.range(2, 24) as usize;
            self.seq(n);
            if self.chance(7, 8) {
                self.terminator();
            }
        }
    }
}

fn structured(u: &mut Unstructured<'_>, spec: SpecId, n_accounts: usize) -> Vec<u8> {
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

impl World {
    /// Decodes a world; any input gives one (short inputs give small ones).
    pub fn decode(data: &[u8]) -> World {
        let mut u = Unstructured::new(data);
        let spec = SPECS[u.choose_index(SPECS.len()).unwrap_or(0)];
        let n_structured = u.int_in_range(1..=3usize).unwrap_or(1);
        let random = u.ratio(2, 3).unwrap_or(false);
        // structured.., [random], deployer, then one empty account.
        let n_contracts = n_structured + random as usize + 1;
        let n_accounts = n_contracts + 1;
        let mut contracts = Vec::new();
        for _ in 0..n_structured {
            let compiled = u.ratio(7, 8).unwrap_or(true);
            let code = structured(&mut u, spec, n_accounts);
            contracts.push(Contract {
                code,
                kind: Kind::Structured,
                compiled,
            });
        }
        if random {
            let len = u.int_in_range(0..=400usize).unwrap_or(0);
            let mut code = u.bytes(len.min(u.len())).unwrap_or_default().to_vec();
            // Sprinkle JUMPDESTs so that random jumps sometimes land.
            for i in (0..code.len()).step_by(7) {
                if code[i] < 52 {
                    code[i] = op::JUMPDEST;
                }
            }
            contracts.push(Contract {
                code,
                kind: Kind::Random,
                compiled: true,
            });
        }
        contracts.push(Contract {
            code: deployer(n_contracts),
            kind: Kind::Deployer,
            compiled: u.ratio(1, 2).unwrap_or(true),
        });
        if !contracts[0].compiled {
            contracts[0].compiled = true;
        }
        let seed = u.arbitrary().unwrap_or(0);
        World {
            spec,
            contracts,
            seed,
        }
    }

    /// A world of random byte strings only.
    pub fn decode_random(data: &[u8]) -> World {
        let mut u = Unstructured::new(data);
        let spec = SPECS[u.choose_index(SPECS.len()).unwrap_or(0)];
        let n = u.int_in_range(1..=3usize).unwrap_or(1);
        let mut contracts = Vec::new();
        for _ in 0..n {
            let len = u.int_in_range(1..=300usize).unwrap_or(1);
            let code = u.bytes(len.min(u.len())).unwrap_or_default().to_vec();
            contracts.push(Contract {
                code,
                kind: Kind::Random,
                compiled: true,
            });
        }
        let seed = u.arbitrary().unwrap_or(0);
        World {
            spec,
            contracts,
            seed,
        }
    }

    /// Compiles the contracts marked `compiled` (in parallel) and registers them.
    pub fn registry(
        &self,
        compile: &(dyn Fn(&[u8], SpecId) -> Arc<LoadedArtifact> + Sync),
    ) -> Arc<Registry> {
        let registry = Registry::new();
        let arts: Vec<_> = self
            .contracts
            .par_iter()
            .filter(|c| c.compiled)
            .map(|c| compile(&c.code, self.spec))
            .collect();
        for a in arts {
            registry.register(self.spec, a);
        }
        registry
    }

    /// `n` transactions drawn from the world's seed.
    pub fn variants(&self, n: usize) -> Vec<Variant> {
        let mut r = SplitMix(self.seed);
        let structured: Vec<usize> = (0..self.contracts.len())
            .filter(|i| self.contracts[*i].kind != Kind::Deployer)
            .collect();
        (0..n)
            .map(|_| {
                // Mostly a structured contract; random bytes rarely get far.
                let target = match structured
                    .iter()
                    .position(|i| self.contracts[*i].kind == Kind::Random)
                {
                    Some(p) if r.below(8) == 0 => structured[p],
                    _ => {
                        let s: Vec<usize> = structured
                            .iter()
                            .copied()
                            .filter(|i| self.contracts[*i].kind == Kind::Structured)
                            .collect();
                        if s.is_empty() {
                            structured[r.below(structured.len() as u64) as usize]
                        } else {
                            s[r.below(s.len() as u64) as usize]
                        }
                    }
                };
                let words = 1 + r.below(5) as usize;
                let mut calldata = Vec::with_capacity(words * 32);
                for _ in 0..words {
                    for _ in 0..4 {
                        calldata.extend_from_slice(&r.next().to_be_bytes());
                    }
                }
                // Sometimes a ragged tail.
                if r.below(4) == 0 {
                    calldata.truncate(calldata.len() - r.below(32) as usize);
                }
                let value = match r.below(4) {
                    0 => U256::from(r.below(10_000)),
                    _ => U256::ZERO,
                };
                let balances = (0..self.contracts.len())
                    .map(|_| match r.below(3) {
                        0 => U256::ZERO,
                        _ => U256::from(r.below(1_000_000)),
                    })
                    .collect();
                let mut storage = Vec::new();
                for c in 0..self.contracts.len() {
                    for k in 0..8u64 {
                        if r.below(3) == 0 {
                            let v = match r.below(4) {
                                0 => U256::ZERO,
                                1 => U256::from(1),
                                2 => U256::from(r.next()),
                                _ => U256::MAX - U256::from(r.below(100)),
                            };
                            storage.push((c, U256::from(k), v));
                        }
                    }
                }
                let gas_limit = 100_000 + r.below(3_000_000);
                Variant {
                    target,
                    calldata,
                    value,
                    balances,
                    storage,
                    gas_limit,
                }
            })
            .collect()
    }

    /// The transaction as a single-transaction fixture (the runtime's
    /// whole-transaction path).
    pub fn fixture(&self, v: &Variant) -> Fixture {
        let mut pre = BTreeMap::new();
        pre.insert(
            SENDER,
            AccountInfo {
                balance: U256::from(1u64) << 160,
                code: Bytes::new(),
                nonce: 0,
                storage: Default::default(),
            },
        );
        for (i, c) in self.contracts.iter().enumerate() {
            let storage: HashMap<U256, U256> = v
                .storage
                .iter()
                .filter(|(ci, _, _)| *ci == i)
                .map(|(_, k, v)| (*k, *v))
                .collect();
            pre.insert(
                address(i),
                AccountInfo {
                    balance: v.balances.get(i).copied().unwrap_or_default(),
                    code: Bytes::from(c.code.clone()),
                    nonce: 1,
                    storage: storage.into_iter().collect(),
                },
            );
        }
        Fixture {
            name: "generated".into(),
            env: FixtureEnv {
                current_coinbase: address(0xff),
                current_gas_limit: U256::from(u64::MAX),
                current_number: U256::from(1000),
                current_timestamp: U256::from(1_700_000_000u64),
                current_base_fee: Some(U256::ZERO),
                current_difficulty: Some(U256::from(0x20000)),
            },
            pre,
            transaction: vec![FixtureTx {
                data: Bytes::from(v.calldata.clone()),
                gas_limit: U256::from(v.gas_limit),
                gas_price: U256::ZERO,
                nonce: U256::ZERO,
                sender: SENDER,
                to: Some(address(v.target)),
                value: v.value,
            }],
        }
    }

    /// One compiled contract at `address(0)`.
    pub fn single(spec: SpecId, code: Vec<u8>) -> World {
        World {
            spec,
            contracts: vec![Contract {
                code,
                kind: Kind::Structured,
                compiled: true,
            }],
            seed: 0,
        }
    }

    /// Runs `v` both ways; the interpreter's outcome, or the divergence report.
    pub fn check(&self, v: &Variant, registry: &Arc<Registry>) -> Result<Outcome, String> {
        let (want, got) = self.run_both(v, registry);
        if want.exact() != got.exact() {
            return Err(self.report(v, &want, &got, registry));
        }
        Ok(want)
    }

    /// Runs `v` interpreted and natively.
    pub fn run_both(&self, v: &Variant, registry: &Arc<Registry>) -> (Outcome, Outcome) {
        let f = self.fixture(v);
        let pre = f.pre_state();
        let want = run_fixture(&f, &pre, self.spec, None);
        let got = run_fixture(&f, &pre, self.spec, Some(registry));
        (want, got)
    }

    /// Rust source of this world and transaction, for `fuzz_regressions.rs`.
    pub fn repro(&self, v: &Variant) -> String {
        let contracts: Vec<String> = self
            .contracts
            .iter()
            .map(|c| {
                format!(
                    "        Contract {{ code: hex::decode(\"{}\").unwrap(), kind: Kind::{:?}, compiled: {} }},",
                    hex::encode(&c.code),
                    c.kind,
                    c.compiled
                )
            })
            .collect();
        let storage: Vec<String> = v
            .storage
            .iter()
            .map(|(c, k, v)| {
                format!("({c}, U256::from({k}), U256::from_str_radix(\"{v:x}\", 16).unwrap())")
            })
            .collect();
        let balances: Vec<String> = v
            .balances
            .iter()
            .map(|b| format!("U256::from({b})"))
            .collect();
        format!(
            "let world = World {{\n    spec: SpecId::{:?},\n    contracts: vec![\n{}\n    ],\n    seed: 0,\n}};\n\
             let variant = Variant {{\n    target: {},\n    calldata: hex::decode(\"{}\").unwrap(),\n    value: U256::from({}),\n    \
             balances: vec![{}],\n    storage: vec![{}],\n    gas_limit: {},\n}};",
            self.spec,
            contracts.join("\n"),
            v.target,
            hex::encode(&v.calldata),
            v.value,
            balances.join(", "),
            storage.join(", "),
            v.gas_limit
        )
    }

    /// Everything about a divergence: the reproducer, both results, and
    /// the accounts whose post-state differs.
    pub fn report(
        &self,
        v: &Variant,
        want: &Outcome,
        got: &Outcome,
        registry: &Arc<Registry>,
    ) -> String {
        let i = self.state_dump(v, None);
        let n = self.state_dump(v, Some(registry));
        let mut diff = String::new();
        for (addr, a) in &i {
            let b = n.get(addr).map(String::as_str).unwrap_or("(absent)");
            if a != b {
                diff += &format!("  {addr}\n    interpreter: {a}\n    native:      {b}\n");
            }
        }
        for (addr, b) in &n {
            if !i.contains_key(addr) {
                diff += &format!("  {addr}\n    interpreter: (absent)\n    native:      {b}\n");
            }
        }
        format!(
            "native differs from the interpreter ({:?}, {} native frames)\n interpreter: {}\n native:      {}\n state diff:\n{}\n reproducer:\n{}",
            self.spec,
            got.native_frames,
            want.exact(),
            got.exact(),
            if diff.is_empty() { "  (none)\n".into() } else { diff },
            self.repro(v)
        )
    }

    /// Post-state of every touched account, by address (reporting only; the
    /// verdict comes from [`run_fixture`]).
    pub fn state_dump(
        &self,
        v: &Variant,
        registry: Option<&Arc<Registry>>,
    ) -> BTreeMap<Address, String> {
        let f = self.fixture(v);
        let mut state = State::builder()
            .with_cached_prestate(f.pre_state())
            .with_bundle_update()
            .build();
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.tx_gas_limit_cap = Some(u64::MAX);
        let block = BlockEnv {
            number: f.env.current_number,
            beneficiary: f.env.current_coinbase,
            timestamp: f.env.current_timestamp,
            gas_limit: u64::MAX,
            difficulty: f.env.current_difficulty.unwrap_or_default(),
            prevrandao: Some(B256::ZERO),
            ..Default::default()
        };
        let tx = TxEnv {
            caller: SENDER,
            gas_limit: v.gas_limit,
            kind: TxKind::Call(address(v.target)),
            data: Bytes::from(v.calldata.clone()),
            value: v.value,
            chain_id: Some(cfg.chain_id),
            ..Default::default()
        };
        let ctx = Context::mainnet()
            .with_block(block)
            .with_cfg(cfg)
            .with_db(&mut state);
        let registry = registry.cloned().unwrap_or_else(Registry::new);
        let mut evm = NativeEvm::new(ctx.build_mainnet(), registry);
        match evm.transact(tx) {
            Ok(r) => r
                .state
                .iter()
                .map(|(a, acc)| {
                    let mut st: Vec<_> = acc
                        .storage
                        .iter()
                        .filter(|(_, s)| s.is_changed())
                        .map(|(k, s)| format!("{k:#x}={:#x}", s.present_value))
                        .collect();
                    st.sort();
                    (
                        *a,
                        format!(
                            "nonce {} balance {} code {} status {:?} storage [{}]",
                            acc.info.nonce,
                            acc.info.balance,
                            acc.info.code_hash,
                            acc.status,
                            st.join(" ")
                        ),
                    )
                })
                .collect(),
            Err(e) => BTreeMap::from([(Address::ZERO, format!("error: {e:?}"))]),
        }
    }
}

/// Counts over a run, for the log and to catch a generator that stopped
/// exercising anything.
#[derive(Default, Debug)]
pub struct Stats {
    pub cases: AtomicU64,
    pub native_frames: AtomicU64,
    pub success: AtomicU64,
    pub revert: AtomicU64,
    pub halt: AtomicU64,
    pub rejected: AtomicU64,
    /// How the interpreter ended each case, e.g. `Halt(OutOfGas(Basic))`.
    pub endings: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    fn add(&self, want: &Outcome, got: &Outcome) {
        use revm::context_interface::result::ExecutionResult as R;
        self.cases.fetch_add(1, Ordering::Relaxed);
        self.native_frames
            .fetch_add(got.native_frames, Ordering::Relaxed);
        let (c, ending) = match &want.result {
            Ok(R::Success { reason, .. }) => (&self.success, format!("{reason:?}")),
            Ok(R::Revert { .. }) => (&self.revert, "Revert".into()),
            Ok(R::Halt { reason, .. }) => (&self.halt, format!("{reason:?}")),
            Err(e) => (&self.rejected, e.chars().take(40).collect()),
        };
        c.fetch_add(1, Ordering::Relaxed);
        *self.endings.lock().unwrap().entry(ending).or_default() += 1;
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} cases ({} success, {} revert, {} halt, {} rejected), {} native frames",
            Self::get(&self.cases),
            Self::get(&self.success),
            Self::get(&self.revert),
            Self::get(&self.halt),
            Self::get(&self.rejected),
            Self::get(&self.native_frames)
        )
    }

    /// Interpreter endings by frequency.
    pub fn endings(&self) -> String {
        let e = self.endings.lock().unwrap();
        let mut v: Vec<_> = e.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `n_variants` transactions against a compiled world, each at its own
/// gas limit, then at exactly the gas it spent, one unit less, and at
/// `gas_points` random limits below; returns the first divergence's report.
pub fn check_world(
    world: &World,
    registry: &Arc<Registry>,
    n_variants: usize,
    gas_points: usize,
    stats: &Stats,
) -> Result<(), String> {
    let variants = world.variants(n_variants);
    variants.par_iter().enumerate().try_for_each(|(i, v)| {
        let run = |v: &Variant| -> Result<Outcome, String> {
            let (want, got) = world.run_both(v, registry);
            stats.add(&want, &got);
            if want.exact() != got.exact() {
                return Err(world.report(v, &want, &got, registry));
            }
            Ok(want)
        };
        let want = run(v)?;
        // What the transaction needs: its gas, or the EIP-7623 floor.
        let spent = match &want.result {
            Ok(r) => r.gas().total_gas_spent().max(r.gas().floor_gas()),
            Err(_) => return Ok(()),
        };
        let mut r = SplitMix(world.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut limits = vec![spent, spent.saturating_sub(1)];
        for _ in 0..gas_points {
            // Above the intrinsic gas (at most 21000 + 68 per byte).
            let low = (spent / 2).max(21_000 + 68 * v.calldata.len() as u64);
            limits.push(low + r.below(spent.saturating_sub(low)));
        }
        limits.sort_unstable();
        limits.dedup();
        for gas_limit in limits {
            if gas_limit != v.gas_limit {
                run(&Variant {
                    gas_limit,
                    ..v.clone()
                })?;
            }
        }
        Ok(())
    })
}

/// splitmix64: the variants only need to be cheap and reproducible from the
/// world's seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
