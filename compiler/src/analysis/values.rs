//! What the analysis knows about stack values inside one block: constants
//! (pushed, or folded from constants), values the block was entered with,
//! and values the block computed at run time. Jumps are resolved from the
//! constants; the other two tell a return through the stack (a target the
//! block was handed) from a computed jump (a target read from memory or
//! built by arithmetic on run-time values, as hand-written jump tables do).

use super::{ends_block, Analysis, Inst};
use crate::revm_api::{stack_io, U256};
use revm::bytecode::opcode as op;
use std::collections::{BTreeMap, VecDeque};

/// One stack slot, as far as the analysis of its block can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Val {
    /// Known at compile time.
    Const(U256),
    /// On the stack when the block was entered.
    Entry,
    /// Produced in the block from something not known at compile time.
    Computed,
}

impl Val {
    pub(super) fn constant(self) -> Option<U256> {
        match self {
            Val::Const(v) => Some(v),
            _ => None,
        }
    }
}

/// The stack of one block, top at the back; slots below what the block
/// pushed are [`Val::Entry`], materialised as they are reached.
#[derive(Default, Clone)]
pub(super) struct BlockStack(VecDeque<Val>);

impl BlockStack {
    /// The constants it holds, anywhere.
    pub(super) fn constants(&self) -> impl Iterator<Item = U256> + '_ {
        self.0.iter().filter_map(|v| v.constant())
    }

    /// The slot `depth` below the top (0 is the top).
    pub(super) fn peek(&self, depth: usize) -> Val {
        let n = self.0.len();
        if depth < n {
            self.0[n - 1 - depth]
        } else {
            Val::Entry
        }
    }

    /// The stack of a block entered with the constants `entry`
    /// (`(depth, value)`, depth 0 the top).
    pub(super) fn entered_with(entry: &[(u16, U256)]) -> Self {
        let mut st = BlockStack::default();
        if let Some(deepest) = entry.iter().map(|&(d, _)| d as usize).max() {
            st.ensure(deepest + 1);
            let len = st.0.len();
            for &(d, v) in entry {
                st.0[len - 1 - d as usize] = Val::Const(v);
            }
        }
        st
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    fn ensure(&mut self, n: usize) {
        while self.0.len() < n {
            self.0.push_front(Val::Entry);
        }
    }

    /// Applies `inst`. ADD, SUB, MUL, AND, OR and XOR of two constants are
    /// folded: older compilers mask internal function pointers
    /// (`PUSH4 0xffffffff PUSH2 tag AND JUMP`), a constant target all the
    /// same.
    pub(super) fn apply(&mut self, inst: &Inst) {
        match inst.op {
            op::PUSH0..=op::PUSH32 => self.0.push_back(Val::Const(inst.imm)),
            op::DUP1..=op::DUP16 => {
                let n = (inst.op - op::DUP1 + 1) as usize;
                self.ensure(n);
                let v = self.0[self.0.len() - n];
                self.0.push_back(v);
            }
            op::SWAP1..=op::SWAP16 => {
                let n = (inst.op - op::SWAP1 + 1) as usize;
                self.ensure(n + 1);
                let top = self.0.len() - 1;
                self.0.swap(top, top - n);
            }
            op::ADD | op::SUB | op::MUL | op::AND | op::OR | op::XOR
                if self.peek(0).constant().is_some() && self.peek(1).constant().is_some() =>
            {
                let st = &mut self.0;
                let a = st.pop_back().and_then(Val::constant).unwrap();
                let b = st.pop_back().and_then(Val::constant).unwrap();
                st.push_back(Val::Const(fold(inst.op, a, b)));
            }
            _ => {
                let st = &mut self.0;
                let (inp, out) = stack_io(inst.op).unwrap_or((0, 0));
                for _ in 0..inp {
                    // Below what the block pushed: entry slots, consumed.
                    st.pop_back();
                }
                for _ in 0..out {
                    st.push_back(Val::Computed);
                }
            }
        }
    }
}

/// ADD, SUB, MUL, AND, OR or XOR (`op`) of the constants `a` (the top)
/// and `b`.
fn fold(op: u8, a: U256, b: U256) -> U256 {
    match op {
        op::ADD => a.wrapping_add(b),
        op::SUB => a.wrapping_sub(b),
        op::MUL => a.wrapping_mul(b),
        op::AND => a & b,
        op::OR => a | b,
        _ => a ^ b,
    }
}

/// What a scan of the whole code finds before blocks are formed.
pub(super) struct CodeFacts {
    /// Some JUMP or JUMPI jumps to a target its block computed (see
    /// [`Val::Computed`]): the code may reach JUMPDESTs no PUSH names.
    pub computes_jump_targets: bool,
    /// Code ranges `[start, end)` some CODECOPY with constant offset and
    /// size copies (merged, sorted): code of another contract this one deploys (a
    /// constructor's runtime code, a factory's child), or tables. Their
    /// JUMPDESTs are not this contract's computed targets.
    pub copied: Vec<(usize, usize)>,
}

