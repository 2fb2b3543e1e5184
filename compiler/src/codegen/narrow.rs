//! Counters in 64 bits: stack words that provably stay below 2^64 are
//! carried between blocks as `i64` phis instead of `i256`.
//!
//! A loop counter (`i = 0; ...; i += 1`) is a 256-bit word to the EVM, so
//! in registers it takes four, and every use of it is 256-bit arithmetic:
//! factorial's `n! = n * (n-1)!` multiplied by all four limbs of its
//! counter, and the counter took registers its calldata counter then
//! lacked (kept in four stack slots). LLVM cannot narrow them: nothing
//! bounds a trip count it can see.
//!
//! Gas bounds them. Take the phis of a part's block entries whose every
//! incoming value is a constant below 2^62, another such phi, or such a
//! phi plus 1 or 2 (an EVM `ADD`). At run time each of their values is a
//! constant below 2^62 plus one increment of at most 2 per `ADD` executed
//! on its way, each a distinct execution of an `ADD`, which costs 3 gas.
//! Within one run of a compiled frame gas only falls (builtins charge;
//! only a resumed `CALL` returns gas, and words reach a resume point
//! through memory, never as such a phi), and a frame starts with less
//! than 2^64 gas: at most 2^64 / 3 `ADD`s run, so every value stays below
//! 2^62 + 2 * 2^64 / 3 < 2^64. A run out of gas stops before the `ADD` its
//! segment charges for.
//!
//! So the phis become `i64` phis (zero-extended where used), and the
//! increments `i64` additions without unsigned wrap. Each value is the
//! same; what changes is what LLVM knows about it.

use super::part::PartGen;
use super::R;
use inkwell::values::{
    AnyValue, AsValueRef, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue, PhiValue,
};
use std::collections::HashMap;

/// Largest constant a counter may start from (exclusive).
const MAX_START: u128 = 1 << 62;
/// Largest increment per `ADD` the bound allows.
const MAX_STEP: u64 = 2;

/// Where one incoming value of a candidate phi comes from.
enum Source<'ctx> {
    /// A constant below [`MAX_START`].
    Start(u64),
    /// Candidate phi `j`, unchanged.
    Phi(usize),
    /// Candidate phi `j` plus a constant of at most [`MAX_STEP`]: the
    /// `add` instruction.
    Step(usize, u64, InstructionValue<'ctx>),
}

/// A non-negative constant below 2^64, read from LLVM's printing of it:
/// `IntValue::get_zero_extended_constant` returns only the low 64 bits of
/// a wider constant.
fn small_constant(v: IntValue<'_>) -> Option<u64> {
    if !v.is_const() {
        return None;
    }
    let text = v.print_to_string().to_string();
    let digits = text.rsplit(' ').next()?;
    digits.parse::<u64>().ok()
}

fn key(v: impl AsValueRef) -> usize {
    v.as_value_ref() as usize
}

