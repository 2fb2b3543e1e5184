//! One call into one contract, as a whole transaction on an in-memory state.
//! Used by `evmc-native run` and quick checks.

use evmc_compiler::SpecId;
use evmc_runtime::{LoadedArtifact, NativeEvm, Registry};
use revm::bytecode::Bytecode;
use revm::context::{Context, TxEnv};
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{ExecuteEvm, MainBuilder, MainnetContext};
use revm::primitives::{address, Address, Bytes, TxKind, U256};
use revm::state::AccountInfo;
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

#[derive(Clone, Debug)]
pub struct CallOutcome {
    /// `Success(Return)`, `Revert`, `Halt(OutOfGas(..))`, ...
    pub status: String,
    pub gas_used: u64,
    pub output: Vec<u8>,
    pub logs: Vec<CallLog>,
    pub native_frames: u64,
    pub elapsed: Duration,
}

impl CallOutcome {
    /// Everything but timing and frame counts, for comparisons.
    pub fn observable(&self) -> (&str, u64, &[u8], &[CallLog]) {
        (&self.status, self.gas_used, &self.output, &self.logs)
    }
}

/// Runs `setup` once, with `artifact` registered if given.
pub fn run_call(
    setup: &CallSetup,
    artifact: Option<Arc<LoadedArtifact>>,
) -> Result<CallOutcome, String> {
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
            .map_err(|e| e.to_string())?;
    }
    let mut evm = NativeEvm::new(ctx.build_mainnet(), registry);
    let tx = TxEnv::builder()
        .caller(CALL_SENDER)
        .kind(TxKind::Call(CALL_TARGET))
        .data(Bytes::copy_from_slice(&setup.input))
        .gas_limit(setup.gas_limit)
        .gas_price(0)
        .build()
        .map_err(|e| format!("bad transaction: {e:?}"))?;
    let start = Instant::now();
    let r = evm
        .transact(tx)
        .map_err(|e| format!("transaction rejected: {e:?}"))?;
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
        native_frames: evm.native_frames,
        elapsed,
    })
}
