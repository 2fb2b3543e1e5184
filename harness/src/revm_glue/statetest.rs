//! Ethereum state tests: GeneralStateTests and execution-spec-tests state
//! fixtures, run through revm's interpreter or through [`NativeEvm`].
//!
//! A vector passes when the post-state root and the hash of the RLP log list
//! match the fixture, or, when the fixture expects an exception, when the
//! transaction is rejected.

use alloy_trie::root::{state_root_unhashed, storage_root_unhashed};
use alloy_trie::TrieAccount;
use evmc_compiler::SpecId;
use evmc_runtime::block::{receipt_fields, Receipt, TxStatus};
use evmc_runtime::{NativeEvm, Registry, TraceStep};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction};
use revm::database::State;
use revm::handler::{ExecuteCommitEvm, MainBuilder, MainContext};
use revm::primitives::{keccak256, Bytes, Log, B256, U256};
use revm_statetest_types::{SpecName, Test, TestSuite, TestUnit};
use std::path::Path;
use std::sync::Arc;

pub use revm::database::CacheState;
pub use revm_statetest_types::TestSuite as Suite;

/// Reads one fixture file.
pub fn load_suite(path: &Path) -> Result<TestSuite, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_suite(&text, path)
}

/// Parses the contents of a fixture file read by the caller (who may bound
/// what it reads); `path` names it in errors.
pub fn parse_suite(text: &[u8], path: &Path) -> Result<TestSuite, String> {
    serde_json::from_slice(text).map_err(|e| format!("{}: not a state test: {e}", path.display()))
}

/// One transaction of a unit, selected by its indexes, under one fork.
pub struct Vector<'a> {
    pub name: &'a str,
    pub unit: &'a TestUnit,
    pub fork: &'a SpecName,
    pub spec: SpecId,
    /// Position in `post[fork]`.
    pub index: usize,
    pub test: &'a Test,
}

impl Vector<'_> {
    /// `name fork[index] d=.. g=.. v=..`, enough to find the vector again.
    pub fn label(&self) -> String {
        let ix = &self.test.indexes;
        format!(
            "{} {:?}[{}] d={} g={} v={}",
            self.name, self.fork, self.index, ix.data, ix.gas, ix.value
        )
    }
}

/// Every vector of a suite; forks revm does not run are returned as skipped
/// labels with the reason.
pub fn vectors(suite: &TestSuite) -> (Vec<Vector<'_>>, Vec<(String, &'static str)>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for (name, unit) in &suite.0 {
        for (fork, tests) in &unit.post {
            let spec = match fork {
                // revm folds these into Petersburg; their vectors are duplicates.
                SpecName::Constantinople | SpecName::ByzantiumToConstantinopleAt5 => None,
                SpecName::Unknown => None,
                f => Some(f.to_spec_id()),
            };
            for (index, test) in tests.iter().enumerate() {
                match spec {
                    Some(spec) => run.push(Vector {
                        name,
                        unit,
                        fork,
                        spec,
                        index,
                        test,
                    }),
                    None => skipped.push((format!("{name} {fork:?}[{index}]"), "fork not run")),
                }
            }
        }
    }
    (run, skipped)
}

/// The contracts a unit's pre-state holds, skipping EIP-7702 delegation
/// designators (never executed as code).
pub fn contract_codes(unit: &TestUnit) -> impl Iterator<Item = &Bytes> {
    let is_delegation = |c: &Bytes| c.len() == 23 && c.starts_with(&[0xef, 0x01, 0x00]);
    unit.pre
        .values()
        .map(|a| &a.code)
        .filter(move |c| !c.is_empty() && !is_delegation(c))
}

/// The pre-state of a unit, built once and cloned per vector.
pub fn pre_state(unit: &TestUnit) -> CacheState {
    unit.state()
}

#[derive(Debug)]
pub struct Outcome {
    /// The execution result, or why the transaction was rejected.
    pub result: Result<ExecutionResult<HaltReason>, String>,
    pub state_root: B256,
    pub logs_root: B256,
    /// Frames that ran compiled code.
    pub native_frames: u64,
}

impl Outcome {
    /// Status, gas, output and logs, for comparing two runs.
    pub fn observable(&self) -> String {
        match &self.result {
            Ok(r) => format!(
                "{}, output 0x{}, {} logs (root {})",
                status(r),
                hex::encode(r.output().map(|b| b.as_ref()).unwrap_or_default()),
                r.logs().len(),
                self.logs_root
            ),
            Err(e) => format!("rejected: {e}"),
        }
    }

    /// The whole result (refunds and every log included) and both roots.
    pub fn exact(&self) -> String {
        match &self.result {
            Ok(r) => format!(
                "{r:?}; state root {}; logs root {}",
                self.state_root, self.logs_root
            ),
            Err(e) => format!("rejected: {e}"),
        }
    }
}

fn status(r: &ExecutionResult<HaltReason>) -> String {
    let gas = r.tx_gas_used();
    match r {
        ExecutionResult::Success { reason, .. } => format!("success {reason:?}, gas used {gas}"),
        ExecutionResult::Revert { .. } => format!("revert, gas used {gas}"),
        ExecutionResult::Halt { reason, .. } => format!("halt {reason:?}, gas used {gas}"),
    }
}

