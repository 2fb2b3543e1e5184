//! Bytecode analysis: decoding, JUMPDESTs, basic blocks, statically resolved
//! jumps, per-block stack bounds and reachability; then the [`Plan`] code
//! generation follows (see [`plan`]).
//!
//! The JUMPDEST set is exactly the interpreter's: a `0x5b` byte is a
//! destination unless it lies inside PUSH immediate data. Code that ends in the
//! middle of PUSH data reads zeros for the missing bytes and then stops, as the
//! interpreter does on its zero-padded copy of the code.

mod clones;
mod decode;
mod display;
pub mod gain;
mod partition;
pub mod plan;
mod returns;
mod values;

pub use decode::{decode, Inst};
pub use gain::{too_short, too_short_why, MIN_NATIVE_RUN};
pub use plan::Plan;
pub use values::MAX_ENTRY_CONSTS_DEPTH;

use crate::revm_api::stack_io;
use revm::bytecode::opcode as op;
use std::collections::{BTreeMap, BTreeSet};
use values::{BlockStack, CodeFacts};

/// How control leaves a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// Falls into the next block (which starts at a JUMPDEST, or continues
    /// straight-line code longer than [`MAX_BLOCK_INSTS`]).
    Fallthrough,
    /// JUMP.
    Jump(JumpTarget),
    /// JUMPI; falls through when the condition is zero.
    JumpI(JumpTarget),
    /// STOP, or the end of the code.
    Stop,
    /// An instruction after which this frame never continues here: RETURN,
    /// REVERT, INVALID, SELFDESTRUCT, undefined opcodes.
    Exit,
    /// CALL/CREATE family: the frame suspends and resumes at the next block.
    Suspend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Where a JUMP or JUMPI goes, as far as analysis can tell.
pub enum JumpTarget {
    /// A constant target that is a valid JUMPDEST (its pc).
    Static(u32),
    /// A constant target that is not a JUMPDEST: the jump always fails.
    Invalid,
    /// Known only at run time: goes through the JUMPDEST dispatch.
    Dynamic,
}

/// Longest basic block, in instructions: longer straight-line code is cut
/// into blocks that fall into each other. The plan cuts a contract into
/// functions only at block boundaries, so without the cut one run of
/// thousands of instructions was one function whatever the part size, and
/// LLVM's instruction selection and register allocation are superlinear in
/// the size of a function (a 6 KiB run of MSTORE/MLOAD: 5.4 s at level 2).
/// The cut changes nothing a contract can observe: each block charges its
/// own gas, as after a JUMPDEST.
pub const MAX_BLOCK_INSTS: usize = 512;

/// Most JUMPDESTs that no PUSH pushes the dispatch may enter. Each one
/// starts a block, with its own gas check, and takes its stack from memory
/// when entered by falling through: cheap for the tens a hand-written
/// contract computes its jumps to (weierstrudel's jump tables reach 80 such
/// JUMPDESTs; without them each of its computed jumps left compiled code
/// for the interpreter), costly for a JUMPDEST-dense contract, whose runs
/// of JUMPDESTs are one block each above this count (a dynamic jump into
/// such a run then goes to the interpreter).
pub const MAX_COMPUTED_TARGETS: usize = 1024;

#[derive(Clone, Debug)]
/// A basic block: straight-line instructions ending in a [`Terminator`].
pub struct Block {
    /// Pc of its first instruction.
    pub start_pc: u32,
    /// Index range into [`Analysis::insts`].
    pub first: usize,
    /// End (exclusive) of the range into [`Analysis::insts`].
    pub end: usize,
    /// How it ends.
    pub term: Terminator,
    /// It starts with a JUMPDEST.
    pub is_jumpdest: bool,
    /// Starts right after a CALL/CREATE: generated code may be entered here.
    pub is_resume: bool,
    /// Reachable from the entry, a JUMPDEST or a resume point.
    pub reachable: bool,
    /// Stack items the block reads below its entry height.
    pub min_in: u16,
    /// Highest stack height reached above the entry height.
    pub max_growth: u16,
    /// Net stack height change over the block.
    pub delta: i16,
    /// The block it falls into (after a JUMPI, CALL/CREATE or straight-line
    /// code): the next one in pc order, or its copy inside a copy.
    pub next: Option<usize>,
    /// The block a jump resolved at compile time goes to
    /// ([`JumpTarget::Static`]): the JUMPDEST's block, or its copy.
    pub jump_to: Option<usize>,
    /// This block is a copy of that one, on a path through an internal
    /// function that knows where it returns (see `clones`).
    pub clone_of: Option<usize>,
}

