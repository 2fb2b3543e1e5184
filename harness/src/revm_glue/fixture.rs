//! Single-transaction fixtures of real contracts (`benchdata/contracts`):
//! a pre-state, an environment and one transaction, without expected
//! results. They are judged against the interpreter.

use super::statetest::{transact, Outcome};
use evmc_compiler::SpecId;
use evmc_runtime::Registry;
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::database::CacheState;
use revm::primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use revm::state::Bytecode;
pub use revm_statetest_types::AccountInfo;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureEnv {
    pub current_coinbase: Address,
    pub current_gas_limit: U256,
    pub current_number: U256,
    pub current_timestamp: U256,
    #[serde(default)]
    pub current_base_fee: Option<U256>,
    #[serde(default)]
    pub current_difficulty: Option<U256>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureTx {
    pub data: Bytes,
    pub gas_limit: U256,
    #[serde(default)]
    pub gas_price: U256,
    #[serde(default)]
    pub nonce: U256,
    pub sender: Address,
    #[serde(default)]
    pub to: Option<Address>,
    #[serde(default)]
    pub value: U256,
}

#[derive(Debug, Deserialize)]
pub struct Fixture {
    #[serde(skip)]
    pub name: String,
    pub env: FixtureEnv,
    pub pre: BTreeMap<Address, AccountInfo>,
    pub transaction: Vec<FixtureTx>,
}

impl Fixture {
    /// Contracts of the pre-state (non-empty code).
    pub fn codes(&self) -> impl Iterator<Item = &Bytes> {
        self.pre.values().map(|a| &a.code).filter(|c| !c.is_empty())
    }

    pub fn pre_state(&self) -> CacheState {
        let mut cache = CacheState::new();
        for (address, acc) in &self.pre {
            let code_hash = keccak256(&acc.code);
            if !acc.code.is_empty() {
                cache
                    .contracts
                    .insert(code_hash, Bytecode::new_raw(acc.code.clone()));
            }
            let info = revm::state::AccountInfo {
                balance: acc.balance,
                nonce: acc.nonce,
                code_hash,
                code: None,
                ..Default::default()
            };
            cache.insert_account_with_storage(*address, info, acc.storage.clone());
        }
        cache
    }
}

/// Reads a fixture file: `{name: {env, pre, transaction: [tx]}}`.
pub fn load_fixtures(path: &Path) -> Result<Vec<Fixture>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_fixtures(&text, path)
}

/// Parses the contents of a fixture file read by the caller (who may bound
/// what it reads); `path` names it in errors.
pub fn parse_fixtures(text: &[u8], path: &Path) -> Result<Vec<Fixture>, String> {
    let map: BTreeMap<String, Fixture> = serde_json::from_slice(text)
        .map_err(|e| format!("{}: not a contract fixture: {e}", path.display()))?;
    let fixtures: Vec<Fixture> = map
        .into_iter()
        .map(|(name, mut f)| {
            f.name = name;
            f
        })
        .collect();
    for f in &fixtures {
        if f.transaction.len() != 1 {
            return Err(format!(
                "{}: fixture `{}` has {} transactions, expected 1",
                path.display(),
                f.name,
                f.transaction.len()
            ));
        }
    }
    Ok(fixtures)
}

/// Runs the fixture's transaction under `spec` on a copy of `pre`, natively
/// where `registry` has artifacts.
pub fn run_fixture(
    f: &Fixture,
    pre: &CacheState,
    spec: SpecId,
    registry: Option<&Arc<Registry>>,
) -> Outcome {
    let (cfg, block, tx) = environment(f, spec);
    transact(pre, cfg, block, tx, registry, false).0
}

/// Configuration, block and transaction of a fixture under `spec`. The
/// per-transaction gas cap of Osaka is lifted: these transactions are
/// benchmarks, some far above it.
pub fn environment(f: &Fixture, spec: SpecId) -> (CfgEnv, BlockEnv, TxEnv) {
    let tx = &f.transaction[0];
    let mut cfg = CfgEnv::new_with_spec(spec);
    cfg.tx_gas_limit_cap = Some(u64::MAX);
    let block = BlockEnv {
        number: f.env.current_number,
        beneficiary: f.env.current_coinbase,
        timestamp: f.env.current_timestamp,
        gas_limit: f.env.current_gas_limit.saturating_to(),
        basefee: f.env.current_base_fee.unwrap_or_default().saturating_to(),
        difficulty: f.env.current_difficulty.unwrap_or_default(),
        prevrandao: Some(B256::ZERO),
        ..Default::default()
    };
    let tx_env = TxEnv {
        caller: tx.sender,
        gas_limit: tx.gas_limit.saturating_to(),
        gas_price: tx.gas_price.saturating_to(),
        kind: tx.to.map_or(TxKind::Create, TxKind::Call),
        data: tx.data.clone(),
        value: tx.value,
        nonce: tx.nonce.saturating_to(),
        chain_id: Some(cfg.chain_id),
        ..Default::default()
    };
    (cfg, block, tx_env)
}
