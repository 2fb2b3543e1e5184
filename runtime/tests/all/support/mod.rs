//! Shared by the cache tests: a real contract fixture, a cache holding its
//! compiled contract (built once per test binary, copied per test), and the
//! check that a contract whose cache entry is refused still runs exactly as
//! the interpreter runs it.
#![allow(dead_code)]

use evmc_compiler::{CompileOptions, SpecId, B256};
use evmc_harness::fixture::{load_fixtures, run_fixture, Fixture};
use evmc_interface::{ArtifactMetadata, METADATA_MAGIC};
use evmc_runtime::loader::Expect;
use evmc_runtime::{ArtifactCache, Registry};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

pub(crate) const SPEC: SpecId = SpecId::OSAKA;
pub(crate) const OPT: u8 = 2;

pub(crate) use evmc_harness::shared_dir;

/// The `counter` contract fixture: one small contract called once.
pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = shared_dir().join("benchdata/contracts/counter.json");
        let mut v = load_fixtures(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len(), 1, "{}", path.display());
        v.remove(0)
    })
}

pub(crate) fn contract() -> Vec<u8> {
    let codes: Vec<_> = fixture().codes().collect();
    assert_eq!(codes.len(), 1);
    codes[0].to_vec()
}

pub(crate) fn code_hash() -> B256 {
    evmc_compiler::code_hash(&contract())
}

pub(crate) fn opts() -> CompileOptions {
    let mut o = CompileOptions::new(SPEC);
    o.opt_level = OPT;
    o
}

/// A cache directory holding the fixture's compiled contract, compiled
/// once; every call returns a fresh private copy.
pub(crate) fn cache_with_contract() -> (tempfile::TempDir, ArtifactCache) {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path()).unwrap();
        cache.get_or_compile(&contract(), &opts()).unwrap();
        dir
    });
    let dir = tempfile::tempdir().unwrap();
    copy_tree(template.path(), dir.path());
    let cache = ArtifactCache::open(dir.path()).unwrap();
    (dir, cache)
}

pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The directory of the contract's entry.
pub(crate) fn entry_dir(cache: &ArtifactCache) -> PathBuf {
    cache
        .dir()
        .join("entries")
        .join(cache.host_key(code_hash(), SPEC, OPT).unwrap().digest_hex())
}

/// Replaces a file's content, as someone who can write the directory
/// would: published artifacts are read-only, so the file is replaced.
pub(crate) fn overwrite(path: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}

/// Rewrites the entry's manifest to pin the artifact as it is now, as an
/// attacker who can write the whole cache would: only the loader's checks
/// stand between these bytes and running them.
pub(crate) fn repin(cache: &ArtifactCache) {
    let dir = entry_dir(cache);
    let bytes = std::fs::read(dir.join("artifact.so")).unwrap();
    let mpath = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["artifact_blake3"] = evmc_runtime::cache::manifest::blake3_hex(&bytes).into();
    m["artifact_xxh3"] = evmc_runtime::cache::manifest::content_hash_hex(&bytes).into();
    m["artifact_size"] = bytes.len().into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
}

/// Looks the contract up in `cache` the way a node would and runs the
/// fixture with whatever it got; returns the number of native frames.
/// Asserts the outcome is exactly the interpreter's.
pub(crate) fn run_through_cache(cache: &ArtifactCache) -> u64 {
    let f = fixture();
    let registry = Registry::new();
    if let Some(art) = cache.get(code_hash(), SPEC, OPT).unwrap() {
        registry.register(SPEC, art).unwrap();
    }
    let pre = f.pre_state();
    let interp = run_fixture(f, &pre, SPEC, None);
    let got = run_fixture(f, &pre, SPEC, Some(&Arc::clone(&registry)));
    assert!(interp.result.is_ok(), "{:?}", interp.result);
    assert_eq!(got.exact(), interp.exact(), "differs from the interpreter");
    got.native_frames
}

