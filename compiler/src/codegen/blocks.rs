//! Lowering of blocks: entry (inherited virtual stack, phis or memory,
//! with the stack-bounds check), gas segments, terminators and the
//! transfers between blocks, and the dispatch of dynamic jumps.

use super::part::PartGen;
use super::vstack::VStack;
use super::{lowering, Lowering, R};
use crate::analysis::{Block, Inst, JumpTarget, Terminator};
use evmc_interface::STACK_LIMIT;
use inkwell::basic_block::BasicBlock;
use inkwell::values::{IntValue, PhiValue};
use inkwell::IntPredicate;
use revm::bytecode::opcode as op;

/// Longest run of EVM instructions lowered into one LLVM basic block.
const SPLIT_EVERY: usize = 256;

/// Covered memory accesses (`Analysis::covered_accesses`) do not end a gas
/// segment, so that Solidity's short runs around the free memory pointer
/// share one check. In hand-written code that addresses memory at
/// constant offsets (Huff's blake2b) they joined runs of hundreds of
/// instructions into one LLVM block, whose code generation is superlinear
/// in its size (blake2b_huff compiled in 1.7 s instead of 1.2-1.3 s): from
/// this many instructions on, a segment ends at the next covered access,
/// as it did before (0.9-1.0 s).
const MERGED_SEGMENT_INSTS: usize = 32;

impl<'ctx> PartGen<'_, '_, 'ctx> {
    pub(super) fn gen_block(&mut self, bi: usize) -> R<()> {
        let bb = self.block_bbs[bi].unwrap();
        self.b.position_at_end(bb);
        let vs = match self.inherited[bi].take() {
            Some(vs) => vs,
            None if self.plan.phi_words[bi] > 0 => {
                let (base, words) = self.phis_of(bi)?;
                let mut vs = VStack::new(base.as_basic_value().into_int_value());
                for w in words {
                    vs.push(w.as_basic_value().into_int_value());
                }
                self.know_entry_constants(bi, &mut vs);
                // Phis are left as they are: a counter's phi must stay one
                // for `narrow_counters`.
                let n = vs.vals.len() as u32;
                vs.small = self.a.entry_small[bi].checked_shr(n).unwrap_or(0);
                vs
            }
            // A cold block entered with its stack in memory: the length is
            // in its local already, so the hand-over needs no entry check
            // (whose failure would hand over at the same pc).
            None if self.a.is_cold(bi) => {
                return self.deopt_at(self.a.blocks[bi].start_pc as u64);
            }
            None => {
                let mut vs = self.enter_from_memory(bi)?;
                self.know_entry_constants(bi, &mut vs);
                vs.small = self.a.entry_small[bi];
                vs
            }
        };
        self.gen_block_body(bi, vs)
    }

    /// Gives a block's virtual stack the words the analysis knows to be
    /// constants on entry (`entry_consts`): a word taken as a phi is
    /// replaced by its constant (the phi's value on every edge), a word in
    /// memory is taken as its constant instead of a load.
    fn know_entry_constants(&self, bi: usize, vs: &mut VStack<'ctx>) {
        let in_vals = vs.vals.len();
        for (depth, v) in &self.a.entry_consts[bi] {
            let c = self.i256.const_int_arbitrary_precision(v.as_limbs());
            match (*depth as usize).checked_sub(in_vals) {
                Some(below) => vs.know(below, c),
                None => vs.vals[in_vals - 1 - *depth as usize].v = c,
            }
        }
    }

    /// The phis at the start of block `to` (see [`crate::analysis::Plan`]).
    fn phis_of(&mut self, to: usize) -> R<(PhiValue<'ctx>, Vec<PhiValue<'ctx>>)> {
        if let Some(p) = &self.phis[to] {
            return Ok(p.clone());
        }
        let here = self.b.get_insert_block();
        self.b.position_at_end(self.block_bbs[to].unwrap());
        let base = self.b.build_phi(self.i64, "base")?;
        let words = (0..self.plan.phi_words[to])
            .map(|_| self.b.build_phi(self.i256, "w"))
            .collect::<R<Vec<_>>>()?;
        if let Some(bb) = here {
            self.b.position_at_end(bb);
        }
        self.phis[to] = Some((base, words.clone()));
        Ok((base, words))
    }

