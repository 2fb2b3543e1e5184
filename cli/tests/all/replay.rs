//! `evmc-native replay` over the shared mainnet blocks, and its answers to
//! damaged block folders.
//!
//! The compare run prints the command's totals to the real stderr (not the
//! captured test output), so CI logs show the ratio and the closing line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use evmc_tests::shared_dir as shared;

fn replay(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .arg("replay")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn mainnet() -> PathBuf {
    let dir = shared().join("realblocks/mainnet");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    dir
}

/// The artifact cache shared with the harness's real-block tests.
fn test_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("realblocks-cache")
}

/// Held by the tests that compile into [`test_cache`]: two processes
/// filling a cold cache at once would both compile the same contracts
/// (the cache stays sound, but CI pays twice).
fn cache_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn compare_every_shared_block() {
    let _cache = cache_lock();
    let start = Instant::now();
    let cache = test_cache();
    // Level 0: at the default level (2), compiling every contract (code
    // hash x spec) these blocks run takes far longer than CI can spend on
    // one test on two cores.
    let out = replay(
        &[
            "--mode",
            "compare",
            "-O",
            "0",
            // Every contract the blocks run, not only the default's hot ones,
            // and every frame of them natively (no safety net).
            "--min-gas",
            "0",
            "--no-safety-net",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[&mainnet()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let blocks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("block ")).collect();
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("block ") && !l.starts_with("  "))
        .collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "[replay compare] {}\n[replay compare] test took {:.1} s",
        summary.join("\n[replay compare] "),
        start.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(blocks.len() >= 30, "{stdout}");
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("machine: ")),
        "the table names its CPU first:\n{stdout}"
    );
    for b in &blocks {
        assert!(b.ends_with("verified"), "{b}");
        assert!(b.contains("interp") && b.contains("native"), "{b}");
    }
    let ratio = stdout
        .lines()
        .find(|l| l.starts_with("native / interp: ") && l.contains("x Mgas/s"))
        .unwrap_or_else(|| panic!("no ratio line:\n{stdout}"));
    assert!(ratio.split(' ').nth(3).is_some_and(|r| r.ends_with('x')));
    assert!(
        stdout.contains(" native frames)") && !stdout.contains("(0 native frames)"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some(format!("{} passed, 0 failed", blocks.len()).as_str())
    );
}

/// A copy of shared block `number` in a temporary directory.
fn copy_block(number: u64) -> (tempfile::TempDir, PathBuf) {
    let src = mainnet().join(number.to_string());
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(number.to_string());
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::write(dst.join(e.file_name()), std::fs::read(e.path()).unwrap()).unwrap();
    }
    (tmp, dst)
}

