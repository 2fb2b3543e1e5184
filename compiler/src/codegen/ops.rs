//! Lowering of single instructions.

use super::part::PartGen;
use super::vstack::VStack;
use super::{Lowering, R};
use crate::analysis::Inst;
use evmc_interface::{ctx_offsets, Builtin};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::intrinsics::Intrinsic;
use inkwell::values::{AnyValue, IntValue};
use inkwell::IntPredicate;
use revm::bytecode::opcode as op;
use revm::primitives::U256;

impl<'ctx> PartGen<'_, '_, 'ctx> {
    pub(super) fn gen_inst(&self, vs: &mut VStack<'ctx>, inst: &Inst, gas_after: u64) -> R<()> {
        let opc = inst.op;
        match super::lowering(opc, self.spec) {
            Lowering::Builtin if opc == op::KECCAK256 => return self.call_keccak(vs),
            Lowering::Builtin => return self.call_exec_op(vs, opc, inst.pc),
            Lowering::InlineMemory => return self.gen_memory(vs, inst),
            Lowering::Control => unreachable!("control flow is lowered by the block epilogue"),
            Lowering::Inline => {}
        }
        match opc {
            op::PUSH0..=op::PUSH32 => vs.push(self.const_u256(inst)),
            op::POP => {
                vs.pop(self)?;
            }
            op::DUP1..=op::DUP16 => vs.dup(self, (opc - op::DUP1 + 1) as usize)?,
            op::SWAP1..=op::SWAP16 => vs.swap(self, (opc - op::SWAP1 + 1) as usize)?,
            op::JUMPDEST => {}
            op::PC => vs.push(self.i256.const_int(inst.pc as u64, false)),
            op::GAS => {
                let gas = self.load_gas()?;
                let g = self.b.build_int_add(gas, self.const_i64(gas_after), "")?;
                vs.push(self.b.build_int_z_extend(g, self.i256, "")?);
            }
            op::MSIZE => {
                let l = self.load_ctx_i64(ctx_offsets::MEM_LEN)?;
                vs.push(self.b.build_int_z_extend(l, self.i256, "")?);
            }
            op::CALLDATASIZE => {
                let l = self.load_ctx_i64(ctx_offsets::INPUT_LEN)?;
                vs.push(self.b.build_int_z_extend(l, self.i256, "")?);
            }
            op::CALLER | op::CALLVALUE | op::ADDRESS => {
                let off = match opc {
                    op::CALLER => ctx_offsets::CALLER,
                    op::CALLVALUE => ctx_offsets::CALL_VALUE,
                    _ => ctx_offsets::ADDRESS,
                };
                let v = self
                    .b
                    .build_load(self.i256, self.ctx_field(off)?, "")?
                    .into_int_value();
                v.as_instruction().unwrap().set_alignment(8).unwrap();
                vs.push(v);
            }
            op::CALLDATALOAD => {
                let off = vs.pop(self)?;
                vs.push(self.calldataload(off)?);
            }
            op::ISZERO => {
                let a = vs.pop(self)?;
                let c =
                    self.b
                        .build_int_compare(IntPredicate::EQ, a, self.i256.const_zero(), "")?;
                vs.push(self.bool_to_word(c)?);
            }
            op::NOT => {
                let a = vs.pop(self)?;
                vs.push(self.b.build_not(a, "")?);
            }
            op::DIV | op::MOD => {
                // Compilers (and hand-written code, e.g. sha1_divs) divide
                // by constant powers of two to shift and mask.
                match vs.peek(1).and_then(|b| self.const_word(b)) {
                    Some(d) if d.is_zero() || d.is_power_of_two() => {
                        let a = vs.pop(self)?;
                        vs.pop(self)?;
                        vs.push(self.unsigned_by_constant(opc, a, d)?);
                    }
                    _ => self.call_arith(vs, opc, 2)?,
                }
            }
            op::SDIV | op::SMOD => self.call_arith(vs, opc, 2)?,
            op::ADDMOD | op::MULMOD => self.call_arith(vs, opc, 3)?,
            op::CLZ => {
                let a = vs.pop(self)?;
                let ctlz = Intrinsic::find("llvm.ctlz").unwrap();
                let f = ctlz.get_declaration(&self.m, &[self.i256.into()]).unwrap();
                let r = self
                    .b
                    .build_call(f, &[a.into(), self.i1.const_zero().into()], "")?;
                vs.push(r.try_as_basic_value().basic().unwrap().into_int_value());
            }
            _ => {
                let a = vs.pop(self)?;
                let b = vs.pop(self)?;
                let r = self.binary(opc, a, b)?;
                vs.push(r);
            }
        }
        Ok(())
    }

