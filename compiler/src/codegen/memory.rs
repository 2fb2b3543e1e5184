//! MLOAD / MSTORE / MSTORE8.
//!
//! In-bounds accesses are a load or store plus a byte swap. Anything else
//! asks the runtime to grow memory; if that would not leave the gas this
//! segment has already set aside for the instructions after this one (or the
//! offset does not even fit 64 bits), the instruction is handed back to the
//! interpreter with the state exactly as before it: stack including its
//! operands, and the gas of this instruction and the rest of the segment
//! returned. The interpreter then reports whatever halt is due.

use super::vstack::VStack;
use super::{Gen, R};
use crate::analysis::Inst;
use evmc_interface::{builtin_offsets, ctx_offsets, exit};
use inkwell::IntPredicate;
use revm::bytecode::opcode as op;

impl<'a, 'ctx> Gen<'a, 'ctx> {
    pub(super) fn gen_memory(&self, vs: &mut VStack<'ctx>, inst: &Inst, gas_after: u64) -> R<()> {
        let bld = &self.b;
        let opc = inst.op;
        let offset = vs.pop(self)?;
        let value = if opc == op::MLOAD {
            None
        } else {
            Some(vs.pop(self)?)
        };
        let size: u64 = if opc == op::MSTORE8 { 1 } else { 32 };

        // Offsets below 2^32 cannot overflow the 64-bit add.
        let small = bld.build_int_compare(
            IntPredicate::ULT,
            offset,
            self.i256.const_int(1 << 32, false),
            "",
        )?;
        let off64 = bld.build_int_truncate(offset, self.i64, "off")?;
        let end = bld.build_int_add(off64, self.const_i64(size), "")?;
        let mem_len = self.load_ctx_i64(ctx_offsets::MEM_LEN)?;
        let fits = bld.build_int_compare(IntPredicate::ULE, end, mem_len, "")?;
        let fast_ok = self.likely(bld.build_and(small, fits, "")?)?;

        let fast = self.new_bb("mem_fast");
        let slow = self.new_bb("mem_slow");
        let grow = self.new_bb("mem_grow");
        let back = self.new_bb("mem_deopt");
        bld.build_conditional_branch(fast_ok, fast, slow)?;

        bld.position_at_end(slow);
        let fits64 = bld.build_int_compare(
            IntPredicate::ULT,
            offset,
            self.i256.const_int_arbitrary_precision(&[0, 1, 0, 0]),
            "",
        )?;
        bld.build_conditional_branch(fits64, grow, back)?;

        bld.position_at_end(grow);
        let after = self.const_i64(gas_after);
        let gas = self.load_gas()?;
        self.store_ctx_i64(ctx_offsets::GAS, bld.build_int_add(gas, after, "")?)?;
        let fptr = self.builtin_fn(builtin_offsets::MEM_EXPAND)?;
        let fty = self.i32.fn_type(
            &[
                self.ptr.into(),
                self.i64.into(),
                self.i64.into(),
                self.i64.into(),
            ],
            false,
        );
        let args = [
            self.ctx_ptr.into(),
            off64.into(),
            self.const_i64(size).into(),
            after.into(),
        ];
        let r = bld
            .build_indirect_call(fty, fptr, &args, "r")?
            .try_as_basic_value()
            .basic()
            .unwrap()
            .into_int_value();
        let ok = bld.build_int_compare(IntPredicate::EQ, r, self.i32.const_zero(), "")?;
        let grown = self.new_bb("mem_grown");
        bld.build_conditional_branch(ok, grown, back)?;
        bld.position_at_end(grown);
        let new_gas = self.load_ctx_i64(ctx_offsets::GAS)?;
        bld.build_store(self.gas_var, bld.build_int_sub(new_gas, after, "")?)?;
        bld.build_unconditional_branch(fast)?;

        // Undo this instruction and let the interpreter run it.
        bld.position_at_end(back);
        let mut before = vs.clone();
        if let Some(v) = value {
            before.push(v);
        }
        before.push(offset);
        let len = before.flush(self)?;
        let refund = gas_after + self.gas_table[opc as usize] as u64;
        let gas = bld.build_int_add(self.load_gas()?, self.const_i64(refund), "")?;
        self.exit_with(exit::DEOPT, inst.pc as u64, gas, len)?;

        bld.position_at_end(fast);
        let base = self.load_ctx_ptr(ctx_offsets::MEM_PTR)?;
        let p = unsafe { bld.build_gep(self.i8, base, &[off64], "mp")? };
        match opc {
            op::MLOAD => {
                let raw = bld.build_load(self.i256, p, "")?.into_int_value();
                raw.as_instruction().unwrap().set_alignment(1).unwrap();
                vs.push(self.bswap(raw)?);
            }
            op::MSTORE => {
                let v = self.bswap(value.unwrap())?;
                bld.build_store(p, v)?.set_alignment(1).unwrap();
            }
            _ => {
                let v = bld.build_int_truncate(value.unwrap(), self.i8, "")?;
                bld.build_store(p, v)?.set_alignment(1).unwrap();
            }
        }
        Ok(())
    }
}
