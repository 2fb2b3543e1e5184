//! `compile` into the cache from state JSON, `cache ls | verify | gc |
//! path`, concurrent processes sharing a cache, and bad input.

use evmc_tests::shared_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evmc-native"));
    // Never touch the developer's real cache.
    c.env("EVMC_NATIVE_CACHE", "/nonexistent/evmc-native-test-cache");
    c
}

fn fixture(name: &str) -> PathBuf {
    let p = shared_dir().join("benchdata/contracts").join(name);
    assert!(p.is_file(), "missing {}", p.display());
    p
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn compile(cache: &Path, inputs: &[&Path]) -> Command {
    let mut c = bin();
    c.arg("compile")
        .args(inputs)
        .arg("--json")
        .arg("--cache-dir")
        .arg(cache);
    c
}

fn cache_cmd(cache: &Path, args: &[&str]) -> Output {
    bin()
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .unwrap()
}

#[test]
fn state_json_compiles_into_the_cache_and_cache_commands_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (counter, push0) = (fixture("counter.json"), fixture("push0_proxy.json"));
    let out = ok(compile(&cache, &[&counter, &push0]).output().unwrap());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "one contract with code in each fixture");
    for l in &lines {
        assert_eq!(l["status"], "compiled", "{l}");
        assert_eq!(
            l["addresses"][0],
            "0xcccccccccccccccccccccccccccccccccccccccc"
        );
        assert!(Path::new(l["output"].as_str().unwrap()).starts_with(&cache));
    }
    // Second time: hits.
    let out = ok(compile(&cache, &[&counter, &push0]).output().unwrap());
    assert!(json_lines(&out).iter().all(|l| l["status"] == "cached"));
    // Human output: a table and a summary.
    let out = ok(bin()
        .arg("compile")
        .arg(&counter)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 contracts: 0 compiled, 1 cached"), "{text}");

    let ls = json_lines(&ok(cache_cmd(&cache, &["ls", "--json"])));
    assert_eq!(ls.len(), 2);
    assert!(ls.iter().all(|e| e["manifest"]["key"]["spec"] == "Osaka"));
    let text = String::from_utf8_lossy(&ok(cache_cmd(&cache, &["ls"])).stdout).to_string();
    assert!(text.contains("2 entries"), "{text}");

    let v = &json_lines(&ok(cache_cmd(&cache, &["verify", "--json"])))[0];
    assert_eq!(
        (v["checked"].as_u64(), v["ok"].as_u64()),
        (Some(2), Some(2))
    );

    let path = ok(cache_cmd(&cache, &["path"]));
    assert_eq!(
        String::from_utf8_lossy(&path.stdout).trim(),
        cache.display().to_string()
    );

    // A damaged entry: verify says so on stderr, exits 1, moves it aside.
    let victim = PathBuf::from(ls[0]["path"].as_str().unwrap()).join("artifact.so");
    let mut b = std::fs::read(&victim).unwrap();
    b[100] ^= 1;
    // Published read-only: replaced, as whoever can write the directory can.
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(&victim, b).unwrap();
    let out = cache_cmd(&cache, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: cache entry") && err.contains("content hash"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(cache.join("quarantine")).unwrap().count(),
        1
    );

    // gc: quarantine first, then everything above the size limit.
    let g = &json_lines(&ok(cache_cmd(&cache, &["gc", "--json"])))[0];
    assert_eq!(
        (
            g["removed_quarantined"].as_u64(),
            g["kept_entries"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let g = &json_lines(&ok(cache_cmd(&cache, &["gc", "--max-size", "0", "--json"])))[0];
    assert_eq!(
        (g["removed_entries"].as_u64(), g["kept_entries"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(json_lines(&ok(cache_cmd(&cache, &["ls", "--json"]))).is_empty());
}

#[test]
fn damaged_entry_is_warned_about_and_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let counter = fixture("counter.json");
    let out = ok(compile(&cache, &[&counter]).output().unwrap());
    let so = PathBuf::from(json_lines(&out)[0]["output"].as_str().unwrap());
    std::fs::remove_file(&so).unwrap();
    std::fs::write(&so, b"\x7fELF garbage").unwrap();
    let out = ok(compile(&cache, &[&counter]).output().unwrap());
    assert_eq!(json_lines(&out)[0]["status"], "compiled");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: cache entry") && err.contains("quarantine"),
        "{err}"
    );
}

#[test]
fn default_cache_dir_follows_the_environment() {
    let path = |envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_evmc-native"));
        c.args(["cache", "path"])
            .env_remove("EVMC_NATIVE_CACHE")
            .env_remove("XDG_CACHE_HOME");
        for (k, v) in envs {
            c.env(k, v);
        }
        String::from_utf8_lossy(&ok(c.output().unwrap()).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(
        path(&[("EVMC_NATIVE_CACHE", "/x/y"), ("XDG_CACHE_HOME", "/a")]),
        "/x/y"
    );
    assert_eq!(path(&[("XDG_CACHE_HOME", "/a")]), "/a/evmc-native");
    assert_eq!(path(&[("HOME", "/home/u")]), "/home/u/.cache/evmc-native");
}

#[test]
fn processes_compiling_the_same_contracts_at_once_end_with_one_entry_each() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (counter, push0) = (fixture("counter.json"), fixture("push0_proxy.json"));
    let procs: Vec<_> = (0..3)
        .map(|_| {
            compile(&cache, &[&counter, &push0])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        ok(p.wait_with_output().unwrap());
    }
    assert_eq!(std::fs::read_dir(cache.join("entries")).unwrap().count(), 2);
    let v = &json_lines(&ok(cache_cmd(&cache, &["verify", "--json"])))[0];
    assert_eq!(v["ok"].as_u64(), Some(2));
}

const GENESIS: &str = r#"{"config": {"chainId": 1}, "alloc": {
  "0x00000000000000000000000000000000000000a1": {"balance": "0x0", "code": "0x600160005500"},
  "00000000000000000000000000000000000000a2": {"balance": "0x0", "code": "0x600260005500"},
  "0x00000000000000000000000000000000000000a3": {"balance": "0x0", "code": "0x600360005500"},
  "0x00000000000000000000000000000000000000a4": {"balance": "0x1"}
}}"#;

#[test]
fn hot_list_selects_contracts_by_address_or_code_hash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, GENESIS).unwrap();
    let hash_a3 = format!(
        "{:#x}",
        evmc_compiler::code_hash(&hex::decode("600360005500").unwrap())
    );
    let hot = dir.path().join("hot.txt");
    std::fs::write(
        &hot,
        format!("# hot contracts\n0x00000000000000000000000000000000000000A1\n\n{hash_a3}  # by code\n0x00000000000000000000000000000000000000ff\n"),
    )
    .unwrap();
    let out = ok(compile(&cache, &[&genesis])
        .arg("--hot")
        .arg(&hot)
        .output()
        .unwrap());
    let lines = json_lines(&out);
    let mut got: Vec<&str> = lines
        .iter()
        .map(|l| l["addresses"][0].as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "0x00000000000000000000000000000000000000a1",
            "0x00000000000000000000000000000000000000a3"
        ]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 3 entries match no contract"), "{err}");

    // Without --hot, all three contracts; the account without code is skipped.
    let out = ok(compile(&cache, &[&genesis]).output().unwrap());
    assert_eq!(json_lines(&out).len(), 3);
}

#[test]
fn bad_state_files_and_hot_lists_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cases = [
        ("not-state.json", r#"{"x": {"post": {}}}"#, "no `pre`"),
        ("broken.json", r#"{"alloc": {"#, "not valid JSON"),
        (
            "bad-addr.json",
            r#"{"alloc": {"0x12": {"code": "0x00"}}}"#,
            "not an address",
        ),
        (
            "bad-code.json",
            r#"{"alloc": {"0x00000000000000000000000000000000000000a1": {"code": "0xzz"}}}"#,
            "invalid hex",
        ),
        (
            "no-code.json",
            r#"{"alloc": {"0x00000000000000000000000000000000000000a1": {"balance": "0x1"}}}"#,
            "no account with code",
        ),
    ];
    for (name, text, needle) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        let out = compile(&cache, &[&f]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    }
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, GENESIS).unwrap();
    let hot = dir.path().join("hot.txt");
    std::fs::write(
        &hot,
        "0x00000000000000000000000000000000000000a1\nnot-a-hash\n",
    )
    .unwrap();
    let out = compile(&cache, &[&genesis])
        .arg("--hot")
        .arg(&hot)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hot.txt:2") && err.contains("not-a-hash"),
        "{err}"
    );
}