    /// Pops `n` operands, runs the runtime's pure function for `opc` on
    /// them and pushes its result. The call is declared to touch only the
    /// scratch words, so stack values and context fields stay in registers.
    fn call_arith(&self, vs: &mut VStack<'ctx>, opc: u8, n: u64) -> R<()> {
        let builtin = match opc {
            op::DIV => Builtin::Div,
            op::SDIV => Builtin::Sdiv,
            op::MOD => Builtin::Rem,
            op::SMOD => Builtin::Smod,
            op::ADDMOD => Builtin::Addmod,
            _ => Builtin::Mulmod,
        };
        for i in 0..n {
            let v = vs.pop(self)?;
            let p = unsafe {
                self.b
                    .build_gep(self.i8, self.arith_var, &[self.const_i64(32 * i)], "")?
            };
            self.b.build_store(p, v)?.set_alignment(8).ok();
        }
        let call = self.call_builtin(builtin, &[self.arith_var.into()], "")?;
        let kind = |name| Attribute::get_named_enum_kind_id(name);
        // memory(argmem: readwrite)
        call.add_attribute(
            AttributeLoc::Function,
            self.cx.create_enum_attribute(kind("memory"), 3),
        );
        for name in ["nounwind", "willreturn", "nofree", "nosync"] {
            call.add_attribute(
                AttributeLoc::Function,
                self.cx.create_enum_attribute(kind(name), 0),
            );
        }
        self.push_scratch(vs)
    }

    /// CALLDATALOAD: a word inside the call data is read in place; one that
    /// runs past its end (or starts there) comes from the runtime.
    fn calldataload(&self, off: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        // Offsets below 2^32 cannot overflow the 64-bit add.
        let small = bld.build_int_compare(
            IntPredicate::ULT,
            off,
            self.i256.const_int(1 << 32, false),
            "",
        )?;
        let off64 = bld.build_int_truncate(off, self.i64, "")?;
        let end = bld.build_int_add(off64, self.const_i64(32), "")?;
        let len = self.load_ctx_i64(ctx_offsets::INPUT_LEN)?;
        let fits = bld.build_int_compare(IntPredicate::ULE, end, len, "")?;
        let fast_ok = self.likely(bld.build_and(small, fits, "")?)?;
        let fast = self.new_bb("cdl_fast");
        let slow = self.new_bb("cdl_slow");
        let join = self.new_bb("cdl_join");
        bld.build_conditional_branch(fast_ok, fast, slow)?;

        bld.position_at_end(fast);
        let base = self.load_ctx_ptr(ctx_offsets::INPUT_PTR)?;
        let p = unsafe { bld.build_gep(self.i8, base, &[off64], "")? };
        let raw = bld.build_load(self.i256, p, "")?.into_int_value();
        raw.as_instruction().unwrap().set_alignment(1).unwrap();
        let v_fast = self.bswap(raw)?;
        let fast_end = bld.get_insert_block().unwrap();
        bld.build_unconditional_branch(join)?;

        bld.position_at_end(slow);
        bld.build_store(self.arith_var, off)?.set_alignment(8).ok();
        self.call_builtin(
            Builtin::CallDataLoad,
            &[self.ctx_ptr.into(), self.arith_var.into()],
            "",
        )?;
        let v_slow = self.load_scratch()?;
        let slow_end = bld.get_insert_block().unwrap();
        bld.build_unconditional_branch(join)?;

        bld.position_at_end(join);
        let phi = bld.build_phi(self.i256, "cdl")?;
        phi.add_incoming(&[(&v_fast, fast_end), (&v_slow, slow_end)]);
        Ok(phi.as_basic_value().into_int_value())
    }

    /// KECCAK256 through its own builtin: the virtual stack stays as it is
    /// (no write-back, no reload), and the runtime skips the generic
    /// instruction dispatch.
    fn call_keccak(&self, vs: &mut VStack<'ctx>) -> R<()> {
        for i in 0..2 {
            let v = vs.pop(self)?;
            let p = unsafe {
                self.b
                    .build_gep(self.i8, self.arith_var, &[self.const_i64(32 * i)], "")?
            };
            self.b.build_store(p, v)?.set_alignment(8).ok();
        }
        self.store_ctx_i64(ctx_offsets::GAS, self.load_gas()?)?;
        self.call_halting_builtin(
            Builtin::Keccak256,
            &[self.ctx_ptr.into(), self.arith_var.into()],
        )?;
        self.push_scratch(vs)
    }

    /// The value of a constant word (a pushed constant, or one LLVM's
    /// builder folded from constants).
    fn const_word(&self, v: IntValue<'ctx>) -> Option<U256> {
        if !v.is_constant_int() {
            return None;
        }
        // inkwell has no accessor for constants wider than 64 bits; the
        // printed form is `i256 <decimal>`.
        let text = v.print_to_string().to_string();
        text.strip_prefix("i256 ")?.parse().ok()
    }

