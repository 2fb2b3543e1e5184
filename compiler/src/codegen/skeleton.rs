//! The module skeleton: the entry function, the global dispatch, the jump
//! table and the metadata record. Block lowering is in [`super::part`] and
//! [`super::blocks`].

use super::{ModuleGen, PRESERVE_NONE_CC, R};
use crate::analysis::Plan;
use evmc_interface::{ctx_offsets, exit, ArtifactMetadata, ENTRY_SYMBOL, METADATA_SYMBOL};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::{BasicTypeEnum, IntType};
use inkwell::values::{FunctionValue, GlobalValue, LLVMTailCallKind, PointerValue};
use inkwell::{GlobalVisibility, IntPredicate};

/// The metadata record, readable from the file without loading it.
pub(super) fn add_metadata<'ctx>(cx: &'ctx Context, m: &Module<'ctx>, meta: &ArtifactMetadata) {
    let bytes = meta.as_bytes();
    let init = cx.const_string(bytes, false);
    let g = m.add_global(init.get_type(), None, METADATA_SYMBOL);
    g.set_initializer(&init);
    g.set_constant(true);
    g.set_linkage(Linkage::External);
}

/// `table[pc]` for every pc of the code: 1 + the entry number of a
/// dynamic-jump target, `sentinel` for any other JUMPDEST, 0 elsewhere.
/// One load turns a jump target into a dense number that switches
/// take through jump tables, instead of searching sparse pcs.
#[derive(Clone, Copy)]
pub(super) struct JumpTable<'ctx> {
    pub table: GlobalValue<'ctx>,
    pub elem: IntType<'ctx>,
    pub sentinel: u64,
}

impl<'ctx> JumpTable<'ctx> {
    /// Declares the table; `main` (shard 0) also defines its contents, the
    /// other shards refer to it.
    pub(super) fn declare(
        cx: &'ctx Context,
        m: &Module<'ctx>,
        plan: &Plan<'_>,
        main: bool,
    ) -> Self {
        let a = plan.analysis;
        let (elem, sentinel) = match plan.wide_jump_table() {
            false => (cx.i16_type(), u16::MAX as u64),
            true => (cx.i32_type(), u32::MAX as u64),
        };
        let ty = elem.array_type(a.code_len as u32);
        let table = m.add_global(ty, None, "evmc_jump_table");
        if plan.shards() > 1 {
            table.set_visibility(GlobalVisibility::Hidden);
        } else {
            table.set_linkage(Linkage::Private);
        }
        if main {
            let mut values = vec![elem.const_zero(); a.code_len];
            for &pc in &a.all_jumpdests {
                let entry = a
                    .jumpdests
                    .get(&pc)
                    .filter(|&&b| a.is_dynamic_target(b))
                    .and_then(|&b| plan.partition.entry_of[b]);
                let v = match entry {
                    Some(e) => e as u64 + 1,
                    None => sentinel,
                };
                values[pc as usize] = elem.const_int(v, false);
            }
            table.set_initializer(&elem.const_array(&values));
            table.set_constant(true);
        }
        JumpTable {
            table,
            elem,
            sentinel,
        }
    }
}

impl<'a, 'ctx> ModuleGen<'a, 'ctx> {
    /// `evmc_entry(ctx)`: enters the part holding the frame's entry or
    /// resume point. An unknown resume pc deoptimises; the ctx still holds
    /// the frame's state then. A builtin that ends the frame comes back
    /// here through `ExecCtx::escape` (`gen_escape_point`).
    pub(super) fn gen_entry(&self) -> R<()> {
        let f = self
            .m
            .get_function(ENTRY_SYMBOL)
            .expect("shard 0 declares the entry function");
        let entry = self.cx.append_basic_block(f, "entry");
        self.b.position_at_end(entry);
        let ctx = f.get_nth_param(0).unwrap().into_pointer_value();
        self.gen_escape_point(f, ctx)?;
        let gas = self.load_field_i64(ctx, ctx_offsets::GAS)?;
        let len = self.load_field_i64(ctx, ctx_offsets::STACK_LEN)?;
        let resume = self.load_field_i64(ctx, ctx_offsets::RESUME_PC)?;
        let unknown = self.cx.append_basic_block(f, "unknown_resume");
        let mut cases = Vec::new();
        let partition = &self.plan.partition;
        for (i, blk) in self.a.blocks.iter().enumerate() {
            if blk.reachable && (i == 0 || blk.is_resume) {
                let bb = self.cx.append_basic_block(f, &format!("enter_b{i}"));
                cases.push((self.const_i64(blk.start_pc as u64), bb));
                let here = self.b.get_insert_block().unwrap();
                self.b.position_at_end(bb);
                // Not `musttail` (the signatures differ): one native frame
                // below the parts, which transfer among themselves by
                // guaranteed tail calls.
                let e = partition.entry_of[i].expect("entry points are external");
                let args = [
                    ctx.into(),
                    gas.into(),
                    len.into(),
                    resume.into(),
                    self.const_i64(e as u64).into(),
                ];
                let p = partition.part_of[i];
                let call = self.b.build_call(self.part_fns[p], &args, "")?;
                call.set_call_convention(PRESERVE_NONE_CC);
                call.set_tail_call_kind(LLVMTailCallKind::LLVMTailCallKindTail);
                let r = call.try_as_basic_value().basic().unwrap();
                self.b.build_return(Some(&r))?;
                self.b.position_at_end(here);
            }
        }
        self.b.build_switch(resume, unknown, &cases)?;
        self.b.position_at_end(unknown);
        self.ret(exit::DEOPT)
    }

