//! Blocks of transactions against an in-memory state: each transaction is
//! executed through [`NativeEvm`] and committed, leaving a receipt, and each
//! block leaves the diff of the state it changed.
//!
//! Interpreter and native execution differ only in the registry given to
//! the executor, so their outputs can be compared field by field.

use super::evm::NativeEvm;
use super::keccak_memo::MemoScope;
use crate::hot::HotCounters;
use crate::registry::Registry;
use evmc_compiler::SpecId;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::result::{ExecutionResult, HaltReason};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext, MainnetContext};
use revm::primitives::{AddressMap, StorageKeyMap, TxKind};
use revm::state::{AccountInfo, Bytecode, EvmState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use revm::primitives::{address, b256, keccak256, Address, Bytes, Log, B256, U256};

/// An account of the initial state.
#[derive(Clone, Debug, Default)]
pub struct GenesisAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Runtime bytecode (empty for none).
    pub code: Bytes,
    /// Storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// The initial state, by address.
pub type Genesis = BTreeMap<Address, GenesisAccount>;

/// A signed-and-validated transaction as a sequencer receives it.
#[derive(Clone, Debug)]
pub struct TxRequest {
    /// Sender.
    pub caller: Address,
    /// `None` creates a contract.
    pub to: Option<Address>,
    /// Wei transferred.
    pub value: U256,
    /// Calldata (or init code when creating).
    pub data: Bytes,
    /// Gas limit.
    pub gas_limit: u64,
    /// Nonce.
    pub nonce: u64,
}

/// What a block's execution needs of its header.
#[derive(Clone, Copy, Debug)]
pub struct BlockHeader {
    /// Block number.
    pub number: u64,
    /// Timestamp, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Beneficiary of the fees.
    pub coinbase: Address,
}

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Executed and succeeded.
    Success,
    /// Executed and reverted.
    Revert,
    /// Executed and halted exceptionally (the reason).
    Halt(String),
    /// Not executable (nonce, balance, gas limit); no state change.
    Rejected(String),
}

/// What one transaction produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// How it ended.
    pub status: TxStatus,
    /// Gas used.
    pub gas_used: u64,
    /// Gas used in the block up to and including it.
    pub cumulative_gas_used: u64,
    /// Logs emitted.
    pub logs: Vec<Log>,
    /// Return or revert data.
    pub output: Bytes,
}

/// An account's values after a block, for every account the block touched.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccountDiff {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code hash.
    pub code_hash: B256,
    /// Slots written during the block, with their value at its end.
    pub storage: StorageKeyMap<U256>,
    /// Self-destructed (storage wiped) at some point of the block.
    pub destroyed: bool,
}

/// Every account a block touched, by address.
///
/// Hash maps, not ordered ones: the diff is merged after every
/// transaction, inside the time a block takes, and ordered maps made that
/// merge 7% of a WETH transfer's instructions (counted with callgrind,
/// `sequencer --mode interp --workload weth`). What needs an order (the
/// digest, [`crate::sequencer::verify`]) sorts the keys itself.
pub type StateDiff = AddressMap<AccountDiff>;

/// What one block produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockOutput {
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// The state diff.
    pub diff: StateDiff,
    /// Gas used.
    pub gas_used: u64,
}

impl BlockOutput {
    /// keccak256 over receipts (status, gas, logs, output) and the diff, in
    /// a fixed order: equal digests mean equal blocks.
    pub fn digest(&self) -> B256 {
        let mut buf = Vec::with_capacity(256 * self.receipts.len());
        for r in &self.receipts {
            buf.extend_from_slice(format!("{:?}", r.status).as_bytes());
            buf.extend_from_slice(&r.gas_used.to_be_bytes());
            buf.extend_from_slice(&r.output);
            for log in &r.logs {
                buf.extend_from_slice(log.address.as_slice());
                for t in log.topics() {
                    buf.extend_from_slice(t.as_slice());
                }
                buf.extend_from_slice(&log.data.data);
            }
        }
        for (address, acc) in sorted(&self.diff) {
            buf.extend_from_slice(address.as_slice());
            buf.extend_from_slice(&acc.balance.to_be_bytes::<32>());
            buf.extend_from_slice(&acc.nonce.to_be_bytes());
            buf.extend_from_slice(acc.code_hash.as_slice());
            buf.push(acc.destroyed as u8);
            for (k, v) in sorted(&acc.storage) {
                buf.extend_from_slice(&k.to_be_bytes::<32>());
                buf.extend_from_slice(&v.to_be_bytes::<32>());
            }
        }
        keccak256(&buf)
    }

