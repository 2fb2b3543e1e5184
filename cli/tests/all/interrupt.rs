//! An interrupted run leaves no temporary files: `statetest` stopped by
//! SIGINT and `bench` by SIGTERM while they compile, with `TMPDIR` pointed
//! at a directory of the test's own, which must be empty afterwards.

use evmc_tests::shared_dir;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(files_under(&p));
            }
            out.push(p);
        }
    }
    out
}

/// Starts `evmc-native ARGS` with `TMPDIR` at a fresh directory, waits
/// until it has written compiled artefacts there, sends `signal`, and
/// checks the exit code (128 + the signal) and that the directory is empty.
fn interrupted_leaves_nothing(args: &[&str], signal: libc::c_int) {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args(args)
        .env("TMPDIR", tmp.path())
        // Without a cache (`--cache-dir` or this variable) statetest and
        // bench compile into temporary files only: those are under test.
        .env_remove("EVMC_NATIVE_CACHE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let compiling = loop {
        let so = files_under(tmp.path())
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "so"))
            .count();
        if so >= 2 {
            break true;
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(120) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !compiling {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "`{}` wrote no artefacts under TMPDIR: {:?}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SAFETY: signals our own child, by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 60 s after signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let left = files_under(tmp.path());
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(
        status.code(),
        Some(128 + signal),
        "{status:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn statetest_interrupted_by_sigint_leaves_no_temporary_files() {
    let dir = shared_dir().join("testdata/state-tests");
    interrupted_leaves_nothing(
        &["statetest", "--mode", "native", dir.to_str().unwrap()],
        libc::SIGINT,
    );
}

#[test]
fn bench_terminated_by_sigterm_leaves_no_temporary_files() {
    let dir = shared_dir().join("benchdata");
    interrupted_leaves_nothing(
        &["bench", dir.to_str().unwrap(), "--reps", "1"],
        libc::SIGTERM,
    );
}
