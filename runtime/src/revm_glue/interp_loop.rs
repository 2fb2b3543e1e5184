//! The end of the interpreter's run loop, as the runtime drives it itself:
//! after compiled code hands a frame back, and when tracing or profiling
//! interpreted frames step by step.

use super::trace::TraceStep;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::{Jumps, LoopControl};
use revm::interpreter::{
    GasTable, Host, InstructionResult, InstructionTable, Interpreter, InterpreterAction,
};

/// The tail of the interpreter's own run loop.
pub(super) fn finish(
    interp: &mut Interpreter<EthInterpreter>,
    result: InstructionResult,
) -> InterpreterAction {
    if interp.bytecode.action().is_none() {
        interp.halt(result);
    }
    interp.take_next_action()
}

/// Runs the interpreter loop like `Interpreter::run_plain`, recording every
/// step.
pub(super) fn run_traced<H: Host>(
    interp: &mut Interpreter<EthInterpreter>,
    table: &InstructionTable<EthInterpreter, H>,
    gas_table: &GasTable,
    host: &mut H,
    depth: usize,
    trace: &mut Vec<TraceStep>,
) -> InterpreterAction {
    let result = loop {
        let pc = interp.bytecode.pc();
        let opcode = interp.bytecode.opcode();
        trace.push(TraceStep::capture(interp, depth, pc, opcode, false));
        if let Err(e) = interp.step(table, gas_table, host) {
            break e;
        }
    };
    finish(interp, result)
}

/// Runs the interpreter loop like `Interpreter::run_plain`, marking the pc
/// of every step in `ran` (bit `pc % 64` of word `pc / 64`).
pub(super) fn run_profiled<H: Host>(
    interp: &mut Interpreter<EthInterpreter>,
    table: &InstructionTable<EthInterpreter, H>,
    gas_table: &GasTable,
    host: &mut H,
    ran: &mut Vec<u64>,
) -> InterpreterAction {
    let result = loop {
        let pc = interp.bytecode.pc();
        let word = pc / 64;
        if word >= ran.len() {
            ran.resize(word + 1, 0);
        }
        ran[word] |= 1 << (pc % 64);
        if let Err(e) = interp.step(table, gas_table, host) {
            break e;
        }
    };
    finish(interp, result)
}