    /// Logs of every transaction.
    pub fn logs(&self) -> usize {
        self.receipts.iter().map(|r| r.logs.len()).sum()
    }
}

type Db = CacheDB<EmptyDB>;

/// Executes blocks on its own copy of a state.
pub struct BlockExecutor {
    evm: NativeEvm<MainnetContext<Db>>,
    chain_id: u64,
}

impl BlockExecutor {
    /// An executor over `genesis`. Contracts registered in `registry` run
    /// natively (an empty registry means interpreter only); with `hot`, every
    /// frame's gas is counted per code hash.
    pub fn new(
        genesis: &Genesis,
        spec: SpecId,
        registry: Arc<Registry>,
        hot: Option<Arc<HotCounters>>,
    ) -> Self {
        let mut db = Db::default();
        for (address, acc) in genesis {
            let mut info = AccountInfo {
                balance: acc.balance,
                nonce: acc.nonce,
                ..Default::default()
            };
            if !acc.code.is_empty() {
                info = info.with_code(Bytecode::new_raw(acc.code.clone()));
            }
            db.insert_account_info(*address, info);
            for (k, v) in &acc.storage {
                // Cannot fail: the account was inserted above.
                let _ = db.insert_account_storage(*address, *k, *v);
            }
        }
        let mut cfg = CfgEnv::new_with_spec(spec);
        // The chain sets its own per-transaction limit: compute-heavy
        // benchmark calls need more than Osaka's 2^24 gas (EIP-7825).
        cfg.tx_gas_limit_cap = Some(u64::MAX);
        let chain_id = cfg.chain_id;
        let ctx = Context::mainnet().with_cfg(cfg).with_db(db);
        // One EVM runs every block: its KECCAK256 memo keeps the slots of
        // the chain's hot accounts from block to block (`MemoScope::Evm`).
        let mut evm = NativeEvm::new(ctx.build_mainnet(), registry).with_memo_scope(MemoScope::Evm);
        if let Some(counters) = hot {
            evm = evm.with_hot_counters(counters);
        }
        Self { evm, chain_id }
    }

    /// Runs `txs` in order on top of the current state, committing each.
    pub fn execute_block(&mut self, header: &BlockHeader, txs: &[TxRequest]) -> BlockOutput {
        self.begin_block(header);
        let mut out = BlockOutput {
            receipts: Vec::with_capacity(txs.len()),
            ..Default::default()
        };
        for tx in txs {
            self.execute_tx(tx, &mut out);
        }
        out
    }

    /// Sets the environment of the block that the next transactions belong to.
    pub fn begin_block(&mut self, header: &BlockHeader) {
        self.evm.set_block(BlockEnv {
            number: U256::from(header.number),
            beneficiary: header.coinbase,
            timestamp: U256::from(header.timestamp),
            gas_limit: header.gas_limit,
            basefee: 0,
            difficulty: U256::ZERO,
            prevrandao: Some(B256::ZERO),
            ..Default::default()
        });
    }

