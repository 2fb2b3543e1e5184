//! The function context: generation of one part (an LLVM function holding
//! whole inheritance trees of blocks, see [`crate::analysis::plan`]), its
//! shared exits, and the helpers block lowering uses.

use super::tbaa::Region;
use super::vstack::VStack;
use super::{ModuleGen, R};
use evmc_interface::{ctx_offsets, exit, Builtin};
use inkwell::basic_block::BasicBlock;
use inkwell::context::Context;
use inkwell::values::{
    BasicMetadataValueEnum, CallSiteValue, FunctionValue, InstructionOpcode, IntValue, PhiValue,
    PointerValue,
};
use std::ops::Deref;

/// The shared exit blocks of one function.
#[derive(Clone, Copy)]
pub(crate) struct Exits<'ctx> {
    pub out_of_gas: BasicBlock<'ctx>,
    pub invalid_jump: BasicBlock<'ctx>,
    /// Stores gas (from the gas local) and returns `exit::STOP`.
    pub stop: BasicBlock<'ctx>,
    /// Stores gas, stack length and the pc in `pc_var`; returns `exit::DEOPT`.
    pub deopt: BasicBlock<'ctx>,
}

impl<'ctx> Exits<'ctx> {
    fn new(cx: &'ctx Context, f: FunctionValue<'ctx>) -> Self {
        Self {
            out_of_gas: cx.append_basic_block(f, "exit_out_of_gas"),
            invalid_jump: cx.append_basic_block(f, "exit_invalid_jump"),
            stop: cx.append_basic_block(f, "exit_stop"),
            deopt: cx.append_basic_block(f, "exit_deopt"),
        }
    }
}

/// Code generation state of one part. It reads the module-wide state
/// (types, builder, plan, other functions) through [`Deref`], as lowering
/// code inside a function reads the scope around it.
pub(crate) struct PartGen<'g, 'a, 'ctx> {
    mg: &'g ModuleGen<'a, 'ctx>,
    /// The part generated.
    pub part: usize,
    pub f: FunctionValue<'ctx>,
    pub ctx_ptr: PointerValue<'ctx>,
    pub stack_base: PointerValue<'ctx>,
    /// The builtin table.
    pub builtins: PointerValue<'ctx>,
    pub gas_var: PointerValue<'ctx>,
    pub len_var: PointerValue<'ctx>,
    pub jt_var: PointerValue<'ctx>,
    /// Pc of a pending deopt exit, read by the shared deopt block.
    pub pc_var: PointerValue<'ctx>,
    /// Operands and result of the arithmetic builtins (three words).
    pub arith_var: PointerValue<'ctx>,
    pub exits: Exits<'ctx>,
    /// The LLVM block of each block of this part.
    pub(super) block_bbs: Vec<Option<BasicBlock<'ctx>>>,
    /// Takes the dynamic jumps of this part.
    pub(super) dispatch_bb: Option<BasicBlock<'ctx>>,
    /// Virtual stacks handed from a block to its single successors.
    pub(super) inherited: Vec<Option<VStack<'ctx>>>,
    /// The phis of a block that takes words as phis (see
    /// [`crate::analysis::Plan`]): its base length, then its top words
    /// from the deepest up. Created by whichever comes first, the block or
    /// an edge into it.
    pub(super) phis: Vec<Option<(PhiValue<'ctx>, Vec<PhiValue<'ctx>>)>>,
}

impl<'a, 'ctx> Deref for PartGen<'_, 'a, 'ctx> {
    type Target = ModuleGen<'a, 'ctx>;

    fn deref(&self) -> &Self::Target {
        self.mg
    }
}

