//! What an operator meets first: `--version`, completions, log levels on
//! stderr, and data that does not depend on the source checkout.

use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args(args)
        .env("EVMC_NATIVE_CACHE", cache.path())
        .env_remove("RUST_LOG")
        .env_remove("EVMC_CONTRACTS_DIR")
        .output()
        .unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn version_names_the_compiler_build_interface_llvm_and_target() {
    let v = stdout_ok(&bin(&["--version"]));
    assert!(v.contains(evmc_compiler::COMPILER_BUILD_ID), "{v}");
    assert!(
        v.contains(&format!(
            "interface version: {}",
            evmc_interface::INTERFACE_VERSION
        )),
        "{v}"
    );
    assert!(v.contains("LLVM: 19."), "{v}");
    assert!(v.contains("target: x86_64"), "{v}");
}

#[test]
fn completions_leave_out_the_internal_worker_command() {
    for shell in ["bash", "zsh", "fish"] {
        let s = stdout_ok(&bin(&["completions", shell]));
        assert!(s.contains("sequencer"), "{shell}");
        assert!(!s.contains("__compile-worker"), "{shell}");
    }
}

#[test]
fn help_lists_specs_defaults_and_data_variables() {
    let h = stdout_ok(&bin(&["run", "--help"]));
    assert!(h.contains("Osaka") && h.contains("Frontier"), "{h}");
    assert!(h.contains("[default: compare]"), "{h}");
    let h = stdout_ok(&bin(&["sequencer", "--help"]));
    assert!(h.contains("EVMC_CONTRACTS_DIR"), "{h}");
    assert!(h.contains("--jobs"), "{h}");
    let h = stdout_ok(&bin(&["bench", "--help"]));
    assert!(h.contains("EVMC_SHARED_DIR"), "{h}");
}

#[test]
fn sequencer_runs_on_bundled_contracts_from_any_directory() {
    // From a directory with no checkout around it.
    let elsewhere = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args([
            "sequencer",
            "--workload",
            "mixed",
            "--txs",
            "50",
            "--block-size",
            "50",
            "--accounts",
            "10",
            "--mode",
            "interp",
            "--json",
        ])
        .current_dir(elsewhere.path())
        .env("EVMC_NATIVE_CACHE", cache.path())
        .env_remove("EVMC_CONTRACTS_DIR")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout_ok(&out).trim()).unwrap();
    assert_eq!(v["txs"], 50);

    // The environment variable replaces them: an empty directory has none.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args([
            "sequencer",
            "--workload",
            "weth",
            "--txs",
            "10",
            "--mode",
            "interp",
        ])
        .env("EVMC_NATIVE_CACHE", cache.path())
        .env("EVMC_CONTRACTS_DIR", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weth.json"));
}

#[test]
fn verbosity_flags_set_the_log_level_on_stderr() {
    // A missing skip list is a warning: shown by default, hidden by -q.
    let add11 = evmc_tests::shared_dir()
        .join("testdata/state-tests/GeneralStateTests/stExample/add11.json");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("add11.json");
    std::fs::copy(&add11, &copy).unwrap();
    let args = ["statetest", "--mode", "interp", copy.to_str().unwrap()];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = extra.to_vec();
        a.extend(args);
        let out = Command::new(env!("CARGO_BIN_EXE_evmc-native"))
            .args(&a)
            .env_remove("RUST_LOG")
            .env_remove("EVMC_SHARED_DIR")
            // No `../shared` from there.
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(run(&[]).contains("no SKIP.txt"));
    assert!(!run(&["-q"]).contains("no SKIP.txt"));
}
