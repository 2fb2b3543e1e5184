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
