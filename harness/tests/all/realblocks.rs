//! The shared mainnet blocks through alloy-evm's block executor with
//! `NativeEvmFactory` and with alloy-evm's `EthEvmFactory`, untraced and
//! traced; damaged block folders and the errors they give.

use alloy_evm::EthEvmFactory;
use evmc_harness::realblocks::{
    execute_block, find_block_dirs, header_mismatches, load_block, run_difference,
    trace_block_interp, trace_block_native, trace_difference, BlockRun, ErrorKind, RealBlock,
    TraceKind, TxTraces,
};
use evmc_runtime::{ArtifactCache, NativeEvmFactory, Registry};
use revm::primitives::B256;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
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

/// The shared blocks, their interpreted reference runs, and a native
/// factory with every contract they run compiled: built once for the tests
/// that need them (they run in parallel; the second waits for the first).
struct Compiled {
    blocks: Vec<RealBlock>,
    reference: Vec<BlockRun>,
    native: NativeEvmFactory,
    contracts: usize,
    compile_secs: f64,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let blocks = mainnet_blocks();
        // Which contracts the blocks run, per spec, and which of their pcs:
        // each is compiled as `replay` compiles it by default, only the
        // blocks that ran (`evmc_compiler::profile`). The profiling loop
        // must not change a result either.
        let counting = NativeEvmFactory::default().with_run_profiles();
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
        let native =
            NativeEvmFactory::new(Registry::new()).with_cache(test_cache(), TEST_OPT_LEVEL);
        let mut jobs = Vec::new();
        for (spec, counters) in counting.counters() {
            for (hash, _) in counters.snapshot() {
                let code = blocks.iter().find_map(|b| b.code(hash));
                if let Some(code) = code.filter(|c| c.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE)
                {
                    let ran = counting
                        .ran(spec, hash)
                        .expect("a profile of every contract run");
                    jobs.push((spec, code, ran));
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
                .filter_map(|(spec, code, ran)| native.ensure_native_ran(code, *spec, ran).err())
                .collect()
        });
        assert!(failed.is_empty(), "compile failures: {failed:?}");
        Compiled {
            blocks,
            reference,
            native,
            contracts: jobs.len(),
            compile_secs: compile_start.elapsed().as_secs_f64(),
        }
    })
}

#[test]
fn native_factory_gives_eth_factorys_receipts() {
    let start = Instant::now();
    let Compiled {
        blocks,
        reference,
        native,
        contracts,
        compile_secs,
    } = compiled();
    // Its own frame count (the tests share the registry, and run at once).
    let native = &NativeEvmFactory::new(native.registry().clone());
    for (b, reference) in blocks.iter().zip(reference) {
        let run = execute_block(b, native.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.receipts, reference.receipts, "block {}", b.number());
        assert_eq!(
            run_difference(reference, &run, "EthEvmFactory", "NativeEvmFactory"),
            None,
            "block {}",
            b.number()
        );
    }
    let frames = native.native_frames();
    assert!(frames > 0, "nothing ran natively");
    eprintln!(
        "{} blocks, {contracts} contracts (code hash x spec) native, {frames} native frames; compile {compile_secs:.1} s, test {:.1} s",
        blocks.len(),
        start.elapsed().as_secs_f64()
    );
}

