//! Lowering of single instructions.

use super::part::PartGen;
use super::tbaa::Region;
use super::vstack::VStack;
use super::{Lowering, R};
use crate::analysis::Inst;
use evmc_interface::{ctx_offsets, Builtin};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::values::{AnyValue, InstructionOpcode, IntValue};
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
                self.tbaa.tag(v.as_instruction().unwrap(), Region::Ctx);
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
                    _ => self.divide(vs, opc)?,
                }
            }
            op::SDIV | op::SMOD => self.divide(vs, opc)?,
            op::ADDMOD | op::MULMOD => self.call_arith(vs, opc, 3)?,
            op::CLZ => {
                let a = vs.pop(self)?;
                let zero_is_poison = self.i1.const_zero();
                vs.push(self.int_intrinsic("llvm.ctlz", self.i256, &[a, zero_is_poison])?);
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
    /// them and pushes its result.
    fn call_arith(&self, vs: &mut VStack<'ctx>, opc: u8, n: u64) -> R<()> {
        let operands = (0..n).map(|_| vs.pop(self)).collect::<R<Vec<_>>>()?;
        let r = self.arith(opc, &operands)?;
        vs.push(r);
        Ok(())
    }

    /// DIV, MOD, SDIV and SMOD: operands that both fit in 64 bits (signed
    /// ones for SDIV and SMOD) are divided inline by one 64-bit division,
    /// which LLVM turns into a multiplication when the divisor is a
    /// constant; other operands, a zero divisor and `i64::MIN / -1` go to
    /// the runtime's function. Fixed-point code (snailtracer) divides
    /// products that mostly fit by a constant scale; sha1_divs divides
    /// words that fit by divisors it computes.
    fn divide(&self, vs: &mut VStack<'ctx>, opc: u8) -> R<()> {
        let a = vs.pop(self)?;
        let b = vs.pop(self)?;
        let bld = &self.b;
        let signed = matches!(opc, op::SDIV | op::SMOD);
        let (ta, tb) = (
            bld.build_int_truncate(a, self.i64, "")?,
            bld.build_int_truncate(b, self.i64, "")?,
        );
        let widen = |t: IntValue<'ctx>| -> R<IntValue<'ctx>> {
            Ok(if signed {
                bld.build_int_s_extend(t, self.i256, "")?
            } else {
                bld.build_int_z_extend(t, self.i256, "")?
            })
        };
        let fits_a = bld.build_int_compare(IntPredicate::EQ, a, widen(ta)?, "")?;
        let fits_b = bld.build_int_compare(IntPredicate::EQ, b, widen(tb)?, "")?;
        let nonzero = bld.build_int_compare(IntPredicate::NE, tb, self.i64.const_zero(), "")?;
        let mut ok = bld.build_and(bld.build_and(fits_a, fits_b, "")?, nonzero, "")?;
        if signed {
            let min = bld.build_int_compare(
                IntPredicate::EQ,
                ta,
                self.i64.const_int(i64::MIN as u64, true),
                "",
            )?;
            let minus_one =
                bld.build_int_compare(IntPredicate::EQ, tb, self.i64.const_all_ones(), "")?;
            let overflows = bld.build_and(min, minus_one, "")?;
            ok = bld.build_and(ok, bld.build_not(overflows, "")?, "")?;
        }
        let fast = self.new_bb("div_fast");
        let slow = self.new_bb("div_slow");
        let join = self.new_bb("div_join");
        bld.build_conditional_branch(ok, fast, slow)?;

        bld.position_at_end(fast);
        let q = match opc {
            op::DIV => bld.build_int_unsigned_div(ta, tb, "")?,
            op::MOD => bld.build_int_unsigned_rem(ta, tb, "")?,
            op::SDIV => bld.build_int_signed_div(ta, tb, "")?,
            _ => bld.build_int_signed_rem(ta, tb, "")?,
        };
        let fast_r = widen(q)?;
        let fast_end = bld.get_insert_block().unwrap();
        bld.build_unconditional_branch(join)?;

        bld.position_at_end(slow);
        let slow_r = self.arith(opc, &[a, b])?;
        let slow_end = bld.get_insert_block().unwrap();
        bld.build_unconditional_branch(join)?;

        bld.position_at_end(join);
        let phi = bld.build_phi(self.i256, "quot")?;
        phi.add_incoming(&[(&fast_r, fast_end), (&slow_r, slow_end)]);
        vs.push(phi.as_basic_value().into_int_value());
        Ok(())
    }

    /// Runs the runtime's pure function for `opc` on `operands` (the first
    /// on top) and returns its result. The call is declared to touch only
    /// the scratch words, so stack values and context fields stay in
    /// registers.
    fn arith(&self, opc: u8, operands: &[IntValue<'ctx>]) -> R<IntValue<'ctx>> {
        // MULMOD of one value by itself (a DUP of it) squares: 10 limb
        // multiplications instead of 16. 225 of weierstrudel's 1,408 MULMOD
        // sites are such; it runs 1.4% faster natively (benches/README.md,
        // "A squaring builtin, …"). Equal factors that are two values (two
        // loads of one word) still multiply.
        let square = opc == op::MULMOD && operands[0] == operands[1];
        let builtin = match opc {
            op::DIV => Builtin::Div,
            op::SDIV => Builtin::Sdiv,
            op::MOD => Builtin::Rem,
            op::SMOD => Builtin::Smod,
            op::ADDMOD => Builtin::Addmod,
            _ if square => Builtin::Sqrmod,
            _ => Builtin::Mulmod,
        };
        let operands = match square {
            true => &[operands[0], operands[2]][..],
            false => operands,
        };
        for (i, v) in operands.iter().enumerate() {
            self.store_scratch(i as u64, *v)?;
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
        self.load_scratch()
    }

    /// CALLDATALOAD: a word inside the call data is read in place, one that
    /// starts at or past its end is zero (contracts probe optional
    /// arguments that way, and short call data made every such read a
    /// runtime call); only a word that straddles the end comes from the
    /// runtime, which pads it.
    fn calldataload(&self, off: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let (small, _) = self.offset_bounds(off)?;
        let off64 = self.low_limb(off)?;
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
        self.tbaa.tag(raw.as_instruction().unwrap(), Region::Input);
        let v_fast = self.bswap(raw)?;
        let fast_end = bld.get_insert_block().unwrap();
        bld.build_unconditional_branch(join)?;

        bld.position_at_end(slow);
        let past = bld.build_or(
            bld.build_not(small, "")?,
            bld.build_int_compare(IntPredicate::UGE, off64, len, "")?,
            "",
        )?;
        let straddles = self.new_bb("cdl_straddles");
        bld.build_conditional_branch(past, join, straddles)?;

        bld.position_at_end(straddles);
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
        phi.add_incoming(&[
            (&v_fast, fast_end),
            (&self.i256.const_zero(), slow),
            (&v_slow, slow_end),
        ]);
        Ok(phi.as_basic_value().into_int_value())
    }

    /// KECCAK256 through its own builtin: the virtual stack stays as it is
    /// (no write-back, no reload), and the runtime skips the generic
    /// instruction dispatch.
    fn call_keccak(&self, vs: &mut VStack<'ctx>) -> R<()> {
        for i in 0..2 {
            let v = vs.pop(self)?;
            self.store_scratch(i, v)?;
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

    /// BYTE and SIGNEXTEND as 256-bit shifts: for a constant index, which
    /// folds them (`a` = index, `b` = word).
    fn byte_or_signextend_by_shifts(
        &self,
        opc: u8,
        a: IntValue<'ctx>,
        b: IntValue<'ctx>,
    ) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let zero = self.i256.const_zero();
        let c = |v: u64| self.i256.const_int(v, false);
        if opc == op::BYTE {
            // Index 0 is the most significant byte.
            let big = bld.build_int_compare(IntPredicate::UGE, a, c(32), "")?;
            let idx = bld.build_select(big, zero, a, "")?.into_int_value();
            let bits = bld.build_int_mul(bld.build_int_sub(c(31), idx, "")?, c(8), "")?;
            let v = bld.build_right_shift(b, bits, false, "")?;
            let v = bld.build_and(v, c(0xff), "")?;
            return Ok(bld.build_select(big, zero, v, "")?.into_int_value());
        }
        // The sign bit is bit 8 * index + 7.
        let big = bld.build_int_compare(IntPredicate::UGE, a, c(31), "")?;
        let idx = bld.build_select(big, zero, a, "")?.into_int_value();
        let sh = bld.build_int_sub(c(248), bld.build_int_mul(idx, c(8), "")?, "")?;
        let up = bld.build_left_shift(b, sh, "")?;
        let ext = bld.build_right_shift(up, sh, true, "")?;
        Ok(bld.build_select(big, b, ext, "")?.into_int_value())
    }

    /// Whether the offset `v` is below 2^32 (a 64-bit add of a length to
    /// it cannot overflow), and the OR of its three high limbs (non-zero
    /// when it is 2^64 or more), tested limb by limb. A comparison of the
    /// whole word with a constant was legalised into a longer sequence
    /// (funnel shifts of every limb) at every memory access, and the grow
    /// path compared again: limb by limb, FiatToken's and Seaport's code is
    /// 4–5% smaller, memory_grow's 17–20%.
    pub(super) fn offset_bounds(&self, v: IntValue<'ctx>) -> R<(IntValue<'ctx>, IntValue<'ctx>)> {
        let bld = &self.b;
        let (l0, high) = self.low_and_high(v)?;
        let above = bld.build_right_shift(l0, self.const_i64(32), false, "")?;
        let big = bld.build_or(high, above, "")?;
        let small = bld.build_int_compare(IntPredicate::EQ, big, self.i64.const_zero(), "small")?;
        Ok((small, high))
    }

    /// The low limb of `v` and the OR of its three others (zero when `v`
    /// fits in 64 bits).
    pub(super) fn low_and_high(&self, v: IntValue<'ctx>) -> R<(IntValue<'ctx>, IntValue<'ctx>)> {
        let bld = &self.b;
        let [l0, rest @ ..] = self.limbs_of(v)?;
        // Limbs a narrow word has as constant zeros are left out.
        let zero = self.i64.const_zero();
        let limbs: Vec<_> = rest.into_iter().filter(|&l| l != zero).collect();
        let high = match limbs[..] {
            [] => zero,
            [a] => a,
            [a, b] => bld.build_or(a, b, "hi")?,
            [a, b, c] => bld.build_or(bld.build_or(a, b, "")?, c, "hi")?,
            _ => unreachable!("three high limbs"),
        };
        Ok((l0, high))
    }

    /// The four 64-bit limbs of `v`, least significant first. A word the
    /// IR already shows to fit in 64 bits, or to be the sum of two such
    /// words, gets them in 64-bit arithmetic: the shifts of the whole
    /// word were folded away by InstCombine anyway, but only after it had
    /// worked out the known bits of every 256-bit value on the way, which
    /// on memory_grow's runs of accesses was most of the IR pipeline's
    /// time (`benches/README.md`, "Offsets in 64 bits").
    fn limbs_of(&self, v: IntValue<'ctx>) -> R<[IntValue<'ctx>; 4]> {
        let bld = &self.b;
        let mut out = [self.i64.const_zero(); 4];
        if let Some(x) = self.narrow_u64(v)? {
            out[0] = x;
            return Ok(out);
        }
        if let Some((sum, carry)) = self.narrow_sum(v)? {
            out[0] = sum;
            out[1] = bld.build_int_z_extend(carry, self.i64, "")?;
            return Ok(out);
        }
        for (j, limb) in out.iter_mut().enumerate() {
            let shifted =
                bld.build_right_shift(v, self.i256.const_int(64 * j as u64, false), false, "")?;
            *limb = bld.build_int_truncate(shifted, self.i64, "")?;
        }
        Ok(out)
    }

    /// The low 64 bits of `v`: the value itself when it is a narrow one
    /// (see [`Self::narrow_u64`]), else its truncation. A sum's low limb
    /// stays a truncation, which InstCombine narrows cheaply; taking it
    /// from [`Self::narrow_sum`] too gave the same code size and compile
    /// time.
    pub(super) fn low_limb(&self, v: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        if let Some(x) = self.narrow_u64(v)? {
            return Ok(x);
        }
        self.b.build_int_truncate(v, self.i64, "off")
    }

    /// `v` as a 64-bit value when the IR shows that it fits: a constant
    /// below 2^64, or a zero extension of at most 64 bits.
    fn narrow_u64(&self, v: IntValue<'ctx>) -> R<Option<IntValue<'ctx>>> {
        if let Some(c) = self.const_word(v) {
            let [low, rest @ ..] = c.into_limbs();
            return Ok(rest.iter().all(|&l| l == 0).then(|| self.const_i64(low)));
        }
        let Some(i) = v.as_instruction() else {
            return Ok(None);
        };
        if i.get_opcode() != InstructionOpcode::ZExt {
            return Ok(None);
        }
        let Some(src) = i.get_operand(0).and_then(|o| o.value()) else {
            return Ok(None);
        };
        let src = src.into_int_value();
        Ok(match src.get_type().get_bit_width() {
            64 => Some(src),
            w if w < 64 => Some(self.b.build_int_z_extend(src, self.i64, "")?),
            _ => None,
        })
    }

    /// The 64-bit sum and carry of `v` when it is an addition of two
    /// words that fit in 64 bits (see [`Self::narrow_u64`]).
    fn narrow_sum(&self, v: IntValue<'ctx>) -> R<Option<(IntValue<'ctx>, IntValue<'ctx>)>> {
        let Some(i) = v.as_instruction() else {
            return Ok(None);
        };
        if i.get_opcode() != InstructionOpcode::Add {
            return Ok(None);
        }
        let operand = |k| {
            i.get_operand(k)
                .and_then(|o| o.value())
                .map(|o| o.into_int_value())
        };
        let (Some(a), Some(b)) = (operand(0), operand(1)) else {
            return Ok(None);
        };
        let (Some(a), Some(b)) = (self.narrow_u64(a)?, self.narrow_u64(b)?) else {
            return Ok(None);
        };
        // The ADD's deeper word first: in memory_grow's runs (`DUP2 ADD`)
        // that is the previous offset, which dies here, so x86's
        // two-address `add` can overwrite it; the other way round each add
        // first copied the step, which lives on (memory_grow_mstore's code
        // 2.5% larger and 5-7% slower).
        self.with_overflow("uadd", b, a).map(Some)
    }

    /// The word of four 64-bit limbs, least significant first.
    fn word_of(&self, limbs: [IntValue<'ctx>; 4]) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let mut v = self.i256.const_zero();
        for (j, limb) in limbs.into_iter().enumerate() {
            let wide = bld.build_int_z_extend(limb, self.i256, "")?;
            let placed =
                bld.build_left_shift(wide, self.i256.const_int(64 * j as u64, false), "")?;
            v = bld.build_or(v, placed, "")?;
        }
        Ok(v)
    }

    /// The low five bits of the run-time index `a`, as a 64-bit value: the
    /// byte index BYTE and SIGNEXTEND use when `a` is in range (the caller
    /// selects the out-of-range result itself).
    fn byte_index(&self, a: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let low = self.b.build_int_truncate(a, self.i64, "")?;
        self.b.build_and(low, self.const_i64(31), "")
    }

    /// `limbs[j]` for a run-time `j` in `0..4`.
    fn pick_limb(&self, limbs: &[IntValue<'ctx>; 4], j: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let mut v = limbs[0];
        for (k, &limb) in limbs.iter().enumerate().skip(1) {
            let is_k =
                self.b
                    .build_int_compare(IntPredicate::EQ, j, self.const_i64(k as u64), "")?;
            v = self.b.build_select(is_k, limb, v, "")?.into_int_value();
        }
        Ok(v)
    }

    /// BYTE of a run-time index `a` in word `b`, on 64-bit limbs: a 256-bit
    /// shift by an unknown amount expands to selects over every limb pair
    /// (hundreds of machine instructions), and code made of such shifts
    /// compiled at seconds per KB.
    fn byte_by_limbs(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let big =
            bld.build_int_compare(IntPredicate::UGE, a, self.i256.const_int(32, false), "")?;
        let limbs = self.limbs_of(b)?;
        // Byte i (0 = most significant) is byte 31 - i from the bottom:
        // limb 3 - i / 8, bits 8 * (7 - i % 8) up.
        let i = self.byte_index(a)?;
        let limb = bld.build_int_sub(
            self.const_i64(3),
            bld.build_right_shift(i, self.const_i64(3), false, "")?,
            "",
        )?;
        let within = bld.build_and(i, self.const_i64(7), "")?;
        let bits = bld.build_left_shift(
            bld.build_int_sub(self.const_i64(7), within, "")?,
            self.const_i64(3),
            "",
        )?;
        let v = bld.build_right_shift(self.pick_limb(&limbs, limb)?, bits, false, "")?;
        let v = bld.build_and(v, self.const_i64(0xff), "")?;
        let v = bld.build_int_z_extend(v, self.i256, "")?;
        Ok(bld
            .build_select(big, self.i256.const_zero(), v, "")?
            .into_int_value())
    }

    /// SIGNEXTEND from a run-time byte index `a` of word `b`, on 64-bit
    /// limbs (see [`Self::byte_by_limbs`] for why): the limb holding the
    /// sign byte is extended in place, the limbs above it become its sign.
    fn signextend_by_limbs(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let big =
            bld.build_int_compare(IntPredicate::UGE, a, self.i256.const_int(31, false), "")?;
        let limbs = self.limbs_of(b)?;
        // For an index k below 31 (others leave the word as it is): the sign
        // bit is bit 8 * (k % 8) + 7 of limb k / 8.
        let k = self.byte_index(a)?;
        let at = bld.build_right_shift(k, self.const_i64(3), false, "")?;
        let up = bld.build_int_sub(
            self.const_i64(56),
            bld.build_left_shift(
                bld.build_and(k, self.const_i64(7), "")?,
                self.const_i64(3),
                "",
            )?,
            "",
        )?;
        let limb = self.pick_limb(&limbs, at)?;
        let extended = bld.build_right_shift(bld.build_left_shift(limb, up, "")?, up, true, "")?;
        let sign = bld.build_right_shift(extended, self.const_i64(63), true, "")?;
        let mut out = limbs;
        for (j, slot) in out.iter_mut().enumerate() {
            let j64 = self.const_i64(j as u64);
            let below = bld.build_int_compare(IntPredicate::UGT, at, j64, "")?;
            let here = bld.build_int_compare(IntPredicate::EQ, at, j64, "")?;
            let above = bld.build_select(here, extended, sign, "")?.into_int_value();
            *slot = bld
                .build_select(below, limbs[j], above, "")?
                .into_int_value();
        }
        let v = self.word_of(out)?;
        Ok(bld.build_select(big, b, v, "")?.into_int_value())
    }

    /// SHL, SHR or SAR of word `b` by a run-time amount `a` below 256 (the
    /// caller selects the result of larger ones), on 64-bit limbs: whole
    /// limbs move first, by two and by one as bits 7 and 6 of the amount
    /// say, then the bits within a limb shift across limb pairs with
    /// funnel shifts (`shld`/`shrd`). LLVM 19 expands a 256-bit shift by an
    /// unknown amount into shifts, ORs and selects of every limb pair:
    /// blake2b_huff, whose rotations are such shifts, takes 35% less native
    /// time this way, burntpix 3.5% (benches/README.md, "Shifts by run-time
    /// amounts").
    fn shift_by_limbs(&self, opc: u8, a: IntValue<'ctx>, b: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let x = self.limbs_of(b)?;
        let amount = self.low_limb(a)?;
        let bits = bld.build_and(amount, self.const_i64(63), "")?;
        let zero = self.i64.const_zero();
        let fill = match opc {
            op::SAR => bld.build_right_shift(x[3], self.const_i64(63), true, "")?,
            _ => zero,
        };
        let left = opc == op::SHL;
        let mut y = x;
        for (step, bit) in [(2usize, 128u64), (1, 64)] {
            let set = bld.build_int_compare(
                IntPredicate::NE,
                bld.build_and(amount, self.const_i64(bit), "")?,
                zero,
                "",
            )?;
            let prev = y;
            for (i, slot) in y.iter_mut().enumerate() {
                let moved = match left {
                    true if i >= step => prev[i - step],
                    true => zero,
                    false if i + step < 4 => prev[i + step],
                    false => fill,
                };
                *slot = bld.build_select(set, moved, prev[i], "")?.into_int_value();
            }
        }
        let funnel = |name, hi, lo| self.int_intrinsic(name, self.i64, &[hi, lo, bits]);
        let mut out = [zero; 4];
        if left {
            out[0] = bld.build_left_shift(y[0], bits, "")?;
            for i in 1..4 {
                out[i] = funnel("llvm.fshl", y[i], y[i - 1])?;
            }
        } else {
            for i in 0..3 {
                out[i] = funnel("llvm.fshr", y[i + 1], y[i])?;
            }
            out[3] = bld.build_right_shift(y[3], bits, opc == op::SAR, "")?;
        }
        self.word_of(out)
    }

    /// `a` is the top of the stack, `b` the word below it.
    fn binary(&self, opc: u8, a: IntValue<'ctx>, b: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let bld = &self.b;
        let zero = self.i256.const_zero();
        let c256 = self.i256.const_int(256, false);
        Ok(match opc {
            // `x + 0` is `x` itself, so that what is learnt about the sum
            // later (an offset found small by a memory access) holds for
            // every copy of `x` (the builder folds only constants).
            op::ADD if a == zero || b == zero => {
                if a == zero {
                    b
                } else {
                    a
                }
            }
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
                let overflow = match opc {
                    op::SAR => {
                        bld.build_right_shift(b, self.i256.const_int(255, false), true, "")?
                    }
                    _ => zero,
                };
                let shifted = if a.is_constant_int() {
                    // A constant amount: the shift folds to moves of limbs.
                    let safe = bld.build_select(big, zero, a, "")?.into_int_value();
                    match opc {
                        op::SHL => bld.build_left_shift(b, safe, "")?,
                        op::SHR => bld.build_right_shift(b, safe, false, "")?,
                        _ => bld.build_right_shift(b, safe, true, "")?,
                    }
                } else {
                    self.shift_by_limbs(opc, a, b)?
                };
                bld.build_select(big, overflow, shifted, "")?
                    .into_int_value()
            }
            op::BYTE | op::SIGNEXTEND if a.is_constant_int() => {
                // A constant index: the shifts fold to a few moves.
                self.byte_or_signextend_by_shifts(opc, a, b)?
            }
            op::BYTE => self.byte_by_limbs(a, b)?,
            op::SIGNEXTEND => self.signextend_by_limbs(a, b)?,
            _ => unreachable!("opcode {opc:#x} is not an inline binary op"),
        })
    }

    pub(super) fn bswap(&self, v: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        self.int_intrinsic("llvm.bswap", self.i256, &[v])
    }
}
