//! Runs of memory accesses paid for with one check.
//!
//! An MLOAD/MSTORE/MSTORE8 at an offset the analysis does not know ends its
//! gas segment and tests its own bounds (`memory`): three LLVM blocks per
//! access (the next segment's gas check, the growth path, the access).
//! Instruction selection works block by block and its time grows with the
//! number of blocks, so code that writes memory at computed offsets
//! (Solidity's ABI encoding after the free memory pointer, a copy loop's
//! body, memory_grow's 4,096 stores) spent most of its compile time there.
//!
//! A *run* is a stretch of one block, from the start of a gas segment to an
//! access at a computed offset, in which every instruction is plain stack
//! arithmetic or a memory access, and no access's offset depends on a word
//! loaded from memory inside the stretch. The offsets of such a run can all
//! be computed before any of its accesses, so the run is paid for at its
//! start: one test that every offset is below 2^32, that the furthest end
//! lies inside memory and that the gas covers the static gas of the whole
//! run; then the accesses run without tests.
//!
//! Where the test fails, the `mem_reserve` builtin charges the static gas
//! and the growth to the furthest end together, as the interpreter's
//! accesses would charge them one by one: what is charged is the same sum
//! (growth is paid for by the final size), and nothing in between can
//! observe the order (no GAS, MSIZE or runtime call is part of a run). When
//! the gas does not cover it all, the interpreter would halt somewhere in
//! the run, and which halt (out of gas at a static charge, out of gas
//! growing memory, an offset too large) depends on where: the frame then
//! continues in the interpreter at the run's start, with the stack and gas
//! the run started with, and halts there exactly as it would.

use super::part::PartGen;
use super::vstack::VStack;
use super::{lowering, Lowering, R};
use crate::analysis::Inst;
use crate::revm_api::stack_io;
use evmc_interface::{ctx_offsets, Builtin};
use inkwell::intrinsics::Intrinsic;
use inkwell::IntPredicate;
use revm::bytecode::opcode as op;

/// Fewest accesses at computed offsets that make a run: a run of one
/// would keep as many blocks as the access's own test and add the
/// hand-over to the interpreter.
const MIN_RUN_ACCESSES: usize = 2;

/// A run found by [`PartGen::memory_run`].
pub(super) struct MemoryRun {
    /// Index (in the block) of the run's last instruction, an access at a
    /// computed offset.
    pub last: usize,
    /// Words of the stack the run reads below what it pushes itself.
    pub depth: usize,
}

/// How an instruction takes part in a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An access at a computed offset: tested by the run's check.
    Checked,
    /// An access inside the memory every frame has by then
    /// (`Analysis::covered_accesses`): untested in any case.
    Covered,
    /// Stack arithmetic without runtime calls, extra blocks or reads of
    /// gas or memory size.
    Pure,
    /// Ends the run before it.
    Stop,
}

impl<'ctx> PartGen<'_, '_, 'ctx> {
    fn role(&self, inst: &Inst) -> Role {
        match lowering(inst.op, self.spec) {
            Lowering::InlineMemory if self.a.covered_accesses.contains_key(&inst.pc) => {
                Role::Covered
            }
            Lowering::InlineMemory => Role::Checked,
            Lowering::Inline => match inst.op {
                // GAS and MSIZE would see the run paid for ahead; the rest
                // make blocks of their own (a fast and a slow path), which
                // the computation of the offsets would duplicate.
                op::GAS
                | op::MSIZE
                | op::CALLDATALOAD
                | op::DIV
                | op::SDIV
                | op::MOD
                | op::SMOD
                | op::ADDMOD
                | op::MULMOD => Role::Stop,
                _ => Role::Pure,
            },
            Lowering::Builtin | Lowering::Control => Role::Stop,
        }
    }

    /// The run starting at `insts[start]` (the start of a gas segment), if
    /// there is one: it may not go past `insts[limit]`.
    ///
    /// The stack is followed word by word: a word loaded by an MLOAD of
    /// the run, or computed from one, is not known before the run's
    /// accesses, so an access at such an offset ends the run before it.
    pub(super) fn memory_run(
        &self,
        insts: &[Inst],
        start: usize,
        limit: usize,
    ) -> Option<MemoryRun> {
        // Whether each word pushed in the run depends on a load of the run;
        // words the run reads below them (`below`) do not.
        let mut loaded: Vec<bool> = Vec::new();
        let mut below = 0usize;
        let reach = |loaded: &mut Vec<bool>, below: &mut usize, n: usize| {
            while loaded.len() < n {
                loaded.insert(0, false);
                *below += 1;
            }
        };
        let mut found = None;
        let mut accesses = 0;
        for (j, inst) in insts.iter().enumerate().take(limit + 1).skip(start) {
            let role = self.role(inst);
            match role {
                Role::Stop => break,
                Role::Checked | Role::Covered => {
                    reach(&mut loaded, &mut below, 1);
                    if role == Role::Checked && *loaded.last().unwrap() {
                        break;
                    }
                    let pops = if inst.op == op::MLOAD { 1 } else { 2 };
                    reach(&mut loaded, &mut below, pops);
                    loaded.truncate(loaded.len() - pops);
                    if inst.op == op::MLOAD {
                        loaded.push(true);
                    }
                    if role == Role::Checked {
                        accesses += 1;
                        found = Some(MemoryRun {
                            last: j,
                            depth: below,
                        });
                    }
                }
                Role::Pure => match inst.op {
                    op::DUP1..=op::DUP16 => {
                        let n = (inst.op - op::DUP1 + 1) as usize;
                        reach(&mut loaded, &mut below, n);
                        loaded.push(loaded[loaded.len() - n]);
                    }
                    op::SWAP1..=op::SWAP16 => {
                        let n = (inst.op - op::SWAP1 + 1) as usize;
                        reach(&mut loaded, &mut below, n + 1);
                        let top = loaded.len() - 1;
                        loaded.swap(top, top - n);
                    }
                    _ => {
                        let (ins, outs) = stack_io(inst.op)?;
                        let (ins, outs) = (ins as usize, outs as usize);
                        reach(&mut loaded, &mut below, ins);
                        let any = loaded[loaded.len() - ins..].iter().any(|&l| l);
                        loaded.truncate(loaded.len() - ins);
                        loaded.extend(std::iter::repeat_n(any, outs));
                    }
                },
            }
        }
        found.filter(|_| accesses >= MIN_RUN_ACCESSES)
    }

