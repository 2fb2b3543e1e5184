//! One call into one contract, as a whole transaction on an in-memory state.
//! Used by `evmc-native run` and quick checks.

use evmc_compiler::SpecId;
use evmc_runtime::{LoadedArtifact, NativeEvm, Registry};
use revm::bytecode::Bytecode;
use revm::context::{Context, TxEnv};
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{ExecuteEvm, MainBuilder, MainnetContext};
use revm::primitives::{address, Address, Bytes, TxKind, B256, U256};
use revm::state::{AccountInfo, EvmState};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CALL_TARGET: Address = address!("0xcccccccccccccccccccccccccccccccccccccccc");
pub const CALL_SENDER: Address = address!("0x1111111111111111111111111111111111111111");

#[derive(Clone, Debug)]
pub struct CallSetup {
    pub code: Vec<u8>,
    pub input: Vec<u8>,
    pub gas_limit: u64,
    pub spec: SpecId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLog {
    pub address: String,
    pub topics: Vec<String>,
    pub data: String,
}

/// One account the transaction touched, as committing it would leave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    pub address: Address,
    pub balance: U256,
    pub nonce: u64,
    pub code_hash: B256,
    /// Destroyed by SELFDESTRUCT in this transaction.
    pub destroyed: bool,
    /// Slots the transaction left with a new value: (slot, value), by slot.
    pub storage: Vec<(U256, U256)>,
}

/// Why [`run_call`] produced no outcome.
#[derive(Clone, Debug)]
pub enum CallError {
    /// The transaction is invalid as given (e.g. a gas limit below its
    /// intrinsic cost): revm refused it before execution.
    Rejected(String),
    /// The artifact could not be registered.
    Setup(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rejected(e) => write!(f, "transaction rejected: {e}"),
            CallError::Setup(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for CallError {}

#[derive(Clone, Debug)]
pub struct CallOutcome {
    /// `Success(Return)`, `Revert`, `Halt(OutOfGas(..))`, ...
    pub status: String,
    pub gas_used: u64,
    pub output: Vec<u8>,
    pub logs: Vec<CallLog>,
    /// The accounts the transaction touched, by address: the post-state
    /// diff (balances, nonces, code, storage).
    pub state: Vec<AccountState>,
    pub native_frames: u64,
    pub elapsed: Duration,
}

impl CallOutcome {
    /// Everything but timing and frame counts, for comparisons.
    pub fn observable(&self) -> (&str, u64, &[u8], &[CallLog], &[AccountState]) {
        (
            &self.status,
            self.gas_used,
            &self.output,
            &self.logs,
            &self.state,
        )
    }
}

/// The touched accounts of `state` with the slots whose value changed,
/// in address and slot order.
fn post_state(state: &EvmState) -> Vec<AccountState> {
    let mut out: Vec<AccountState> = state
        .iter()
        .filter(|(_, a)| a.is_touched())
        .map(|(address, a)| {
            let mut storage: Vec<(U256, U256)> = a
                .storage
                .iter()
                .filter(|(_, s)| s.is_changed())
                .map(|(k, s)| (*k, s.present_value))
                .collect();
            storage.sort();
            AccountState {
                address: *address,
                balance: a.info.balance,
                nonce: a.info.nonce,
                code_hash: a.info.code_hash,
                destroyed: a.is_selfdestructed(),
                storage,
            }
        })
        .collect();
    out.sort_by_key(|a| a.address);
    out
}

/// Runs `setup` once, with `artifact` registered if given.
pub fn run_call(
    setup: &CallSetup,
    artifact: Option<Arc<LoadedArtifact>>,
) -> Result<CallOutcome, CallError> {
    let mut db = CacheDB::<EmptyDB>::default();
    db.insert_account_info(
        CALL_SENDER,
        AccountInfo {
            balance: U256::from(10).pow(U256::from(30)),
            ..Default::default()
        },
    );
    let bc = Bytecode::new_raw(Bytes::copy_from_slice(&setup.code));
    db.insert_account_info(
        CALL_TARGET,
        AccountInfo {
            code_hash: bc.hash_slow(),
            code: Some(bc),
            nonce: 1,
            ..Default::default()
        },
    );
    let mut ctx: MainnetContext<CacheDB<EmptyDB>> = Context::new(db, setup.spec);
    // Benchmarks need more than Osaka's per-transaction cap (EIP-7825).
    ctx.modify_cfg(|c| c.tx_gas_limit_cap = Some(u64::MAX));
    ctx.modify_block(|b| b.gas_limit = u64::MAX);
    let registry = Registry::new();
    if let Some(a) = artifact {
        registry
            .register(setup.spec, a)
            .map_err(|e| CallError::Setup(e.to_string()))?;
    }
    let mut evm = NativeEvm::new(ctx.build_mainnet(), registry);
    let tx = TxEnv::builder()
        .caller(CALL_SENDER)
        .kind(TxKind::Call(CALL_TARGET))
        .data(Bytes::copy_from_slice(&setup.input))
        .gas_limit(setup.gas_limit)
        .gas_price(0)
        .build()
        .map_err(|e| CallError::Rejected(format!("{e:?}")))?;
    let start = Instant::now();
    let r = evm
        .transact(tx)
        .map_err(|e| CallError::Rejected(format!("{e:?}")))?;
    let elapsed = start.elapsed();
    let (status, output) = match &r.result {
        ExecutionResult::Success { reason, output, .. } => (
            format!("Success({reason:?})"),
            match output {
                Output::Call(b) => b.to_vec(),
                Output::Create(b, _) => b.to_vec(),
            },
        ),
        ExecutionResult::Revert { output, .. } => ("Revert".to_string(), output.to_vec()),
        ExecutionResult::Halt { reason, .. } => (format!("Halt({reason:?})"), Vec::new()),
    };
    let logs = r
        .result
        .logs()
        .iter()
        .map(|l| CallLog {
            address: l.address.to_string(),
            topics: l.topics().iter().map(|t| t.to_string()).collect(),
            data: hex::encode(&l.data.data),
        })
        .collect();
    Ok(CallOutcome {
        status,
        gas_used: r.result.tx_gas_used(),
        output,
        logs,
        state: post_state(&r.state),
        native_frames: evm.native_frames,
        elapsed,
    })
}