    /// Executes and commits one transaction, appending its receipt and its
    /// changes to `out`.
    pub fn execute_tx(&mut self, tx: &TxRequest, out: &mut BlockOutput) {
        let env = TxEnv {
            caller: tx.caller,
            gas_limit: tx.gas_limit,
            gas_price: 0,
            kind: tx.to.map_or(TxKind::Create, TxKind::Call),
            data: tx.data.clone(),
            value: tx.value,
            nonce: tx.nonce,
            chain_id: Some(self.chain_id),
            ..Default::default()
        };
        let (status, gas_used, logs, output) = match self.evm.transact(env) {
            Ok(r) => {
                merge_diff(&mut out.diff, &r.state);
                self.evm.commit(r.state);
                receipt_fields(r.result)
            }
            Err(e) => (
                TxStatus::Rejected(e.to_string()),
                0,
                Vec::new(),
                Bytes::new(),
            ),
        };
        out.gas_used += gas_used;
        out.receipts.push(Receipt {
            status,
            gas_used,
            cumulative_gas_used: out.gas_used,
            logs,
            output,
        });
    }

    /// The code stored under `hash`, if any account of the state has it.
    pub fn code_by_hash(&self, hash: B256) -> Option<Bytes> {
        self.evm
            .inner
            .ctx
            .journaled_state
            .database
            .cache
            .contracts
            .get(&hash)
            .map(|c| c.original_bytes())
    }

    /// Frames run natively so far.
    pub fn native_frames(&self) -> u64 {
        self.evm.native_frames
    }
}

/// Status, gas, logs and output of an execution result, as a receipt holds them.
pub fn receipt_fields(r: ExecutionResult<HaltReason>) -> (TxStatus, u64, Vec<Log>, Bytes) {
    let gas = r.tx_gas_used();
    match r {
        ExecutionResult::Success { logs, output, .. } => {
            (TxStatus::Success, gas, logs, output.into_data())
        }
        ExecutionResult::Revert { logs, output, .. } => (TxStatus::Revert, gas, logs, output),
        ExecutionResult::Halt { reason, logs, .. } => (
            TxStatus::Halt(format!("{reason:?}")),
            gas,
            logs,
            Bytes::new(),
        ),
    }
}

/// The entries of `map` in key order.
fn sorted<'a, K: Ord + 'a, V: 'a>(
    map: impl IntoIterator<Item = (&'a K, &'a V)>,
) -> Vec<(&'a K, &'a V)> {
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}

fn merge_diff(diff: &mut StateDiff, state: &EvmState) {
    for (address, acc) in state {
        if !acc.is_touched() {
            continue;
        }
        let d = diff.entry(*address).or_default();
        if acc.is_selfdestructed() {
            *d = AccountDiff {
                destroyed: true,
                ..Default::default()
            };
            continue;
        }
        if acc.is_created() {
            d.storage.clear();
        }
        d.balance = acc.info.balance;
        d.nonce = acc.info.nonce;
        d.code_hash = acc.info.code_hash;
        for (k, slot) in acc.changed_storage_slots() {
            d.storage.insert(*k, slot.present_value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diff of `n` accounts with `n` slots each, inserted in the order
    /// `order` gives.
    fn output(n: u8, order: impl Fn(u8) -> u8) -> BlockOutput {
        let mut out = BlockOutput::default();
        for i in 0..n {
            let a = order(i);
            let acc = out.diff.entry(Address::repeat_byte(a)).or_default();
            acc.balance = U256::from(a);
            for j in 0..n {
                let k = order(j);
                acc.storage
                    .insert(U256::from(k), U256::from(a as u64 * 1000 + k as u64));
            }
        }
        out
    }

    #[test]
    fn the_digest_does_not_depend_on_the_order_the_diff_was_built_in() {
        let forward = output(40, |i| i);
        let backward = output(40, |i| 39 - i);
        assert_eq!(forward.digest(), backward.digest());
        // Addresses, then each account's slots, in ascending order: the
        // value the ordered maps of earlier versions gave.
        assert_eq!(
            forward.digest(),
            b256!("b7847b127d63502841e2357b096423b3b57c3454160d7ebd50f8e111fd66de61")
        );
        let mut changed = backward.clone();
        changed
            .diff
            .get_mut(&Address::repeat_byte(3))
            .unwrap()
            .storage
            .insert(U256::from(5), U256::ZERO);
        assert_ne!(forward.digest(), changed.digest());
    }
}
