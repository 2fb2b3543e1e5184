//! [`NativeEvm`]: revm's mainnet EVM with compiled frames.
//!
//! It wraps revm's own `Evm` and changes one thing, `frame_run`: when the
//! frame's code hash has an artifact for the frame's spec, the compiled
//! function runs instead of the interpreter loop. Frame creation, result
//! insertion, precompiles, journaling and the handler are revm's, so CALL and
//! CREATE from compiled code go through the same frame stack as interpreted
//! ones, without recursion on the native stack.

use super::executor::{run_native_with, Lent, MemoryBuffer, Memos, Tracing};
use super::interp_loop::{run_profiled, run_traced};
use super::keccak_memo::MemoScope;
use super::trace::TraceStep;
use crate::hot::{FrameTally, HotCounters};
use crate::loader::warm::next_epoch;
use crate::metrics::{FrameCounts, InterpretReason};
use crate::registry::{ArtifactMap, ReasonMap, Registry};
use crate::safety_net::{ticks, Choice, Rng};
use crate::LoadedArtifact;
use revm::context::{ContextSetters, ContextTr, Evm, FrameStack, JournalTr};
use revm::context_interface::result::{
    EVMError, ExecResultAndState, ExecutionResult, HaltReason, InvalidTransaction, ResultAndState,
};
use revm::context_interface::LocalContextTr;
use revm::database_interface::{Database, DatabaseCommit};
use revm::handler::evm::{ContextDbError, FrameInitResult};
use revm::handler::instructions::{EthInstructions, InstructionProvider};
use revm::handler::{
    EthFrame, EthPrecompiles, EvmTr, ExecuteCommitEvm, ExecuteEvm, FrameInitOrResult, FrameTr,
    Handler, MainnetHandler, PrecompileProvider, SystemCallCommitEvm, SystemCallEvm, SystemCallTx,
};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{FrameInput, InterpreterAction, InterpreterResult};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, B256};
use revm::state::EvmState;
use std::sync::Arc;

/// revm's mainnet EVM, with compiled contracts executed natively.
pub struct NativeEvm<CTX, INSP = (), I = EthInstructions<EthInterpreter, CTX>, P = EthPrecompiles> {
    /// revm's EVM this one drives.
    pub inner: Evm<CTX, INSP, I, P, EthFrame<EthInterpreter>>,
    registry: Arc<Registry>,
    /// Snapshot of the registry, refreshed at each transaction boundary.
    pub(super) artifacts: Arc<ArtifactMap>,
    /// Why contracts without an artefact have none; refreshed with `artifacts`.
    reasons: Arc<ReasonMap>,
    /// The registry generation `artifacts` is at least as new as.
    generation: u64,
    /// Frames per way of running since the last flush into the registry's
    /// metrics (at the end of each transaction).
    frames: FrameCounts,
    /// Frames run natively since construction (for tests and statistics).
    pub native_frames: u64,
    /// Steps recorded while tracing is on (see [`NativeEvm::start_trace`]).
    trace: Option<Vec<TraceStep>>,
    /// Gas and frames per code hash, when hot-contract detection is on.
    pub(super) hot: Option<Box<FrameTally>>,
    /// Whether compiled frames run natively while inspecting; settable only
    /// for a `FrameLevel` inspector (see [`super::inspect`]).
    pub(super) frame_level_native: bool,
    /// KECCAK256 results of the compiled frames of the current block (or
    /// transaction, or the EVM's life: [`MemoScope`]), storage words of the
    /// current compiled run.
    pub(super) memos: Memos,
    /// The registry's safety-net switch, read at each transaction boundary.
    net_on: bool,
    /// Random choices of the safety net's samples.
    rng: Rng,
    /// This EVM's current block, as an epoch of `loader::warm`: an
    /// artefact's code is fetched at its first native frame of each.
    pub(super) epoch: u64,
}

impl<CTX, INSP, I, P> NativeEvm<CTX, INSP, I, P> {
    /// Wraps revm's `inner`; contracts with an artifact in `registry` run
    /// natively.
    pub fn new(
        inner: Evm<CTX, INSP, I, P, EthFrame<EthInterpreter>>,
        registry: Arc<Registry>,
    ) -> Self {
        let generation = registry.generation();
        let artifacts = registry.snapshot();
        let reasons = registry.reasons();
        Self {
            inner,
            registry,
            artifacts,
            reasons,
            generation,
            frames: FrameCounts::default(),
            native_frames: 0,
            trace: None,
            hot: None,
            frame_level_native: false,
            memos: Memos::default(),
            net_on: false,
            rng: Rng::default(),
            epoch: next_epoch(),
        }
    }

