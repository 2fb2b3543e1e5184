//! Lowering of an analysed contract to one LLVM function.
//!
//! Shape of the generated function `u32 evmc_entry(ExecCtx*)`:
//! - the entry block loads gas and stack length into locals and dispatches on
//!   `ctx.resume_pc` (0 for a fresh frame, the pc after a CALL/CREATE when
//!   resuming); an unknown resume pc deoptimises to the interpreter;
//! - each reachable basic block checks its stack bounds once, then runs in gas
//!   *segments*: the static gas of all instructions up to and including the
//!   next one with dynamic gas is charged with a single check;
//! - inside a block, stack values live in SSA registers ([`VStack`]) and are
//!   written back only at block ends, builtin calls and exits;
//! - a failed stack-bounds check never decides the outcome itself: it hands
//!   the frame, in exactly the interpreter's state at the block start, to the
//!   interpreter (`exit::DEOPT`), which then reports the same halt reason and
//!   gas it always would;
//! - a failed gas check is an out-of-gas halt (`exit::OUT_OF_GAS`): a segment
//!   ends at the first instruction with dynamic gas or effects, so the
//!   interpreter would run out of gas at one of its static charges, and no
//!   instruction before that point can halt in another way;
//! - every exit jumps to one shared block per kind, so cold paths cost a
//!   branch, not a copy of the machine state.

pub mod llvm_workarounds;
mod memory;
mod ops;
mod vstack;

use crate::analysis::{Analysis, Block, JumpTarget, Terminator};
use crate::revm_api::{static_gas_table, SpecId};
use evmc_interface::{
    builtin_offsets, ctx_offsets, exit, ArtifactMetadata, ENTRY_SYMBOL, METADATA_SYMBOL,
    STACK_LIMIT,
};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::{IntType, PointerType};
use inkwell::values::{FunctionValue, IntValue, PointerValue};
use inkwell::AddressSpace;
use inkwell::IntPredicate;
use revm::bytecode::opcode as op;
use vstack::VStack;

pub(crate) type R<T> = Result<T, BuilderError>;

/// Longest run of EVM instructions lowered into one LLVM basic block.
const SPLIT_EVERY: usize = 256;

/// How an opcode is lowered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lowering {
    /// Straight-line code, static gas only.
    Inline,
    /// Inline fast path with a memory-expansion cold path (dynamic gas).
    InlineMemory,
    /// Executed by the runtime with the interpreter's own instruction function.
    Builtin,
    /// Block terminators handled by the block epilogue (JUMP, JUMPI, STOP).
    Control,
}

pub(crate) fn lowering(opcode: u8, spec: SpecId) -> Lowering {
    use Lowering::*;
    match opcode {
        op::JUMP | op::JUMPI | op::STOP => Control,
        op::MLOAD | op::MSTORE | op::MSTORE8 => InlineMemory,
        op::ADD
        | op::MUL
        | op::SUB
        | op::LT
        | op::GT
        | op::SLT
        | op::SGT
        | op::EQ
        | op::ISZERO
        | op::AND
        | op::OR
        | op::XOR
        | op::NOT
        | op::BYTE
        | op::SIGNEXTEND
        | op::POP
        | op::JUMPDEST
        | op::PC
        | op::GAS
        | op::MSIZE
        | op::CALLDATASIZE
        | op::CALLDATALOAD
        | op::CALLER
        | op::CALLVALUE
        | op::ADDRESS => Inline,
        // Calls to pure runtime functions: static gas only, no halts.
        op::DIV | op::SDIV | op::MOD | op::SMOD | op::ADDMOD | op::MULMOD => Inline,
        op::PUSH1..=op::PUSH32 | op::DUP1..=op::DUP16 | op::SWAP1..=op::SWAP16 => Inline,
        op::SHL | op::SHR | op::SAR if spec.is_enabled_in(SpecId::PETERSBURG) => Inline,
        op::PUSH0 if spec.is_enabled_in(SpecId::SHANGHAI) => Inline,
        op::CLZ if spec.is_enabled_in(SpecId::OSAKA) => Inline,
        _ => Builtin,
    }
}

