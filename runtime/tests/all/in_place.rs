//! Loading an artifact in place (its own inode, mapped directly or through
//! `dlopen` of its descriptor) or from a private copy of its checked bytes:
//! which one is chosen, that the inode loaded is the inode checked whatever
//! happens to the path, and that `ld.so` never hands out another object
//! than the one validated.
//!
//! The tests of this file run one at a time: some reason about descriptor
//! numbers and the dynamic loader's list of loaded objects.

use crate::support::*;
use evmc_runtime::loader::{open_artifact, Source};
use evmc_runtime::{Expect, LoadError, LoadedArtifact, Loader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Validates and loads `source` as the fixture contract.
fn load<'a>(source: impl Into<Source<'a>>, expect: &Expect) -> Result<LoadedArtifact, LoadError> {
    Loader::new(expect.clone()).load(source)
}

fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|p| p.into_inner())
}

/// A library with the fixture's metadata whose entry point returns `n`,
/// and which imports `memcpy`: one the dynamic loader must bind, so it
/// goes through `dlopen` (see `loader::image`).
fn returning(n: u32) -> &'static [u8] {
    library(n, true)
}

/// The same without the import: mapped directly, as the compiler's
/// artefacts are.
fn returning_direct(n: u32) -> &'static [u8] {
    library(n, false)
}

fn library(n: u32, import: bool) -> &'static [u8] {
    static LIBS: Mutex<Vec<(u32, bool, &'static [u8])>> = Mutex::new(Vec::new());
    let mut libs = LIBS.lock().unwrap();
    if let Some((.., b)) = libs.iter().find(|(k, i, _)| (*k, *i) == (n, import)) {
        return b;
    }
    let extra = match import {
        true => "void *memcpy(void *, const void *, unsigned long);\n\
                 __attribute__((used)) static void *(*volatile copy_fn)(void *, const void *, unsigned long) = memcpy;",
        false => "",
    };
    let b: &'static [u8] = c_library(&format!("ret{n}"), extra, &format!("return {n};")).leak();
    libs.push((n, import, b));
    b
}

fn call(art: &LoadedArtifact) -> u32 {
    // SAFETY: the C entry points of these tests ignore their argument.
    unsafe { (art.entry())(std::ptr::null_mut()) }
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
    chmod(path, mode);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Inode of the file mapped at the artifact's entry point.
fn mapped_inode(art: &LoadedArtifact) -> u64 {
    let addr = art.entry() as usize;
    match maps().into_iter().find(|r| (r.lo..r.hi).contains(&addr)) {
        Some(r) => r.inode,
        None => panic!("entry point {addr:#x} not mapped"),
    }
}

/// One line of `/proc/self/maps`.
#[derive(Debug)]
struct Region {
    lo: usize,
    hi: usize,
    perms: String,
    offset: usize,
    inode: u64,
}

/// The process's mappings now.
fn maps() -> Vec<Region> {
    let hex = |s: &str| usize::from_str_radix(s, 16).unwrap();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (lo, hi) = f[0].split_once('-').unwrap();
            Region {
                lo: hex(lo),
                hi: hex(hi),
                perms: f[1].to_string(),
                offset: hex(f[2]),
                inode: f[4].parse().unwrap(),
            }
        })
        .collect()
}

/// A private directory (0700) of ours.
fn private_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o700);
    d
}

/// Our descriptor open on `path`, if any.
fn descriptor_of(path: &Path) -> Option<u32> {
    let want = std::fs::canonicalize(path).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| std::fs::read_link(e.path()).ok().as_deref() == Some(want.as_path()))
        .and_then(|e| e.file_name().to_str()?.parse().ok())
}

#[test]
fn a_file_only_we_can_change_is_loaded_in_place() {
    let _s = serial();
    let d = private_dir();
    for direct in [false, true] {
        for mode in [0o444, 0o400, 0o644, 0o755] {
            let p = d.path().join(format!("lib-{mode:o}-{direct}.so"));
            write_mode(&p, library(1, !direct), mode);
            let art = load(&p, &expect()).unwrap();
            assert_eq!(art.mapped_directly(), direct);
            assert!(art.loaded_in_place(), "mode {mode:o}");
            assert_eq!(mapped_inode(&art), inode(&p), "mode {mode:o}");
            assert_eq!(call(&art), 1);
        }
    }
}

