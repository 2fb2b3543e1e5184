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

#[test]
fn compare_every_shared_block() {
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
            // Every contract the blocks run, not only the default's hot ones.
            "--min-gas",
            "0",
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
