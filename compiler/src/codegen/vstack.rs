//! The EVM stack as SSA values inside a block.
//!
//! The in-memory stack holds `base` words when the block (or the last builtin
//! call) started. Words consumed from it are loaded lazily (`popped` counts
//! them); words produced in the block sit in `vals` until written back. A
//! word whose value was loaded from memory and that ends up back in the same
//! slot is not stored again. Words of the array known to hold a constant
//! (`known`) are taken as that constant instead of a load, so that what
//! they feed folds as it does for a word pushed in the block.

use super::part::PartGen;
use super::tbaa::Region;
use super::R;
use inkwell::values::{BasicValueEnum, InstructionOpcode, IntValue, Operand};

#[derive(Clone, Copy)]
pub(crate) struct Slot<'ctx> {
    pub v: IntValue<'ctx>,
    /// Stack slot (relative to `base`) this value was loaded from, if any.
    pub origin: Option<i64>,
}

#[derive(Clone)]
pub(crate) struct VStack<'ctx> {
    pub base: IntValue<'ctx>,
    pub popped: i64,
    pub vals: Vec<Slot<'ctx>>,
    /// Slots of the array (relative to `base`, below `-popped`) that hold a
    /// constant: the analysis's entry constants, and constants flushed by
    /// a commit. At most [`MAX_KNOWN`], the nearest the top.
    pub known: Vec<(i64, IntValue<'ctx>)>,
    /// Slots of the array below 2^64 (bit `d`: the word at `base - 1 - d`;
    /// the analysis's `entry_small`): loaded as their low limb.
    pub small: u64,
}

/// Most constants a virtual stack remembers below its values (the
/// analysis's own bound; deeper words are loaded).
const MAX_KNOWN: usize = crate::analysis::MAX_ENTRY_CONSTS_DEPTH;

impl<'ctx> VStack<'ctx> {
    pub(super) fn new(base: IntValue<'ctx>) -> Self {
        Self {
            base,
            popped: 0,
            vals: Vec::new(),
            known: Vec::new(),
            small: 0,
        }
    }

    /// Records that the word `depth` below `base`'s top (0: the word at
    /// `base - 1`) is the constant `v`.
    pub(super) fn know(&mut self, depth: usize, v: IntValue<'ctx>) {
        if self.known.len() < MAX_KNOWN {
            self.known.push((-(depth as i64) - 1, v));
        }
    }