    /// DIV or MOD of `a` by the constant `d`, zero or a power of two.
    fn unsigned_by_constant(&self, opc: u8, a: IntValue<'ctx>, d: U256) -> R<IntValue<'ctx>> {
        if d.is_zero() {
            return Ok(self.i256.const_zero());
        }
        let k = d.trailing_zeros() as u64;
        Ok(if opc == op::DIV {
            self.b
                .build_right_shift(a, self.i256.const_int(k, false), false, "")?
        } else {
            let limbs = (d - U256::from(1)).into_limbs();
            self.b
                .build_and(a, self.i256.const_int_arbitrary_precision(&limbs), "")?
        })
    }

    fn const_u256(&self, inst: &Inst) -> IntValue<'ctx> {
        let limbs = inst.imm.as_limbs();
        self.i256.const_int_arbitrary_precision(limbs)
    }

    fn bool_to_word(&self, c: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        self.b.build_int_z_extend(c, self.i256, "")
    }

    /// `a` is the top of the stack, `b` the word below it.
    fn binary(&self, opc: u8, a: IntValue<'ctx>, b: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let zero = self.i256.const_zero();
        let c256 = self.i256.const_int(256, false);
        Ok(match opc {
            op::ADD => bld.build_int_add(a, b, "")?,
            op::SUB => bld.build_int_sub(a, b, "")?,
            op::MUL => bld.build_int_mul(a, b, "")?,
            op::AND => bld.build_and(a, b, "")?,
            op::OR => bld.build_or(a, b, "")?,
            op::XOR => bld.build_xor(a, b, "")?,
            op::LT => self.bool_to_word(bld.build_int_compare(IntPredicate::ULT, a, b, "")?)?,
            op::GT => self.bool_to_word(bld.build_int_compare(IntPredicate::UGT, a, b, "")?)?,
            op::SLT => self.bool_to_word(bld.build_int_compare(IntPredicate::SLT, a, b, "")?)?,
            op::SGT => self.bool_to_word(bld.build_int_compare(IntPredicate::SGT, a, b, "")?)?,
            op::EQ => self.bool_to_word(bld.build_int_compare(IntPredicate::EQ, a, b, "")?)?,
            op::SHL | op::SHR | op::SAR => {
                // a = shift, b = value; shifts of 256 or more are not poison here.
                let big = bld.build_int_compare(IntPredicate::UGE, a, c256, "")?;
                let safe = bld.build_select(big, zero, a, "")?.into_int_value();
                let (shifted, overflow) = match opc {
                    op::SHL => (bld.build_left_shift(b, safe, "")?, zero),
                    op::SHR => (bld.build_right_shift(b, safe, false, "")?, zero),
                    _ => (
                        bld.build_right_shift(b, safe, true, "")?,
                        bld.build_right_shift(b, self.i256.const_int(255, false), true, "")?,
                    ),
                };
                bld.build_select(big, overflow, shifted, "")?
                    .into_int_value()
            }
            op::BYTE => {
                // a = index (0 = most significant), b = word.
                let big = bld.build_int_compare(
                    IntPredicate::UGE,
                    a,
                    self.i256.const_int(32, false),
                    "",
                )?;
                let idx = bld.build_select(big, zero, a, "")?.into_int_value();
                let bits = bld.build_int_mul(
                    bld.build_int_sub(self.i256.const_int(31, false), idx, "")?,
                    self.i256.const_int(8, false),
                    "",
                )?;
                let v = bld.build_right_shift(b, bits, false, "")?;
                let v = bld.build_and(v, self.i256.const_int(0xff, false), "")?;
                bld.build_select(big, zero, v, "")?.into_int_value()
            }
            op::SIGNEXTEND => {
                // a = byte index of the sign bit, b = value.
                let big = bld.build_int_compare(
                    IntPredicate::UGE,
                    a,
                    self.i256.const_int(31, false),
                    "",
                )?;
                let idx = bld.build_select(big, zero, a, "")?.into_int_value();
                let sh = bld.build_int_sub(
                    self.i256.const_int(248, false),
                    bld.build_int_mul(idx, self.i256.const_int(8, false), "")?,
                    "",
                )?;
                let up = bld.build_left_shift(b, sh, "")?;
                let ext = bld.build_right_shift(up, sh, true, "")?;
                bld.build_select(big, b, ext, "")?.into_int_value()
            }
            _ => unreachable!("opcode {opc:#x} is not an inline binary op"),
        })
    }

    pub(super) fn bswap(&self, v: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let f = Intrinsic::find("llvm.bswap")
            .unwrap()
            .get_declaration(&self.m, &[self.i256.into()])
            .unwrap();
        let r = self.b.build_call(f, &[v.into()], "")?;
        Ok(r.try_as_basic_value().basic().unwrap().into_int_value())
    }
}
