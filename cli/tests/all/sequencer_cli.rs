//! `evmc-native sequencer` and `evmc-native run FIXTURE` through the binary.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the binary with a fresh artifact cache of its own (the sequencer
/// compiles through the cache; the user's must not be touched or reused).
fn bin(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args(args)
        .env("EVMC_NATIVE_CACHE", cache.path())
        .output()
        .unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn compare_mode_reports_both_throughputs_and_their_ratio() {
    let out = bin(&[
        "sequencer",
        "--workload",
        "weth",
        "--txs",
        "600",
        "--block-size",
        "100",
        "--mode",
        "compare",
        "--json",
        // Every compiled frame native: the safety net's choice depends on
        // timing, which a loaded machine skews.
        "--no-safety-net",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["mode"], "compare");
    assert_eq!(v["identical"], true);
    assert_eq!(v["txs"], 600);
    assert_eq!(v["blocks"], 6);
    for mode in ["interp", "native"] {
        let run = &v["runs"][mode];
        assert_eq!(run["txs"], 600, "{mode}");
        assert!(run["tps"].as_f64().unwrap() > 0.0);
        assert!(run["mgas_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(run["blocks"].as_array().unwrap().len(), 6);
    }
    assert!(v["runs"]["native"]["native_frames"].as_u64().unwrap() >= 600);
    assert!(v["speedup_tps"].as_f64().unwrap() > 0.0);
    let compiled = v["compile"]["contracts"].as_array().unwrap();
    assert_eq!(compiled.len(), 1);
    assert_eq!(compiled[0]["name"], "WETH9");
    assert_eq!(compiled[0]["status"], "ready");

    // The human-readable form names both modes and the ratio.
    let text = ok(&bin(&[
        "sequencer",
        "--workload",
        "weth",
        "--txs",
        "200",
        "--block-size",
        "100",
    ]));
    assert!(
        text.contains("interp") && text.contains("native / interp"),
        "{text}"
    );
    assert!(text.contains("identical in both modes"), "{text}");
}

#[test]
fn hot_mode_with_verify_matches_the_interpreter() {
    let text = ok(&bin(&[
        "sequencer",
        "--workload",
        "usdc",
        "--txs",
        "400",
        "--block-size",
        "50",
        "--mode",
        "hot",
        "--hot-gas",
        "200000",
        "--accounts",
        "50",
        "--verify",
    ]));
    assert!(text.contains("gas per contract"), "{text}");
    assert!(
        text.contains("verify: receipts, logs and state diffs of all 8 blocks identical"),
        "{text}"
    );
}

#[test]
fn run_fixture_prints_status_gas_output_and_logs_in_both_modes() {
    let fixture = repo().join("data/contracts/weth.json");
    let out = bin(&["run", fixture.to_str().unwrap(), "--mode", "both", "--json"]);
    let text = ok(&out);
    // One object per fixture: both results and the verdict.
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["mode"], "compare");
    assert_eq!(v["identical"], true);
    let (interp, native) = (&v["interp"], &v["native"]);
    for key in ["status", "gas_used", "output", "logs", "state_root"] {
        assert_eq!(interp[key], native[key], "{key}");
    }
    assert_eq!(interp["status"], "success");
    // transfer(0x…01, 1000): returns true and logs one Transfer.
    assert_eq!(
        interp["output"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x")
            .trim_start_matches('0'),
        "1"
    );
    assert_eq!(interp["logs"].as_array().unwrap().len(), 1);
    assert!(native["native_frames"].as_u64().unwrap() > 0);

    let text = ok(&bin(&[
        "run",
        fixture.to_str().unwrap(),
        "--mode",
        "interp",
    ]));
    assert!(
        text.contains("status=Success gas_used=") && text.contains("log 0: address="),
        "{text}"
    );
}

#[test]
fn bad_sequencer_and_fixture_input_are_clear_errors() {
    let out = bin(&[
        "sequencer",
        "--workload",
        "usdc",
        "--contracts",
        "/nonexistent/dir",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/dir/usdc_proxy.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"x\": 1}").unwrap();
    let out = bin(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a contract fixture"));
}

/// `sequencer --mode MODE` on a small WETH workload, compiling through
/// the cache at `cache`; as `nobody` when `unprivileged`.
fn sequencer_with_cache(cache: &std::path::Path, mode: &str, unprivileged: bool) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(env!("CARGO_BIN_EXE_evmc-native"));
    c.args(["sequencer", "--workload", "weth", "--txs", "200"])
        .args(["--block-size", "100", "--mode", mode, "--json"])
        .arg("--cache-dir")
        .arg(cache);
    if unprivileged {
        // SAFETY: async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c.output().unwrap()
}

fn statuses(out: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    v["compile"]["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_refused_cache_entry_is_reported_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    assert_eq!(
        statuses(&sequencer_with_cache(&cache, "native", false)),
        ["ready"]
    );
    for mode in ["native", "hot", "compare"] {
        // Damage the one entry's artifact.
        let entries: Vec<_> = std::fs::read_dir(cache.join("entries"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let so = entries[0].join("artifact.so");
        let mut bytes = std::fs::read(&so).unwrap();
        bytes[100] ^= 0xff;
        std::fs::remove_file(&so).unwrap();
        std::fs::write(&so, bytes).unwrap();
        let out = sequencer_with_cache(&cache, mode, false);
        ok(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("warning: cache entry") && err.contains("quarantine"),
            "{mode}: {err}"
        );
        if mode == "hot" {
            // Hot mode looked it up (and refused it) but the workload is
            // too short to make it hot: compile it for the next round.
            ok(&sequencer_with_cache(&cache, "native", false));
        }
    }
}

#[test]
fn a_read_only_cache_serves_the_sequencer_its_hits() {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        // Needs root to become `nobody`, who cannot write root's files.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(&sequencer_with_cache(&cache, "native", false));
    let chmod = |mode: &str| {
        assert!(Command::new("chmod")
            .args(["-R", mode])
            .arg(dir.path())
            .status()
            .unwrap()
            .success());
    };
    chmod("a+rX,a-w");
    let out = sequencer_with_cache(&cache, "native", true);
    assert_eq!(statuses(&out), ["cached"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("unusable"), "{err}");
    assert_eq!(err.matches("read-only").count(), 1, "one warning: {err}");
    chmod("u+w");
}
