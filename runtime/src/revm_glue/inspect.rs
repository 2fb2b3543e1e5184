//! revm's inspectors on [`NativeEvm`], in one of two ways per EVM:
//!
//! - **Exact by fallback** (any inspector): while inspecting, every frame
//!   runs in revm's interpreter through revm's own inspect loop, compiled or
//!   not, so per-opcode tracers (`step`/`step_end`: struct logs, EIP-3155)
//!   see exactly what they see on plain revm. Compiled code is simply not
//!   used.
//! - **Frame-level native** (inspector type [`FrameLevel<_>`], switched on
//!   with [`NativeEvm::with_frame_level_native`]): compiled frames run
//!   natively and fire the frame-level hooks at the points, with the
//!   arguments and in the order of the interpreter. `initialize_interp`,
//!   `call`/`create` and their ends are fired by revm's frame loop as for
//!   any frame; logs and SELFDESTRUCT by the native run's builtin opcode
//!   hook (their instructions are revm's own functions in compiled code
//!   too). A frame whose interpreter an inspector already halted, or that
//!   deopts, continues in revm's inspect loop, which with no step hooks is
//!   the same run.
//!
//! The untraced paths (`transact`, `frame_run`) are untouched by either.

mod frame_level;
mod native_run;

pub use frame_level::FrameLevel;

use super::evm::{artifact_for, NativeEvm};
use native_run::run_native_inspected;
use revm::context::{ContextSetters, ContextTr, FrameStack, JournalTr};
use revm::database_interface::DatabaseCommit;
use revm::handler::evm::ContextDbError;
use revm::handler::instructions::InstructionProvider;
use revm::handler::{
    FrameInitOrResult, ItemOrResult, MainnetHandler, PrecompileProvider, SystemCallTx,
};
use revm::inspector::handler::frame_end;
use revm::inspector::{
    inspect_instructions, InspectCommitEvm, InspectEvm, InspectSystemCallEvm, Inspector,
    InspectorEvmTr, InspectorHandler, JournalExt,
};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::LoopControl;
use revm::interpreter::{InterpreterAction, InterpreterResult};
use revm::primitives::{Address, Bytes};
use revm::state::EvmState;

impl<CTX, I, INST, P> NativeEvm<CTX, FrameLevel<I>, INST, P> {
    /// Runs compiled frames natively while inspecting (see the module
    /// docs); only for a [`FrameLevel`] inspector, which cannot see a
    /// difference.
    pub fn with_frame_level_native(mut self) -> Self {
        self.frame_level_native = true;
        self
    }

    /// Switches native frames under inspection on or off.
    pub fn set_frame_level_native(&mut self, on: bool) {
        self.frame_level_native = on;
    }
}

impl<CTX, INSP, I, P> NativeEvm<CTX, INSP, I, P> {
    /// Whether compiled frames run natively while inspecting.
    pub fn frame_level_native(&self) -> bool {
        self.frame_level_native
    }
}

impl<CTX, INSP, I, P> InspectorEvmTr for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextTr<Journal: JournalExt> + ContextSetters,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
    INSP: Inspector<CTX, EthInterpreter>,
{
    type Inspector = INSP;

    #[inline]
    fn all_inspector(
        &self,
    ) -> (
        &Self::Context,
        &Self::Instructions,
        &Self::Precompiles,
        &FrameStack<Self::Frame>,
        &Self::Inspector,
    ) {
        self.inner.all_inspector()
    }

    #[inline]
    fn all_mut_inspector(
        &mut self,
    ) -> (
        &mut Self::Context,
        &mut Self::Instructions,
        &mut Self::Precompiles,
        &mut FrameStack<Self::Frame>,
        &mut Self::Inspector,
    ) {
        self.inner.all_mut_inspector()
    }

    /// revm's `inspect_frame_run`, with compiled frames run natively when
    /// frame-level native inspection is on.
    fn inspect_frame_run(&mut self) -> Result<FrameInitOrResult<Self::Frame>, ContextDbError<CTX>> {
        let frame = self.inner.frame_stack.get();
        let context = &mut self.inner.ctx;
        let inspector = &mut self.inner.inspector;
        let instructions = &mut self.inner.instruction;
        let interp = &mut frame.interpreter;
        let code_hash = interp.bytecode.hash();
        // An interpreter an inspector halted in `initialize_interp` is left
        // to revm's loop, which ends it before any instruction.
        let artifact = if self.frame_level_native && !interp.bytecode.is_end() {
            artifact_for(&self.artifacts, code_hash, interp.runtime_flag.spec_id)
        } else {
            None
        };
        let table = instructions.instruction_table();
        let gas_table = instructions.gas_table();
        let action = match artifact {
            Some(art) => {
                art.warmth.warm_for(self.epoch);
                self.native_frames += 1;
                // SAFETY: the artifact was validated for this code hash and spec.
                unsafe {
                    run_native_inspected(art.entry(), interp, table, gas_table, context, inspector)
                }
            }
            None => inspect_instructions(context, interp, &mut *inspector, table, gas_table),
        };
        if let (Some(tally), InterpreterAction::Return(r)) = (self.hot.as_mut(), &action) {
            tally.frame_finished(code_hash, frame.depth, r.gas.total_gas_spent());
        }
        let mut result = frame.process_next_action(context, action);
        if let Ok(ItemOrResult::Result(frame_result)) = &mut result {
            frame_end(context, inspector, &frame.input, frame_result);
            frame.set_finished(true);
        }
        result
    }
}

impl<CTX, INSP, I, P> InspectEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextSetters + ContextTr<Journal: JournalTr<State = EvmState> + JournalExt>,
    INSP: Inspector<CTX, EthInterpreter>,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    type Inspector = INSP;

    fn set_inspector(&mut self, inspector: Self::Inspector) {
        self.inner.inspector = inspector;
    }

    #[inline]
    fn inspect_one_tx(&mut self, tx: Self::Tx) -> Result<Self::ExecutionResult, Self::Error> {
        self.refresh();
        self.inner.ctx.set_tx(tx);
        let r = MainnetHandler::default().inspect_run(self);
        self.finish_tx();
        r
    }
}

impl<CTX, INSP, I, P> InspectCommitEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextSetters
        + ContextTr<Journal: JournalTr<State = EvmState> + JournalExt, Db: DatabaseCommit>,
    INSP: Inspector<CTX, EthInterpreter>,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
}

impl<CTX, INSP, I, P> InspectSystemCallEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextSetters
        + ContextTr<Journal: JournalTr<State = EvmState> + JournalExt, Tx: SystemCallTx>,
    INSP: Inspector<CTX, EthInterpreter>,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    fn inspect_one_system_call_with_caller(
        &mut self,
        caller: Address,
        system_contract_address: Address,
        data: Bytes,
    ) -> Result<Self::ExecutionResult, Self::Error> {
        self.refresh();
        self.inner.ctx.set_tx(CTX::Tx::new_system_tx_with_caller(
            caller,
            system_contract_address,
            data,
        ));
        let r = MainnetHandler::default().inspect_run_system_call(self);
        self.finish_tx();
        r
    }
}