impl<'g, 'a, 'ctx> PartGen<'g, 'a, 'ctx> {
    /// Starts part `k`: its locals, the frame pointers it keeps, and its
    /// shared exits.
    pub(super) fn new(mg: &'g ModuleGen<'a, 'ctx>, k: usize) -> R<Self> {
        let f = mg.part_fns[k];
        let entry = f
            .get_first_basic_block()
            .expect("created with the function");
        let exits = Exits::new(mg.cx, f);
        let b = &mg.b;
        b.position_at_end(entry);
        let param = |i| f.get_nth_param(i).unwrap();
        let ctx_ptr = param(0).into_pointer_value();
        let gas_var = b.build_alloca(mg.i64, "gas")?;
        let len_var = b.build_alloca(mg.i64, "len")?;
        let jt_var = b.build_alloca(mg.i256, "jump_target")?;
        let pc_var = b.build_alloca(mg.i64, "deopt_pc")?;
        let arith_var = b.build_alloca(mg.i64.array_type(12), "arith")?;
        b.build_store(gas_var, param(1))?;
        b.build_store(len_var, param(2))?;
        b.build_store(pc_var, param(3).into_int_value())?;
        let stack_base = mg.load_invariant_ptr(mg.field(ctx_ptr, ctx_offsets::STACK)?)?;
        let builtins = mg.load_invariant_ptr(mg.field(ctx_ptr, ctx_offsets::BUILTINS)?)?;
        let n = mg.a.blocks.len();
        Ok(Self {
            mg,
            part: k,
            f,
            ctx_ptr,
            stack_base,
            builtins,
            gas_var,
            len_var,
            jt_var,
            pc_var,
            arith_var,
            exits,
            block_bbs: vec![None; n],
            dispatch_bb: None,
            inherited: vec![None; n],
            phis: vec![None; n],
        })
    }

    /// The part's body: enters the block at its entry-number argument and
    /// runs until the frame exits or continues in another part.
    pub(super) fn gen_part(mut self) -> R<()> {
        let k = self.part;
        let plan = self.plan;
        let members = plan.partition.members(k);
        for &i in &members {
            let name = format!("b{}_pc{}", i, self.a.blocks[i].start_pc);
            self.block_bbs[i] = Some(self.new_bb(&name));
        }
        self.dispatch_bb = self.a.has_dynamic_jumps.then(|| self.new_bb("dispatch"));
        let switch_bb = self.b.get_insert_block().expect("the entry block");
        let mut cases = Vec::new();
        for &i in &members {
            let Some(e) = plan.partition.entry_of[i] else {
                continue;
            };
            let bb = match plan.phi_words[i] {
                0 => self.block_bbs[i].unwrap(),
                // A join of this part entered from another: its words are
                // in memory, its edges here take phis.
                _ => {
                    let stub = self.new_bb(&format!("enter_b{i}"));
                    self.b.position_at_end(stub);
                    let len = self
                        .b
                        .build_load(self.i64, self.len_var, "len")?
                        .into_int_value();
                    self.enter_with_phis(i, VStack::new(len))?;
                    stub
                }
            };
            cases.push((self.const_i64(e as u64), bb));
        }
        self.b.position_at_end(switch_bb);
        // Only the entry function and other parts call a part, with the
        // entry number and pc of a block marked external; anything else
        // would be a bug, which the interpreter resolves exactly at `pc`.
        let entry_no = self.f.get_nth_param(4).unwrap().into_int_value();
        self.b.build_switch(entry_no, self.exits.deopt, &cases)?;
        self.gen_exits()?;

        // A block is generated after the block it inherits from.
        for &h in &plan.partition.heads[k] {
            let mut todo = vec![h];
            while let Some(b) = todo.pop() {
                self.gen_block(b)?;
                todo.extend(plan.children[b].iter().copied());
            }
        }
        if let Some(d) = self.dispatch_bb {
            self.gen_dispatch(d)?;
        }
        self.narrow_counters()
    }

    // ---- ctx field access -------------------------------------------------