impl<'ctx> PartGen<'_, '_, 'ctx> {
    /// Narrows the word phis of this part's blocks that gas bounds (see
    /// the module documentation). Runs once every block is generated.
    pub(super) fn narrow_counters(&self) -> R<()> {
        let phis: Vec<PhiValue<'ctx>> = self
            .phis
            .iter()
            .flatten()
            .flat_map(|(_, words)| words.iter().copied())
            .filter(|p| p.count_incoming() > 0)
            .collect();
        let index: HashMap<usize, usize> =
            phis.iter().enumerate().map(|(i, p)| (key(*p), i)).collect();
        let phi_of = |v: IntValue<'ctx>| index.get(&key(v)).copied();
        let source = |v: BasicValueEnum<'ctx>| -> Option<Source<'ctx>> {
            let v = v.into_int_value();
            if let Some(c) = small_constant(v) {
                return (u128::from(c) < MAX_START).then_some(Source::Start(c));
            }
            if let Some(j) = phi_of(v) {
                return Some(Source::Phi(j));
            }
            let add = v.as_instruction()?;
            if add.get_opcode() != InstructionOpcode::Add {
                return None;
            }
            let operand = |i| match add.get_operand(i) {
                Some(inkwell::values::Operand::Value(BasicValueEnum::IntValue(x))) => Some(x),
                _ => None,
            };
            let (a, b) = (operand(0)?, operand(1)?);
            let (step, j) = match (small_constant(a), small_constant(b)) {
                (Some(c), None) => (c, phi_of(b)?),
                (None, Some(c)) => (c, phi_of(a)?),
                _ => return None,
            };
            (1..=MAX_STEP)
                .contains(&step)
                .then_some(Source::Step(j, step, add))
        };
        // Each phi's sources, or `None` once one of them is not allowed;
        // then the phis fed by a dropped phi are dropped, through a
        // worklist (linear in the number of edges, whatever their order).
        type Sources<'ctx> = Vec<(Source<'ctx>, inkwell::basic_block::BasicBlock<'ctx>)>;
        let sources: Vec<Option<Sources<'ctx>>> = phis
            .iter()
            .map(|p| {
                p.get_incomings()
                    .map(|(v, bb)| Some((source(v)?, bb)))
                    .collect()
            })
            .collect();
        let mut fed: Vec<Vec<usize>> = vec![Vec::new(); phis.len()];
        for (i, s) in sources.iter().enumerate() {
            for (src, _) in s.iter().flatten() {
                if let Source::Phi(j) | Source::Step(j, ..) = src {
                    fed[*j].push(i);
                }
            }
        }
        let mut keep: Vec<bool> = sources.iter().map(Option::is_some).collect();
        let mut dropped: Vec<usize> = (0..phis.len()).filter(|&i| !keep[i]).collect();
        while let Some(j) = dropped.pop() {
            for &i in &fed[j] {
                if keep[i] {
                    keep[i] = false;
                    dropped.push(i);
                }
            }
        }
        if !keep.iter().any(|&k| k) {
            return Ok(());
        }
        let here = self.b.get_insert_block();
        // The narrow phis first (a phi may feed another, or itself). Every
        // instruction is made in an order fixed by the code: an artefact's
        // bytes must not depend on hashing.
        let mut narrow: Vec<Option<PhiValue<'ctx>>> = vec![None; phis.len()];
        for (i, p) in phis.iter().enumerate().filter(|(i, _)| keep[*i]) {
            let bb = p.as_instruction().get_parent().expect("a phi in a block");
            let first = bb.get_first_instruction().expect("the phi itself");
            self.b.position_before(&first);
            narrow[i] = Some(self.b.build_phi(self.i64, "n")?);
        }
        let narrow_of = |j: usize| narrow[j].expect("kept").as_basic_value().into_int_value();
        // Their incoming values: each increment becomes an i64 addition
        // where it was.
        let mut steps: Vec<(InstructionValue<'ctx>, IntValue<'ctx>)> = Vec::new();
        let mut step_of: HashMap<usize, usize> = HashMap::new();
        for (i, s) in sources.iter().enumerate().filter(|(i, _)| keep[*i]) {
            for (src, bb) in s.as_ref().expect("kept") {
                let v = match src {
                    Source::Start(c) => self.i64.const_int(*c, false),
                    Source::Phi(j) => narrow_of(*j),
                    Source::Step(j, step, add) => match step_of.get(&key(*add)) {
                        Some(&k) => steps[k].1,
                        None => {
                            self.b.position_before(add);
                            let v = self.b.build_int_nuw_add(
                                narrow_of(*j),
                                self.i64.const_int(*step, false),
                                "step",
                            )?;
                            step_of.insert(key(*add), steps.len());
                            steps.push((*add, v));
                            v
                        }
                    },
                };
                narrow[i].expect("kept").add_incoming(&[(&v, *bb)]);
            }
        }
        // The wide values become zero extensions of the narrow ones, just
        // after the phis of their block or where the increment was.
        for (i, n) in narrow.iter().enumerate() {
            let Some(n) = n else { continue };
            let bb = n.as_instruction().get_parent().expect("in a block");
            let first_other = bb
                .get_instructions()
                .find(|x| x.get_opcode() != InstructionOpcode::Phi)
                .expect("a block ends with a terminator");
            self.b.position_before(&first_other);
            let wide =
                self.b
                    .build_int_z_extend(n.as_basic_value().into_int_value(), self.i256, "")?;
            let old = phis[i].as_instruction();
            old.replace_all_uses_with(&wide.as_instruction().expect("an instruction"));
        }
        for (add, v) in &steps {
            self.b.position_before(add);
            let wide = self.b.build_int_z_extend(*v, self.i256, "")?;
            add.replace_all_uses_with(&wide.as_instruction().expect("an instruction"));
            add.erase_from_basic_block();
        }
        for (i, p) in phis.iter().enumerate() {
            if keep[i] {
                p.as_instruction().erase_from_basic_block();
            }
        }
        if let Some(bb) = here {
            self.b.position_at_end(bb);
        }
        Ok(())
    }
}