impl CodeFacts {
    /// One pass over `insts`, each block's stack simulated from empty.
    pub(super) fn scan(insts: &[Inst], code_len: usize) -> Self {
        let mut st = BlockStack::default();
        let mut facts = CodeFacts {
            computes_jump_targets: false,
            copied: Vec::new(),
        };
        for inst in insts {
            if inst.op == op::JUMPDEST {
                st.clear();
            }
            if matches!(inst.op, op::JUMP | op::JUMPI) && st.peek(0) == Val::Computed {
                facts.computes_jump_targets = true;
            }
            if inst.op == op::CODECOPY {
                if let (Some(offset), Some(size)) = (st.peek(1).constant(), st.peek(2).constant()) {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX);
                    if start < code_len {
                        let size = usize::try_from(size).unwrap_or(usize::MAX);
                        facts
                            .copied
                            .push((start, start.saturating_add(size).min(code_len)));
                    }
                }
            }
            st.apply(inst);
            if ends_block(inst.op) {
                st.clear();
            }
        }
        // Disjoint and sorted, for a binary search per JUMPDEST.
        facts.copied.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(facts.copied.len());
        for (s, e) in facts.copied.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        facts.copied = merged;
        facts
    }

    /// Whether `pc` lies in a copied range.
    pub(super) fn is_copied(&self, pc: usize) -> bool {
        let n = self.copied.partition_point(|&(s, _)| s <= pc);
        n > 0 && pc < self.copied[n - 1].1
    }
}

/// Deepest stack slot whose constant is carried into a block: DUP16 and
/// SWAP16 reach 17 words down, and compilers keep constants a few calls
/// deep; deeper slots are forgotten, which keeps the pass linear.
pub const MAX_ENTRY_CONSTS_DEPTH: usize = 64;

/// For each block, the stack slots known to hold a constant whenever it is
/// entered, as `(depth, value)` with depth 0 the top: only blocks entered
/// solely from one predecessor ([`Analysis::single_predecessors`]) get
/// any, those their predecessor leaves there (a straight-line run cut
/// into blocks, a JUMPI's fall-through, a block reached by one static
/// jump). Code generation then folds what those constants feed, as it does
/// inside a block, even where the stack passed through memory.
pub(super) fn entry_constants(a: &Analysis) -> Vec<Vec<(u16, U256)>> {
    down_single_predecessors(a, |b, entry: &Vec<(u16, U256)>| exit_constants(a, b, entry))
}

/// What each block is entered with, for a fact that blocks entered from
/// one predecessor only inherit from it (`exit(b, entry)`: what block `b`
/// leaves when entered with `entry`) and every other block starts without
/// (`T::default()`). Roots first, then each block after its only
/// predecessor; a block is visited once (it has one predecessor), so the
/// walk is linear.
fn down_single_predecessors<T: Clone + Default>(
    a: &Analysis,
    mut exit: impl FnMut(usize, &T) -> T,
) -> Vec<T> {
    let preds = a.single_predecessors();
    let n = a.blocks.len();
    let children = super::plan::children_of(&preds);
    let mut out: Vec<T> = vec![T::default(); n];
    let mut work: Vec<usize> = (0..n)
        .filter(|&b| preds[b].is_none() && a.blocks[b].reachable)
        .collect();
    while let Some(b) = work.pop() {
        if children[b].is_empty() {
            continue;
        }
        let left = exit(b, &out[b]);
        for &c in &children[b] {
            out[c] = left.clone();
            work.push(c);
        }
    }
    out
}

/// The constants on the stack after block `b` (its jump's operands
/// consumed), entered with `entry`.
fn exit_constants(a: &Analysis, b: usize, entry: &[(u16, U256)]) -> Vec<(u16, U256)> {
    let mut st = BlockStack::entered_with(entry);
    for inst in a.blocks[b].insts(a) {
        st.apply(inst);
    }
    st.0.iter()
        .rev()
        .take(MAX_ENTRY_CONSTS_DEPTH)
        .enumerate()
        .filter_map(|(d, v)| v.constant().map(|c| (d as u16, c)))
        .collect()
}

/// The end of the memory `inst` reads or writes, when it is an MLOAD,
/// MSTORE or MSTORE8 at an offset known here and below 2^32.
fn constant_access_end(st: &BlockStack, inst: &Inst) -> Option<u64> {
    let size = match inst.op {
        op::MLOAD | op::MSTORE => 32,
        op::MSTORE8 => 1,
        _ => return None,
    };
    let offset = st.peek(0).constant()?;
    let offset = u32::try_from(offset).ok()? as u64;
    Some(offset + size)
}

