//! How much of each contract real blocks execute: every block of a folder
//! (or one block) run through alloy-evm's block executor in revm's
//! interpreter, with an inspector that records each executed instruction's
//! position per bytecode.
//!
//! ```sh
//! cargo run --release -p evmc-examples --example block_coverage -- ../shared/realblocks/mainnet
//! ```
//!
//! Prints one line per bytecode (code hash, bytes, instructions, distinct
//! instructions executed, instructions executed), then, on lines starting
//! with `#`, the share of code executed among the bytecodes that ran most.
//! Compile time grows with the code compiled, so this bounds what compiling
//! only the code real traffic reaches could save. Instructions are counted
//! from the first byte to the last, so metadata and data appended to the
//! code count as instructions that never run.

use alloy_evm::block::{BlockExecutor, BlockExecutorFactory};
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthSpec;
use alloy_evm::eth::{EthBlockExecutorFactory, EthEvmFactory};
use alloy_evm::{Evm, EvmFactory};
use evmc_compiler::analysis::decode;
use evmc_harness::realblocks::{find_block_dirs, load_block};
use revm::database::State;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::Jumps;
use revm::interpreter::Interpreter;
use revm::primitives::B256;
use revm::Inspector;
use std::collections::{HashMap, HashSet};
use std::error::Error;

/// What ran of one bytecode.
struct Seen {
    code: Vec<u8>,
    /// Positions of the instructions executed.
    positions: HashSet<usize>,
    /// Instructions executed.
    steps: u64,
}

/// What ran of each bytecode, by code hash.
#[derive(Default)]
struct Coverage(HashMap<B256, Seen>);

impl<CTX> Inspector<CTX, EthInterpreter> for Coverage {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX) {
        let hash = interp.bytecode.get_or_calculate_hash();
        let seen = self.0.entry(hash).or_insert_with(|| Seen {
            code: interp.bytecode.original_byte_slice().to_vec(),
            positions: HashSet::new(),
            steps: 0,
        });
        seen.positions.insert(interp.bytecode.pc());
        seen.steps += 1;
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: block_coverage BLOCKS_DIR")?;
    let dirs = find_block_dirs(&[root.into()])?;
    let mut coverage = Coverage::default();
    for dir in &dirs {
        let block = load_block(dir)?;
        let mut state = State::builder()
            .with_database_ref(&block.pre_state)
            .with_bundle_update()
            .build();
        let executors = EthBlockExecutorFactory::new(
            AlloyReceiptBuilder::default(),
            EthSpec::mainnet(),
            EthEvmFactory::default(),
        );
        let evm = executors.evm_factory().create_evm_with_inspector(
            &mut state,
            block.env.clone(),
            std::mem::take(&mut coverage),
        );
        let mut executor = executors.create_executor(evm, block.execution_ctx());
        executor.apply_pre_execution_changes()?;
        for tx in &block.transactions {
            executor.execute_transaction(tx.as_recovered_ref())?;
        }
        let (mut evm, _) = executor.finish()?;
        coverage = std::mem::take(evm.inspector_mut());
    }

    // (steps, instructions, distinct executed) per bytecode, busiest first.
    let mut rows: Vec<(u64, usize, usize)> = Vec::new();
    for (hash, seen) in &coverage.0 {
        // `decode` appends the STOP the interpreter runs past the end; the
        // count is of the code's own instructions.
        let insts = decode(&seen.code).len() - 1;
        let (hit, steps) = (seen.positions.len(), seen.steps);
        println!("{hash} {} {insts} {hit} {steps}", seen.code.len());
        rows.push((steps, insts, hit));
    }
    rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    let total: u64 = rows.iter().map(|r| r.0).sum();
    println!(
        "# {} blocks, {} bytecodes, {total} instructions executed",
        dirs.len(),
        rows.len()
    );
    for share in [50, 60, 70, 80, 90, 95, 100] {
        let (mut steps, mut insts, mut hit, mut n) = (0u64, 0usize, 0usize, 0usize);
        for r in &rows {
            if steps * 100 >= total * share {
                break;
            }
            (steps, insts, hit, n) = (steps + r.0, insts + r.1, hit + r.2, n + 1);
        }
        let which = if n == rows.len() {
            format!("all {n} bytecodes")
        } else {
            format!("the {n} busiest bytecodes ({share}% of the instructions executed)")
        };
        println!(
            "# {which}: {hit} of their {insts} instructions ran ({:.1}%)",
            100.0 * hit as f64 / insts.max(1) as f64
        );
    }
    Ok(())
}
