//! Rewrites of optimised IR that keep LLVM 19's x86 back end away from
//! shapes it crashes on. They run after the IR pipeline, right before
//! instruction selection, on every opt level.
//!
//! A crash inside LLVM is not a compile error: it takes the whole process
//! down, and the bytecode that triggers it is chosen by whoever deploys a
//! contract. So each known trigger is removed here, and the regression tests
//! (`compiler/tests/all/llvm_workarounds.rs`) compile it for real.

use inkwell::module::Module;
use inkwell::values::{AsValueRef, BasicValueEnum, InstructionOpcode, InstructionValue};
use inkwell::IntPredicate;

/// LLVM 19, x86-64 with AVX (x86-64-v3 and later), any codegen level:
/// SelectionDAG's combiner dereferences an invalid type and segfaults on
/// `select (icmp eq|ne iN %a, %b), K, K+1` (or the equivalent
/// `sub K+1, zext (icmp ...)`) when N ≥ 128, K is odd and %a is loaded
/// from memory while %b is a load or a constant. The X86 combine that turns
/// such wide equality compares into vector compares is only attempted when
/// both operands are loads or constants; a `freeze` in between is neither,
/// and costs no instruction. EVM code reaches the shape with e.g.
/// `PUSH0 CALLDATALOAD PUSH1 77 EQ PUSH1 8 SUB PUSH0 SSTORE`.
///
/// Every non-constant operand of a wide equality compare is frozen. The
/// vector form it gives up is a few instructions shorter per compare; the
/// scalar one is what other compares already get.
pub fn freeze_wide_equality_operands(module: &Module<'_>) -> usize {
    let cx = module.get_context();
    let builder = cx.create_builder();
    let mut frozen = 0;
    for function in module.get_functions() {
        for block in function.get_basic_blocks() {
            let mut next = block.get_first_instruction();
            while let Some(inst) = next {
                next = inst.get_next_instruction();
                if !is_wide_equality(inst) {
                    continue;
                }
                for index in 0..2 {
                    let Some(operand) = inst.get_operand(index).and_then(|o| o.value()) else {
                        continue;
                    };
                    if is_constant(operand) {
                        continue;
                    }
                    builder.position_before(&inst);
                    // SAFETY: the builder is positioned inside a function of
                    // this module and the operand is a first-class value
                    // defined before `inst`, which is all LLVMBuildFreeze
                    // needs.
                    let value = unsafe {
                        inkwell::llvm_sys::core::LLVMBuildFreeze(
                            builder.as_mut_ptr(),
                            operand.as_value_ref(),
                            c"".as_ptr(),
                        )
                    };
                    let value = unsafe { BasicValueEnum::new(value) };
                    inst.set_operand(index, value);
                    frozen += 1;
                }
            }
        }
    }
    frozen
}

fn is_wide_equality(inst: InstructionValue<'_>) -> bool {
    if inst.get_opcode() != InstructionOpcode::ICmp {
        return false;
    }
    if !matches!(
        inst.get_icmp_predicate(),
        Some(IntPredicate::EQ | IntPredicate::NE)
    ) {
        return false;
    }
    matches!(
        inst.get_operand(0).and_then(|o| o.value()),
        Some(BasicValueEnum::IntValue(v)) if v.get_type().get_bit_width() >= 128
    )
}

fn is_constant(v: BasicValueEnum<'_>) -> bool {
    match v {
        BasicValueEnum::IntValue(v) => v.is_const(),
        _ => false,
    }
}
