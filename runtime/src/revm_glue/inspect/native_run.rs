//! A compiled frame run under a frame-level inspector: the untraced native
//! run, with the builtin opcode hook reporting what the interpreter's
//! inspect loop reports after an instruction (its logs) and at the end of
//! the frame (a SELFDESTRUCT).

use crate::revm_glue::executor::{
    enter, escape_unless_zero, exec_op_status, leave, BuiltinTables, ExecOpKind, FrameState,
    MemoryBuffer,
};
use evmc_interface::{EntryFn, ExecCtx, ExecOpFn};
use revm::context::{ContextTr, JournalEntry, JournalTr};
use revm::context_interface::LocalContextTr;
use revm::inspector::{inspect_instructions, Inspector, JournalExt};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::{Jumps, LoopControl};
use revm::interpreter::{
    GasTable, Host, InstructionResult, InstructionTable, Interpreter, InterpreterAction,
};
use std::ffi::c_void;

/// The runtime side of an inspected native run: the plain one first, so
/// that the builtins that need no inspector use it as it is.
#[repr(C)]
struct InspectedFrame<H: Host, INSP> {
    base: FrameState<H>,
    inspector: *mut INSP,
    /// The journal's length before the last builtin opcode: where revm
    /// looks for the entry of a SELFDESTRUCT that ended the frame.
    journal_i: Option<usize>,
}

/// Inspected native runs: their opcodes go through `exec_op_inspected`, a
/// builtin table per host and inspector type.
struct InspectedBuiltins<H, INSP>(std::marker::PhantomData<(H, INSP)>);

impl<H, INSP> ExecOpKind for InspectedBuiltins<H, INSP>
where
    H: ContextTr<Journal: JournalExt> + Host,
    INSP: Inspector<H, EthInterpreter>,
{
    type Host = H;
    const EXEC: ExecOpFn = exec_op_inspected::<H, INSP>;
}

/// Runs `entry` on `interp` like [`crate::run_native`], firing `inspector`'s
/// `log_full` after each instruction that journaled logs and `selfdestruct`
/// when a SELFDESTRUCT ends the frame, as revm's `inspect_instructions`
/// does. After a deopt the frame continues in `inspect_instructions`
/// itself.
///
/// `inspector` must fire nothing at `step`/`step_end` (see
/// [`super::FrameLevel`]): none are fired here.
///
/// # Safety
/// `entry` must be the entry point of an artifact validated for this
/// bytecode and spec (see [`crate::loader`]).
pub(crate) unsafe fn run_native_inspected<H, INSP>(
    entry: EntryFn,
    interp: &mut Interpreter<EthInterpreter>,
    table: &InstructionTable<EthInterpreter, H>,
    gas_table: &GasTable,
    host: &mut H,
    inspector: &mut INSP,
) -> InterpreterAction
where
    H: ContextTr<Journal: JournalExt> + Host,
    INSP: Inspector<H, EthInterpreter>,
{
    interp.bytecode.reset_action();
    let builtins = BuiltinTables::<InspectedBuiltins<H, INSP>>::get();
    let memory_buffer: MemoryBuffer = &**host.local().shared_memory_buffer();
    let mut state = InspectedFrame {
        base: FrameState::new(interp, host, table),
        inspector: inspector as *mut INSP,
        journal_i: None,
    };
    state.base.memory_buffer = memory_buffer;
    let mut ctx = std::mem::MaybeUninit::uninit();
    let status = enter(
        entry,
        interp,
        builtins,
        &mut state as *mut InspectedFrame<H, INSP> as *mut c_void,
        &mut ctx,
    );
    // SAFETY: `enter` wrote it.
    let ctx = ctx.assume_init_ref();
    let Some(action) = leave(status, ctx, interp, state.base.result, memory_buffer) else {
        // No step hooks to repeat: revm's loop from here on is exactly what
        // the interpreted frame would have run.
        return inspect_instructions(host, interp, inspector, table, gas_table);
    };
    if let (InterpreterAction::Return(r), Some(journal_i)) = (&action, state.journal_i) {
        if r.result == InstructionResult::SelfDestruct {
            report_selfdestruct(host, inspector, journal_i);
        }
    }
    action
}

/// `exec_op` with the log hook around it.
unsafe extern "C" fn exec_op_inspected<H, INSP>(ctx: *mut ExecCtx, opcode: u32, pc: u32)
where
    H: ContextTr<Journal: JournalExt> + Host,
    INSP: Inspector<H, EthInterpreter>,
{
    let status = exec_op_inspected_status::<H, INSP>(ctx, opcode, pc);
    escape_unless_zero(ctx, status);
}

/// The work of `exec_op_inspected`: 0 to go on, 1 when the frame ended.
#[inline(always)]
unsafe fn exec_op_inspected_status<H, INSP>(ctx: *mut ExecCtx, opcode: u32, pc: u32) -> u32
where
    H: ContextTr<Journal: JournalExt> + Host,
    INSP: Inspector<H, EthInterpreter>,
{
    let st = (*ctx).frame as *mut InspectedFrame<H, INSP>;
    let (logs_i, journal_i) = {
        let journal = (*(*st).base.host).journal();
        (journal.logs().len(), journal.journal().len())
    };
    (*st).journal_i = Some(journal_i);
    let r = exec_op_status::<H>(ctx, opcode, pc);
    if (*(*st).base.host).journal().logs().len() == logs_i {
        return r;
    }
    report_logs::<H, INSP>(ctx, st, logs_i, pc, r)
}

/// Fires `log_full` for the logs an instruction journaled, on the
/// interpreter as it is after the instruction, and ends the frame if the
/// inspector halted it there. Returns the builtin's status.
#[cold]
#[inline(never)]
unsafe fn report_logs<H, INSP>(
    ctx: *mut ExecCtx,
    st: *mut InspectedFrame<H, INSP>,
    logs_i: usize,
    pc: u32,
    status: u32,
) -> u32
where
    H: ContextTr<Journal: JournalExt> + Host,
    INSP: Inspector<H, EthInterpreter>,
{
    let interp = &mut *(*st).base.interp;
    let host = &mut *(*st).base.host;
    let inspector = &mut *(*st).inspector;
    // The interpreter steps past an opcode before running it; compiled code
    // keeps its pc to itself.
    interp.bytecode.absolute_jump(pc as usize + 1);
    let logs = host.journal().logs()[logs_i..].to_vec();
    for log in logs {
        inspector.log_full(interp, host, log);
    }
    if status == 0 && interp.bytecode.is_end() {
        // The inspector stopped the frame: its action is the frame's end.
        (*ctx).resume_pc = pc as u64 + 1;
        return 1;
    }
    status
}

/// revm's report of a SELFDESTRUCT: the last journal entry since the
/// instruction began, a destruction or the balance transfer it made.
#[cold]
#[inline(never)]
fn report_selfdestruct<H, INSP>(host: &mut H, inspector: &mut INSP, journal_i: usize)
where
    H: ContextTr<Journal: JournalExt>,
    INSP: Inspector<H, EthInterpreter>,
{
    let entry = host
        .journal()
        .journal()
        .get(journal_i..)
        .and_then(|entries| entries.last());
    if let Some(
        JournalEntry::AccountDestroyed {
            address: contract,
            target: to,
            had_balance: balance,
            ..
        }
        | JournalEntry::BalanceTransfer {
            from: contract,
            to,
            balance,
            ..
        },
    ) = entry
    {
        let (contract, to, balance) = (*contract, *to, *balance);
        inspector.selfdestruct(contract, to, balance);
    }
}
