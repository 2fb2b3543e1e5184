//! Reading a block folder: the block with its transactions (alloy's RPC
//! types; senders are the `from` fields, nothing is recovered), its
//! pre-state and code, and the block hashes it reads.

use super::db::PreStateDb;
use super::env::{block_env, first_spec_allowing, fork_name};
use super::BlockError;
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Header, TxEnvelope, Typed2718 as _};
use alloy_eips::eip4895::Withdrawal;
use alloy_evm::eth::EthBlockExecutionCtx;
use alloy_evm::EvmEnv;
use alloy_rpc_types_eth::{Block, BlockTransactions};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{keccak256, Address, Bytes, B256, KECCAK_EMPTY, U256};
use revm::state::{AccountInfo, Bytecode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One real block, ready to execute.
#[derive(Clone, Debug)]
pub struct RealBlock {
    pub dir: PathBuf,
    pub header: Header,
    /// The block's hash as `block.json` gives it.
    pub hash: B256,
    /// Environment and spec from the header and mainnet's fork schedule.
    pub env: EvmEnv<SpecId>,
    /// The transactions with their senders (`from`).
    pub transactions: Vec<Recovered<TxEnvelope>>,
    pub withdrawals: Option<Vec<Withdrawal>>,
    pub pre_state: PreStateDb,
}

impl RealBlock {
    pub fn number(&self) -> u64 {
        self.header.number
    }

    pub fn spec(&self) -> SpecId {
        self.env.cfg_env.spec
    }

    /// The fork's name (`LONDON`, `CANCUN`, ...).
    pub fn fork(&self) -> &'static str {
        fork_name(self.spec())
    }

    /// Code by hash from the pre-state.
    pub fn code(&self, hash: B256) -> Option<Bytes> {
        self.pre_state
            .contracts
            .get(&hash)
            .map(|c| c.original_bytes())
    }

    /// What alloy-evm's block executor takes of the block besides its
    /// environment. No ommers: a folder has the uncles' hashes, not their
    /// headers, so their rewards are left out.
    pub fn execution_ctx(&self) -> EthBlockExecutionCtx<'_> {
        EthBlockExecutionCtx {
            parent_hash: self.header.parent_hash,
            parent_beacon_block_root: self.header.parent_beacon_block_root,
            ommers: &[],
            withdrawals: self.withdrawals.as_deref().map(Cow::Borrowed),
            extra_data: self.header.extra_data.clone(),
            tx_count_hint: Some(self.transactions.len()),
            slot_number: None,
        }
    }
}

/// `paths` as block folders: each path that holds a `block.json` is one,
/// otherwise its subfolders that do are (sorted by block number when named
/// by it). A path that is neither is an error.
pub fn find_block_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            return Err(format!("{}: not a directory", p.display()));
        }
        if p.join("block.json").exists() {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.join("block.json").exists())
            .collect();
        if dirs.is_empty() {
            return Err(format!(
                "{}: neither a block folder (no block.json) nor a folder of block folders",
                p.display()
            ));
        }
        dirs.sort_by_key(|d| {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
            let number = name.as_deref().and_then(|n| n.parse::<u64>().ok());
            (number.unwrap_or(u64::MAX), name)
        });
        out.extend(dirs);
    }
    Ok(out)
}

/// A JSON number or a (hex `0x` or decimal) string holding one.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Int(u64),
    Text(String),
}

impl Num {
    fn value(&self) -> Result<u64, String> {
        match self {
            Num::Int(n) => Ok(*n),
            Num::Text(s) => match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .map_err(|_| format!("`{s}` is not a number")),
        }
    }
}

#[derive(Deserialize)]
struct PreAccount {
    basic: Basic,
    code_hash: Option<B256>,
    code: Option<Bytes>,
    #[serde(default)]
    storage: HashMap<U256, U256>,
}

#[derive(Deserialize)]
struct Basic {
    balance: U256,
    nonce: Num,
}

#[derive(Deserialize)]
struct CodeEntry {
    bytecode: Bytes,
    original_len: Num,
}

