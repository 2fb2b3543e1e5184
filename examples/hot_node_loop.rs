//! A node's loop with hot compilation: every contract starts interpreted;
//! once a contract's own frames have spent `--hot-gas` worth of gas it is
//! compiled on a background thread, and from the next transaction on it
//! runs natively. The loop executes the same call over and over and prints,
//! from the registry's metrics, how many frames ran natively and how many
//! interpreted, until the contract has become native.
//!
//! ```sh
//! cargo run --release -p evmc-examples --example hot_node_loop
//! ```

use alloy_evm::{Evm, EvmEnv, EvmFactory};
use evmc_runtime::hot::Thresholds;
use evmc_runtime::{ArtifactCache, HotOptions, NativeEvmFactory, Registry};
use revm::bytecode::Bytecode;
use revm::context::{CfgEnv, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{address, Address, Bytes, TxKind, U256};
use revm::state::AccountInfo;
use std::error::Error;
use std::time::{Duration, Instant};

/// Sums 1..=n for n the first calldata word, in a loop; stores the sum in
/// slot 0 and returns it.
const SUM_LOOP: &str = "60003560005b811560165781019060019003906005565b8060005560005260206000f3";
const CONTRACT: Address = address!("0x1000000000000000000000000000000000000001");
const CALLER: Address = address!("0x2000000000000000000000000000000000000002");
const SPEC: SpecId = SpecId::OSAKA;
/// A node would leave the default (5,000,000 gas); low here so that the
/// contract gets hot within a few transactions.
const HOT_GAS: u64 = 1_000_000;

fn main() -> Result<(), Box<dyn Error>> {
    let cache_dir = tempfile::tempdir()?;
    let code = hex::decode(SUM_LOOP)?;
    let registry = Registry::new();
    let factory = NativeEvmFactory::new(registry.clone())
        .with_cache(ArtifactCache::open(cache_dir.path())?, 2)
        .with_hot_compilation(HotOptions {
            thresholds: Thresholds {
                gas: HOT_GAS,
                calls: u64::MAX,
            },
            workers: 1,
            ..HotOptions::default()
        })?;

    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(
        CONTRACT,
        AccountInfo::from_bytecode(Bytecode::new_raw(code.into())),
    );
    db.insert_account_info(CALLER, AccountInfo::default());
    let env = EvmEnv::new(CfgEnv::new_with_spec(SPEC), Default::default());

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut nonce = 0;
    let mut native_since = None;
    // Up to one transaction after the first native one: it stays native.
    while native_since.is_none_or(|n| nonce < n + 2) {
        if Instant::now() > deadline {
            return Err("the contract did not become native within 60 s".into());
        }
        let tx = TxEnv {
            caller: CALLER,
            kind: TxKind::Call(CONTRACT),
            data: Bytes::from(U256::from(2_000 + nonce).to_be_bytes_vec()),
            gas_limit: 10_000_000,
            nonce,
            ..Default::default()
        };
        // One EVM per transaction, as a block executor makes them: a
        // contract compiled meanwhile is picked up at the next one.
        let mut evm = factory.create_evm(&mut db, env.clone());
        let result = evm.transact_commit(tx)?;
        if !result.is_success() {
            return Err(format!("transaction {nonce} failed: {result:?}").into());
        }
        let m = registry.metrics().snapshot();
        println!(
            "tx {nonce:>3}: gas {:>7}  frames native {:>3}, interpreted {:>3}  compiles started {}, finished {}",
            result.tx_gas_used(),
            m.frames_native,
            m.frames_interpreted(),
            m.compiles_started,
            m.compiles_finished
        );
        if native_since.is_none() && m.frames_native > 0 {
            native_since = Some(nonce);
        }
        nonce += 1;
        if native_since.is_none() && m.compiles_started > m.compiles_finished + m.compiles_failed {
            // Compiling: a node keeps executing; this loop has nothing else
            // to do, so it does not spin through hundreds of transactions.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let m = registry.metrics().snapshot();
    if m.compiles_failed > 0 {
        return Err("a hot compile failed".into());
    }
    println!(
        "native from transaction {} on; {} frames native, {} interpreted",
        native_since.unwrap_or_default(),
        m.frames_native,
        m.frames_interpreted()
    );
    Ok(())
}