    fn slot_ptr(
        &self,
        g: &PartGen<'_, '_, 'ctx>,
        rel: i64,
    ) -> R<inkwell::values::PointerValue<'ctx>> {
        // stack_base + base * 32 + rel * 32; the block's stack check proves it
        // in range. Every slot of the block is a constant offset from one
        // pointer (CSE'd): computing `(base + rel) * 32` instead lets
        // InstCombine turn some of the adds into `or disjoint` once the
        // check bounds `base`, and the backend then no longer sees one base
        // for the stores (a block of ~1000 pushes took a minute in codegen).
        let off = g.b.build_int_mul(self.base, g.const_i64(32), "")?;
        let top = unsafe { g.b.build_gep(g.i8, g.stack_base, &[off], "sp")? };
        unsafe {
            g.b.build_gep(
                g.i8,
                top,
                &[g.i64.const_int((rel * 32) as u64, true)],
                "slot",
            )
        }
    }

    /// Makes sure the top `n` words are in `vals`.
    pub(super) fn ensure(&mut self, g: &PartGen<'_, '_, 'ctx>, n: usize) -> R<()> {
        while self.vals.len() < n {
            self.popped += 1;
            let rel = -self.popped;
            if let Some(&(_, v)) = self.known.iter().find(|(r, _)| *r == rel) {
                // Memory holds the same word: not loaded, not stored back.
                self.vals.insert(
                    0,
                    Slot {
                        v,
                        origin: Some(rel),
                    },
                );
                continue;
            }
            let p = self.slot_ptr(g, rel)?;
            let depth = (self.popped - 1) as u32;
            let small = self.small.checked_shr(depth).unwrap_or(0) & 1 == 1;
            let ty = if small { g.i64 } else { g.i256 };
            let v = g.b.build_load(ty, p, "s")?.into_int_value();
            v.as_instruction().unwrap().set_alignment(8).unwrap();
            g.tbaa.tag(v.as_instruction().unwrap(), Region::Stack);
            // The low limb comes first in memory; the word is that limb
            // (so it need not be stored back either).
            let v = if small {
                g.b.build_int_z_extend(v, g.i256, "")?
            } else {
                v
            };
            self.vals.insert(
                0,
                Slot {
                    v,
                    origin: Some(rel),
                },
            );
        }
        Ok(())
    }

    pub(super) fn pop(&mut self, g: &PartGen<'_, '_, 'ctx>) -> R<IntValue<'ctx>> {
        self.ensure(g, 1)?;
        Ok(self.vals.pop().unwrap().v)
    }

    /// The `i`-th word from the top (0: the top) if it is held as a value
    /// here; words still in the stack array are not loaded.
    pub(super) fn peek(&self, i: usize) -> Option<IntValue<'ctx>> {
        self.vals.len().checked_sub(i + 1).map(|j| self.vals[j].v)
    }

    /// Takes `new` for every copy of `old` held here: the caller has
    /// proved they are the same word from this point on (where each
    /// copy came from, memory or not, is unchanged).
    pub(super) fn replace(&mut self, old: IntValue<'ctx>, new: IntValue<'ctx>) {
        for s in self.vals.iter_mut().filter(|s| s.v == old) {
            s.v = new;
        }
    }

    pub(super) fn push(&mut self, v: IntValue<'ctx>) {
        self.vals.push(Slot { v, origin: None });
    }

    pub(super) fn dup(&mut self, g: &PartGen<'_, '_, 'ctx>, n: usize) -> R<()> {
        self.ensure(g, n)?;
        let s = self.vals[self.vals.len() - n];
        self.vals.push(s);
        Ok(())
    }

    pub(super) fn swap(&mut self, g: &PartGen<'_, '_, 'ctx>, n: usize) -> R<()> {
        self.ensure(g, n + 1)?;
        let top = self.vals.len() - 1;
        self.vals.swap(top, top - n);
        Ok(())
    }

    /// Emits the stores that make memory match this state; returns the
    /// stack length. Does not change `self` (usable on side exits).
    pub(super) fn flush(&self, g: &PartGen<'_, '_, 'ctx>) -> R<IntValue<'ctx>> {
        self.flush_below(g, 0)
    }

    /// The current stack length.
    pub(super) fn len(&self, g: &PartGen<'_, '_, 'ctx>) -> R<IntValue<'ctx>> {
        self.offset(g, self.vals.len() as i64 - self.popped)
    }

    fn offset(&self, g: &PartGen<'_, '_, 'ctx>, delta: i64) -> R<IntValue<'ctx>> {
        if delta == 0 {
            Ok(self.base)
        } else {
            g.b.build_int_add(self.base, g.i64.const_int(delta as u64, true), "len")
        }
    }

    /// Emits the stores for all but the top `keep` words (which must be in
    /// `vals`); returns the length of the stack below them. Does not change
    /// `self`.
    pub(super) fn flush_below(&self, g: &PartGen<'_, '_, 'ctx>, keep: usize) -> R<IntValue<'ctx>> {
        let n = self.vals.len() - keep;
        for (i, s) in self.vals[..n].iter().enumerate() {
            let rel = i as i64 - self.popped;
            if s.origin == Some(rel) {
                continue;
            }
            let p = self.slot_ptr(g, rel)?;
            let st = g.b.build_store(p, s.v)?;
            st.set_alignment(8).unwrap();
            g.tbaa.tag(st, Region::Stack);
        }
        self.offset(g, n as i64 - self.popped)
    }

    /// Flushes on the main path: memory becomes authoritative, the state
    /// restarts empty at the new length, which is also stored to the length
    /// local for the next block. Returns the length.
    pub(super) fn commit(&mut self, g: &PartGen<'_, '_, 'ctx>) -> R<IntValue<'ctx>> {
        let len = self.flush(g)?;
        g.b.build_store(g.len_var, len)?;
        // The constants memory now holds, in the new length's terms: the
        // flushed values that are constants, and the known words below
        // what was popped (the words above them were overwritten).
        let shift = self.vals.len() as i64 - self.popped;
        let known: Vec<(i64, IntValue<'ctx>)> = self
            .vals
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, s)| s.v.is_constant_int())
            .map(|(i, s)| (i as i64 - self.popped - shift, s.v))
            .chain(
                self.known
                    .iter()
                    .filter(|(r, _)| *r < -self.popped)
                    .map(|&(r, v)| (r - shift, v)),
            )
            .take(MAX_KNOWN)
            .collect();
        // The small words: the flushed values that are zero-extended from
        // 64 bits or fewer, and those below what was popped, at their new
        // depths.
        let kept = self.small & u64::MAX.checked_shl(self.popped as u32).unwrap_or(0);
        let mut small = if shift >= 0 {
            kept.checked_shl(shift as u32).unwrap_or(0)
        } else {
            kept.checked_shr(-shift as u32).unwrap_or(0)
        };
        for (depth, s) in self.vals.iter().rev().enumerate().take(64) {
            if is_zext_of_small(s.v) {
                small |= 1 << depth;
            }
        }
        *self = VStack::new(len);
        self.known = known;
        self.small = small;
        Ok(len)
    }
}

/// Whether `v` is an integer of at most 64 bits zero-extended.
fn is_zext_of_small(v: IntValue<'_>) -> bool {
    v.as_instruction().is_some_and(|i| {
        i.get_opcode() == InstructionOpcode::ZExt
            && matches!(
                i.get_operand(0),
                Some(Operand::Value(BasicValueEnum::IntValue(o))) if o.get_type().get_bit_width() <= 64
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Analysis, Plan};
    use crate::codegen::ModuleGen;
    use crate::revm_api::SpecId;
    use evmc_interface::ArtifactMetadata;
    use inkwell::basic_block::BasicBlock;
    use inkwell::context::Context;
    use inkwell::values::InstructionOpcode;

    fn count(bb: BasicBlock<'_>, opcode: InstructionOpcode) -> usize {
        bb.get_instructions()
            .filter(|i| i.get_opcode() == opcode)
            .count()
    }

    /// Runs `f` on a fresh block of the only part of a one-block contract,
    /// with a virtual stack at the in-memory length; returns the loads (but
    /// that of the length) and the stores it emitted.
    fn emitted(
        f: impl for<'ctx> FnOnce(&PartGen<'_, '_, 'ctx>, &mut VStack<'ctx>),
    ) -> (usize, usize) {
        let a = Analysis::new(&[0x00]);
        let plan = Plan::new(&a, 1500, 1);
        let cx = Context::create();
        let mg = ModuleGen::declare(&cx, &plan, SpecId::CANCUN, &ArtifactMetadata::empty(), 0);
        let g = PartGen::new(&mg, 0).unwrap();
        let bb = g.new_bb("test");
        g.b.position_at_end(bb);
        let len = g.b.build_load(g.i64, g.len_var, "len").unwrap();
        let mut vs = VStack::new(len.into_int_value());
        f(&g, &mut vs);
        (
            count(bb, InstructionOpcode::Load) - 1,
            count(bb, InstructionOpcode::Store),
        )
    }

    #[test]
    fn pushes_stay_values_until_flushed() {
        let (loads, stores) = emitted(|g, vs| {
            vs.push(g.i256.const_int(1, false));
            vs.push(g.i256.const_int(2, false));
            assert_eq!(vs.peek(0).unwrap(), g.i256.const_int(2, false));
            assert_eq!(vs.peek(1).unwrap(), g.i256.const_int(1, false));
            assert!(vs.peek(2).is_none());
            vs.flush(g).unwrap();
            // Flushing does not change the state: the values stay held.
            assert_eq!(vs.vals.len(), 2);
        });
        assert_eq!((loads, stores), (0, 2));
    }

    #[test]
    fn words_read_from_memory_are_loaded_once_and_not_stored_back() {
        let (loads, stores) = emitted(|g, vs| {
            // DUP2: loads the top two words, pushes a copy of the second.
            vs.dup(g, 2).unwrap();
            assert_eq!(vs.popped, 2);
            vs.dup(g, 2).unwrap();
            assert_eq!(vs.popped, 2);
            // Only the two copies, above the original words, are stored.
            vs.flush(g).unwrap();
        });
        assert_eq!((loads, stores), (2, 2));
    }

    #[test]
    fn swapped_words_are_stored_in_their_new_slots() {
        let (loads, stores) = emitted(|g, vs| {
            vs.swap(g, 1).unwrap();
            vs.flush(g).unwrap();
        });
        assert_eq!((loads, stores), (2, 2));
        let (_, stores) = emitted(|g, vs| {
            // Swapping back restores both words to their slots.
            vs.swap(g, 1).unwrap();
            vs.swap(g, 1).unwrap();
            vs.flush(g).unwrap();
        });
        assert_eq!(stores, 0);
    }

    #[test]
    fn pops_below_the_values_load_lazily_and_commit_restarts_empty() {
        let (loads, stores) = emitted(|g, vs| {
            vs.push(g.i256.const_int(7, false));
            vs.pop(g).unwrap();
            vs.pop(g).unwrap();
            assert_eq!(vs.popped, 1);
            // One word below the entry is kept, the top is stored over it.
            vs.push(g.i256.const_int(8, false));
            vs.flush_below(g, 1).unwrap();
            vs.commit(g).unwrap();
            assert!(vs.vals.is_empty() && vs.popped == 0);
        });
        // The popped word's load; the store of 8 by the commit, and the
        // commit's store of the length.
        assert_eq!((loads, stores), (1, 2));
    }
}
