//! A runtime built without the `compiler` feature has no LLVM in it, and
//! still finds, validates, loads and runs artefacts that a compiling
//! process put into the cache on this machine.
//!
//! The no-LLVM binary is `examples/load_only.rs`, built here by cargo into
//! this test's own target directory (only the runtime crate and the
//! compiler's LLVM-free part are rebuilt).

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::*;

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
        .args(["build", "--release", "-p", "evmc-runtime"])
        .args(["--no-default-features", "--example", "load_only"])
        .args(["--message-format", "json"])
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // The executable of this build itself: the uplifted
    // `examples/load_only` is whichever feature set was built last.
    let exe = String::from_utf8_lossy(&build.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "load_only")
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