/// Environment of one vector, as revm's own state-test runner sets it up.
pub fn environment(v: &Vector<'_>) -> Result<(CfgEnv, BlockEnv, TxEnv), String> {
    let mut cfg = CfgEnv::new_with_spec(v.spec);
    cfg.chain_id = v
        .unit
        .env
        .current_chain_id
        .unwrap_or(U256::ONE)
        .try_into()
        .unwrap_or(1);
    // EIP-4844 (Cancun) and EIP-7691 (Prague) blob limits per transaction;
    // Osaka's EIP-7594 brings it back to 6.
    let max_blobs = if v.spec.is_enabled_in(SpecId::PRAGUE) && !v.spec.is_enabled_in(SpecId::OSAKA)
    {
        9
    } else {
        6
    };
    cfg.set_max_blobs_per_tx(max_blobs);
    let block = v.unit.block_env(&mut cfg);
    let tx = v.test.tx_env(v.unit).map_err(|e| e.to_string())?;
    Ok((cfg, block, tx))
}

/// Executes one vector on a copy of `pre`. With a registry, contracts with a
/// registered artifact run natively. With `trace`, also returns the opcode
/// trace (see [`super::trace`]).
pub fn execute(
    v: &Vector<'_>,
    pre: &CacheState,
    registry: Option<&Arc<Registry>>,
    trace: bool,
) -> (Outcome, Vec<TraceStep>) {
    match environment(v) {
        Ok((cfg, block, tx)) => transact(pre, cfg, block, tx, registry, trace),
        Err(e) => {
            let outcome = Outcome {
                result: Err(e),
                state_root: state_root(pre),
                logs_root: logs_root(&[]),
                native_frames: 0,
            };
            (outcome, Vec::new())
        }
    }
}

/// Runs `tx` and commits it on a copy of `pre`: through revm's own EVM, or
/// through [`NativeEvm`] when there is a registry or a trace is wanted.
pub fn transact(
    pre: &CacheState,
    cfg: CfgEnv,
    block: BlockEnv,
    tx: TxEnv,
    registry: Option<&Arc<Registry>>,
    trace: bool,
) -> (Outcome, Vec<TraceStep>) {
    let mut state = State::builder()
        .with_cached_prestate(pre.clone())
        .with_bundle_update()
        .build();
    let ctx = Context::mainnet()
        .with_block(block)
        .with_cfg(cfg)
        .with_db(&mut state);
    let registry = match (registry, trace) {
        (Some(r), _) => Some(r.clone()),
        (None, true) => Some(Registry::new()),
        (None, false) => None,
    };
    let (result, native_frames, steps) = match registry {
        Some(registry) => {
            let mut evm = NativeEvm::new(ctx.build_mainnet(), registry);
            if trace {
                evm.start_trace();
            }
            let r = evm.transact_commit(tx);
            (r, evm.native_frames, evm.take_trace())
        }
        None => (ctx.build_mainnet().transact_commit(tx), 0, Vec::new()),
    };
    let result = result.map_err(|e: EVMError<_, InvalidTransaction>| e.to_string());
    let logs = result.as_ref().map(|r| r.logs()).unwrap_or_default();
    let outcome = Outcome {
        logs_root: logs_root(logs),
        result,
        state_root: state_root(&state.cache),
        native_frames,
    };
    (outcome, steps)
}

/// Compares an outcome with what the fixture expects.
pub fn check(v: &Vector<'_>, got: &Outcome) -> Result<(), String> {
    match (&v.test.expect_exception, &got.result) {
        (Some(_), Err(_)) => return Ok(()),
        (Some(expected), Ok(r)) => {
            return Err(format!(
                "expected exception {expected}, but the transaction executed ({})",
                status(r)
            ))
        }
        (None, Err(e)) => return Err(format!("unexpected rejection: {e}")),
        (None, Ok(_)) => {}
    }
    if let (Some(expected), Ok(r)) = (&v.unit.out, &got.result) {
        let output = r.output().cloned().unwrap_or_default();
        if output != *expected {
            return Err(format!("output: expected {expected}, got {output}"));
        }
    }
    if got.logs_root != v.test.logs {
        return Err(format!(
            "logs root: expected {}, got {}",
            v.test.logs, got.logs_root
        ));
    }
    if got.state_root != v.test.hash {
        return Err(format!(
            "state root: expected {}, got {}",
            v.test.hash, got.state_root
        ));
    }
    Ok(())
}

/// Post-state root: every account the cache holds as existing (nonce,
/// balance, root of its non-zero storage, code hash), in a secure trie.
pub fn state_root(cache: &CacheState) -> B256 {
    state_root_unhashed(cache.trie_account().into_iter().map(|(address, acc)| {
        let storage = acc
            .storage
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (B256::from(*k), *v));
        let account = TrieAccount {
            nonce: acc.info.nonce,
            balance: acc.info.balance,
            storage_root: storage_root_unhashed(storage),
            code_hash: acc.info.code_hash,
        };
        (address, account)
    }))
}

/// keccak256 of the RLP list of logs, as in the fixtures' `logs` field.
pub fn logs_root(logs: &[Log]) -> B256 {
    let mut out = Vec::new();
    alloy_rlp::encode_list(logs, &mut out);
    keccak256(out)
}

/// The receipt of a single-transaction run (a state test or a contract
/// fixture); `cumulative_gas_used` is its own gas.
pub fn receipt_of(outcome: &Outcome) -> Receipt {
    let (status, gas_used, logs, output) = match &outcome.result {
        Ok(r) => receipt_fields(r.clone()),
        Err(e) => (TxStatus::Rejected(e.clone()), 0, Vec::new(), Bytes::new()),
    };
    Receipt {
        status,
        gas_used,
        cumulative_gas_used: gas_used,
        logs,
        output,
    }
}