#[test]
fn unusable_cache_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let out = compile(&file.join("cache"), &[&fixture("counter.json")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain-file/cache") && err.contains("not usable"),
        "{err}"
    );
}

/// Runs `evmc-native ARGS` as `nobody` (root ignores permission bits).
fn as_nobody(args: &[&str], cache: &Path) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = bin();
    c.args(args).arg("--cache-dir").arg(cache);
    // SAFETY: async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn a_read_only_cache_is_listed_verified_and_used_but_not_written() {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        // Needs root to become `nobody`, who cannot write root's files.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(compile(&cache, &[&fixture("counter.json")])
        .output()
        .unwrap());
    // Readable by all, writable by none but root.
    let chmod = |mode: &str, path: &Path| {
        assert!(Command::new("chmod")
            .args(["-R", mode])
            .arg(path)
            .status()
            .unwrap()
            .success());
    };
    chmod("a+rX,a-w", dir.path());

    let out = ok(as_nobody(&["cache", "ls", "--json"], &cache));
    assert_eq!(json_lines(&out).len(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("read-only").count(), 1, "one warning: {err}");
    let out = ok(as_nobody(&["cache", "verify", "--json"], &cache));
    let v = &json_lines(&out)[0];
    assert_eq!(
        (v["checked"].as_u64(), v["ok"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["read_only"], true);
    // A hit is served; compiling anything new fails, clearly.
    let counter = fixture("counter.json");
    let out = ok(as_nobody(
        &["compile", counter.to_str().unwrap(), "--json"],
        &cache,
    ));
    assert_eq!(json_lines(&out)[0]["status"], "cached");
    let out = as_nobody(&["cache", "gc"], &cache);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("read-only") && err.contains("gc cannot"),
        "{err}"
    );
    chmod("u+w", dir.path());
}

/// After an upgrade: `cache ls` marks the entries of another compiler
/// build and names this binary's, `run` does not use them, `cache gc`
/// keeps them and `cache gc --other-builds` removes exactly them. The old
/// build is simulated by rewriting a manifest.
#[test]
fn gc_other_builds_removes_the_entries_of_other_compiler_builds() {
    use evmc_runtime::cache::Manifest;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(compile(&cache, &[&fixture("counter.json")])
        .output()
        .unwrap());
    let ls = json_lines(&ok(cache_cmd(&cache, &["ls", "--json"])));
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0]["other_build"], false);
    let current = PathBuf::from(ls[0]["path"].as_str().unwrap());
    let mut m =
        Manifest::from_json(&std::fs::read(current.join("manifest.json")).unwrap()).unwrap();
    m.key.compiler_version = "evmc-0000000000000000".into();
    let old = cache.join("entries").join(m.key.digest_hex());
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(old.join("manifest.json"), m.to_json()).unwrap();
    std::fs::copy(current.join("artifact.so"), old.join("artifact.so")).unwrap();

    let text = String::from_utf8_lossy(&ok(cache_cmd(&cache, &["ls"])).stdout).to_string();
    assert!(text.contains("evmc-0000000000000000"), "{text}");
    assert_eq!(text.matches("(other build)").count(), 1, "{text}");
    let this_build = format!(
        "this binary's compiler build id: {}",
        evmc_compiler::COMPILER_BUILD_ID
    );
    assert!(text.contains(&this_build), "{text}");
    assert!(text.contains("1 entries of other builds"), "{text}");

    // Only the old entry left: `run` compiles, it does not load it.
    std::fs::remove_dir_all(&current).unwrap();
    let out = ok(bin()
        .args(["-v", "run"])
        .arg(fixture("counter.json"))
        .args(["--mode", "native", "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("compiled into the artifact cache"), "{err}");
    assert!(!err.contains("refused"), "{err}");
    assert!(current.is_dir());

    let g = &json_lines(&ok(cache_cmd(&cache, &["gc", "--json"])))[0];
    assert_eq!(g["removed_entries"], 0, "{g}");
    assert!(old.exists());
    let g = &json_lines(&ok(cache_cmd(&cache, &["gc", "--other-builds", "--json"])))[0];
    assert_eq!(
        (&g["removed_other_builds"], &g["kept_entries"]),
        (&1.into(), &1.into()),
        "{g}"
    );
    assert!(!old.exists() && current.is_dir());
    let text = String::from_utf8_lossy(&ok(cache_cmd(&cache, &["ls"])).stdout).to_string();
    assert!(!text.contains("other build"), "{text}");
}
