//! MLOAD / MSTORE / MSTORE8.
//!
//! In-bounds accesses are a load or store plus a byte swap. Accesses that
//! are part of a run (`memory_run`) were tested with the run. Anything
//! else asks the runtime to grow memory, which charges the expansion or
//! halts the frame exactly as the interpreter's instruction would: a
//! memory op ends its gas segment, so nothing after it has been charged
//! yet and no state of ours (stack, pc) is needed for the halt. An access
//! at a constant offset inside memory the frame always has by then
//! (`Analysis::covered_accesses`: Solidity's free memory pointer and
//! scratch words, Vyper's variables after their first access) is the load
//! or store alone, in the middle of a segment.

use super::part::PartGen;
use super::tbaa::Region;
use super::vstack::VStack;
use super::R;
use crate::analysis::Inst;
use evmc_interface::{ctx_offsets, Builtin};
use inkwell::values::{IntValue, PointerValue};
use inkwell::IntPredicate;
use revm::bytecode::opcode as op;

impl<'ctx> PartGen<'_, '_, 'ctx> {
    pub(super) fn gen_memory(&self, vs: &mut VStack<'ctx>, inst: &Inst) -> R<()> {
        let bld = &self.b;
        let opc = inst.op;
        let offset = vs.pop(self)?;
        let value = if opc == op::MLOAD {
            None
        } else {
            Some(vs.pop(self)?)
        };
        let size: u64 = if opc == op::MSTORE8 { 1 } else { 32 };
        if let Some(&at) = self.a.covered_accesses.get(&inst.pc) {
            // Always inside memory (the analysis proved the offset): the
            // access alone, at the offset it found.
            let base = self.load_ctx_ptr(ctx_offsets::MEM_PTR)?;
            let p = unsafe { bld.build_gep(self.i8, base, &[self.const_i64(at as u64)], "mc")? };
            return self.access(opc, p, value, vs);
        }

        let (small, high) = self.offset_bounds(offset)?;
        let off64 = self.low_limb(offset)?;
        let end = bld.build_int_add(off64, self.const_i64(size), "")?;
        let mem_len = self.load_ctx_i64(ctx_offsets::MEM_LEN)?;
        let fits = bld.build_int_compare(IntPredicate::ULE, end, mem_len, "")?;
        let fast_ok = self.likely(bld.build_and(small, fits, "")?)?;

        let fast = self.new_bb("mem_fast");
        let grow = self.new_bb("mem_grow");
        bld.build_conditional_branch(fast_ok, fast, grow)?;

        // This instruction ends its gas segment (its static gas is paid), so
        // the runtime can charge the expansion, or halt, as the interpreter
        // does at this point.
        bld.position_at_end(grow);
        // 2^64 or more.
        let overflow = bld.build_int_compare(IntPredicate::NE, high, self.i64.const_zero(), "")?;
        let overflow = bld.build_int_z_extend(overflow, self.i64, "")?;
        self.store_ctx_i64(ctx_offsets::GAS, self.load_gas()?)?;
        let args = [
            self.ctx_ptr.into(),
            off64.into(),
            self.const_i64(size).into(),
            overflow.into(),
        ];
        // A halt there leaves through `ExecCtx::escape`.
        self.call_builtin(Builtin::MemExpand, &args, "")?;
        bld.build_store(self.gas_var, self.load_ctx_i64(ctx_offsets::GAS)?)?;
        bld.build_unconditional_branch(fast)?;

        bld.position_at_end(fast);
        // Here the offset is below 2^64: the fast test says so, and the
        // runtime returns from a growth only for such offsets.
        self.access_below_2_64(opc, offset, off64, value, vs)
    }

    /// The access of MLOAD/MSTORE/MSTORE8 at `offset`, which a test has
    /// found below 2^64 (`off64` its low limb) and inside memory. Each copy
    /// of the offset still on the stack is then its low limb zero-extended,
    /// and saying so lets LLVM compute what follows from it (the next
    /// offset, `p + 32`, and that one's test) in one or two limbs instead
    /// of four (memory_grow's long runs of `DUP2 ADD DUP1 MSTORE`: a
    /// quarter less machine code, a tenth less compile time).
    pub(super) fn access_below_2_64(
        &self,
        opc: u8,
        offset: IntValue<'ctx>,
        off64: IntValue<'ctx>,
        value: Option<IntValue<'ctx>>,
        vs: &mut VStack<'ctx>,
    ) -> R<()> {
        let bld = &self.b;
        let value = if offset.is_const() {
            value
        } else {
            let narrow = bld.build_int_z_extend(off64, self.i256, "offz")?;
            vs.replace(offset, narrow);
            value.map(|v| if v == offset { narrow } else { v })
        };
        let base = self.load_ctx_ptr(ctx_offsets::MEM_PTR)?;
        let p = unsafe { bld.build_gep(self.i8, base, &[off64], "mp")? };
        self.access(opc, p, value, vs)
    }

    /// The load or store of MLOAD/MSTORE/MSTORE8 at `p`, inside memory.
    fn access(
        &self,
        opc: u8,
        p: PointerValue<'ctx>,
        value: Option<IntValue<'ctx>>,
        vs: &mut VStack<'ctx>,
    ) -> R<()> {
        let bld = &self.b;
        match opc {
            op::MLOAD => {
                let raw = bld.build_load(self.i256, p, "")?.into_int_value();
                raw.as_instruction().unwrap().set_alignment(1).unwrap();
                self.tbaa.tag(raw.as_instruction().unwrap(), Region::Memory);
                vs.push(self.bswap(raw)?);
            }
            op::MSTORE => {
                let v = self.bswap(value.unwrap())?;
                let st = bld.build_store(p, v)?;
                st.set_alignment(1).unwrap();
                self.tbaa.tag(st, Region::Memory);
            }
            _ => {
                let v = bld.build_int_truncate(value.unwrap(), self.i8, "")?;
                let st = bld.build_store(p, v)?;
                st.set_alignment(1).unwrap();
                self.tbaa.tag(st, Region::Memory);
            }
        }
        Ok(())
    }
}