    /// An edge into block `to`, which takes its top words as phis. Its stack
    /// check is done here, before the words are loaded: a failure commits
    /// the stack and deopts at `to`, as its own check would.
    pub(super) fn enter_with_phis(&mut self, to: usize, mut vs: VStack<'ctx>) -> R<()> {
        let k = self.plan.phi_words[to];
        let len = vs.len(self)?;
        if let Some(bad) = self.check_entry_len(to, len, "edge")? {
            let good = self.b.get_insert_block().unwrap();
            self.b.position_at_end(bad);
            let committed = vs.flush(self)?;
            self.b.build_store(self.len_var, committed)?;
            self.deopt_at(self.a.blocks[to].start_pc as u64)?;
            self.b.position_at_end(good);
        }
        vs.ensure(self, k)?;
        let base = vs.flush_below(self, k)?;
        let (base_phi, words) = self.phis_of(to)?;
        let from = self.b.get_insert_block().unwrap();
        base_phi.add_incoming(&[(&base, from)]);
        let top = &vs.vals[vs.vals.len() - k..];
        for (phi, slot) in words.iter().zip(top) {
            phi.add_incoming(&[(&slot.v, from)]);
        }
        self.b
            .build_unconditional_branch(self.block_bbs[to].unwrap())?;
        Ok(())
    }

