//! The artifact cache: hits, concurrent writers, damaged entries, an
//! unusable directory, size limits and gc.

use crate::support::*;
use evmc_runtime::cache::CompileFailure;
use evmc_runtime::{ArtifactCache, CacheError, CompileLimits, LoadError};
use std::sync::Arc;

#[test]
fn cache_is_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ArtifactCache>();
    send_sync::<Arc<ArtifactCache>>();
}

#[test]
fn compiled_entry_is_a_hit_with_a_manifest_and_runs_natively() {
    let (_d, cache) = cache_with_contract();
    let dir = entry_dir(&cache);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let so = std::fs::read(dir.join("artifact.so")).unwrap();
    assert_eq!(m["artifact_size"], so.len());
    assert_eq!(
        m["artifact_blake3"],
        evmc_runtime::cache::manifest::blake3_hex(&so)
    );
    assert_eq!(
        m["artifact_xxh3"],
        evmc_runtime::cache::manifest::content_hash_hex(&so)
    );
    assert_eq!(m["key"]["code_hash"], format!("{:#x}", code_hash()));
    assert_eq!(m["format"], evmc_runtime::cache::key::LAYOUT_VERSION);
    assert!(run_through_cache(&cache) > 0, "nothing ran natively");
    assert!(cache.take_rejections().is_empty());
    let listed = cache.ls().unwrap();
    assert_eq!(listed.len(), 1);
    let v = cache.verify().unwrap();
    assert_eq!((v.checked, v.ok, v.rejected.len()), (1, 1, 0));
}

/// Set in the environment of the run of
/// `an_entry_the_process_cannot_map_now_stays_and_hits_later` that limits
/// its own address space.
const AS_LIMITED: &str = "EVMC_TEST_AS_LIMITED";

/// A process out of address space cannot map an artefact: the lookup is an
/// error, the entry is not refused (it is not at fault), and the same
/// lookup hits once room is back. Runs in a child of its own, as it lowers
/// the process's limit.
#[test]
fn an_entry_the_process_cannot_map_now_stays_and_hits_later() {
    const TEST: &str = "an_entry_the_process_cannot_map_now_stays_and_hits_later";
    if std::env::var_os(AS_LIMITED).is_none() {
        rerun_in_child(module_path!(), TEST, AS_LIMITED, |_| {});
        return;
    }
    let (_d, cache) = cache_with_contract();
    let dir = entry_dir(&cache);
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on our own process.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
    // Room on the heap for what the lookup allocates, so that only new
    // mappings fail (an allocation failing would abort the process).
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64 << 10)));
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // No room for one more mapping: what the process has, not a page more.
    let limited = libc::rlimit {
        // SAFETY: plain sysconf.
        rlim_cur: pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64,
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above; the limit is lifted again before anything else.
    let r = unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &limited), 0);
        let r = cache.get(code_hash(), SPEC, OPT);
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &old), 0);
        r
    };
    // Here the artefact's reservation is what fails (`LoadError::Map`); a
    // larger entry's read may fail first, which is as transient.
    match r {
        Err(CacheError::Load(LoadError::Map { .. } | LoadError::Io { .. })) => {}
        other => panic!("expected an error of the process, got {other:?}"),
    }
    assert!(dir.exists(), "the entry was moved away");
    assert!(cache.take_rejections().is_empty(), "the entry was refused");
    let art = cache.get(code_hash(), SPEC, OPT).unwrap();
    assert!(art.is_some(), "no hit once the limit is lifted");
}

#[test]
fn other_keys_are_misses() {
    let (_d, cache) = cache_with_contract();
    assert!(cache.get(code_hash(), SPEC, 3).unwrap().is_none());
    assert!(cache
        .get(code_hash(), evmc_compiler::SpecId::CANCUN, OPT)
        .unwrap()
        .is_none());
    assert!(cache
        .get(evmc_compiler::B256::ZERO, SPEC, OPT)
        .unwrap()
        .is_none());
    assert!(cache.take_rejections().is_empty());
}