/// The shared exit blocks.
#[derive(Clone, Copy)]
pub(crate) struct Exits<'ctx> {
    pub out_of_gas: BasicBlock<'ctx>,
    pub builtin: BasicBlock<'ctx>,
    pub invalid_jump: BasicBlock<'ctx>,
    /// Stores gas (from the gas local) and returns `exit::STOP`.
    pub stop: BasicBlock<'ctx>,
    /// Stores gas, stack length and the pc in `pc_var`; returns `exit::DEOPT`.
    pub deopt: BasicBlock<'ctx>,
}

pub(crate) struct Gen<'a, 'ctx> {
    pub cx: &'ctx Context,
    pub m: Module<'ctx>,
    pub b: Builder<'ctx>,
    pub f: FunctionValue<'ctx>,
    pub i1: IntType<'ctx>,
    pub i8: IntType<'ctx>,
    pub i32: IntType<'ctx>,
    pub i64: IntType<'ctx>,
    pub i256: IntType<'ctx>,
    pub ptr: PointerType<'ctx>,
    pub ctx_ptr: PointerValue<'ctx>,
    pub stack_base: PointerValue<'ctx>,
    pub gas_var: PointerValue<'ctx>,
    pub len_var: PointerValue<'ctx>,
    pub jt_var: PointerValue<'ctx>,
    /// Pc of a pending deopt exit, read by the shared deopt block.
    pub pc_var: PointerValue<'ctx>,
    /// Operands and result of the arithmetic builtins (three words).
    pub arith_var: PointerValue<'ctx>,
    pub exits: Exits<'ctx>,
    pub a: &'a Analysis,
    pub spec: SpecId,
    pub gas_table: [u16; 256],
    block_bbs: Vec<Option<BasicBlock<'ctx>>>,
    dispatch_bb: Option<BasicBlock<'ctx>>,
    /// The only block each block is entered from, if any (see
    /// [`Analysis::single_predecessors`]): such a block starts from its
    /// predecessor's virtual stack, with no stack check of its own.
    preds: Vec<Option<usize>>,
    /// Virtual stacks handed from a block to its single successors.
    inherited: Vec<Option<VStack<'ctx>>>,
    /// Entry-length bounds a block that others inherit from checks for all
    /// of them: `lower <= len <= upper`.
    bounds: Vec<(i64, i64)>,
}

