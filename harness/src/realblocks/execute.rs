//! One block through alloy-evm's Ethereum block executor (system calls,
//! receipt builder, withdrawals and rewards included), on a fresh in-memory
//! state over the block's pre-state, with any EVM factory of the Ethereum
//! types; and the checks against the block's header.

use super::db::PreStateDb;
use super::env::BYZANTIUM_BLOCK;
use super::folder::RealBlock;
use super::receipts::MemoReceiptBuilder;
use super::trace::{TraceKind, TxTracer, TxTraces};
use super::BlockError;
use alloy_consensus::proofs::calculate_receipt_root;
use alloy_consensus::{ReceiptEnvelope, Transaction, TxReceipt};
use alloy_evm::block::TxResult;
use alloy_evm::block::{BlockExecutor, BlockExecutorFactory};
use alloy_evm::eth::spec::EthSpec;
use alloy_evm::eth::EthBlockExecutorFactory;
use alloy_evm::{EthEvmFactory, Evm, EvmFactory};
use alloy_primitives::Bloom;
use alloy_rpc_types_eth::TransactionInfo;
use evmc_runtime::{FrameLevel, NativeEvmFactory};
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::result::{ExecutionResult, HaltReason};
use revm::database::states::bundle_state::BundleRetention;
use revm::database::State;
use revm::database_interface::WrapDatabaseRef;
use revm::inspector::NoOpInspector;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, Log, B256, U256};
use revm::Inspector;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// What one transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// `success`, `revert` or `halt: REASON`.
    pub status: String,
    pub gas_used: u64,
    /// Return or revert data (empty on a halt).
    pub output: Bytes,
    pub logs: Vec<Log>,
}

impl TxOutcome {
    fn of(r: &ExecutionResult<HaltReason>) -> Self {
        let (status, output) = match r {
            ExecutionResult::Success { output, .. } => ("success".into(), output.data().clone()),
            ExecutionResult::Revert { output, .. } => ("revert".into(), output.clone()),
            ExecutionResult::Halt { reason, .. } => (format!("halt: {reason:?}"), Bytes::new()),
        };
        Self {
            status,
            gas_used: r.tx_gas_used(),
            output,
            logs: r.logs().to_vec(),
        }
    }
}

/// An account after the block, for every account the block changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostAccount {
    /// Balance, nonce and code hash; `None` when the account does not exist.
    pub info: Option<(U256, u64, B256)>,
    /// Slots whose value the block changed, with their final value.
    pub storage: BTreeMap<U256, U256>,
    /// Destroyed (storage wiped) during the block.
    pub destroyed: bool,
}

/// The state the block left, by address.
pub type PostState = BTreeMap<Address, PostAccount>;

/// A block's execution: receipts, per-transaction outcomes, final state.
#[derive(Clone, Debug)]
pub struct BlockRun {
    pub receipts: Vec<ReceiptEnvelope>,
    pub txs: Vec<TxOutcome>,
    /// Gas of all transactions, as the executor totals it.
    pub gas_used: u64,
    pub post: PostState,
    /// Code created by the block, by hash.
    pub new_code: HashMap<B256, Bytes>,
    /// Execution only: from the EVM's creation to the executor's finish,
    /// less the building of traces (tracers' hooks included).
    pub time: Duration,
    /// Each transaction's traces, when traced (empty otherwise).
    pub traces: Vec<TxTraces>,
    /// Time spent building and serialising the traces after each
    /// transaction (not in `time`).
    pub trace_build: Duration,
}

/// The database a block runs on: alloy-evm's `State` over the block's
/// pre-state.
type BlockDb<'b> = WrapDatabaseRef<&'b PreStateDb>;

type Executors<F> = EthBlockExecutorFactory<MemoReceiptBuilder, EthSpec, F>;

/// Executes `block` through alloy-evm's `EthBlockExecutor` with EVMs from
/// `factory` (alloy-evm's `EthEvmFactory`, or `NativeEvmFactory`), on a
/// fresh `State` over the block's pre-state.
///
/// Uncle rewards are left out (a block folder has the uncles' hashes, not
/// their headers); the miner's reward and withdrawals are applied.
pub fn execute_block<F>(block: &RealBlock, factory: F) -> Result<BlockRun, BlockError>
where
    F: EvmFactory<Spec = SpecId, BlockEnv = BlockEnv, Tx = TxEnv, HaltReason = HaltReason>
        + 'static,
{
    let executors = executors(factory);
    let mut state = new_state(block);
    let start = Instant::now();
    let evm = executors
        .evm_factory()
        .create_evm(&mut state, block.env.clone());
    let done = run_txs(block, &executors, evm)?;
    Ok(finish(state, done, start))
}