    pub(super) fn ctx_field(&self, off: u32) -> R<PointerValue<'ctx>> {
        self.field(self.ctx_ptr, off)
    }
    pub(super) fn load_ctx_i64(&self, off: u32) -> R<IntValue<'ctx>> {
        self.load_field_i64(self.ctx_ptr, off)
    }
    pub(super) fn load_ctx_ptr(&self, off: u32) -> R<PointerValue<'ctx>> {
        let p = self.ctx_field(off)?;
        let v = self.b.build_load(self.ptr, p, "")?.into_pointer_value();
        self.tbaa.tag(v.as_instruction().unwrap(), Region::Ctx);
        Ok(v)
    }
    pub(super) fn store_ctx_i64(&self, off: u32, v: IntValue<'ctx>) -> R<()> {
        self.store_field_i64(self.ctx_ptr, off, v)
    }

    pub(super) fn new_bb(&self, name: &str) -> BasicBlock<'ctx> {
        self.cx.append_basic_block(self.f, name)
    }

    // ---- transfers --------------------------------------------------------

    /// Enters block `to` with the stack committed to memory: a branch in
    /// this part, a tail call into another.
    pub(super) fn enter_block(&self, to: usize) -> R<()> {
        let part = self.plan.partition.part_of[to];
        if part == self.part {
            let bb = self.block_bbs[to].expect("a successor of a reachable block is reachable");
            self.b.build_unconditional_branch(bb)?;
            Ok(())
        } else {
            let len = self.b.build_load(self.i64, self.len_var, "len")?;
            let pc = self.const_i64(self.a.blocks[to].start_pc as u64);
            let e = self.plan.partition.entry_of[to].expect("a cross-part target is external");
            self.tail_call(
                self.ctx_ptr,
                self.part_fns[part],
                self.load_gas()?,
                len.into_int_value(),
                pc,
                self.const_i64(e as u64),
            )
        }
    }

    // ---- exits ------------------------------------------------------------

    fn gen_exits(&self) -> R<()> {
        let e = self.exits;
        self.b.position_at_end(e.out_of_gas);
        self.ret(exit::OUT_OF_GAS)?;
        self.b.position_at_end(e.invalid_jump);
        // Not observable after the halt, but the frame's gas stays exact.
        self.store_ctx_i64(ctx_offsets::GAS, self.load_gas()?)?;
        self.ret(exit::INVALID_JUMP)?;
        self.b.position_at_end(e.stop);
        self.store_ctx_i64(ctx_offsets::GAS, self.load_gas()?)?;
        self.ret(exit::STOP)?;
        self.b.position_at_end(e.deopt);
        self.store_ctx_i64(ctx_offsets::GAS, self.load_gas()?)?;
        let len = self.b.build_load(self.i64, self.len_var, "")?;
        self.store_ctx_i64(ctx_offsets::STACK_LEN, len.into_int_value())?;
        let pc = self.b.build_load(self.i64, self.pc_var, "")?;
        self.store_ctx_i64(ctx_offsets::RESUME_PC, pc.into_int_value())?;
        self.ret(exit::DEOPT)
    }

    /// Leaves for the interpreter at `pc`, with the stack committed to
    /// memory (its length in the length local) and gas in the gas local.
    pub(super) fn deopt_at(&self, pc: u64) -> R<()> {
        self.b.build_store(self.pc_var, self.const_i64(pc))?;
        self.b.build_unconditional_branch(self.exits.deopt)?;
        Ok(())
    }

    pub(super) fn load_gas(&self) -> R<IntValue<'ctx>> {
        Ok(self
            .b
            .build_load(self.i64, self.gas_var, "gas")?
            .into_int_value())
    }

    // ---- builtins ---------------------------------------------------------

    /// Calls `builtin` with `args`, through its stub (`builtin_stub`).
    pub(crate) fn call_builtin(
        &self,
        builtin: Builtin,
        args: &[BasicMetadataValueEnum<'ctx>],
        name: &str,
    ) -> R<CallSiteValue<'ctx>> {
        let mut args = args.to_vec();
        args.push(self.builtins.into());
        let call = self
            .b
            .build_call(self.builtin_stub(builtin)?, &args, name)?;
        call.set_call_convention(super::stub_call_convention(builtin));
        Ok(call)
    }

    /// Calls `builtin` (gas in the ctx), which may end the frame: then it
    /// does not return here but leaves through `ExecCtx::escape`, with the
    /// reason in the runtime. Otherwise the gas local is reloaded.
    pub(crate) fn call_halting_builtin(
        &self,
        builtin: Builtin,
        args: &[BasicMetadataValueEnum<'ctx>],
    ) -> R<()> {
        self.call_builtin(builtin, args, "")?;
        let gas = self.load_ctx_i64(ctx_offsets::GAS)?;
        self.b.build_store(self.gas_var, gas)?;
        Ok(())
    }

    /// The first scratch word (a builtin's result), pushed.
    pub(crate) fn push_scratch(&self, vs: &mut VStack<'ctx>) -> R<()> {
        let r = self.load_scratch()?;
        vs.push(r);
        Ok(())
    }

    /// Stores `v` as scratch word `i`. A word loaded from memory (the
    /// stack a block entered with) is stored a 64-bit limb at a time,
    /// volatile so that LLVM does not merge the limbs back: it copied
    /// such a word with two 16-byte loads, each spanning two 8-byte
    /// stores of limbs the predecessor had just made, which cannot be
    /// forwarded from them (the hottest instruction of snailtracer's code
    /// waited on one, before an SDIV). Other words are stored whole:
    /// storing every word by limbs ran sha1_divs 2% slower.
    pub(crate) fn store_scratch(&self, i: u64, v: IntValue<'ctx>) -> R<()> {
        let loaded = v
            .as_instruction()
            .is_some_and(|x| x.get_opcode() == InstructionOpcode::Load);
        if !loaded {
            let p = unsafe {
                self.b
                    .build_gep(self.i8, self.arith_var, &[self.const_i64(32 * i)], "")?
            };
            self.b.build_store(p, v)?.set_alignment(8).ok();
            return Ok(());
        }
        for k in 0..4u64 {
            let shifted = if k == 0 {
                v
            } else {
                self.b
                    .build_right_shift(v, self.i256.const_int(64 * k, false), false, "")?
            };
            let limb = self.b.build_int_truncate(shifted, self.i64, "")?;
            let p = unsafe {
                self.b.build_gep(
                    self.i8,
                    self.arith_var,
                    &[self.const_i64(32 * i + 8 * k)],
                    "",
                )?
            };
            let st = self.b.build_store(p, limb)?;
            st.set_volatile(true).ok();
            st.set_alignment(8).ok();
        }
        Ok(())
    }

    pub(crate) fn load_scratch(&self) -> R<IntValue<'ctx>> {
        let r = self
            .b
            .build_load(self.i256, self.arith_var, "")?
            .into_int_value();
        if let Some(load) = r.as_instruction() {
            load.set_alignment(8).ok();
        }
        Ok(r)
    }

    /// Runs `opcode` through the interpreter's instruction function. The
    /// virtual stack is written back first and is empty afterwards.
    pub(super) fn call_exec_op(&self, vs: &mut VStack<'ctx>, opcode: u8, pc: u32) -> R<()> {
        let len = vs.flush(self)?;
        self.store_ctx_i64(ctx_offsets::STACK_LEN, len)?;
        let gas = self.load_gas()?;
        self.store_ctx_i64(ctx_offsets::GAS, gas)?;
        self.call_halting_builtin(
            Builtin::ExecOp,
            &[
                self.ctx_ptr.into(),
                self.i32.const_int(opcode as u64, false).into(),
                self.i32.const_int(pc as u64, false).into(),
            ],
        )?;
        let len = self.load_ctx_i64(ctx_offsets::STACK_LEN)?;
        *vs = VStack::new(len);
        Ok(())
    }
}