/// Builds the LLVM module for one contract.
pub fn build_module<'ctx>(
    cx: &'ctx Context,
    analysis: &Analysis,
    spec: SpecId,
    meta: &ArtifactMetadata,
) -> R<Module<'ctx>> {
    let m = cx.create_module("evmc_contract");
    let b = cx.create_builder();
    let ptr = cx.ptr_type(AddressSpace::default());
    let i32t = cx.i32_type();
    let fn_ty = i32t.fn_type(&[ptr.into()], false);
    let f = m.add_function(ENTRY_SYMBOL, fn_ty, Some(Linkage::External));
    let noalias = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("noalias"), 0);
    f.add_attribute(AttributeLoc::Param(0), noalias);
    let nounwind = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("nounwind"), 0);
    f.add_attribute(AttributeLoc::Function, nounwind);

    // Metadata record, readable from the file without loading it.
    let bytes = meta.as_bytes();
    let init = cx.const_string(bytes, false);
    let g = m.add_global(init.get_type(), None, METADATA_SYMBOL);
    g.set_initializer(&init);
    g.set_constant(true);
    g.set_linkage(Linkage::External);

    let entry = cx.append_basic_block(f, "entry");
    b.position_at_end(entry);
    let ctx_ptr = f.get_nth_param(0).unwrap().into_pointer_value();
    let i64t = cx.i64_type();
    let gas_var = b.build_alloca(i64t, "gas")?;
    let len_var = b.build_alloca(i64t, "len")?;
    let jt_var = b.build_alloca(
        cx.custom_width_int_type(std::num::NonZeroU32::new(256).unwrap())
            .unwrap(),
        "jump_target",
    )?;
    let pc_var = b.build_alloca(i64t, "deopt_pc")?;
    let arith_var = b.build_alloca(i64t.array_type(12), "arith")?;
    let exits = Exits {
        out_of_gas: cx.append_basic_block(f, "exit_out_of_gas"),
        builtin: cx.append_basic_block(f, "exit_builtin"),
        invalid_jump: cx.append_basic_block(f, "exit_invalid_jump"),
        stop: cx.append_basic_block(f, "exit_stop"),
        deopt: cx.append_basic_block(f, "exit_deopt"),
    };

    let mut g = Gen {
        cx,
        b,
        f,
        i1: cx.bool_type(),
        i8: cx.i8_type(),
        i32: i32t,
        i64: i64t,
        i256: cx
            .custom_width_int_type(std::num::NonZeroU32::new(256).unwrap())
            .unwrap(),
        ptr,
        ctx_ptr,
        stack_base: ptr.const_null(),
        gas_var,
        len_var,
        jt_var,
        pc_var,
        arith_var,
        exits,
        a: analysis,
        spec,
        gas_table: static_gas_table(spec),
        block_bbs: vec![None; analysis.blocks.len()],
        dispatch_bb: None,
        preds: analysis.single_predecessors(),
        inherited: vec![None; analysis.blocks.len()],
        bounds: Vec::new(),
        m,
    };
    let mut children = vec![Vec::new(); analysis.blocks.len()];
    for (s, p) in g.preds.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(s);
        }
    }
    g.bounds = stack_bounds(analysis, &g.preds, &children);
    g.stack_base = g.load_ctx_ptr(ctx_offsets::STACK)?;
    let gas0 = g.load_ctx_i64(ctx_offsets::GAS)?;
    g.b.build_store(gas_var, gas0)?;
    let len0 = g.load_ctx_i64(ctx_offsets::STACK_LEN)?;
    g.b.build_store(len_var, len0)?;
    let resume = g.load_ctx_i64(ctx_offsets::RESUME_PC)?;
    g.b.build_store(pc_var, resume)?;

    for (i, blk) in analysis.blocks.iter().enumerate() {
        if blk.reachable {
            g.block_bbs[i] = Some(cx.append_basic_block(f, &format!("b{}_pc{}", i, blk.start_pc)));
        }
    }
    if analysis.has_dynamic_jumps {
        g.dispatch_bb = Some(cx.append_basic_block(f, "dispatch"));
    }

    // Entry dispatch on the resume pc.
    let unknown_resume = cx.append_basic_block(f, "unknown_resume");
    let mut cases = vec![(i64t.const_zero(), g.block_bbs[0].unwrap())];
    for (i, blk) in analysis.blocks.iter().enumerate() {
        if blk.is_resume && blk.reachable && blk.start_pc != 0 {
            cases.push((
                i64t.const_int(blk.start_pc as u64, false),
                g.block_bbs[i].unwrap(),
            ));
        }
    }
    g.b.build_switch(resume, unknown_resume, &cases)?;
    g.b.position_at_end(unknown_resume);
    g.b.build_unconditional_branch(exits.deopt)?;
    g.gen_exits()?;

    // A block is generated after the block it inherits from.
    for i in 0..analysis.blocks.len() {
        if analysis.blocks[i].reachable && g.preds[i].is_none() {
            let mut todo = vec![i];
            while let Some(b) = todo.pop() {
                g.gen_block(b)?;
                todo.extend(children[b].iter().copied());
            }
        }
    }
    if let Some(d) = g.dispatch_bb {
        g.gen_dispatch(d)?;
    }
    Ok(g.m)
}

/// The entry-length bounds of each block that does not inherit a virtual
/// stack, covering every block that inherits from it, directly or not (their
/// entry lengths differ from its own by constants). A failed check deopts at
/// the start of that block, where memory holds the stack, and the
/// interpreter takes over from there: exact, even when the block that
/// cannot run lies on a path the frame would not have taken.
fn stack_bounds(a: &Analysis, preds: &[Option<usize>], children: &[Vec<usize>]) -> Vec<(i64, i64)> {
    let n = a.blocks.len();
    let limit = STACK_LIMIT as i64;
    let mut bounds = vec![(0i64, limit); n];
    for h in 0..n {
        if preds[h].is_some() || !a.blocks[h].reachable {
            continue;
        }
        let (mut lower, mut upper) = (0i64, limit);
        // (block, its entry length minus the head's)
        let mut todo = vec![(h, 0i64)];
        while let Some((b, d)) = todo.pop() {
            let blk = &a.blocks[b];
            lower = lower.max(blk.min_in as i64 - d);
            upper = upper.min(limit - blk.max_growth as i64 - d);
            let next = d + blk.delta as i64;
            todo.extend(children[b].iter().map(|&s| (s, next)));
        }
        bounds[h] = (lower, upper);
    }
    bounds
}