impl Block {
    /// Its instructions.
    pub fn insts<'a>(&self, a: &'a Analysis) -> &'a [Inst] {
        &a.insts[self.first..self.end]
    }
}

#[derive(Clone, Debug)]
/// What analysis found out about one contract's bytecode.
pub struct Analysis {
    /// Length of the bytecode in bytes.
    pub code_len: usize,
    /// Every instruction, with the implicit STOP at the end.
    pub insts: Vec<Inst>,
    /// Basic blocks, in pc order.
    pub blocks: Vec<Block>,
    /// Every valid JUMPDEST's pc (a `0x5b` byte outside PUSH data), whether
    /// or not it starts a block: what the interpreter accepts as a jump
    /// target.
    pub all_jumpdests: BTreeSet<u32>,
    /// JUMPDEST pc -> block index, for the JUMPDESTs that start a block:
    /// those whose pc some PUSH pushes (see [`Analysis::new`]).
    pub jumpdests: BTreeMap<u32, usize>,
    /// Whether any reachable block jumps dynamically.
    pub has_dynamic_jumps: bool,
    /// The JUMPDESTs the dynamic-jump dispatch of generated code enters:
    /// those whose pc is pushed as a value that the next instruction does
    /// not consume as its jump target (return addresses and jump-table
    /// entries, what a dynamic jump of compiler-generated code reaches),
    /// and, when there are at most [`MAX_COMPUTED_TARGETS`] of them, the
    /// JUMPDESTs whose pc no PUSH pushes (what only a computed target
    /// reaches: hand-written code's jump tables read from memory or built
    /// by arithmetic). A dynamic jump to any other JUMPDEST hands the frame
    /// to the interpreter at that JUMPDEST, which is exact but slow.
    pub dynamic_targets: BTreeSet<u32>,
    /// For each block ending in a dynamic jump, the dynamic targets its
    /// jump was seen to take (return addresses; see [`returns`]): code
    /// generation tries them before the dispatch. Empty for other blocks.
    pub jump_guesses: Vec<Vec<usize>>,
    /// For each block, the stack slots that hold a constant whenever it is
    /// entered, as `(depth, value)`, top first (see
    /// `values::entry_constants`).
    pub entry_consts: Vec<Vec<(u16, crate::revm_api::U256)>>,
    /// For each block, the stack slots known to hold a word below 2^64
    /// when it is entered: bit `d` for the slot `d` below the top (see
    /// `values::entry_small_words`).
    pub entry_small: Vec<u64>,
    /// Bytes of memory every frame has once its first block has run (see
    /// `values::covered_accesses`).
    pub memory_floor: u64,
    /// MLOAD/MSTORE/MSTORE8 at a constant offset inside memory the frame
    /// always has by then (see `values::covered_accesses`): pc -> offset.
    /// No bounds check, no expansion, no halt, so they do not end a gas
    /// segment.
    pub covered_accesses: BTreeMap<u32, u32>,
    /// Blocks a profile saw no frame enter (see [`Analysis::keep_ran`]):
    /// code generation leaves each for the interpreter at its start.
    /// Empty when the contract is compiled whole.
    pub cold: Vec<bool>,
}

fn is_suspending(opcode: u8) -> bool {
    matches!(
        opcode,
        op::CALL | op::CALLCODE | op::DELEGATECALL | op::STATICCALL | op::CREATE | op::CREATE2
    )
}

fn is_exit(opcode: u8) -> bool {
    matches!(
        opcode,
        op::RETURN | op::REVERT | op::INVALID | op::SELFDESTRUCT
    ) || stack_io(opcode).is_none()
}

