//! `--cache-dir` (and `$EVMC_NATIVE_CACHE`) on `run`, `statetest` and
//! `bench`: a first run compiles into the cache, a second one loads from
//! it; without either, nothing is written outside the run's temporary
//! directory.

use evmc_tests::shared_dir;
use std::path::Path;
use std::process::{Command, Output};

/// `evmc-native ARGS` with no cache in the environment and a private home,
/// so that a write to a default cache location would show.
fn bin(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evmc-native"));
    c.env_remove("EVMC_NATIVE_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home);
    c
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The code hashes of the cache's entries, sorted.
fn entries(home: &Path, cache: &Path) -> Vec<String> {
    let out = ok(
        bin(home)
            .args(["cache", "ls", "--json", "--cache-dir"])
            .arg(cache)
            .output()
            .unwrap(),
        "cache ls",
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            e["manifest"]["key"]["code_hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// How many contracts the run says it compiled into, and loaded from, the
/// cache (its `-v` log).
fn compiled_and_loaded(out: &Output) -> (usize, usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        stderr.matches("compiled into the artifact cache").count(),
        stderr.matches("loaded from the artifact cache").count(),
    )
}

/// Nothing under the private home: the default cache was not used.
fn assert_home_untouched(home: &Path) {
    let left: Vec<_> = std::fs::read_dir(home).unwrap().collect();
    assert!(left.is_empty(), "written under HOME: {left:?}");
}

#[test]
fn run_compiles_into_the_cache_dir_then_loads_from_it() {
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let code = "0x600160020160005260206000f3";
    let run = |with_cache: bool| {
        let mut c = bin(home.path());
        c.args(["-v", "run", code, "--mode", "compare", "--json"]);
        if with_cache {
            c.arg("--cache-dir").arg(cache.path());
        }
        ok(c.output().unwrap(), "run")
    };
    let native_frames = |out: &Output| {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["identical"], true, "{v}");
        v["native"]["native_frames"].as_u64().unwrap()
    };

    // Without the flag: compiled natively, no cache anywhere.
    let out = run(false);
    assert!(native_frames(&out) > 0);
    assert_eq!(compiled_and_loaded(&out), (0, 0));
    assert_home_untouched(home.path());

    let out = run(true);
    assert!(native_frames(&out) > 0);
    assert_eq!(compiled_and_loaded(&out), (1, 0));
    let listed = entries(home.path(), cache.path());
    assert_eq!(listed.len(), 1, "{listed:?}");

    let out = run(true);
    assert!(native_frames(&out) > 0);
    assert_eq!(compiled_and_loaded(&out), (0, 1));
    assert_eq!(entries(home.path(), cache.path()), listed);

    // The environment variable names the same cache.
    let out = ok(
        bin(home.path())
            .args(["-v", "run", code, "--mode", "native"])
            .env("EVMC_NATIVE_CACHE", cache.path())
            .output()
            .unwrap(),
        "run with EVMC_NATIVE_CACHE",
    );
    assert_eq!(compiled_and_loaded(&out), (0, 1));
    assert_home_untouched(home.path());
}

#[test]
fn run_of_a_fixture_uses_the_cache_dir() {
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let fixture = shared_dir().join("benchdata/contracts/counter.json");
    assert!(fixture.is_file(), "missing {}", fixture.display());
    let run = || {
        ok(
            bin(home.path())
                .args(["-v", "run"])
                .arg(&fixture)
                .args(["--mode", "compare", "--cache-dir"])
                .arg(cache.path())
                .output()
                .unwrap(),
            "run fixture",
        )
    };
    assert_eq!(compiled_and_loaded(&run()), (1, 0));
    assert_eq!(compiled_and_loaded(&run()), (0, 1));
    assert_eq!(entries(home.path(), cache.path()).len(), 1);
}

#[test]
fn statetest_compiles_into_the_cache_dir_then_loads_from_it() {
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let file = shared_dir().join("testdata/state-tests/GeneralStateTests/stExample/add11.json");
    assert!(file.is_file(), "missing {}", file.display());
    let statetest = |extra: &[&str]| {
        bin(home.path())
            .args(["-v", "statetest", "--mode", "compare", "--no-skip"])
            .args(extra)
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = ok(statetest(&[]), "statetest");
    assert_eq!(compiled_and_loaded(&out), (0, 0));
    assert_home_untouched(home.path());

    let dir = cache.path().to_str().unwrap();
    let out = ok(statetest(&["--cache-dir", dir]), "statetest, cold cache");
    let (compiled, loaded) = compiled_and_loaded(&out);
    assert!(compiled > 0 && loaded == 0, "{compiled} {loaded}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 failed"));
    assert_eq!(entries(home.path(), cache.path()).len(), compiled);

    let out = ok(statetest(&["--cache-dir", dir]), "statetest, warm cache");
    assert_eq!(compiled_and_loaded(&out), (0, compiled));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 failed"));

    // Plain files and the cache are two different places.
    let out = statetest(&["--cache-dir", dir, "--artifacts-dir", dir]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bench_compiles_into_the_cache_dir_then_loads_from_it() {
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let fixture = shared_dir().join("benchdata/contracts/counter.json");
    assert!(fixture.is_file(), "missing {}", fixture.display());
    let bench = |with_cache: bool| {
        let mut c = bin(home.path());
        c.arg("bench").arg(&fixture).args(["--reps", "2", "--json"]);
        if with_cache {
            c.arg("--cache-dir").arg(cache.path());
        }
        let out = ok(c.output().unwrap(), "bench");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let case = &doc["cases"][0];
        assert!(case["divergence"].is_null(), "{case}");
        assert!(case["native_frames"].as_u64().unwrap() > 0, "{case}");
        case["contracts"][0].clone()
    };

    let c = bench(false);
    assert_eq!(c["cached"], false, "{c}");
    assert_home_untouched(home.path());

    let c = bench(true);
    assert_eq!(c["cached"], false, "{c}");
    assert!(c["analysis_ms"].as_f64().is_some(), "{c}");
    let listed = entries(home.path(), cache.path());
    assert_eq!(listed, [c["code_hash"].as_str().unwrap()]);

    let c = bench(true);
    assert_eq!(c["cached"], true, "{c}");
    // Phases are not known of a contract this run did not compile; its
    // compile time is the one the entry recorded.
    assert!(c["analysis_ms"].is_null(), "{c}");
    assert!(c["compile_ms"].as_f64().unwrap() > 0.0, "{c}");
    assert!(c["load_us"].as_f64().is_some(), "{c}");
    assert_eq!(entries(home.path(), cache.path()), listed);
}