/// Number of instructions in all functions of `m`.
pub fn instruction_count(m: &Module<'_>) -> usize {
    m.get_functions()
        .flat_map(|f| f.get_basic_block_iter())
        .map(|bb| bb.get_instructions().count())
        .sum()
}

impl<'a, 'ctx> Gen<'a, 'ctx> {
    // ---- ctx field access -------------------------------------------------

    pub fn ctx_field(&self, off: u32) -> R<PointerValue<'ctx>> {
        unsafe {
            self.b.build_gep(
                self.i8,
                self.ctx_ptr,
                &[self.i64.const_int(off as u64, false)],
                "",
            )
        }
    }
    pub fn load_ctx_i64(&self, off: u32) -> R<IntValue<'ctx>> {
        let p = self.ctx_field(off)?;
        Ok(self.b.build_load(self.i64, p, "")?.into_int_value())
    }
    pub fn load_ctx_ptr(&self, off: u32) -> R<PointerValue<'ctx>> {
        let p = self.ctx_field(off)?;
        Ok(self.b.build_load(self.ptr, p, "")?.into_pointer_value())
    }
    pub fn store_ctx_i64(&self, off: u32, v: IntValue<'ctx>) -> R<()> {
        let p = self.ctx_field(off)?;
        self.b.build_store(p, v)?;
        Ok(())
    }

    pub fn const_i64(&self, v: u64) -> IntValue<'ctx> {
        self.i64.const_int(v, false)
    }

    pub fn new_bb(&self, name: &str) -> BasicBlock<'ctx> {
        self.cx.append_basic_block(self.f, name)
    }

    /// Hints that `c` is almost always true.
    pub fn likely(&self, c: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let expect = Intrinsic::find("llvm.expect").unwrap();
        let decl = expect.get_declaration(&self.m, &[self.i1.into()]).unwrap();
        let r = self
            .b
            .build_call(decl, &[c.into(), self.i1.const_int(1, false).into()], "")?;
        Ok(r.try_as_basic_value().basic().unwrap().into_int_value())
    }

    // ---- exits ------------------------------------------------------------

    fn ret(&self, status: u32) -> R<()> {
        self.b
            .build_return(Some(&self.i32.const_int(status as u64, false)))?;
        Ok(())
    }

    fn gen_exits(&self) -> R<()> {
        let e = self.exits;
        self.b.position_at_end(e.out_of_gas);
        self.ret(exit::OUT_OF_GAS)?;
        self.b.position_at_end(e.builtin);
        self.ret(exit::BUILTIN)?;
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
    fn deopt_at(&self, pc: u64) -> R<()> {
        self.b.build_store(self.pc_var, self.const_i64(pc))?;
        self.b.build_unconditional_branch(self.exits.deopt)?;
        Ok(())
    }

    /// Branches to `ok` when `cond` holds, else to the exit block `cold`.
    pub fn check(&self, cond: IntValue<'ctx>, cold: BasicBlock<'ctx>, name: &str) -> R<()> {
        let cond = self.likely(cond)?;
        let ok = self.new_bb(name);
        self.b.build_conditional_branch(cond, ok, cold)?;
        self.b.position_at_end(ok);
        Ok(())
    }

    pub fn load_gas(&self) -> R<IntValue<'ctx>> {
        Ok(self
            .b
            .build_load(self.i64, self.gas_var, "gas")?
            .into_int_value())
    }

    // ---- builtins ---------------------------------------------------------

    pub(crate) fn builtin_fn(&self, off: u32) -> R<PointerValue<'ctx>> {
        let table = self.load_ctx_ptr(ctx_offsets::BUILTINS)?;
        let p = unsafe {
            self.b
                .build_gep(self.i8, table, &[self.const_i64(off as u64)], "")?
        };
        Ok(self
            .b
            .build_load(self.ptr, p, "builtin")?
            .into_pointer_value())
    }

    /// Runs `opcode` through the interpreter's instruction function. The
    /// virtual stack is written back first and is empty afterwards.
    pub fn call_exec_op(&self, vs: &mut VStack<'ctx>, opcode: u8, pc: u32) -> R<()> {
        let len = vs.flush(self)?;
        self.store_ctx_i64(ctx_offsets::STACK_LEN, len)?;
        let gas = self.load_gas()?;
        self.store_ctx_i64(ctx_offsets::GAS, gas)?;
        let fptr = self.builtin_fn(builtin_offsets::EXEC_OP)?;
        let fty = self
            .i32
            .fn_type(&[self.ptr.into(), self.i32.into(), self.i32.into()], false);
        let r = self
            .b
            .build_indirect_call(
                fty,
                fptr,
                &[
                    self.ctx_ptr.into(),
                    self.i32.const_int(opcode as u64, false).into(),
                    self.i32.const_int(pc as u64, false).into(),
                ],
                "r",
            )?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        let ok = self
            .b
            .build_int_compare(IntPredicate::EQ, r, self.i32.const_zero(), "")?;
        self.check(ok, self.exits.builtin, "op_ok")?;
        let gas = self.load_ctx_i64(ctx_offsets::GAS)?;
        self.b.build_store(self.gas_var, gas)?;
        let len = self.load_ctx_i64(ctx_offsets::STACK_LEN)?;
        *vs = VStack::new(len);
        Ok(())
    }

    // ---- blocks -----------------------------------------------------------

    fn bb_of_pc(&self, pc: u32) -> BasicBlock<'ctx> {
        let idx = self.a.jumpdests[&pc];
        self.block_bbs[idx].expect("jump target must be reachable")
    }

    fn gen_block(&mut self, bi: usize) -> R<()> {
        let bb = self.block_bbs[bi].unwrap();
        self.b.position_at_end(bb);
        let vs = match self.inherited[bi].take() {
            Some(vs) => vs,
            None => self.enter_from_memory(bi)?,
        };
        self.gen_block_body(bi, vs)
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
        let (lower, upper) = self.bounds[bi];
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
        if let Some(mut c) = conds.pop() {
            for o in conds {
                c = self.b.build_and(c, o, "")?;
            }
            let c = self.likely(c)?;
            let ok = self.new_bb("stack_ok");
            let bad = self.new_bb("stack_bad");
            self.b.build_conditional_branch(c, ok, bad)?;
            self.b.position_at_end(bad);
            self.deopt_at(blk.start_pc as u64)?;
            self.b.position_at_end(ok);
        }
        Ok(vs)
    }

    fn gen_block_body(&mut self, bi: usize, mut vs: VStack<'ctx>) -> R<()> {
        let blk: &Block = &self.a.blocks[bi];
        let insts = blk.insts(self.a);
        let n = insts.len();
        let mut need_gas_check = true;
        let mut after = vec![0u64; n];
        for (i, inst) in insts.iter().enumerate() {
            if need_gas_check {
                // Charge this segment: up to and including the next instruction
                // whose gas is dynamic, or the end of the block.
                let mut end = i;
                while end + 1 < n && !self.is_dynamic(insts[end].op) {
                    end += 1;
                }
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
            if self.is_dynamic(inst.op) {
                need_gas_check = true;
            }
            if (i + 1) % SPLIT_EVERY == 0 && i + 2 < n {
                // Instruction selection is superlinear in the size of one
                // LLVM block: cut very long straight-line code in pieces,
                // passing the stack through memory.
                vs.commit(self)?;
                let next = self.new_bb("split");
                self.b.build_unconditional_branch(next)?;
                self.b.position_at_end(next);
            }
        }
        self.gen_terminator(bi, vs)
    }

    /// Whether a gas segment ends after `opcode`: its gas or its effects go
    /// beyond a static charge, so what follows is charged separately (see the
    /// module comment on why that makes a failed check an exact halt).
    fn is_dynamic(&self, opcode: u8) -> bool {
        matches!(
            lowering(opcode, self.spec),
            Lowering::Builtin | Lowering::InlineMemory
        )
    }

    fn charge_segment(&self, cost: u64) -> R<()> {
        let gas = self.load_gas()?;
        let c = self.const_i64(cost);
        let enough = self.b.build_int_compare(IntPredicate::UGE, gas, c, "")?;
        self.check(enough, self.exits.out_of_gas, "gas_ok")?;
        let rest = self.b.build_int_sub(gas, c, "")?;
        self.b.build_store(self.gas_var, rest)?;
        Ok(())
    }

    fn gen_terminator(&mut self, bi: usize, mut vs: VStack<'ctx>) -> R<()> {
        let blk = &self.a.blocks[bi];
        let last = blk.insts(self.a).last().unwrap();
        let next_bb = self.block_bbs.get(bi + 1).copied().flatten();
        match blk.term {
            Terminator::Fallthrough | Terminator::Suspend => match next_bb {
                Some(_) => self.goto_block(bi, bi + 1, vs)?,
                None => {
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
                let nb = next_bb.expect("fallthrough of a reachable JUMPI is reachable");
                let c =
                    self.b
                        .build_int_compare(IntPredicate::NE, cond, self.i256.const_zero(), "")?;
                let taken = self.new_bb("jumpi_taken");
                let taken_inherits =
                    matches!(t, JumpTarget::Static(pc) if self.inherits(bi, self.a.jumpdests[&pc]));
                if !taken_inherits && !self.inherits(bi, bi + 1) {
                    // Both successors read the stack from memory: one store
                    // sequence before the branch.
                    vs.commit(self)?;
                    self.b.build_conditional_branch(c, taken, nb)?;
                    self.b.position_at_end(taken);
                    self.jump_to(t, target)?;
                } else {
                    let fall = self.new_bb("jumpi_fall");
                    self.b.build_conditional_branch(c, taken, fall)?;
                    self.b.position_at_end(taken);
                    self.take_jump(bi, t, target, vs.clone())?;
                    self.b.position_at_end(fall);
                    self.goto_block(bi, bi + 1, vs)?;
                }
            }
        }
        Ok(())
    }

    /// Whether block `to` starts from the virtual stack `from` ends with.
    fn inherits(&self, from: usize, to: usize) -> bool {
        self.preds.get(to) == Some(&Some(from))
    }

    /// Continues from block `from` into block `to`: with the virtual stack
    /// if `to` inherits it, through memory otherwise.
    fn goto_block(&mut self, from: usize, to: usize, mut vs: VStack<'ctx>) -> R<()> {
        if self.inherits(from, to) {
            self.inherited[to] = Some(vs);
        } else {
            vs.commit(self)?;
        }
        let bb = self.block_bbs[to].expect("a successor of a reachable block is reachable");
        self.b.build_unconditional_branch(bb)?;
        Ok(())
    }

    fn take_jump(
        &mut self,
        from: usize,
        t: JumpTarget,
        target: IntValue<'ctx>,
        mut vs: VStack<'ctx>,
    ) -> R<()> {
        match t {
            JumpTarget::Static(pc) => self.goto_block(from, self.a.jumpdests[&pc], vs),
            // The stack of a halted frame is never read.
            JumpTarget::Invalid => self.jump_to(t, target),
            JumpTarget::Dynamic => {
                vs.commit(self)?;
                self.jump_to(t, target)
            }
        }
    }

    fn jump_to(&self, t: JumpTarget, target: IntValue<'ctx>) -> R<()> {
        match t {
            JumpTarget::Static(dest) => {
                self.b.build_unconditional_branch(self.bb_of_pc(dest))?;
            }
            JumpTarget::Invalid => {
                self.b.build_unconditional_branch(self.exits.invalid_jump)?;
            }
            JumpTarget::Dynamic => {
                self.b.build_store(self.jt_var, target)?;
                self.b
                    .build_unconditional_branch(self.dispatch_bb.unwrap())?;
            }
        }
        Ok(())
    }

    /// One switch over every JUMPDEST; anything else is an invalid jump.
    fn gen_dispatch(&self, d: BasicBlock<'ctx>) -> R<()> {
        self.b.position_at_end(d);
        let t = self
            .b
            .build_load(self.i256, self.jt_var, "target")?
            .into_int_value();
        let invalid = self.exits.invalid_jump;
        let small = self.b.build_int_compare(
            IntPredicate::ULT,
            t,
            self.i256.const_int(u32::MAX as u64, false),
            "",
        )?;
        let sw = self.new_bb("dispatch_switch");
        self.b.build_conditional_branch(small, sw, invalid)?;
        self.b.position_at_end(sw);
        let t32 = self.b.build_int_truncate(t, self.i32, "")?;
        let cases: Vec<_> = self
            .a
            .jumpdests
            .iter()
            .filter_map(|(&pc, &bi)| {
                self.block_bbs[bi].map(|bb| (self.i32.const_int(pc as u64, false), bb))
            })
            .collect();
        self.b.build_switch(t32, invalid, &cases)?;
        Ok(())
    }
}
