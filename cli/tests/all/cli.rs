//! The `evmc-native` binary, end to end.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn compile_writes_a_loadable_so_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["compile", "0x600160020160005260206000f3", "--json", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["code_size"], 13);
    let so = PathBuf::from(line["output"].as_str().unwrap());
    assert!(so.exists());
    assert!(line["artifact_size"].as_u64().unwrap() > 0);
    assert!(line["code_hash"].as_str().unwrap().starts_with("0x"));
}

#[test]
fn compile_emits_ir_and_assembly() {
    let dir = tempfile::tempdir().unwrap();
    for (emit, ext, needle) in [
        ("ll", "ll", "define"),
        ("asm", "s", "evmc_entry"),
        ("analysis", "analysis.txt", "block 0"),
    ] {
        let out = bin()
            .args(["compile", "0x6001600201", "--emit", emit, "-o"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stem = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(&format!(".{ext}")))
            .unwrap_or_else(|| panic!("no .{ext} written"));
        assert!(std::fs::read_to_string(stem).unwrap().contains(needle));
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    for (arg, msg) in [
        ("0x6g", "invalid hex"),
        ("0x", "empty bytecode"),
        ("0x600", "odd number"),
        ("/nonexistent/file.hex", "cannot read"),
    ] {
        let out = bin().args(["compile", arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{arg}: {err}");
    }
    let empty = tempfile::tempdir().unwrap();
    let out = bin().arg("compile").arg(empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn snailtracer_compiles_and_runs_equal_to_the_interpreter() {
    let hex = repo().join("data/snailtracer/snailtracer.hex");
    let out = bin()
        .arg("run")
        .arg(&hex)
        .args(["--input", "30627b7c", "--mode", "both", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One object: both results and the verdict.
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let (interp, native) = (&v["interp"], &v["native"]);
    assert_eq!(v["identical"], true);
    assert_eq!(interp["status"], "success");
    assert_eq!(interp["reason"], "return");
    assert_eq!(interp["gas_used"], native["gas_used"]);
    assert_eq!(interp["output"], native["output"]);
    assert_eq!(interp["state"], native["state"]);
    assert!(native["native_frames"].as_u64().unwrap() >= 1);
}