    /// Starts a block whose stack is in memory: checks the entry length
    /// against the bounds of the block and of all blocks that inherit from
    /// it, once.
    fn enter_from_memory(&mut self, bi: usize) -> R<VStack<'ctx>> {
        let blk: &Block = &self.a.blocks[bi];
        let len = self
            .b
            .build_load(self.i64, self.len_var, "len")?
            .into_int_value();
        let vs = VStack::new(len);
        if let Some(bad) = self.check_entry_len(bi, len, "stack")? {
            let ok = self.b.get_insert_block().unwrap();
            self.b.position_at_end(bad);
            self.deopt_at(blk.start_pc as u64)?;
            self.b.position_at_end(ok);
        }
        Ok(vs)
    }

    /// Branches on `len` lying within the entry bounds of block `bi` (see
    /// [`crate::analysis::Plan`]) and continues where it does; returns the block
    /// taken where it does not, or `None` if every length fits.
    fn check_entry_len(
        &self,
        bi: usize,
        len: IntValue<'ctx>,
        name: &str,
    ) -> R<Option<BasicBlock<'ctx>>> {
        let (lower, upper) = self.plan.bounds[bi];
        let mut conds = Vec::new();
        if lower > 0 {
            conds.push(self.b.build_int_compare(
                IntPredicate::UGE,
                len,
                self.const_i64(lower as u64),
                "",
            )?);
        }
        if upper < 0 {
            // No entry height fits: the region always fails (the
            // interpreter decides where and how).
            conds.push(self.i1.const_zero());
        } else if upper < STACK_LIMIT as i64 {
            conds.push(self.b.build_int_compare(
                IntPredicate::ULE,
                len,
                self.const_i64(upper as u64),
                "",
            )?);
        }
        let Some(mut c) = conds.pop() else {
            return Ok(None);
        };
        for o in conds {
            c = self.b.build_and(c, o, "")?;
        }
        let c = self.likely(c)?;
        let ok = self.new_bb(&format!("{name}_ok"));
        let bad = self.new_bb(&format!("{name}_bad"));
        self.b.build_conditional_branch(c, ok, bad)?;
        self.b.position_at_end(ok);
        Ok(Some(bad))
    }

    fn gen_block_body(&mut self, bi: usize, mut vs: VStack<'ctx>) -> R<()> {
        let blk: &Block = &self.a.blocks[bi];
        if self.a.is_cold(bi) {
            // Left to the interpreter, from the block's start, with the
            // words it was handed (inherited or phis) committed.
            let committed = vs.flush(self)?;
            self.b.build_store(self.len_var, committed)?;
            return self.deopt_at(blk.start_pc as u64);
        }
        let insts = blk.insts(self.a);
        let n = insts.len();
        let splits_after = |i: usize| (i + 1).is_multiple_of(SPLIT_EVERY) && i + 2 < n;
        let mut need_gas_check = true;
        let mut after = vec![0u64; n];
        let mut seg_end = 0;
        // The last instruction of the memory run being lowered, if any.
        let mut run_last = None;
        for (i, inst) in insts.iter().enumerate() {
            if need_gas_check {
                let limit = (i..n).find(|&j| splits_after(j)).unwrap_or(n - 1);
                if let Some(run) = self.memory_run(insts, i, limit) {
                    self.pay_for_run(&mut vs, insts, i, &run)?;
                    run_last = Some(run.last);
                    need_gas_check = false;
                }
            }
            if let Some(last) = run_last {
                self.gen_run_inst(&mut vs, inst)?;
                if i == last {
                    run_last = None;
                    need_gas_check = true;
                }
                if splits_after(i) {
                    self.split_after(&mut vs, insts, i)?;
                    need_gas_check = true;
                }
                continue;
            }
            if need_gas_check {
                // Charge this segment: up to and including the next instruction
                // whose gas is dynamic, or the end of the block.
                let mut end = i;
                while end + 1 < n && !self.ends_segment(&insts[end], end - i) && !splits_after(end)
                {
                    end += 1;
                }
                seg_end = end;
                let costs: Vec<u64> = insts[i..=end]
                    .iter()
                    .map(|x| self.gas_table[x.op as usize] as u64)
                    .collect();
                let total: u64 = costs.iter().sum();
                let mut acc = total;
                for (k, c) in costs.iter().enumerate() {
                    acc -= c;
                    after[i + k] = acc;
                }
                if total > 0 {
                    self.charge_segment(total)?;
                }
                need_gas_check = false;
            }
            let is_last = i + 1 == n;
            if is_last && matches!(inst.op, op::JUMP | op::JUMPI | op::STOP) {
                break;
            }
            self.gen_inst(&mut vs, inst, after[i])?;
            if i == seg_end {
                need_gas_check = true;
            }
            if splits_after(i) {
                self.split_after(&mut vs, insts, i)?;
                need_gas_check = true;
            }
        }
        self.gen_terminator(bi, vs)
    }

    /// Instruction selection and scheduling are superlinear in the size of
    /// one LLVM block: very long straight-line code is cut in pieces after
    /// `insts[i]`, passing the stack through memory, each charging its own
    /// gas. The IR pipeline would merge pieces joined by a plain branch
    /// back into one block, so the branch tests a value LLVM cannot see is
    /// always false (a register zeroed by inline assembly); the other side
    /// deopts at the next instruction, exact if ever taken.
    fn split_after(&self, vs: &mut VStack<'ctx>, insts: &[Inst], i: usize) -> R<()> {
        vs.commit(self)?;
        let next = self.new_bb("split");
        let never = self.opaque_false()?;
        let cold = self.new_bb("split_deopt");
        self.b.build_conditional_branch(never, cold, next)?;
        self.b.position_at_end(cold);
        self.deopt_at(insts[i + 1].pc as u64)?;
        self.b.position_at_end(next);
        Ok(())
    }

    /// `false`, computed where LLVM cannot see it.
    fn opaque_false(&self) -> R<IntValue<'ctx>> {
        let ty = self.i32.fn_type(&[], false);
        let asm = self.cx.create_inline_asm(
            ty,
            "xorl $0, $0".to_string(),
            "=r".to_string(),
            false,
            false,
            None,
            false,
        );
        let v = self
            .b
            .build_indirect_call(ty, asm, &[], "zero")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        self.b
            .build_int_compare(IntPredicate::NE, v, self.i32.const_zero(), "never")
    }

    /// Whether the gas segment ends after `inst`, the instruction `at` of
    /// its segment: after an instruction whose gas or effects go beyond a
    /// static charge, so that what follows is charged separately (see the
    /// module comment on why that makes a failed check an exact halt). A
    /// memory access inside the memory every frame has by then
    /// (`Analysis::covered_accesses`) charges its static gas only, and ends
    /// the segment only once it is [`MERGED_SEGMENT_INSTS`] long.
    fn ends_segment(&self, inst: &Inst, at: usize) -> bool {
        match lowering(inst.op, self.spec) {
            Lowering::Builtin => true,
            Lowering::InlineMemory => {
                at + 1 >= MERGED_SEGMENT_INSTS || !self.a.covered_accesses.contains_key(&inst.pc)
            }
            _ => false,
        }
    }

    /// Charges `cost`, or halts out of gas.
    ///
    /// The subtraction and its borrow are one `usub.with.overflow`, not a
    /// compare and a `sub`: InstCombine folds a chain of constant `sub`s
    /// into offsets from one value and each `gas >= c` into a compare of
    /// that value, and then computes every known-bits query on it against
    /// all those dominating compares, quadratic in the number of checks
    /// along a path (8,000 chained JUMPDEST blocks took 40 s at level 2).
    /// The intrinsic's result is no `sub`, so each check stays about its
    /// own value; it is also the one `sub` and branch on the borrow the
    /// backend emits for it.
    fn charge_segment(&self, cost: u64) -> R<()> {
        let gas = self.load_gas()?;
        let c = self.const_i64(cost);
        let (rest, borrow) = self.with_overflow("usub", gas, c)?;
        let borrow = self.expect(borrow, false)?;
        let ok = self.new_bb("gas_ok");
        self.b
            .build_conditional_branch(borrow, self.exits.out_of_gas, ok)?;
        self.b.position_at_end(ok);
        self.b.build_store(self.gas_var, rest)?;
        Ok(())
    }

    fn gen_terminator(&mut self, bi: usize, mut vs: VStack<'ctx>) -> R<()> {
        let blk = &self.a.blocks[bi];
        let last = blk.insts(self.a).last().unwrap();
        // Copies (`analysis::clones`) fall into and jump to copies: the
        // successors are the block's own, not the next in pc order.
        let next = blk.next.filter(|&n| self.a.blocks[n].reachable);
        let has_next = next.is_some();
        match blk.term {
            Terminator::Fallthrough | Terminator::Suspend => match has_next {
                true => self.goto_block(bi, next.unwrap(), vs)?,
                false => {
                    // Only reachable if a builtin continued where it should
                    // not have; the interpreter knows what to do there.
                    vs.commit(self)?;
                    self.deopt_at(last.next_pc() as u64)?;
                }
            },
            Terminator::Exit => {
                // The builtin always ends the frame; should it not, resume in
                // the interpreter right after it.
                vs.commit(self)?;
                self.deopt_at(last.next_pc() as u64)?;
            }
            Terminator::Stop => {
                // The stack of a finished frame is never read.
                self.b.build_unconditional_branch(self.exits.stop)?;
            }
            Terminator::Jump(t) => {
                let target = vs.pop(self)?;
                self.take_jump(bi, t, target, vs)?;
            }
            Terminator::JumpI(t) => {
                let target = vs.pop(self)?;
                let cond = vs.pop(self)?;
                let next = next.expect("fallthrough of a reachable JUMPI is reachable");
                let c =
                    self.b
                        .build_int_compare(IntPredicate::NE, cond, self.i256.const_zero(), "")?;
                let taken = self.new_bb("jumpi_taken");
                let taken_takes = matches!(t, JumpTarget::Static(_) if self.plan.takes_stack(bi, self.jump_block(bi)));
                if !taken_takes && !self.plan.takes_stack(bi, next) {
                    // Both successors read the stack from memory: one store
                    // sequence before the branch.
                    vs.commit(self)?;
                    let local = self.plan.partition.part_of[next] == self.part;
                    let fall = match local {
                        true => self.block_bbs[next].unwrap(),
                        false => self.new_bb("jumpi_fall"),
                    };
                    self.b.build_conditional_branch(c, taken, fall)?;
                    self.b.position_at_end(taken);
                    self.jump_to(bi, t, target)?;
                    if !local {
                        self.b.position_at_end(fall);
                        self.enter_block(next)?;
                    }
                } else {
                    let fall = self.new_bb("jumpi_fall");
                    self.b.build_conditional_branch(c, taken, fall)?;
                    self.b.position_at_end(taken);
                    self.take_jump(bi, t, target, vs.clone())?;
                    self.b.position_at_end(fall);
                    self.goto_block(bi, next, vs)?;
                }
            }
        }
        Ok(())
    }

    /// The block the static jump ending block `from` goes to.
    fn jump_block(&self, from: usize) -> usize {
        self.a.blocks[from]
            .jump_to
            .expect("a static jump has its block")
    }

    /// Continues from block `from` into block `to`: with the virtual stack
    /// if `to` inherits it, through memory otherwise.
    fn goto_block(&mut self, from: usize, to: usize, mut vs: VStack<'ctx>) -> R<()> {
        if self.plan.inherits(from, to) {
            self.inherited[to] = Some(vs);
            let bb = self.block_bbs[to].expect("an inheriting block is in its parent's part");
            self.b.build_unconditional_branch(bb)?;
            Ok(())
        } else if self.plan.takes_phis(from, to) {
            self.enter_with_phis(to, vs)
        } else {
            vs.commit(self)?;
            self.enter_block(to)
        }
    }

    fn take_jump(
        &mut self,
        from: usize,
        t: JumpTarget,
        target: IntValue<'ctx>,
        mut vs: VStack<'ctx>,
    ) -> R<()> {
        match t {
            JumpTarget::Static(_) => self.goto_block(from, self.jump_block(from), vs),
            // The stack of a halted frame is never read.
            JumpTarget::Invalid => self.jump_to(from, t, target),
            JumpTarget::Dynamic => {
                vs.commit(self)?;
                self.jump_to(from, t, target)
            }
        }
    }

    /// Jumps from block `from` to `target`.
    fn jump_to(&self, from: usize, t: JumpTarget, target: IntValue<'ctx>) -> R<()> {
        match t {
            JumpTarget::Static(_) => self.enter_block(self.jump_block(from))?,
            JumpTarget::Invalid => {
                self.b.build_unconditional_branch(self.exits.invalid_jump)?;
            }
            JumpTarget::Dynamic => {
                self.b.build_store(self.jt_var, target)?;
                self.try_guesses(from, target)?;
            }
        }
        Ok(())
    }

    /// Whether the jump target `t` lies inside the code (its low 64 bits
    /// are then the pc); limb by limb, as `offset_bounds` says why.
    fn in_code(&self, t: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let (low, high) = self.low_and_high(t)?;
        let below = self.b.build_int_compare(
            IntPredicate::ULT,
            low,
            self.const_i64(self.a.code_len as u64),
            "",
        )?;
        let narrow = self
            .b
            .build_int_compare(IntPredicate::EQ, high, self.i64.const_zero(), "")?;
        self.b.build_and(narrow, below, "")
    }

    /// A dynamic jump from `from`: compares `target` with the targets the
    /// analysis saw it take (`Analysis::jump_guesses`) at the jump itself,
    /// then takes the dispatch. Each jump so has branches of its own, which
    /// the CPU predicts apart, where the dispatch's one indirect branch is
    /// shared by every dynamic jump of the part; a target not guessed goes
    /// through the dispatch as before.
    fn try_guesses(&self, from: usize, target: IntValue<'ctx>) -> R<()> {
        let dispatch = self
            .dispatch_bb
            .expect("a part with dynamic jumps has a dispatch");
        let guesses = &self.a.jump_guesses[from];
        if guesses.is_empty() {
            self.b.build_unconditional_branch(dispatch)?;
            return Ok(());
        }
        let in_code = self.in_code(target)?;
        let guess = self.new_bb("guess");
        self.b.build_conditional_branch(in_code, guess, dispatch)?;
        self.b.position_at_end(guess);
        let pc = self.b.build_int_truncate(target, self.i64, "")?;
        let here = self.b.get_insert_block().unwrap();
        let cases: Vec<_> = guesses
            .iter()
            .map(|&to| {
                let case_pc = self.const_i64(self.a.blocks[to].start_pc as u64);
                let bb = match self.plan.partition.part_of[to] == self.part {
                    true => Ok(self.block_bbs[to].expect("a reachable target has a block")),
                    false => {
                        // Into another part: its entry directly.
                        let bb = self.new_bb("guess_other_part");
                        self.b.position_at_end(bb);
                        self.enter_block(to).map(|_| bb)
                    }
                };
                bb.map(|bb| (case_pc, bb))
            })
            .collect::<R<_>>()?;
        self.b.position_at_end(here);
        self.b.build_switch(pc, dispatch, &cases)?;
        Ok(())
    }

    /// Dynamic jumps to targets in this part are branches; the dispatch
    /// function takes the rest. Both switch on the target's number from the
    /// jump table.
    pub(super) fn gen_dispatch(&self, d: BasicBlock<'ctx>) -> R<()> {
        self.b.position_at_end(d);
        let t = self
            .b
            .build_load(self.i256, self.jt_var, "target")?
            .into_int_value();
        let in_code = self.in_code(t)?;
        let lookup = self.new_bb("dispatch_lookup");
        self.b
            .build_conditional_branch(in_code, lookup, self.exits.invalid_jump)?;
        self.b.position_at_end(lookup);
        let t64 = self.b.build_int_truncate(t, self.i64, "")?;
        let jt = self.jump_table.expect("dynamic jumps have a jump table");
        let slot = unsafe {
            self.b.build_gep(
                jt.elem.array_type(self.a.code_len as u32),
                jt.table.as_pointer_value(),
                &[self.const_i64(0), t64],
                "",
            )?
        };
        let number = self.b.build_load(jt.elem, slot, "")?.into_int_value();
        let number = self.b.build_int_z_extend(number, self.i64, "number")?;
        let elsewhere = self.new_bb("dispatch_other_part");
        let cases: Vec<_> = self
            .a
            .jumpdests
            .values()
            .filter(|&&bi| {
                self.a.is_dynamic_target(bi) && self.plan.partition.part_of[bi] == self.part
            })
            .map(|&bi| {
                let e = self.plan.partition.entry_of[bi].expect("a dynamic target is external");
                (self.const_i64(e as u64 + 1), self.block_bbs[bi].unwrap())
            })
            .collect();
        self.b.build_switch(number, elsewhere, &cases)?;
        self.b.position_at_end(elsewhere);
        let len = self.b.build_load(self.i64, self.len_var, "len")?;
        let dispatch = self
            .dispatch_fn
            .expect("a part with dynamic jumps has a dispatch");
        self.tail_call(
            self.ctx_ptr,
            dispatch,
            self.load_gas()?,
            len.into_int_value(),
            t64,
            number,
        )
    }
}
