//! `evmc-native run CODE`: code above the compile limit, the post-state
//! comparison, rejected transactions and the JSON shape.

use crate::support::{assert_refused, json_lines, run_capped};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = run_capped(args, DEADLINE);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "one object expected: {lines:?}");
    lines.into_iter().next().unwrap()
}

#[test]
fn code_over_the_compile_limit_runs_interpreted_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.hex");
    std::fs::write(&f, format!("{}00", "5b".repeat(24 * 1024 + 1))).unwrap();
    let f = f.to_str().unwrap();

    let out = run_capped(&["run", f, "--mode", "both"], DEADLINE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?} {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("interpreted, not compiled: too large"),
        "{stdout}"
    );
    assert!(stdout.contains("both interpreted"), "{stdout}");

    let v = ok_json(&["run", f, "--mode", "both", "--json"]);
    assert_eq!(v["identical"], true, "{v}");
    assert_eq!(v["native"]["compiled"], false, "{v}");
    assert!(v["native"]["not_compiled"]
        .as_str()
        .unwrap()
        .contains("compile limit"));
    assert_eq!(v["interp"]["gas_used"], v["native"]["gas_used"]);

    let v = ok_json(&["run", f, "--mode", "native", "--json"]);
    assert_eq!(v["mode"], "native");
    assert_eq!(v["status"], "success");
    assert_eq!(v["reason"], "stop");
    assert_eq!(v["compiled"], false);
}

#[test]
fn both_modes_compare_and_report_the_post_state() {
    // SSTORE(0, 1); SSTORE(1, CALLVALUE = 0) leaves slot 1 as it was.
    let v = ok_json(&["run", "0x600160005534600155", "--mode", "both", "--json"]);
    assert_eq!(v["mode"], "compare");
    assert_eq!(v["identical"], true, "{v}");
    assert!(v["difference"].is_null());
    assert!(v["speedup"].as_f64().unwrap() > 0.0);
    for side in ["interp", "native"] {
        let state = v[side]["state"].as_array().unwrap();
        let target = state
            .iter()
            .find(|a| {
                a["address"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case("0xcccccccccccccccccccccccccccccccccccccccc")
            })
            .unwrap_or_else(|| panic!("{side}: target not in {state:?}"));
        assert_eq!(
            target["storage"],
            serde_json::json!({"0x0": "0x1"}),
            "{side}"
        );
    }
    assert_eq!(v["interp"]["state"], v["native"]["state"]);
    assert!(v["native"]["native_frames"].as_u64().unwrap() >= 1);

    let out = run_capped(&["run", "0x600160005500", "--mode", "both"], DEADLINE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("1 slots written"), "{stdout}");
    assert!(stdout.contains("post-state"), "{stdout}");
}

#[test]
fn a_gas_limit_below_the_intrinsic_cost_is_bad_input() {
    for mode in ["interp", "native", "both"] {
        let out = run_capped(&["run", "0x00", "--gas", "100", "--mode", mode], DEADLINE);
        assert_refused(&out, 2, "CallGasCostMoreThanGasLimit", mode);
    }
}

#[test]
fn json_failures_end_stdout_with_an_error_object() {
    let cases: &[(&[&str], i64)] = &[
        (
            &["run", "0x00", "--gas", "100", "--mode", "interp", "--json"],
            2,
        ),
        (&["run", "0x00", "-O", "9", "--json"], 2),
        (&["compile", "0x6g", "--json"], 2),
        (&["statetest", "/nonexistent/dir", "--json"], 2),
        (
            &["cache", "ls", "--cache-dir", "/dev/null/cache", "--json"],
            1,
        ),
    ];
    for (args, code) in cases {
        let out = run_capped(args, DEADLINE);
        assert_eq!(out.status.code(), Some(*code as i32), "{args:?}");
        let lines = json_lines(&out);
        let last = lines
            .last()
            .unwrap_or_else(|| panic!("{args:?}: nothing on stdout"));
        assert_eq!(last["exit"], *code, "{args:?}: {last}");
        assert!(
            last["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{args:?}: {last}"
        );
    }
}