/// [`execute_block`] in revm's interpreter (alloy-evm's `EthEvmFactory`)
/// with a fresh [`TxTracer`] for `kinds` attached to each transaction: every
/// frame interpreted, step hooks included. The run's `traces` hold each
/// transaction's traces.
pub fn trace_block_interp(block: &RealBlock, kinds: &[TraceKind]) -> Result<BlockRun, BlockError> {
    let executors = executors(EthEvmFactory::default());
    let mut state = new_state(block);
    let start = Instant::now();
    let evm = executors.evm_factory().create_evm_with_inspector(
        &mut state,
        block.env.clone(),
        TxTracer::new(kinds),
    );
    let done = run_txs(block, &executors, evm)?;
    Ok(finish(state, done, start))
}

/// [`execute_block`] with `factory`'s native frames under a fresh
/// [`TxTracer`] for `kinds` per transaction, wrapped in `FrameLevel`
/// (frame-level hooks only: see
/// `NativeEvmFactory::create_evm_with_frame_level_inspector`).
pub fn trace_block_native(
    block: &RealBlock,
    factory: &NativeEvmFactory,
    kinds: &[TraceKind],
) -> Result<BlockRun, BlockError> {
    let executors = executors(factory.clone());
    let mut state = new_state(block);
    let start = Instant::now();
    let evm = executors
        .evm_factory()
        .create_evm_with_frame_level_inspector(&mut state, block.env.clone(), TxTracer::new(kinds));
    let done = run_txs(block, &executors, evm)?;
    Ok(finish(state, done, start))
}

/// Where a block run finds the tracer of the current transaction in its
/// EVM's inspector, if it traces.
pub(crate) trait TracerSlot {
    fn tracer(&mut self) -> Option<&mut TxTracer>;
}

impl TracerSlot for NoOpInspector {
    fn tracer(&mut self) -> Option<&mut TxTracer> {
        None
    }
}

impl TracerSlot for TxTracer {
    fn tracer(&mut self) -> Option<&mut TxTracer> {
        Some(self)
    }
}

impl TracerSlot for FrameLevel<TxTracer> {
    fn tracer(&mut self) -> Option<&mut TxTracer> {
        Some(self.inner_mut())
    }
}

fn executors<F: EvmFactory>(factory: F) -> Executors<F> {
    EthBlockExecutorFactory::new(MemoReceiptBuilder::default(), EthSpec::mainnet(), factory)
}

fn new_state(block: &RealBlock) -> State<BlockDb<'_>> {
    State::builder()
        .with_database_ref(&block.pre_state)
        .with_bundle_update()
        .build()
}

/// What the executor gave for a block's transactions.
struct Executed {
    receipts: Vec<ReceiptEnvelope>,
    txs: Vec<TxOutcome>,
    gas_used: u64,
    traces: Vec<TxTraces>,
    trace_build: Duration,
}

