//! A runtime built without the `compiler` feature has no LLVM in it, and
//! still finds, validates, loads and runs artefacts that a compiling
//! process put into the cache on this machine.
//!
//! The no-LLVM binary is the package `examples/load-only`, built here by
//! cargo on its own, into a target directory of its own: in the
//! workspace's, `cargo test --workspace` builds the same binary with the
//! runtime's features unified with everything else's (LLVM included).

use crate::support::*;
use std::path::PathBuf;
use std::process::Command;

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `target/<profile>/deps/load_only-…` → `target`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

#[test]
fn the_runtime_without_the_compiler_feature_has_no_llvm() {
    let out = cargo()
        .args(["tree", "-p", "evmc-runtime", "--no-default-features"])
        .args(["-e", "normal", "--prefix", "none", "--offline"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    for llvm in ["inkwell", "llvm-sys"] {
        assert!(!tree.contains(llvm), "{llvm} in:\n{tree}");
    }
}

#[test]
fn an_artefact_compiled_here_runs_in_a_runtime_without_llvm() {
    // Compiled through the cache by this (compiling) process, which also
    // records this machine's target in it.
    let (dir, cache) = cache_with_contract();
    let build = cargo()
        .args(["build", "--release", "-p", "evmc-example-load-only"])
        .args(["--message-format", "json"])
        .env("CARGO_TARGET_DIR", target_dir().join("no-llvm"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let exe = String::from_utf8_lossy(&build.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "evmc-example-load-only")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable");
    let bytes = std::fs::read(&exe).unwrap();
    assert!(
        !bytes.windows(7).any(|w| w == b"libLLVM"),
        "{} links LLVM",
        exe.display()
    );
    let run = Command::new(&exe)
        .arg(cache.dir())
        .arg(hex::encode(contract()))
        .arg(evmc_compiler::spec_name(SPEC))
        .arg(OPT.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("\"matches_interpreter\":true"), "{stdout}");
    drop(dir);
}