/// The MLOAD/MSTORE/MSTORE8 whose memory is always there when generated
/// code reaches them, by pc, with their offset: they need no bounds check,
/// charge no expansion and cannot halt; and the memory every frame has
/// once its first block has run (the floor), rounded up to words.
///
/// Every frame starts with its first block and leaves it only at its end
/// (or halts), and memory never shrinks, so every other block runs with at
/// least what that block's constant-offset accesses reached. Solidity's
/// first block stores the free memory pointer (`PUSH1 0x80 PUSH1 0x40
/// MSTORE`): 0x60. What a block can count on at its start: nothing for the
/// first block (a frame starts there with no memory); what its
/// predecessor had at its end, for a block generated code enters only from
/// that one block ([`Analysis::single_predecessors`]: the predecessor then
/// ran from its start, natively); the floor for every other block, a
/// resume point included (the frame may have reached it through the
/// interpreter, by any path). Inside a block, each access at a constant
/// offset that did not halt leaves at least its end. A walk from the
/// roots, each block once: linear in the code.
pub(super) fn covered_accesses(a: &Analysis) -> (u64, BTreeMap<u32, u32>) {
    // Per pc: its offset and the blocks that proved it. A pc lies in its
    // block and in every copy of it (`clones`), each walked in its own
    // context; it is covered when all of them that are reachable prove it.
    let mut proofs: BTreeMap<u32, (u32, usize)> = BTreeMap::new();
    // The first block is a root and starts with nothing.
    let floor = covered_in_block(a, 0, 0, &mut proofs);
    let preds = a.single_predecessors();
    let children = super::plan::children_of(&preds);
    let n = a.blocks.len();
    // The floor is what the first block leaves: its children start there.
    let mut start = vec![floor; n];
    let mut work: Vec<usize> = (1..n)
        .filter(|&b| preds[b].is_none() && a.blocks[b].reachable)
        .chain(children[0].iter().copied())
        .collect();
    while let Some(b) = work.pop() {
        let end = covered_in_block(a, b, start[b], &mut proofs);
        for &c in &children[b] {
            start[c] = end;
            work.push(c);
        }
    }
    // Reachable instances of each original block.
    let mut instances = vec![0usize; n];
    for (i, b) in a.blocks.iter().enumerate().filter(|(_, b)| b.reachable) {
        instances[b.clone_of.unwrap_or(i)] += 1;
    }
    // Originals are in pc order; copies come after them.
    let originals = a.blocks.iter().take_while(|b| b.clone_of.is_none()).count();
    let block_of = |pc: u32| a.blocks[..originals].partition_point(|b| b.start_pc <= pc) - 1;
    let covered = proofs
        .into_iter()
        .filter(|&(pc, (_, proved))| proved == instances[block_of(pc)])
        .map(|(pc, (offset, _))| (pc, offset))
        .collect();
    (floor, covered)
}

/// Records the accesses of block `b` covered by the `has` bytes it starts
/// with in `proofs` (one more block proving each); returns what it leaves.
fn covered_in_block(
    a: &Analysis,
    b: usize,
    mut has: u64,
    proofs: &mut BTreeMap<u32, (u32, usize)>,
) -> u64 {
    let mut st = BlockStack::entered_with(&a.entry_consts[b]);
    for inst in a.blocks[b].insts(a) {
        if let Some(end) = constant_access_end(&st, inst) {
            if end <= has {
                let size = if inst.op == op::MSTORE8 { 1 } else { 32 };
                let offset = (end - size) as u32;
                let proof = proofs.entry(inst.pc).or_insert((offset, 0));
                // Copies entered with other constants may access another
                // offset at the same pc: then no instance is covered.
                proof.1 = match proof.0 == offset {
                    true => proof.1.saturating_add(1),
                    false => usize::MAX,
                };
            }
            has = has.max(end.div_ceil(32) * 32);
        }
        st.apply(inst);
    }
    has
}

/// For each block, the stack slots known to hold a word below 2^64
/// whenever it is entered, as a mask (bit `d`: the slot `d` below the top,
/// below [`MAX_ENTRY_CONSTS_DEPTH`]). Like [`entry_constants`], only blocks
/// entered solely from one predecessor get any: what that predecessor
/// leaves there.
///
/// The facts are the EVM's, whoever runs the code: a frame that goes on
/// after an MLOAD, MSTORE or MSTORE8 had an offset below 2^64 (a larger
/// one runs out of gas), and so has every copy of that word still on the
/// stack. Code generation takes such a word from memory as its low limb
/// (and already knows it for the words it holds as values), so that LLVM
/// computes what follows from it in one or two limbs: a pointer kept on
/// the stack and the offsets added to it, a stride read from calldata once
/// it has been used.
pub(super) fn entry_small_words(a: &Analysis) -> Vec<u64> {
    down_single_predecessors(a, |b, &entry| exit_small_words(a, b, entry))
}

