//! Hostile and broken artefacts in the cache. Each is refused before
//! `dlopen` with a clear reason, moved to quarantine, and the contract then
//! runs interpreted with exactly the interpreter's outcome. Most variants
//! also re-pin the manifest to the bad bytes (an attacker who can write the
//! whole cache), so that the loader's own checks are what stops them.

use crate::support::*;
use evmc_interface::ArtifactMetadata;
use evmc_runtime::loader::{Loader, Source};
use std::path::{Path, PathBuf};

fn artifact(cache: &evmc_runtime::ArtifactCache) -> PathBuf {
    entry_dir(cache).join("artifact.so")
}

/// Replaces the contract's artifact with `bytes`, re-pinning the manifest.
fn plant(cache: &evmc_runtime::ArtifactCache, bytes: &[u8]) {
    overwrite(&artifact(cache), bytes);
    repin(cache);
}

#[test]
fn control_c_library_passes_validation() {
    // The hostile variants below differ from this one only by their trick:
    // their refusal is due to it, not to being built by cc.
    let so = c_library("control", "", "return 0;");
    let source = Source::Bytes {
        path: Path::new("control.so"),
        bytes: &so,
    };
    Loader::new(expect()).validate(source).unwrap();
}

#[test]
fn library_with_a_constructor_is_refused() {
    let ctor = "__attribute__((constructor)) static void boom(void) { __builtin_trap(); }";
    let so = c_library("ctor", ctor, "return 0;");
    let (_d, cache) = cache_with_contract();
    plant(&cache, &so);
    assert_refused(&cache, "initialiser");

    // Hidden from the section headers, which ld.so ignores: `.init_array`
    // renamed and `.dynamic` no longer typed SHT_DYNAMIC. The dynamic
    // segment still has DT_INIT_ARRAY.
    let mut disguised = so.clone();
    let at = disguised
        .windows(11)
        .position(|w| w == b".init_array")
        .expect("section name");
    disguised[at + 1] = b'x';
    let u = |b: &[u8], at: usize, n: usize| {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&b[at..at + n]);
        u64::from_le_bytes(v) as usize
    };
    let (shoff, shentsize, shnum) = (u(&so, 0x28, 8), u(&so, 0x3a, 2), u(&so, 0x3c, 2));
    let dynamic_sh = (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&sh| u(&so, sh + 4, 4) == 6)
        .expect("a SHT_DYNAMIC section");
    disguised[dynamic_sh + 4..dynamic_sh + 8].copy_from_slice(&1u32.to_le_bytes());
    let (_d, cache) = cache_with_contract();
    plant(&cache, &disguised);
    assert_refused(&cache, "dynamic table");
}

#[test]
fn library_importing_an_unexpected_symbol_is_refused() {
    let so = c_library(
        "import",
        "extern int getpid(void);",
        "return (unsigned int)getpid();",
    );
    let (_d, cache) = cache_with_contract();
    plant(&cache, &so);
    assert_refused(&cache, "imports unexpected symbol `getpid`");
}

#[test]
fn flipped_bytes_are_refused_with_or_without_a_matching_manifest() {
    let (_d, cache) = cache_with_contract();
    let mut so = std::fs::read(artifact(&cache)).unwrap();
    so[0x12] ^= 0xff; // e_machine
    overwrite(&artifact(&cache), &so);
    assert_refused(&cache, "content hash");

    let (_d, cache) = cache_with_contract();
    plant(&cache, &so);
    assert_refused(&cache, "x86-64");

    // A flipped bit in the recorded code hash.
    let (_d, cache) = cache_with_contract();
    let mut so = std::fs::read(artifact(&cache)).unwrap();
    let code_hash_at = metadata_offset(&so) + 16;
    so[code_hash_at] ^= 1;
    plant(&cache, &so);
    assert_refused(&cache, "code hash");
}

#[test]
fn truncated_library_is_refused_even_when_pinned() {
    let (_d, cache) = cache_with_contract();
    let so = std::fs::read(artifact(&cache)).unwrap();
    plant(&cache, &so[..so.len() / 2]);
    assert_refused(&cache, "ELF");
}

