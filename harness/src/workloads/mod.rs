//! Deterministic transaction streams on real mainnet contracts.
//!
//! Each generator installs its contracts and the storage they need (balances,
//! proxy slots, reserves) into a genesis, then produces transactions from a
//! seeded RNG. Contract code comes from `benchdata/contracts`-style fixtures;
//! the project bundles the ones it needs in `data/contracts/`, built into
//! the binary ([`bundled`]); a directory of such files can replace them.

pub mod bundled;
pub mod compute;
pub mod mixed;
pub mod uniswap;
pub mod usdc;
pub mod weth;

use crate::fixture::parse_fixtures;
use evmc_compiler::SpecId;
use evmc_runtime::block::{keccak256, Address, BlockHeader, Bytes, Genesis, TxRequest, U256};
pub use evmc_runtime::sequencer::{Block, Contract, Workload};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

pub type Rand = ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    Weth,
    Usdc,
    Uniswap,
    Mixed,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Weth => "weth",
            Self::Usdc => "usdc",
            Self::Uniswap => "uniswap",
            Self::Mixed => "mixed",
        }
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "weth" => Ok(Self::Weth),
            "usdc" => Ok(Self::Usdc),
            "uniswap" => Ok(Self::Uniswap),
            "mixed" => Ok(Self::Mixed),
            _ => Err(format!(
                "unknown workload `{s}` (weth, usdc, uniswap, mixed)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub txs: usize,
    pub block_size: usize,
    pub seed: u64,
    /// Directory of contract fixtures (`weth.json`, …); `None`: the
    /// bundled ones.
    pub contracts_dir: Option<PathBuf>,
    /// Accounts that send transactions, per generator.
    pub accounts: usize,
}

impl WorkloadConfig {
    pub fn new(txs: usize, block_size: usize, seed: u64) -> Self {
        Self {
            txs,
            block_size,
            seed,
            contracts_dir: None,
            accounts: 1000,
        }
    }
}

/// Reads the contract file `file`: from `dir` when given, else the bundled
/// copy. Returns its contents and the name to use in errors.
fn contract_file(dir: Option<&Path>, file: &str) -> Result<(Vec<u8>, PathBuf), String> {
    match dir {
        Some(dir) => {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((bytes, path))
        }
        None => bundled::file(file)
            .map(|b| (b.to_vec(), Path::new("bundled").join(file)))
            .ok_or_else(|| format!("no bundled contract file `{file}`")),
    }
}

/// A stream of transactions over contracts it installed.
pub trait Generator {
    fn next_tx(&mut self, rng: &mut Rand) -> TxRequest;
}

/// Spec the workloads run under.
pub const SPEC: SpecId = SpecId::OSAKA;
const BLOCK_GAS_LIMIT: u64 = 1 << 40;

/// Builds the genesis and blocks of a workload.
pub fn build(kind: WorkloadKind, cfg: &WorkloadConfig) -> Result<Workload, String> {
    if cfg.block_size == 0 {
        return Err("block size must be at least 1".into());
    }
    let mut genesis = Genesis::new();
    let mut contracts = Vec::new();
    let mut gen: Box<dyn Generator> = match kind {
        WorkloadKind::Weth => Box::new(weth::WethGen::install(&mut genesis, &mut contracts, cfg)?),
        WorkloadKind::Usdc => Box::new(usdc::UsdcGen::install(&mut genesis, &mut contracts, cfg)?),
        WorkloadKind::Uniswap => Box::new(uniswap::UniswapGen::install(
            &mut genesis,
            &mut contracts,
            cfg,
        )?),
        WorkloadKind::Mixed => {
            Box::new(mixed::MixedGen::install(&mut genesis, &mut contracts, cfg)?)
        }
    };
    let mut rng = Rand::seed_from_u64(cfg.seed);
    let mut blocks = Vec::with_capacity(cfg.txs.div_ceil(cfg.block_size));
    let mut left = cfg.txs;
    while left > 0 {
        let n = left.min(cfg.block_size);
        let number = blocks.len() as u64 + 1;
        blocks.push(Block {
            header: BlockHeader {
                number,
                timestamp: 1_700_000_000 + 12 * number,
                gas_limit: BLOCK_GAS_LIMIT,
                coinbase: Address::repeat_byte(0xfe),
            },
            txs: (0..n).map(|_| gen.next_tx(&mut rng)).collect(),
        });
        left -= n;
    }
    Ok(Workload {
        name: kind.name().to_string(),
        spec: SPEC,
        genesis,
        contracts,
        blocks,
    })
}

/// The code of the fixture's single contract (`file` in `dir`, or bundled).
pub fn fixture_code(dir: Option<&Path>, file: &str) -> Result<Bytes, String> {
    let (bytes, path) = contract_file(dir, file)?;
    let fixtures = parse_fixtures(&bytes, &path)?;
    let codes: Vec<&Bytes> = fixtures.iter().flat_map(|f| f.codes()).collect();
    match codes[..] {
        [code] => Ok(code.clone()),
        _ => Err(format!(
            "{}: expected one contract, found {}",
            path.display(),
            codes.len()
        )),
    }
}

/// Runtime code from a file of hex (`0x` optional), in `dir` or bundled.
pub fn hex_code(dir: Option<&Path>, file: &str) -> Result<Bytes, String> {
    let (bytes, path) = contract_file(dir, file)?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = text.trim();
    hex::decode(t.strip_prefix("0x").unwrap_or(t))
        .map(Bytes::from)
        .map_err(|e| format!("{}: not hex bytecode: {e}", path.display()))
}

/// Places `code` at `address` unless something is there already.
pub fn install_code(
    genesis: &mut Genesis,
    contracts: &mut Vec<Contract>,
    name: &'static str,
    address: Address,
    code: Bytes,
) {
    let acc = genesis.entry(address).or_default();
    if acc.code.is_empty() {
        acc.code = code.clone();
        acc.nonce = 1;
        contracts.push(Contract {
            name,
            address,
            code,
        });
    }
}

/// Storage slot of `mapping[key]` declared at `slot` (Solidity layout).
pub fn mapping_slot(key: Address, slot: U256) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(key.as_slice());
    buf[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

/// Storage slot of `mapping[a][b]` declared at `slot`.
pub fn mapping2_slot(a: Address, b: Address, slot: U256) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(b.as_slice());
    buf[32..].copy_from_slice(&mapping_slot(a, slot).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

/// ABI call data: selector, then each argument as one word.
pub fn calldata(selector: [u8; 4], args: &[U256]) -> Bytes {
    let mut d = Vec::with_capacity(4 + 32 * args.len());
    d.extend_from_slice(&selector);
    for a in args {
        d.extend_from_slice(&a.to_be_bytes::<32>());
    }
    d.into()
}

pub fn word(a: Address) -> U256 {
    U256::from_be_slice(a.as_slice())
}

/// Senders of one generator: distinct addresses tagged by `tag`, with the
/// nonces the generator has used.
pub struct Users {
    pub addresses: Vec<Address>,
    nonces: Vec<u64>,
}

impl Users {
    pub fn new(tag: u8, n: usize, genesis: &mut Genesis, eth: U256) -> Self {
        let addresses: Vec<Address> = (0..n.max(2))
            .map(|i| {
                let mut a = [0u8; 20];
                a[0] = tag;
                a[12..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                Address::from(a)
            })
            .collect();
        for a in &addresses {
            genesis.entry(*a).or_default().balance += eth;
        }
        let nonces = vec![0; addresses.len()];
        Self { addresses, nonces }
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// A transaction from user `i`, taking its next nonce.
    pub fn tx(&mut self, i: usize, to: Address, value: U256, data: Bytes, gas: u64) -> TxRequest {
        let nonce = self.nonces[i];
        self.nonces[i] += 1;
        TxRequest {
            caller: self.addresses[i],
            to: Some(to),
            value,
            data,
            gas_limit: gas,
            nonce,
        }
    }
}

/// Two distinct indexes below `n` (n ≥ 2).
pub fn two_distinct(rng: &mut Rand, n: usize) -> (usize, usize) {
    use rand::Rng;
    let a = rng.random_range(0..n);
    let b = (a + rng.random_range(1..n)) % n;
    (a, b)
}

pub const ETHER: u128 = 1_000_000_000_000_000_000;