/// The block's system calls, transactions and post-block changes through
/// the executor, with `evm`. When its inspector holds a tracer, each
/// transaction gets a fresh one and its traces are built after it, before
/// its changes are committed (the prestate tracer reads the state before
/// the transaction).
fn run_txs<'s, 'b, F, I>(
    block: &RealBlock,
    executors: &Executors<F>,
    evm: F::Evm<&'s mut State<BlockDb<'b>>, I>,
) -> Result<Executed, BlockError>
where
    F: EvmFactory<Spec = SpecId, BlockEnv = BlockEnv, Tx = TxEnv, HaltReason = HaltReason>
        + 'static,
    I: TracerSlot + Inspector<F::Context<&'s mut State<BlockDb<'b>>>>,
{
    let number = block.number();
    let mut trace_build = Duration::ZERO;
    let mut executor = executors.create_executor(evm, block.execution_ctx());
    executor
        .apply_pre_execution_changes()
        .map_err(|e| classify(number, format!("system calls before the transactions: {e}")))?;
    let mut txs = Vec::with_capacity(block.transactions.len());
    let mut traces = Vec::new();
    // A fresh tracer for the first transaction: nothing of the system calls
    // carries over (each later one gets a fresh tracer when the previous
    // one's traces are taken).
    if let Some(t) = executor.evm_mut().inspector_mut().tracer() {
        *t = TxTracer::new(t.kinds());
    }
    for (i, tx) in block.transactions.iter().enumerate() {
        let hash = *tx.inner().tx_hash();
        let failed =
            |e: &dyn std::fmt::Display| classify(number, format!("transaction {i} ({hash}): {e}"));
        let output = executor
            .execute_transaction_without_commit(tx.as_recovered_ref())
            .map_err(|e| failed(&e))?;
        let result = output.result();
        txs.push(TxOutcome::of(&result.result));
        let evm = executor.evm_mut();
        if let Some(t) = evm.inspector_mut().tracer() {
            let t0 = Instant::now();
            let fresh = TxTracer::new(t.kinds());
            let tracer = std::mem::replace(t, fresh);
            let info = TransactionInfo {
                hash: Some(hash),
                index: Some(i as u64),
                block_hash: Some(block.hash),
                block_number: Some(number),
                base_fee: block.header.base_fee_per_gas,
                block_timestamp: Some(block.header.timestamp),
            };
            let db: &State<BlockDb<'b>> = evm.db();
            let built = tracer
                .finish(tx.inner().gas_limit(), result, db, info)
                .map_err(|e| failed(&format!("tracing: {e}")))?;
            traces.push(built);
            trace_build += t0.elapsed();
        }
        executor.commit_transaction(output);
    }
    let (_, result) = executor
        .finish()
        .map_err(|e| classify(number, format!("changes after the transactions: {e}")))?;
    Ok(Executed {
        receipts: result.receipts,
        txs,
        gas_used: result.gas_used,
        traces,
        trace_build,
    })
}

/// The run of a block whose execution (`done`) started at `start` and left
/// `state`.
fn finish(mut state: State<BlockDb<'_>>, done: Executed, start: Instant) -> BlockRun {
    let time = start.elapsed().saturating_sub(done.trace_build);
    state.merge_transitions(BundleRetention::PlainState);
    let bundle = state.take_bundle();
    let post = bundle
        .state
        .iter()
        .map(|(address, acc)| {
            let info = acc.info.as_ref().map(|i| (i.balance, i.nonce, i.code_hash));
            let storage = acc
                .storage
                .iter()
                .filter(|(_, s)| s.is_changed())
                .map(|(k, s)| (*k, s.present_value))
                .collect();
            let account = PostAccount {
                info,
                storage,
                destroyed: acc.status.was_destroyed(),
            };
            (*address, account)
        })
        .collect();
    let new_code = bundle
        .contracts
        .iter()
        .map(|(h, c)| (*h, c.original_bytes()))
        .collect();
    BlockRun {
        receipts: done.receipts,
        txs: done.txs,
        gas_used: done.gas_used,
        post,
        new_code,
        time,
        traces: done.traces,
        trace_build: done.trace_build,
    }
}

/// A failure the folder's missing data caused is an input error; any other
/// is a failure of execution.
fn classify(number: u64, what: String) -> BlockError {
    // The database's own errors (see `MissingData`) name the file lacking.
    if what.contains("is not in block_hashes.json") || what.contains("in bytecodes.json") {
        BlockError::input(number, what)
    } else {
        BlockError::failed(number, what)
    }
}

/// Where `run` disagrees with `block`'s header: gas used, and from
/// Byzantium on the receipts root and logs bloom (recomputed with alloy's
/// receipt types and alloy-trie). Empty when all hold.
pub fn header_mismatches(block: &RealBlock, run: &BlockRun) -> Vec<String> {
    let h = &block.header;
    let mut out = Vec::new();
    if run.gas_used != h.gas_used {
        out.push(format!(
            "gas used {} differs from the header's {}",
            run.gas_used, h.gas_used
        ));
    }
    if h.number >= BYZANTIUM_BLOCK {
        let root = calculate_receipt_root(&run.receipts);
        if root != h.receipts_root {
            out.push(format!(
                "receipts root {root} differs from the header's {}",
                h.receipts_root
            ));
        }
        let bloom = run
            .receipts
            .iter()
            .fold(Bloom::ZERO, |acc, r| acc | r.bloom());
        if bloom != h.logs_bloom {
            out.push("logs bloom differs from the header's".into());
        }
    }
    out
}
