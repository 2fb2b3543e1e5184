//! The shared mainnet blocks through alloy-evm's block executor with
//! `NativeEvmFactory` and with alloy-evm's `EthEvmFactory`; damaged block
//! folders and the errors they give.

use alloy_evm::EthEvmFactory;
use evmc_harness::realblocks::{
    execute_block, find_block_dirs, header_mismatches, load_block, run_difference, ErrorKind,
    RealBlock,
};
use evmc_runtime::{ArtifactCache, NativeEvmFactory, Registry};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn mainnet_dir() -> PathBuf {
    let dir = evmc_harness::shared_dir().join("realblocks/mainnet");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    dir
}

fn mainnet_blocks() -> Vec<RealBlock> {
    let dirs = find_block_dirs(&[mainnet_dir()]).expect("block folders");
    assert!(dirs.len() >= 30, "expected the shared mainnet blocks");
    dirs.iter()
        .map(|d| load_block(d).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The artifact cache the real-block tests share (level 0: see the CLI
/// test), so that one compiles what the other then finds.
pub(crate) fn test_cache() -> ArtifactCache {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("realblocks-cache");
    ArtifactCache::open(&dir).expect("artifact cache")
}

/// Level 0: compiling every contract the 33 blocks run at the default
/// level takes longer than CI can spend (see the replay CLI test).
const TEST_OPT_LEVEL: u8 = 0;

#[test]
fn native_factory_gives_eth_factorys_receipts() {
    let start = Instant::now();
    let blocks = mainnet_blocks();
    // Which contracts the blocks run, per spec.
    let counting = NativeEvmFactory::default().with_frame_counting();
    let mut reference = Vec::new();
    for b in &blocks {
        let run = execute_block(b, EthEvmFactory::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            header_mismatches(b, &run),
            Vec::<String>::new(),
            "{}",
            b.number()
        );
        let counted = execute_block(b, counting.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            run_difference(&run, &counted, "EthEvmFactory", "NativeEvmFactory"),
            None
        );
        reference.push(run);
    }
    let native = NativeEvmFactory::new(Registry::new()).with_cache(test_cache(), TEST_OPT_LEVEL);
    let mut jobs = Vec::new();
    for (spec, counters) in counting.counters() {
        for (hash, _) in counters.snapshot() {
            let code = blocks.iter().find_map(|b| b.code(hash));
            if let Some(code) = code.filter(|c| c.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE) {
                jobs.push((spec, code));
            }
        }
    }
    let compile_start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()
        .expect("pool");
    let failed: Vec<String> = pool.install(|| {
        use rayon::prelude::*;
        jobs.par_iter()
            .filter_map(|(spec, code)| native.ensure_native(code, *spec).err())
            .collect()
    });
    assert!(failed.is_empty(), "compile failures: {failed:?}");
    let compile_secs = compile_start.elapsed().as_secs_f64();
    for (b, reference) in blocks.iter().zip(&reference) {
        let run = execute_block(b, native.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.receipts, reference.receipts, "block {}", b.number());
        assert_eq!(
            run_difference(reference, &run, "EthEvmFactory", "NativeEvmFactory"),
            None,
            "block {}",
            b.number()
        );
    }
    assert!(native.native_frames() > 0, "nothing ran natively");
    eprintln!(
        "{} blocks, {} contracts (code hash x spec) native, {} native frames; compile {compile_secs:.1} s, test {:.1} s",
        blocks.len(),
        jobs.len(),
        native.native_frames(),
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn inspector_runs_interpreted_with_the_same_result() {
    use alloy_evm::{Evm, EvmFactory};
    use revm::inspector::NoOpInspector;
    let dirs = find_block_dirs(&[mainnet_dir().join("19933612")]).expect("block folder");
    let block = load_block(&dirs[0]).unwrap_or_else(|e| panic!("{e}"));
    let tx = &block.transactions[0];
    let run = |inspect: bool| {
        let mut state = revm::database::State::builder()
            .with_database_ref(&block.pre_state)
            .build();
        let factory = NativeEvmFactory::default();
        let env = block.env.clone();
        let result = if inspect {
            let mut evm = factory.create_evm_with_inspector(&mut state, env, NoOpInspector);
            evm.transact(tx.as_recovered_ref()).expect("executes")
        } else {
            let mut evm = factory.create_evm(&mut state, env);
            evm.transact(tx.as_recovered_ref()).expect("executes")
        };
        result.result
    };
    assert_eq!(run(true), run(false));
}

/// A copy of shared block `number` in a temporary directory, writable.
fn copy_block(number: u64) -> (tempfile::TempDir, PathBuf) {
    let src = mainnet_dir().join(number.to_string());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dst = tmp.path().join(number.to_string());
    std::fs::create_dir(&dst).expect("mkdir");
    for e in std::fs::read_dir(&src).expect("block folder") {
        let e = e.expect("entry");
        let bytes = std::fs::read(e.path()).expect("read");
        std::fs::write(dst.join(e.file_name()), bytes).expect("write");
    }
    (tmp, dst)
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).expect("json")).expect("write");
}

/// The error of loading and executing `dir`.
fn error_of(dir: &Path) -> (ErrorKind, String) {
    let e = match load_block(dir) {
        Err(e) => e,
        Ok(b) => match execute_block(&b, EthEvmFactory::default()) {
            Err(e) => e,
            Ok(_) => panic!("{} executed despite the damage", dir.display()),
        },
    };
    (e.kind, e.to_string())
}

fn assert_error(dir: &Path, expect: &[&str]) {
    let (kind, msg) = error_of(dir);
    assert_eq!(kind, ErrorKind::Input, "{msg}");
    for part in expect {
        assert!(msg.contains(part), "`{msg}` does not say `{part}`");
    }
}

#[test]
fn missing_file_is_named() {
    let (_tmp, dir) = copy_block(19933612);
    std::fs::remove_file(dir.join("pre_state.json")).expect("rm");
    assert_error(&dir, &["block 19933612", "pre_state.json is missing"]);
}

#[test]
fn truncated_file_is_named() {
    let (_tmp, dir) = copy_block(19933612);
    let path = dir.join("block.json");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    // The number is in the truncated file: the folder names the block.
    assert_error(&dir, &["19933612", "block.json is truncated"]);
    let (_tmp, dir) = copy_block(19933612);
    let path = dir.join("bytecodes.json");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 10]).expect("write");
    assert_error(&dir, &["block 19933612", "bytecodes.json is truncated"]);
}

#[test]
fn transaction_type_the_fork_lacks_is_refused() {
    // Istanbul: no EIP-2930 transactions yet.
    let (_tmp, dir) = copy_block(11114732);
    edit_json(&dir.join("block.json"), |b| {
        let tx = &mut b["transactions"][0];
        tx["type"] = "0x1".into();
        tx["chainId"] = "0x1".into();
        tx["accessList"] = Value::Array(Vec::new());
        tx["yParity"] = "0x0".into();
        tx["v"] = "0x0".into();
    });
    assert_error(
        &dir,
        &[
            "block 11114732",
            "transaction 0",
            "Istanbul does not allow",
            "Berlin",
        ],
    );
}

#[test]
fn account_without_its_code_is_named() {
    let (_tmp, dir) = copy_block(19933612);
    let pre: Value =
        serde_json::from_slice(&std::fs::read(dir.join("pre_state.json")).expect("read"))
            .expect("json");
    let (address, hash) = pre
        .as_object()
        .expect("object")
        .iter()
        .find_map(|(a, acc)| {
            acc["code_hash"]
                .as_str()
                .map(|h| (a.clone(), h.to_string()))
        })
        .expect("an account with code");
    edit_json(&dir.join("bytecodes.json"), |c| {
        c.as_object_mut().expect("object").remove(&hash);
    });
    assert_error(
        &dir,
        &[
            "block 19933612",
            &address[2..10],
            &hash,
            "bytecodes.json lacks",
        ],
    );
}

#[test]
fn missing_block_hash_is_named() {
    let (_tmp, dir) = copy_block(11114732);
    std::fs::remove_file(dir.join("block_hashes.json")).expect("rm");
    assert_error(
        &dir,
        &[
            "block 11114732",
            "BLOCKHASH of block 11114723",
            "block_hashes.json",
        ],
    );
}