/// Ends a block after this instruction.
fn ends_block(opcode: u8) -> bool {
    matches!(opcode, op::JUMP | op::JUMPI | op::STOP) || is_exit(opcode) || is_suspending(opcode)
}

impl Analysis {
    /// Decodes and analyses `code`.
    ///
    /// A JUMPDEST starts a block if some PUSH in the code pushes its pc
    /// (every jump target known at compile time is such a constant: jumps
    /// are resolved by following PUSHed values), or if it is one of at most
    /// [`MAX_COMPUTED_TARGETS`] JUMPDESTs that only a computed jump can
    /// reach, in code that jumps to computed targets at all. Any other
    /// JUMPDEST is entered only by falling into it, or by a dynamic jump
    /// the dispatch hands to the interpreter. Such a JUMPDEST is one more
    /// instruction of the block it lies in: runs of JUMPDESTs cost one gas
    /// check, not one block, entry and check each.
    pub fn new(code: &[u8]) -> Self {
        Self::analyze(code, true)
    }

    /// [`Analysis::new`] without the copies of call paths (`clones`), for
    /// tests of what they would resolve.
    #[cfg(test)]
    pub(crate) fn without_copies(code: &[u8]) -> Self {
        Self::analyze(code, false)
    }

    fn analyze(code: &[u8], copies: bool) -> Self {
        let insts = decode(code);
        let all_jumpdests: BTreeSet<u32> = insts
            .iter()
            .filter(|i| i.op == op::JUMPDEST)
            .map(|i| i.pc)
            .collect();
        let pushed: BTreeSet<u32> = insts
            .iter()
            .filter(|i| matches!(i.op, op::PUSH0..=op::PUSH32))
            .filter_map(|i| u32::try_from(i.imm).ok())
            .filter(|pc| all_jumpdests.contains(pc))
            .collect();
        // JUMPDESTs only a computed jump can reach are worth entering only
        // in code that computes jump targets (compilers' code jumps to
        // pushed constants), and not inside code this one copies out to
        // deploy, whose targets are relative to where it lands.
        let facts = CodeFacts::scan(&insts, code.len());
        let mut computed: BTreeSet<u32> = if facts.computes_jump_targets {
            all_jumpdests
                .difference(&pushed)
                .copied()
                .filter(|&pc| !facts.is_copied(pc as usize))
                .collect()
        } else {
            BTreeSet::new()
        };
        if computed.len() > MAX_COMPUTED_TARGETS {
            computed.clear();
        }
        let entered: BTreeSet<u32> = pushed.union(&computed).copied().collect();
        let mut blocks: Vec<Block> = Vec::new();
        let mut jumpdests = BTreeMap::new();
        let mut start = 0usize;
        let mut prev_suspends = false;
        for i in 0..insts.len() {
            let inst = &insts[i];
            let starts_here = i == start;
            let cut = (inst.op == op::JUMPDEST && entered.contains(&inst.pc))
                || i - start >= MAX_BLOCK_INSTS;
            if cut && !starts_here {
                blocks.push(Self::make_block(&insts, start, i, prev_suspends));
                start = i;
                prev_suspends = false;
            }
            if ends_block(inst.op) || i + 1 == insts.len() {
                let b = Self::make_block(&insts, start, i + 1, prev_suspends);
                prev_suspends = is_suspending(inst.op);
                blocks.push(b);
                start = i + 1;
            }
        }
        for (idx, b) in blocks.iter().enumerate() {
            if b.is_jumpdest {
                jumpdests.insert(b.start_pc, idx);
            }
        }
        let dynamic_targets = insts
            .iter()
            .zip(insts.iter().skip(1).map(Some).chain([None]))
            .filter(|(inst, next)| {
                matches!(inst.op, op::PUSH1..=op::PUSH32)
                    && !matches!(next.map(|n| n.op), Some(op::JUMP | op::JUMPI))
            })
            .filter_map(|(inst, _)| u32::try_from(inst.imm).ok())
            .filter(|pc| jumpdests.contains_key(pc))
            .chain(computed)
            .collect();
        let mut a = Analysis {
            code_len: code.len(),
            insts,
            blocks,
            all_jumpdests,
            jumpdests,
            has_dynamic_jumps: false,
            dynamic_targets,
            jump_guesses: Vec::new(),
            entry_consts: Vec::new(),
            entry_small: Vec::new(),
            memory_floor: 0,
            covered_accesses: BTreeMap::new(),
            cold: Vec::new(),
        };
        a.resolve_jumps();
        a.mark_reachable();
        if copies && clones::copy_call_paths(&mut a) {
            a.mark_reachable();
        }
        a.jump_guesses = returns::guess_dynamic_targets(&a);
        a.entry_consts = values::entry_constants(&a);
        a.entry_small = values::entry_small_words(&a);
        (a.memory_floor, a.covered_accesses) = values::covered_accesses(&a);
        a
    }

