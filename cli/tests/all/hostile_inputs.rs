//! Inputs that are not ordinary files, or are far larger than any valid
//! one: refused with exit 2, quickly, in bounded memory.

use crate::support::{assert_refused, mkfifo, run_capped};
use evmc_tests::shared_dir;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn devices_and_fifos_are_refused_where_a_file_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("code.hex");
    mkfifo(&fifo);
    let fifo_json = dir.path().join("fixture.json");
    mkfifo(&fifo_json);
    let fifo = fifo.to_str().unwrap();
    let fifo_json = fifo_json.to_str().unwrap();
    let add11 = shared_dir().join("testdata/state-tests/GeneralStateTests/stExample/add11.json");
    let add11 = add11.to_str().unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(
        &genesis,
        r#"{"alloc": {"0x00000000000000000000000000000000000000a1": {"code": "0x00"}}}"#,
    )
    .unwrap();
    let genesis = genesis.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "/dev/zero"], "character device"),
        (&["compile", "/dev/zero"], "character device"),
        (&["run", fifo, "--mode", "interp"], "FIFO"),
        (&["compile", fifo], "FIFO"),
        (&["run", fifo_json, "--mode", "interp"], "FIFO"),
        (&["statetest", "--no-skip", fifo_json], "FIFO"),
        (
            &["statetest", "--skip-file", fifo, "--mode", "interp", add11],
            "FIFO",
        ),
        (
            &["compile", genesis, "--hot", fifo, "-o", "/nonexistent"],
            "FIFO",
        ),
        (&["bench", fifo_json], "FIFO"),
    ];
    for (args, needle) in cases {
        let out = run_capped(args, DEADLINE);
        assert_refused(&out, 2, needle, &args.join(" "));
    }
}

#[test]
fn a_fifo_inside_a_state_test_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shared_dir().join("testdata/state-tests/GeneralStateTests/stExample/add11.json"),
        dir.path().join("add11.json"),
    )
    .unwrap();
    mkfifo(&dir.path().join("stuck.json"));
    let out = run_capped(
        &[
            "statetest",
            "--no-skip",
            "--mode",
            "interp",
            dir.path().to_str().unwrap(),
        ],
        DEADLINE,
    );
    assert_refused(&out, 2, "stuck.json: is a FIFO", "fifo in a directory");
}

#[test]
fn files_larger_than_any_valid_input_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: no disk space, and the refusal must not read them anyway.
    let sparse = |name: &str, len: u64| {
        let p = dir.path().join(name);
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        p.display().to_string()
    };
    let hex = sparse("huge.hex", (128 << 20) + 1);
    let fixture = sparse("huge.json", (64 << 20) + 1);
    let suite = sparse("huge-suite.json", (256 << 20) + 1);
    for args in [
        vec!["run", hex.as_str(), "--mode", "interp"],
        vec!["compile", hex.as_str()],
        vec!["run", fixture.as_str(), "--mode", "interp"],
        vec!["statetest", "--no-skip", suite.as_str()],
    ] {
        let out = run_capped(&args, DEADLINE);
        assert_refused(&out, 2, "above the limit", &args.join(" "));
    }
}

#[test]
fn run_notation_cannot_expand_past_the_total_limit() {
    // 520 bytes that expanded to 2 GB: every run within the per-run cap.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bomb.hex");
    let text = "(16000000x5b)".repeat(40);
    assert_eq!(text.len(), 520);
    std::fs::write(&f, text).unwrap();
    let f = f.to_str().unwrap();
    for args in [
        vec!["run", f, "--mode", "interp"],
        vec!["compile", f, "--emit", "analysis", "-o", "/nonexistent"],
        vec![
            "run",
            "0x00",
            "--mode",
            "interp",
            "--input",
            "(16000000x00)(16000000x00)",
        ],
    ] {
        let out = run_capped(&args, DEADLINE);
        assert_refused(&out, 2, "longer than the limit", &args.join(" "));
    }
}
