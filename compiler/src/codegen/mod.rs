//! Lowering of an analysed contract to LLVM functions.
//!
//! Shape of the generated code:
//! - `u32 evmc_entry(ExecCtx*)` loads gas and stack length and calls the
//!   *part* holding the frame's entry or resume point (`ctx.resume_pc`: 0
//!   for a fresh frame, the pc after a CALL/CREATE when resuming); an
//!   unknown resume pc deoptimises to the interpreter;
//! - the contract is cut into parts, functions of bounded size (see
//!   [`Plan`]), so that LLVM's superlinear passes stay cheap; parts
//!   continue in each other by guaranteed tail calls that carry gas, stack
//!   length and pc, and a dynamic jump to another part goes through one
//!   dispatch function;
//! - each reachable basic block checks its stack bounds once, then runs in
//!   gas *segments*: the static gas of all instructions up to and including
//!   the next one with dynamic gas is charged with a single check;
//! - stack values live in SSA registers (`vstack`) inside a block and
//!   along edges that allow it: a block with one static predecessor
//!   inherits its virtual stack, and a block entered only by static edges
//!   of its part (loop headers, joins) takes its top words as phis; memory
//!   holds the stack only at dynamic jumps, builtin calls and exits;
//! - a failed stack-bounds check never decides the outcome itself: it hands
//!   the frame, in exactly the interpreter's state at the block start, to the
//!   interpreter (`exit::DEOPT`), which then reports the same halt reason and
//!   gas it always would;
//! - a block left out by a profile (`Analysis::is_cold`, see
//!   [`crate::profile`]) is only that hand-over: the stack committed and
//!   `exit::DEOPT` at its first pc;
//! - a failed gas check is an out-of-gas halt (`exit::OUT_OF_GAS`): a segment
//!   ends at the first instruction with dynamic gas or effects, so the
//!   interpreter would run out of gas at one of its static charges, and no
//!   instruction before that point can halt in another way (an MLOAD,
//!   MSTORE or MSTORE8 inside the memory every frame has by then,
//!   `Analysis::covered_accesses`, has neither: what it stores is gone
//!   with a frame that halts);
//! - a run of memory accesses at computed offsets, with only stack
//!   arithmetic between them, is paid for at its start with one check of
//!   all its offsets and gas (`memory_run`); where that check fails the
//!   runtime pays for the whole run or the interpreter runs it;
//! - every exit jumps to one shared block per kind and function, so cold
//!   paths cost a branch, not a copy of the machine state;
//! - a builtin that ends the frame does not return: it jumps back into
//!   `evmc_entry` (`ExecCtx::escape`), so a call site tests no status.

//!
//! Everything decided about the contract (parts, shards, inheritance, stack
//! bounds, phis, entry numbers) comes from its [`Plan`]. The module skeleton
//! (entry function, global dispatch, jump table, metadata: `skeleton`) is
//! emitted by a module context, `ModuleGen`, each part's blocks by a
//! function context, `PartGen` (`part`, `blocks`, `ops`, `memory`).

mod blocks;
pub mod llvm_workarounds;
mod memory;
mod memory_run;
mod narrow;
mod ops;
mod part;
mod skeleton;
mod tbaa;
mod vstack;

use crate::analysis::{Analysis, Plan};
use crate::revm_api::{static_gas_table, SpecId};
use evmc_interface::{
    ctx_offsets, AbiType, ArtifactMetadata, Builtin, ENTRY_SYMBOL, MEM_INLINE_GROWTH,
    MEM_QUAD_DIVISOR, MEM_WORD_GAS,
};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::{BasicMetadataTypeEnum, BasicType, FunctionType, IntType, PointerType};
use inkwell::values::{FunctionValue, IntValue, LLVMTailCallKind, PointerValue};
use inkwell::AddressSpace;
use inkwell::GlobalVisibility;
use inkwell::IntPredicate;
use part::PartGen;
use revm::bytecode::opcode as op;
use skeleton::JumpTable;
use tbaa::Region;

pub(crate) type R<T> = Result<T, BuilderError>;