#[test]
fn a_file_others_could_change_is_loaded_from_a_private_copy() {
    let _s = serial();
    for direct in [false, true] {
        others_could_change(direct);
    }
}

fn others_could_change(direct: bool) {
    let lib = library(1, !direct);
    let check = |p: &Path, what: &str| {
        let art = load(p, &expect()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(!art.loaded_in_place(), "{what}");
        assert_eq!(art.mapped_directly(), direct, "{what}");
        assert_ne!(mapped_inode(&art), inode(p), "{what}");
        assert_eq!(call(&art), 1, "{what}");
    };
    // Group- or other-writable file in a private directory.
    let d = private_dir();
    for mode in [0o664, 0o646, 0o666, 0o464] {
        let p = d.path().join(format!("lib-{mode:o}.so"));
        write_mode(&p, lib, mode);
        check(&p, &format!("file mode {mode:o}"));
    }
    // Read-only file in a group- or other-writable directory.
    for mode in [0o770, 0o707, 0o1777] {
        let d = private_dir();
        let p = d.path().join("lib.so");
        write_mode(&p, lib, 0o444);
        chmod(d.path(), mode);
        check(&p, &format!("directory mode {mode:o}"));
    }
    // A file or a directory of another user (only root can make them).
    if is_root() {
        let d = private_dir();
        let p = d.path().join("lib.so");
        write_mode(&p, lib, 0o444);
        std::os::unix::fs::lchown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        check(&p, "file of another user");
        std::os::unix::fs::lchown(&p, Some(0), Some(0)).unwrap();
        std::os::unix::fs::lchown(d.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        check(&p, "directory of another user");
    }
}

#[test]
fn an_artifact_replaced_after_validation_is_not_loaded_in_its_place() {
    let _s = serial();
    // In place: the descriptor's inode is loaded, not whatever the path
    // names by then (another file, a symlink to one).
    let d = private_dir();
    let p = d.path().join("lib.so");
    let other = d.path().join("other.so");
    for (replace_with_symlink, direct) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        write_mode(&p, library(1, !direct), 0o444);
        let checked = inode(&p);
        let file = open_artifact(&p).unwrap().read().unwrap();
        assert!(file.loadable_in_place());
        write_mode(&other, library(2, !direct), 0o444);
        if replace_with_symlink {
            let link = d.path().join("link");
            std::os::unix::fs::symlink(&other, &link).unwrap();
            std::fs::rename(&link, &p).unwrap();
        } else {
            std::fs::rename(&other, &p).unwrap();
        }
        let art = load(file, &expect()).unwrap();
        assert!(art.loaded_in_place());
        assert_eq!(art.mapped_directly(), direct);
        assert_eq!(mapped_inode(&art), checked);
        assert_eq!(call(&art), 1, "symlink: {replace_with_symlink}");
        std::fs::remove_file(&p).unwrap();
    }

    // From a copy: even a write into the very file (which others could
    // make here) does not reach what is loaded.
    let p = d.path().join("shared.so");
    write_mode(&p, returning(1), 0o666);
    let file = open_artifact(&p).unwrap().read().unwrap();
    assert!(!file.loadable_in_place());
    std::fs::write(&p, returning(2)).unwrap();
    let art = load(file, &expect()).unwrap();
    assert!(!art.loaded_in_place());
    assert_eq!(call(&art), 1);
    // The file now holds the other library: loaded afresh, it is that one.
    assert_eq!(call(&load(&p, &expect()).unwrap()), 2);
}

#[test]
fn an_inode_loaded_already_is_loaded_again_from_a_copy() {
    let _s = serial();
    let d = private_dir();
    let p = d.path().join("lib.so");
    write_mode(&p, returning(1), 0o444);
    let first = load(&p, &expect()).unwrap();
    assert!(first.loaded_in_place());
    // The same inode under its own name and through a hard link: ld.so
    // would return the loaded object; a copy is a distinct one.
    let link = d.path().join("hard-link.so");
    std::fs::hard_link(&p, &link).unwrap();
    for path in [&p, &link] {
        let again = load(path, &expect()).unwrap();
        assert!(!again.loaded_in_place(), "{}", path.display());
        assert_ne!(again.entry() as usize, first.entry() as usize);
        assert_eq!(call(&again), 1);
    }
    drop(first);
    // Unloaded: in place again.
    assert!(load(&p, &expect()).unwrap().loaded_in_place());
}

#[test]
fn a_directly_mapped_inode_holds_no_descriptor_and_maps_again_apart() {
    let _s = serial();
    let d = private_dir();
    let p = d.path().join("lib.so");
    write_mode(&p, returning_direct(1), 0o444);
    let loaded: Vec<LoadedArtifact> = (0..3).map(|_| load(&p, &expect()).unwrap()).collect();
    for a in &loaded {
        assert!(a.loaded_in_place() && a.mapped_directly());
        assert_eq!(mapped_inode(a), inode(&p));
        assert_eq!(call(a), 1);
    }
    let mut entries: Vec<usize> = loaded.iter().map(|a| a.entry() as usize).collect();
    entries.dedup();
    assert_eq!(entries.len(), 3, "three mappings");
    assert_eq!(descriptor_of(&p), None, "no descriptor kept");
    // Unloading unmaps: nothing of the file is mapped any more.
    drop(loaded);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = std::fs::canonicalize(&p).unwrap();
    assert!(!maps.contains(name.to_str().unwrap()), "{maps}");
}

#[test]
fn a_name_left_behind_by_a_library_someone_else_keeps_loaded_is_not_reused() {
    let _s = serial();
    let d = private_dir();
    let (a_path, b_path) = (d.path().join("a.so"), d.path().join("b.so"));
    write_mode(&a_path, returning(1), 0o444);
    write_mode(&b_path, returning(2), 0o444);
    let a = load(&a_path, &expect()).unwrap();
    assert!(a.loaded_in_place());
    let fd = descriptor_of(&a_path).expect("the descriptor a is loaded through");
    // Other code of the process opens the same file: ld.so returns the
    // loaded object (same inode) and keeps it after we unload ours.
    let c = std::ffi::CString::new(a_path.to_str().unwrap()).unwrap();
    // SAFETY: the library was validated above; it has no initialisers.
    let foreign = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!foreign.is_null());
    drop(a);
    // Its old name, /proc/self/fd/N, still names it while N is free.
    let name = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).unwrap();
    // SAFETY: RTLD_NOLOAD loads nothing.
    let stale = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    assert!(!stale.is_null(), "no name left behind");
    // SAFETY: a handle from dlopen.
    unsafe { libc::dlclose(stale) };

    // The next load gets that descriptor number: asking ld.so for the name
    // would return a's library (same metadata and layout, so the checks
    // after dlopen could not tell). It is loaded from a copy instead.
    let b = load(&b_path, &expect()).unwrap();
    assert_eq!(call(&b), 2, "got a's code");
    assert!(!b.loaded_in_place());
    assert_eq!(descriptor_of(&b_path), None, "b kept no descriptor");
    drop(b);
    // SAFETY: the handle dlopen returned above.
    unsafe { libc::dlclose(foreign) };
    // Gone: in place again.
    assert!(load(&b_path, &expect()).unwrap().loaded_in_place());
}

