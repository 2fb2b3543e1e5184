//! A cache that can be read but not written (shared, prebuilt, or another
//! user's) serves hits; only writes fail. Root ignores permission bits, so
//! the checks run as `nobody` on a cache root made and then made read-only.

use crate::support::*;
use evmc_runtime::{ArtifactCache, CacheError};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Two entries: the fixture's, and a small contract's with its artifact
/// damaged.
fn tiny() -> Vec<u8> {
    vec![0x60, 0x03, 0x60, 0x00, 0x55, 0x00]
}

fn make_read_only(path: &Path) {
    let md = std::fs::symlink_metadata(path).unwrap();
    if md.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            make_read_only(&e.unwrap().path());
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).unwrap();
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
}

#[test]
fn a_read_only_cache_serves_hits_and_refuses_only_writes() {
    const TEST: &str = "a_read_only_cache_serves_hits_and_refuses_only_writes";
    if let Some(dir) = std::env::var_os(UNPRIVILEGED) {
        check_read_only(Path::new(&dir));
        return;
    }
    let (d, cache) = cache_with_contract();
    let tiny_art = cache.get_or_compile(&tiny(), &opts()).unwrap();
    let bad = tiny_art.path.clone();
    drop(tiny_art);
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[64] ^= 0xff;
    overwrite(&bad, &bytes);
    drop(cache);
    make_read_only(d.path());
    if is_root() {
        rerun_as_nobody(TEST, d.path().as_os_str());
    } else {
        check_read_only(d.path());
    }
    // Nothing was moved or written.
    assert!(bad.exists());
    let quarantined = std::fs::read_dir(d.path().join("quarantine"))
        .unwrap()
        .count();
    assert_eq!(quarantined, 0);
    // Writable again, for the temporary directory's removal.
    let _ = std::process::Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(d.path())
        .status();
}

fn check_read_only(dir: &Path) {
    let cache = ArtifactCache::open(dir).expect("a read-only cache opens");
    assert!(cache.is_read_only());
    // A hit, loaded and run.
    assert!(
        run_through_cache(&cache) > 0,
        "the hit did not run natively"
    );
    assert_eq!(cache.ls().unwrap().len(), 2);
    // The damaged entry: refused, reported once however often it is
    // looked up, left in place.
    let tiny_hash = evmc_compiler::code_hash(&tiny());
    for _ in 0..3 {
        assert!(cache.get(tiny_hash, SPEC, OPT).unwrap().is_none());
    }
    let r = cache.take_rejections();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].moved_to.is_none());
    let v = cache.verify().unwrap();
    assert!(v.read_only);

    assert_eq!((v.checked, v.ok, v.rejected.len()), (2, 1, 1), "{v:?}");
    assert!(v.rejected[0].moved_to.is_none());
    // Writes fail, clearly.
    let err = cache.gc(None).unwrap_err();
    assert!(matches!(err, CacheError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = cache
        .get_or_compile(&[0x60, 0x05, 0x00], &opts())
        .unwrap_err();
    assert!(matches!(err, CacheError::ReadOnly { .. }), "{err}");
    // The damaged entry is not recompiled over either.
    let err = cache.get_or_compile(&tiny(), &opts()).unwrap_err();
    assert!(matches!(err, CacheError::ReadOnly { .. }), "{err}");
}