/// LLVM's `preserve_nonecc` for parts and the dispatch: a part keeps no
/// register of its caller, so a transfer between parts (a tail call) saves
/// and restores none. Only the entry function, called from Rust, saves the
/// callee-saved registers, once per frame entry.
const PRESERVE_NONE_CC: u32 = 21;

/// LLVM's `preserve_mostcc`: the `mem_expand` stub's convention. A stub
/// that keeps every general-purpose register but R11 spares its call sites
/// the spills and reloads around the call, which the C convention (six
/// registers kept) forces on the hot code around each MLOAD/MSTORE. Its
/// own growth path (`grow_memory_asm`) uses only registers the convention
/// lets it clobber, and the saves the runtime call needs are in a second
/// stub it jumps to.
const PRESERVE_MOST_CC: u32 = 14;

/// The calling convention of `builtin`'s stub (and of its call sites).
/// Only `mem_expand` keeps registers: the other stubs' calls are runtime
/// calls every time, and for them the saves cost more than the sites gain
/// (measured: "Builtin stubs that keep the caller's registers").
pub(crate) fn stub_call_convention(builtin: Builtin) -> u32 {
    if builtin == Builtin::MemExpand {
        PRESERVE_MOST_CC
    } else {
        0
    }
}

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

/// Module-wide code generation state: the LLVM module and builder, the
/// types, the plan, and the functions every part may call. Shared
/// read-only by the [`PartGen`] of each part.
pub(crate) struct ModuleGen<'a, 'ctx> {
    pub cx: &'ctx Context,
    pub m: Module<'ctx>,
    pub b: Builder<'ctx>,
    pub i1: IntType<'ctx>,
    pub i8: IntType<'ctx>,
    pub i32: IntType<'ctx>,
    pub i64: IntType<'ctx>,
    pub i256: IntType<'ctx>,
    pub ptr: PointerType<'ctx>,
    pub a: &'a Analysis,
    pub plan: &'a Plan<'a>,
    pub spec: SpecId,
    pub gas_table: [u16; 256],
    part_fns: Vec<FunctionValue<'ctx>>,
    /// Enters the dynamic-jump targets of other parts.
    dispatch_fn: Option<FunctionValue<'ctx>>,
    jump_table: Option<JumpTable<'ctx>>,
    /// Alias tags of the regions generated code accesses.
    pub tbaa: tbaa::Tags<'ctx>,
}

/// Builds the LLVM module for shard `shard` of `plan` (`0..plan.shards()`).
/// Shards are compiled on separate threads, each in its own LLVM context,
/// and linked together; shard 0 also holds the entry function, the
/// dispatch and the metadata.
pub fn build_module<'ctx>(
    cx: &'ctx Context,
    plan: &Plan<'_>,
    spec: SpecId,
    meta: &ArtifactMetadata,
    shard: usize,
) -> R<Module<'ctx>> {
    assert!(shard < plan.shards(), "shard {shard} of {}", plan.shards());
    let g = ModuleGen::declare(cx, plan, spec, meta, shard);
    if shard == 0 {
        g.gen_entry()?;
        if let Some(d) = g.dispatch_fn {
            g.gen_global_dispatch(d)?;
        }
    }
    for k in plan.parts_of_shard(shard) {
        PartGen::new(&g, k)?.gen_part()?;
    }
    Ok(g.m)
}

