//! Every command's `--json` output against its documented schema
//! (docs/json.md): the `schema` field, the fields documented for it, plain
//! values (no Rust debug strings), `0x` hex, and the exit code.

use evmc_tests::shared_dir;
use serde_json::Value;
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .args(args)
        .env("EVMC_NATIVE_CACHE", cache.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs `args`, requires exit `code`, returns every JSON value on stdout
/// (one per line, or one pretty-printed document).
fn json_of(args: &[&str], code: i32) -> Vec<Value> {
    let out = bin(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "`{}`\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim_start().starts_with("{\n") {
        return vec![serde_json::from_str(&stdout).unwrap()];
    }
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `v` has schema `name` and every field of `fields`.
fn check(v: &Value, name: &str, fields: &[&str]) {
    assert_eq!(v["schema"], format!("evmc-native/{name}/v1"), "{v}");
    for f in fields {
        assert!(v.get(*f).is_some(), "`{f}` missing from {name}: {v}");
    }
    no_debug_strings(v);
}

/// No value looks like a Rust `Debug` rendering of an enum (`Success(Return)`).
fn no_debug_strings(v: &Value) {
    match v {
        Value::String(s) => {
            let debugish = s.contains('(')
                && s.ends_with(')')
                && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && !s.contains(' ');
            assert!(!debugish, "debug string in JSON: {s}");
        }
        Value::Array(a) => a.iter().for_each(no_debug_strings),
        Value::Object(o) => o.values().for_each(no_debug_strings),
        _ => {}
    }
}

fn hex0x(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(s.starts_with("0x"), "not 0x hex: {s}");
}

const SIDE: &[&str] = &[
    "status",
    "reason",
    "gas_used",
    "output",
    "logs",
    "state",
    "native_frames",
    "time_us",
];

#[test]
fn run_json_follows_its_schema() {
    // LOG1 with data, then RETURN of one word.
    let code = "0x600160005260aa60206000a1600160005260206000f3";
    for mode in ["interp", "native"] {
        let v = &json_of(&["run", code, "--mode", mode, "--json"], 0)[0];
        check(v, "run", SIDE);
        assert_eq!(v["mode"], mode);
        assert_eq!(v["status"], "success");
        assert_eq!(v["reason"], "return");
        hex0x(&v["output"]);
        hex0x(&v["logs"][0]["data"]);
    }
    let v = &json_of(&["run", code, "--mode", "both", "--json"], 0)[0];
    check(
        v,
        "run",
        &[
            "mode",
            "interp",
            "native",
            "identical",
            "difference",
            "speedup",
        ],
    );
    assert_eq!(v["mode"], "compare");
    for side in ["interp", "native"] {
        for f in SIDE {
            assert!(v[side].get(*f).is_some(), "{side}.{f}: {v}");
        }
    }
    // REVERT and an invalid opcode.
    let v = &json_of(&["run", "0x60006000fd", "--mode", "interp", "--json"], 0)[0];
    assert_eq!(v["status"], "revert");
    assert!(v["reason"].is_null());
    let v = &json_of(&["run", "0xfe", "--mode", "interp", "--json"], 0)[0];
    assert_eq!(v["status"], "halt");
    assert!(v["reason"].as_str().unwrap().contains("invalid"), "{v}");

    let fixture = shared_dir().join("benchdata/contracts/counter.json");
    let v = &json_of(&["run", fixture.to_str().unwrap(), "--json"], 0)[0];
    check(
        v,
        "run",
        &["fixture", "mode", "interp", "native", "identical"],
    );
    assert_eq!(v["mode"], "compare");
    hex0x(&v["native"]["state_root"]);
}

#[test]
fn compile_json_follows_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let lines = json_of(&["compile", "0x6001600055", "-o", out, "--json"], 0);
    assert_eq!(lines.len(), 1);
    let v = &lines[0];
    check(
        v,
        "compile",
        &[
            "input",
            "code_hash",
            "code_size",
            "status",
            "output",
            "artifact_size",
            "compile_ms",
            "opt_level",
            "ir_instructions",
            "error",
        ],
    );
    hex0x(&v["code_hash"]);
    assert_eq!(v["status"], "compiled");
    // Compiled here (`-o`), so each stage's time is reported, and no
    // stage took longer than the whole compile.
    let total = v["compile_ms"].as_f64().unwrap();
    for stage in [
        "analysis_ms",
        "ir_ms",
        "optimize_ms",
        "codegen_ms",
        "link_ms",
    ] {
        let ms = v[stage].as_f64();
        assert!(
            ms.is_some_and(|ms| (0.0..=total).contains(&ms)),
            "{stage}: {v}"
        );
    }
}

#[test]
fn statetest_json_follows_its_schema() {
    let add11 = shared_dir().join("testdata/state-tests/GeneralStateTests/stExample/add11.json");
    let lines = json_of(
        &[
            "statetest",
            "--no-skip",
            "-j",
            "1",
            "--json",
            add11.to_str().unwrap(),
        ],
        0,
    );
    let v = lines.last().unwrap();
    check(
        v,
        "statetest",
        &[
            "passed",
            "failed",
            "skipped",
            "vectors",
            "mode",
            "seconds",
            "native_exec_seconds",
            "native_frames",
            "compiled_contracts",
            "compile_seconds",
            "interpreted_contracts",
        ],
    );
    assert_eq!(v["mode"], "compare");
    assert_eq!(v["failed"], 0);
}

#[test]
fn sequencer_json_follows_its_schema() {
    let v = &json_of(
        &[
            "sequencer",
            "--workload",
            "weth",
            "--txs",
            "200",
            "--block-size",
            "100",
            "--accounts",
            "20",
            "--mode",
            "both",
            "--no-cache",
            "-O",
            "0",
            "--json",
        ],
        0,
    )[0];
    check(
        v,
        "sequencer",
        &[
            "workload",
            "txs",
            "blocks",
            "block_size",
            "seed",
            "accounts",
            "mode",
            "compile",
            "runs",
            "digest",
            "speedup_tps",
            "speedup_mgas",
            "identical",
            "mismatch",
        ],
    );
    assert_eq!(v["mode"], "compare");
    hex0x(&v["digest"]);
    for run in ["interp", "native"] {
        for f in [
            "txs",
            "gas",
            "secs",
            "tps",
            "mgas_per_s",
            "native_frames",
            "blocks",
        ] {
            assert!(v["runs"][run].get(f).is_some(), "runs.{run}.{f}: {v}");
        }
    }
}

#[test]
fn bench_json_follows_its_schema() {
    let contracts = shared_dir().join("benchdata/contracts");
    let v = &json_of(
        &[
            "bench",
            contracts.to_str().unwrap(),
            "--filter",
            "contracts/counter$",
            "--reps",
            "1",
            "--json",
        ],
        0,
    )[0];
    check(v, "bench", &["cases", "summary"]);
    assert_eq!(v["summary"]["cases"], 1);
}

#[test]
fn errors_are_one_json_object_with_the_exit_code() {
    let v = &json_of(&["run", "0xzz", "--json"], 2)[0];
    check(v, "error", &["error", "exit"]);
    assert_eq!(v["exit"], 2);
    let v = &json_of(&["run", "0x00", "--spec", "NOPE", "--json"], 2)[0];
    check(v, "error", &["error", "exit"]);
}