    /// Counts each finished frame's own gas against its code hash into
    /// `counters`, flushed at the end of every transaction.
    pub fn with_hot_counters(mut self, counters: Arc<HotCounters>) -> Self {
        self.hot = Some(Box::new(FrameTally::new(counters)));
        self
    }

    #[inline]
    pub(super) fn flush_hot(&mut self) {
        if let Some(tally) = self.hot.as_mut() {
            tally.flush();
        }
    }

    /// Keeps KECCAK256 results for `scope` (a block by default; see
    /// [`MemoScope`]).
    pub fn with_memo_scope(mut self, scope: MemoScope) -> Self {
        self.memos.keccak.set_scope(scope);
        self
    }

    /// Records an opcode trace of what follows: every step of interpreted
    /// frames, the runtime calls of compiled ones. For diagnosing only.
    pub fn start_trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// Stops tracing and returns the steps recorded.
    pub fn take_trace(&mut self) -> Vec<TraceStep> {
        self.trace.take().unwrap_or_default()
    }

    /// The registry artifacts are taken from.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Starts a transaction: picks up artifacts registered since the last
    /// one, and empties the KECCAK256 memo if it is kept per transaction.
    #[inline]
    pub fn refresh(&mut self) {
        self.memos.keccak.transaction_starts();
        self.net_on = self.registry.safety_net();
        let seen = self.generation;
        self.registry
            .refresh(&mut self.artifacts, &mut self.generation);
        if self.generation != seen {
            self.reasons = self.registry.reasons();
        }
    }

    /// Adds the frames counted since the last flush to the registry's
    /// metrics; done at every transaction boundary.
    #[inline]
    pub fn flush_metrics(&mut self) {
        self.frames.flush(self.registry.metrics());
    }

    /// Ends a transaction (or system call): publishes its frame counts and
    /// its hot-contract tallies, once.
    #[inline]
    pub(super) fn finish_tx(&mut self) {
        self.flush_hot();
        self.flush_metrics();
    }
}

impl<CTX, INSP, I, P> EvmTr for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextTr,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    type Context = CTX;
    type Instructions = I;
    type Precompiles = P;
    type Frame = EthFrame<EthInterpreter>;

    #[inline]
    fn all(&self) -> (&CTX, &I, &P, &FrameStack<Self::Frame>) {
        self.inner.all()
    }

    #[inline]
    fn all_mut(&mut self) -> (&mut CTX, &mut I, &mut P, &mut FrameStack<Self::Frame>) {
        self.inner.all_mut()
    }

    #[inline]
    fn frame_init(
        &mut self,
        frame_input: <Self::Frame as FrameTr>::FrameInit,
    ) -> Result<FrameInitResult<'_, Self::Frame>, ContextDbError<CTX>> {
        self.inner.frame_init(frame_input)
    }

    #[inline]
    fn frame_run(&mut self) -> Result<FrameInitOrResult<Self::Frame>, ContextDbError<CTX>> {
        let frame = self.inner.frame_stack.get();
        let context = &mut self.inner.ctx;
        let instructions = &mut self.inner.instruction;
        let spec = frame.interpreter.runtime_flag.spec_id;
        let code_hash = frame.interpreter.bytecode.hash();
        let artifact = artifact_for(&self.artifacts, code_hash, spec);
        let table = instructions.instruction_table();
        let gas_table = instructions.gas_table();
        let depth = frame.depth;
        if artifact.is_none() {
            // Counted, not logged: an event per frame cost a tenth of a
            // small transaction under an `EnvFilter` subscriber.
            let reason = interpret_reason(&self.reasons, code_hash, spec);
            self.frames.interpreted(reason);
        }
        let choice = match artifact {
            Some(art) if self.net_on && self.trace.is_none() => art.net.choose(self.rng.next_u64()),
            Some(_) => Choice::Native,
            None => Choice::Interpreted,
        };
        let sample = match choice {
            Choice::Sample(native) => Some((native, frame.interpreter.gas.remaining(), ticks())),
            _ => None,
        };
        let native = match choice {
            Choice::Native => true,
            Choice::Interpreted => false,
            Choice::Sample(native) => native,
        };
        let action = match (artifact.filter(|_| native), self.trace.as_mut()) {
            (Some(art), steps) => {
                art.warmth.warm_for(self.epoch);
                self.native_frames += 1;
                self.frames.native();
                let tracing = steps.map(|steps| Tracing { depth, steps });
                let memory_buffer: MemoryBuffer = &**context.local().shared_memory_buffer();
                // SAFETY: the artifact was validated for this code hash and
                // spec; the buffer is the context's, alive through the run.
                unsafe {
                    run_native_with(
                        art.entry(),
                        &mut frame.interpreter,
                        table,
                        gas_table,
                        context,
                        tracing,
                        Lent {
                            memos: Some(&mut self.memos),
                            memory_buffer,
                        },
                    )
                }
            }
            (None, Some(steps)) => run_traced(
                &mut frame.interpreter,
                table,
                gas_table,
                context,
                depth,
                steps,
            ),
            (None, None) => {
                if artifact.is_some() {
                    self.frames.interpreted(InterpretReason::SafetyNet);
                }
                match self.hot.as_mut().and_then(|t| t.ran_bitmap(code_hash)) {
                    Some(ran) => {
                        run_profiled(&mut frame.interpreter, table, gas_table, context, ran)
                    }
                    None => frame.interpreter.run_plain(table, gas_table, context),
                }
            }
        };
        if let (Some((native, gas_before, start)), Some(art)) = (sample, artifact) {
            let elapsed = ticks().wrapping_sub(start);
            let spent = gas_before.saturating_sub(gas_left(&frame.interpreter, &action));
            art.net.record(native, elapsed, spent);
        }
        if let (Some(tally), InterpreterAction::Return(r)) = (self.hot.as_mut(), &action) {
            tally.frame_finished(code_hash, depth, r.gas.total_gas_spent());
        }
        frame.process_next_action(context, action).inspect(|i| {
            if i.is_result() {
                frame.set_finished(true);
            }
        })
    }

    #[inline]
    fn frame_return_result(
        &mut self,
        result: <Self::Frame as FrameTr>::FrameResult,
    ) -> Result<Option<<Self::Frame as FrameTr>::FrameResult>, ContextDbError<CTX>> {
        self.inner.frame_return_result(result)
    }
}