    /// Pays for `run` (`insts[start..=run.last]`) at its start: on return
    /// the builder is where the run's instructions go, `vs` unchanged but
    /// for the words the run reads, now held. The run's instructions are
    /// then lowered with [`Self::gen_run_inst`].
    pub(super) fn pay_for_run(
        &self,
        vs: &mut VStack<'ctx>,
        insts: &[Inst],
        start: usize,
        run: &MemoryRun,
    ) -> R<()> {
        let bld = &self.b;
        let run_insts = &insts[start..=run.last];
        // Held before the copy below, so that the offsets and the run
        // itself start from the same loads.
        vs.ensure(self, run.depth)?;

        // The offsets, computed on a copy of the stack as the run computes
        // them (LLVM merges the two computations). A word an MLOAD of the
        // run loads is not needed here, only its place: zero stands in. Each
        // offset is taken to be below 2^32 once its access is passed, as
        // the run does: if one is not, the run is not taken anyway.
        let mut copy = vs.clone();
        let mut all_small = self.i1.const_all_ones();
        let mut furthest = self.i64.const_zero();
        let umax = Intrinsic::find("llvm.umax")
            .unwrap()
            .get_declaration(&self.m, &[self.i64.into()])
            .unwrap();
        for inst in run_insts {
            let role = self.role(inst);
            match role {
                Role::Checked | Role::Covered => {
                    let offset = copy.pop(self)?;
                    if inst.op != op::MLOAD {
                        copy.pop(self)?;
                    }
                    if role == Role::Checked {
                        let (small, _) = self.offset_bounds(offset)?;
                        all_small = bld.build_and(all_small, small, "")?;
                        let off64 = self.low_limb(offset)?;
                        let size = if inst.op == op::MSTORE8 { 1 } else { 32 };
                        let end = bld.build_int_add(off64, self.const_i64(size), "")?;
                        furthest = bld
                            .build_call(umax, &[furthest.into(), end.into()], "end")?
                            .try_as_basic_value()
                            .basic()
                            .unwrap()
                            .into_int_value();
                        if !offset.is_const() {
                            let narrow = bld.build_int_z_extend(off64, self.i256, "")?;
                            copy.replace(offset, narrow);
                        }
                    }
                    if inst.op == op::MLOAD {
                        copy.push(self.i256.const_zero());
                    }
                }
                _ => self.gen_inst(&mut copy, inst, 0)?,
            }
        }

        let static_gas: u64 = run_insts
            .iter()
            .map(|x| self.gas_table[x.op as usize] as u64)
            .sum();
        let gas = self.load_gas()?;
        let (rest, borrow) = self.with_overflow("usub", gas, self.const_i64(static_gas))?;
        let mem_len = self.load_ctx_i64(ctx_offsets::MEM_LEN)?;
        let fits = bld.build_int_compare(IntPredicate::ULE, furthest, mem_len, "fits")?;
        let paid = bld.build_and(all_small, fits, "")?;
        let paid = bld.build_and(paid, bld.build_not(borrow, "")?, "")?;
        let paid = self.likely(paid)?;
        bld.build_store(self.gas_var, rest)?;
        let body = self.new_bb("run");
        let reserve = self.new_bb("run_reserve");
        bld.build_conditional_branch(paid, body, reserve)?;

        // Growth, or gas short: the runtime pays for it all or nothing.
        bld.position_at_end(reserve);
        self.store_ctx_i64(ctx_offsets::GAS, gas)?;
        let end = bld
            .build_select(all_small, furthest, self.i64.const_all_ones(), "")?
            .into_int_value();
        let args = [
            self.ctx_ptr.into(),
            end.into(),
            self.const_i64(static_gas).into(),
        ];
        let done = self
            .call_builtin(Builtin::MemReserve, &args, "reserved")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        // The gas the run started with when it refused.
        bld.build_store(self.gas_var, self.load_ctx_i64(ctx_offsets::GAS)?)?;
        let done = bld.build_int_compare(IntPredicate::NE, done, self.i32.const_zero(), "")?;
        let done = self.likely(done)?;
        let refused = self.new_bb("run_refused");
        bld.build_conditional_branch(done, body, refused)?;

        // The interpreter runs the run, from its start.
        bld.position_at_end(refused);
        let len = vs.flush(self)?;
        bld.build_store(self.len_var, len)?;
        self.deopt_at(insts[start].pc as u64)?;

        bld.position_at_end(body);
        Ok(())
    }

    /// One instruction of a run that [`Self::pay_for_run`] paid for.
    pub(super) fn gen_run_inst(&self, vs: &mut VStack<'ctx>, inst: &Inst) -> R<()> {
        if self.role(inst) != Role::Checked {
            return self.gen_inst(vs, inst, 0);
        }
        let offset = vs.pop(self)?;
        let value = if inst.op == op::MLOAD {
            None
        } else {
            Some(vs.pop(self)?)
        };
        // Below 2^32 and inside memory, as the run's check found.
        let off64 = self.low_limb(offset)?;
        self.access_below_2_64(inst.op, offset, off64, value, vs)
    }
}