    fn make_block(insts: &[Inst], first: usize, end: usize, is_resume: bool) -> Block {
        let (mut h, mut min_in, mut max_growth) = (0i32, 0i32, 0i32);
        for inst in &insts[first..end] {
            let (inp, out) = stack_io(inst.op).unwrap_or((0, 0));
            min_in = min_in.max(inp as i32 - h);
            h += out as i32 - inp as i32;
            max_growth = max_growth.max(h);
        }
        let last = insts[end - 1].op;
        let term = match last {
            op::JUMP => Terminator::Jump(JumpTarget::Dynamic),
            op::JUMPI => Terminator::JumpI(JumpTarget::Dynamic),
            op::STOP => Terminator::Stop,
            o if is_exit(o) => Terminator::Exit,
            o if is_suspending(o) => Terminator::Suspend,
            _ => Terminator::Fallthrough,
        };
        Block {
            start_pc: insts[first].pc,
            first,
            end,
            term,
            is_jumpdest: insts[first].op == op::JUMPDEST,
            is_resume,
            reachable: false,
            min_in: min_in as u16,
            max_growth: max_growth as u16,
            delta: h as i16,
            next: None,
            jump_to: None,
            clone_of: None,
        }
    }

    /// Follows constants through PUSH, DUP and SWAP inside each block to find
    /// jump targets known at compile time.
    fn resolve_jumps(&mut self) {
        for bi in 0..self.blocks.len() {
            let b = &self.blocks[bi];
            let kind = match b.term {
                Terminator::Jump(_) | Terminator::JumpI(_) => b.term,
                _ => continue,
            };
            let mut st = BlockStack::default();
            let body = &self.insts[b.first..b.end - 1];
            for inst in body {
                st.apply(inst);
            }
            let target = st.peek(0).constant();
            let resolved = match target.map(u32::try_from) {
                None => JumpTarget::Dynamic,
                Some(Ok(pc)) if self.jumpdests.contains_key(&pc) => JumpTarget::Static(pc),
                // A valid JUMPDEST that starts no block; cannot happen (the
                // constant was pushed), but the dispatch would hand it to
                // the interpreter, exactly.
                Some(Ok(pc)) if self.all_jumpdests.contains(&pc) => JumpTarget::Dynamic,
                Some(_) => JumpTarget::Invalid,
            };
            self.blocks[bi].term = match kind {
                Terminator::Jump(_) => Terminator::Jump(resolved),
                _ => Terminator::JumpI(resolved),
            };
        }
        let n = self.blocks.len();
        for bi in 0..n {
            let b = &mut self.blocks[bi];
            b.next = (bi + 1 < n).then_some(bi + 1);
            b.jump_to = match b.term {
                Terminator::Jump(JumpTarget::Static(pc))
                | Terminator::JumpI(JumpTarget::Static(pc)) => Some(self.jumpdests[&pc]),
                _ => None,
            };
        }
    }

    /// Marks what the entry reaches (again after `clones` rewired edges).
    fn mark_reachable(&mut self) {
        for b in &mut self.blocks {
            b.reachable = false;
        }
        self.has_dynamic_jumps = false;
        let mut work = vec![0usize];
        let mut dynamic_done = false;
        while let Some(bi) = work.pop() {
            if self.blocks[bi].reachable {
                continue;
            }
            self.blocks[bi].reachable = true;
            work.extend(self.static_successors(bi));
            let dynamic = matches!(
                self.blocks[bi].term,
                Terminator::Jump(JumpTarget::Dynamic) | Terminator::JumpI(JumpTarget::Dynamic)
            );
            if dynamic && !dynamic_done {
                dynamic_done = true;
                self.has_dynamic_jumps = true;
                work.extend(self.dynamic_targets.iter().map(|pc| self.jumpdests[pc]));
            }
        }
    }
}