/// Every transaction of every shared block traced with geth's call and
/// prestate tracers and parity's transaction traces, through alloy-evm's
/// block executor: in revm's interpreter (every hook), and with compiled
/// frames run natively under the tracers (frame-level hooks). The traces
/// must be identical, transaction by transaction.
#[test]
fn native_traces_match_the_interpreters_on_every_transaction() {
    let start = Instant::now();
    let Compiled {
        blocks,
        reference,
        native,
        ..
    } = compiled();
    let kinds = TraceKind::ALL;
    let native = &NativeEvmFactory::new(native.registry().clone());
    let (mut txs, mut bytes) = (0, 0);
    let mut failures = Vec::new();
    let mut last = None;
    for (b, reference) in blocks.iter().zip(reference) {
        let interp = trace_block_interp(b, &kinds).unwrap_or_else(|e| panic!("{e}"));
        let traced = trace_block_native(b, native, &kinds).unwrap_or_else(|e| panic!("{e}"));
        // Tracing changes nothing of the execution.
        for (run, name) in [(&interp, "traced interpreter"), (&traced, "traced native")] {
            assert_eq!(
                run_difference(reference, run, "untraced", name),
                None,
                "block {}",
                b.number()
            );
        }
        assert_eq!(interp.traces.len(), b.transactions.len());
        for t in &interp.traces {
            let got: Vec<TraceKind> = t.traces.iter().map(|(k, _)| *k).collect();
            assert_eq!(got, kinds, "block {} tx {}", b.number(), t.index);
            bytes += t.traces.iter().map(|(_, j)| j.len()).sum::<usize>();
        }
        txs += interp.traces.len();
        if let Some(d) = trace_difference(&interp.traces, &traced.traces, "interpreted", "native") {
            failures.push(format!("block {}: {d}", b.number()));
        }
        last = Some(interp.traces);
    }
    let frames = native.native_frames();
    eprintln!(
        "traced {txs} transactions of {} blocks both ways (call, prestate, parity: {:.1} MB of JSON), {frames} native frames under the tracers, in {:.1} s",
        blocks.len(),
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(txs >= 8000, "only {txs} transactions traced");
    assert!(frames > 0, "no frame ran natively under the tracers");

    // A deliberately changed trace is reported, naming the transaction,
    // the tracer and the first differing field.
    let traces = last.expect("blocks");
    let mut changed = traces.clone();
    let i = changed.len() / 2;
    let (_, call) = &mut changed[i].traces[0];
    let mut v: Value = serde_json::from_str(call).unwrap();
    v["gasUsed"] = "0x1".into();
    *call = v.to_string();
    let d = trace_difference(&traces, &changed, "interpreted", "native").expect("a difference");
    assert!(
        d.starts_with(&format!("transaction {i} ({})", traces[i].hash))
            && d.contains("call trace differs at $.gasUsed")
            && d.ends_with("\"0x1\" native"),
        "{d}"
    );
}

/// The messages of [`trace_difference`] on made-up traces: the first
/// differing transaction, kind and JSON path.
#[test]
fn trace_difference_names_transaction_tracer_and_path() {
    let tx = |index: usize, call: &str, parity: &str| TxTraces {
        index,
        hash: B256::with_last_byte(index as u8),
        traces: vec![
            (TraceKind::Call, call.to_string()),
            (TraceKind::Parity, parity.to_string()),
        ],
    };
    let call =
        r#"{"from":"0x01","gasUsed":"0x10","calls":[{"to":"0x02","gasUsed":"0x5"},{"to":"0x03"}]}"#;
    let a = vec![tx(0, call, "[]"), tx(1, call, r#"[{"a":1}]"#)];
    assert_eq!(trace_difference(&a, &a.clone(), "x", "y"), None);

    // Nested field, second transaction.
    let mut b = a.clone();
    b[1].traces[0].1 = call.replace(r#""gasUsed":"0x5""#, r#""gasUsed":"0x6""#);
    let d = trace_difference(&a, &b, "interpreted", "native").unwrap();
    assert_eq!(
        d,
        format!(
            "transaction 1 ({}): call trace differs at $.calls[0].gasUsed: \"0x5\" interpreted, \"0x6\" native",
            B256::with_last_byte(1)
        )
    );

    // A call missing; a field only one side has; another tracer.
    let mut b = a.clone();
    b[0].traces[0].1 = call.replace(r#",{"to":"0x03"}"#, "");
    let d = trace_difference(&a, &b, "i", "n").unwrap();
    assert!(
        d.ends_with("call trace differs at $.calls (length): 2 i, 1 n"),
        "{d}"
    );
    let mut b = a.clone();
    b[1].traces[1].1 = r#"[{"a":1,"b":2}]"#.into();
    let d = trace_difference(&a, &b, "i", "n").unwrap();
    assert!(
        d.ends_with("parity trace differs at $[0].b: absent i, 2 n"),
        "{d}"
    );

    // Different transactions or tracers.
    let d = trace_difference(&a, &a[..1], "i", "n").unwrap();
    assert_eq!(d, "traces of 2 transactions i, of 1 n");
    let mut b = a.clone();
    b[0].traces.pop();
    let d = trace_difference(&a, &b, "i", "n").unwrap();
    assert!(d.contains("traced [Call, Parity] i, [Call] n"), "{d}");
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
