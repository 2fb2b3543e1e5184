//! Numeric flags out of range are usage errors naming the flag (exit 2),
//! never a panic and never silently adjusted.

use crate::support::{assert_refused, run_capped};
use std::time::Duration;

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_numeric_flag_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("echo.bin-runtime"), "365f5f37365ff3\n").unwrap();
    let bench_dir = dir.path().to_str().unwrap();
    // Small, quick runs: should a flag slip through, the command ends soon.
    let seq = |flag: &str, value: &str| {
        let base = [
            "sequencer",
            "--workload",
            "weth",
            "--mode",
            "interp",
            "--no-cache",
        ];
        let mut v = strings(&base);
        if flag != "--txs" {
            v.extend(strings(&["--txs", "10"]));
        }
        // `--flag=value`: a negative value would be taken for a flag.
        v.push(format!("{flag}={value}"));
        (v, flag.to_string())
    };
    let bench = |flag: &str, value: &str| {
        let mut v = strings(&["bench", bench_dir, &format!("{flag}={value}")]);
        if flag != "--reps" {
            v.extend(strings(&["--reps", "1"]));
        }
        (v, flag.to_string())
    };
    let other = |parts: &[&str], flag: &str| (strings(parts), flag.to_string());

    let mut cases = Vec::new();
    for bad in ["inf", "1e30", "NaN", "0", "-1"] {
        cases.push(seq("--compile-time-cap", bad));
    }
    for (flag, bad) in [
        ("--accounts", "0"),
        ("--jobs", "0"),
        ("--txs", "0"),
        ("--txs", "18446744073709551615"),
        ("--block-size", "0"),
        ("--hot-calls", "0"),
        ("--opt-level", "9"),
        ("--seed", "-1"),
    ] {
        cases.push(seq(flag, bad));
    }
    for bad in ["1e300", "inf", "0", "-0.5"] {
        let arg = format!("--timeout={bad}");
        cases.push(other(&["compile", "0x00", &arg], "--timeout"));
    }
    cases.push(other(&["compile", "0x00", "-O", "4"], "--opt-level"));
    cases.push(other(
        &["compile", "0x00", "--max-code-size", "0"],
        "--max-code-size",
    ));
    cases.push(other(
        &["run", "0x00", "--mode", "interp", "-O", "9"],
        "--opt-level",
    ));
    cases.push(other(
        &["run", "0x00", "--mode", "interp", "--gas=-5"],
        "--gas",
    ));
    cases.push(other(
        &["statetest", "--jobs", "0", "/nonexistent"],
        "--jobs",
    ));
    cases.push(bench("-j", "0"));
    cases.push(bench("--budget-ms", "0"));
    cases.push(bench("--reps", "0"));
    cases.push(bench("--max-code-size", "0"));
    for (args, flag) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_capped(&args, Duration::from_secs(120));
        // `-j` is reported by its long name.
        let flag = if flag == "-j" { "--jobs" } else { flag };
        assert_refused(&out, 2, flag, &args.join(" "));
    }
}
