//! [`FrameLevel`]: an inspector restricted to the hooks a compiled frame can
//! reproduce exactly.

use revm::handler::FrameResult;
use revm::inspector::Inspector;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{
    CallInputs, CallOutcome, CreateInputs, CreateOutcome, FrameInput, Interpreter,
};
use revm::primitives::{Address, Log, U256};

/// Wraps an inspector so that it sees only frame-level hooks, and so lets
/// [`crate::NativeEvm`] run compiled frames natively while it inspects.
///
/// Forwarded: `initialize_interp`, `frame_start`/`frame_end`,
/// `call`/`call_end`, `create`/`create_end`, `log`/`log_full` and
/// `selfdestruct`. Never forwarded: `step` and `step_end`, in interpreted
/// frames as much as in compiled ones. So the wrapped inspector sees the
/// same hooks, with the same arguments and in the same order, whichever way
/// a frame runs: a compiled frame fires them at the points the interpreter
/// would (its LOGs, CALLs, CREATEs and SELFDESTRUCT go through revm's own
/// instruction functions), and a tracer that needs `step` simply records no
/// steps under this wrapper instead of a trace with holes in it.
///
/// That is the whole declaration: native frames under an inspector are
/// possible only when the EVM's inspector type is `FrameLevel<_>` (see
/// [`crate::NativeEvm::with_frame_level_native`]). Any other inspector runs
/// every frame in revm's interpreter, step by step.
///
/// `log_full` gets the interpreter as it is after the LOG: stack, memory,
/// gas and pc exact in compiled frames too. An inspector that halts the
/// interpreter there (or in `initialize_interp`) ends the frame as in the
/// interpreter.
#[derive(Clone, Debug, Default)]
pub struct FrameLevel<I>(pub I);

impl<I> FrameLevel<I> {
    /// Wraps `inspector`.
    pub fn new(inspector: I) -> Self {
        Self(inspector)
    }

    /// The wrapped inspector.
    pub fn inner(&self) -> &I {
        &self.0
    }

    /// The wrapped inspector, mutably.
    pub fn inner_mut(&mut self) -> &mut I {
        &mut self.0
    }

    /// Unwraps the inspector.
    pub fn into_inner(self) -> I {
        self.0
    }
}

impl<CTX, I> Inspector<CTX, EthInterpreter> for FrameLevel<I>
where
    I: Inspector<CTX, EthInterpreter>,
{
    fn initialize_interp(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        self.0.initialize_interp(interp, context);
    }

    // `step` and `step_end` keep their empty defaults: see the type's docs.

    fn log(&mut self, context: &mut CTX, log: Log) {
        self.0.log(context, log);
    }

    fn log_full(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX, log: Log) {
        self.0.log_full(interp, context, log);
    }

    fn frame_start(
        &mut self,
        context: &mut CTX,
        frame_input: &mut FrameInput,
    ) -> Option<FrameResult> {
        self.0.frame_start(context, frame_input)
    }

    fn frame_end(
        &mut self,
        context: &mut CTX,
        frame_input: &FrameInput,
        frame_result: &mut FrameResult,
    ) {
        self.0.frame_end(context, frame_input, frame_result);
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.0.call(context, inputs)
    }

    fn call_end(&mut self, context: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.0.call_end(context, inputs, outcome);
    }

    fn create(&mut self, context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.0.create(context, inputs)
    }

    fn create_end(
        &mut self,
        context: &mut CTX,
        inputs: &CreateInputs,
        outcome: &mut CreateOutcome,
    ) {
        self.0.create_end(context, inputs, outcome);
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        self.0.selfdestruct(contract, target, value);
    }
}
