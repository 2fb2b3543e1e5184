//! Compiles a contract into an artifact cache and runs a transaction
//! natively through `NativeEvmFactory` (alloy-evm's `EvmFactory`, the
//! drop-in for `EthEvmFactory`), then checks the result against revm's
//! interpreter.
//!
//! ```sh
//! cargo run --release -p evmc-examples --example compile_and_run [CACHE_DIR]
//! ```
//!
//! Without CACHE_DIR the cache is a temporary directory; with one, the
//! second run loads the artefact instead of compiling it.

use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory};
use evmc_runtime::{ArtifactCache, NativeEvmFactory, Registry};
use revm::bytecode::Bytecode;
use revm::context::{CfgEnv, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{address, Address, Bytes, TxKind, U256};
use revm::state::AccountInfo;
use std::error::Error;
use std::time::Instant;

/// Sums 1..=n for n the first calldata word, in a loop; stores the sum in
/// slot 0 and returns it.
const SUM_LOOP: &str = "60003560005b811560165781019060019003906005565b8060005560005260206000f3";
const CONTRACT: Address = address!("0x1000000000000000000000000000000000000001");
const CALLER: Address = address!("0x2000000000000000000000000000000000000002");
const SPEC: SpecId = SpecId::OSAKA;

fn main() -> Result<(), Box<dyn Error>> {
    let temp;
    let cache_dir = match std::env::args().nth(1) {
        Some(dir) => dir.into(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let code = hex::decode(SUM_LOOP)?;

    // The factory takes its artefacts from the cache (compiling into it
    // at -O2 on a miss) and runs every registered contract natively.
    let cache = ArtifactCache::open(&cache_dir)?;
    let factory = NativeEvmFactory::new(Registry::new()).with_cache(cache, 2);
    let start = Instant::now();
    let from_cache = factory.ensure_native(&code, SPEC)?;
    println!(
        "contract {} in {:.1} ms ({})",
        if from_cache { "loaded" } else { "compiled" },
        start.elapsed().as_secs_f64() * 1e3,
        cache_dir.display()
    );

    // A state with the contract, and a call summing 1..=10000.
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(
        CONTRACT,
        AccountInfo::from_bytecode(Bytecode::new_raw(code.into())),
    );
    db.insert_account_info(CALLER, AccountInfo::default());
    let env = EvmEnv::new(CfgEnv::new_with_spec(SPEC), Default::default());
    let tx = TxEnv {
        caller: CALLER,
        kind: TxKind::Call(CONTRACT),
        data: Bytes::from(U256::from(10_000).to_be_bytes_vec()),
        gas_limit: 10_000_000,
        ..Default::default()
    };

    // The same transaction natively and on alloy-evm's own factory.
    let mut native = factory.create_evm(db.clone(), env.clone());
    let start = Instant::now();
    let got = native.transact(tx.clone())?;
    let native_time = start.elapsed();
    let native_frames = native.native_frames();
    let mut interp = EthEvmFactory::default().create_evm(db, env);
    let start = Instant::now();
    let want = interp.transact(tx)?;
    let interp_time = start.elapsed();

    println!(
        "native: {:?} gas {} in {:.3} ms, {native_frames} native frame(s)",
        got.result.output(),
        got.result.tx_gas_used(),
        native_time.as_secs_f64() * 1e3
    );
    println!(
        "interp: {:?} gas {} in {:.3} ms",
        want.result.output(),
        want.result.tx_gas_used(),
        interp_time.as_secs_f64() * 1e3
    );
    if got.result != want.result || got.state != want.state {
        return Err("the native run differs from the interpreter's".into());
    }
    if native_frames == 0 {
        return Err("the contract did not run natively".into());
    }
    println!("identical result and state");
    Ok(())
}