#[test]
fn many_threads_and_caches_compiling_one_contract_leave_one_good_entry() {
    let dir = tempfile::tempdir().unwrap();
    let code = contract();
    // Separate instances (as separate processes would be) race on the
    // rename; threads sharing an instance wait for its one compile.
    let shared = Arc::new(ArtifactCache::open(dir.path()).unwrap());
    std::thread::scope(|s| {
        for i in 0..6 {
            let (code, shared) = (&code, &shared);
            let path = dir.path();
            s.spawn(move || {
                let own;
                let cache: &ArtifactCache = if i % 2 == 0 {
                    own = ArtifactCache::open(path).unwrap();
                    &own
                } else {
                    shared
                };
                let art = cache.get_or_compile(code, &opts()).unwrap();
                assert_eq!(art.code_hash(), code_hash());
            });
        }
    });
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("entries"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let v = shared.verify().unwrap();
    assert_eq!((v.ok, v.rejected.len()), (1, 0));
    assert!(run_through_cache(&shared) > 0);
}

#[test]
fn flipped_byte_is_refused_by_the_content_hash() {
    let (_d, cache) = cache_with_contract();
    let so = entry_dir(&cache).join("artifact.so");
    let mut b = std::fs::read(&so).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    overwrite(&so, &b);
    assert_refused(&cache, "content hash");
    // Recompiled on demand, and good again.
    cache.get_or_compile(&contract(), &opts()).unwrap();
    assert!(run_through_cache(&cache) > 0);
}

#[test]
fn truncated_artifact_and_manifest_are_refused() {
    let (_d, cache) = cache_with_contract();
    let so = entry_dir(&cache).join("artifact.so");
    let b = std::fs::read(&so).unwrap();
    overwrite(&so, &b[..b.len() / 3]);
    assert_refused(&cache, "truncated");

    let (_d, cache) = cache_with_contract();
    let m = entry_dir(&cache).join("manifest.json");
    let b = std::fs::read(&m).unwrap();
    std::fs::write(&m, &b[..b.len() / 2]).unwrap();
    assert_refused(&cache, "unreadable manifest");

    let (_d, cache) = cache_with_contract();
    overwrite(&entry_dir(&cache).join("artifact.so"), b"");
    assert_refused(&cache, "truncated");
}

/// Rewrites the entry's manifest as cache format 1 wrote it: SHA-256 of the
/// artifact, no format field.
fn downgrade_manifest(dir: &std::path::Path) {
    use sha2::Digest;
    let so = std::fs::read(dir.join("artifact.so")).unwrap();
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let o = m.as_object_mut().unwrap();
    o.remove("format");
    o.remove("artifact_blake3");
    o.remove("artifact_xxh3");
    o.insert(
        "artifact_sha256".into(),
        hex::encode(sha2::Sha256::digest(&so)).into(),
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[test]
fn entries_of_the_previous_cache_format_are_refused_cleanly() {
    // Under the current name (copied by hand, say): refused with the reason,
    // quarantined, recompiled.
    let (_d, cache) = cache_with_contract();
    downgrade_manifest(&entry_dir(&cache));
    assert_refused(&cache, "cache format 1");
    cache.get_or_compile(&contract(), &opts()).unwrap();
    assert!(run_through_cache(&cache) > 0);

    // Under its own (old) name, as an upgrade finds it: never looked up,
    // listed with the problem, moved aside by verify, removed by gc.
    let (_d, cache) = cache_with_contract();
    let old = cache.dir().join("entries").join("0".repeat(64));
    copy_tree(&entry_dir(&cache), &old);
    downgrade_manifest(&old);
    assert!(run_through_cache(&cache) > 0);
    assert!(cache.take_rejections().is_empty());
    let listed = cache.ls().unwrap();
    let problem = listed
        .iter()
        .find(|e| e.path == old)
        .and_then(|e| e.problem.clone())
        .unwrap();
    assert!(problem.contains("cache format 1"), "{problem}");
    let r = cache.gc(None).unwrap();
    assert_eq!((r.removed_entries, r.kept_entries), (1, 1));
    assert!(!old.exists());

    let (_d, cache) = cache_with_contract();
    let old = cache.dir().join("entries").join("0".repeat(64));
    copy_tree(&entry_dir(&cache), &old);
    downgrade_manifest(&old);
    let v = cache.verify().unwrap();
    assert_eq!((v.checked, v.ok, v.rejected.len()), (2, 1, 1));
    assert!(
        v.rejected[0].reason.contains("cache format 1"),
        "{:?}",
        v.rejected
    );
}

#[test]
fn entry_of_another_contract_renamed_into_place_is_refused() {
    let (_d, cache) = cache_with_contract();
    let other = [0x60, 0x01, 0x60, 0x00, 0x55, 0x00]; // sstore(0, 1)
    cache.get_or_compile(&other, &opts()).unwrap();
    let other_dir = cache.dir().join("entries").join(
        cache
            .host_key(evmc_compiler::code_hash(&other), SPEC, OPT)
            .unwrap()
            .digest_hex(),
    );
    let mine = entry_dir(&cache);
    std::fs::remove_dir_all(&mine).unwrap();
    std::fs::rename(&other_dir, &mine).unwrap();
    assert_refused(&cache, "another key");
}

#[test]
fn unusable_directory_is_a_clear_error_and_execution_continues_interpreted() {
    if let Some(ro) = std::env::var_os(UNPRIVILEGED) {
        // The re-executed, unprivileged half: a directory we cannot write.
        // A cache that cannot be created in it is unusable; the directory
        // itself, which exists, is a read-only cache (see `read_only`).
        let ro = std::path::Path::new(&ro);
        let err = ArtifactCache::open(&ro.join("cache")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("not usable") && msg.contains(&*ro.to_string_lossy()),
            "{msg}"
        );
        assert!(ArtifactCache::open(ro).unwrap().is_read_only());
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let file = base.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = ArtifactCache::open(&file.join("cache")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CacheError::Unusable { .. }), "{msg}");
    assert!(
        msg.contains("a-file/cache") && msg.contains("not usable"),
        "{msg}"
    );

    let err = ArtifactCache::open(&file).unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");

    // A read-only directory: root ignores permission bits, so that half
    // runs as `nobody`.
    use std::os::unix::fs::PermissionsExt;
    let ro = base.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if is_root() {
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        rerun_as_nobody(
            "unusable_directory_is_a_clear_error_and_execution_continues_interpreted",
            ro.as_os_str(),
        );
    } else {
        let err = ArtifactCache::open(&ro.join("cache")).unwrap_err();
        assert!(err.to_string().contains("not usable"), "{err}");
    }

    // No cache: nothing is compiled, the fixture runs interpreted, exactly.
    let f = fixture();
    let pre = f.pre_state();
    let interp = evmc_harness::fixture::run_fixture(f, &pre, SPEC, None);
    let with_empty =
        evmc_harness::fixture::run_fixture(f, &pre, SPEC, Some(&evmc_runtime::Registry::new()));
    assert_eq!(interp.exact(), with_empty.exact());
    assert_eq!(with_empty.native_frames, 0);
}

#[test]
fn code_above_the_size_limit_is_not_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let limits = CompileLimits {
        max_code_size: 100,
        ..Default::default()
    };
    let cache = ArtifactCache::open(dir.path()).unwrap().with_limits(limits);
    let code = contract();
    assert!(code.len() > 100);
    let err = cache.get_or_compile(&code, &opts()).unwrap_err();
    assert!(err.is_too_large(), "{err}");
    assert!(matches!(
        err,
        CacheError::Compile(CompileFailure::TooLarge { limit: 100, .. })
    ));
    // Remembered: not retried.
    let again = cache.get_or_compile(&code, &opts()).unwrap_err();
    assert!(matches!(again, CacheError::FailedBefore(_)), "{again}");
    assert!(again.is_too_large());
    cache.forget_failures();
    let fresh = cache.get_or_compile(&code, &opts()).unwrap_err();
    assert!(matches!(fresh, CacheError::Compile(_)), "{fresh}");
    assert!(cache.ls().unwrap().is_empty());
}

#[test]
fn an_in_process_compile_past_its_time_is_given_up_and_nothing_is_published() {
    // A cache without a worker compiles in this process: the compile
    // timeout must hold there too (`run`, `statetest` and `bench` compile
    // this way). No LLVM compile finishes within a microsecond.
    let dir = tempfile::tempdir().unwrap();
    let limits = CompileLimits {
        timeout: std::time::Duration::from_micros(1),
        ..Default::default()
    };
    let cache = ArtifactCache::open(dir.path()).unwrap().with_limits(limits);
    let err = cache.get_or_compile(&contract(), &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Compile(CompileFailure::TimeoutInProcess(_))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("did not finish within"), "{err}");
    assert!(cache.ls().unwrap().is_empty());

    // The same through the plain compile-and-load path.
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("a.so");
    let r = evmc_runtime::compile_worker::compile_on_thread(
        &contract(),
        &opts(),
        &path,
        std::time::Duration::from_micros(1),
    );
    assert!(
        matches!(r, Err(CompileFailure::TimeoutInProcess(_))),
        "{:?}",
        r.map(|a| a.map(|a| a.size))
    );
    // With time enough it compiles.
    compile_on_thread_in_time(&path);
}

/// Compiles the fixture's contract to `path` on a thread with time enough.
fn compile_on_thread_in_time(path: &std::path::Path) {
    let r = evmc_runtime::compile_worker::compile_on_thread(
        &contract(),
        &opts(),
        path,
        std::time::Duration::from_secs(600),
    );
    assert!(matches!(r, Ok(Ok(_))));
    assert!(path.is_file());
}

/// A compile given up on whose process ended before it finished leaves its
/// file beside the artefact; the next compile of the same artefact removes
/// it, and nothing a live process or someone else owns.
#[test]
fn compile_on_thread_removes_files_left_by_ended_processes() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("a.so");
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = ns.to_str().unwrap();
    let ns = &ns["pid:[".len()..ns.len() - 1];
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let me = std::process::id();
    let abandoned = out
        .path()
        .join(format!(".a.so.compiling-{ns}-{dead}-{start}-0"));
    let live = out
        .path()
        .join(format!(".a.so.compiling-{ns}-{me}-{start}-7"));
    let other_artefact = out
        .path()
        .join(format!(".b.so.compiling-{ns}-{dead}-{start}-0"));
    let foreign = out.path().join(".a.so.compiling-elsewhere");
    for f in [&abandoned, &live, &other_artefact, &foreign] {
        std::fs::write(f, b"partial").unwrap();
    }
    compile_on_thread_in_time(&path);
    assert!(!abandoned.exists(), "the dead process's file stays");
    for f in [&live, &other_artefact, &foreign] {
        assert!(f.exists(), "{} was removed", f.display());
    }
}

/// A hit records itself in the entry's modification time (gc's order),
/// but at most once a minute: the system call is a few percent of a hit.
#[test]
fn a_hit_refreshes_its_entrys_last_use_unless_it_is_recent() {
    let (_d, cache) = cache_with_contract();
    let dir = entry_dir(&cache);
    let mtime = || std::fs::metadata(&dir).unwrap().modified().unwrap();
    let set = |t: std::time::SystemTime| std::fs::File::open(&dir).unwrap().set_modified(t);
    let now = std::time::SystemTime::now();
    let recent = now - std::time::Duration::from_secs(20);
    set(recent).unwrap();
    assert!(cache.get(code_hash(), SPEC, OPT).unwrap().is_some());
    assert_eq!(
        mtime(),
        recent,
        "a hit 20 s after the last one wrote the entry"
    );
    let old = now - std::time::Duration::from_secs(7200);
    set(old).unwrap();
    assert!(cache.get(code_hash(), SPEC, OPT).unwrap().is_some());
    // The kernel stamps with its coarse clock, a tick behind `now`.
    let a_second_ago = now - std::time::Duration::from_secs(1);
    assert!(
        mtime() >= a_second_ago,
        "a hit two hours after the last one left it as it was"
    );
}

#[test]
fn gc_removes_garbage_then_least_recently_used_entries() {
    let (_d, cache) = cache_with_contract();
    let codes: [&[u8]; 2] = [&[0x60, 0x02, 0x60, 0x00, 0x55, 0x00], &[0x60, 0x03, 0x00]];
    for c in codes {
        cache.get_or_compile(c, &opts()).unwrap();
    }
    // Make the fixture's entry the most recently used, the others old.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for e in cache.ls().unwrap() {
        let f = std::fs::File::open(&e.path).unwrap();
        f.set_modified(old).unwrap();
    }
    assert!(cache.get(code_hash(), SPEC, OPT).unwrap().is_some());
    // Garbage: a quarantined entry and a stale build directory.
    std::fs::write(entry_dir(&cache).join("../junk"), b"x").unwrap();
    let stale = cache.dir().join("tmp/build-dead");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("artifact.so"), b"half").unwrap();
    std::fs::File::open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = cache.dir().join("tmp/build-live");
    std::fs::create_dir(&fresh).unwrap();

    let before = cache.ls().unwrap();
    assert_eq!(before.len(), 4); // three entries and the junk file
    let mine = before
        .iter()
        .find(|e| e.path == entry_dir(&cache))
        .unwrap()
        .size;

    let r = cache.gc(None).unwrap();
    // The junk has no manifest: it goes even without a size limit.
    assert_eq!((r.removed_entries, r.removed_temporary), (1, 1));
    assert!(!stale.exists() && fresh.exists());

    let r = cache.gc(Some(mine)).unwrap();
    assert_eq!((r.removed_entries, r.kept_entries), (2, 1));
    assert!(r.kept_bytes <= mine);
    assert!(
        run_through_cache(&cache) > 0,
        "the recently used entry was evicted"
    );

    let r = cache.gc(Some(0)).unwrap();
    assert_eq!((r.removed_entries, r.kept_entries), (1, 0));
    assert!(cache.ls().unwrap().is_empty());
}