#[test]
fn damaged_block_is_bad_input_naming_block_and_file() {
    let (tmp, dir) = copy_block(11114732);
    std::fs::remove_file(dir.join("block_hashes.json")).unwrap();
    // A sound block beside it still passes.
    let (_tmp2, good) = copy_block(46147);
    std::fs::rename(&good, tmp.path().join("46147")).unwrap();
    let out = replay(&["--mode", "interp"], &[tmp.path()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("block  11114732")
            && stdout.contains("BLOCKHASH of block 11114723 is not in block_hashes.json"),
        "{stdout}"
    );
    assert!(stdout.contains("block     46147"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 1 failed"),
        "{stdout}"
    );

    let (_tmp, dir) = copy_block(19933612);
    std::fs::remove_file(dir.join("bytecodes.json")).unwrap();
    let out = replay(&["--mode", "interp", "--json"], &[&dir]);
    assert_eq!(out.status.code(), Some(2));
    // The report, then (as after every failure with --json) an error object.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut docs = serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>();
    let v = docs.next().unwrap().unwrap();
    assert_eq!(docs.next().unwrap().unwrap()["exit"], 2);
    assert_eq!(v["failed"], 1);
    let problem = v["blocks"][0]["problems"][0].as_str().unwrap();
    assert!(problem.contains("bytecodes.json is missing"), "{problem}");
}

#[test]
fn bad_paths_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = replay(&[], &[&tmp.path().join("nope")]);
    assert_eq!(out.status.code(), Some(2));
    let out = replay(&[], &[tmp.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no block.json"));
}

/// `replay --mode compare --trace call` on one block: the interpreter's
/// and native traces identical, one JSON line per transaction, the traced
/// ratio in the summary. Then `--json` with the other tracers, interpreted.
#[test]
fn compare_traced_block() {
    let _cache = cache_lock();
    let cache = test_cache();
    let block = mainnet().join("19933612");
    let out = replay(
        &[
            "--mode",
            "compare",
            "--trace",
            "call",
            "-O",
            "0",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[&block],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{stderr}",
        out.status,
        stdout
            .lines()
            .filter(|l| !l.starts_with('{'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let traces: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(traces.len(), 130, "one line per transaction");
    for (i, t) in traces.iter().enumerate() {
        assert_eq!(t["block"], 19933612);
        assert_eq!(t["tx_index"], i);
        assert!(t["tx_hash"].as_str().unwrap().starts_with("0x"), "{t}");
        assert!(t["call"]["from"].is_string() && t["call"]["gasUsed"].is_string());
        assert!(t.get("prestate").is_none() && t.get("parity").is_none());
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("block "))
        .unwrap_or_else(|| panic!("no block line:\n{stdout}"));
    assert!(
        line.ends_with("verified") && line.contains("untraced native"),
        "{line}"
    );
    let ratio = stdout
        .lines()
        .find(|l| l.starts_with("native / interp: "))
        .unwrap_or_else(|| panic!("no ratio line:\n{stdout}"));
    assert!(
        ratio.contains("x Mgas/s") && ratio.contains("both traced: call"),
        "{ratio}"
    );
    assert!(
        stdout.contains("traced native / untraced native: "),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"));

    let out = replay(
        &["--mode", "interp", "--json", "--trace", "parity,prestate"],
        &[&block],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "evmc-native/replay/v1");
    assert!(
        v["machine"]["threads"].as_u64().is_some_and(|n| n > 0),
        "{}",
        v["machine"]
    );
    assert_eq!(v["trace"], serde_json::json!(["prestate", "parity"]));
    let traces = v["blocks"][0]["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 130);
    for (i, t) in traces.iter().enumerate() {
        assert_eq!(t["tx_index"], i);
        assert!(t["prestate"].is_object(), "{t}");
        let parity = t["parity"].as_array().unwrap();
        assert_eq!(parity[0]["transactionPosition"], i, "{t}");
        assert_eq!(parity[0]["blockNumber"], 19933612, "{t}");
        assert!(t.get("call").is_none());
    }
}

/// A replica takes its artefacts from the shared store: the first replay
/// compiles and publishes (signed) to a `file://` store; the second, with
/// an empty local cache and trusting the publisher's key, compiles nothing.
#[test]
fn replay_takes_artefacts_from_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    // Spurious Dragon, 4 transactions, a contract over the selection bar.
    let block = mainnet().join("2688148");
    let store = format!("file://{}", tmp.path().join("store").display());
    let key = tmp.path().join("publisher.key");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_evmc-native"))
            .args(args)
            .env_remove("EVMC_SIGN_KEY")
            .env_remove("EVMC_TRUSTED_KEYS")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let keygen = run(&["cache", "keygen", key.to_str().unwrap(), "--json"]);
    let public = keygen["public_key"].as_str().unwrap();
    let cache = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let replay_args = |cache: &str| {
        vec![
            "replay".to_string(),
            "--mode=native".into(),
            "-O".into(),
            "0".into(),
            "--json".into(),
            format!("--store={store}"),
            format!("--cache-dir={cache}"),
            block.to_str().unwrap().to_string(),
        ]
    };
    let mut a = replay_args(&cache("a"));
    a.extend(["--sign-key".into(), key.to_str().unwrap().into()]);
    let a = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let contracts = a["compile"]["contracts"].as_array().unwrap();
    assert!(!contracts.is_empty(), "{a}");
    assert!(contracts.iter().all(|c| c["status"] == "compiled"), "{a}");
    // Each carries what it was selected for: the default's 20,000 gas or
    // more of its own frames in the reference run, in one frame or more.
    // (What they publish and the replica takes are compiles of the blocks
    // the reference run entered, named by that profile.)
    for c in contracts {
        assert!(c["gas"].as_u64().unwrap() >= 20_000, "{c}");
        assert!(c["ran_pcs"].as_u64().unwrap() > 0, "{c}");
        assert!(c["frames"].as_u64().unwrap() >= 1, "{c}");
    }
    assert_eq!(a["store_fetched"], 0, "{a}");

    let mut b = replay_args(&cache("b"));
    b.extend(["--trust-key".into(), public.into()]);
    let b = run(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(b["passed"], 1, "{b}");
    assert_eq!(b["store_fetched"], contracts.len(), "{b}");
    for c in b["compile"]["contracts"].as_array().unwrap() {
        assert_eq!(c["status"], "cached", "compiled on the replica: {c}");
    }
    assert!(b["native_frames"].as_u64().unwrap() > 0, "{b}");
}