fn artifact(cache: &evmc_runtime::ArtifactCache) -> PathBuf {
    entry_dir(cache).join("artifact.so")
}

#[test]
fn cache_hits_load_read_only_entries_in_place() {
    let _s = serial();
    let (_d, cache) = cache_with_contract();
    let md = std::fs::metadata(artifact(&cache)).unwrap();
    assert_eq!(md.mode() & 0o777, 0o444, "published read-only");
    let art = cache.get(code_hash(), SPEC, OPT).unwrap().unwrap();
    assert!(art.loaded_in_place());
    assert_eq!(mapped_inode(&art), md.ino());
    drop(art);
    assert!(run_through_cache(&cache) > 0);
    // Entries others could change are refused, not copied: see `trust`.
    assert!(cache.take_rejections().is_empty());
}

/// A cache hit maps the entry's file once: that mapping is hashed, checked
/// and then made the image (`loader::image::Image::adopt`), so every
/// mapping of the file in the process lies at its own file offset from
/// one base, code included. Mapped segment by segment, the dynamic
/// table's page would sit a page away from its offset.
#[test]
fn a_cache_hit_maps_its_file_once_and_runs_it_there() {
    let _s = serial();
    let (_d, cache) = cache_with_contract();
    let art = cache.get(code_hash(), SPEC, OPT).unwrap().unwrap();
    assert!(art.loaded_in_place() && art.mapped_directly());
    let inode = mapped_inode(&art);
    let mine: Vec<Region> = maps().into_iter().filter(|r| r.inode == inode).collect();
    let bases: std::collections::HashSet<usize> = mine.iter().map(|r| r.lo - r.offset).collect();
    assert_eq!(bases.len(), 1, "mapped more than once: {mine:x?}");
    assert!(mine.iter().any(|r| r.offset == 0), "{mine:x?}");
    let exec: Vec<_> = mine.iter().filter(|r| r.perms.contains('x')).collect();
    assert_eq!(exec.len(), 1, "{mine:x?}");
    assert!(!mine.iter().any(|r| r.perms.contains('w')), "{mine:x?}");
    drop(art);
    assert!(run_through_cache(&cache) > 0, "compiled code ran");
}