#[test]
fn quarantined_entries_are_listed_with_reasons_and_collected() {
    let (_d, cache) = cache_with_contract();
    overwrite(&entry_dir(&cache).join("artifact.so"), b"not an elf");
    let v = cache.verify().unwrap();
    assert_eq!((v.checked, v.ok, v.rejected.len()), (1, 0, 1));
    let q = v.rejected[0].moved_to.clone().unwrap();
    assert!(q.starts_with(cache.dir().join("quarantine")));
    assert!(std::fs::read_to_string(q.join("reason.txt"))
        .unwrap()
        .contains("truncated"));
    let r = cache.gc(None).unwrap();
    assert_eq!(r.removed_quarantined, 1);
    assert!(!q.exists());
}

/// Where a warm `get` spends its CPU time (printed, not asserted: speed belongs
/// in benchmarks). `cargo test --release -p evmc-runtime --test cache -- --ignored --nocapture`;
/// with `EVMC_WARM_GET_CACHE=DIR`, every entry of that cache (e.g. filled by
/// `evmc-native compile --cache-dir DIR`) instead of two contracts compiled here;
/// with `EVMC_WARM_GET_ONLY=1` as well, 20,000 gets of the first entry and
/// nothing else (to run under `perf record`).
#[test]
#[ignore]
fn print_warm_get_cost() {
    let own = tempfile::tempdir().unwrap();
    let (cache, keys) = match std::env::var_os("EVMC_WARM_GET_CACHE") {
        Some(dir) => {
            let cache = ArtifactCache::open(std::path::Path::new(&dir)).unwrap();
            let keys: Vec<_> = cache
                .ls()
                .unwrap()
                .into_iter()
                .filter_map(|e| e.manifest)
                .map(|m| {
                    let name = format!(
                        "{} ({} B of code)",
                        &m.key.code_hash.to_string()[..12],
                        m.code_size
                    );
                    (name, m.key)
                })
                .collect();
            (cache, keys)
        }
        None => {
            let cache = ArtifactCache::open(own.path()).unwrap();
            let mut keys = Vec::new();
            for (name, code) in [
                ("counter (368 B)", contract()),
                ("24 KiB of JUMPDESTs", vec![0x5b; 24 * 1024]),
            ] {
                cache.get_or_compile(&code, &opts()).unwrap();
                let key = evmc_runtime::cache::CacheKey::for_compile(
                    evmc_compiler::code_hash(&code),
                    &opts(),
                );
                keys.push((name.to_string(), key));
            }
            (cache, keys)
        }
    };
    for (name, key) in keys {
        let art = cache.get_key(&key).unwrap().unwrap();
        let so = art.path.clone();
        drop(art);
        if std::env::var_os("EVMC_WARM_GET_ONLY").is_some() {
            for _ in 0..20000 {
                cache.get_key(&key).unwrap().unwrap();
            }
            return;
        }
        let n = 100;
        // CPU time of this thread (kernel time included): on a shared,
        // loaded machine wall time mostly measures the other processes.
        let cpu_us = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid out-pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
        };
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = cpu_us();
            for _ in 0..n {
                f();
            }
            (cpu_us() - t) / n as f64
        };
        let get = time(&mut || {
            cache.get_key(&key).unwrap().unwrap();
        });
        // Wall time too.
        let mut walls: Vec<f64> = (0..n)
            .map(|_| {
                let t = std::time::Instant::now();
                cache.get_key(&key).unwrap().unwrap();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        walls.sort_by(f64::total_cmp);
        let wall = walls[n / 2];
        let entry = so.parent().unwrap().to_path_buf();
        let manifest = time(&mut || {
            let b = evmc_runtime::loader::read_regular_file(&entry.join("manifest.json"), 1 << 16)
                .unwrap();
            let m = evmc_runtime::cache::Manifest::from_json(&b).unwrap();
            std::hint::black_box(m.key.digest_hex());
        });
        let read = time(&mut || {
            evmc_runtime::loader::read_regular_file(&so, u64::MAX).unwrap();
        });
        let bytes = std::fs::read(&so).unwrap();
        let hash = time(&mut || {
            evmc_runtime::loader::content_hash(&bytes);
        });
        let loader = evmc_runtime::Loader::new(evmc_runtime::Expect {
            code_hash: key.code_hash,
            spec: key.spec.clone(),
        });
        let in_memory = || evmc_runtime::loader::Source::Bytes {
            path: &so,
            bytes: &bytes,
        };
        let validate = time(&mut || {
            loader.validate(in_memory()).unwrap();
        });
        let load = time(&mut || {
            loader.load(&so).unwrap();
        });
        let copy = time(&mut || {
            loader.load(in_memory()).unwrap();
        });
        let touch = time(&mut || {
            let f = std::fs::File::open(&entry).unwrap();
            f.set_modified(std::time::SystemTime::now()).unwrap();
        });
        // The hits above come within a minute of each other: only the
        // first touched the entry (`TOUCH_EVERY`).
        println!(
            "{name}: artifact {} KiB; warm get {get:.1} µs (wall median {wall:.1}) = \
             manifest {manifest:.1} + content hash {hash:.1} + load {load:.1} (read, \
             ELF/metadata checks {validate:.1}, dlopen in place) + the rest {:.1}; \
             touching the entry (once a minute) {touch:.1}; reading the file alone: \
             {read:.1}; loading a private copy of the bytes instead: {copy:.1}",
            bytes.len() / 1024,
            get - manifest - hash - load
        );
    }
}

