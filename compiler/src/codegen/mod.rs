//! Lowering of an analysed contract to LLVM functions.
//!
//! Shape of the generated code:
//! - `u32 evmc_entry(ExecCtx*)` loads gas and stack length and calls the
//!   *part* holding the frame's entry or resume point (`ctx.resume_pc`: 0
//!   for a fresh frame, the pc after a CALL/CREATE when resuming); an
//!   unknown resume pc deoptimises to the interpreter;
//! - the contract is cut into parts, functions of bounded size (see
//!   [`partition`]), so that LLVM's superlinear passes stay cheap; parts
//!   continue in each other by guaranteed tail calls that carry gas, stack
//!   length and pc, and a dynamic jump to another part goes through one
//!   dispatch function;
//! - each reachable basic block checks its stack bounds once, then runs in
//!   gas *segments*: the static gas of all instructions up to and including
//!   the next one with dynamic gas is charged with a single check;
//! - stack values live in SSA registers ([`VStack`]) inside a block and
//!   along edges that allow it: a block with one static predecessor
//!   inherits its virtual stack, and a block entered only by static edges
//!   of its part (loop headers, joins) takes its top words as phis; memory
//!   holds the stack only at dynamic jumps, builtin calls and exits;
//! - a failed stack-bounds check never decides the outcome itself: it hands
//!   the frame, in exactly the interpreter's state at the block start, to the
//!   interpreter (`exit::DEOPT`), which then reports the same halt reason and
//!   gas it always would;
//! - a failed gas check is an out-of-gas halt (`exit::OUT_OF_GAS`): a segment
//!   ends at the first instruction with dynamic gas or effects, so the
//!   interpreter would run out of gas at one of its static charges, and no
//!   instruction before that point can halt in another way;
//! - every exit jumps to one shared block per kind and function, so cold
//!   paths cost a branch, not a copy of the machine state.

pub mod llvm_workarounds;
mod memory;
mod ops;
mod partition;
mod vstack;

use crate::analysis::{Analysis, Block, JumpTarget, Terminator};
use crate::revm_api::{static_gas_table, SpecId};
use evmc_interface::{
    ctx_offsets, exit, AbiType, ArtifactMetadata, Builtin, ENTRY_SYMBOL, METADATA_SYMBOL,
    STACK_LIMIT,
};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::{BasicMetadataTypeEnum, FunctionType, IntType, PointerType};
use inkwell::values::{
    BasicMetadataValueEnum, CallSiteValue, FunctionValue, GlobalValue, IntValue, LLVMTailCallKind,
    PhiValue, PointerValue,
};
use inkwell::AddressSpace;
use inkwell::GlobalVisibility;
use inkwell::IntPredicate;
use partition::Partition;
use revm::bytecode::opcode as op;
use vstack::VStack;

pub(crate) type R<T> = Result<T, BuilderError>;

/// LLVM's `preserve_nonecc` for parts and the dispatch: a part keeps no
/// register of its caller, so a transfer between parts (a tail call) saves
/// and restores none. Only the entry function, called from Rust, saves the
/// callee-saved registers, once per frame entry.
const PRESERVE_NONE_CC: u32 = 21;

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

/// The shared exit blocks of one function.
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

impl<'ctx> Exits<'ctx> {
    fn new(cx: &'ctx Context, f: FunctionValue<'ctx>) -> Self {
        Self {
            out_of_gas: cx.append_basic_block(f, "exit_out_of_gas"),
            builtin: cx.append_basic_block(f, "exit_builtin"),
            invalid_jump: cx.append_basic_block(f, "exit_invalid_jump"),
            stop: cx.append_basic_block(f, "exit_stop"),
            deopt: cx.append_basic_block(f, "exit_deopt"),
        }
    }
}

/// Code generation state. The fields from `f` to `exits` belong to the
/// function being generated (a part, see [`partition`]).
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
    partition: Partition,
    /// For a block entered only by static edges of its own part (a loop
    /// header, a join, an internal function's entry): how many of its top
    /// stack words it receives as SSA values (phis) instead of through
    /// memory. 0 for all other blocks.
    phi_words: Vec<usize>,
    /// The phis of such a block: its base length, then its top words from
    /// the deepest up. Created by whichever comes first, the block or an
    /// edge into it.
    phis: Vec<Option<(PhiValue<'ctx>, Vec<PhiValue<'ctx>>)>>,
    /// The part being generated.
    part: usize,
    part_fns: Vec<FunctionValue<'ctx>>,
    /// Enters the dynamic-jump targets of other parts.
    dispatch_fn: Option<FunctionValue<'ctx>>,
    jump_table: Option<JumpTable<'ctx>>,
}