    /// Records in `ExecCtx::escape` where a builtin that ends the frame
    /// returns to: here, to return `exit::BUILTIN`. Generated code then
    /// does not test a status after each builtin call: those tests and
    /// their exit edges were 15-20% of the blocks of large contracts, and
    /// code generation's time grows with the blocks (benches/README.md,
    /// "Builtins that end the frame leave through the entry"). The
    /// buffer is that of `llvm.eh.sjlj.setjmp` (frame pointer, resume
    /// address, stack pointer), which also makes this function save every
    /// callee-saved register and reload what it needs after the jump back.
    fn gen_escape_point(&self, f: FunctionValue<'ctx>, ctx: PointerValue<'ctx>) -> R<()> {
        let buf = self.field(ctx, ctx_offsets::ESCAPE)?;
        let intrinsic = |name: &str, types: &[BasicTypeEnum<'ctx>]| {
            Intrinsic::find(name)
                .and_then(|i| i.get_declaration(&self.m, types))
                .expect("LLVM has the setjmp intrinsics")
        };
        let frame = intrinsic("llvm.frameaddress", &[self.ptr.into()]);
        let fp = self
            .b
            .build_call(frame, &[self.i32.const_zero().into()], "fp")?
            .try_as_basic_value()
            .basic()
            .unwrap();
        self.b.build_store(buf, fp)?;
        let save = intrinsic("llvm.stacksave", &[self.ptr.into()]);
        let sp = self
            .b
            .build_call(save, &[], "sp")?
            .try_as_basic_value()
            .basic()
            .unwrap();
        let sp_slot = self.field(ctx, ctx_offsets::ESCAPE + 16)?;
        self.b.build_store(sp_slot, sp)?;
        let setjmp = intrinsic("llvm.eh.sjlj.setjmp", &[]);
        let r = self
            .b
            .build_call(setjmp, &[buf.into()], "escaped")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        let run = self.cx.append_basic_block(f, "run");
        let escaped = self.cx.append_basic_block(f, "escaped");
        let zero = self.i32.const_zero();
        let normal = self.b.build_int_compare(IntPredicate::EQ, r, zero, "")?;
        self.b.build_conditional_branch(normal, run, escaped)?;
        self.b.position_at_end(escaped);
        self.ret(exit::BUILTIN)?;
        self.b.position_at_end(run);
        Ok(())
    }

    /// The dispatch function: enters the part holding a dynamic-jump
    /// target, by the target's number from the jump table. A JUMPDEST that
    /// is no such target (see [`crate::analysis::Analysis::dynamic_targets`])
    /// hands the frame to the interpreter there; anything else is an
    /// invalid jump.
    pub(super) fn gen_global_dispatch(&self, f: FunctionValue<'ctx>) -> R<()> {
        let entry = f
            .get_first_basic_block()
            .expect("created with the function");
        self.b.position_at_end(entry);
        let param = |i| f.get_nth_param(i).unwrap().into_int_value();
        let ctx = f.get_nth_param(0).unwrap().into_pointer_value();
        let (gas, len, pc, number) = (param(1), param(2), param(3), param(4));
        let jt = self.jump_table.expect("dynamic jumps have a jump table");
        let invalid = self.cx.append_basic_block(f, "invalid_jump");
        let deopt = self.cx.append_basic_block(f, "deopt");
        let partition = &self.plan.partition;
        let mut part_bbs = vec![None; self.part_fns.len()];
        let mut cases = vec![(self.const_i64(jt.sentinel), deopt)];
        for &bi in self.a.jumpdests.values() {
            if !self.a.is_dynamic_target(bi) {
                continue;
            }
            let p = partition.part_of[bi];
            let bb = *part_bbs[p]
                .get_or_insert_with(|| self.cx.append_basic_block(f, &format!("to_part{p}")));
            let e = partition.entry_of[bi].expect("a dynamic target is external");
            cases.push((self.const_i64(e as u64 + 1), bb));
        }
        self.b.build_switch(number, invalid, &cases)?;
        self.b.position_at_end(invalid);
        self.store_field_i64(ctx, ctx_offsets::GAS, gas)?;
        self.ret(exit::INVALID_JUMP)?;
        self.b.position_at_end(deopt);
        self.store_field_i64(ctx, ctx_offsets::GAS, gas)?;
        self.store_field_i64(ctx, ctx_offsets::STACK_LEN, len)?;
        self.store_field_i64(ctx, ctx_offsets::RESUME_PC, pc)?;
        self.ret(exit::DEOPT)?;
        for (p, bb) in part_bbs.into_iter().enumerate() {
            if let Some(bb) = bb {
                self.b.position_at_end(bb);
                let e = self.b.build_int_sub(number, self.const_i64(1), "entry")?;
                self.tail_call(ctx, self.part_fns[p], gas, len, pc, e)?;
            }
        }
        Ok(())
    }
}