/// Writes into `cache` a copy of the contract's entry as `edit` changes
/// its manifest (another compiler build, say), under the digest of the
/// edited key, as that build would have named it; returns its directory.
fn foreign_entry(
    cache: &ArtifactCache,
    edit: impl FnOnce(&mut evmc_runtime::cache::Manifest),
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = entry_dir(cache);
    let mut m = evmc_runtime::cache::Manifest::from_json(
        &std::fs::read(src.join("manifest.json")).unwrap(),
    )
    .unwrap();
    edit(&mut m);
    let dir = cache.dir().join("entries").join(m.key.digest_hex());
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("manifest.json"), m.to_json()).unwrap();
    std::fs::copy(src.join("artifact.so"), dir.join("artifact.so")).unwrap();
    dir
}

/// After a compiler upgrade the old binary's entries are dead weight: the
/// new build never looks them up (its keys name its own build id) and
/// `gc_with(other_builds)` removes them, keeping the current ones. The old
/// build is simulated by rewriting manifests, so nothing in the library
/// can be told to take another build id.
#[test]
fn entries_of_other_compiler_builds_are_never_used_and_gc_removes_them() {
    use evmc_runtime::cache::{GcOptions, Source};
    let (_d, cache) = cache_with_contract();
    let old_build = foreign_entry(&cache, |m| {
        m.key.compiler_version = "evmc-0000000000000000".into()
    });
    let old_interface = foreign_entry(&cache, |m| m.key.interface_version -= 1);
    // An entry of an older cache layout: its manifest is unreadable here.
    let old_layout = foreign_entry(&cache, |m| {
        m.format -= 1;
        m.key.compiler_version = "evmc-1111111111111111".into();
    });
    let current = entry_dir(&cache);

    // Only the old entries left: every lookup misses and compiles anew,
    // nothing is refused (the old entries are not even opened).
    std::fs::remove_dir_all(&current).unwrap();
    assert!(cache.get(code_hash(), SPEC, OPT).unwrap().is_none());
    let (_, src) = cache.lookup_or_compile(&contract(), &opts()).unwrap();
    assert!(matches!(src, Source::Compiled(_)), "{src:?}");
    assert!(cache.take_rejections().is_empty());
    assert!(current.is_dir());

    let listed = cache.ls().unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    let other: Vec<_> = listed
        .iter()
        .filter(|e| e.other_build)
        .map(|e| &e.path)
        .collect();
    assert_eq!(other.len(), 2, "{listed:?}");
    assert!(other.contains(&&old_build) && other.contains(&&old_interface));

    // Plain gc keeps other builds (an older binary may still use the
    // cache); the unreadable old-layout entry always goes.
    let r = cache.gc(None).unwrap();
    assert_eq!((r.removed_entries, r.removed_other_builds), (1, 0));
    assert!(!old_layout.exists() && old_build.exists());

    let r = cache
        .gc_with(GcOptions {
            max_size: None,
            other_builds: true,
        })
        .unwrap();
    assert_eq!((r.removed_entries, r.removed_other_builds), (2, 2));
    assert_eq!(r.kept_entries, 1);
    assert!(!old_build.exists() && !old_interface.exists());
    assert!(
        run_through_cache(&cache) > 0,
        "the current entry was removed"
    );
}