impl<'a, 'ctx> ModuleGen<'a, 'ctx> {
    /// Creates the module with the skeleton's declarations: the entry
    /// function, the metadata, every part, the dispatch and the jump table.
    fn declare(
        cx: &'ctx Context,
        plan: &'a Plan<'a>,
        spec: SpecId,
        meta: &ArtifactMetadata,
        shard: usize,
    ) -> Self {
        let m = cx.create_module("evmc_contract");
        let ptr = cx.ptr_type(AddressSpace::default());
        let i32t = cx.i32_type();
        let i64t = cx.i64_type();
        let noalias = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("noalias"), 0);
        let nounwind = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("nounwind"), 0);
        let noinline = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("noinline"), 0);
        let main = shard == 0;
        let sharded = plan.shards() > 1;
        if main {
            let entry_ty = i32t.fn_type(&[ptr.into()], false);
            let f = m.add_function(ENTRY_SYMBOL, entry_ty, Some(Linkage::External));
            f.add_attribute(AttributeLoc::Param(0), noalias);
            f.add_attribute(AttributeLoc::Function, nounwind);
            skeleton::add_metadata(cx, &m, meta);
        }

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
            let linkage = match sharded {
                false => Linkage::Private,
                true => Linkage::External,
            };
            let f = m.add_function(name, part_ty, Some(linkage));
            if sharded {
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
        let part_fns: Vec<_> = (0..plan.parts())
            .map(|k| declare(&format!("evmc_part{k}"), plan.shard_of[k] == shard))
            .collect();
        let a = plan.analysis;
        let dispatch_fn = a.has_dynamic_jumps.then(|| declare("evmc_dispatch", main));
        let jump_table = a
            .has_dynamic_jumps
            .then(|| JumpTable::declare(cx, &m, plan, main));
        Self {
            cx,
            m,
            b: cx.create_builder(),
            i1: cx.bool_type(),
            i8: cx.i8_type(),
            i32: i32t,
            i64: i64t,
            i256: cx
                .custom_width_int_type(std::num::NonZeroU32::new(256).unwrap())
                .unwrap(),
            ptr,
            a,
            plan,
            spec,
            gas_table: static_gas_table(spec),
            part_fns,
            dispatch_fn,
            jump_table,
            tbaa: tbaa::Tags::new(cx),
        }
    }

    pub(crate) fn const_i64(&self, v: u64) -> IntValue<'ctx> {
        self.i64.const_int(v, false)
    }

    /// The address of the [`evmc_interface::ExecCtx`] field at `off` of
    /// the context `ctx`.
    pub(crate) fn field(&self, ctx: PointerValue<'ctx>, off: u32) -> R<PointerValue<'ctx>> {
        unsafe {
            self.b
                .build_gep(self.i8, ctx, &[self.i64.const_int(off as u64, false)], "")
        }
    }

    pub(crate) fn load_field_i64(&self, ctx: PointerValue<'ctx>, off: u32) -> R<IntValue<'ctx>> {
        let p = self.field(ctx, off)?;
        let v = self.b.build_load(self.i64, p, "")?.into_int_value();
        self.tbaa.tag(v.as_instruction().unwrap(), Region::Ctx);
        Ok(v)
    }

    pub(crate) fn store_field_i64(
        &self,
        ctx: PointerValue<'ctx>,
        off: u32,
        v: IntValue<'ctx>,
    ) -> R<()> {
        let p = self.field(ctx, off)?;
        let st = self.b.build_store(p, v)?;
        self.tbaa.tag(st, Region::Ctx);
        Ok(())
    }

    /// Hints that `c` is almost always true.
    pub(crate) fn likely(&self, c: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        self.expect(c, true)
    }

    /// Hints that `c` is almost always `value`.
    pub(crate) fn expect(&self, c: IntValue<'ctx>, value: bool) -> R<IntValue<'ctx>> {
        let v = self.i1.const_int(value as u64, false);
        self.int_intrinsic("llvm.expect", c.get_type(), &[c, v])
    }

    /// A call of the overloaded integer intrinsic `name` at type `ty`
    /// (`llvm.bswap`, `llvm.fshl`, ...) on `args`, and its result.
    pub(crate) fn int_intrinsic(
        &self,
        name: &str,
        ty: IntType<'ctx>,
        args: &[IntValue<'ctx>],
    ) -> R<IntValue<'ctx>> {
        let decl = Intrinsic::find(name)
            .and_then(|i| i.get_declaration(&self.m, &[ty.into()]))
            .unwrap_or_else(|| panic!("LLVM has {name} for {ty}"));
        let args: Vec<_> = args.iter().map(|&a| a.into()).collect();
        let r = self.b.build_call(decl, &args, "")?;
        Ok(r.try_as_basic_value().basic().unwrap().into_int_value())
    }

    /// `a op b` in 64 bits by the intrinsic `llvm.<op>.with.overflow`
    /// (`op` is `uadd` or `usub`): the result and its carry or borrow,
    /// which the backend takes from one `add` or `sub`.
    pub(crate) fn with_overflow(
        &self,
        op: &str,
        a: IntValue<'ctx>,
        b: IntValue<'ctx>,
    ) -> R<(IntValue<'ctx>, IntValue<'ctx>)> {
        let decl = Intrinsic::find(&format!("llvm.{op}.with.overflow"))
            .unwrap()
            .get_declaration(&self.m, &[self.i64.into()])
            .unwrap();
        let r = self
            .b
            .build_call(decl, &[a.into(), b.into()], "")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_struct_value();
        let value = self.b.build_extract_value(r, 0, "")?.into_int_value();
        let flag = self.b.build_extract_value(r, 1, "")?.into_int_value();
        Ok((value, flag))
    }

    fn ret(&self, status: u32) -> R<()> {
        self.b
            .build_return(Some(&self.i32.const_int(status as u64, false)))?;
        Ok(())
    }

    /// Continues in `callee` (a part or the dispatch) at `pc`, passing the
    /// context `ctx`. A guaranteed tail call: control moves between parts
    /// without growing the native stack, however long the frame runs.
    fn tail_call(
        &self,
        ctx: PointerValue<'ctx>,
        callee: FunctionValue<'ctx>,
        gas: IntValue<'ctx>,
        len: IntValue<'ctx>,
        pc: IntValue<'ctx>,
        entry: IntValue<'ctx>,
    ) -> R<()> {
        let args = [ctx.into(), gas.into(), len.into(), pc.into(), entry.into()];
        let call = self.b.build_call(callee, &args, "")?;
        call.set_call_convention(PRESERVE_NONE_CC);
        call.set_tail_call_kind(LLVMTailCallKind::LLVMTailCallKindMustTail);
        let r = call.try_as_basic_value().basic().unwrap();
        self.b.build_return(Some(&r))?;
        Ok(())
    }

    /// Loads a pointer that stays the same for the whole frame (the builtin
    /// table, the stack array): marked so that LLVM loads
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

    /// The module's call stub for `builtin`: `(builtin's arguments...,
    /// table)`, a tail call through the table's entry. Generated code calls
    /// the stub directly rather than through the table: most call sites of
    /// a contract run seldom, and an indirect call the branch predictor has
    /// not seen is a mispredict, where a direct call's target is in the
    /// instruction; the stub's one indirect jump, shared by every site,
    /// stays predicted. The memory_grow cases (4,096 growth calls each)
    /// ran 3-8% faster so. `mem_expand`'s stub first grows memory itself
    /// and reaches the table through a second stub (`grow_memory_asm`).
    pub(crate) fn builtin_stub(&self, builtin: Builtin) -> R<FunctionValue<'ctx>> {
        let name = format!("evmc_builtin_{}", builtin.name());
        if let Some(f) = self.m.get_function(&name) {
            return Ok(f);
        }
        let target = self.builtin_type(builtin);
        let mut params = target.get_param_types();
        params.push(self.ptr.into());
        let ty = match target.get_return_type() {
            Some(r) => r.fn_type(&params, false),
            // With `preserve_mostcc` a function that returns nothing keeps
            // RAX too: the growth stub then saved and restored it around
            // its assembly. It returns an ignored 0 instead.
            None if stub_call_convention(builtin) == PRESERVE_MOST_CC => {
                self.i32.fn_type(&params, false)
            }
            None => self.cx.void_type().fn_type(&params, false),
        };
        let f = self.stub_function(&name, ty, builtin);
        let b = self.cx.create_builder();
        b.position_at_end(self.cx.append_basic_block(f, "entry"));
        if builtin == Builtin::MemExpand {
            // The runtime call in a stub of its own, entered by a jump: its
            // saves are then on its path only (in this stub, LLVM made them
            // before the growth as well).
            let runtime = self.stub_function(&format!("{name}_runtime"), ty, builtin);
            let rb = self.cx.create_builder();
            rb.position_at_end(self.cx.append_basic_block(runtime, "entry"));
            self.call_through_table(&rb, runtime, builtin)?;
            let call = self.cx.append_basic_block(f, "call");
            self.grow_memory_asm(&b, f, call)?;
            b.position_at_end(call);
            let args: Vec<_> = f.get_param_iter().map(|p| p.into()).collect();
            let r = b.build_call(runtime, &args, "")?;
            r.set_call_convention(stub_call_convention(builtin));
            r.set_tail_call_kind(LLVMTailCallKind::LLVMTailCallKindMustTail);
            let r = r.try_as_basic_value().basic().unwrap();
            b.build_return(Some(&r))?;
        } else {
            self.call_through_table(&b, f, builtin)?;
        }
        Ok(f)
    }

    /// A private stub function of type `ty` for `builtin`, in its
    /// convention.
    fn stub_function(
        &self,
        name: &str,
        ty: FunctionType<'ctx>,
        builtin: Builtin,
    ) -> FunctionValue<'ctx> {
        let f = self.m.add_function(name, ty, Some(Linkage::Private));
        f.set_call_conventions(stub_call_convention(builtin));
        let attr = |n| {
            self.cx
                .create_enum_attribute(Attribute::get_named_enum_kind_id(n), 0)
        };
        // Inlined, the stub would bring back an indirect call per site.
        f.add_attribute(AttributeLoc::Function, attr("noinline"));
        f.add_attribute(AttributeLoc::Function, attr("nounwind"));
        f
    }

    /// Ends stub `f` (`builtin`'s arguments, then the table) with the call
    /// of the table's entry for `builtin`, and returns its result.
    fn call_through_table(
        &self,
        b: &Builder<'ctx>,
        f: FunctionValue<'ctx>,
        builtin: Builtin,
    ) -> R<()> {
        let target = self.builtin_type(builtin);
        let n = f.count_params() - 1;
        let table = f.get_nth_param(n).unwrap().into_pointer_value();
        let slot = unsafe {
            b.build_gep(
                self.i8,
                table,
                &[self.const_i64(builtin.offset() as u64)],
                "",
            )?
        };
        let fptr = b.build_load(self.ptr, slot, "")?.into_pointer_value();
        let args: Vec<_> = (0..n).map(|i| f.get_nth_param(i).unwrap().into()).collect();
        let call = b.build_indirect_call(target, fptr, &args, "")?;
        // A sibling call, unless the stub keeps registers that the
        // runtime's C convention may clobber.
        if stub_call_convention(builtin) == 0 {
            call.set_tail_call_kind(LLVMTailCallKind::LLVMTailCallKindTail);
        }
        match call.try_as_basic_value().basic() {
            Some(r) => b.build_return(Some(&r))?,
            None if f.get_type().get_return_type().is_some() => {
                b.build_return(Some(&self.i32.const_zero()))?
            }
            None => b.build_return(None)?,
        };
        Ok(())
    }

    /// The start of the `mem_expand` stub: growth by a word or two into the
    /// room the runtime made (`ExecCtx::mem_cap`) is charged and zeroed
    /// here, and returns as the runtime would; anything else (no room,
    /// a larger growth, too little gas, an offset out of range) goes on to
    /// `call`, the runtime. A runtime call costs several times a memory
    /// instruction, and code that grows memory mostly grows it a word at a
    /// time; the interpreter's state catches up at the next runtime call or
    /// exit. Done in the stub rather than at each site, it adds no code to
    /// the sites (at each MLOAD/MSTORE, memory_grow's artefact grew fourfold
    /// and ran ten times slower).
    ///
    /// Written in assembly that uses only RAX, R11 and XMM0 (and RCX, which
    /// holds the overflow flag, zero on this path, and is zeroed again), the
    /// registers the stub's convention lets it clobber: in IR, LLVM gave it
    /// registers the stub must save, and saved all of them before the
    /// growth (structarray_alloc ran 14% slower). The words are zeroed 16
    /// bytes at a time (eight 8-byte stores: structarray_alloc 6% slower).
    fn grow_memory_asm(
        &self,
        b: &Builder<'ctx>,
        f: FunctionValue<'ctx>,
        call: BasicBlock<'ctx>,
    ) -> R<()> {
        // The cost formula and the two words zeroed are spelled out below.
        const _: () =
            assert!(MEM_WORD_GAS == 3 && MEM_QUAD_DIVISOR == 512 && MEM_INLINE_GROWTH == 64);
        use ctx_offsets::{GAS, MEM_CAP, MEM_COST, MEM_LEN, MEM_PTR};
        // rdi: ctx, rsi: offset, rdx: length (1 or 32), rcx: whether the
        // offset overflowed 64 bits. Gives 0 when grown here, 1 for the
        // runtime. Offsets below 2^32 cannot wrap the end.
        let text = [
            // To the runtime: an offset past 64 bits or 2^32, an end more
            // than two words past the memory, or no room for them.
            "testq %rcx, %rcx",
            "jnz 9f",
            "movq %rsi, %rax",
            "shrq $$32, %rax",
            "jnz 9f",
            "leaq (%rsi,%rdx), %r11",
            "movq {MEM_LEN}(%rdi), %rax",
            "addq $$64, %rax",
            "cmpq %rax, %r11",
            "ja 9f",
            "cmpq {MEM_CAP}(%rdi), %rax",
            "ja 9f",
            // r11 = words; rax = words * 3 + words^2 / 512, rcx = what is
            // due beyond what the memory paid.
            "addq $$31, %r11",
            "shrq $$5, %r11",
            "movq %r11, %rax",
            "imulq %rax, %rax",
            "shrq $$9, %rax",
            "leaq (%r11,%r11,2), %rcx",
            "addq %rcx, %rax",
            "movq %rax, %rcx",
            "subq {MEM_COST}(%rdi), %rcx",
            "cmpq %rcx, {GAS}(%rdi)",
            "jb 8f",
            // Charge, record, and zero the two words past the old end: new
            // memory reads as zeros, written here rather than taken on trust
            // from how the room was made (both words are inside it).
            "subq %rcx, {GAS}(%rdi)",
            "movq %rax, {MEM_COST}(%rdi)",
            "movq {MEM_LEN}(%rdi), %rcx",
            "shlq $$5, %r11",
            "movq %r11, {MEM_LEN}(%rdi)",
            "addq {MEM_PTR}(%rdi), %rcx",
            "xorps %xmm0, %xmm0",
            "movups %xmm0, (%rcx)",
            "movups %xmm0, 16(%rcx)",
            "movups %xmm0, 32(%rcx)",
            "movups %xmm0, 48(%rcx)",
            "xorl %ecx, %ecx",
            "xorl %eax, %eax",
            "jmp 7f",
            "8:",
            "xorl %ecx, %ecx",
            "9:",
            "movl $$1, %eax",
            "7:",
        ]
        .join("\n\t")
        .replace("{GAS}", &GAS.to_string())
        .replace("{MEM_PTR}", &MEM_PTR.to_string())
        .replace("{MEM_LEN}", &MEM_LEN.to_string())
        .replace("{MEM_CAP}", &MEM_CAP.to_string())
        .replace("{MEM_COST}", &MEM_COST.to_string());
        // The stub's arguments without the table; 0 when grown here.
        let params = self.builtin_type(Builtin::MemExpand).get_param_types();
        let ty = self.i32.fn_type(&params, false);
        let asm = self.cx.create_inline_asm(
            ty,
            text,
            "={ax},{di},{si},{dx},{cx},~{r11},~{xmm0},~{memory},~{dirflag},~{fpsr},~{flags}"
                .to_string(),
            true,
            false,
            None,
            false,
        );
        let args: Vec<_> = (0..ty.count_param_types())
            .map(|i| f.get_nth_param(i).unwrap().into())
            .collect();
        let r = b
            .build_indirect_call(ty, asm, &args, "grown")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        let done = self.cx.append_basic_block(f, "done");
        let here = b.build_int_compare(IntPredicate::EQ, r, self.i32.const_zero(), "")?;
        b.build_conditional_branch(here, done, call)?;
        b.position_at_end(done);
        b.build_return(Some(&self.i32.const_zero()))?;
        Ok(())
    }

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
}

/// Number of instructions in all functions of `m`.
pub fn instruction_count(m: &Module<'_>) -> usize {
    m.get_functions()
        .flat_map(|f| f.get_basic_block_iter())
        .map(|bb| bb.get_instructions().count())
        .sum()
}