impl<CTX, INSP, I, P> ExecuteEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextTr<Journal: JournalTr<State = EvmState>> + ContextSetters,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    type ExecutionResult = ExecutionResult<HaltReason>;
    type State = EvmState;
    type Error = EVMError<<CTX::Db as Database>::Error, InvalidTransaction>;
    type Tx = <CTX as ContextTr>::Tx;
    type Block = <CTX as ContextTr>::Block;

    // `#[inline]` on these and on the `EvmTr` methods, as revm has on its
    // `Evm`'s: the embedding crate instantiates them, and split over its
    // codegen units a method without it can land in another unit than its
    // caller and is then called, not inlined, moving the transaction (a few
    // hundred bytes) and its result through every layer. Without it a
    // near-empty transaction measured 3-5% slower in `NativeEvm` than in
    // revm's EVM (benches/README.md, "Near-empty transactions").
    #[inline]
    fn transact_one(&mut self, tx: Self::Tx) -> Result<Self::ExecutionResult, Self::Error> {
        self.refresh();
        self.inner.ctx.set_tx(tx);
        let r = MainnetHandler::default().run(self);
        self.finish_tx();
        r
    }

    // What revm's default method does, written here: without it the
    // near-empty cases measured about 1% slower (three alternating pairs).
    #[inline]
    fn transact(
        &mut self,
        tx: Self::Tx,
    ) -> Result<ExecResultAndState<Self::ExecutionResult, Self::State>, Self::Error> {
        let output = self.transact_one(tx);
        // Finalising clears the journal, also after an error.
        let state = self.finalize();
        Ok(ExecResultAndState::new(output?, state))
    }

    #[inline]
    fn finalize(&mut self) -> Self::State {
        self.inner.ctx.journal_mut().finalize()
    }

    #[inline]
    fn set_block(&mut self, block: Self::Block) {
        self.memos.keccak.block_starts();
        self.epoch = next_epoch();
        self.inner.ctx.set_block(block);
    }

    #[inline]
    fn replay(&mut self) -> Result<ResultAndState<HaltReason>, Self::Error> {
        self.refresh();
        let r = MainnetHandler::default().run(self);
        self.finish_tx();
        r.inspect_err(|_| {
            let _ = self.finalize();
        })
        .map(|result| {
            let state = self.finalize();
            ResultAndState::new(result, state)
        })
    }
}

