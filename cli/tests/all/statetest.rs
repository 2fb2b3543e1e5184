//! `evmc-native statetest` over the shared Ethereum state tests.
//!
//! The full runs print the command's summary to the real stderr (not the
//! captured test output), so CI logs show the closing line.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

use evmc_tests::shared_dir as shared;

fn statetest(args: &[&str], paths: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .arg("statetest")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

/// Shows the run's summary in the CI log.
fn show(label: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("compiled") || l.starts_with("ran"))
        .collect();
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "[{label}] {}\n[{label}] {}",
        summary.join(" / "),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// Parses the closing line `N passed, M failed, K skipped`.
fn counts(out: &Output) -> (usize, usize, usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let n: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        n.len() == 3 && last.contains("passed") && last.contains("skipped"),
        "no closing line in {stdout:?}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (n[0], n[1], n[2])
}

fn assert_clean(label: &str, out: &Output, min_vectors: usize) {
    show(label, out);
    let (passed, failed, _) = counts(out);
    assert!(
        out.status.success() && failed == 0,
        "{label}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(passed >= min_vectors, "{label}: only {passed} vectors ran");
}

#[test]
fn shared_state_tests_pass_interpreted_and_native_and_agree() {
    let t = shared().join("testdata");
    let out = statetest(
        &["--mode", "both"],
        &[t.join("state-tests"), t.join("eest-osaka")],
    );
    assert_clean("state tests, both modes", &out, 4600);
}

#[test]
fn ipsilon_benchmark_state_tests_pass_natively() {
    let dir = shared().join("benchdata/evm-benchmarks");
    let out = statetest(&["--mode", "native"], &[dir]);
    assert_clean("evm-benchmarks, native", &out, 20);
}

fn add11() -> PathBuf {
    shared().join("testdata/state-tests/GeneralStateTests/stExample/add11.json")
}

#[test]
fn a_wrong_expectation_fails_with_the_vector_and_both_roots() {
    let text = std::fs::read_to_string(add11()).unwrap();
    let good = "\"hash\" : \"0xe8010ce590f401c9d61fef8ab05bea9bcec24281b795e5868809bc4e515aa530\"";
    assert!(text.contains(good), "fixture changed");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("add11.json");
    std::fs::write(&bad, text.replace(good, &good.replace("0xe8", "0x00"))).unwrap();
    let out = statetest(&["--mode", "both", "--no-skip"], &[bad]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(counts(&out), (0, 1, 0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FAIL") && stderr.contains("add11 Cancun[0] d=0 g=0 v=0"));
    assert!(stderr.contains("interpreter: state root: expected 0x00010ce5"));
    assert!(stderr.contains("native: state root: expected 0x00010ce5"));
    assert!(stderr.contains("got 0xe8010ce5"));
}

#[test]
fn the_skip_file_leaves_files_out_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let skip = dir.path().join("SKIP.txt");
    std::fs::write(&skip, "# comment\nskipped.json\n").unwrap();
    let skipped = dir.path().join("skipped.json");
    std::fs::copy(add11(), &skipped).unwrap();
    let out = statetest(
        &["--mode", "interp", "--skip-file", skip.to_str().unwrap()],
        &[add11(), skipped],
    );
    assert!(out.status.success());
    assert_eq!(counts(&out), (1, 0, 1));
    // Everything skipped: nothing ran, which is no pass.
    let out = statetest(
        &["--mode", "interp", "--skip-file", skip.to_str().unwrap()],
        &[dir.path().join("skipped.json")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(counts(&out), (0, 0, 1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("on the skip list"));
}

#[test]
fn a_skipped_file_that_does_not_parse_counts_as_skipped() {
    // As ethereum/tests' ValueOverflowParis.json: listed in SKIP.txt because
    // revm's types cannot read it.
    let dir = tempfile::tempdir().unwrap();
    let unreadable = dir.path().join("ValueOverflowParis.json");
    std::fs::write(
        &unreadable,
        "{\"x\": {\"transaction\": {\"value\": [\"0x1${256}\"]}}}",
    )
    .unwrap();
    let skip = dir.path().join("SKIP.txt");
    std::fs::write(&skip, "ValueOverflowParis.json\n").unwrap();
    let out = statetest(
        &["--mode", "interp", "--skip-file", skip.to_str().unwrap()],
        &[unreadable, add11()],
    );
    show("skipped unparseable", &out);
    assert!(out.status.success());
    assert_eq!(counts(&out), (1, 0, 1));
}

#[test]
fn missing_paths_and_broken_fixtures_are_reported() {
    let out = statetest(&["--no-skip"], &[PathBuf::from("/nonexistent/dir")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir"));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"x\": {\"env\": 1}}").unwrap();
    // Bad input, not a failed test; nothing runs.
    let out = statetest(&["--no-skip"], &[broken, add11()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.json") && stderr.contains("not a state test"));
    assert!(stderr.contains("1 of 2 files cannot be read as state tests"));
}
