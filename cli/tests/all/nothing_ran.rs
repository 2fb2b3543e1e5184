//! Checks that ran nothing have not passed: a CI pointed at a wrong path,
//! or a filter or skip list that leaves nothing, must not go green.

use crate::support::{assert_refused, run_capped};
use evmc_tests::shared_dir;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

fn add11() -> String {
    shared_dir()
        .join("testdata/state-tests/GeneralStateTests/stExample/add11.json")
        .display()
        .to_string()
}

#[test]
fn statetest_without_any_vector_fails_and_says_why() {
    let empty = tempfile::tempdir().unwrap();
    let no_json = tempfile::tempdir().unwrap();
    std::fs::write(no_json.path().join("README.txt"), "not a test").unwrap();
    let skip = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(skip.path(), "add11.json\n").unwrap();
    let add11 = add11();
    let cases: &[(&[&str], &str)] = &[
        (
            &["statetest", "--no-skip", empty.path().to_str().unwrap()],
            "no state-test files",
        ),
        (
            &["statetest", "--no-skip", no_json.path().to_str().unwrap()],
            "no state-test files",
        ),
        (
            &["statetest", "--no-skip", "--filter", "no-such-test", &add11],
            "--filter `no-such-test`",
        ),
        (
            &[
                "statetest",
                "--mode",
                "interp",
                "--skip-file",
                skip.path().to_str().unwrap(),
                &add11,
            ],
            "on the skip list",
        ),
    ];
    for (args, needle) in cases {
        let out = run_capped(args, DEADLINE);
        assert_refused(&out, 1, needle, &args.join(" "));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no vector ran"));
    }
}

#[test]
fn bench_where_every_transaction_is_rejected_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("echo.bin-runtime"), "365f5f37365ff3\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run_capped(&["bench", d, "--gas", "0", "--reps", "1"], DEADLINE);
    assert_refused(&out, 1, "every transaction was rejected", "bench --gas 0");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 rejected"));
    // Enough gas: measured, and fine.
    let out = run_capped(&["bench", d, "--reps", "1"], DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