#[test]
fn a_removed_and_recreated_entry_is_a_new_inode() {
    let _s = serial();
    let (_d, cache) = cache_with_contract();
    let old = cache.get(code_hash(), SPEC, OPT).unwrap().unwrap();
    assert!(old.loaded_in_place() && old.mapped_directly());
    // A second hit while the first is loaded: the same inode mapped again,
    // apart (`ld.so` would have returned the first, hence copies through
    // `dlopen`: `an_inode_loaded_already_is_loaded_again_from_a_copy`).
    let second = cache.get(code_hash(), SPEC, OPT).unwrap().unwrap();
    assert!(second.loaded_in_place() && second.mapped_directly());
    assert_ne!(second.entry() as usize, old.entry() as usize);
    assert_eq!(mapped_inode(&second), mapped_inode(&old));
    drop(second);
    std::fs::remove_dir_all(entry_dir(&cache)).unwrap();
    cache.get_or_compile(&contract(), &opts()).unwrap();
    let new = cache.get(code_hash(), SPEC, OPT).unwrap().unwrap();
    assert!(new.loaded_in_place());
    assert_ne!(mapped_inode(&new), mapped_inode(&old));
    assert!(cache.take_rejections().is_empty());
}

#[test]
fn descriptors_held_for_loaded_libraries_are_capped() {
    const TEST: &str = "descriptors_held_for_loaded_libraries_are_capped";
    const LIMITED: &str = "EVMC_TEST_NOFILE_LIMITED";
    if std::env::var_os(LIMITED).is_some() {
        // The re-executed half, with RLIMIT_NOFILE at 64: at most 16 held.
        let d = private_dir();
        let loaded: Vec<LoadedArtifact> = (0..24)
            .map(|i| {
                let p = d.path().join(format!("lib{i}.so"));
                write_mode(&p, returning(1), 0o444);
                load(&p, &expect()).unwrap()
            })
            .collect();
        let in_place = loaded.iter().filter(|a| a.loaded_in_place()).count();
        assert_eq!(in_place, 16);
        assert!(loaded.iter().all(|a| call(a) == 1));
        return;
    }
    let _s = serial();
    rerun_in_child(module_path!(), TEST, LIMITED, |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
}

/// Size and resident size (kB, from `/proc/self/smaps`) of the mapping
/// that holds `addr`.
fn mapping_sizes(addr: usize) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let (mut inside, mut size) = (false, None);
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
        }
        if !inside {
            continue;
        }
        let kb = || f.clone().next().unwrap().parse::<u64>().unwrap();
        match first {
            "Size:" => size = Some(kb()),
            "Rss:" => return (size.unwrap(), kb()),
            _ => {}
        }
    }
    panic!("no mapping holds {addr:#x}");
}

#[test]
fn code_is_mapped_in_when_loaded_not_when_it_first_runs() {
    let _s = serial();
    // 512 KiB of code besides the entry: far more than the pages `ld.so`
    // reads and the kernel maps around a fault.
    let lib = c_library(
        "large",
        "__asm__(\".text\\n.skip 524288, 0xcc\\n.previous\");",
        "return 7;",
    );
    let d = private_dir();
    for (name, mode) in [("in-place.so", 0o444), ("copied.so", 0o666)] {
        let p = d.path().join(name);
        write_mode(&p, &lib, mode);
        let art = load(&p, &expect()).unwrap();
        assert_eq!(art.loaded_in_place(), mode == 0o444);
        let (size, rss) = mapping_sizes(art.entry() as usize);
        assert!(size >= 512, "{name}: the code segment is {size} kB");
        assert_eq!(rss, size, "{name}: {rss} of {size} kB of code mapped in");
        assert_eq!(call(&art), 7);
    }
}