/// Asserts one refusal was recorded, with `needle` in its reason, that the
/// entry was moved to quarantine with a reason file, and that the contract
/// then ran interpreted, exactly.
pub(crate) fn assert_refused(cache: &ArtifactCache, needle: &str) {
    let frames = run_through_cache(cache);
    assert_eq!(frames, 0, "a refused artifact ran");
    let rejections = cache.take_rejections();
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    let r = &rejections[0];
    assert!(
        r.reason.contains(needle),
        "reason `{}` does not mention `{needle}`",
        r.reason
    );
    let moved = r.moved_to.as_ref().expect("moved aside");
    let reason = std::fs::read_to_string(moved.join("reason.txt")).unwrap();
    assert!(reason.contains(needle), "{reason}");
    assert!(!entry_dir(cache).exists(), "entry still in place");
}

/// Runs the test `name` of the module `module` (its `module_path!()`)
/// again, alone, in a child of this test binary with `env` set and the
/// command shaped by `configure` (limits set before `exec`, say); asserts
/// that the child ran that test and it passed. The test tells the two runs
/// apart by `env`.
pub(crate) fn rerun_in_child(
    module: &str,
    name: &str,
    env: &str,
    configure: impl FnOnce(&mut Command),
) {
    // The harness names a test by its module path without the crate.
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let exact = format!("{module}::{name}");
    run_child(&["--exact", &exact], env, "1".as_ref(), configure);
}

/// This test binary run with `selection` (which must select one test),
/// `env` set to `value` and the command shaped by `configure`; asserts that
/// it ran one test and that test passed.
fn run_child(
    selection: &[&str],
    env: &str,
    value: &std::ffi::OsStr,
    configure: impl FnOnce(&mut Command),
) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(selection).arg("--test-threads=1").env(env, value);
    configure(&mut cmd);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the run in a child ({selection:?}) failed or did not run the test:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Set in the environment of a test re-executed by [`rerun_as_nobody`].
pub(crate) const UNPRIVILEGED: &str = "EVMC_TEST_UNPRIVILEGED";
pub(crate) const NOBODY: u32 = 65534;

pub(crate) fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// Root ignores permission bits, so tests about them re-run themselves
/// (this test binary, only `test`) as `nobody`, with `value` in
/// [`UNPRIVILEGED`]; asserts that run passed.
pub(crate) fn rerun_as_nobody(test: &str, value: &std::ffi::OsStr) {
    use std::os::unix::process::CommandExt;
    // A filter, not `--exact`: the harness names the test by its module
    // path, and `run_child` requires that it matched exactly one.
    run_child(&[test], UNPRIVILEGED, value, |cmd| {
        // SAFETY: async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
}

/// What the fixture's contract is expected to be compiled for.
pub(crate) fn expect() -> Expect {
    Expect {
        code_hash: code_hash(),
        spec: evmc_compiler::spec_name(SPEC).to_string(),
    }
}

pub(crate) fn metadata_offset(so: &[u8]) -> usize {
    so.windows(8)
        .position(|w| w == METADATA_MAGIC)
        .expect("metadata in artifact")
}

pub(crate) fn real_metadata() -> ArtifactMetadata {
    let (_d, cache) = cache_with_contract();
    let so = std::fs::read(entry_dir(&cache).join("artifact.so")).unwrap();
    ArtifactMetadata::from_bytes(&so[metadata_offset(&so)..]).unwrap()
}

/// Builds a shared object from C with the system compiler, exporting the
/// real contract's metadata and an entry point.
pub(crate) fn c_library(name: &str, extra: &str, entry_body: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<String> = real_metadata()
        .as_bytes()
        .iter()
        .map(|b| b.to_string())
        .collect();
    let src = format!(
        "__attribute__((aligned(8))) const unsigned char evmc_metadata[{}] = {{{}}};\n{extra}\n\
         unsigned int evmc_entry(void *ctx) {{ (void)ctx; {entry_body} }}\n",
        bytes.len(),
        bytes.join(",")
    );
    let c = dir.path().join(format!("{name}.c"));
    let so = dir.path().join(format!("{name}.so"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-O1",
            "-Wl,-z,noexecstack",
            "-o",
        ])
        .arg(&so)
        .arg(&c)
        .output()
        .expect("a C compiler (cc) is needed to build the hostile libraries");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(so).unwrap()
}