/// One word as [`exit_small_words`] follows it: copies of the same word
/// share an `id`; `konst` is its value when the block pushed or folded it.
#[derive(Clone, Copy)]
struct Word {
    id: usize,
    konst: Option<U256>,
}

/// The stack of one block for [`exit_small_words`]: slots below what the
/// block pushed are materialised as they are reached.
struct SmallStack {
    words: VecDeque<Word>,
    /// By id: the word is below 2^64.
    small: Vec<bool>,
    /// The entry mask, and how many entry slots are materialised.
    entry: u64,
    entry_depth: usize,
}

impl SmallStack {
    fn fresh(&mut self, small: bool, konst: Option<U256>) -> Word {
        self.small.push(small);
        Word {
            id: self.small.len() - 1,
            konst,
        }
    }

    fn ensure(&mut self, n: usize) {
        while self.words.len() < n {
            let d = self.entry_depth;
            self.entry_depth += 1;
            let w = self.fresh(d < 64 && self.entry >> d & 1 == 1, None);
            self.words.push_front(w);
        }
    }

    fn push_new(&mut self, small: bool, konst: Option<U256>) {
        let w = self.fresh(small, konst);
        self.words.push_back(w);
    }

    fn apply(&mut self, inst: &Inst) {
        let below_2_64 = |v: U256| v < U256::from(1u128 << 64);
        match inst.op {
            op::PUSH0..=op::PUSH32 => self.push_new(below_2_64(inst.imm), Some(inst.imm)),
            op::DUP1..=op::DUP16 => {
                let k = (inst.op - op::DUP1 + 1) as usize;
                self.ensure(k);
                let w = self.words[self.words.len() - k];
                self.words.push_back(w);
            }
            op::SWAP1..=op::SWAP16 => {
                let k = (inst.op - op::SWAP1 + 1) as usize;
                self.ensure(k + 1);
                let top = self.words.len() - 1;
                self.words.swap(top, top - k);
            }
            _ => {
                let (inp, out) = stack_io(inst.op).unwrap_or((0, 0));
                self.ensure(inp as usize);
                let args: Vec<Word> = (0..inp).map(|_| self.words.pop_back().unwrap()).collect();
                let konst = |i: usize| args[i].konst;
                match inst.op {
                    // The frame goes on only with an offset below 2^64.
                    op::MLOAD | op::MSTORE | op::MSTORE8 => self.small[args[0].id] = true,
                    // `x + 0` is `x`: every copy of it.
                    op::ADD if konst(0) == Some(U256::ZERO) => {
                        return self.words.push_back(args[1])
                    }
                    op::ADD if konst(1) == Some(U256::ZERO) => {
                        return self.words.push_back(args[0])
                    }
                    op::ADD | op::SUB | op::MUL | op::AND | op::OR | op::XOR
                        if konst(0).is_some() && konst(1).is_some() =>
                    {
                        let v = fold(inst.op, konst(0).unwrap(), konst(1).unwrap());
                        return self.push_new(below_2_64(v), Some(v));
                    }
                    _ => {}
                }
                // Results no larger than a small operand, and flags, bytes
                // and sizes.
                let is_small = |i: usize| self.small[args[i].id];
                let small = match inst.op {
                    op::AND | op::MOD => is_small(0) || is_small(1),
                    op::DIV => is_small(0),
                    op::LT
                    | op::GT
                    | op::SLT
                    | op::SGT
                    | op::EQ
                    | op::ISZERO
                    | op::BYTE
                    | op::PC
                    | op::MSIZE
                    | op::GAS
                    | op::CALLDATASIZE
                    | op::CODESIZE
                    | op::RETURNDATASIZE => true,
                    _ => false,
                };
                for _ in 0..out {
                    self.push_new(small, None);
                }
            }
        }
    }
}

/// The mask of [`entry_small_words`] after block `b`, entered with
/// `entry`.
fn exit_small_words(a: &Analysis, b: usize, entry: u64) -> u64 {
    let mut st = SmallStack {
        words: VecDeque::new(),
        small: Vec::new(),
        entry,
        entry_depth: 0,
    };
    for inst in a.blocks[b].insts(a) {
        st.apply(inst);
    }
    let mut mask = 0u64;
    for (d, w) in st.words.iter().rev().take(64).enumerate() {
        if st.small[w.id] {
            mask |= 1 << d;
        }
    }
    // Entry slots the block never reached stay as they were, deeper by
    // what the block left above them.
    let rest = entry.checked_shr(st.entry_depth as u32).unwrap_or(0);
    mask | rest.checked_shl(st.words.len() as u32).unwrap_or(0)
}