/// A compile worker runs without transparent huge pages, whatever its
/// allocator asks for: the flag is set between fork and exec and survives
/// exec. The stand-in worker prints its own flag and dies; the failure
/// carries what it printed.
#[test]
fn compile_workers_run_without_transparent_huge_pages() {
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        own.contains("THP_enabled:\t1"),
        "this test needs a kernel that reports THP_enabled (5.0 or later) and a process with THP not disabled: {own}"
    );
    let dir = tempfile::tempdir().unwrap();
    let worker = evmc_runtime::WorkerCommand::new(
        "sh",
        ["-c", "grep THP_enabled /proc/self/status >&2; exit 3"],
    );
    let cache = ArtifactCache::open(dir.path())
        .unwrap()
        .with_worker(worker, CompileLimits::default());
    let err = cache.get_or_compile(&contract(), &opts()).unwrap_err();
    let CacheError::Compile(CompileFailure::WorkerDied { stderr, .. }) = &err else {
        panic!("expected the stand-in worker to die: {err}");
    };
    assert!(stderr.contains("THP_enabled:\t0"), "{err}");
}

/// The stand-in worker's pid in a compile failure it answered with.
fn answering_pid(err: &CacheError) -> u32 {
    let CacheError::Compile(CompileFailure::Compile(msg)) = err else {
        panic!("expected the stand-in worker's answer: {err}");
    };
    msg.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A stand-in worker that answers every request line with a compile error
/// naming its pid, and the cache that compiles through it.
fn answering_cache(script: &str) -> (tempfile::TempDir, ArtifactCache) {
    let dir = tempfile::tempdir().unwrap();
    let worker = evmc_runtime::WorkerCommand::new("sh", ["-c", script]);
    let cache = ArtifactCache::open(dir.path())
        .unwrap()
        .with_worker(worker, CompileLimits::default());
    (dir, cache)
}

/// `PUSH1 n PUSH1 0 SSTORE STOP`: a distinct contract per `n`, so that no
/// compile is answered from what the cache recorded of another.
fn distinct_contract(n: u8) -> Vec<u8> {
    vec![0x60, n, 0x60, 0x00, 0x55, 0x00]
}

/// A thread keeps its compile worker for its next compile (starting one
/// cost more than a small compile); another thread has its own, and a
/// thread's worker ends with the thread.
#[test]
fn a_thread_keeps_its_compile_worker_and_it_ends_with_the_thread() {
    let (_dir, cache) =
        answering_cache(r#"while read -r line; do echo "{\"Err\":\"answered by $$\"}"; done"#);
    let cache = Arc::new(cache);
    let pids = |cache: &ArtifactCache, from: u8| -> Vec<u32> {
        (from..from + 3)
            .map(|n| {
                answering_pid(
                    &cache
                        .get_or_compile(&distinct_contract(n), &opts())
                        .unwrap_err(),
                )
            })
            .collect()
    };
    let here = pids(&cache, 1);
    assert!(here.iter().all(|&p| p == here[0]), "{here:?}");
    let theirs = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || pids(&cache, 10)).join().unwrap()
    };
    assert!(theirs.iter().all(|&p| p == theirs[0]), "{theirs:?}");
    assert_ne!(here[0], theirs[0], "each thread has a worker of its own");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", theirs[0])).exists(),
        "the worker of a thread that ended is still alive"
    );
}

