//! Executes one real mainnet block natively through alloy-evm's Ethereum
//! block executor and checks its receipts root against the header.
//!
//! ```sh
//! cargo run --release --example replay_block -- ../shared/realblocks/mainnet/19933612
//! ```
//!
//! The block's contracts are compiled into the artifact cache
//! (`$EVMC_NATIVE_CACHE`, else `~/.cache/evmc-native`) on the first run and
//! loaded from it afterwards.

use alloy_consensus::proofs::calculate_receipt_root;
use alloy_evm::block::{BlockExecutor, BlockExecutorFactory};
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthSpec;
use alloy_evm::eth::EthBlockExecutorFactory;
use alloy_evm::EvmFactory;
use evmc_harness::realblocks::{load_block, BYZANTIUM_BLOCK};
use evmc_runtime::{ArtifactCache, NativeEvmFactory, Registry};
use rayon::prelude::*;
use revm::database::State;
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: replay_block BLOCK_DIR")?;
    // block.json, pre_state.json, bytecodes.json (and block_hashes.json).
    let block = load_block(dir.as_ref())?;

    // The one line that differs from a host using alloy-evm's EthEvmFactory.
    let cache = ArtifactCache::open(&ArtifactCache::default_dir())?;
    let evm_factory = NativeEvmFactory::new(Registry::new()).with_cache(cache, 2);

    // Compile (or load from the cache) every contract of the block's
    // pre-state for the block's fork, in parallel; LLVM wants deep stacks.
    let spec = block.spec();
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()?;
    let compiled = pool.install(|| {
        block
            .pre_state
            .contracts
            .values()
            .map(|code| code.original_bytes())
            .filter(|code| !code.is_empty() && code.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE)
            .collect::<Vec<_>>()
            .par_iter()
            .filter(|code| evm_factory.ensure_native(code, spec).is_ok())
            .count()
    });

    // alloy-evm's own block executor: system calls, receipts, withdrawals.
    let executors = EthBlockExecutorFactory::new(
        AlloyReceiptBuilder::default(),
        EthSpec::mainnet(),
        evm_factory,
    );
    let mut state = State::builder()
        .with_database_ref(&block.pre_state)
        .with_bundle_update()
        .build();
    let evm = executors
        .evm_factory()
        .create_evm(&mut state, block.env.clone());
    // Parent hash, beacon root, withdrawals, extra data.
    let result = executors
        .create_executor(evm, block.execution_ctx())
        .execute_block(block.transactions.iter().map(|tx| tx.as_recovered_ref()))?;

    let root = calculate_receipt_root(&result.receipts);
    println!(
        "block {} ({}): {} transactions, {} gas, {compiled} contracts native, {} frames run natively",
        block.number(),
        block.fork(),
        result.receipts.len(),
        result.gas_used,
        executors.evm_factory().native_frames()
    );
    // Before Byzantium receipts carry intermediate state roots, which a
    // block folder cannot give: only the gas used can be checked there.
    let matches = if block.number() >= BYZANTIUM_BLOCK {
        let ok = root == block.header.receipts_root;
        let verdict = if ok { "matches" } else { "DIFFERS from" };
        println!("receipts root {root} {verdict} the header's");
        ok
    } else {
        let ok = result.gas_used == block.header.gas_used;
        let verdict = if ok { "matches" } else { "DIFFERS from" };
        println!("pre-Byzantium block: gas used {verdict} the header's");
        ok
    };
    if !matches {
        std::process::exit(1);
    }
    Ok(())
}
