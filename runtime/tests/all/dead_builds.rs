//! Build directories left in `tmp/` by a process that died mid-compile
//! are removed at the next open; those of live processes are kept.

use evmc_runtime::ArtifactCache;
use std::path::Path;

/// (pid namespace inode, this process's start time in clock ticks).
fn namespace_and_start() -> (u64, u64) {
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = ns.to_str().unwrap();
    let ns = ns["pid:[".len()..ns.len() - 1].parse().unwrap();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    (
        ns,
        rest.split_whitespace().nth(19).unwrap().parse().unwrap(),
    )
}

fn half_built(tmp: &Path, name: &str) -> std::path::PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("artifact.so"), b"half").unwrap();
    dir
}

#[test]
fn build_directories_of_dead_processes_are_removed_at_open() {
    let d = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::open(d.path()).unwrap();
    let tmp = cache.dir().join("tmp");
    drop(cache);
    let (ns, start) = namespace_and_start();
    let me = std::process::id();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();

    let dead_dir = half_built(&tmp, &format!("build-{ns}-{dead}-{start}-aB3dE9"));
    let reused = half_built(&tmp, &format!("evict-{ns}-{me}-{}-aB3dE9", start + 7));
    let live = half_built(&tmp, &format!("build-{ns}-{me}-{start}-aB3dE9"));
    let foreign = half_built(&tmp, &format!("build-{}-{dead}-{start}-aB3dE9", ns + 1));
    let untagged = half_built(&tmp, "build-aB3dE9");

    let cache = ArtifactCache::open(d.path()).unwrap();
    assert!(
        !dead_dir.exists(),
        "a dead process's build directory stayed"
    );
    assert!(!reused.exists(), "a reused pid was taken for its owner");
    assert!(
        live.exists(),
        "a live process's build directory was removed"
    );
    // Not judged: another pid namespace, or no owner in the name.
    assert!(foreign.exists() && untagged.exists());

    // gc leaves a live owner's directory however old, and removes only
    // old untagged ones.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for p in [&live, &foreign] {
        std::fs::File::open(p).unwrap().set_modified(old).unwrap();
    }
    let r = cache.gc(None).unwrap();
    assert_eq!(r.removed_temporary, 1, "{r:?}");
    assert!(live.exists() && untagged.exists() && !foreign.exists());
}