/// A worker that dies after answering is replaced by a fresh one, and the
/// compile it failed is decided there: its death is never the contract's
/// failure.
#[test]
fn a_compile_worker_that_died_after_answering_is_replaced() {
    // Answers one request, then reads the next and dies without a word.
    let (_dir, cache) = answering_cache(
        r#"read -r line; echo "{\"Err\":\"answered by $$\"}"; read -r line; exit 3"#,
    );
    let first = answering_pid(
        &cache
            .get_or_compile(&distinct_contract(1), &opts())
            .unwrap_err(),
    );
    let second = answering_pid(
        &cache
            .get_or_compile(&distinct_contract(2), &opts())
            .unwrap_err(),
    );
    assert_ne!(first, second);
}

/// A worker whose answer is no compile response is killed, never asked
/// again, and the failure says what it answered.
#[test]
fn a_compile_worker_answering_something_else_is_not_trusted_again() {
    let (_dir, cache) = answering_cache(r#"while read -r line; do echo "hello from $$"; done"#);
    let err = cache
        .get_or_compile(&distinct_contract(1), &opts())
        .unwrap_err();
    let CacheError::Compile(CompileFailure::WorkerDied { status, .. }) = &err else {
        panic!("expected a worker failure: {err}");
    };
    assert!(
        status.contains("something else") && status.contains("hello from"),
        "{err}"
    );
    let pid: u32 = status.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the worker {pid} that answered something else is still alive"
    );
}
