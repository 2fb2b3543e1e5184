//! Output to a reader that went away (`evmc-native … | head -1`) ends the
//! command quietly, as any Unix filter ends, instead of a panic (exit 101);
//! and a warning about the artifact cache is printed once.

use crate::support::run_capped;
use evmc_tests::shared_dir;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs with stdout a pipe whose reading end is closed before the command
/// writes anything.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_pipe_ends_the_command_quietly() {
    let add11 = shared_dir().join("testdata/state-tests/GeneralStateTests/stExample/add11.json");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_str().unwrap();
    for args in [
        vec!["run", "0x00", "--mode", "interp"],
        vec!["run", "0x00", "--mode", "interp", "--json"],
        vec![
            "statetest",
            "--no-skip",
            "--mode",
            "interp",
            add11.to_str().unwrap(),
        ],
        vec!["cache", "path", "--cache-dir", cache],
    ] {
        let out = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // Ended by SIGPIPE, as `cat` or `ls` would be, or done before it.
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

#[test]
fn an_unusable_cache_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let cache = file.join("cache");
    let out = run_capped(
        &[
            "sequencer",
            "--workload",
            "weth",
            "--txs",
            "20",
            "--block-size",
            "10",
            "--mode",
            "native",
            "--verify",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("artifact cache unusable").count(),
        1,
        "{stderr}"
    );
}
