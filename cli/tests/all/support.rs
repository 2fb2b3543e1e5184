//! What the hardening tests share: running the binary under a deadline and
//! an address-space cap, so that a regression (a read that never ends, an
//! expansion to gigabytes) fails the test instead of hanging it or
//! exhausting the machine.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Address-space cap of the child, in KiB (`ulimit -v`): room for the
/// binary and its thread stacks, far below what an unbounded read reaches.
const MEMORY_KIB: u64 = 4 << 20;

/// Runs `evmc-native ARGS` with an empty artifact cache of its own; kills
/// it and fails after `deadline`.
pub(crate) fn run_capped(args: &[&str], deadline: Duration) -> Output {
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_evmc-native"))
        .args(args)
        .env("EVMC_NATIVE_CACHE", cache.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`evmc-native {}` still running after {deadline:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Asserts a clean refusal: exit `code`, no panic, `needle` on stderr.
pub(crate) fn assert_refused(out: &Output, code: i32, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {:?}\nstderr: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{what}: expected `{needle}` in {stderr}"
    );
}

/// Makes a FIFO at `path`: opening it for reading blocks until a writer
/// comes, which none ever does here.
pub(crate) fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success());
}

/// The JSON objects printed one per line on stdout.
pub(crate) fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