/// `table[pc]` for every pc of the code: 1 + the entry number of a
/// dynamic-jump target, `sentinel` for any other JUMPDEST, 0 elsewhere.
/// One load turns a jump target into a dense number that switches
/// take through jump tables, instead of searching sparse pcs.
#[derive(Clone, Copy)]
struct JumpTable<'ctx> {
    table: GlobalValue<'ctx>,
    elem: IntType<'ctx>,
    sentinel: u64,
}

fn jump_table<'ctx>(
    cx: &'ctx Context,
    m: &Module<'ctx>,
    a: &Analysis,
    partition: &Partition,
    shard: Shard,
    main: bool,
) -> JumpTable<'ctx> {
    let wide = partition.entries as u64 + 2 >= u16::MAX as u64;
    let (elem, sentinel) = match wide {
        false => (cx.i16_type(), u16::MAX as u64),
        true => (cx.i32_type(), u32::MAX as u64),
    };
    let ty = elem.array_type(a.code_len as u32);
    let table = m.add_global(ty, None, "evmc_jump_table");
    if shard.count > 1 {
        table.set_visibility(GlobalVisibility::Hidden);
    } else {
        table.set_linkage(Linkage::Private);
    }
    if main {
        let mut values = vec![elem.const_zero(); a.code_len];
        for (&pc, &b) in &a.jumpdests {
            let v = match (a.is_dynamic_target(b), partition.entry_of[b]) {
                (true, Some(e)) => e as u64 + 1,
                _ => sentinel,
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

/// Which parts of the contract a module defines: shard `index` of `count`
/// (contiguous runs of parts of about equal size). Shards are compiled on
/// separate threads, each in its own LLVM context, and linked together;
/// shard 0 also holds the entry function, the dispatch and the metadata.
#[derive(Clone, Copy, Debug)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
}

/// How many shards `analysis` is worth: one per `SHARD_INSTS` EVM
/// instructions, at most `threads`, at most one per part. Build every
/// shard `0..count` with this count.
pub fn shard_count(analysis: &Analysis, threads: usize) -> usize {
    const SHARD_INSTS: usize = 2000;
    let wanted = (analysis.insts.len() / SHARD_INSTS).clamp(1, threads.max(1));
    if wanted == 1 {
        return 1;
    }
    let preds = analysis.single_predecessors();
    let children = children_of(&preds);
    Partition::new(analysis, &preds, &children, partition::part_budget())
        .shards(analysis, wanted)
        .1
}

fn children_of(preds: &[Option<usize>]) -> Vec<Vec<usize>> {
    let mut children = vec![Vec::new(); preds.len()];
    for (s, p) in preds.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(s);
        }
    }
    children
}