impl<CTX, INSP, I, P> ExecuteCommitEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextTr<Journal: JournalTr<State = EvmState>, Db: DatabaseCommit> + ContextSetters,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    #[inline]
    fn commit(&mut self, state: Self::State) {
        self.inner.ctx.db_mut().commit(state);
    }
}

impl<CTX, INSP, I, P> SystemCallEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextTr<Journal: JournalTr<State = EvmState>, Tx: SystemCallTx> + ContextSetters,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    fn system_call_one_with_caller(
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
        let r = MainnetHandler::default().run_system_call(self);
        self.finish_tx();
        r
    }
}

impl<CTX, INSP, I, P> SystemCallCommitEvm for NativeEvm<CTX, INSP, I, P>
where
    CTX: ContextTr<Journal: JournalTr<State = EvmState>, Db: DatabaseCommit, Tx: SystemCallTx>
        + ContextSetters,
    I: InstructionProvider<Context = CTX, InterpreterTypes = EthInterpreter>,
    P: PrecompileProvider<CTX, Output = InterpreterResult>,
{
    fn system_call_with_caller_commit(
        &mut self,
        caller: Address,
        system_contract_address: Address,
        data: Bytes,
    ) -> Result<Self::ExecutionResult, Self::Error> {
        self.system_call_with_caller(caller, system_contract_address, data)
            .map(|output| {
                self.inner.ctx.db_mut().commit(output.state);
                output.result
            })
    }
}

/// The artefact registered for a frame of `code_hash` under `spec`, if any
/// (init code has no hash and always runs interpreted).
#[inline]
pub(super) fn artifact_for(
    artifacts: &ArtifactMap,
    code_hash: Option<B256>,
    spec: SpecId,
) -> Option<&Arc<LoadedArtifact>> {
    match code_hash {
        Some(hash) if !artifacts.is_empty() => artifacts.get(&(hash, spec)),
        _ => None,
    }
}

/// The gas a frame still holds after a segment that produced `action`,
/// counting the gas handed to a child frame as still held: a segment's own
/// cost is what it spent itself.
fn gas_left(
    interp: &revm::interpreter::Interpreter<EthInterpreter>,
    action: &InterpreterAction,
) -> u64 {
    match action {
        InterpreterAction::Return(r) => r.gas.remaining(),
        InterpreterAction::NewFrame(FrameInput::Call(c)) => {
            interp.gas.remaining().saturating_add(c.gas_limit)
        }
        InterpreterAction::NewFrame(FrameInput::Create(c)) => {
            interp.gas.remaining().saturating_add(c.gas_limit())
        }
        InterpreterAction::NewFrame(FrameInput::Empty) => interp.gas.remaining(),
    }
}

/// Why a frame without an artefact runs interpreted.
#[inline]
fn interpret_reason(reasons: &ReasonMap, code_hash: Option<B256>, spec: SpecId) -> InterpretReason {
    match code_hash {
        None => InterpretReason::NoCodeHash,
        Some(_) if reasons.is_empty() => InterpretReason::NotCompiled,
        Some(hash) => reasons
            .get(&(hash, spec))
            .copied()
            .unwrap_or(InterpretReason::NotCompiled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revm::context::{BlockEnv, Context};
    use revm::{MainBuilder, MainContext};

    #[test]
    fn keccak_results_are_kept_for_a_block_a_transaction_or_the_evm() {
        let slot = [7u8; 64];
        let evm = || NativeEvm::new(Context::mainnet().build_mainnet(), Registry::new());
        // By default: across the transactions of a block, not past it.
        let mut by_block = evm();
        by_block.memos.keccak.hash(&slot);
        by_block.refresh();
        assert!(by_block.memos.keccak.remembers(&slot));
        by_block.set_block(BlockEnv::default());
        assert!(!by_block.memos.keccak.remembers(&slot));
        // Per transaction: forgotten at the next one.
        let mut by_tx = evm().with_memo_scope(MemoScope::Transaction);
        by_tx.memos.keccak.hash(&slot);
        assert!(by_tx.memos.keccak.remembers(&slot));
        by_tx.refresh();
        assert!(!by_tx.memos.keccak.remembers(&slot));
        // For the EVM's life: across transactions and blocks.
        let mut by_evm = evm().with_memo_scope(MemoScope::Evm);
        by_evm.memos.keccak.hash(&slot);
        by_evm.refresh();
        by_evm.set_block(BlockEnv::default());
        by_evm.refresh();
        assert!(by_evm.memos.keccak.remembers(&slot));
    }
}