impl Analysis {
    /// Compiles only the blocks whose first instruction is in `ran` (the
    /// pcs a profile saw executed): every other block becomes cold, an
    /// exit to the interpreter at its start with the state it has there
    /// (see [`crate::profile`]). Copies of a block share its start, and so
    /// its temperature.
    pub fn keep_ran(&mut self, ran: &crate::RanPcs) {
        self.cold = self
            .blocks
            .iter()
            .map(|b| !ran.contains(b.start_pc))
            .collect();
    }

    /// Whether block `b` is left to the interpreter (see [`Analysis::keep_ran`]).
    pub fn is_cold(&self, b: usize) -> bool {
        self.cold.get(b).copied().unwrap_or(false)
    }

    /// What block `b` weighs in the cut into parts and shards: its
    /// instructions, or one for a cold block (a store and an exit).
    pub(crate) fn weight(&self, b: usize) -> usize {
        if self.is_cold(b) {
            1
        } else {
            self.blocks[b].end - self.blocks[b].first
        }
    }

    /// The sum of every block's [`Analysis::weight`].
    pub(crate) fn weighted_len(&self) -> usize {
        if self.cold.is_empty() {
            return self.insts.len();
        }
        (0..self.blocks.len()).map(|b| self.weight(b)).sum()
    }

    /// For each block, the block it can only be entered from, if there is
    /// exactly one such static edge: not the entry block, not a resume point
    /// (entered from the runtime), not a JUMPDEST that a dynamic jump may
    /// reach. Code generation hands such a block its predecessor's stack
    /// values directly instead of passing them through memory.
    pub fn single_predecessors(&self) -> Vec<Option<usize>> {
        let n = self.blocks.len();
        let mut count = vec![0u32; n];
        let mut from = vec![None; n];
        for (a, blk) in self.blocks.iter().enumerate() {
            if !blk.reachable {
                continue;
            }
            for s in self.static_successors(a) {
                count[s] += 1;
                from[s] = Some(a);
            }
        }
        (0..n)
            .map(|s| {
                let b = &self.blocks[s];
                let open = s == 0
                    || !b.reachable
                    || b.is_resume
                    || self.is_dynamic_target(s)
                    || count[s] != 1;
                if open {
                    None
                } else {
                    from[s].filter(|&a| a != s)
                }
            })
            .collect()
    }

    /// Whether the dynamic-jump dispatch of generated code enters block `b`.
    pub fn is_dynamic_target(&self, b: usize) -> bool {
        let blk = &self.blocks[b];
        self.has_dynamic_jumps
            && blk.is_jumpdest
            && blk.clone_of.is_none()
            && self.dynamic_targets.contains(&blk.start_pc)
    }

    /// The blocks `b` continues into by falling through or by a jump
    /// resolved at compile time.
    pub fn static_successors(&self, b: usize) -> impl Iterator<Item = usize> + '_ {
        let blk = &self.blocks[b];
        successors_by(blk.term, blk.next, blk.jump_to)
    }
}

/// The blocks a block ending in `term` continues into, given where it
/// falls (`next`) and where its static jump goes (`jump_to`).
fn successors_by(
    term: Terminator,
    next: Option<usize>,
    jump_to: Option<usize>,
) -> impl Iterator<Item = usize> {
    let (fall, jump) = match term {
        Terminator::Fallthrough | Terminator::Suspend => (next, None),
        Terminator::Jump(_) => (None, jump_to),
        Terminator::JumpI(_) => (next, jump_to),
        Terminator::Stop | Terminator::Exit => (None, None),
    };
    fall.into_iter().chain(jump)
}

/// Constant propagation over one instruction; unknown values are `None`.
#[cfg(test)]
mod tests;
