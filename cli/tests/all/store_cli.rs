//! Artefacts shared between machines: reproducible bytes, and the remote
//! store tier driven through the CLI.

use evmc_tests::shared_dir;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_evmc-native")
}

/// Compiles every contract of the benchmark fixtures into `out`, from the
/// working and temporary directories under `root`, on `cpus` CPUs (the
/// compile's default thread count follows the process's CPU affinity).
/// Returns each artefact's file name and bytes.
fn compile_all(root: &Path, cpus: usize) -> BTreeMap<String, Vec<u8>> {
    let work = root.join("work");
    let tmp = root.join("tmp");
    let out = root.join("out");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let mut inputs: Vec<_> = std::fs::read_dir(shared_dir().join("benchdata/contracts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    inputs.sort();
    let mut cmd = Command::new(bin());
    cmd.arg("compile")
        .arg("--json")
        .arg("-o")
        .arg(&out)
        .args(&inputs)
        .current_dir(&work)
        .env("TMPDIR", &tmp)
        .env("EVMC_NATIVE_CACHE", root.join("cache"));
    // SAFETY: only an async-signal-safe system call between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in 0..cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            // On a one-CPU machine asking for two fails: both runs then
            // use one thread, which the assertion below reports.
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "compile failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_dir(&out)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The same key gives the same bytes in any process: two compiles of every
/// benchmark contract, in different directories and with one and two
/// compile threads, produce byte-identical artefacts.
#[test]
fn artefacts_are_reproducible_across_processes_and_threads() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let one = compile_all(a.path(), 1);
    let two = compile_all(b.path(), 2.min(cores));
    assert!(one.len() > 20, "only {} artefacts", one.len());
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    let differing: Vec<_> = one
        .iter()
        .filter(|(name, bytes)| two[*name] != **bytes)
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        differing.is_empty(),
        "artefacts differ between the two compiles: {differing:?}"
    );
    if cores < 2 {
        eprintln!("note: one CPU only; both compiles used one thread");
    }
}

/// An S3-compatible server (s3s-fs, installed by `scripts/s3-server.sh`)
/// on a free port with one bucket, `evmc`; stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("install")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing the S3 server failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("evmc")).unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "evmc", "--secret-key", "evmc-secret"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed().as_secs() < 20, "S3 server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `evmc-native ARGS` against the S3 endpoint; stdout parsed as JSON.
fn node(endpoint: &str, args: &[&str]) -> (serde_json::Value, String) {
    let o = Command::new(bin())
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "evmc")
        .env("AWS_SECRET_ACCESS_KEY", "evmc-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .env_remove("EVMC_SIGN_KEY")
        .env_remove("EVMC_TRUSTED_KEYS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{args:?} failed: {stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().unwrap_or("null");
    (
        serde_json::from_str(last).unwrap_or(serde_json::Value::Null),
        stderr,
    )
}

/// Node A runs hot and publishes to the store; node B, with a fresh cache
/// and the same store, trusts A's key and runs natively from block 1
/// without compiling anything. Then the store is verified, and a node
/// whose store is down still runs and compiles locally, with a warning.
#[test]
fn standby_starts_hot_from_the_store() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("publisher.key");
    let key_s = key.to_str().unwrap();
    let (keygen, _) = node(&s3.endpoint, &["cache", "keygen", key_s, "--json"]);
    let public = keygen["public_key"].as_str().unwrap().to_string();
    let dir = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let seq = |cache: &str| {
        vec![
            "sequencer".to_string(),
            "--mode=hot".into(),
            "--workload=mixed".into(),
            "--txs=2000".into(),
            "--block-size=200".into(),
            "--hot-calls=1".into(),
            "--json".into(),
            "--store=s3://evmc/nodes".into(),
            format!("--cache-dir={cache}"),
        ]
    };
    let mut a_args = seq(&dir("a"));
    a_args.extend(["--sign-key".into(), key_s.into()]);
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let (a, _) = node(&s3.endpoint, &a_args);
    let contracts = a["compile"]["contracts"].as_array().unwrap().len();
    assert!(contracts >= 4, "{a}");

    let mut b_args = seq(&dir("b"));
    b_args.extend(["--trust-key".into(), public.clone()]);
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let (b, stderr) = node(&s3.endpoint, &b_args);
    assert_eq!(b["first_native_block"], 1, "{b}\n{stderr}");
    assert_eq!(b["store_warm_up"]["fetched"], contracts, "{b}");
    for c in b["compile"]["contracts"].as_array().unwrap() {
        assert_eq!(c["status"], "cached", "compiled on the standby: {c}");
    }
    eprintln!(
        "standby warm-up: {} artefacts in {} s",
        contracts, b["store_warm_up"]["secs"]
    );

    let (_, _) = node(
        &s3.endpoint,
        &[
            "cache",
            "verify",
            "--store=s3://evmc/nodes",
            "--trust-key",
            &public,
            "--cache-dir",
            &dir("c"),
        ],
    );

    // Store down: runs anyway, with one warning naming the store.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut d_args = seq(&dir("d"));
    d_args.extend(["--trust-key".into(), public]);
    let d_args: Vec<&str> = d_args.iter().map(String::as_str).collect();
    let start = std::time::Instant::now();
    let (d, stderr) = node(&closed, &d_args);
    assert!(start.elapsed().as_secs() < 120);
    // Compiled locally (the run may end before they are registered).
    for c in d["compile"]["contracts"].as_array().unwrap() {
        assert_eq!(c["status"], "ready", "{c}");
    }
    assert!(stderr.contains("s3://evmc/nodes"), "{stderr}");
}