/// Builds the LLVM module for one contract, or for one shard of it.
pub fn build_module<'ctx>(
    cx: &'ctx Context,
    analysis: &Analysis,
    spec: SpecId,
    meta: &ArtifactMetadata,
    shard: Shard,
) -> R<Module<'ctx>> {
    let m = cx.create_module("evmc_contract");
    let b = cx.create_builder();
    let ptr = cx.ptr_type(AddressSpace::default());
    let i32t = cx.i32_type();
    let i64t = cx.i64_type();
    let noalias = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("noalias"), 0);
    let nounwind = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("nounwind"), 0);
    let noinline = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("noinline"), 0);
    let entry_ty = i32t.fn_type(&[ptr.into()], false);
    let main = shard.index == 0;
    let f = m.add_function(ENTRY_SYMBOL, entry_ty, Some(Linkage::External));
    f.add_attribute(AttributeLoc::Param(0), noalias);
    f.add_attribute(AttributeLoc::Function, nounwind);

    if main {
        // Metadata record, readable from the file without loading it.
        let bytes = meta.as_bytes();
        let init = cx.const_string(bytes, false);
        let g = m.add_global(init.get_type(), None, METADATA_SYMBOL);
        g.set_initializer(&init);
        g.set_constant(true);
        g.set_linkage(Linkage::External);
    }

    let preds = analysis.single_predecessors();
    let children = children_of(&preds);
    let bounds = stack_bounds(analysis, &preds, &children);
    let partition = Partition::new(analysis, &preds, &children, partition::part_budget());
    let phi_words = phi_words(analysis, &preds, &partition, &bounds);
    let (shard_of, _) = partition.shards(analysis, shard.count);

    // Parts and the dispatch share one signature, so that every transfer
    // between them is a guaranteed tail call: (ctx, gas, stack length, pc,
    // entry number).
    // In a sharded build they are hidden symbols, resolved by the linker
    // inside the shared object.
    let part_ty = i32t.fn_type(
        &[
            ptr.into(),
            i64t.into(),
            i64t.into(),
            i64t.into(),
            i64t.into(),
        ],
        false,
    );
    let declare = |name: &str, here: bool| {
        let linkage = match shard.count {
            1 => Linkage::Private,
            _ => Linkage::External,
        };
        let f = m.add_function(name, part_ty, Some(linkage));
        if shard.count > 1 {
            f.as_global_value().set_visibility(GlobalVisibility::Hidden);
        }
        f.set_call_conventions(PRESERVE_NONE_CC);
        f.add_attribute(AttributeLoc::Param(0), noalias);
        f.add_attribute(AttributeLoc::Function, nounwind);
        f.add_attribute(AttributeLoc::Function, noinline);
        if here {
            // The entry block must come first in the function.
            cx.append_basic_block(f, "entry");
        }
        f
    };
    let part_fns: Vec<_> = (0..partition.heads.len())
        .map(|k| declare(&format!("evmc_part{k}"), shard_of[k] == shard.index))
        .collect();
    let dispatch_fn = analysis
        .has_dynamic_jumps
        .then(|| declare("evmc_dispatch", main));
    let jump_table = analysis
        .has_dynamic_jumps
        .then(|| jump_table(cx, &m, analysis, &partition, shard, main));
    let first_here = (0..part_fns.len())
        .find(|&k| shard_of[k] == shard.index)
        .expect("every shard has a part");

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
        ctx_ptr: ptr.const_null(),
        stack_base: ptr.const_null(),
        builtins: ptr.const_null(),
        gas_var: ptr.const_null(),
        len_var: ptr.const_null(),
        jt_var: ptr.const_null(),
        pc_var: ptr.const_null(),
        arith_var: ptr.const_null(),
        exits: Exits::new(cx, part_fns[first_here]),
        a: analysis,
        spec,
        gas_table: static_gas_table(spec),
        block_bbs: vec![None; analysis.blocks.len()],
        dispatch_bb: None,
        preds,
        inherited: vec![None; analysis.blocks.len()],
        bounds,
        partition,
        phis: vec![None; analysis.blocks.len()],
        phi_words,
        part: 0,
        part_fns,
        dispatch_fn,
        jump_table,
        m,
    };
    if main {
        g.gen_entry(f)?;
        if let Some(d) = g.dispatch_fn {
            g.gen_global_dispatch(d)?;
        }
    } else {
        // Only shard 0 defines it.
        unsafe { f.delete() };
    }
    let here = (0..shard_of.len()).filter(|&k| shard_of[k] == shard.index);
    for k in here {
        g.gen_part(k, &children)?;
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

/// Most stack words a block receives as phis: enough for the loops and
/// joins of compiler-generated code, few enough that the edges into a
/// block do not load words it may not read.
const MAX_PHI_WORDS: i64 = 8;

/// See [`Gen::phi_words`]: as many words as the block and the blocks that
/// inherit from it read below its entry height (the lower bound of its
/// stack check), at most [`MAX_PHI_WORDS`].
fn phi_words(
    a: &Analysis,
    preds: &[Option<usize>],
    partition: &Partition,
    bounds: &[(i64, i64)],
) -> Vec<usize> {
    (0..a.blocks.len())
        .map(|b| {
            let static_only = a.blocks[b].reachable && preds[b].is_none() && !partition.external[b];
            match static_only {
                true => bounds[b].0.clamp(0, MAX_PHI_WORDS) as usize,
                false => 0,
            }
        })
        .collect()
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

    // ---- functions --------------------------------------------------------

    /// `evmc_entry(ctx)`: enters the part holding the frame's entry or
    /// resume point. An unknown resume pc deoptimises; the ctx still holds
    /// the frame's state then.
    fn gen_entry(&mut self, f: FunctionValue<'ctx>) -> R<()> {
        let entry = self.cx.append_basic_block(f, "entry");
        self.b.position_at_end(entry);
        self.ctx_ptr = f.get_nth_param(0).unwrap().into_pointer_value();
        let gas = self.load_ctx_i64(ctx_offsets::GAS)?;
        let len = self.load_ctx_i64(ctx_offsets::STACK_LEN)?;
        let resume = self.load_ctx_i64(ctx_offsets::RESUME_PC)?;
        let unknown = self.cx.append_basic_block(f, "unknown_resume");
        let mut cases = Vec::new();
        for (i, blk) in self.a.blocks.iter().enumerate() {
            if blk.reachable && (i == 0 || blk.is_resume) {
                let bb = self.cx.append_basic_block(f, &format!("enter_b{i}"));
                cases.push((self.const_i64(blk.start_pc as u64), bb));
                let here = self.b.get_insert_block().unwrap();
                self.b.position_at_end(bb);
                // Not `musttail` (the signatures differ): one native frame
                // below the parts, which transfer among themselves by
                // guaranteed tail calls.
                let e = self.partition.entry_of[i].expect("entry points are external");
                let args = [
                    self.ctx_ptr.into(),
                    gas.into(),
                    len.into(),
                    resume.into(),
                    self.const_i64(e as u64).into(),
                ];
                let p = self.partition.part_of[i];
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

    /// Part `k`: enters the block at its `pc` argument, runs until the frame
    /// exits or continues in another part.
    fn gen_part(&mut self, k: usize, children: &[Vec<usize>]) -> R<()> {
        let f = self.part_fns[k];
        self.f = f;
        self.part = k;
        let entry = f
            .get_first_basic_block()
            .expect("created with the function");
        if self.exits.out_of_gas.get_parent() != Some(f) {
            self.exits = Exits::new(self.cx, f);
        }
        self.b.position_at_end(entry);
        let param = |i| f.get_nth_param(i).unwrap();
        self.ctx_ptr = param(0).into_pointer_value();
        self.gas_var = self.b.build_alloca(self.i64, "gas")?;
        self.len_var = self.b.build_alloca(self.i64, "len")?;
        self.jt_var = self.b.build_alloca(self.i256, "jump_target")?;
        self.pc_var = self.b.build_alloca(self.i64, "deopt_pc")?;
        self.arith_var = self.b.build_alloca(self.i64.array_type(12), "arith")?;
        self.b.build_store(self.gas_var, param(1))?;
        self.b.build_store(self.len_var, param(2))?;
        let pc = param(3).into_int_value();
        self.b.build_store(self.pc_var, pc)?;
        self.stack_base = self.load_invariant_ptr(self.ctx_field(ctx_offsets::STACK)?)?;
        self.builtins = self.load_invariant_ptr(self.ctx_field(ctx_offsets::BUILTINS)?)?;

        let mut members = Vec::new();
        let mut todo = self.partition.heads[k].clone();
        while let Some(b) = todo.pop() {
            members.push(b);
            todo.extend(children[b].iter().copied());
        }
        members.sort_unstable();
        for &i in &members {
            let name = format!("b{}_pc{}", i, self.a.blocks[i].start_pc);
            self.block_bbs[i] = Some(self.new_bb(&name));
        }
        self.dispatch_bb = self.a.has_dynamic_jumps.then(|| self.new_bb("dispatch"));
        let cases: Vec<_> = members
            .iter()
            .filter_map(|&i| {
                let e = self.partition.entry_of[i]?;
                Some((self.const_i64(e as u64), self.block_bbs[i].unwrap()))
            })
            .collect();
        // Only the entry function and other parts call a part, with the
        // entry number and pc of a block marked external; anything else
        // would be a bug, which the interpreter resolves exactly at `pc`.
        let entry_no = param(4).into_int_value();
        self.b.build_switch(entry_no, self.exits.deopt, &cases)?;
        self.gen_exits()?;

        // A block is generated after the block it inherits from.
        for h in self.partition.heads[k].clone() {
            let mut todo = vec![h];
            while let Some(b) = todo.pop() {
                self.gen_block(b)?;
                todo.extend(children[b].iter().copied());
            }
        }
        if let Some(d) = self.dispatch_bb {
            self.gen_dispatch(d)?;
        }
        Ok(())
    }

    /// Continues in `callee` (a part or the dispatch) at `pc`. A guaranteed
    /// tail call: control moves between parts without growing the native
    /// stack, however long the frame runs.
    fn tail_call(
        &self,
        callee: FunctionValue<'ctx>,
        gas: IntValue<'ctx>,
        len: IntValue<'ctx>,
        pc: IntValue<'ctx>,
        entry: IntValue<'ctx>,
    ) -> R<()> {
        let args = [
            self.ctx_ptr.into(),
            gas.into(),
            len.into(),
            pc.into(),
            entry.into(),
        ];
        let call = self.b.build_call(callee, &args, "")?;
        call.set_call_convention(PRESERVE_NONE_CC);
        call.set_tail_call_kind(LLVMTailCallKind::LLVMTailCallKindMustTail);
        let r = call.try_as_basic_value().basic().unwrap();
        self.b.build_return(Some(&r))?;
        Ok(())
    }

    /// Enters block `to` with the stack committed to memory: a branch in
    /// this part, a tail call into another.
    fn enter_block(&self, to: usize) -> R<()> {
        let part = self.partition.part_of[to];
        if part == self.part {
            let bb = self.block_bbs[to].expect("a successor of a reachable block is reachable");
            self.b.build_unconditional_branch(bb)?;
            Ok(())
        } else {
            let len = self.b.build_load(self.i64, self.len_var, "len")?;
            let pc = self.const_i64(self.a.blocks[to].start_pc as u64);
            let e = self.partition.entry_of[to].expect("a cross-part target is external");
            self.tail_call(
                self.part_fns[part],
                self.load_gas()?,
                len.into_int_value(),
                pc,
                self.const_i64(e as u64),
            )
        }
    }

    /// The dispatch function: enters the part holding a dynamic-jump
    /// target, by the target's number from the jump table. A JUMPDEST that
    /// is no such target (see [`Analysis::pushed_targets`]) hands the frame
    /// to the interpreter there; anything else is an invalid jump.
    fn gen_global_dispatch(&mut self, f: FunctionValue<'ctx>) -> R<()> {
        let entry = f
            .get_first_basic_block()
            .expect("created with the function");
        self.b.position_at_end(entry);
        let param = |i| f.get_nth_param(i).unwrap().into_int_value();
        self.ctx_ptr = f.get_nth_param(0).unwrap().into_pointer_value();
        let (gas, len, pc, number) = (param(1), param(2), param(3), param(4));
        let jt = self.jump_table.expect("dynamic jumps have a jump table");
        let invalid = self.cx.append_basic_block(f, "invalid_jump");
        let deopt = self.cx.append_basic_block(f, "deopt");
        let mut part_bbs = vec![None; self.part_fns.len()];
        let mut cases = vec![(self.const_i64(jt.sentinel), deopt)];
        for &bi in self.a.jumpdests.values() {
            if !self.a.is_dynamic_target(bi) {
                continue;
            }
            let p = self.partition.part_of[bi];
            let bb = *part_bbs[p]
                .get_or_insert_with(|| self.cx.append_basic_block(f, &format!("to_part{p}")));
            let e = self.partition.entry_of[bi].expect("a dynamic target is external");
            cases.push((self.const_i64(e as u64 + 1), bb));
        }
        self.b.build_switch(number, invalid, &cases)?;
        self.b.position_at_end(invalid);
        self.store_ctx_i64(ctx_offsets::GAS, gas)?;
        self.ret(exit::INVALID_JUMP)?;
        self.b.position_at_end(deopt);
        self.store_ctx_i64(ctx_offsets::GAS, gas)?;
        self.store_ctx_i64(ctx_offsets::STACK_LEN, len)?;
        self.store_ctx_i64(ctx_offsets::RESUME_PC, pc)?;
        self.ret(exit::DEOPT)?;
        for (p, bb) in part_bbs.into_iter().enumerate() {
            if let Some(bb) = bb {
                self.b.position_at_end(bb);
                let e = self.b.build_int_sub(number, self.const_i64(1), "entry")?;
                self.tail_call(self.part_fns[p], gas, len, pc, e)?;
            }
        }
        Ok(())
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

    /// The LLVM type of a builtin's function, from its signature in the
    /// interface's builtin table.
    pub(crate) fn builtin_type(&self, builtin: Builtin) -> FunctionType<'ctx> {
        let sig = builtin.signature();
        let param = |t: &AbiType| -> BasicMetadataTypeEnum<'ctx> {
            match t {
                AbiType::I32 => self.i32.into(),
                AbiType::I64 => self.i64.into(),
                AbiType::Ptr => self.ptr.into(),
                AbiType::Void => unreachable!("no builtin takes a void argument"),
            }
        };
        let params: Vec<_> = sig.params.iter().map(param).collect();
        match sig.ret {
            AbiType::Void => self.cx.void_type().fn_type(&params, false),
            AbiType::I32 => self.i32.fn_type(&params, false),
            AbiType::I64 => self.i64.fn_type(&params, false),
            AbiType::Ptr => self.ptr.fn_type(&params, false),
        }
    }

    /// Calls `builtin` through the table with `args`.
    pub(crate) fn call_builtin(
        &self,
        builtin: Builtin,
        args: &[BasicMetadataValueEnum<'ctx>],
        name: &str,
    ) -> R<CallSiteValue<'ctx>> {
        let p = unsafe {
            self.b.build_gep(
                self.i8,
                self.builtins,
                &[self.const_i64(builtin.offset() as u64)],
                "",
            )?
        };
        let fptr = self.load_invariant_ptr(p)?;
        self.b
            .build_indirect_call(self.builtin_type(builtin), fptr, args, name)
    }

    /// Loads a pointer that stays the same for the whole frame (the builtin
    /// table and its entries, the stack array): marked so that LLVM loads
    /// it once per function rather than again after every call.
    fn load_invariant_ptr(&self, p: PointerValue<'ctx>) -> R<PointerValue<'ctx>> {
        let v = self.b.build_load(self.ptr, p, "")?;
        let kind = self.cx.get_kind_id("invariant.load");
        let empty = self.cx.metadata_node(&[]);
        v.into_pointer_value()
            .as_instruction()
            .expect("a load is an instruction")
            .set_metadata(empty, kind)
            .expect("metadata node");
        Ok(v.into_pointer_value())
    }

    /// Calls `builtin` (`u32 f(args)`, gas in the ctx): a
    /// non-zero result is a halt whose reason the runtime holds (stack and
    /// gas are not read again); otherwise the gas local is reloaded.
    pub(crate) fn call_halting_builtin(
        &self,
        builtin: Builtin,
        args: &[BasicMetadataValueEnum<'ctx>],
    ) -> R<()> {
        let r = self
            .call_builtin(builtin, args, "r")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        let ok = self
            .b
            .build_int_compare(IntPredicate::EQ, r, self.i32.const_zero(), "")?;
        self.check(ok, self.exits.builtin, "builtin_ok")?;
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
    pub fn call_exec_op(&self, vs: &mut VStack<'ctx>, opcode: u8, pc: u32) -> R<()> {
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

    // ---- blocks -----------------------------------------------------------

    fn gen_block(&mut self, bi: usize) -> R<()> {
        let bb = self.block_bbs[bi].unwrap();
        self.b.position_at_end(bb);
        let vs = match self.inherited[bi].take() {
            Some(vs) => vs,
            None if self.phi_words[bi] > 0 => {
                let (base, words) = self.phis_of(bi)?;
                let mut vs = VStack::new(base.as_basic_value().into_int_value());
                for w in words {
                    vs.push(w.as_basic_value().into_int_value());
                }
                vs
            }
            None => self.enter_from_memory(bi)?,
        };
        self.gen_block_body(bi, vs)
    }

    /// The phis at the start of block `to` (see [`Gen::phi_words`]).
    fn phis_of(&mut self, to: usize) -> R<(PhiValue<'ctx>, Vec<PhiValue<'ctx>>)> {
        if let Some(p) = &self.phis[to] {
            return Ok(p.clone());
        }
        let here = self.b.get_insert_block();
        self.b.position_at_end(self.block_bbs[to].unwrap());
        let base = self.b.build_phi(self.i64, "base")?;
        let words = (0..self.phi_words[to])
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
    fn enter_with_phis(&mut self, to: usize, mut vs: VStack<'ctx>) -> R<()> {
        let k = self.phi_words[to];
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
    /// [`stack_bounds`]) and continues where it does; returns the block
    /// taken where it does not, or `None` if every length fits.
    fn check_entry_len(
        &self,
        bi: usize,
        len: IntValue<'ctx>,
        name: &str,
    ) -> R<Option<BasicBlock<'ctx>>> {
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
        let insts = blk.insts(self.a);
        let n = insts.len();
        let splits_after = |i: usize| (i + 1).is_multiple_of(SPLIT_EVERY) && i + 2 < n;
        let mut need_gas_check = true;
        let mut after = vec![0u64; n];
        for (i, inst) in insts.iter().enumerate() {
            if need_gas_check {
                // Charge this segment: up to and including the next instruction
                // whose gas is dynamic, or the end of the block.
                let mut end = i;
                while end + 1 < n && !self.is_dynamic(insts[end].op) && !splits_after(end) {
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
            if splits_after(i) {
                // Instruction selection and scheduling are superlinear in
                // the size of one LLVM block: cut very long straight-line
                // code in pieces, passing the stack through memory, each
                // charging its own gas. The IR pipeline would merge pieces
                // joined by a plain branch back into one block, so the
                // branch tests a value LLVM cannot see is always false (a
                // register zeroed by inline assembly); the other side
                // deopts at the next instruction, exact if ever taken.
                vs.commit(self)?;
                let next = self.new_bb("split");
                let never = self.opaque_false()?;
                let cold = self.new_bb("split_deopt");
                self.b.build_conditional_branch(never, cold, next)?;
                self.b.position_at_end(cold);
                self.deopt_at(insts[i + 1].pc as u64)?;
                self.b.position_at_end(next);
                need_gas_check = true;
            }
        }
        self.gen_terminator(bi, vs)
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
        let has_next = self.a.blocks.get(bi + 1).is_some_and(|b| b.reachable);
        match blk.term {
            Terminator::Fallthrough | Terminator::Suspend => match has_next {
                true => self.goto_block(bi, bi + 1, vs)?,
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
                assert!(has_next, "fallthrough of a reachable JUMPI is reachable");
                let c =
                    self.b
                        .build_int_compare(IntPredicate::NE, cond, self.i256.const_zero(), "")?;
                let taken = self.new_bb("jumpi_taken");
                let taken_takes = matches!(t, JumpTarget::Static(pc) if self.takes_stack(bi, self.a.jumpdests[&pc]));
                if !taken_takes && !self.takes_stack(bi, bi + 1) {
                    // Both successors read the stack from memory: one store
                    // sequence before the branch.
                    vs.commit(self)?;
                    let local = self.partition.part_of[bi + 1] == self.part;
                    let fall = match local {
                        true => self.block_bbs[bi + 1].unwrap(),
                        false => self.new_bb("jumpi_fall"),
                    };
                    self.b.build_conditional_branch(c, taken, fall)?;
                    self.b.position_at_end(taken);
                    self.jump_to(t, target)?;
                    if !local {
                        self.b.position_at_end(fall);
                        self.enter_block(bi + 1)?;
                    }
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

    /// Whether the edge from `from` to `to` passes stack words as values
    /// (inheritance or phis) rather than through memory.
    fn takes_stack(&self, from: usize, to: usize) -> bool {
        self.inherits(from, to) || self.phi_words.get(to).is_some_and(|&k| k > 0)
    }

    /// Continues from block `from` into block `to`: with the virtual stack
    /// if `to` inherits it, through memory otherwise.
    fn goto_block(&mut self, from: usize, to: usize, mut vs: VStack<'ctx>) -> R<()> {
        if self.inherits(from, to) {
            self.inherited[to] = Some(vs);
            let bb = self.block_bbs[to].expect("an inheriting block is in its parent's part");
            self.b.build_unconditional_branch(bb)?;
            Ok(())
        } else if self.phi_words[to] > 0 {
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
            JumpTarget::Static(dest) => self.enter_block(self.a.jumpdests[&dest])?,
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

    /// Dynamic jumps to targets in this part are branches; the dispatch
    /// function takes the rest. Both switch on the target's number from the
    /// jump table.
    fn gen_dispatch(&self, d: BasicBlock<'ctx>) -> R<()> {
        self.b.position_at_end(d);
        let t = self
            .b
            .build_load(self.i256, self.jt_var, "target")?
            .into_int_value();
        let in_code = self.b.build_int_compare(
            IntPredicate::ULT,
            t,
            self.i256.const_int(self.a.code_len as u64, false),
            "",
        )?;
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
            .filter(|&&bi| self.a.is_dynamic_target(bi) && self.partition.part_of[bi] == self.part)
            .map(|&bi| {
                let e = self.partition.entry_of[bi].expect("a dynamic target is external");
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
            dispatch,
            self.load_gas()?,
            len.into_int_value(),
            t64,
            number,
        )
    }
}