#[test]
fn valid_library_of_another_contract_is_refused() {
    let other = [0x60, 0x07, 0x60, 0x00, 0x55, 0x00];
    let (_d, cache) = cache_with_contract();
    let art = cache.get_or_compile(&other, &opts()).unwrap();
    let foreign = std::fs::read(&art.path).unwrap();
    plant(&cache, &foreign);
    assert_refused(&cache, "code hash");
}

#[test]
fn wrong_interface_version_and_cpu_features_are_refused() {
    let (_d, cache) = cache_with_contract();
    let mut so = std::fs::read(artifact(&cache)).unwrap();
    let at = metadata_offset(&so) + 8;
    so[at..at + 4].copy_from_slice(&999u32.to_le_bytes());
    plant(&cache, &so);
    assert_refused(&cache, "interface version");

    // The manifest's key claims another interface version.
    let (_d, cache) = cache_with_contract();
    let m = entry_dir(&cache).join("manifest.json");
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    j["key"]["interface_version"] = 999.into();
    std::fs::write(&m, serde_json::to_vec(&j).unwrap()).unwrap();
    assert_refused(&cache, "another key");

    // Built for a CPU feature this machine lacks.
    let (_d, cache) = cache_with_contract();
    let mut so = std::fs::read(artifact(&cache)).unwrap();
    let at = metadata_offset(&so);
    let mut meta = ArtifactMetadata::from_bytes(&so[at..]).unwrap();
    let features = format!(
        "+no-such-feature,{}",
        ArtifactMetadata::str_field(&meta.cpu_features)
    );
    assert!(ArtifactMetadata::set_str(&mut meta.cpu_features, &features));
    so[at..at + ArtifactMetadata::SIZE].copy_from_slice(meta.as_bytes());
    plant(&cache, &so);
    assert_refused(&cache, "CPU features");
}

#[test]
fn directories_symlinks_and_fifos_in_place_of_files_are_refused() {
    // A directory where the artifact should be.
    let (_d, cache) = cache_with_contract();
    std::fs::remove_file(artifact(&cache)).unwrap();
    std::fs::create_dir(artifact(&cache)).unwrap();
    assert_refused(&cache, "artifact.so is not a regular file");

    // A symlink to a perfectly valid copy of the artifact.
    let (d, cache) = cache_with_contract();
    let elsewhere = d.path().join("valid-copy.so");
    std::fs::rename(artifact(&cache), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, artifact(&cache)).unwrap();
    assert_refused(&cache, "artifact.so is not a regular file");

    // The manifest as a FIFO: refused at once, not waited on.
    let (_d, cache) = cache_with_contract();
    let m = entry_dir(&cache).join("manifest.json");
    std::fs::remove_file(&m).unwrap();
    let c = std::ffi::CString::new(m.to_str().unwrap()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_refused(&cache, "manifest.json is not a regular file");

    // The entry itself a symlink to a valid entry elsewhere.
    let (d, cache) = cache_with_contract();
    let moved = d.path().join("moved-entry");
    std::fs::rename(entry_dir(&cache), &moved).unwrap();
    std::os::unix::fs::symlink(&moved, entry_dir(&cache)).unwrap();
    assert_refused(&cache, "not a directory");
}

#[test]
fn unreadable_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = std::env::var_os(UNPRIVILEGED) {
        // The re-executed, unprivileged half.
        let cache = evmc_runtime::ArtifactCache::open(Path::new(&dir)).unwrap();
        assert_refused(&cache, "Permission denied");
        return;
    }
    let (d, cache) = cache_with_contract();
    std::fs::set_permissions(artifact(&cache), std::fs::Permissions::from_mode(0o000)).unwrap();
    if !is_root() {
        assert_refused(&cache, "Permission denied");
        return;
    }
    // On a cache `nobody` owns, with the artifact unreadable even to it.
    for e in walk(d.path()) {
        std::os::unix::fs::lchown(&e, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    rerun_as_nobody("unreadable_files_are_refused", d.path().as_os_str());
    assert!(!entry_dir(&cache).exists());
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut v = vec![p.to_path_buf()];
    if std::fs::symlink_metadata(p).unwrap().is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            v.extend(walk(&e.unwrap().path()));
        }
    }
    v
}