/// Reads `dir` into a [`RealBlock`]. Every problem is an input error naming
/// the block and what is missing or wrong.
pub fn load_block(dir: &Path) -> Result<RealBlock, BlockError> {
    let name = dir.display().to_string();
    let block: Block = read_json(dir, "block.json", &name)?;
    let number = block.header.number;
    let at = |what: String| BlockError::input(number, what);
    let env = block_env(&block.header.inner);
    let spec = env.cfg_env.spec;
    let transactions = match block.transactions {
        BlockTransactions::Full(txs) => txs,
        BlockTransactions::Hashes(h) if h.is_empty() => Vec::new(),
        BlockTransactions::Hashes(_) | BlockTransactions::Uncle => {
            return Err(at(
                "block.json lists transaction hashes only; replay needs full transactions \
                 (eth_getBlockByNumber(n, true))"
                    .into(),
            ))
        }
    };
    let mut txs = Vec::with_capacity(transactions.len());
    for (i, tx) in transactions.into_iter().enumerate() {
        let tx = tx.inner;
        let ty = tx.inner().tx_type();
        let from = first_spec_allowing(ty);
        if !spec.is_enabled_in(from) {
            return Err(at(format!(
                "transaction {i} ({}) is of type {} ({ty}), which {} does not allow (from {} on)",
                tx.inner().tx_hash(),
                tx.inner().ty(),
                fork_name(spec),
                fork_name(from)
            )));
        }
        txs.push(tx);
    }
    let pre_state = load_pre_state(dir, number)?;
    Ok(RealBlock {
        dir: dir.to_path_buf(),
        hash: block.header.hash,
        header: block.header.inner,
        env,
        transactions: txs,
        withdrawals: block.withdrawals.map(|w| w.into_inner()),
        pre_state,
    })
}

fn load_pre_state(dir: &Path, number: u64) -> Result<PreStateDb, BlockError> {
    let at = |what: String| BlockError::input(number, what);
    let accounts: HashMap<Address, PreAccount> = read_json(dir, "pre_state.json", number)?;
    let codes: HashMap<B256, CodeEntry> = read_json(dir, "bytecodes.json", number)?;
    let mut db = PreStateDb::default();
    for (hash, entry) in codes {
        let len = entry
            .original_len
            .value()
            .map_err(|e| at(format!("bytecodes.json: code {hash}: original_len {e}")))?;
        let code = entry.bytecode.get(..len as usize).ok_or_else(|| {
            at(format!(
                "bytecodes.json: code {hash} has {} bytes, fewer than its original_len {len}",
                entry.bytecode.len()
            ))
        })?;
        let actual = keccak256(code);
        if actual != hash {
            return Err(at(format!(
                "bytecodes.json: the code under {hash} hashes to {actual}"
            )));
        }
        let code = Bytecode::new_raw_checked(Bytes::copy_from_slice(code))
            .map_err(|e| at(format!("bytecodes.json: code {hash}: {e:?}")))?;
        db.contracts.insert(hash, code);
    }
    let path = dir.join("block_hashes.json");
    if path.exists() {
        let hashes: HashMap<String, B256> = read_json(dir, "block_hashes.json", number)?;
        for (n, h) in hashes {
            let n = Num::Text(n)
                .value()
                .map_err(|e| at(format!("block_hashes.json: key {e}")))?;
            db.block_hashes.insert(n, h);
        }
    }
    for (address, acc) in accounts {
        let nonce = acc
            .basic
            .nonce
            .value()
            .map_err(|e| at(format!("pre_state.json: account {address}: nonce {e}")))?;
        let mut info = AccountInfo {
            balance: acc.basic.balance,
            nonce,
            ..Default::default()
        };
        let code = match (acc.code.filter(|c| !c.is_empty()), acc.code_hash) {
            (Some(code), _) => Some(
                Bytecode::new_raw_checked(code)
                    .map_err(|e| at(format!("pre_state.json: account {address}: code {e:?}")))?,
            ),
            (None, Some(hash)) if hash != KECCAK_EMPTY && hash != B256::ZERO => {
                Some(db.contracts.get(&hash).cloned().ok_or_else(|| {
                    at(format!(
                        "pre_state.json: account {address} has code hash {hash}, which bytecodes.json lacks"
                    ))
                })?)
            }
            _ => None,
        };
        if let Some(code) = code {
            info = info.with_code(code);
            db.contracts
                .entry(info.code_hash)
                .or_insert_with(|| info.code.clone().unwrap_or_default());
        }
        db.accounts.insert(address, info);
        if !acc.storage.is_empty() {
            db.storage
                .insert(address, acc.storage.into_iter().collect());
        }
    }
    Ok(db)
}

/// Parses `dir/file`; a missing, unreadable or malformed (e.g. truncated)
/// file is an input error of `block`.
fn read_json<T: DeserializeOwned>(
    dir: &Path,
    file: &str,
    block: impl std::fmt::Display,
) -> Result<T, BlockError> {
    let path = dir.join(file);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BlockError::input(
                &block,
                format!("{file} is missing from {}", dir.display()),
            ))
        }
        Err(e) => return Err(BlockError::input(&block, format!("{file}: {e}"))),
    };
    serde_json::from_slice(&text).map_err(|e| {
        let why = if e.is_eof() {
            "truncated"
        } else {
            "not a valid file of this kind"
        };
        BlockError::input(&block, format!("{file} is {why}: {e}"))
    })
}
