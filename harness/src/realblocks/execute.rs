//! One block through alloy-evm's Ethereum block executor (system calls,
//! receipt builder, withdrawals and rewards included), on a fresh in-memory
//! state over the block's pre-state, with any EVM factory of the Ethereum
//! types; and the checks against the block's header.

use super::env::BYZANTIUM_BLOCK;
use super::folder::RealBlock;
use super::BlockError;
use alloy_consensus::proofs::calculate_receipt_root;
use alloy_consensus::{ReceiptEnvelope, TxReceipt};
use alloy_evm::block::{BlockExecutor, BlockExecutorFactory};
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthSpec;
use alloy_evm::eth::{EthBlockExecutionCtx, EthBlockExecutorFactory};
use alloy_evm::EvmFactory;
use alloy_primitives::Bloom;
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::result::{ExecutionResult, HaltReason};
use revm::database::states::bundle_state::BundleRetention;
use revm::database::State;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, Log, B256, U256};
use std::borrow::Cow;
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
    /// Execution only: from the EVM's creation to the executor's finish.
    pub time: Duration,
}

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
    let number = block.number();
    let executors =
        EthBlockExecutorFactory::new(AlloyReceiptBuilder::default(), EthSpec::mainnet(), factory);
    let mut state = State::builder()
        .with_database_ref(&block.pre_state)
        .with_bundle_update()
        .build();
    let start = Instant::now();
    let evm = executors
        .evm_factory()
        .create_evm(&mut state, block.env.clone());
    let ctx = EthBlockExecutionCtx {
        parent_hash: block.header.parent_hash,
        parent_beacon_block_root: block.header.parent_beacon_block_root,
        ommers: &[],
        withdrawals: block.withdrawals.as_deref().map(Cow::Borrowed),
        extra_data: block.header.extra_data.clone(),
        tx_count_hint: Some(block.transactions.len()),
        slot_number: None,
    };
    let mut executor = executors.create_executor(evm, ctx);
    executor
        .apply_pre_execution_changes()
        .map_err(|e| classify(number, format!("system calls before the transactions: {e}")))?;
    let mut txs = Vec::with_capacity(block.transactions.len());
    for (i, tx) in block.transactions.iter().enumerate() {
        let mut outcome = None;
        executor
            .execute_transaction_with_result_closure(tx.as_recovered_ref(), |r| {
                outcome = Some(TxOutcome::of(&r.result.result));
            })
            .map_err(|e| {
                classify(
                    number,
                    format!("transaction {i} ({}): {e}", tx.inner().tx_hash()),
                )
            })?;
        txs.extend(outcome);
    }
    let (_, result) = executor
        .finish()
        .map_err(|e| classify(number, format!("changes after the transactions: {e}")))?;
    let time = start.elapsed();
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
    Ok(BlockRun {
        receipts: result.receipts,
        txs,
        gas_used: result.gas_used,
        post,
        new_code,
        time,
    })
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
