//! `evmc-native bench` end to end on a few tiny programs, with few
//! repetitions. Checks what the table reports, never how fast anything is.

use evmc_tests::shared_dir;
use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_evmc-native"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "bench failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn fixtures_with_the_rust_reference_report_speedups_targets_and_compile_data() {
    let contracts = shared_dir().join("benchdata/contracts");
    let out = bench(&[
        contracts.join("fibonacci-calldata.json").to_str().unwrap(),
        contracts.join("counter.json").to_str().unwrap(),
        "--reps",
        "3",
        "--json",
    ]);
    let doc = json_of(&out);
    let cases = doc["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["counter", "fibonacci-calldata"]);
    for c in cases {
        assert_eq!(c["group"], "contracts");
        assert!(c["divergence"].is_null(), "{c}");
        assert_eq!(c["interp"]["reps"], 3);
        assert_eq!(c["native"]["reps"], 3);
        assert!(c["speedup"].as_f64().unwrap() > 0.0);
        assert!(c["native_frames"].as_u64().unwrap() > 0);
        // Three timed runs still time the net's steady state, not its
        // first samples (each engine half the time).
        let notes = c["notes"].as_array().unwrap();
        assert!(
            notes
                .iter()
                .all(|n| !n.as_str().unwrap().contains("undecided")),
            "{c}"
        );
        assert!(!c["targets"].as_array().unwrap().is_empty());
        let contract = &c["contracts"][0];
        assert!(contract["so_bytes"].as_u64().unwrap() > 0);
        for phase in [
            "analysis_ms",
            "ir_ms",
            "optimize_ms",
            "codegen_ms",
            "link_ms",
            "load_us",
        ] {
            assert!(
                contract[phase].as_f64().is_some(),
                "{phase} missing: {contract}"
            );
        }
    }
    let fib = &cases[1];
    assert!(fib["reference"]["disagreement"].is_null(), "{fib}");
    assert!(fib["reference"]["rust"]["median_us"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["summary"]["divergences"], 0);
}

#[test]
fn evmone_inputs_and_the_table() {
    // CALLDATASIZE PUSH0 PUSH0 CALLDATACOPY CALLDATASIZE PUSH0 RETURN: echo.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("echo.bin-runtime"), "365f5f37365ff3\n").unwrap();
    std::fs::write(
        dir.path().join("echo.inputs"),
        "\nsame\n0102(3x0a)\n01020a0a0a\n\nwrong\n01\n02\n\nskipped\n03\n",
    )
    .unwrap();
    let out = bench(&[
        dir.path().to_str().unwrap(),
        "--filter",
        "same|wrong",
        "--reps",
        "2",
        "--phases",
        // Seven loop-free instructions: compiled only when asked to.
        "--min-native-run",
        "0",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{text}"))
            .to_string()
    };
    assert!(row("echo/same").contains('×'), "{text}");
    assert!(!row("echo/same").contains("differs"), "{text}");
    assert!(
        row("echo/wrong").contains("output 0x01 differs from the expected 0x02"),
        "{text}"
    );
    assert!(!text.contains("skipped"), "{text}");
    assert!(text.contains("targets:"), "{text}");
    assert!(text.contains("compile phases per contract"), "{text}");
}

#[test]
fn state_tests_are_checked_against_their_expected_results() {
    let main = shared_dir().join("benchdata/evm-benchmarks/main");
    let doc = json_of(&bench(&[
        main.to_str().unwrap(),
        "--filter",
        "structarray",
        "--reps",
        "1",
        // The net's verdict is timing, and its notes are not what this
        // checks; with it, tests running beside this one could set the
        // contract aside and add a note.
        "--no-safety-net",
        "--json",
    ]));
    let cases = doc["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["structarray_alloc/nfts_rank"]);
    assert_eq!(doc["summary"]["ipsilon_main_cases"], 1);
    for c in cases {
        assert_eq!(c["group"], "evm-benchmarks/main");
        assert_eq!(c["notes"].as_array().unwrap().len(), 0, "{c}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.bin-runtime");
    std::fs::write(&f, "60zz").unwrap();
    let out = bench(&[f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.bin-runtime") && err.contains("hex"),
        "{err}"
    );
    let out = bench(&[dir.path().to_str().unwrap(), "--filter", "("]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn loop_free_code_too_short_to_gain_stays_interpreted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("echo.bin-runtime"), "365f5f37365ff3\n").unwrap();
    std::fs::write(dir.path().join("echo.inputs"), "\nsame\n0102\n0102\n").unwrap();
    let doc = json_of(&bench(&[
        dir.path().to_str().unwrap(),
        "--reps",
        "1",
        "--json",
    ]));
    let case = &doc["cases"][0];
    let notes = case["notes"].to_string();
    assert!(
        notes.contains("stays interpreted: loop-free, at most 7 instructions"),
        "{case}"
    );
    assert_eq!(doc["summary"]["divergences"], 0);
}
